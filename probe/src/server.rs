//! The listener loop: accepts connections, serves HTTP/1.1 (with upgrades, for `/ws`) and logs
//! one line per request. The caller binds the socket and decides when to stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::Request;
use crate::routes;

/// Serves until `shutdown` resolves. Connections still open then are dropped: the probe is
/// asked to exit promptly on SIGTERM, and draining is the platform's job, not the app's.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) {
    let config = Arc::new(config);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("probe: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let config = Arc::clone(&config);
        tokio::spawn(async move {
            let service = service_fn(move |req: Request| {
                let config = Arc::clone(&config);
                async move {
                    let started = Instant::now();
                    let (method, uri) = (req.method().clone(), req.uri().clone());
                    let resp = routes::handle(req, &config).await;
                    println!(
                        "{peer} {method} {uri} {} {}ms",
                        resp.status().as_u16(),
                        started.elapsed().as_millis()
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                eprintln!("probe: connection from {peer}: {e}");
            }
        });
    }
}
