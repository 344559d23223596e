//! minicloud's own state, in one redb file under the data dir.
//!
//! Each record kind has a table; keys are built here and nowhere else; values are JSON so a
//! person can still read a dump. Every write is one redb transaction: a crash mid-write leaves
//! the previous state. Calls are synchronous: they run on the control plane's runtime, never on
//! the proxy's, and a commit is one small fsync.

mod alerts;
mod audit;
mod auth;
mod backups;
mod copy;
mod handle;
mod logs;
mod owner;
mod records;
mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use minicloud_proxy::HostPattern;

use crate::model::name::AppName;
use crate::model::ServiceKind;
use minicloud_proxy::acme::CertRecord;
use minicloud_proxy::Hostname;

pub use alerts::{
    web_incident_key, AlertEvent, AlertMessage, ChannelConfig, ChannelHealth, ChannelRecord,
    IncidentKind, IncidentRecord, PendingDelivery, SmtpSecurity, TimelineEntry,
};
pub use audit::{AuditFilter, AuditRecord};
pub use auth::{SessionRecord, TotpRecord, UserRecord};
pub use backups::{
    BackupPart, BackupPolicyRecord, BackupRecord, BackupState, Destination, PendingRestore,
    RepositoryKey, RestoreFailure, Verification,
};
pub use handle::{free_bytes, StoreHealth};
pub use logs::{RemovedLog, REMOVED_LOG_BYTES, REMOVED_LOG_LINES};
pub use owner::{Owner, OwnerLock, TakeOver};
pub use records::{
    AcmeAccountRecord, AppRecord, DeployOutcome, DeployRecord, RegistryCredentials, RouteRecord,
    ServiceRecord, TokenRecord,
};
use table::{Keyed, Record};

/// Bumped when a record's meaning changes; `open` refuses a newer store than it knows.
const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

// --- the tables and their keys: the file format, built here and nowhere else.

/// Keyed by the host pattern as written (`app.example.com`, `*.example.com`).
impl Record for RouteRecord {
    const NAME: &'static str = "routes";
}
impl Keyed for RouteRecord {
    fn key(&self) -> String {
        self.host.to_string()
    }
}

/// Keyed by the SHA-256 of the token, hex; the token itself is never stored.
impl Record for TokenRecord {
    const NAME: &'static str = "tokens";
}

/// Keyed by the CA's directory URL (one account per CA).
impl Record for AcmeAccountRecord {
    const NAME: &'static str = "acme_accounts";
}
impl Keyed for AcmeAccountRecord {
    fn key(&self) -> String {
        self.directory.clone()
    }
}

/// Keyed by the host name; the value holds the certificate and its key.
impl Record for CertRecord {
    const NAME: &'static str = "certificates";
}
impl Keyed for CertRecord {
    fn key(&self) -> String {
        self.host.as_str().to_owned()
    }
}

impl Record for AppRecord {
    const NAME: &'static str = "apps";
}
impl Keyed for AppRecord {
    fn key(&self) -> String {
        self.name.as_str().to_owned()
    }
}

/// Keyed `<app>/<revision, 10 digits>` so one app's deploys are one ordered range.
impl Record for DeployRecord {
    const NAME: &'static str = "deploys";
}
impl Keyed for DeployRecord {
    fn key(&self) -> String {
        deploy_key(&self.app, self.revision)
    }
}

/// Keyed `<app>/<kind>` (`shop/mariadb`) so one app's services are one range.
impl Record for ServiceRecord {
    const NAME: &'static str = "services";
}
impl Keyed for ServiceRecord {
    fn key(&self) -> String {
        service_key(&self.app, self.kind)
    }
}

fn service_key(app: &AppName, kind: ServiceKind) -> String {
    format!("{app}/{kind}")
}

fn deploy_key(app: &AppName, revision: u64) -> String {
    format!("{app}/{revision:010}")
}

/// The key range holding every record of `app` in a table keyed `<app>/...` (deploys,
/// services): `/` sorts just before `0`.
fn app_range(app: &AppName) -> (String, String) {
    (format!("{app}/"), format!("{app}0"))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the state store {path} is in use by another minicloud process: stop it first \
         (is `minicloud serve` running?)"
    )]
    InUse { path: PathBuf },
    /// [`Store::close`] was called: this process has let go of the data dir.
    #[error("the state store {path} was closed: this minicloud is stopping or has handed the data dir to its successor")]
    Closed { path: PathBuf },
    /// The data dir is another minicloud's (see [`OwnerLock`]): who holds it, and what to do.
    #[error("{message}")]
    Busy { message: String },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
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
    #[error(
        "no space left on the disk of {dir} ({free_bytes} bytes free): the change was not saved; free some space and try again"
    )]
    NoSpace { dir: PathBuf, free_bytes: u64 },
    #[error("state store: {0}")]
    Db(#[from] redb::Error),
    #[error("state store record {table}/{key} is unreadable: {why}")]
    Corrupt {
        table: &'static str,
        key: String,
        why: String,
    },
}

impl StoreError {
    /// An I/O error: redb needs the database closed and opened again after one.
    pub fn is_io(&self) -> bool {
        matches!(self, Self::Db(redb::Error::Io(_) | redb::Error::PreviousIo))
    }

    /// The disk (or the user's quota) is full.
    pub fn is_no_space(&self) -> bool {
        match self {
            Self::NoSpace { .. } => true,
            Self::Db(redb::Error::Io(e)) => matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ),
            _ => false,
        }
    }
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

/// Handle on the state store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    handle: Arc<handle::Handle>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            handle: Arc::new(handle::Handle::open(path)?),
        })
    }

    /// Closes the database for every clone of this handle, at once: redb's lock on the file
    /// goes with it, so another process can open it. Calls under way finish first; later
    /// ones fail with [`StoreError::Closed`]. For the end of `serve`, when clones may still be
    /// held by tasks that have not ended yet.
    pub fn close(&self) {
        self.handle.close_for_good();
    }

    /// How the store and its disk are doing; a degraded store tries a small write first.
    pub fn health(&self) -> StoreHealth {
        self.handle.health(|| {
            self.handle.write(|db| {
                let txn = db.begin_write().map_err(db_err)?;
                txn.open_table(META)
                    .map_err(db_err)?
                    .insert("health_probe", crate::model::now().max(0) as u64)
                    .map_err(db_err)?;
                txn.commit().map_err(db_err)
            })
        })
    }
}

/// Opens (creating if needed) the database at `path`, with every table.
fn open_db(path: &Path) -> Result<Database, StoreError> {
    if let Some(dir) = path.parent() {
        private_dir(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    // Created readable by minicloud's user only, so there is no moment it is not; redb
    // starts a new database in an empty file.
    private_file(path).map_err(|source| StoreError::Permissions {
        path: path.to_path_buf(),
        source,
    })?;
    let db = Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
            path: path.to_path_buf(),
        },
        other => db_err(other),
    })?;
    // It holds certificate and ACME account keys: readable by minicloud's user only (a file
    // an older version created is narrowed here).
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
        table::create::<RouteRecord>(&txn)?;
        table::create::<TokenRecord>(&txn)?;
        table::create::<AcmeAccountRecord>(&txn)?;
        table::create::<CertRecord>(&txn)?;
        table::create::<AppRecord>(&txn)?;
        table::create::<DeployRecord>(&txn)?;
        table::create::<ServiceRecord>(&txn)?;
        table::create::<UserRecord>(&txn)?;
        table::create::<SessionRecord>(&txn)?;
        table::create::<AuditRecord>(&txn)?;
        alerts::create_tables(&txn)?;
        table::create::<BackupRecord>(&txn)?;
        table::create::<RepositoryKey>(&txn)?;
        table::create::<PendingRestore>(&txn)?;
        table::create::<BackupPolicyRecord>(&txn)?;
        table::create::<RemovedLog>(&txn)?;
    }
    txn.commit().map_err(db_err)?;
    Ok(db)
}

impl Store {
    /// This minicloud's identity on the Docker engine, made at first start and kept.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
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
        })
    }

    // --- routes

    pub fn routes(&self) -> Result<Vec<RouteRecord>, StoreError> {
        self.list()
    }

    pub fn put_route(&self, route: &RouteRecord) -> Result<(), StoreError> {
        self.put(route)
    }

    /// Returns whether the route existed.
    pub fn delete_route(&self, host: &HostPattern) -> Result<bool, StoreError> {
        self.delete::<RouteRecord>(&host.to_string())
    }

    // --- tokens

    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.get(hash)
    }

    pub fn tokens(&self) -> Result<Vec<(String, TokenRecord)>, StoreError> {
        self.list_keyed()
    }

    /// Stores a token, replacing any other token of the same name, in one transaction.
    pub fn replace_token(&self, hash: &str, token: &TokenRecord) -> Result<(), StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
            {
                let mut table = txn.open_table(TokenRecord::TABLE).map_err(db_err)?;
                let same_name: Vec<String> = table
                    .iter()
                    .map_err(db_err)?
                    .filter_map(|entry| {
                        let (k, v) = entry.ok()?;
                        let rec: TokenRecord = table::decode(k.value(), v.value()).ok()?;
                        (rec.name == token.name).then(|| k.value().to_string())
                    })
                    .collect();
                for key in same_name {
                    table.remove(key.as_str()).map_err(db_err)?;
                }
            }
            table::insert_at(&txn, hash, token)?;
            txn.commit().map_err(db_err)
        })
    }

    /// Stores a new token; `false` (and nothing written) when one of that name exists.
    pub fn add_token(&self, hash: &str, token: &TokenRecord) -> Result<bool, StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
            let taken = {
                let table = txn.open_table(TokenRecord::TABLE).map_err(db_err)?;
                let mut taken = false;
                for entry in table.iter().map_err(db_err)? {
                    let (k, v) = entry.map_err(db_err)?;
                    let rec: TokenRecord = table::decode(k.value(), v.value())?;
                    taken |= rec.name == token.name;
                }
                taken
            };
            if taken {
                return Ok(false);
            }
            table::insert_at(&txn, hash, token)?;
            txn.commit().map_err(db_err)?;
            Ok(true)
        })
    }

    /// Writes a token's record back (its last use) under its hash.
    pub fn put_token(&self, hash: &str, token: &TokenRecord) -> Result<(), StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
            table::insert_at(&txn, hash, token)?;
            txn.commit().map_err(db_err)
        })
    }

    /// Removes the token called `name`; returns whether there was one.
    pub fn delete_token_named(&self, name: &str) -> Result<bool, StoreError> {
        let hashes: Vec<String> = self
            .tokens()?
            .into_iter()
            .filter(|(_, t)| t.name == name)
            .map(|(hash, _)| hash)
            .collect();
        for hash in &hashes {
            self.delete::<TokenRecord>(hash)?;
        }
        Ok(!hashes.is_empty())
    }

    // --- ACME accounts

    pub fn acme_account(&self, directory: &str) -> Result<Option<AcmeAccountRecord>, StoreError> {
        self.get(directory)
    }

    pub fn put_acme_account(&self, account: &AcmeAccountRecord) -> Result<(), StoreError> {
        self.put(account)
    }

    // --- certificates

    pub fn certificates(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.list()
    }

    pub fn certificate(&self, host: &Hostname) -> Result<Option<CertRecord>, StoreError> {
        self.get(host.as_str())
    }

    pub fn put_certificate(&self, record: &CertRecord) -> Result<(), StoreError> {
        self.put(record)
    }

    // --- apps and their deploys

    pub fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        self.list()
    }

    pub fn app(&self, name: &AppName) -> Result<Option<AppRecord>, StoreError> {
        self.get(name.as_str())
    }

    pub fn put_app(&self, app: &AppRecord) -> Result<(), StoreError> {
        self.put(app)
    }

    /// Every deploy of `app`, oldest first.
    pub fn deploys(&self, app: &AppName) -> Result<Vec<DeployRecord>, StoreError> {
        self.list_range(app_range(app))
    }

    pub fn deploy(&self, app: &AppName, revision: u64) -> Result<Option<DeployRecord>, StoreError> {
        self.get(&deploy_key(app, revision))
    }

    /// Writes an app and one of its deploys together: a deploy's outcome and the app's
    /// current revision never disagree, even across a crash.
    pub fn put_app_and_deploy(
        &self,
        app: &AppRecord,
        deploy: &DeployRecord,
    ) -> Result<(), StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
            table::insert(&txn, app)?;
            table::insert(&txn, deploy)?;
            txn.commit().map_err(db_err)
        })
    }

    /// Removes an app, its whole deploy history and its backup policy in one transaction.
    pub fn delete_app(&self, app: &AppName) -> Result<bool, StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
            let existed = txn
                .open_table(AppRecord::TABLE)
                .map_err(db_err)?
                .remove(app.as_str())
                .map_err(db_err)?
                .is_some();
            {
                let mut deploys = txn.open_table(DeployRecord::TABLE).map_err(db_err)?;
                let (start, end) = app_range(app);
                deploys
                    .retain_in(start.as_str()..end.as_str(), |_, _| false)
                    .map_err(db_err)?;
            }
            txn.open_table(RemovedLog::TABLE)
                .map_err(db_err)?
                .remove(app.as_str())
                .map_err(db_err)?;
            txn.open_table(BackupPolicyRecord::TABLE)
                .map_err(db_err)?
                .remove(app.as_str())
                .map_err(db_err)?;
            txn.commit().map_err(db_err)?;
            Ok(existed)
        })
    }

    // --- services: an app's credentials per shared service. Kept when an app is removed
    //     without its data (its database still exists); deleted with the data.

    pub fn service(
        &self,
        app: &AppName,
        kind: ServiceKind,
    ) -> Result<Option<ServiceRecord>, StoreError> {
        self.get(&service_key(app, kind))
    }

    /// Every service record of `app`.
    pub fn services(&self, app: &AppName) -> Result<Vec<ServiceRecord>, StoreError> {
        self.list_range(app_range(app))
    }

    pub fn put_service(&self, record: &ServiceRecord) -> Result<(), StoreError> {
        self.put(record)
    }

    /// Returns whether the record existed.
    pub fn delete_service(&self, app: &AppName, kind: ServiceKind) -> Result<bool, StoreError> {
        self.delete::<ServiceRecord>(&service_key(app, kind))
    }
}

/// Creates `dir` (and missing parents) with mode 0700: the data dir holds the state, keys
/// and every app's files. An existing directory is left as it is (it may be a volume that
/// other services share).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` empty with mode 0600 when it does not exist.
fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

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

    #[cfg(unix)]
    #[test]
    fn the_data_dir_and_state_file_are_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let data = tmp.path().join("fresh/data");
        let file = data.join("state.redb");
        // The helpers alone, without the chmod `open` does for older files.
        private_dir(&data).unwrap();
        private_file(&file).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&file), 0o600);
        private_file(&file).unwrap();
        private_dir(&data).unwrap();
        // Through `open`, from nothing.
        let other = tmp.path().join("other");
        Store::open(&other.join("state.redb")).unwrap();
        assert_eq!(mode(&other), 0o700);
        assert_eq!(mode(&other.join("state.redb")), 0o600);
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

    /// The file format: table names, keys and JSON values as version 1 wrote them with the
    /// raw redb API. A store written before the typed tables must read the same, and what the
    /// typed tables write must be byte for byte what the old code wrote.
    #[test]
    fn records_are_stored_under_the_same_tables_keys_and_values_as_before() {
        fn raw(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
            TableDefinition::new(name)
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let shop = AppName::try_new("shop").unwrap();
        let image: crate::model::image_ref::ImageRef = "registry.test/shop:v1".parse().unwrap();
        let app = AppRecord {
            name: shop.clone(),
            image: image.clone(),
            registry_auth: None,
            env: [("A".to_owned(), "1".to_owned())].into(),
            env_before: None,
            domains: [Hostname::parse("shop.example").unwrap()].into(),
            memory_mb: 256,
            pids_limit: None,
            cpu_shares: None,
            webhook_secret: crate::model::secret::Secret::new("hook"),
            stopped: false,
            current: Some(3),
            created_at: 1,
            added_services: Default::default(),
        };
        let deploy = DeployRecord {
            app: shop.clone(),
            revision: 3,
            image,
            digest: "sha256:00".into(),
            manifest_file: "/cloud_manifest.yml".into(),
            manifest_text: "port: 8080".into(),
            env: Default::default(),
            trigger: "cli".into(),
            started_at: 2,
            finished_at: None,
            outcome: DeployOutcome::Failed { reason: "x".into() },
        };
        let service = ServiceRecord {
            app: shop.clone(),
            kind: ServiceKind::Mariadb,
            user: "app_shop".into(),
            password: crate::model::secret::Secret::new("pw"),
            created_at: 1,
            rotated_at: Some(2),
        };
        let route = route("*.b.test", "127.0.0.1:2");
        let token = TokenRecord {
            name: "ci".into(),
            created_at: 4,
            ..TokenRecord::default()
        };
        let cert = CertRecord::new(Hostname::parse("a.test").unwrap());
        fn json(v: &impl serde::Serialize) -> Vec<u8> {
            serde_json::to_vec(v).unwrap()
        }
        let rows: Vec<(&str, &str, Vec<u8>)> = vec![
            ("apps", "shop", json(&app)),
            ("deploys", "shop/0000000003", json(&deploy)),
            ("services", "shop/mariadb", json(&service)),
            ("routes", "*.b.test", json(&route)),
            ("tokens", "h1", json(&token)),
            ("certificates", "a.test", json(&cert)),
        ];
        // Written the old way.
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert("schema", 1).unwrap();
            for (table, key, value) in &rows {
                txn.open_table(raw(table))
                    .unwrap()
                    .insert(*key, value.as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.app(&shop).unwrap(), Some(app.clone()));
            assert_eq!(store.deploy(&shop, 3).unwrap(), Some(deploy.clone()));
            assert_eq!(store.deploys(&shop).unwrap(), vec![deploy.clone()]);
            assert_eq!(store.services(&shop).unwrap(), vec![service.clone()]);
            assert_eq!(store.routes().unwrap(), vec![route.clone()]);
            assert_eq!(store.token("h1").unwrap(), Some(token.clone()));
            assert_eq!(store.certificates().unwrap(), vec![cert.clone()]);
        }
        // Written the new way, into a fresh file.
        let path = dir.path().join("new.redb");
        {
            let store = Store::open(&path).unwrap();
            store.put_app_and_deploy(&app, &deploy).unwrap();
            store.put_service(&service).unwrap();
            store.put_route(&route).unwrap();
            store.replace_token("h1", &token).unwrap();
            store.put_certificate(&cert).unwrap();
        }
        let db = Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        for (table, key, value) in &rows {
            let t = txn.open_table(raw(table)).unwrap();
            let stored = t
                .get(*key)
                .unwrap()
                .unwrap_or_else(|| panic!("{table}/{key}"));
            assert_eq!(stored.value(), value.as_slice(), "{table}/{key}");
        }
    }

    #[test]
    fn a_second_open_of_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let _first = Store::open(&path).unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::InUse { .. })));
    }

    #[test]
    fn a_closed_store_lets_another_open_the_file_while_clones_are_still_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let first = Store::open(&path).unwrap();
        first.instance_id().unwrap();
        let straggler = first.clone();
        first.close();
        // The file is free although a clone still exists, and the clone stays closed.
        let second = Store::open(&path).unwrap();
        let err = straggler.instance_id().unwrap_err();
        assert!(matches!(err, StoreError::Closed { .. }), "{err}");
        assert!(err.to_string().contains("was closed"), "{err}");
        second.instance_id().unwrap();
    }

    #[test]
    fn replacing_a_token_drops_the_old_one_of_that_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let rec = |name: &str| TokenRecord {
            name: name.into(),
            ..TokenRecord::default()
        };
        store.replace_token("h1", &rec("bootstrap")).unwrap();
        store.replace_token("h2", &rec("ci")).unwrap();
        store.replace_token("h3", &rec("bootstrap")).unwrap();
        assert!(store.token("h1").unwrap().is_none());
        assert_eq!(store.token("h3").unwrap().unwrap().name, "bootstrap");
        assert_eq!(store.tokens().unwrap().len(), 2);
    }
}
