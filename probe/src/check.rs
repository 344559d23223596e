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
            Ok(greeting) if greeting.is_empty() => println!("ok {addr} (connected)"),
            Ok(greeting) => println!("ok {addr} (connected, server said {greeting:?})"),
            Err(e) => {
                println!("FAIL {addr}: {e}");
                all_ok = false;
            }
        }
    }
    all_ok
}

/// Connects, then returns the printable part of whatever the server sent first (MariaDB's
/// handshake names its version; a "Host ... is not allowed" error would show here too).
async fn check(addr: &str) -> Result<String, String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("not an IP:PORT: {e}"))?;
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(GREETING_WAIT, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Ok(printable(&buf[..n])),
        Ok(Err(e)) => Err(format!("read: {e}")),
        Err(_) => Ok(String::new()),
    }
}

/// Runs of at least 4 printable ASCII characters, joined by spaces, at most 80 characters.
fn printable(bytes: &[u8]) -> String {
    let text: Vec<String> = bytes
        .split(|b| !(b.is_ascii_graphic() || *b == b' '))
        .filter(|run| run.len() >= 4)
        .map(|run| String::from_utf8_lossy(run).into_owned())
        .collect();
    text.join(" ").chars().take(80).collect()
}
