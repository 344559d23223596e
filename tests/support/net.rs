//! Loopback networking for tests: free ports, and a forwarder a test can switch off.

use std::net::TcpListener;

/// A free TCP port on loopback (bound then released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A TCP forwarder on loopback to a real service, that a test can take down and bring back
/// on the same port: "MariaDB stopped" without stopping the MariaDB other tests share. It can
/// also hold new connections (accepted, nothing forwarded) until released: "MariaDB is slow",
/// so a test can look at what happens meanwhile without racing the clock.
pub struct Switch {
    pub port: u16,
    target: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
    open: tokio::sync::watch::Sender<bool>,
}

impl Switch {
    pub async fn new(target: &str) -> Self {
        let mut s = Self {
            port: free_port(),
            target: target.parse().unwrap(),
            task: None,
            open: tokio::sync::watch::Sender::new(true),
        };
        s.up().await;
        s
    }

    pub async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let target = self.target;
        let open = self.open.clone();
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut open = open.subscribe();
                tokio::spawn(async move {
                    if open.wait_for(|o| *o).await.is_err() {
                        return;
                    }
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Stops listening: new connections are refused (open ones are left alone).
    pub async fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// New connections are accepted but wait, unanswered, until [`Switch::release`].
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
