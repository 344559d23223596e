//! Apps: what an app is and what it asks for.
//!
//! This module owns the app-level vocabulary that the rest of the control plane builds on: the
//! validated app name ([`name::AppName`]), the image reference people paste
//! ([`image_ref::ImageRef`]) and the app contract read from the image
//! ([`manifest::Manifest`]). Everything here is pure: no Docker, no store, no network. The
//! deploy / update / rollback logic that combines these with `docker` and `services` lives in
//! its own submodules.

pub mod image_ref;
pub mod manifest;
pub mod name;
