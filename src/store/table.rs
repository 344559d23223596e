//! One typed table per record kind. A record type names its redb table once ([`Record::NAME`])
//! and, when the record carries its own key, says how to build it ([`Keyed::key`]); the generic
//! access below is then the only code that opens a table, encodes or decodes a value.
//!
//! On disk every table is `&str -> &[u8]` holding JSON, so the names and keys here are the file
//! format: changing one orphans the records already written under it.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{db_err, Store, StoreError};

/// A kind of record with its own table.
pub(super) trait Record: Serialize + DeserializeOwned {
    /// The table's name in the state file.
    const NAME: &'static str;
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new(Self::NAME);
}

/// A record whose key is made from its own fields (every kind but tokens, keyed by a hash).
pub(super) trait Keyed: Record {
    fn key(&self) -> String;
}

/// Creates `R`'s table if the file does not have it yet.
pub(super) fn create<R: Record>(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(R::TABLE).map_err(db_err)?;
    Ok(())
}

/// Writes `record` under its own key inside `txn` (for writes that span tables).
pub(super) fn insert<R: Keyed>(txn: &WriteTransaction, record: &R) -> Result<(), StoreError> {
    insert_at(txn, &record.key(), record)
}

pub(super) fn insert_at<R: Record>(
    txn: &WriteTransaction,
    key: &str,
    record: &R,
) -> Result<(), StoreError> {
    txn.open_table(R::TABLE)
        .map_err(db_err)?
        .insert(key, encode(record).as_slice())
        .map_err(db_err)?;
    Ok(())
}

impl Store {
    pub(super) fn get<R: Record>(&self, key: &str) -> Result<Option<R>, StoreError> {
        self.handle.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_table(R::TABLE).map_err(db_err)?;
            let value = table.get(key).map_err(db_err)?;
            value.map(|v| decode::<R>(key, v.value())).transpose()
        })
    }

    /// Every record of the kind, in key order.
    pub(super) fn list<R: Record>(&self) -> Result<Vec<R>, StoreError> {
        Ok(self.list_keyed()?.into_iter().map(|(_, v)| v).collect())
    }

    pub(super) fn list_keyed<R: Record>(&self) -> Result<Vec<(String, R)>, StoreError> {
        self.handle.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_table(R::TABLE).map_err(db_err)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                let key = k.value().to_string();
                let value = decode::<R>(&key, v.value())?;
                out.push((key, value));
            }
            Ok(out)
        })
    }

    /// The records with keys in `start..end`, in key order.
    pub(super) fn list_range<R: Record>(
        &self,
        (start, end): (String, String),
    ) -> Result<Vec<R>, StoreError> {
        self.handle.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_table(R::TABLE).map_err(db_err)?;
            let mut out = Vec::new();
            for entry in table.range(start.as_str()..end.as_str()).map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                out.push(decode::<R>(k.value(), v.value())?);
            }
            Ok(out)
        })
    }

    /// Writes `record` under its own key, in its own transaction.
    pub(super) fn put<R: Keyed>(&self, record: &R) -> Result<(), StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
            insert(&txn, record)?;
            txn.commit().map_err(db_err)
        })
    }

    /// Returns whether the record existed.
    pub(super) fn delete<R: Record>(&self, key: &str) -> Result<bool, StoreError> {
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
            let existed = txn
                .open_table(R::TABLE)
                .map_err(db_err)?
                .remove(key)
                .map_err(db_err)?
                .is_some();
            txn.commit().map_err(db_err)?;
            Ok(existed)
        })
    }
}

pub(super) fn encode<R: Serialize>(value: &R) -> Vec<u8> {
    // Records are plain structs with string-keyed maps: serde_json cannot fail on them.
    #[allow(clippy::expect_used)]
    serde_json::to_vec(value).expect("records serialize to JSON")
}

pub(super) fn decode<R: Record>(key: &str, bytes: &[u8]) -> Result<R, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: R::NAME,
        key: key.to_string(),
        why: e.to_string(),
    })
}
