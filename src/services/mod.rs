//! Services: what an app's declared needs turn into. One MariaDB database, one RabbitMQ vhost
//! and one storage directory per app, each with its own credentials, none reaching another's.
//!
//! One trait, [`Provisioner`], three implementations: [`MariaDb`], [`RabbitMq`], [`Storage`].
//! [`Services`] holds the three for one minicloud and is what the deploy pipeline calls
//! ([`Services::provision`] before any container starts, [`Services::remove`] when an app is
//! removed with its data, [`Services::rotate`] for new credentials).
//!
//! **The store is the truth about credentials.** `ensure` reads the app's record from the state
//! store (making one, with a fresh random password, the first time, and writing it *before*
//! touching the server), then makes the server agree: create what is missing, set the stored
//! password, grant. So `ensure` is idempotent, and a crash or a failure between the store and
//! the server is repaired by the next `ensure`. `rotate` is "store a new password, ensure".
//!
//! This module does not own the app name's rule (`apps::name`), the environment as a whole
//! (`apps::env`), or when provisioning happens (`apps::deploy`). Credentials never reach a log
//! or an error: they are [`Secret`]s, and server messages are scrubbed of them.

mod error;
pub mod mariadb;
pub mod names;
pub mod rabbitmq;
pub mod storage;
pub mod tree;
mod view;

pub use view::ServiceView;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;

use rand::distr::{Alphanumeric, SampleString};

use crate::model::name::AppName;
use crate::model::now;
use crate::model::secret::Secret;
use crate::model::{Need, ServiceKind};
use crate::store::{ServiceRecord, Store};

pub use error::ServiceError;
pub use mariadb::{MariaDb, MariaDbSettings};
pub use names::ServiceName;
pub use rabbitmq::{RabbitMq, RabbitMqSettings};
pub use storage::{DirOwner, Storage};

/// Length of generated passwords: alphanumeric, so ~238 bits, and nothing to escape.
pub const PASSWORD_LEN: usize = 40;

/// One kind of service an app can be given.
///
/// `async fn` in a trait, without `dyn`: there are exactly three implementations, known at
/// compile time, and [`Services`] holds each as a concrete field, so calls are static and need
/// no boxing (no `async-trait`). The futures are declared `Send` because deploys run on spawned
/// tasks.
pub trait Provisioner {
    /// What `ensure` hands back: credentials, or a directory.
    type Grant;

    const KIND: ServiceKind;

    /// Makes the app's share exist and work; creates what is missing, keeps what exists (data
    /// is never touched). Safe to call at every deploy.
    fn ensure(
        &self,
        app: &AppName,
    ) -> impl Future<Output = Result<Self::Grant, ServiceError>> + Send;

    /// The variables the app's containers get for this grant (empty for storage, which is a
    /// mount).
    fn env(&self, grant: &Self::Grant) -> BTreeMap<String, String>;

    /// New credentials; the old ones stop working. The app must be redeployed to use them.
    fn rotate(
        &self,
        app: &AppName,
    ) -> impl Future<Output = Result<Self::Grant, ServiceError>> + Send;

    /// Deletes the app's share and its data. Only when a person removes the app *with* data.
    /// Removing what is already gone succeeds.
    fn remove(&self, app: &AppName) -> impl Future<Output = Result<(), ServiceError>> + Send;
}

/// An app's account on a shared server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
    /// What the app connects to, `host:port`.
    pub host: String,
    /// The database, or the vhost.
    pub resource: String,
}

/// What [`Services::remove`] removed and what it kept, and why, in words for a person.
#[derive(Debug, Default)]
pub struct Removal {
    pub removed: Vec<&'static str>,
    pub kept: Vec<(&'static str, ServiceError)>,
}

impl Removal {
    fn note(&mut self, what: &'static str, result: Result<(), ServiceError>) {
        match result {
            Ok(()) => self.removed.push(what),
            Err(e) => self.kept.push((what, e)),
        }
    }
}

/// What a deploy gets from provisioning.
#[derive(Default)]
pub struct Provisioned {
    /// `DATABASE_URL`, `AMQP_URL`, `RABBITMQ_URL` as needed.
    pub env: BTreeMap<String, String>,
    /// The host directory to mount at `/data`, when storage is needed.
    pub data_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioned")
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

/// What [`Services`] is built from; the configuration builds it, so this module never reads
/// the configuration itself.
#[derive(Debug, Clone)]
pub struct ServicesSettings {
    /// The shared MariaDB; apps that need a database cannot deploy without it.
    pub mariadb: Option<MariaDbSettings>,
    /// The shared RabbitMQ; apps that need a message bus cannot deploy without it.
    pub rabbitmq: Option<RabbitMqSettings>,
    /// minicloud's data directory; app storage lives under it.
    pub data_dir: PathBuf,
}

/// The three provisioners of one minicloud. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    mariadb: Option<MariaDb>,
    rabbitmq: Option<RabbitMq>,
    storage: Storage,
}

impl Services {
    pub fn new(settings: ServicesSettings, store: Store) -> Self {
        Self {
            mariadb: settings.mariadb.map(|s| MariaDb::new(s, store.clone())),
            rabbitmq: settings.rabbitmq.map(|s| RabbitMq::new(s, store.clone())),
            storage: Storage::new(settings.data_dir),
        }
    }

    pub fn mariadb(&self) -> Option<&MariaDb> {
        self.mariadb.as_ref()
    }

    pub fn rabbitmq(&self) -> Option<&RabbitMq> {
        self.rabbitmq.as_ref()
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Ensures everything `needs` asks for and returns the environment and mount. Refuses
    /// before any I/O when a needed service is not configured.
    pub async fn provision(
        &self,
        app: &AppName,
        needs: &BTreeSet<Need>,
    ) -> Result<Provisioned, ServiceError> {
        self.grant(app, needs, false).await
    }

    /// New credentials for every credentialed service in `needs`, then the same as
    /// [`Services::provision`]. The caller redeploys with the result.
    pub async fn rotate(
        &self,
        app: &AppName,
        needs: &BTreeSet<Need>,
    ) -> Result<Provisioned, ServiceError> {
        self.grant(app, needs, true).await
    }

    async fn grant(
        &self,
        app: &AppName,
        needs: &BTreeSet<Need>,
        rotate: bool,
    ) -> Result<Provisioned, ServiceError> {
        let mariadb = needs
            .contains(&Need::Database)
            .then(|| self.configured_mariadb(app))
            .transpose()?;
        let rabbitmq = needs
            .contains(&Need::Messagebus)
            .then(|| self.configured_rabbitmq(app))
            .transpose()?;
        let mut out = Provisioned::default();
        if let Some(db) = mariadb {
            let grant = match rotate {
                true => db.rotate(app).await?,
                false => db.ensure(app).await?,
            };
            out.env.extend(db.env(&grant));
        }
        if let Some(mq) = rabbitmq {
            let grant = match rotate {
                true => mq.rotate(app).await?,
                false => mq.ensure(app).await?,
            };
            out.env.extend(mq.env(&grant));
        }
        if needs.contains(&Need::Storage) {
            out.data_dir = Some(self.storage.ensure(app).await?);
        }
        Ok(out)
    }

    /// Removes everything of `app`: its database and MariaDB user, its vhost and RabbitMQ
    /// user (where minicloud holds credentials for them) and its storage directory. Nothing of
    /// any other app. Each part is tried even when another failed; calling it again continues
    /// with what is left.
    pub async fn remove(&self, app: &AppName) -> Removal {
        let mut out = Removal::default();
        if let Some(db) = &self.mariadb {
            let what = "its MariaDB database and user";
            match db.store.service(app, ServiceKind::Mariadb) {
                Ok(Some(_)) => out.note(what, db.remove(app).await),
                Ok(None) => {}
                Err(e) => out.kept.push((what, e.into())),
            }
        }
        if let Some(mq) = &self.rabbitmq {
            let what = "its RabbitMQ vhost and user";
            match mq.store.service(app, ServiceKind::Rabbitmq) {
                Ok(Some(_)) => out.note(what, mq.remove(app).await),
                Ok(None) => {}
                Err(e) => out.kept.push((what, e.into())),
            }
        }
        if self.storage.dir(app).exists() {
            out.note("its storage", self.storage.remove(app).await);
        }
        out
    }

    /// Removes one service of `app` with its data: its database, its vhost, or its storage
    /// directory. Nothing of its other services.
    pub async fn remove_one(&self, app: &AppName, need: Need) -> Result<(), ServiceError> {
        match need {
            Need::Database => match &self.mariadb {
                Some(db) if db.store.service(app, ServiceKind::Mariadb)?.is_some() => {
                    db.remove(app).await
                }
                _ => Ok(()),
            },
            Need::Messagebus => match &self.rabbitmq {
                Some(mq) if mq.store.service(app, ServiceKind::Rabbitmq)?.is_some() => {
                    mq.remove(app).await
                }
                _ => Ok(()),
            },
            Need::Storage => self.storage.remove(app).await,
        }
    }

    /// Removes the app's database and vhost with their users (where minicloud holds
    /// credentials for them), leaving its storage directory.
    pub async fn remove_accounts(&self, app: &AppName) -> Result<(), ServiceError> {
        if let Some(db) = &self.mariadb {
            if db.store.service(app, ServiceKind::Mariadb)?.is_some() {
                db.remove(app).await?;
            }
        }
        if let Some(mq) = &self.rabbitmq {
            if mq.store.service(app, ServiceKind::Rabbitmq)?.is_some() {
                mq.remove(app).await?;
            }
        }
        Ok(())
    }

    fn configured_mariadb(&self, app: &AppName) -> Result<&MariaDb, ServiceError> {
        self.mariadb
            .as_ref()
            .ok_or_else(|| ServiceError::NotConfigured {
                app: app.to_string(),
                need: Need::Database.as_str(),
                service: mariadb::SERVICE,
                setting: "MINICLOUD_MARIADB_URL (mariadb_url) and MINICLOUD_MARIADB_APP_HOST",
            })
    }

    fn configured_rabbitmq(&self, app: &AppName) -> Result<&RabbitMq, ServiceError> {
        self.rabbitmq
            .as_ref()
            .ok_or_else(|| ServiceError::NotConfigured {
                app: app.to_string(),
                need: Need::Messagebus.as_str(),
                service: rabbitmq::SERVICE,
                setting: "MINICLOUD_RABBITMQ_API (rabbitmq_api) and MINICLOUD_RABBITMQ_APP_HOST",
            })
    }
}

/// A fresh password: [`PASSWORD_LEN`] alphanumeric characters from the OS-seeded CSPRNG.
pub fn new_password() -> Secret {
    Secret::new(Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LEN))
}

/// The app's stored account for `kind`, made (and written to the store) on first use; with
/// `fresh`, a new password replaces the stored one. Written before any server is touched:
/// the store is the truth that `ensure` makes the server agree with.
fn account(
    store: &Store,
    app: &AppName,
    kind: ServiceKind,
    user: &ServiceName,
    fresh: bool,
) -> Result<ServiceRecord, ServiceError> {
    let existing = store.service(app, kind)?;
    let record = match existing {
        Some(rec) if !fresh && rec.user == user.as_str() => return Ok(rec),
        Some(mut rec) => {
            rec.user = user.as_str().to_owned();
            rec.password = new_password();
            rec.rotated_at = Some(now());
            rec
        }
        None => ServiceRecord {
            app: app.clone(),
            kind,
            user: user.as_str().to_owned(),
            password: new_password(),
            created_at: now(),
            rotated_at: None,
        },
    };
    store.put_service(&record)?;
    Ok(record)
}

/// `userinfo@host/resource` with user, password and resource percent-encoded: the one place
/// connection URLs for apps are built.
fn app_url(scheme: &str, creds: &Credentials) -> String {
    let enc = crate::model::url_component;
    format!(
        "{scheme}://{}:{}@{}/{}",
        enc(&creds.user),
        enc(creds.password.expose()),
        creds.host,
        enc(&creds.resource)
    )
}

/// `host[:port]` as an app should reach it, the port defaulted. Used by the config.
pub fn app_host(value: &str, default_port: u16) -> Result<String, String> {
    let v = value.trim();
    let bad = || {
        Err(format!(
            "expected HOST or HOST:PORT as apps reach it, e.g. mariadb:{default_port} or 172.18.0.1"
        ))
    };
    if v.is_empty() || v.contains(|c: char| c.is_whitespace() || "/@?#".contains(c)) {
        return bad();
    }
    // A bare IPv6 address needs brackets to carry a port.
    if v.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(format!("[{v}]:{default_port}"));
    }
    let (host, port) = match v.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => return bad(),
        Some((h, p)) => (h, Some(p)),
        None => (v, None),
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return bad(),
        },
        None => default_port,
    };
    if host.is_empty() {
        return bad();
    }
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_and_unescaped() {
        let a = new_password();
        let b = new_password();
        assert_eq!(a.expose().len(), PASSWORD_LEN);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn app_urls_encode_every_part() {
        let creds = Credentials {
            user: "app_x".into(),
            password: Secret::new("p@ss/w:rd%"),
            host: "mariadb:3306".into(),
            resource: "app_x".into(),
        };
        assert_eq!(
            app_url("mysql", &creds),
            "mysql://app_x:p%40ss%2Fw%3Ard%25@mariadb:3306/app_x"
        );
    }

    #[test]
    fn app_hosts_get_a_port() {
        assert_eq!(app_host("mariadb", 3306).unwrap(), "mariadb:3306");
        assert_eq!(
            app_host("172.18.0.1:3307", 3306).unwrap(),
            "172.18.0.1:3307"
        );
        assert_eq!(app_host("::1", 5672).unwrap(), "[::1]:5672");
        assert_eq!(app_host("[::1]:5673", 5672).unwrap(), "[::1]:5673");
        for bad in ["", "a b", "x:0", "x:http", "u@h", "h/db", ":3306"] {
            assert!(app_host(bad, 3306).is_err(), "{bad:?}");
        }
    }
}
