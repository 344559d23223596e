//! minicloud's own state, in one redb file under the data dir.
//!
//! Each record kind has a table; keys are built here and nowhere else; values are JSON so a
//! person can still read a dump. Every write is one redb transaction: a crash mid-write leaves
//! the previous state. Calls are synchronous: they run on the control plane's runtime, never on
//! the proxy's, and a commit is one small fsync.

mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use minicloud_proxy::HostPattern;

use crate::model::name::AppName;
use crate::model::ServiceKind;
use minicloud_proxy::acme::CertRecord;
use minicloud_proxy::Hostname;

pub use records::{
    AcmeAccountRecord, AppRecord, DeployOutcome, DeployRecord, RegistryCredentials, RouteRecord,
    ServiceRecord, TokenRecord,
};

/// Bumped when a record's meaning changes; `open` refuses a newer store than it knows.
const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ROUTES: TableDefinition<&str, &[u8]> = TableDefinition::new("routes");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
const ACME_ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("acme_accounts");
const CERTIFICATES: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");
const APPS: TableDefinition<&str, &[u8]> = TableDefinition::new("apps");
/// Keyed `<app>/<revision, 10 digits>` so one app's deploys are one ordered range.
const DEPLOYS: TableDefinition<&str, &[u8]> = TableDefinition::new("deploys");

/// Keyed `<app>/<kind>` (`shop/mariadb`) so one app's services are one range.
const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("services");

fn service_key(app: &AppName, kind: ServiceKind) -> String {
    format!("{app}/{kind}")
}

fn deploy_key(app: &AppName, revision: u64) -> String {
    format!("{app}/{revision:010}")
}

/// The key range holding every deploy (or service) of `app` (`/` sorts just before `0`).
fn deploy_range(app: &AppName) -> (String, String) {
    (format!("{app}/"), format!("{app}0"))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state store {path} is in use by another minicloud process")]
    InUse { path: PathBuf },
    #[error("could not create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not make {path} private (mode 0600): {source}")]
    Permissions {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the state store was written by a newer minicloud (schema {found}, this one knows {known})"
    )]
    TooNew { found: u64, known: u64 },
    #[error("state store: {0}")]
    Db(#[from] redb::Error),
    #[error("state store record {table}/{key} is unreadable: {why}")]
    Corrupt {
        table: &'static str,
        key: String,
        why: String,
    },
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

/// Handle on the state store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                path: path.to_path_buf(),
            },
            other => db_err(other),
        })?;
        // It holds certificate and ACME account keys: readable by minicloud's user only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| StoreError::Permissions {
                    path: path.to_path_buf(),
                    source,
                },
            )?;
        }
        let txn = db.begin_write().map_err(db_err)?;
        {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let found = meta.get("schema").map_err(db_err)?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::TooNew {
                        found: v,
                        known: SCHEMA_VERSION,
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert("schema", SCHEMA_VERSION).map_err(db_err)?;
                }
            }
            txn.open_table(ROUTES).map_err(db_err)?;
            txn.open_table(TOKENS).map_err(db_err)?;
            txn.open_table(ACME_ACCOUNTS).map_err(db_err)?;
            txn.open_table(CERTIFICATES).map_err(db_err)?;
            txn.open_table(APPS).map_err(db_err)?;
            txn.open_table(DEPLOYS).map_err(db_err)?;
            txn.open_table(SERVICES).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// This minicloud's identity on the Docker engine, made at first start and kept.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let id = {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let found = meta.get("instance").map_err(db_err)?.map(|v| v.value());
            match found {
                Some(id) => id,
                None => {
                    let id = rand::random::<u64>();
                    meta.insert("instance", id).map_err(db_err)?;
                    id
                }
            }
        };
        txn.commit().map_err(db_err)?;
        Ok(format!("{id:016x}"))
    }

    // --- routes: key is the host pattern as written (`app.example.com`, `*.example.com`).

    pub fn routes(&self) -> Result<Vec<RouteRecord>, StoreError> {
        self.list(ROUTES, "routes")
    }

    pub fn put_route(&self, route: &RouteRecord) -> Result<(), StoreError> {
        self.put(ROUTES, &route.host.to_string(), route)
    }

    /// Returns whether the route existed.
    pub fn delete_route(&self, host: &HostPattern) -> Result<bool, StoreError> {
        self.delete(ROUTES, &host.to_string())
    }

    // --- tokens: key is the SHA-256 of the token, hex; the token itself is never stored.

    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.get(TOKENS, "tokens", hash)
    }

    pub fn tokens(&self) -> Result<Vec<(String, TokenRecord)>, StoreError> {
        self.list_keyed(TOKENS, "tokens")
    }

    /// Stores a token, replacing any other token of the same name, in one transaction.
    pub fn replace_token(&self, hash: &str, token: &TokenRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(TOKENS).map_err(db_err)?;
            let same_name: Vec<String> = table
                .iter()
                .map_err(db_err)?
                .filter_map(|entry| {
                    let (k, v) = entry.ok()?;
                    let rec: TokenRecord = serde_json::from_slice(v.value()).ok()?;
                    (rec.name == token.name).then(|| k.value().to_string())
                })
                .collect();
            for key in same_name {
                table.remove(key.as_str()).map_err(db_err)?;
            }
            table
                .insert(hash, encode(token).as_slice())
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    // --- ACME accounts: key is the CA's directory URL (one account per CA).

    pub fn acme_account(&self, directory: &str) -> Result<Option<AcmeAccountRecord>, StoreError> {
        self.get(ACME_ACCOUNTS, "acme_accounts", directory)
    }

    pub fn put_acme_account(&self, account: &AcmeAccountRecord) -> Result<(), StoreError> {
        self.put(ACME_ACCOUNTS, &account.directory, account)
    }

    // --- certificates: key is the host name; the value holds the certificate and its key.

    pub fn certificates(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.list(CERTIFICATES, "certificates")
    }

    pub fn certificate(&self, host: &Hostname) -> Result<Option<CertRecord>, StoreError> {
        self.get(CERTIFICATES, "certificates", host.as_str())
    }

    pub fn put_certificate(&self, record: &CertRecord) -> Result<(), StoreError> {
        self.put(CERTIFICATES, record.host.as_str(), record)
    }

    // --- apps and their deploys

    pub fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        self.list(APPS, "apps")
    }

    pub fn app(&self, name: &AppName) -> Result<Option<AppRecord>, StoreError> {
        self.get(APPS, "apps", name.as_str())
    }

    pub fn put_app(&self, app: &AppRecord) -> Result<(), StoreError> {
        self.put(APPS, app.name.as_str(), app)
    }

    /// Every deploy of `app`, oldest first.
    pub fn deploys(&self, app: &AppName) -> Result<Vec<DeployRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(DEPLOYS).map_err(db_err)?;
        let (start, end) = deploy_range(app);
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..end.as_str()).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push(decode("deploys", k.value(), v.value())?);
        }
        Ok(out)
    }

    pub fn deploy(&self, app: &AppName, revision: u64) -> Result<Option<DeployRecord>, StoreError> {
        self.get(DEPLOYS, "deploys", &deploy_key(app, revision))
    }

    /// Writes an app and one of its deploys together: a deploy's outcome and the app's
    /// current revision never disagree, even across a crash.
    pub fn put_app_and_deploy(
        &self,
        app: &AppRecord,
        deploy: &DeployRecord,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(APPS)
            .map_err(db_err)?
            .insert(app.name.as_str(), encode(app).as_slice())
            .map_err(db_err)?;
        txn.open_table(DEPLOYS)
            .map_err(db_err)?
            .insert(
                deploy_key(&deploy.app, deploy.revision).as_str(),
                encode(deploy).as_slice(),
            )
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// Removes an app and its whole deploy history in one transaction.
    pub fn delete_app(&self, app: &AppName) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let existed = txn
            .open_table(APPS)
            .map_err(db_err)?
            .remove(app.as_str())
            .map_err(db_err)?
            .is_some();
        {
            let mut deploys = txn.open_table(DEPLOYS).map_err(db_err)?;
            let (start, end) = deploy_range(app);
            deploys
                .retain_in(start.as_str()..end.as_str(), |_, _| false)
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(existed)
    }

    // --- services: an app's credentials per shared service. Kept when an app is removed
    //     without its data (its database still exists); deleted with the data.

    pub fn service(
        &self,
        app: &AppName,
        kind: ServiceKind,
    ) -> Result<Option<ServiceRecord>, StoreError> {
        self.get(SERVICES, "services", &service_key(app, kind))
    }

    /// Every service record of `app`.
    pub fn services(&self, app: &AppName) -> Result<Vec<ServiceRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(SERVICES).map_err(db_err)?;
        let (start, end) = deploy_range(app);
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..end.as_str()).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push(decode("services", k.value(), v.value())?);
        }
        Ok(out)
    }

    pub fn put_service(&self, record: &ServiceRecord) -> Result<(), StoreError> {
        self.put(SERVICES, &service_key(&record.app, record.kind), record)
    }

    /// Returns whether the record existed.
    pub fn delete_service(&self, app: &AppName, kind: ServiceKind) -> Result<bool, StoreError> {
        self.delete(SERVICES, &service_key(app, kind))
    }

    // --- generic record access

    fn get<T: DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &[u8]>,
        name: &'static str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(def).map_err(db_err)?;
        let value = table.get(key).map_err(db_err)?;
        value.map(|v| decode(name, key, v.value())).transpose()
    }

    fn list<T: DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &[u8]>,
        name: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        Ok(self
            .list_keyed(def, name)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    fn list_keyed<T: DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &[u8]>,
        name: &'static str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(def).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let key = k.value().to_string();
            let value = decode(name, &key, v.value())?;
            out.push((key, value));
        }
        Ok(out)
    }

    fn put<T: Serialize>(
        &self,
        def: TableDefinition<&str, &[u8]>,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(def)
            .map_err(db_err)?
            .insert(key, encode(value).as_slice())
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    fn delete(&self, def: TableDefinition<&str, &[u8]>, key: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let existed = txn
            .open_table(def)
            .map_err(db_err)?
            .remove(key)
            .map_err(db_err)?
            .is_some();
        txn.commit().map_err(db_err)?;
        Ok(existed)
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialize to JSON")
}

fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_string(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: &str, upstream: &str) -> RouteRecord {
        RouteRecord {
            host: HostPattern::parse(host).unwrap(),
            upstream: upstream.parse().unwrap(),
            created_at: 1,
        }
    }

    #[test]
    fn routes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = Store::open(&path).unwrap();
            store.put_route(&route("a.test", "127.0.0.1:1")).unwrap();
            store.put_route(&route("*.b.test", "127.0.0.1:2")).unwrap();
            store.put_route(&route("a.test", "127.0.0.1:3")).unwrap();
            assert!(store
                .delete_route(&HostPattern::parse("*.b.test").unwrap())
                .unwrap());
            assert!(!store
                .delete_route(&HostPattern::parse("*.b.test").unwrap())
                .unwrap());
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.routes().unwrap(),
            vec![route("a.test", "127.0.0.1:3")]
        );
    }

    #[test]
    fn certificate_records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let host = Hostname::parse("a.test").unwrap();
        let mut record = CertRecord::new(host.clone());
        record.start_attempt(5);
        {
            let store = Store::open(&path).unwrap();
            store.put_certificate(&record).unwrap();
        }
        let store = Store::open(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(store.certificate(&host).unwrap(), Some(record.clone()));
        assert_eq!(store.certificates().unwrap(), vec![record]);
        assert!(store.acme_account("https://ca.test/dir").unwrap().is_none());
    }

    #[test]
    fn service_records_are_per_app_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let rec = |app: &str, kind| ServiceRecord {
            app: AppName::try_new(app).unwrap(),
            kind,
            user: format!("app_{app}"),
            password: crate::model::secret::Secret::new("pw"),
            created_at: 1,
            rotated_at: None,
        };
        // `a-b` sorts between `a/` and `a0`: it must not show up among a's services.
        for r in [
            rec("a", ServiceKind::Mariadb),
            rec("a", ServiceKind::Rabbitmq),
            rec("a-b", ServiceKind::Mariadb),
        ] {
            store.put_service(&r).unwrap();
        }
        let a = AppName::try_new("a").unwrap();
        assert_eq!(store.services(&a).unwrap().len(), 2);
        assert_eq!(
            store.service(&a, ServiceKind::Rabbitmq).unwrap(),
            Some(rec("a", ServiceKind::Rabbitmq))
        );
        assert!(store.delete_service(&a, ServiceKind::Mariadb).unwrap());
        assert!(!store.delete_service(&a, ServiceKind::Mariadb).unwrap());
        assert_eq!(store.services(&a).unwrap().len(), 1);
        let json = serde_json::to_string(&rec("a", ServiceKind::Mariadb)).unwrap();
        assert!(json.contains(r#""kind":"mariadb""#), "{json}");
    }

    #[test]
    fn a_second_open_of_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let _first = Store::open(&path).unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::InUse { .. })));
    }

    #[test]
    fn replacing_a_token_drops_the_old_one_of_that_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let rec = |name: &str| TokenRecord {
            name: name.into(),
            created_at: 0,
        };
        store.replace_token("h1", &rec("bootstrap")).unwrap();
        store.replace_token("h2", &rec("ci")).unwrap();
        store.replace_token("h3", &rec("bootstrap")).unwrap();
        assert!(store.token("h1").unwrap().is_none());
        assert_eq!(store.token("h3").unwrap().unwrap().name, "bootstrap");
        assert_eq!(store.tokens().unwrap().len(), 2);
    }
}
