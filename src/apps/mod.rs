//! Apps: what an app is, and its whole lifecycle on Docker.
//!
//! Pure parts: the environment ([`env`]) and reconcile planning ([`reconcile`]); the names,
//! images and manifests they work on are `crate::model`'s.
//! The I/O: [`Apps`] owns every operation on apps (one at a time per app), runs deploys
//! ([`deploy`]), retires old revisions and prunes their images in the background ([`retire`],
//! `prune`), probes health ([`health`]), samples CPU use in the background (`usage`) and
//! recovers at start ([`recover`]); it reaches the engine only through `crate::docker`.

mod attach;
pub mod deploy;
pub mod env;
pub mod error;
pub mod health;
mod logs;
mod ops;
mod prune;
pub mod reconcile;
mod recover;
mod removed_log;
pub mod retire;
mod spawn;
mod status;
mod usage;
mod watch;

pub use attach::ServiceNeeds;
pub use deploy::Deployed;
pub use error::{AppError, DeployFailure, PartlyRemoved};
pub use ops::{
    AppSettings, Apps, BeforeNewImage, DeployRequest, EnvChange, NewApp, TakenDown,
    DEFAULT_MEMORY_MB,
};
pub use recover::Recovered;
pub use removed_log::removed_log_heading;
pub use retire::Retirements;
pub use status::{AppState, AppStatus};
pub use usage::Usage;
pub use watch::Followed;
