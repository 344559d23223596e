//! The command line's words: every clap type of the `minicloud` binary, with the help text
//! people read. Parsing only; what each command does lives in the sibling modules.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::config::keys::KEYS;

/// minicloud: your own small cloud on one server.
///
/// One process is the HTTPS edge (routing by host, certificates by SNI) and the control plane
/// that manages what it serves. Start it with `minicloud serve`; manage it with the other
/// commands, which talk to its API.
#[derive(Parser)]
#[command(name = "minicloud", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the edge and the control plane (settings: file < MINICLOUD_* env < flags).
    Serve(ServeArgs),
    /// Local administration, on this server's state store with minicloud stopped (no network).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Bring back minicloud's state from the newest platform backup, on a new server with
    /// minicloud stopped; at its next start minicloud brings back each app's data from its
    /// newest backup and deploys it at its recorded revision.
    ///
    /// Reads the same settings as `serve` (config file, MINICLOUD_* environment) to find the
    /// data dir. Refuses to replace a state store that has apps, unless --force.
    Restore(RestoreArgs),
    // Every other command: a client of a running minicloud's API.
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Give an admin app user a new random password (printed once) and end their sessions.
    ///
    /// Reads the same settings as `serve` (config file, MINICLOUD_* environment) to find
    /// the data dir. Stop minicloud first: the state store has one user at a time.
    ResetPassword {
        /// The user, e.g. admin.
        user: String,
        /// The config file `serve` uses, if any.
        #[arg(long, env = "MINICLOUD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Turn off a user's two-factor sign-in (lost phone and recovery codes) and end their
    /// sessions; they sign in with their password and may set it up again.
    ///
    /// Stop minicloud first, as for reset-password.
    #[command(name = "reset-2fa")]
    Reset2fa {
        /// The user, e.g. admin.
        user: String,
        /// The config file `serve` uses, if any.
        #[arg(long, env = "MINICLOUD_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup repository: a directory (the old server's `<data-dir>/backups`, a copy of
    /// it, or that directory itself), or its S3 copy as restic names it,
    /// `s3:<endpoint>/<bucket>/<prefix>` (keys from the backup_s3_* settings, or
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). One elsewhere is copied into
    /// `<data-dir>/backups` first.
    #[arg(long, value_name = "PATH|s3:URL")]
    pub repository: String,
    /// Read the repository password (the recovery key) from standard input's first line
    /// (required: a password is never an argument).
    #[arg(long)]
    pub password_stdin: bool,
    /// Replace a state store that already has apps.
    #[arg(long)]
    pub force: bool,
    /// The config file `serve` uses, if any.
    #[arg(long, env = "MINICLOUD_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The commands that talk to a running minicloud (or, for `manifest`, to nobody).
#[derive(Subcommand)]
pub enum ClientCommand {
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
    /// Backups of each app's database, storage and record, and restores from them.
    #[command(subcommand, after_help = BACKUPS_EXAMPLES)]
    Backups(BackupsCommand),
    /// Write a starting cloud_manifest.yml, or check one before deploying it.
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Where alerts go: signed webhooks, e-mail, ntfy, Slack, Discord, Telegram; send a test
    /// through one.
    #[command(subcommand, after_help = ALERTS_EXAMPLES)]
    Alerts(AlertsCommand),
    /// What went wrong and when it recovered, newest first, with each one's timeline.
    Incidents {
        /// Only the incidents still open.
        #[arg(long)]
        open: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// API tokens for the CLI and scripts: list, create (shown once), revoke.
    #[command(subcommand, after_help = TOKENS_EXAMPLES)]
    Tokens(TokensCommand),
    /// Who changed what, when, from where, and how it ended; newest first.
    Audit {
        /// A user, token or app name, or `system`.
        #[arg(long)]
        actor: Option<String>,
        /// A piece of what was done, e.g. `deploy` or an app's name.
        #[arg(long)]
        what: Option<String>,
        /// Only what failed or was refused.
        #[arg(long)]
        failed: bool,
        /// Only the last N days.
        #[arg(long, value_name = "N")]
        days: Option<u32>,
        /// At most N entries (default 200, at most 1000).
        #[arg(long, short = 'n', value_name = "N")]
        limit: Option<usize>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

const TOKENS_EXAMPLES: &str = "Examples:
  minicloud tokens create github-actions --expires-in-days 90
  minicloud tokens list
  minicloud tokens revoke github-actions";

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Every token: created, expires, last used (never the token itself).
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make a token NAME; it is printed once, on stdout.
    Create {
        name: String,
        /// It stops working after this many days; without it, never.
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke the token NAME: the next call carrying it is refused.
    #[command(visible_alias = "rm")]
    Revoke {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

const ALERTS_EXAMPLES: &str = "Examples:
  minicloud alerts add webhook https://hooks.example.com/minicloud
  minicloud alerts add email --smtp-host smtp.example.com --from mc@example.com --to me@example.com
  echo \"$SMTP_PASSWORD\" | minicloud alerts add email --smtp-host smtp.example.com \\
      --smtp-user mc --smtp-password-stdin --from mc@example.com --to me@example.com
  minicloud alerts add ntfy https://ntfy.sh/my-minicloud-alerts
  minicloud alerts add slack https://hooks.slack.com/services/T…/B…/…
  minicloud alerts add discord https://discord.com/api/webhooks/…/…
  echo \"$BOT_TOKEN\" | minicloud alerts add telegram --chat-id -1001234567890
  minicloud alerts test 1a2b3c4d";

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// The alert channels, and whether their deliveries work.
    #[command(visible_alias = "ls")]
    Channels {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a channel.
    #[command(subcommand)]
    Add(AddChannel),
    /// Remove the channel ID.
    #[command(visible_alias = "remove")]
    Rm {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Send a test message through the channel ID now.
    Test {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub enum AddChannel {
    /// POST each alert as JSON to URL, signed in the X-Minicloud-Signature header
    /// (sha256=HMAC-SHA256 of the body); the key is printed once.
    Webhook {
        url: String,
        /// Read the HMAC key from stdin instead of letting minicloud make one.
        #[arg(long)]
        secret_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Send each alert as an e-mail through an SMTP server.
    Email {
        #[arg(long, value_name = "HOST")]
        smtp_host: String,
        /// Default: 587 (starttls), 465 (tls), 25 (plain).
        #[arg(long, value_name = "PORT")]
        smtp_port: Option<u16>,
        /// plain, starttls (the default) or tls.
        #[arg(long, value_name = "MODE")]
        security: Option<String>,
        #[arg(long, value_name = "USER", requires = "smtp_password_stdin")]
        smtp_user: Option<String>,
        /// Read the SMTP password from stdin.
        #[arg(long, requires = "smtp_user")]
        smtp_password_stdin: bool,
        #[arg(long, value_name = "ADDRESS")]
        from: String,
        #[arg(long, value_name = "ADDRESS", required = true)]
        to: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Publish each alert to an ntfy topic (URL is the topic's: https://ntfy.sh/TOPIC).
    Ntfy {
        url: String,
        /// Read an access token for a protected topic from stdin.
        #[arg(long)]
        token_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Post each alert to a Slack incoming webhook.
    Slack {
        url: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Post each alert to a Discord channel webhook.
    Discord {
        url: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Send each alert to a Telegram chat through your bot; its token is read from stdin.
    Telegram {
        /// The chat's number (-100… for groups and channels) or @channelname.
        #[arg(long, value_name = "ID", allow_hyphen_values = true)]
        chat_id: String,
        /// A self-hosted Bot API server instead of https://api.telegram.org.
        #[arg(long, value_name = "URL")]
        api_url: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub enum ManifestCommand {
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
    /// Write a starting cloud_manifest.yml from flags, or from a few questions on a terminal.
    ///
    /// On a terminal it asks for what the flags leave open (name, port, services); with --yes,
    /// or when stdin is not a terminal, it never asks and uses the flags and the defaults. The
    /// file is checked like `manifest check` before it is written.
    #[command(after_help = "\
Examples:
  minicloud manifest init
  minicloud manifest init --name blog --port 8000 --health /healthz --database --yes
  minicloud manifest init --name shop --runner worker=\"python -m shop.worker\" --storage -o app/cloud_manifest.yml")]
    Init {
        /// The app's name (a DNS label); defaults to the current directory's name, made valid.
        #[arg(long)]
        name: Option<String>,
        /// The port the app listens on inside its container (default 8080).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        port: Option<u16>,
        /// A path that answers 2xx or 3xx once the app can serve (default: any HTTP answer).
        #[arg(long, value_name = "PATH")]
        health: Option<String>,
        /// The app needs a MariaDB database (DATABASE_URL).
        #[arg(long)]
        database: bool,
        /// The app needs a RabbitMQ message bus (AMQP_URL).
        #[arg(long)]
        messagebus: bool,
        /// The app needs storage kept across deploys, at /data.
        #[arg(long)]
        storage: bool,
        /// An extra process from the same image, its command split at spaces; repeat for more.
        #[arg(long, value_name = "NAME=COMMAND")]
        runner: Vec<String>,
        /// Where to write the manifest.
        #[arg(short, long, value_name = "PATH", default_value = "cloud_manifest.yml")]
        output: PathBuf,
        /// Overwrite the file if it exists.
        #[arg(long)]
        force: bool,
        /// Ask nothing: use the flags and the defaults.
        #[arg(short, long)]
        yes: bool,
    },
}

const APPS_EXAMPLES: &str = "\
Examples:
  minicloud apps add ghcr.io/me/blog:1.2 --name blog --env LOG_LEVEL=info
  minicloud apps list
  minicloud apps deploy blog --image ghcr.io/me/blog:1.3
  minicloud apps logs blog -f
  minicloud apps rollback blog";

const BACKUPS_EXAMPLES: &str = "\
Examples:
  minicloud backups run blog
  minicloud backups run --platform
  minicloud backups list blog
  minicloud backups restore blog 1764927000-3f2a --only database
  minicloud backups download blog 1764927000-3f2a -o blog.tar.zst
  minicloud backups verify blog
  minicloud backups settings blog
  minicloud backups settings blog --schedule 03:30 --keep-last 3 --keep-monthly 12
  minicloud backups key
  minicloud backups test-s3";

#[derive(Subcommand)]
pub enum BackupsCommand {
    /// An app's backups, newest first: state, size, parts, or why a run failed. Without an
    /// app: every app's and the platform's.
    #[command(visible_alias = "ls")]
    List {
        app: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Back an app (or, with --platform, minicloud's own state) up now, showing its progress.
    /// The first backup ever also prints the repository password (the recovery key): keep it
    /// somewhere safe.
    Run {
        #[arg(required_unless_present = "platform")]
        app: Option<String>,
        /// Back up the platform: minicloud's state store (apps, routes, certificates and
        /// their keys, users, tokens), for `minicloud restore` on a new server.
        #[arg(long, conflicts_with = "app")]
        platform: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Restore an app from one of its backups (a safety backup of the current state is taken
    /// first; the app stops serving meanwhile).
    Restore {
        app: String,
        /// The backup's id, from `minicloud backups list`.
        id: String,
        /// Only these parts (default: everything the backup holds).
        #[arg(long, value_parser = ["database", "storage", "queues"])]
        only: Vec<String>,
        /// Restore into a new app of this name (a clone made from the backup's record); the
        /// app itself is not touched.
        #[arg(long = "as", value_name = "NEW")]
        clone: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Load the app's newest database backup into a scratch database and check that its
    /// tables and row counts match the dump (the scratch database is dropped after).
    Verify {
        app: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Download one backup as a single `.tar.zst`: the database dump as plain SQL, the
    /// queue definitions, the app's record and its files under `storage/`.
    Download {
        app: String,
        /// The backup's id, from `minicloud backups list`.
        id: String,
        /// Where to write it (written beside it first, then renamed when whole).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show an app's backup schedule and retention, or change them with the flags (those not
    /// given stay as they are).
    ///
    /// The schedule is `daily` (the default: at a time of day minicloud picks for the app, so
    /// apps do not all back up at once), a time of day in UTC as `HH:MM`, or `off` (no
    /// scheduled backup; `backups run` and the backup before a new image still happen).
    /// After each backup, retention keeps the newest `--keep-last` good backups and the
    /// newest one of each of the last `--keep-daily` days, `--keep-weekly` weeks and
    /// `--keep-monthly` months, and deletes the other runs (defaults 7, 7, 4, 6; each 0 to
    /// 1000, `--keep-last` at least 1, so the newest good backup is never deleted).
    #[command(after_help = "Examples:
  minicloud backups settings blog
  minicloud backups settings blog --schedule 03:30
  minicloud backups settings blog --schedule off
  minicloud backups settings blog --keep-last 3 --keep-daily 0 --keep-weekly 0 --keep-monthly 0")]
    Settings {
        app: String,
        /// `daily`, `off`, or a time of day in UTC as `HH:MM`.
        #[arg(long, value_name = "off|daily|HH:MM")]
        schedule: Option<String>,
        /// Keep the newest N good backups (1 to 1000).
        #[arg(long, value_name = "N")]
        keep_last: Option<i64>,
        /// Keep the newest backup of each of the last N days (0 to 1000).
        #[arg(long, value_name = "N")]
        keep_daily: Option<i64>,
        /// Keep the newest backup of each of the last N weeks (0 to 1000).
        #[arg(long, value_name = "N")]
        keep_weekly: Option<i64>,
        /// Keep the newest backup of each of the last N months (0 to 1000).
        #[arg(long, value_name = "N")]
        keep_monthly: Option<i64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the repository's location and password: with them, the stock `restic` tool
    /// lists and restores every backup, even with minicloud gone.
    Key {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Test the S3 destination: write, read back and delete one object in the bucket, then
    /// open the restic repository there; says what worked and, on failure, what to do.
    #[command(name = "test-s3")]
    TestS3 {
        #[command(flatten)]
        client: ClientArgs,
    },
}

const DOMAINS_EXAMPLES: &str = "\
Examples:
  minicloud domains add blog blog.example.com
  minicloud domains list blog
  minicloud domains rm blog blog.example.com";

/// `serve`'s flags: `--config`, and one per key of the config table that has a flag (with the
/// table's help), so the table stays the only list of settings.
pub struct ServeArgs {
    /// TOML config file; its keys are the flag names with '_' (e.g. http_port = 8080).
    pub config: Option<PathBuf>,
    /// `--upgrade`: take over from the `serve` running on the same data dir, if one is.
    /// Not a setting: it says how this one process starts.
    pub upgrade: bool,
    /// The flags given, by config key.
    flags: Vec<(&'static str, String)>,
}

impl ServeArgs {
    /// The flags given, by config key.
    pub fn flags(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.flags.iter().map(|(k, v)| (*k, v.as_str()))
    }
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let flags = KEYS
            .iter()
            .filter(|k| k.flag.is_some())
            .filter_map(|k| {
                let value = matches.get_one::<String>(k.name)?;
                Some((k.name, value.clone()))
            })
            .collect();
        Ok(Self {
            config: matches.get_one::<PathBuf>("config").cloned(),
            upgrade: matches.get_flag("upgrade"),
            flags,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ServeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let config = Arg::new("config")
            .long("config")
            .env("MINICLOUD_CONFIG")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("TOML config file; its keys are the flag names with '_' (e.g. http_port = 8080)");
        let upgrade = Arg::new("upgrade")
            .long("upgrade")
            .action(clap::ArgAction::SetTrue)
            .help(
                "Take over from the minicloud serving on this data dir without a gap: receive its \
                 listening sockets (send it SIGQUIT once this one waits), then its data dir. \
                 With none running, start as usual",
            );
        KEYS.iter().filter_map(|k| Some((k, k.flag?))).fold(
            cmd.arg(config).arg(upgrade),
            |cmd, (key, value_name)| {
                cmd.arg(
                    Arg::new(key.name)
                        .long(key.flag_name())
                        .value_name(value_name)
                        .help(key.flag_help()),
                )
            },
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// Where the client commands find minicloud.
#[derive(Args)]
pub struct ClientArgs {
    /// The API's address: the local one, or https://admin.<domain> from elsewhere.
    #[arg(
        long,
        env = "MINICLOUD_URL",
        default_value = "http://127.0.0.1:7780",
        global = true
    )]
    pub url: String,
    /// API token (printed by `minicloud serve` at first start).
    #[arg(long, env = "MINICLOUD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Accept a self-signed certificate on an https URL.
    #[arg(long, env = "MINICLOUD_INSECURE", global = true)]
    pub insecure: bool,
}

#[derive(Subcommand)]
pub enum RoutesCommand {
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
pub enum CertsCommand {
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

/// The services an app can be given, as the API names them.
const SERVICES: [&str; 3] = ["database", "messagebus", "storage"];

#[derive(Subcommand)]
pub enum AppsCommand {
    /// Deploy an image as a new app, showing its progress.
    ///
    /// The image is pulled, its /cloud_manifest.yml read, a container started and probed,
    /// and the app routed at https://<name>.<domain>. Accepts what you would paste:
    /// user/app, user/app:tag, registry.host:5000/app:tag, a Docker Hub URL, ...@sha256:....
    #[command(after_help = "\
Examples:
  minicloud apps add nginxdemos/hello --name hello
  minicloud apps add 127.0.0.1:5000/probe:v1 --env GREETING=hi --memory 128
  minicloud apps add me/blog:1 --service database --domain www.example.com
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
        /// Most processes and threads the app may run at once (default 256).
        #[arg(long, value_name = "N")]
        pids_limit: Option<u64>,
        /// CPU weight under contention (default 512; Docker's own default is 1024).
        #[arg(long, value_name = "N")]
        cpu_shares: Option<u64>,
        /// Username for a private registry (with --registry-password-stdin).
        #[arg(long, value_name = "USER", requires = "registry_password_stdin")]
        registry_user: Option<String>,
        /// Read the registry password from stdin.
        #[arg(long, requires = "registry_user")]
        registry_password_stdin: bool,
        /// A service the manifest does not ask for; repeat for more.
        #[arg(long, value_name = "SERVICE", value_parser = SERVICES)]
        service: Vec<String>,
        /// A domain besides <name>.<domain> (its DNS must point here); repeat for more.
        #[arg(long, value_name = "HOST")]
        domain: Vec<String>,
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
    /// Give the app a database, message bus or storage its manifest does not ask for, and
    /// redeploy it with the connection variables.
    #[command(after_help = "Example:\n  minicloud apps attach blog database")]
    Attach {
        name: String,
        #[arg(value_parser = SERVICES)]
        service: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Take an attached service away again and redeploy without it; its data is kept for a
    /// later attach unless --with-data.
    #[command(after_help = "\
Examples:
  minicloud apps detach blog messagebus
  minicloud apps detach blog database --with-data   # also deletes the database")]
    Detach {
        name: String,
        #[arg(value_parser = SERVICES)]
        service: String,
        /// Also delete the service's data (the database, the vhost, the files).
        #[arg(long)]
        with_data: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give the app new database and message-bus passwords and redeploy it with them.
    RotateCredentials {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give the app a new webhook secret and print its new webhook URL; the old one stops
    /// working.
    #[command(after_help = "Example:\n  minicloud apps rotate-webhook blog")]
    RotateWebhook {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the serving revision's log.
    #[command(after_help = "\
Examples:
  minicloud apps logs blog
  minicloud apps logs blog -n 20 -f
  minicloud apps logs blog --previous")]
    Logs {
        name: String,
        /// How many of the last lines to print (default 100).
        #[arg(short = 'n', long, value_name = "N")]
        tail: Option<usize>,
        /// Keep printing new lines as they come, until interrupted.
        #[arg(short, long, conflicts_with = "previous")]
        follow: bool,
        /// Print instead the last lines of the web container minicloud removed most recently
        /// (a revision a deploy replaced, a stopped container it recreated).
        #[arg(short, long)]
        previous: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the app's own environment variables, or set and unset them (which redeploys).
    #[command(after_help = "\
Examples:
  minicloud apps env blog
  minicloud apps env set blog LOG_LEVEL=debug FEATURE_X=1
  minicloud apps env unset blog FEATURE_X
  minicloud apps env unset blog 'FEATURE_*'")]
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
pub struct EnvArgs {
    #[command(subcommand)]
    pub command: Option<EnvCommand>,
    /// The app whose variables to list.
    #[arg(required = true)]
    pub name: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Set variables and redeploy the app with them.
    Set {
        name: String,
        /// One or more variables.
        #[arg(required = true, value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// Remove variables and redeploy the app without them.
    #[command(after_help = "\
Examples:
  minicloud apps env unset blog FEATURE_X
  minicloud apps env unset blog 'FEATURE_*'     # every variable starting with FEATURE_
  minicloud apps env unset blog --all")]
    Unset {
        name: String,
        /// Names, or patterns where `*` stands for any characters (quote them for the shell).
        #[arg(required_unless_present = "all", value_name = "KEY|PATTERN")]
        keys: Vec<String>,
        /// Every variable of the app's own.
        #[arg(long, conflicts_with = "keys")]
        all: bool,
    },
}

#[derive(Subcommand)]
pub enum DomainsCommand {
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
