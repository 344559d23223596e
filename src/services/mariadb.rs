//! MariaDB: per app, database `app_<name>` and user `app_<name>`@`%` with every privilege on
//! that database and nothing else. One admin connection per operation (operations are rare;
//! a pool would hold connections that MariaDB's `wait_timeout` closes under it).

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use minicloud_proxy::error_chain;

use super::error::{root_cause, scrub};
use super::names::{quote_grant_db, quote_ident, quote_str, sql_account, ServiceName};
use super::{account, app_url, Credentials, Provisioner, ServiceError};
use crate::model::name::AppName;
use crate::model::secret::Secret;
use crate::model::ServiceKind;
use crate::store::Store;

pub const SERVICE: &str = "MariaDB";
pub const DEFAULT_PORT: u16 = 3306;
/// How long connecting to the admin account may take before the service counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one statement may take (a `DROP DATABASE` of a big database is the slow one).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(120);
/// `ER_NONEXISTING_GRANT`: a `REVOKE` of a grant the account does not hold.
const NO_SUCH_GRANT: u16 = 1141;

/// Where minicloud administers MariaDB, and what apps are told.
#[derive(Debug, Clone)]
pub struct MariaDbSettings {
    /// `mysql://USER:PASS@HOST[:PORT]`: a user that may create databases and users and grant.
    pub admin_url: Secret,
    /// `host:port` of the admin connection, for messages: no credentials.
    pub address: String,
    /// `host:port` that apps reach (`mariadb:3306` under docker-compose).
    pub app_host: String,
}

/// Checks an admin URL; returns it (as a secret) and its credential-free address.
/// The error never repeats the URL, which carries a password.
pub fn parse_admin_url(value: &str) -> Result<(Secret, String), String> {
    let url = url::Url::parse(value)
        .map_err(|e| format!("expected mysql://USER:PASSWORD@HOST[:PORT] ({e})"))?;
    if url.scheme() != "mysql" {
        return Err("expected a mysql:// URL, e.g. mysql://root:PASSWORD@127.0.0.1:3306".into());
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the URL has no host")?;
    if url.username().is_empty() {
        return Err("the URL has no user (mysql://USER:PASSWORD@HOST)".into());
    }
    Opts::from_url(value).map_err(|_| "mysql_async does not accept this URL's parameters")?;
    let address = format!("{host}:{}", url.port().unwrap_or(DEFAULT_PORT));
    Ok((Secret::new(value), address))
}

/// The MariaDB provisioner. Cheap to clone.
#[derive(Clone)]
pub struct MariaDb {
    pub(super) settings: MariaDbSettings,
    pub(super) store: Store,
}

impl MariaDb {
    pub fn new(settings: MariaDbSettings, store: Store) -> Self {
        Self { settings, store }
    }

    pub fn address(&self) -> &str {
        &self.settings.address
    }

    fn unreachable(&self, why: String) -> ServiceError {
        ServiceError::Unreachable {
            service: SERVICE,
            address: self.settings.address.clone(),
            why,
        }
    }

    fn map_err(&self, e: mysql_async::Error, secrets: &[&str]) -> ServiceError {
        match e {
            mysql_async::Error::Server(s) => ServiceError::Refused {
                service: SERVICE,
                address: self.settings.address.clone(),
                said: scrub(&format!("{} (error {})", s.message, s.code), secrets),
            },
            mysql_async::Error::Io(io) => self.unreachable(scrub(&root_cause(&io), secrets)),
            // The URL error would quote the URL, password and all.
            mysql_async::Error::Url(_) => self.unreachable("the admin URL is invalid".into()),
            other => ServiceError::Refused {
                service: SERVICE,
                address: self.settings.address.clone(),
                said: scrub(&error_chain(&other), secrets),
            },
        }
    }

    async fn connect(&self) -> Result<Conn, ServiceError> {
        let admin = self.settings.admin_url.expose();
        let opts = Opts::from_url(admin)
            .map_err(|_| self.unreachable("the admin URL is invalid".into()))?;
        let secrets = [opts.pass().unwrap_or_default()];
        match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts.clone())).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(mysql_async::Error::Server(s))) => Err(ServiceError::Refused {
                service: SERVICE,
                address: self.settings.address.clone(),
                said: scrub(&format!("{} (error {})", s.message, s.code), &secrets),
            }),
            Ok(Err(e)) => Err(self.unreachable(scrub(&root_cause(&e), &secrets))),
            Err(_) => {
                Err(self.unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))
            }
        }
    }

    /// Runs statements in order on one admin connection; `secret` is scrubbed from any error.
    async fn run(&self, statements: &[String], secret: &str) -> Result<(), ServiceError> {
        let mut conn = self.connect().await?;
        let mut result = Ok(());
        for sql in statements {
            match tokio::time::timeout(STATEMENT_TIMEOUT, conn.query_drop(sql.as_str())).await {
                Ok(Ok(())) => {}
                // Revoking what is not granted is the normal case of `apply`'s clean-up.
                Ok(Err(mysql_async::Error::Server(s)))
                    if s.code == NO_SUCH_GRANT && sql.starts_with("REVOKE ") => {}
                Ok(Err(e)) => {
                    result = Err(self.map_err(e, &[secret]));
                    break;
                }
                Err(_) => {
                    result = Err(self.unreachable(format!(
                        "a statement got no answer within {}s",
                        STATEMENT_TIMEOUT.as_secs()
                    )));
                    break;
                }
            }
        }
        // Closing politely is best effort: the work is done (or failed) either way.
        let _ = conn.disconnect().await;
        result
    }

    async fn apply(&self, app: &AppName, fresh: bool) -> Result<Credentials, ServiceError> {
        let name = ServiceName::for_app(app)?;
        let db = quote_ident(&name);
        let who = sql_account(&name)?;
        let rec = account(&self.store, app, ServiceKind::Mariadb, &name, fresh)?;
        let pw = quote_str(rec.password.expose())?;
        let statements = [
            format!("CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
            format!("CREATE USER IF NOT EXISTS {who} IDENTIFIED BY {pw}"),
            // The stored password wins over whatever the server had (a rotate that stored a
            // new password and failed before reaching the server, a user made by hand).
            format!("ALTER USER {who} IDENTIFIED BY {pw}"),
            // Versions before the escaping granted on the unescaped name, a pattern that
            // matches other apps' databases (`app_bl_g` matches `app_blog`): that grant goes,
            // on every ensure, so an existing installation is narrowed at its next deploy.
            format!("REVOKE ALL PRIVILEGES ON {db}.* FROM {who}"),
            format!("GRANT ALL PRIVILEGES ON {}.* TO {who}", quote_grant_db(&name)),
        ];
        self.run(&statements, rec.password.expose()).await?;
        tracing::info!(%app, database = %name, "MariaDB database ensured");
        Ok(Credentials {
            user: rec.user,
            password: rec.password,
            host: self.settings.app_host.clone(),
            resource: name.as_str().to_owned(),
        })
    }
}

/// A scratch database and its account, both named `name` (hex digits after `verify_`, so
/// safe to quote as they are).
pub struct Scratch {
    pub name: ServiceName,
    pub password: Secret,
}

impl MariaDb {
    /// Where minicloud administers MariaDB (backups dump from here).
    pub fn settings(&self) -> &MariaDbSettings {
        &self.settings
    }

    /// A throwaway database and an account whose grant ends at it, for checking a dump
    /// (`verify_<hex>`: no app's `app_…` name can be it). [`MariaDb::drop_scratch`] removes
    /// both.
    pub async fn create_scratch(&self) -> Result<Scratch, ServiceError> {
        let db = ServiceName::scratch();
        let (ident, grant_db, user) = (quote_ident(&db), quote_grant_db(&db), sql_account(&db)?);
        let password = super::new_password();
        let pw = quote_str(password.expose())?;
        let statements = [
            format!("CREATE DATABASE {ident} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
            format!("CREATE USER {user} IDENTIFIED BY {pw}"),
            // Escaped: `_` in a grant's database name is a wildcard.
            format!("GRANT ALL PRIVILEGES ON {grant_db}.* TO {user}"),
        ];
        let scratch = Scratch { name: db, password };
        if let Err(e) = self.run(&statements, scratch.password.expose()).await {
            let _ = self.drop_scratch(&scratch).await;
            return Err(e);
        }
        Ok(scratch)
    }

    pub async fn drop_scratch(&self, scratch: &Scratch) -> Result<(), ServiceError> {
        let statements = [
            format!("DROP DATABASE IF EXISTS {}", quote_ident(&scratch.name)),
            format!("DROP USER IF EXISTS {}", sql_account(&scratch.name)?),
        ];
        self.run(&statements, "").await
    }

    /// Logs in as the admin and runs nothing: is the server there and the login good?
    pub async fn ping(&self) -> Result<(), ServiceError> {
        self.run(&["SELECT 1".to_owned()], "").await
    }

    /// Drops the app's database and makes it again, empty, with the app's grant: what a
    /// restore loads a dump into. The account and its password stay.
    pub async fn recreate_database(&self, app: &AppName) -> Result<(), ServiceError> {
        let name = ServiceName::for_app(app)?;
        let statements = [format!("DROP DATABASE IF EXISTS {}", quote_ident(&name))];
        self.run(&statements, "").await?;
        self.apply(app, false).await.map(drop)
    }
}

impl Provisioner for MariaDb {
    type Grant = Credentials;
    const KIND: ServiceKind = ServiceKind::Mariadb;

    async fn ensure(&self, app: &AppName) -> Result<Credentials, ServiceError> {
        self.apply(app, false).await
    }

    fn env(&self, grant: &Credentials) -> BTreeMap<String, String> {
        BTreeMap::from([("DATABASE_URL".to_owned(), app_url("mysql", grant))])
    }

    async fn rotate(&self, app: &AppName) -> Result<Credentials, ServiceError> {
        self.apply(app, true).await
    }

    async fn remove(&self, app: &AppName) -> Result<(), ServiceError> {
        let name = ServiceName::for_app(app)?;
        let statements = [
            format!("DROP DATABASE IF EXISTS {}", quote_ident(&name)),
            format!("DROP USER IF EXISTS {}", sql_account(&name)?),
        ];
        self.run(&statements, "").await?;
        self.store.delete_service(app, ServiceKind::Mariadb)?;
        tracing::info!(%app, database = %name, "MariaDB database and user dropped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls_are_checked_without_echoing_them() {
        let (url, address) = parse_admin_url("mysql://root:s3cret@127.0.0.1:3307").unwrap();
        assert_eq!(url.expose(), "mysql://root:s3cret@127.0.0.1:3307");
        assert_eq!(address, "127.0.0.1:3307");
        assert_eq!(
            parse_admin_url("mysql://root:s3cret@mariadb").unwrap().1,
            "mariadb:3306"
        );
        for bad in [
            "http://root:s3cret@h",
            "mysql://:s3cret@h",
            "mysql://root:s3cret@",
            "nonsense s3cret",
        ] {
            let why = parse_admin_url(bad).unwrap_err();
            assert!(!why.contains("s3cret"), "{why}");
        }
    }
}
