//! The audit log's table: one record per change, keyed by time so the newest are read first
//! and the oldest dropped as one range. What goes in and what it means is `crate::audit`'s.

use redb::{ReadableDatabase, ReadableTable};

use super::table::Record;
use super::{db_err, Store, StoreError};
use crate::model::Actor;

/// One change: who made it, when, from where, what it was and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Unix seconds.
    pub at: i64,
    pub actor: Actor,
    /// The client's address as the edge saw it, `local` on the loopback API port; `None`
    /// for what minicloud did by itself.
    pub ip: Option<String>,
    /// What was asked or what happened, e.g. `POST /api/apps/blog/deploy`, `deployed blog
    /// revision 3`.
    pub what: String,
    /// Whether it was done.
    pub ok: bool,
    /// How it ended, in words: `200 OK`, `403 Forbidden`, `failed: …`.
    pub outcome: String,
}

/// Keyed `<unix seconds, 12 digits>-<sequence>-<random>`: time order (the sequence orders one
/// second's entries), and the random part keeps two apart after a restart in the same second.
impl Record for AuditRecord {
    const NAME: &'static str = "audit";
}

fn time_key(at: i64) -> String {
    format!("{:012}", at.max(0))
}

/// Which entries a reader wants; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Matches the actor's name (user, token, app of a webhook) or kind (`system`).
    pub actor: Option<String>,
    /// A piece of the `what`, case-insensitive.
    pub what: Option<String>,
    /// Only failures.
    pub failed_only: bool,
    /// Unix seconds: nothing older.
    pub since: Option<i64>,
}

impl AuditFilter {
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let actor_ok = self.actor.as_deref().is_none_or(|want| {
            let (kind, name) = match &r.actor {
                Actor::Token(n) => ("token", n.as_str()),
                Actor::User(n) => ("user", n.as_str()),
                Actor::Webhook(app) => ("webhook", app.as_str()),
                Actor::System => ("system", ""),
            };
            want == kind || want == name
        });
        let what_ok = self
            .what
            .as_deref()
            .is_none_or(|w| r.what.to_lowercase().contains(&w.to_lowercase()));
        actor_ok && what_ok && !(self.failed_only && r.ok) && self.since.is_none_or(|s| r.at >= s)
    }
}

impl Store {
    pub fn add_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = format!(
            "{}-{seq:012}-{:08x}",
            time_key(record.at),
            rand::random::<u32>()
        );
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
            super::table::insert_at(&txn, &key, record)?;
            txn.commit().map_err(db_err)
        })
    }

    /// Up to `limit` entries that match, newest first.
    pub fn audit(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let from = time_key(filter.since.unwrap_or(0));
        self.handle.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_table(AuditRecord::TABLE).map_err(db_err)?;
            let mut out = Vec::new();
            for entry in table.range(from.as_str()..).map_err(db_err)?.rev() {
                let (k, v) = entry.map_err(db_err)?;
                let record = super::table::decode::<AuditRecord>(k.value(), v.value())?;
                if filter.matches(&record) {
                    out.push(record);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    /// Drops every entry older than `before` (Unix seconds); returns how many.
    pub fn prune_audit(&self, before: i64) -> Result<usize, StoreError> {
        let end = time_key(before);
        self.handle.write(|db| {
            let txn = db.begin_write().map_err(db_err)?;
            let count = {
                let mut table = txn.open_table(AuditRecord::TABLE).map_err(db_err)?;
                let keys: Vec<String> = table
                    .range(..end.as_str())
                    .map_err(db_err)?
                    .filter_map(|e| e.ok().map(|(k, _)| k.value().to_owned()))
                    .collect();
                for key in &keys {
                    table.remove(key.as_str()).map_err(db_err)?;
                }
                keys.len()
            };
            txn.commit().map_err(db_err)?;
            Ok(count)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: i64, actor: Actor, ok: bool) -> AuditRecord {
        AuditRecord {
            at,
            actor,
            ip: Some("203.0.113.9".into()),
            what: format!("POST /api/routes at {at}"),
            ok,
            outcome: if ok { "200 OK" } else { "400 Bad Request" }.into(),
        }
    }

    #[test]
    fn entries_come_back_newest_first_filtered_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store.add_audit(&entry(100, Actor::System, true)).unwrap();
        store
            .add_audit(&entry(200, Actor::User("ann".into()), false))
            .unwrap();
        store
            .add_audit(&entry(200, Actor::Token("ci".into()), true))
            .unwrap();
        let all = store.audit(&AuditFilter::default(), 10).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].at, 100, "oldest last");
        assert_eq!(store.audit(&AuditFilter::default(), 1).unwrap().len(), 1);
        let ann = AuditFilter {
            actor: Some("ann".into()),
            ..AuditFilter::default()
        };
        assert_eq!(store.audit(&ann, 10).unwrap().len(), 1);
        let failed = AuditFilter {
            failed_only: true,
            ..AuditFilter::default()
        };
        assert_eq!(
            store.audit(&failed, 10).unwrap()[0].actor,
            Actor::User("ann".into())
        );
        let system = AuditFilter {
            actor: Some("system".into()),
            what: Some("ROUTES AT 100".into()),
            ..AuditFilter::default()
        };
        assert_eq!(store.audit(&system, 10).unwrap().len(), 1);
        let recent = AuditFilter {
            since: Some(150),
            ..AuditFilter::default()
        };
        assert_eq!(store.audit(&recent, 10).unwrap().len(), 2);
        assert_eq!(store.prune_audit(200).unwrap(), 1);
        assert_eq!(store.audit(&AuditFilter::default(), 10).unwrap().len(), 2);
    }
}
