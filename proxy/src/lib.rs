//! minicloud's edge: host routing, TLS by SNI and ACME, on Pingora.
#![forbid(unsafe_code)]
