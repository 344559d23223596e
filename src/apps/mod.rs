//! Apps: what an app is, and its whole lifecycle on Docker.
//!
//! The pure vocabulary: the validated app name ([`name::AppName`]), the image reference people
//! paste ([`image_ref::ImageRef`]), the app contract read from the image
//! ([`manifest::Manifest`]), the environment ([`env`]) and reconcile planning ([`reconcile`]).
//! The I/O: [`Apps`] owns every operation on apps (one at a time per app), runs deploys
//! ([`deploy`]), retires old revisions in the background ([`retire`]), probes health
//! ([`health`]) and recovers at start ([`recover`]); it reaches the engine only through
//! `crate::docker`.

pub mod deploy;
pub mod env;
pub mod error;
pub mod events;
pub mod health;
mod ops;
pub mod reconcile;
mod recover;
pub mod retire;
mod status;

pub use deploy::Deployed;
pub use error::AppError;
pub use events::{AppEvent, Events};
pub use ops::{AppLock, AppSettings, Apps, NewApp, DEFAULT_MEMORY_MB};
pub use recover::Recovered;
pub use retire::Retirements;
pub use status::{AppState, AppStatus};
