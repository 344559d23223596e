//! The `minicloud` command: `serve` runs the platform; the other subcommands are a client of
//! a running one's API.

use std::process::ExitCode;

/// jemalloc gives memory back to the system after a burst of load; glibc's malloc held on to
/// hundreds of megabytes under Pingora (see the benchmarks in `benches/`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use minicloud::cli::{apps, encode_segment, table, ApiClient};
use minicloud::config::{LogFormat, Sources};
use minicloud::model::secret::Secret;
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
    /// Apps deployed from Docker images: add, deploy, roll back, logs, env, remove.
    #[command(subcommand, after_help = APPS_EXAMPLES)]
    Apps(AppsCommand),
    /// Extra domains an app answers at, besides <app>.<domain>.
    #[command(subcommand, after_help = DOMAINS_EXAMPLES)]
    Domains(DomainsCommand),
    /// Routes to services on this machine that minicloud does not deploy.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Certificates of the hosts minicloud serves (ACME).
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Check an app's cloud_manifest before deploying it.
    #[command(subcommand)]
    Manifest(ManifestCommand),
}

#[derive(Subcommand)]
enum ManifestCommand {
    /// Check a manifest file, or the one inside an image (the local Docker engine reads it,
    /// pulling the image if needed), and print what minicloud will make of it.
    ///
    /// Examples:
    ///   minicloud manifest check ./cloud_manifest.yml
    ///   minicloud manifest check ghcr.io/me/blog:1.2
    Check {
        /// A file path, or an image reference.
        #[arg(value_name = "PATH|IMAGE")]
        target: String,
    },
}

const APPS_EXAMPLES: &str = "\
Examples:
  minicloud apps add ghcr.io/me/blog:1.2 --name blog --env LOG_LEVEL=info
  minicloud apps list
  minicloud apps deploy blog --image ghcr.io/me/blog:1.3
  minicloud apps logs blog -f
  minicloud apps rollback blog";

const DOMAINS_EXAMPLES: &str = "\
Examples:
  minicloud domains add blog blog.example.com
  minicloud domains list blog
  minicloud domains rm blog blog.example.com";

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

#[derive(Subcommand)]
enum AppsCommand {
    /// Deploy an image as a new app, showing its progress.
    ///
    /// The image is pulled, its /cloud_manifest.yml read, a container started and probed,
    /// and the app routed at https://<name>.<domain>. Accepts what you would paste:
    /// user/app, user/app:tag, registry.host:5000/app:tag, a Docker Hub URL, ...@sha256:....
    #[command(after_help = "\
Examples:
  minicloud apps add nginxdemos/hello --name hello
  minicloud apps add 127.0.0.1:5000/probe:v1 --env GREETING=hi --memory 128
  echo \"$TOKEN\" | minicloud apps add ghcr.io/me/private:1 --registry-user me --registry-password-stdin")]
    Add {
        /// The Docker image to run.
        image: String,
        /// The app's name (a DNS label); defaults to the manifest's name.
        #[arg(long)]
        name: Option<String>,
        /// An environment variable for the app; repeat for more.
        #[arg(short, long, value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Memory limit in MiB (default 256).
        #[arg(long, value_name = "MB")]
        memory: Option<u64>,
        /// Username for a private registry (with --registry-password-stdin).
        #[arg(long, value_name = "USER", requires = "registry_password_stdin")]
        registry_user: Option<String>,
        /// Read the registry password from stdin.
        #[arg(long, requires = "registry_user")]
        registry_password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List apps with their state, revision, image and URL.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show an app: state, revision, image, domains, memory and CPU use, last error.
    #[command(after_help = "Example:\n  minicloud apps show blog")]
    Show {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Pull the app's image again (or another one) and deploy it if it changed.
    ///
    /// A new digest makes a new revision; the same digest does nothing unless --force.
    #[command(after_help = "\
Examples:
  minicloud apps deploy blog
  minicloud apps deploy blog --image ghcr.io/me/blog:1.3
  minicloud apps deploy blog --force")]
    Deploy {
        name: String,
        /// Deploy this image instead of the app's current one (and keep it).
        #[arg(long)]
        image: Option<String>,
        /// Deploy a new revision even if the image did not change.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Deploy an earlier revision's image again (default: the one before the current).
    #[command(after_help = "\
Examples:
  minicloud apps rollback blog
  minicloud apps rollback blog --revision 3")]
    Rollback {
        name: String,
        /// The revision to go back to (see `apps history`).
        #[arg(long, value_name = "N")]
        revision: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Restart the app's containers (a new revision, deployed without downtime).
    #[command(after_help = "Example:\n  minicloud apps restart blog")]
    Restart {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop the app; it stays stopped, across restarts of minicloud, until `apps start`.
    #[command(after_help = "Example:\n  minicloud apps stop blog")]
    Stop {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Start a stopped app again.
    #[command(after_help = "Example:\n  minicloud apps start blog")]
    Start {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The app's deploys, newest first: revision, result, image, digest, trigger, reason.
    #[command(
        visible_alias = "releases",
        after_help = "Example:\n  minicloud apps history blog"
    )]
    History {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The app's database and message-bus accounts (passwords masked unless --reveal).
    #[command(after_help = "\
Examples:
  minicloud apps services blog
  minicloud apps services blog --reveal      # prints passwords: mind who is watching
  minicloud apps rotate-credentials blog     # new passwords, then a redeploy")]
    Services {
        name: String,
        /// Show the passwords and full connection URLs.
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give the app new database and message-bus passwords and redeploy it with them.
    RotateCredentials {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the serving revision's log.
    #[command(after_help = "\
Examples:
  minicloud apps logs blog
  minicloud apps logs blog -n 20 -f")]
    Logs {
        name: String,
        /// How many of the last lines to print (default 100).
        #[arg(short = 'n', long, value_name = "N")]
        tail: Option<usize>,
        /// Keep printing new lines as they come, until interrupted.
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the app's own environment variables, or set and unset them (which redeploys).
    #[command(after_help = "\
Examples:
  minicloud apps env blog
  minicloud apps env set blog LOG_LEVEL=debug FEATURE_X=1
  minicloud apps env unset blog FEATURE_X")]
    Env(EnvArgs),
    /// Remove the app: its containers and routes. Its data only with --with-data.
    #[command(
        visible_alias = "remove",
        after_help = "\
Examples:
  minicloud apps rm blog
  minicloud apps rm blog --with-data"
    )]
    Rm {
        name: String,
        /// Also delete the app's storage (it is kept otherwise).
        #[arg(long)]
        with_data: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct EnvArgs {
    #[command(subcommand)]
    command: Option<EnvCommand>,
    /// The app whose variables to list.
    #[arg(required = true)]
    name: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand)]
enum EnvCommand {
    /// Set variables and redeploy the app with them.
    Set {
        name: String,
        /// One or more variables.
        #[arg(required = true, value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// Remove variables and redeploy the app without them.
    Unset {
        name: String,
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DomainsCommand {
    /// Make the app NAME answer at DOMAIN too (point its DNS at this server).
    #[command(after_help = "Example:\n  minicloud domains add blog blog.example.com")]
    Add {
        name: String,
        domain: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop answering at DOMAIN.
    #[command(
        visible_alias = "remove",
        after_help = "Example:\n  minicloud domains rm blog blog.example.com"
    )]
    Rm {
        name: String,
        domain: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List every domain the app answers at, <app>.<domain> first.
    #[command(
        visible_alias = "ls",
        after_help = "Example:\n  minicloud domains list blog"
    )]
    List {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Apps(cmd) => run_client(apps(cmd)),
        Command::Domains(cmd) => run_client(domains(cmd)),
        Command::Routes(cmd) => run_client(routes(cmd)),
        Command::Certs(cmd) => run_client(certs(cmd)),
        Command::Manifest(ManifestCommand::Check { target }) => run_client(async move {
            let manifest = minicloud::cli::manifest::check(&target).await?;
            print!("{}", minicloud::cli::manifest::describe(&manifest));
            println!("ok: {target} is a valid app manifest");
            Ok(())
        }),
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

async fn apps(cmd: AppsCommand) -> anyhow::Result<()> {
    use AppsCommand as A;
    match cmd {
        A::Add {
            image,
            name,
            env,
            memory,
            registry_user,
            registry_password_stdin: _,
            client: c,
        } => {
            // Everything that can be wrong locally is reported before anything is sent.
            let env = apps::parse_assignments(&env, "--env")?;
            let api = client(&c)?;
            let registry = match registry_user {
                Some(user) => Some((user, apps::read_password_stdin()?)),
                None => None,
            };
            let new = apps::NewApp {
                image,
                name,
                env,
                memory_mb: memory,
                registry,
            };
            apps::add(&api, new).await
        }
        A::List { client: c } => apps::list(&client(&c)?).await,
        A::Show { name, client: c } => apps::show(&client(&c)?, &name).await,
        A::Deploy {
            name,
            image,
            force,
            client: c,
        } => apps::deploy(&client(&c)?, &name, image.as_deref(), force).await,
        A::Rollback {
            name,
            revision,
            client: c,
        } => apps::rollback(&client(&c)?, &name, revision).await,
        A::Restart { name, client: c } => apps::lifecycle(&client(&c)?, &name, "restart").await,
        A::Stop { name, client: c } => apps::lifecycle(&client(&c)?, &name, "stop").await,
        A::Start { name, client: c } => apps::lifecycle(&client(&c)?, &name, "start").await,
        A::History { name, client: c } => apps::history(&client(&c)?, &name).await,
        A::Services {
            name,
            reveal,
            client: c,
        } => apps::services(&client(&c)?, &name, reveal).await,
        A::RotateCredentials { name, client: c } => {
            apps::lifecycle(&client(&c)?, &name, "rotate-credentials").await
        }
        A::Logs {
            name,
            tail,
            follow,
            client: c,
        } => apps::logs(&client(&c)?, &name, tail, follow).await,
        A::Env(EnvArgs {
            command,
            name,
            client: c,
        }) => match command {
            None => {
                let name = name.context("give the app's name")?;
                apps::env_list(&client(&c)?, &name).await
            }
            Some(EnvCommand::Set { name, vars }) => {
                let set = apps::parse_assignments(&vars, "env set")?;
                apps::env_change(&client(&c)?, &name, set, Vec::new()).await
            }
            Some(EnvCommand::Unset { name, keys }) => {
                apps::env_change(&client(&c)?, &name, Default::default(), keys).await
            }
        },
        A::Rm {
            name,
            with_data,
            client: c,
        } => apps::remove(&client(&c)?, &name, with_data).await,
    }
}

async fn domains(cmd: DomainsCommand) -> anyhow::Result<()> {
    match cmd {
        DomainsCommand::Add {
            name,
            domain,
            client: c,
        } => apps::domain_add(&client(&c)?, &name, &domain).await,
        DomainsCommand::Rm {
            name,
            domain,
            client: c,
        } => apps::domain_remove(&client(&c)?, &name, &domain).await,
        DomainsCommand::List { name, client: c } => apps::domain_list(&client(&c)?, &name).await,
    }
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
    use minicloud::certs::{CertState, CertificateStatus};
    use minicloud::model::format_time;
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
