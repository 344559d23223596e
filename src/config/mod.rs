//! One `Config` for `minicloud serve`: a TOML file < `MINICLOUD_*` environment < flags,
//! validated once at start. Every bad value is reported, all at once, with where it came from.
//!
//! Sources are plain maps, so tests pass them directly and never touch the process
//! environment. The settings themselves are listed once, in [`keys::KEYS`]; their value
//! parsers are in `parse`.

pub mod keys;
mod parse;
pub mod s3;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use minicloud_proxy::{Hostname, Limits};

use crate::docker::AppNetworks;
use crate::model::secret::Secret;
use crate::services::{rabbitmq, MariaDbSettings, RabbitMqSettings, ServicesSettings};
use keys::{Key, Parsed, KEYS};
use s3::S3Settings;

/// Validated settings of a running minicloud.
#[derive(Debug, Clone)]
pub struct Config {
    /// Apps answer at `<app>.<domain>`, the admin UI and API at `admin.<domain>`.
    pub domain: Hostname,
    /// Everything minicloud keeps: state store, app storage, backups.
    pub data_dir: PathBuf,
    /// Address the edge's HTTP and HTTPS ports listen on.
    pub listen: IpAddr,
    pub http_port: u16,
    pub https_port: u16,
    /// The control plane's own HTTP listener. Loopback by default: the world reaches it only
    /// through the edge at `admin.<domain>`, a local CLI directly.
    pub api_listen: SocketAddr,
    /// Bootstrap API token; when absent and no token exists, one is generated and printed once.
    pub admin_token: Option<Secret>,
    /// The admin app's `admin` password; when absent and no user exists, one is generated.
    pub admin_password: Option<Secret>,
    /// Proxy worker threads.
    pub threads: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Connection caps and the request-head deadline of the edge.
    pub limits: Limits,
    pub access_log: bool,
    pub log_format: LogFormat,
    /// Contact for the ACME account; certificates are ordered only once it is set.
    pub acme_email: Option<String>,
    /// The ACME directory URL (named shortcuts resolved).
    pub acme_directory: String,
    /// PEM file of roots trusted for the ACME server's own HTTPS (a private or test CA).
    pub acme_ca_root: Option<PathBuf>,
    /// How long a new revision may take to answer its health probe.
    pub health_timeout: Duration,
    /// How long an image pull may take in all.
    pub pull_timeout: Duration,
    /// Free MiB a deploy that pulls needs on the data dir's and Docker's disk.
    pub min_free_mb: u64,
    /// Daily scheduled backups of every app with data.
    pub backup_schedule: bool,
    /// A backup of an app with a database before a new image replaces the serving one.
    pub backup_before_deploy: bool,
    /// The off-site destination every run is also copied to; `None`: local only.
    pub backup_s3: Option<std::sync::Arc<S3Settings>>,
    /// Time between rounds of the alert checks.
    pub alert_check_interval: Duration,
    /// When an incident still open is told again; `None`: never.
    pub alert_remind_after: Option<Duration>,
    /// Days the audit log keeps each entry.
    pub audit_retention_days: u32,
    /// The shared MariaDB; apps that need a database cannot deploy without it.
    pub mariadb: Option<MariaDbSettings>,
    /// The shared RabbitMQ; apps that need a message bus cannot deploy without it.
    pub rabbitmq: Option<RabbitMqSettings>,
    /// Each app's own network: its subnet pool and the containers that join it.
    pub app_networks: AppNetworks,
}

/// Let's Encrypt's production directory: the default.
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous limits).
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected 'text' or 'json'".into()),
        }
    }
}

/// Where a value came from, so an error can say which one to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Env,
    Flag,
}

/// One invalid setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: &'static str,
    pub origin: Origin,
    pub value: String,
    pub why: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.origin {
            Origin::Default => format!("default {}", self.key),
            Origin::File => format!("config file key '{}'", self.key),
            Origin::Env => env_name(self.key),
            Origin::Flag => format!("--{}", self.key.replace('_', "-")),
        };
        if Key::find(self.key).is_some_and(|k| k.secret) {
            // Never echo a secret back, even a bad one.
            write!(f, "{source}: {}", self.why)
        } else {
            write!(f, "{source}: '{}': {}", self.value, self.why)
        }
    }
}

/// Everything wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read config file {path}: {why}")]
    File { path: String, why: String },
    #[error("invalid configuration:\n{}", .0.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Invalid>),
}

/// `MINICLOUD_DATA_DIR` for `data_dir`.
pub fn env_name(key: &str) -> String {
    format!("MINICLOUD_{}", key.to_ascii_uppercase())
}

/// Raw values by key, later sources overriding earlier ones.
#[derive(Debug, Default)]
pub struct Sources {
    values: BTreeMap<&'static str, (String, Origin)>,
    unknown: Vec<Invalid>,
}

impl Sources {
    pub fn new() -> Self {
        let mut s = Self::default();
        for key in KEYS {
            if let Some(default) = key.default {
                s.values
                    .insert(key.name, (default.to_string(), Origin::Default));
            }
        }
        s
    }

    /// Layers a TOML config file's text.
    pub fn file(mut self, path: &str, text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.to_string(),
                why: e.message().to_string(),
            })?;
        for (key, value) in table {
            let value = match value {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            match Key::find(&key) {
                Some(k) => {
                    self.values.insert(k.name, (value, Origin::File));
                }
                None => self.unknown.push(Invalid {
                    key: "config",
                    origin: Origin::File,
                    value: key,
                    why: format!("unknown key (known: {})", known_keys()),
                }),
            }
        }
        Ok(self)
    }

    /// Layers the TOML config file at `path`.
    pub fn read_file(self, path: &std::path::Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => self.file(&name, &text),
            Err(e) => Err(ConfigError::File {
                path: name,
                why: e.to_string(),
            }),
        }
    }

    /// Layers environment variables (pass the process environment or a test map).
    pub fn env<'a>(mut self, vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (name, value) in vars {
            if let Some(k) = KEYS.iter().find(|k| k.env() == name) {
                self.values.insert(k.name, (value.to_string(), Origin::Env));
            }
        }
        self
    }

    /// Layers this process's `MINICLOUD_*` environment: the one place minicloud reads its
    /// environment (`clippy.toml` keeps it so).
    #[allow(clippy::disallowed_methods)]
    pub fn process_env(self) -> Self {
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("MINICLOUD_"))
            .collect();
        self.env(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Layers flags given on the command line, by key.
    pub fn flags<'a>(mut self, flags: impl IntoIterator<Item = (&'static str, &'a str)>) -> Self {
        for (key, value) in flags {
            self.values.insert(key, (value.to_string(), Origin::Flag));
        }
        self
    }

    /// Validates every value and builds the `Config`, or reports every problem.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let mut errors = self.unknown.clone();
        let p = Parsed::parse(&self, &mut errors);
        // An app host alone would be silently ignored: say which setting is missing.
        for (host_key, admin_key) in [
            ("mariadb_app_host", "mariadb_url"),
            ("rabbitmq_app_host", "rabbitmq_api"),
        ] {
            if let (Some((value, origin)), None) =
                (self.values.get(host_key), self.values.get(admin_key))
            {
                errors.push(Invalid {
                    key: host_key,
                    origin: *origin,
                    value: value.clone(),
                    why: format!("has no effect without {}", env_name(admin_key)),
                });
            }
        }
        s3_complete(&self, &mut errors);
        if let (Some(h), Some(s), Some((value, origin))) =
            (p.http_port, p.https_port, self.values.get("https_port"))
        {
            if h == s {
                errors.push(Invalid {
                    key: "https_port",
                    origin: *origin,
                    value: value.clone(),
                    why: "must differ from the HTTP port".into(),
                });
            }
        }
        match build(p) {
            Some(config) if errors.is_empty() => Ok(config),
            // A key with a default is missing only when its value was invalid, so `errors`
            // says why.
            _ => Err(ConfigError::Invalid(errors)),
        }
    }

    /// Parses `key`'s value, if any source gave one; an invalid value is added to `errors`.
    fn parse<T>(
        &self,
        key: &'static str,
        parser: impl Fn(&str) -> Result<T, String>,
        errors: &mut Vec<Invalid>,
    ) -> Option<T> {
        let (value, origin) = self.values.get(key)?;
        parser(value)
            .map_err(|why| {
                errors.push(Invalid {
                    key,
                    origin: *origin,
                    value: value.clone(),
                    why,
                })
            })
            .ok()
    }
}

/// The S3 destination is all or nothing: an endpoint needs its bucket and keys, and those
/// (or a region, prefix or path style) without an endpoint would be silently ignored.
fn s3_complete(sources: &Sources, errors: &mut Vec<Invalid>) {
    const NEEDED: [&str; 3] = [
        "backup_s3_bucket",
        "backup_s3_access_key",
        "backup_s3_secret_key",
    ];
    const OPTIONAL: [&str; 3] = [
        "backup_s3_region",
        "backup_s3_prefix",
        "backup_s3_path_style",
    ];
    match sources.values.get("backup_s3_endpoint") {
        Some((value, origin)) => {
            let missing: Vec<String> = NEEDED
                .iter()
                .filter(|k| !sources.values.contains_key(*k))
                .map(|k| env_name(k))
                .collect();
            if !missing.is_empty() {
                errors.push(Invalid {
                    key: "backup_s3_endpoint",
                    origin: *origin,
                    value: value.clone(),
                    why: format!("needs {} too", missing.join(", ")),
                });
            }
        }
        None => {
            for key in NEEDED.iter().chain(&OPTIONAL) {
                if let Some((value, origin)) = sources.values.get(key) {
                    if *origin != Origin::Default {
                        errors.push(Invalid {
                            key,
                            origin: *origin,
                            value: value.clone(),
                            why: "has no effect without MINICLOUD_BACKUP_S3_ENDPOINT".into(),
                        });
                    }
                }
            }
        }
    }
}

/// The `Config` from parsed values: `None` when a setting that has a default is missing, which
/// happens only when its value was invalid.
fn build(p: Parsed) -> Option<Config> {
    let mariadb = p.mariadb_url.map(|(admin_url, address)| MariaDbSettings {
        // Default: apps reach MariaDB where minicloud does (true under docker-compose).
        app_host: p.mariadb_app_host.unwrap_or_else(|| address.clone()),
        admin_url,
        address,
    });
    let rabbitmq = p.rabbitmq_api.map(|(api, user, password)| {
        let default_host = format!(
            "{}:{}",
            api.host_str().unwrap_or_default(),
            rabbitmq::DEFAULT_PORT
        );
        RabbitMqSettings {
            app_host: p.rabbitmq_app_host.unwrap_or(default_host),
            api,
            user,
            password,
        }
    });
    // `resolve` reported an endpoint without its bucket or keys.
    let backup_s3 = match (
        p.backup_s3_endpoint,
        p.backup_s3_bucket,
        p.backup_s3_access_key,
        p.backup_s3_secret_key,
    ) {
        (Some(endpoint), Some(bucket), Some(access_key), Some(secret_key)) => {
            Some(std::sync::Arc::new(S3Settings {
                endpoint,
                region: p.backup_s3_region?,
                bucket,
                prefix: p.backup_s3_prefix?,
                access_key,
                secret_key,
                path_style: p.backup_s3_path_style?,
            }))
        }
        _ => None,
    };
    Some(Config {
        domain: p.domain?,
        data_dir: p.data_dir?,
        listen: p.listen?,
        http_port: p.http_port?,
        https_port: p.https_port?,
        api_listen: p.api_listen?,
        admin_token: p.admin_token,
        admin_password: p.admin_password,
        threads: p
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        shutdown_grace: p.shutdown_grace?,
        limits: Limits {
            max_connections: p.max_connections?,
            max_connections_per_ip: p.max_connections_per_ip?,
            head_timeout: p.head_timeout?,
            handshake_timeout: p.tls_handshake_timeout?,
        },
        access_log: p.access_log?,
        log_format: p.log_format?,
        acme_email: p.acme_email,
        acme_directory: p.acme_directory?,
        acme_ca_root: p.acme_ca_root,
        health_timeout: p.health_timeout?,
        pull_timeout: p.pull_timeout?,
        min_free_mb: p.min_free_mb?,
        backup_schedule: p.backup_schedule?,
        backup_before_deploy: p.backup_before_deploy?,
        backup_s3,
        alert_check_interval: p.alert_check_interval?,
        alert_remind_after: p.alert_remind_minutes?,
        audit_retention_days: p.audit_retention_days?,
        mariadb,
        rabbitmq,
        app_networks: AppNetworks {
            pool: p.app_subnets?,
            peers: p.app_network_peers.unwrap_or_default(),
        },
    })
}

fn known_keys() -> String {
    KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

impl Config {
    /// `admin.<domain>`: where the admin UI and API are served.
    pub fn admin_host(&self) -> Hostname {
        // The domain leaves room for any app name (`parse::domain`), and "admin" is shorter.
        #[allow(clippy::expect_used)]
        self.domain
            .child("admin")
            .expect("admin.<valid domain> is a valid host name")
    }

    /// The URL people use for `host`: `https://host`, with the port when it is not 443.
    pub fn https_url(&self, host: &Hostname) -> String {
        match self.https_port {
            443 => format!("https://{host}"),
            port => format!("https://{host}:{port}"),
        }
    }

    /// What the app services are built from.
    pub fn services(&self) -> ServicesSettings {
        ServicesSettings {
            mariadb: self.mariadb.clone(),
            rabbitmq: self.rabbitmq.clone(),
            data_dir: self.data_dir.clone(),
        }
    }

    pub fn state_path(&self) -> PathBuf {
        self.data_dir.join("minicloud").join("state.redb")
    }

    /// Pingora's graceful-upgrade socket: beside the state file (a 0700 directory), not in
    /// `/tmp`, where any local user could bind it first and be handed the listening sockets.
    pub fn upgrade_socket_path(&self) -> PathBuf {
        self.data_dir.join("minicloud").join("upgrade.sock")
    }

    /// Pingora's pid file, beside the upgrade socket.
    pub fn pid_file_path(&self) -> PathBuf {
        self.data_dir.join("minicloud").join("minicloud.pid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_dev_friendly() {
        let c = Sources::new().resolve().unwrap();
        assert_eq!(c.domain.as_str(), "localhost");
        assert_eq!(c.admin_host().as_str(), "admin.localhost");
        assert_eq!((c.http_port, c.https_port), (80, 443));
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.api_listen.to_string(), "127.0.0.1:7780");
        assert!(c.admin_token.is_none());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(c.threads, cpus, "threads default to the number of CPUs");
        let c = Sources::new()
            .env([("MINICLOUD_THREADS", "3")])
            .resolve()
            .unwrap();
        assert_eq!(c.threads, 3);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let c = Sources::new()
            .file(
                "f.toml",
                "domain = \"file.example\"\nhttp_port = 81\nhttps_port = 8443\n",
            )
            .unwrap()
            .env([
                ("MINICLOUD_HTTP_PORT", "82"),
                ("MINICLOUD_DOMAIN", "env.example"),
            ])
            .flags([("domain", "flag.example")])
            .resolve()
            .unwrap();
        assert_eq!(c.domain.as_str(), "flag.example");
        assert_eq!(c.http_port, 82);
        assert_eq!(c.https_port, 8443);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_source() {
        let err = Sources::new()
            .file("f.toml", "threads = 0\nnonsense = 1\n")
            .unwrap()
            .env([
                ("MINICLOUD_HTTP_PORT", "http"),
                ("MINICLOUD_ADMIN_TOKEN", "short-secret"),
                ("MINICLOUD_UNRELATED", "ignored"),
            ])
            .flags([("domain", "bad domain"), ("listen", "nowhere")])
            .resolve()
            .unwrap_err();
        let text = err.to_string();
        for expected in [
            "MINICLOUD_HTTP_PORT: 'http': expected a port number",
            "--domain: 'bad domain'",
            "--listen: 'nowhere'",
            "config file key 'threads': '0'",
            "'nonsense': unknown key",
            "MINICLOUD_ADMIN_TOKEN: a token must be at least 32 characters",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert!(
            !text.contains("short-secret"),
            "a secret was echoed:\n{text}"
        );
    }

    #[test]
    fn acme_is_off_by_default_and_shortcuts_resolve() {
        let c = Sources::new().resolve().unwrap();
        assert!(c.acme_email.is_none());
        assert_eq!(c.acme_directory, LETSENCRYPT);
        let c = Sources::new()
            .env([
                ("MINICLOUD_ACME_EMAIL", "me@example.com"),
                ("MINICLOUD_ACME_DIRECTORY", "letsencrypt-staging"),
                ("MINICLOUD_ACME_CA_ROOT", "/etc/ca.pem"),
            ])
            .resolve()
            .unwrap();
        assert_eq!(c.acme_email.as_deref(), Some("me@example.com"));
        assert_eq!(c.acme_directory, LETSENCRYPT_STAGING);
        assert_eq!(c.acme_ca_root, Some(PathBuf::from("/etc/ca.pem")));
        let err = Sources::new()
            .env([
                ("MINICLOUD_ACME_EMAIL", "nobody"),
                ("MINICLOUD_ACME_DIRECTORY", "http://ca.test/dir"),
            ])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("MINICLOUD_ACME_EMAIL: 'nobody'"), "{err}");
        assert!(err.contains("MINICLOUD_ACME_DIRECTORY"), "{err}");
    }

    #[test]
    fn services_are_optional_and_their_secrets_never_echoed() {
        let c = Sources::new().resolve().unwrap();
        assert!(c.mariadb.is_none() && c.rabbitmq.is_none());
        let c = Sources::new()
            .env([
                ("MINICLOUD_MARIADB_URL", "mysql://root:pw1@mariadb"),
                ("MINICLOUD_RABBITMQ_API", "http://admin:pw2@rabbitmq:15672"),
                ("MINICLOUD_RABBITMQ_APP_HOST", "172.18.0.1"),
            ])
            .resolve()
            .unwrap();
        let db = c.mariadb.as_ref().unwrap();
        assert_eq!(
            (db.address.as_str(), db.app_host.as_str()),
            ("mariadb:3306", "mariadb:3306")
        );
        let mq = c.rabbitmq.as_ref().unwrap();
        assert_eq!(mq.api.as_str(), "http://rabbitmq:15672/");
        assert_eq!(mq.app_host, "172.18.0.1:5672");
        let debug = format!("{c:?}");
        assert!(!debug.contains("pw1") && !debug.contains("pw2"), "{debug}");

        let err = Sources::new()
            .file("f.toml", "mariadb_url = \"postgres://root:pw1@db\"\n")
            .unwrap()
            .env([
                ("MINICLOUD_RABBITMQ_API", "http://rabbitmq:15672"),
                ("MINICLOUD_MARIADB_APP_HOST", "db host"),
            ])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config file key 'mariadb_url': expected a mysql://"),
            "{err}"
        );
        assert!(
            err.contains("MINICLOUD_RABBITMQ_API: the URL needs the admin's credentials"),
            "{err}"
        );
        assert!(
            err.contains("MINICLOUD_MARIADB_APP_HOST: 'db host'"),
            "{err}"
        );
        assert!(!err.contains("pw1"), "{err}");
        let err = Sources::new()
            .env([("MINICLOUD_RABBITMQ_APP_HOST", "rabbitmq")])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has no effect without MINICLOUD_RABBITMQ_API"),
            "{err}"
        );
    }

    #[test]
    fn the_s3_destination_is_all_or_nothing_and_its_secret_never_echoed() {
        assert!(Sources::new().resolve().unwrap().backup_s3.is_none());
        let full = [
            ("MINICLOUD_BACKUP_S3_ENDPOINT", "http://127.0.0.1:9000/"),
            ("MINICLOUD_BACKUP_S3_BUCKET", "backups"),
            ("MINICLOUD_BACKUP_S3_ACCESS_KEY", "AKID"),
            ("MINICLOUD_BACKUP_S3_SECRET_KEY", "s3cret-value"),
            ("MINICLOUD_BACKUP_S3_PATH_STYLE", "true"),
        ];
        let c = Sources::new().env(full).resolve().unwrap();
        let s3 = c.backup_s3.as_ref().unwrap();
        assert_eq!(
            s3.repository(),
            "s3:http://127.0.0.1:9000/backups/minicloud"
        );
        assert_eq!(s3.region, "us-east-1");
        assert!(s3.path_style);
        assert!(!format!("{c:?}").contains("s3cret-value"));

        let err = Sources::new()
            .env([("MINICLOUD_BACKUP_S3_ENDPOINT", "http://127.0.0.1:9000")])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("needs MINICLOUD_BACKUP_S3_BUCKET, MINICLOUD_BACKUP_S3_ACCESS_KEY, MINICLOUD_BACKUP_S3_SECRET_KEY too"),
            "{err}"
        );
        let err = Sources::new()
            .env([
                ("MINICLOUD_BACKUP_S3_SECRET_KEY", "s3cret-value"),
                ("MINICLOUD_BACKUP_S3_BUCKET", "Not A Bucket"),
            ])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MINICLOUD_BACKUP_S3_SECRET_KEY: has no effect without MINICLOUD_BACKUP_S3_ENDPOINT"),
            "{err}"
        );
        assert!(err.contains("expected a bucket name"), "{err}");
        assert!(!err.contains("s3cret-value"), "{err}");
    }

    #[test]
    fn ports_must_differ_and_files_must_parse() {
        let err = Sources::new()
            .flags([("http_port", "8080"), ("https_port", "8080")])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("must differ"));
        assert!(matches!(
            Sources::new().file("f.toml", "domain = "),
            Err(ConfigError::File { .. })
        ));
    }
}
