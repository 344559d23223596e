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
            eprintln!("minicloud: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// One line, like other Unix tools: the error and its causes joined with ': ', each said
/// once (many errors already name their cause in their own sentence).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:80: {source} (is another web server running?)")]
    struct SaysItsCause {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the store is unusable")]
    struct NamesNoCause {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_is_said_once() {
        let taken = || std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let said = anyhow::Error::new(SaysItsCause { source: taken() });
        assert_eq!(
            one_line(&said),
            format!(
                "cannot listen on 127.0.0.1:80: {} (is another web server running?)",
                taken()
            )
        );
        let unsaid = anyhow::Error::new(NamesNoCause { source: taken() });
        assert_eq!(
            one_line(&unsaid),
            format!("the store is unusable: {}", taken())
        );
    }
}
