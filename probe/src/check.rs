//! `probe check-tcp IP:PORT...`: connects to each address and reports what answered, so a
//! test environment can prove that a container on the app network reaches a host service.
//! Addresses must be IPs (no name lookup in a static binary).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long to wait for a greeting (MariaDB speaks first; AMQP and HTTP wait for the client).
const GREETING_WAIT: Duration = Duration::from_millis(500);

/// Checks every address; true when all of them accepted a connection.
pub async fn run(addrs: &[String]) -> bool {
    let mut all_ok = true;
    for addr in addrs {
        match check(addr).await {
            Ok(greeting) => println!("ok {addr} ({greeting} greeting bytes)"),
            Err(e) => {
                println!("FAIL {addr}: {e}");
                all_ok = false;
            }
        }
    }
    all_ok
}

async fn check(addr: &str) -> Result<usize, String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("not an IP:PORT: {e}"))?;
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(GREETING_WAIT, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(format!("read: {e}")),
        Err(_) => Ok(0),
    }
}
