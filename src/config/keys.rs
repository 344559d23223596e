//! The key table: every setting of `minicloud serve`, written once. The config file key, the
//! `MINICLOUD_*` variable, the `serve` flag and its help, the default, whether errors may
//! repeat the value, and the parser all come from one entry here; `Sources`, `--help`, the
//! error messages and the README check (below) read nothing else.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use minicloud_proxy::Hostname;

use super::parse::{
    acme_directory, acme_email, admin_password, admin_token, boolean, connections, container_names,
    domain, minutes_or_never, non_empty_path, port, seconds, subnet_pool, threads,
};
use super::s3;
use super::{Invalid, LogFormat, Sources};
use crate::model::secret::Secret;
use crate::services::{self, mariadb, rabbitmq};

/// Pingora ends every handshake after 60 s itself: a longer deadline would never be met.
fn handshake_seconds(v: &str) -> Result<Duration, String> {
    match seconds(v, 1)? {
        d if d <= Duration::from_secs(60) => Ok(d),
        _ => Err("expected whole seconds from 1 to 60 (Pingora ends a handshake at 60 s)".into()),
    }
}

fn non_empty(v: &str) -> Result<String, String> {
    if v.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(v.trim().to_owned())
    }
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The config file key. The environment variable is `MINICLOUD_` and this in upper case;
    /// the flag, when there is one, is `--` and this with '-' for '_'.
    pub name: &'static str,
    /// The value used when no source gives one.
    pub default: Option<&'static str>,
    /// How `--help` describes the default when it is not a literal value.
    pub default_text: Option<&'static str>,
    /// `serve` has a flag for this key, with this value name.
    pub flag: Option<&'static str>,
    /// The value carries a credential: an error about it never repeats the value.
    pub secret: bool,
    /// One line for `--help`.
    pub help: &'static str,
}

impl Key {
    const NONE: Key = Key {
        name: "",
        default: None,
        default_text: None,
        flag: None,
        secret: false,
        help: "",
    };

    /// The entry for a config file key.
    pub fn find(name: &str) -> Option<&'static Key> {
        KEYS.iter().find(|k| k.name == name)
    }

    /// `MINICLOUD_DATA_DIR` for `data_dir`.
    pub fn env(&self) -> String {
        super::env_name(self.name)
    }

    /// `data-dir` for `data_dir` (without the dashes in front).
    pub fn flag_name(&self) -> String {
        self.name.replace('_', "-")
    }

    /// The flag's `--help` line: what it does, its variable and its default.
    pub fn flag_help(&self) -> String {
        let mut text = format!("{} [env: {}]", self.help, self.env());
        if let Some(default) = self.default.or(self.default_text) {
            text.push_str(&format!(" [default: {default}]"));
        }
        text
    }
}

/// Defines [`KEYS`] and the typed result of parsing every key, from one table.
macro_rules! keys {
    ($( $name:ident: $ty:ty = $parse:expr, { $($field:ident: $value:expr),* $(,)? } )*) => {
        /// Every setting, in the order `--help` and the README list them.
        pub const KEYS: &[Key] = &[
            $( Key { name: stringify!($name), $($field: $value,)* ..Key::NONE }, )*
        ];

        /// Every setting parsed: `None` when no source gave it, or when it was invalid (and
        /// then reported).
        pub(super) struct Parsed {
            $( pub $name: Option<$ty>, )*
        }

        impl Parsed {
            pub(super) fn parse(sources: &Sources, errors: &mut Vec<Invalid>) -> Self {
                Self {
                    $( $name: sources.parse(stringify!($name), $parse, errors), )*
                }
            }
        }
    };
}

keys! {
    domain: Hostname = domain, {
        default: Some("localhost"),
        flag: Some("DOMAIN"),
        help: "Base domain: apps answer at <app>.<domain>, the admin UI at admin.<domain>.",
    }
    data_dir: PathBuf = non_empty_path, {
        default: Some("./data"),
        flag: Some("DIR"),
        help: "Where state, app storage and backups live.",
    }
    listen: IpAddr = |v: &str| v
        .parse::<IpAddr>()
        .map_err(|_| "expected an IP address, e.g. 0.0.0.0 or ::".to_string()), {
        default: Some("0.0.0.0"),
        flag: Some("IP"),
        help: "IP address the HTTP and HTTPS ports listen on.",
    }
    http_port: u16 = port, {
        default: Some("80"),
        flag: Some("PORT"),
        help: "HTTP port (ACME challenges and redirects to HTTPS).",
    }
    https_port: u16 = port, {
        default: Some("443"),
        flag: Some("PORT"),
        help: "HTTPS port.",
    }
    api_listen: SocketAddr = |v: &str| v
        .parse::<SocketAddr>()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:7780".to_string()), {
        default: Some("127.0.0.1:7780"),
        flag: Some("IP:PORT"),
        help: "The control plane API's own address, for a local CLI.",
    }
    admin_token: Secret = admin_token, {
        secret: true,
        help: "Bootstrap API token; without one, one is generated and printed once.",
    }
    admin_password: Secret = admin_password, {
        secret: true,
        help: "Password of the admin app's `admin` user; without one, one is generated and printed once.",
    }
    threads: usize = threads, {
        default_text: Some("number of CPUs"),
        flag: Some("N"),
        help: "Proxy worker threads.",
    }
    shutdown_grace: Duration = |v: &str| seconds(v, 0), {
        default: Some("5"),
        help: "Seconds in-flight requests may take to finish after SIGTERM.",
    }
    head_timeout: Duration = |v: &str| seconds(v, 1), {
        default: Some("30"),
        help: "Seconds a client may take to send a whole request head.",
    }
    tls_handshake_timeout: Duration = handshake_seconds, {
        default: Some("10"),
        help: "Seconds a client may take to finish its TLS handshake (at most 60).",
    }
    max_connections: usize = connections, {
        default: Some("1024"),
        help: "Open client connections the edge holds in total; more are closed at once.",
    }
    max_connections_per_ip: usize = connections, {
        default: Some("64"),
        help: "Open client connections the edge holds per client IP address.",
    }
    access_log: bool = boolean, {
        default: Some("true"),
        help: "Log every request.",
    }
    log_format: LogFormat = |v: &str| v.parse::<LogFormat>(), {
        default: Some("text"),
        help: "Log lines as 'text' or 'json'.",
    }
    health_timeout: Duration = |v: &str| seconds(v, 1), {
        default: Some("60"),
        help: "Seconds a new revision may take to answer its health probe.",
    }
    alert_check_interval: Duration = |v: &str| seconds(v, 1), {
        default: Some("30"),
        help: "Seconds between rounds of the alert checks (app health paths, shared services, disk, certificates), jittered.",
    }
    alert_remind_minutes: Option<Duration> = minutes_or_never, {
        default: Some("240"),
        help: "Minutes after which an incident still open is told again; 0 for never.",
    }
    pull_timeout: Duration = |v: &str| seconds(v, 10), {
        default: Some("900"),
        help: "Seconds an image pull may take in all, so a stalled registry cannot hold an app.",
    }
    min_free_mb: u64 = |v: &str| v
        .parse::<u64>()
        .map_err(|_| "expected a whole number of MiB, e.g. 1024".to_string()), {
        default: Some("1024"),
        help: "MiB a deploy that pulls needs free on the data dir's and Docker's disk.",
    }
    backup_schedule: bool = boolean, {
        default: Some("true"),
        help: "Back up every app with a database or storage daily, at a minute spread by its name.",
    }
    backup_before_deploy: bool = boolean, {
        default: Some("true"),
        help: "Back up an app with a database before a deploy replaces its image with a new one.",
    }
    backup_s3_endpoint: String = s3::parse_endpoint, {
        help: "S3-compatible server every backup is also copied to, e.g. https://s3.eu-central-1.amazonaws.com; none: local only.",
    }
    backup_s3_region: String = s3::parse_region, {
        default: Some("us-east-1"),
        help: "The S3 bucket's region.",
    }
    backup_s3_bucket: String = s3::parse_bucket, {
        help: "The S3 bucket (made by the first backup if it does not exist and the key may).",
    }
    backup_s3_prefix: String = s3::parse_prefix, {
        default: Some("minicloud"),
        help: "Path inside the bucket of the restic repository.",
    }
    backup_s3_access_key: String = |v: &str| non_empty(v), {
        help: "The S3 access key id.",
    }
    backup_s3_secret_key: Secret = |v: &str| non_empty(v).map(Secret::new), {
        secret: true,
        help: "The S3 secret key.",
    }
    backup_s3_path_style: bool = boolean, {
        default: Some("false"),
        help: "Address the bucket in the path (endpoint/bucket) rather than the host name; most servers other than AWS need true.",
    }
    audit_retention_days: u32 = |v: &str| match v.parse::<u32>() {
        Ok(n) if (1..=3650).contains(&n) => Ok(n),
        _ => Err("expected whole days from 1 to 3650".to_string()),
    }, {
        default: Some("90"),
        help: "Days the audit log keeps each entry.",
    }
    acme_email: String = acme_email, {
        help: "Contact for the ACME account; certificates are ordered only once it is set.",
    }
    acme_directory: String = acme_directory, {
        default: Some("letsencrypt"),
        help: "'letsencrypt', 'letsencrypt-staging' or an https:// ACME directory URL.",
    }
    acme_ca_root: PathBuf = non_empty_path, {
        help: "PEM file of roots trusted for the ACME server's own HTTPS.",
    }
    mariadb_url: (Secret, String) = mariadb::parse_admin_url, {
        secret: true,
        help: "The shared MariaDB's admin URL, mysql://USER:PASSWORD@HOST[:PORT].",
    }
    mariadb_app_host: String = |v: &str| services::app_host(v, mariadb::DEFAULT_PORT), {
        help: "MariaDB's HOST[:PORT] as apps reach it.",
    }
    rabbitmq_api: (url::Url, String, Secret) = rabbitmq::parse_api_url, {
        secret: true,
        help: "The shared RabbitMQ's management API, http://USER:PASSWORD@HOST:15672.",
    }
    rabbitmq_app_host: String = |v: &str| services::app_host(v, rabbitmq::DEFAULT_PORT), {
        help: "RabbitMQ's HOST[:PORT] as apps reach it over AMQP.",
    }
    app_subnets: ipnet::Ipv4Net = subnet_pool, {
        default: Some(crate::docker::networks::DEFAULT_APP_SUBNETS),
        help: "IPv4 pool each app's own network takes a /26 of.",
    }
    app_network_peers: Vec<String> = container_names, {
        help: "Containers that join every app network (under compose: minicloud,mariadb,rabbitmq).",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's configuration table: each row's keys, env names and (literal) defaults.
    fn readme_rows() -> Vec<(String, String, String)> {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### Configuration")
            .nth(1)
            .expect("the README has a Configuration section");
        let mut rows = Vec::new();
        for line in section.lines().skip_while(|l| !l.starts_with('|')) {
            let Some(line) = line.strip_prefix('|') else {
                break;
            };
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 3 || cells[0].starts_with("---") || cells[0] == "file key / flag" {
                continue;
            }
            // `a` / `b` in one cell are two keys; the first backticked word of each part counts.
            let parts = |cell: &str| -> Vec<String> {
                cell.split(" / ")
                    .map(|p| p.split('`').nth(1).unwrap_or_default().to_owned())
                    .collect()
            };
            let (keys, envs, defaults) = (parts(cells[0]), parts(cells[1]), parts(cells[2]));
            assert_eq!(keys.len(), envs.len(), "README row: {line}");
            for (i, (key, env)) in keys.into_iter().zip(envs).enumerate() {
                let default = defaults.get(i).cloned().unwrap_or_default();
                rows.push((key, env, default));
            }
        }
        rows
    }

    #[test]
    fn the_readme_lists_exactly_these_keys() {
        let rows = readme_rows();
        let listed: Vec<&str> = rows.iter().map(|(k, _, _)| k.as_str()).collect();
        let mut want: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut got = listed.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(
            got, want,
            "README's configuration table and config::KEYS differ"
        );
        for (name, env, default) in &rows {
            let key = Key::find(name).unwrap();
            assert_eq!(*env, key.env(), "README's env name for {name}");
            if let Some(d) = key.default {
                assert_eq!(default, d, "README's default for {name}");
            }
        }
    }

    #[test]
    fn every_default_parses_and_keys_are_unique() {
        let mut errors = Vec::new();
        Parsed::parse(&Sources::new(), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len());
    }

    #[test]
    fn flag_help_names_the_variable_and_the_default() {
        let help = |name| Key::find(name).unwrap().flag_help();
        assert_eq!(
            help("https_port"),
            "HTTPS port. [env: MINICLOUD_HTTPS_PORT] [default: 443]"
        );
        assert_eq!(
            help("threads"),
            "Proxy worker threads. [env: MINICLOUD_THREADS] [default: number of CPUs]"
        );
    }

    #[test]
    fn a_handshake_deadline_past_pingoras_own_is_refused() {
        assert_eq!(handshake_seconds("60"), Ok(Duration::from_secs(60)));
        let err = handshake_seconds("61").unwrap_err();
        assert!(err.contains("1 to 60"), "{err}");
        assert!(handshake_seconds("0").is_err());
    }
}
