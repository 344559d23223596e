//! minicloud: the control plane and the binary around the edge in `minicloud-proxy`.
//!
//! Layers, each importing only from those below it (`tests/module_graph.rs` checks):
//!
//! 1. `model`: the vocabulary (names, images, manifests, actors, operations), pure.
//! 2. `store`, `docker`, `services`, `bus`, `locks`: state, the engine, the shared services,
//!    events and per-app locks. `docker` is the only module that talks to the Docker engine.
//! 3. `config` and `ctx`: settings, and the one context every operation takes.
//! 4. `apps`, `routes`, `certs`, `auth`: the operations.
//!    `backups` sits above them (it takes apps down and brings them back), beside `web`.
//! 5. `web` (the admin host: API, webhook) and `cli`: faces of the same operations.
//! 6. `serve` (and `main`): composition, and the background tasks (`tasks`).
#![forbid(unsafe_code)]

pub mod apps;
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
