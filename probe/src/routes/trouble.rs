//! Trouble on demand, for the alert tests: a health path that fails until mended, an exit, and
//! an allocation past the container's memory limit.
//!
//! - `POST /healthz/fail`, `POST /healthz/ok`: `GET /healthz` answers 503 between the two;
//! - `POST /exit?code=N`: answers, then exits with N (default 1);
//! - `POST /alloc?mb=N`: allocates N MiB and touches every page, keeping it (so a limit below
//!   N gets the process killed for memory); answers only if it survives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::StatusCode;

use crate::http::{self, Request, Response};

static FAILING: AtomicBool = AtomicBool::new(false);

pub fn healthz() -> Response {
    if FAILING.load(Ordering::Relaxed) {
        http::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "failing on purpose (POST /healthz/ok mends it)\n",
        )
    } else {
        http::text(StatusCode::OK, "ok")
    }
}

pub fn set_failing(failing: bool) -> Response {
    FAILING.store(failing, Ordering::Relaxed);
    http::text(StatusCode::OK, if failing { "failing\n" } else { "ok\n" })
}

pub fn exit(req: &Request) -> Response {
    let code = match http::query_param(req, "code").map(str::parse::<i32>) {
        None => 1,
        Some(Ok(c)) => c,
        Some(Err(_)) => return http::bad_request("code must be a number"),
    };
    println!("probe: exiting with status {code} as asked");
    tokio::spawn(async move {
        // Long enough for the answer to leave.
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::process::exit(code);
    });
    http::text(StatusCode::OK, format!("exiting with {code}\n"))
}

pub fn alloc(req: &Request) -> Response {
    let Some(Ok(mb)) = http::query_param(req, "mb").map(str::parse::<usize>) else {
        return http::bad_request("give mb=N");
    };
    println!("probe: allocating {mb} MiB as asked");
    let mut block = vec![0u8; mb * 1024 * 1024];
    // Touch every page so the memory is really used, not only reserved.
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    let kept = block.iter().step_by(4096).filter(|b| **b == 1).count();
    std::mem::forget(block);
    http::text(
        StatusCode::OK,
        format!("allocated {mb} MiB ({kept} pages)\n"),
    )
}
