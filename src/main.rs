//! The `minicloud` command: `serve` runs the platform; the other subcommands are a client of
//! a running one's API.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use minicloud::cli::{table, ApiClient};
use minicloud::config::{LogFormat, Sources};
use minicloud::secret::Secret;
use minicloud::store::RouteRecord;

/// minicloud: your own small cloud on one server.
///
/// One process is the HTTPS edge (routing by host, certificates by SNI) and the control plane
/// that manages what it serves. Start it with `minicloud serve`; manage it with the other
/// commands, which talk to its API.
#[derive(Parser)]
#[command(name = "minicloud", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the edge and the control plane (settings: file < MINICLOUD_* env < flags).
    Serve(ServeArgs),
    /// Routes to services on this machine that minicloud does not deploy.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Certificates of the hosts minicloud serves (ACME).
    #[command(subcommand)]
    Certs(CertsCommand),
}

#[derive(Args)]
struct ServeArgs {
    /// TOML config file; its keys are the flag names with '_' (e.g. http_port = 8080).
    #[arg(long, env = "MINICLOUD_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Base domain: apps answer at <app>.<domain>, the admin UI at admin.<domain>. [env: MINICLOUD_DOMAIN] [default: localhost]
    #[arg(long)]
    domain: Option<String>,
    /// Where state, app storage and backups live. [env: MINICLOUD_DATA_DIR] [default: ./data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// IP address the HTTP and HTTPS ports listen on. [env: MINICLOUD_LISTEN] [default: 0.0.0.0]
    #[arg(long, value_name = "IP")]
    listen: Option<String>,
    /// HTTP port (ACME challenges and redirects to HTTPS). [env: MINICLOUD_HTTP_PORT] [default: 80]
    #[arg(long, value_name = "PORT")]
    http_port: Option<String>,
    /// HTTPS port. [env: MINICLOUD_HTTPS_PORT] [default: 443]
    #[arg(long, value_name = "PORT")]
    https_port: Option<String>,
    /// The control plane API's own address, for a local CLI. [env: MINICLOUD_API_LISTEN] [default: 127.0.0.1:7780]
    #[arg(long, value_name = "IP:PORT")]
    api_listen: Option<String>,
    /// Proxy worker threads. [env: MINICLOUD_THREADS] [default: number of CPUs]
    #[arg(long, value_name = "N")]
    threads: Option<String>,
}

/// Where the client commands find minicloud.
#[derive(Args)]
struct ClientArgs {
    /// The API's address: the local one, or https://admin.<domain> from elsewhere.
    #[arg(
        long,
        env = "MINICLOUD_URL",
        default_value = "http://127.0.0.1:7780",
        global = true
    )]
    url: String,
    /// API token (printed by `minicloud serve` at first start).
    #[arg(long, env = "MINICLOUD_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Accept a self-signed certificate on an https URL.
    #[arg(long, env = "MINICLOUD_INSECURE", global = true)]
    insecure: bool,
}

#[derive(Subcommand)]
enum RoutesCommand {
    /// List external routes.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Route HOST (or *.domain) to UPSTREAM (IP:PORT), e.g. `routes add grafana.example.com 127.0.0.1:3000`.
    Add {
        host: String,
        upstream: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove the route for HOST.
    #[command(visible_alias = "remove")]
    Rm {
        host: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Each host's certificate: pending, valid, renewing, failed (with why and when it is retried).
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Order a new certificate for HOST now; the current one serves until the new one is valid.
    Renew {
        host: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Routes(cmd) => run_client(routes(cmd)),
        Command::Certs(cmd) => run_client(certs(cmd)),
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

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut sources = Sources::new();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read config file {}", path.display()))?;
        sources = sources.file(&path.display().to_string(), &text)?;
    }
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MINICLOUD_"))
        .collect();
    let flags = [
        ("domain", &args.domain),
        ("data_dir", &args.data_dir),
        ("listen", &args.listen),
        ("http_port", &args.http_port),
        ("https_port", &args.https_port),
        ("api_listen", &args.api_listen),
        ("threads", &args.threads),
    ];
    let config = sources
        .env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .flags(
            flags
                .iter()
                .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))),
        )
        .resolve()?;
    init_logging(config.log_format);
    minicloud::serve::run(config)?;
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MINICLOUD_LOG")
        .unwrap_or_else(|_| "info,pingora_core=warn,pingora_proxy=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run_client(work: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?
        .block_on(work)
}

fn client(args: &ClientArgs) -> anyhow::Result<ApiClient> {
    Ok(ApiClient::new(
        &args.url,
        args.token.clone().map(Secret::new),
        args.insecure,
    )?)
}

async fn routes(cmd: RoutesCommand) -> anyhow::Result<()> {
    match cmd {
        RoutesCommand::List { client: c } => {
            let routes: Vec<RouteRecord> = client(&c)?.get("/api/routes").await?;
            if routes.is_empty() {
                println!("No routes. Add one with: minicloud routes add HOST IP:PORT");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = routes
                .iter()
                .map(|r| vec![r.host.to_string(), r.upstream.to_string()])
                .collect();
            print!("{}", table::render(&["host", "upstream"], &rows));
        }
        RoutesCommand::Add {
            host,
            upstream,
            client: c,
        } => {
            let body = serde_json::json!({ "host": host, "upstream": upstream });
            let route: RouteRecord = client(&c)?.post("/api/routes", &body).await?;
            println!("{} → {}", route.host, route.upstream);
        }
        RoutesCommand::Rm { host, client: c } => {
            client(&c)?
                .delete(&format!("/api/routes/{}", encode_segment(&host)))
                .await?;
            println!("removed {host}");
        }
    }
    Ok(())
}

async fn certs(cmd: CertsCommand) -> anyhow::Result<()> {
    use minicloud::certs::{format_time, CertState, CertificateStatus};
    match cmd {
        CertsCommand::List { client: c } => {
            let certs: Vec<CertificateStatus> = client(&c)?.get("/api/certificates").await?;
            let time = |t: Option<i64>| t.map(format_time).unwrap_or_else(|| "-".into());
            let rows: Vec<Vec<String>> = certs
                .iter()
                .map(|s| {
                    let state = serde_json::to_value(s.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let next = match s.state {
                        CertState::Failed => format!("retry {}", time(s.next_retry)),
                        _ if s.renew_at.is_some() => format!("renew {}", time(s.renew_at)),
                        _ => "-".into(),
                    };
                    let detail = s
                        .error
                        .clone()
                        .or_else(|| s.reason.clone())
                        .unwrap_or_default();
                    vec![s.host.clone(), state, time(s.not_after), next, detail]
                })
                .collect();
            print!(
                "{}",
                table::render(&["host", "state", "expires", "next", "detail"], &rows)
            );
        }
        CertsCommand::Renew { host, client: c } => {
            let path = format!("/api/certificates/{}/renew", encode_segment(&host));
            let _: CertificateStatus = client(&c)?.post(&path, &serde_json::json!({})).await?;
            println!("renewal of {host} requested: see `minicloud certs list`");
        }
    }
    Ok(())
}

fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
