//! minicloud: the control plane and the binary around the edge in `minicloud-proxy`.
#![forbid(unsafe_code)]

pub mod apps;
pub mod docker;
