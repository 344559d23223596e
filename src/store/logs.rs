//! The last lines of each app's most recently removed web container ([`RemovedLog`]): once
//! minicloud removes a container (a revision replaced by a deploy, a dead one recreated), the
//! engine forgets its log, and this is what is left to read why it ended.

use crate::model::name::AppName;

use super::table::{Keyed, Record};
use super::{Store, StoreError};

/// The most lines kept, and the most bytes: a page of them, not a log store.
pub const REMOVED_LOG_LINES: usize = 200;
pub const REMOVED_LOG_BYTES: usize = 64 * 1024;

/// An app's web container that minicloud removed, and its last lines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemovedLog {
    pub app: AppName,
    pub revision: u64,
    /// The container's name.
    pub container: String,
    /// Unix seconds.
    pub removed_at: i64,
    /// How it last ended, when the engine said.
    pub exit_code: Option<i64>,
    /// Why minicloud removed it: "replaced by revision 4", "recreated after it stopped".
    pub why: String,
    /// At most [`REMOVED_LOG_LINES`] lines and [`REMOVED_LOG_BYTES`], the newest kept.
    pub lines: Vec<String>,
}

/// Keyed by the app: one per app, the newest.
impl Record for RemovedLog {
    const NAME: &'static str = "removed_logs";
}
impl Keyed for RemovedLog {
    fn key(&self) -> String {
        self.app.as_str().to_owned()
    }
}

impl Store {
    pub fn removed_log(&self, app: &AppName) -> Result<Option<RemovedLog>, StoreError> {
        self.get(app.as_str())
    }

    pub fn put_removed_log(&self, log: &RemovedLog) -> Result<(), StoreError> {
        self.put(log)
    }
}
