//! minicloud: the control plane and the binary around the edge in `minicloud-proxy`.
//!
//! `serve` wires the parts together; `plane` is the shared handle every operation takes;
//! `api` and `cli` are two faces of the same operations; `docker` is the only module that
//! talks to the Docker engine.
#![forbid(unsafe_code)]

pub mod api;
pub mod apps;
pub mod auth;
pub mod certs;
pub mod cli;
pub mod config;
pub mod docker;
pub mod model;
pub mod plane;
pub mod routes;
pub mod serve;
pub mod services;
pub mod store;
