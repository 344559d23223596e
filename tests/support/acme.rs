//! Pebble, Let's Encrypt's test CA, as the ACME tests use it: its settings from the test
//! environment (`scripts/test-env.sh`), a lock that serializes tests needing its HTTP-01
//! port, its current root, and a TLS client that trusts only that root.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::env::test_env;
use super::{wait_for, Minicloud};

/// Pebble's settings; a test fails, rather than skips, when they are missing.
pub struct Pebble {
    pub directory: String,
    pub ca_file: String,
    pub roots_url: String,
    /// The port Pebble connects to for HTTP-01: the edge under test must listen there.
    pub http_port: u16,
    pub challtestsrv: String,
}

impl Pebble {
    pub fn from_env() -> Self {
        Self {
            directory: test_env("MINICLOUD_TEST_ACME_DIRECTORY"),
            ca_file: test_env("MINICLOUD_TEST_ACME_CA_FILE"),
            roots_url: test_env("MINICLOUD_TEST_ACME_ROOTS_URL"),
            http_port: test_env("MINICLOUD_TEST_ACME_HTTP_PORT")
                .parse()
                .expect("MINICLOUD_TEST_ACME_HTTP_PORT is a port"),
            challtestsrv: test_env("MINICLOUD_TEST_CHALLTESTSRV_URL"),
        }
    }

    /// The environment that points a minicloud at Pebble.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "MINICLOUD_ACME_EMAIL".into(),
                "tests@minicloud.example".into(),
            ),
            ("MINICLOUD_ACME_DIRECTORY".into(), self.directory.clone()),
            ("MINICLOUD_ACME_CA_ROOT".into(), self.ca_file.clone()),
        ]
    }

    /// Starts minicloud on Pebble's HTTP-01 port, with ACME pointed at Pebble.
    pub async fn minicloud(&self) -> Minicloud {
        Minicloud::start_on_http_port(self.env(), self.http_port).await
    }

    fn client(&self) -> reqwest::Client {
        let ca = std::fs::read(&self.ca_file).expect("Pebble's CA file");
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("PEM"))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    }

    /// The root Pebble's certificates chain to (a new one at every Pebble start).
    pub async fn root(&self) -> String {
        let resp = self
            .client()
            .get(&self.roots_url)
            .send()
            .await
            .expect("Pebble's management API answers");
        assert!(resp.status().is_success(), "{resp:?}");
        resp.text().await.expect("root PEM")
    }

    /// Makes challtestsrv's DNS answer `addr` for `host` (Pebble then validates there).
    pub async fn point_dns(&self, host: &str, addr: &str) {
        let resp = reqwest::Client::new()
            .post(format!("{}/add-a", self.challtestsrv))
            .json(&serde_json::json!({"host": host, "addresses": [addr]}))
            .send()
            .await
            .expect("challtestsrv answers");
        assert!(resp.status().is_success(), "{resp:?}");
    }

    pub async fn clear_dns(&self, host: &str) {
        let _ = reqwest::Client::new()
            .post(format!("{}/clear-a", self.challtestsrv))
            .json(&serde_json::json!({"host": host}))
            .send()
            .await;
    }
}

/// Held for the length of a test that needs Pebble's HTTP-01 port: one minicloud at a time
/// can listen there, and nextest runs each test in its own process.
pub struct PortLock(#[allow(dead_code)] std::fs::File);

pub fn lock_acme_port() -> PortLock {
    let path = std::env::temp_dir().join("minicloud-acme-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("lock file");
    file.lock().expect("lock the ACME test port");
    PortLock(file)
}

/// The serial (hex, no colons) of the certificate the edge serves for `sni`, verified by a
/// client that trusts only `root_pem`. Panics if the handshake fails.
pub async fn verified_serial(addr: SocketAddr, sni: &str, root_pem: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(cert.expect("root PEM")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let tls = connector
        .connect(ServerName::try_from(sni.to_string()).expect("sni"), tcp)
        .await
        .unwrap_or_else(|e| panic!("a client trusting only Pebble's root refused {sni}: {e}"));
    let (_, conn) = tls.get_ref();
    let leaf = conn.peer_certificates().expect("a certificate")[0].clone();
    super::certificate_names(leaf.as_ref()).1.replace(':', "")
}

/// The host's entry in `GET /api/certificates`.
pub async fn cert_status(mc: &Minicloud, host: &str) -> Option<serde_json::Value> {
    let list: Vec<serde_json::Value> = mc.api().get("/api/certificates").await.json().await.ok()?;
    list.into_iter().find(|c| c["host"] == host)
}

/// Waits until the host's certificate is in `state`; returns its status.
pub async fn wait_for_state(
    mc: &Minicloud,
    host: &str,
    state: &str,
    timeout: Duration,
) -> serde_json::Value {
    wait_for(&format!("{host} to be {state}"), timeout, || async {
        let status = cert_status(mc, host).await?;
        (status["state"] == state).then_some(status)
    })
    .await
}

/// How many orders minicloud's log shows for `host`.
pub fn orders_in_log(log: &str, host: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("ACME order created") && l.contains(host))
        .count()
}
