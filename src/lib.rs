//! minicloud: the control plane and the binary around the edge in `minicloud-proxy`.
//!
//! Layers, each importing only from those below it (`tests/module_graph.rs` checks):
//!
//! 1. `model`: the vocabulary (names, images, manifests, actors, operations), pure.
//! 2. `store`, `docker`, `services`, `bus`, `locks`: state, the engine, the shared services,
//!    events and per-app locks. `docker` is the only module that talks to the Docker engine.
//! 3. `config` and `ctx`: settings, and the one context every operation takes.
//! 4. `apps`, `routes`, `certs`, `auth`: the operations; `audit`, the record of them.
//! 5. `alerts` and `backups`: above the operations. `alerts` watches the engine's events and
//!    tells people through channels; `backups` takes apps down and brings them back.
//! 6. `web` (the admin host: API, webhook, pages) and `cli`: faces of the same operations.
//! 7. `serve` (and `main`): composition, and the background tasks (`tasks`).
#![forbid(unsafe_code)]
// A panic in the control plane takes every app's management down with it: errors are values.
// Start-up code that may stop the process says so with an `#[allow]` and a reason.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod alerts;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod backups;
pub mod bus;
pub mod certs;
pub mod cli;
pub mod config;
pub mod ctx;
pub mod docker;
pub mod locks;
pub mod model;
pub mod routes;
pub mod serve;
pub mod services;
pub mod store;
pub mod tasks;
pub mod web;
