//! A consistent copy of the whole store in a new redb file, for the platform backup: every
//! table read inside one read transaction, so the copy is the state of one moment whatever is
//! written meanwhile (never a copy of the file while it is written). redb has no backup call of
//! its own; a savepoint lives inside the same file.

use std::path::Path;

use redb::{
    Database, MultimapTableHandle, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
};

use super::{db_err, Store, StoreError, META};

/// Every table but `meta` is `&str -> &[u8]` (JSON, see `table`).
fn raw(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

/// One table's rows as read.
enum Rows {
    Meta(Vec<(String, u64)>),
    Records(Vec<(String, Vec<u8>)>),
}

impl Store {
    /// Writes every table, as one read transaction sees it, into a new redb file at `dest`
    /// (which must not exist yet). Answers how many rows it copied.
    pub fn copy_to(&self, dest: &Path) -> Result<u64, StoreError> {
        // Read whole under the read transaction (the store is small: records, not data), then
        // written outside the store's handle, so an error of `dest` never looks like the
        // store's own I/O error (which would close and reopen it).
        let tables = self.handle.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            if let Some(t) = txn.list_multimap_tables().map_err(db_err)?.next() {
                return Err(StoreError::Corrupt {
                    table: "multimap",
                    key: t.name().to_owned(),
                    why: "the store has a table this minicloud does not know how to copy".into(),
                });
            }
            let mut tables = Vec::new();
            for handle in txn.list_tables().map_err(db_err)? {
                let name = handle.name().to_owned();
                let rows = if name == META.name() {
                    let table = txn.open_table(META).map_err(db_err)?;
                    let mut rows = Vec::new();
                    for entry in table.iter().map_err(db_err)? {
                        let (k, v) = entry.map_err(db_err)?;
                        rows.push((k.value().to_owned(), v.value()));
                    }
                    Rows::Meta(rows)
                } else {
                    let table = txn.open_table(raw(&name)).map_err(db_err)?;
                    let mut rows = Vec::new();
                    for entry in table.iter().map_err(db_err)? {
                        let (k, v) = entry.map_err(db_err)?;
                        rows.push((k.value().to_owned(), v.value().to_vec()));
                    }
                    Rows::Records(rows)
                };
                tables.push((name, rows));
            }
            Ok(tables)
        })?;
        let out = Database::create(dest).map_err(db_err)?;
        let txn = out.begin_write().map_err(db_err)?;
        let mut copied = 0;
        for (name, rows) in &tables {
            match rows {
                Rows::Meta(rows) => {
                    let mut table = txn.open_table(META).map_err(db_err)?;
                    for (k, v) in rows {
                        table.insert(k.as_str(), *v).map_err(db_err)?;
                    }
                    copied += rows.len() as u64;
                }
                Rows::Records(rows) => {
                    let mut table = txn.open_table(raw(name)).map_err(db_err)?;
                    for (k, v) in rows {
                        table.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
                    }
                    copied += rows.len() as u64;
                }
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::AppName;
    use crate::store::{BackupRecord, BackupState};

    #[test]
    fn the_copy_opens_as_a_store_with_the_same_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let instance = store.instance_id().unwrap();
        let run = BackupRecord {
            app: AppName::platform(),
            id: "0000000001-aa".into(),
            trigger: "manual".into(),
            started_at: 1,
            finished_at: None,
            state: BackupState::Running,
            parts: vec![],
            verified: None,
            destinations: vec![],
        };
        store.put_backup(&run).unwrap();
        let copy = dir.path().join("copy.redb");
        assert!(store.copy_to(&copy).unwrap() >= 2);
        // The original stays open and writable; the copy is a store of its own.
        store
            .put_backup(&BackupRecord {
                id: "0000000002-bb".into(),
                ..run.clone()
            })
            .unwrap();
        drop(store);
        let copied = Store::open(&copy).unwrap();
        assert_eq!(copied.instance_id().unwrap(), instance);
        assert_eq!(copied.backups(&AppName::platform()).unwrap(), [run]);
    }
}
