//! The `minicloud` command: `serve` runs the platform; the other subcommands are a client of
//! a running one's API. This file parses and dispatches; the commands live in `cli`.

use std::process::ExitCode;

use clap::Parser;

use minicloud::cli::args::{Cli, Command};

/// jemalloc gives memory back to the system after a burst of load; glibc's malloc held on to
/// hundreds of megabytes under Pingora (see the benchmarks in `benches/`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let result: anyhow::Result<()> = match Cli::parse().command {
        Command::Serve(args) => minicloud::cli::serve::run(args).map_err(Into::into),
        Command::Admin(command) => minicloud::cli::admin::run(command).map_err(Into::into),
        Command::Restore(args) => minicloud::cli::restore::run(args).map_err(Into::into),
        Command::Client(command) => minicloud::cli::run(command).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, like other Unix tools; causes joined with ': '.
            eprintln!("minicloud: {e:#}");
            ExitCode::FAILURE
        }
    }
}
