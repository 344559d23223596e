//! `/confinement?threads=N`: what the container lets the app do, as an attacker inside it
//! would try. `raw_socket` is the error of opening a raw ICMP socket (`null` when it opened:
//! `CAP_NET_RAW` is held); `no_new_privs`, `cap_eff` and `cap_bnd` are the kernel's lines from
//! `/proc/self/status`; `threads_started` is how many of N extra threads could be started at
//! once (a fork bomb's reach: the pids limit counts threads).

use serde_json::json;

use crate::http::{self, Request, Response};

/// The most threads one call tries, so a probe without a pids limit stays a probe.
const MAX_THREADS: usize = 2000;

pub fn handle(req: &Request) -> Response {
    let threads = http::query_param(req, "threads")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_THREADS);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    };
    http::json(&json!({
        "raw_socket": raw_socket(),
        "no_new_privs": field("NoNewPrivs"),
        "cap_eff": field("CapEff"),
        "cap_bnd": field("CapBnd"),
        "threads_started": start_threads(threads),
    }))
}

/// `None` when a raw socket opened, else the error.
fn raw_socket() -> Option<String> {
    use socket2::{Domain, Protocol, Socket, Type};
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .err()
        .map(|e| e.to_string())
}

/// Starts up to `n` threads that all wait until the count is taken, then lets them go.
fn start_threads(n: usize) -> usize {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Arc::new(std::sync::Mutex::new(release_rx));
    let mut started = Vec::new();
    for _ in 0..n {
        let rx = release_rx.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = rx.lock().map(|rx| rx.recv());
            });
        match spawned {
            Ok(handle) => started.push(handle),
            Err(_) => break,
        }
    }
    let count = started.len();
    drop(release_tx);
    for handle in started {
        let _ = handle.join();
    }
    count
}
