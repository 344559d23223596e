//! Shared helpers for integration tests: start `minicloud serve` on free ports, talk to it
//! over real sockets, run small upstreams, wait for conditions with a deadline. The test
//! environment's variables (`env`), the shared services (`services`), loopback networking
//! (`net`), a small disk (`disk`), the S3 server (`s3`), backups driven from outside (`backups`)
//! and the app clean-up guard (`cleanup`) each have one module here.
// Tests read their own environment (the test env file's variables); the rule that only
// src/config reads the environment is for minicloud itself.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)] // each test binary uses a different subset

pub mod acme;
pub mod backups;
pub mod browser;
pub mod cleanup;
pub mod disk;
pub mod env;
pub mod net;
pub mod s3;
pub mod services;
pub mod upstream;

#[allow(unused_imports)] // each test binary uses a different subset
pub use {cleanup::AppCleanup, env::test_env, net::free_port};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-admin-token-0123456789abcdef0123";

/// `prefix` with a random suffix: app names that no concurrent test run shares.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// The local registry the test script fills with the probe images.
pub fn registry() -> String {
    env::try_test_env("MINICLOUD_TEST_REGISTRY").unwrap_or_else(|| "127.0.0.1:5000".into())
}

/// A probe image reference in the local registry, e.g. `probe:v1`.
pub fn image(name_and_tag: &str) -> String {
    format!("{}/{name_and_tag}", registry())
}

/// Runs the docker CLI and returns its stdout (tests look at the real engine's state).
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Names of all containers (any state) of `app`.
pub fn containers_of(app: &str) -> Vec<String> {
    let listing = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=minicloud.app={app}"),
        "--format",
        "{{.Names}}",
    ]);
    let mut names: Vec<String> = listing.lines().map(str::to_owned).collect();
    names.sort();
    names
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `minicloud serve` child process with its own data dir and ports.
pub struct Minicloud {
    child: Option<Child>,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub http_port: u16,
    pub https_port: u16,
    pub api_port: u16,
    pub domain: String,
    extra_env: Vec<(String, String)>,
    log_path: PathBuf,
}

impl Minicloud {
    /// Starts minicloud on fresh ports and a fresh data dir, and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(Vec::new()).await
    }

    pub async fn start_with(extra_env: Vec<(String, String)>) -> Self {
        Self::start_on_http_port(extra_env, free_port()).await
    }

    /// Like `start_with`, with a chosen HTTP port (ACME tests: the port Pebble validates on).
    pub async fn start_on_http_port(extra_env: Vec<(String, String)>, http_port: u16) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut mc = Self {
            child: None,
            data_dir: tmp.path().to_path_buf(),
            log_path: tmp.path().join("minicloud.log"),
            _tmp: Some(tmp),
            http_port,
            https_port: free_port(),
            api_port: free_port(),
            domain: "mc.test".into(),
            extra_env,
        };
        mc.spawn().await;
        mc
    }

    /// Like `start_with`, on `data_dir`, which the test prepared (and keeps): a new server
    /// after `minicloud restore`, say.
    pub async fn start_in(data_dir: &Path, extra_env: Vec<(String, String)>) -> Self {
        let mut mc = Self {
            child: None,
            data_dir: data_dir.to_path_buf(),
            log_path: data_dir.join("minicloud.log"),
            _tmp: None,
            http_port: free_port(),
            https_port: free_port(),
            api_port: free_port(),
            domain: "mc.test".into(),
            extra_env,
        };
        mc.spawn().await;
        mc
    }

    /// `minicloud serve` with `args`, this one's settings, and its output to `log_path`.
    fn command(&self, args: &[&str], log_path: &Path) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_minicloud"));
        cmd.arg("serve")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MINICLOUD_DOMAIN", &self.domain)
            .env("MINICLOUD_DATA_DIR", &self.data_dir)
            .env("MINICLOUD_LISTEN", "127.0.0.1")
            .env("MINICLOUD_HTTP_PORT", self.http_port.to_string())
            .env("MINICLOUD_HTTPS_PORT", self.https_port.to_string())
            .env(
                "MINICLOUD_API_LISTEN",
                format!("127.0.0.1:{}", self.api_port),
            )
            .env("MINICLOUD_ADMIN_TOKEN", TOKEN)
            .env("MINICLOUD_THREADS", "2")
            .env("MINICLOUD_SHUTDOWN_GRACE", "1")
            // A backup firing in the middle of an unrelated test would only add load.
            .env("MINICLOUD_BACKUP_SCHEDULE", "false")
            .env("MINICLOUD_BACKUP_BEFORE_DEPLOY", "false")
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log));
        cmd
    }

    async fn spawn(&mut self) {
        let mut cmd = self.command(&[], &self.log_path);
        self.child = Some(cmd.spawn().expect("start minicloud"));
        let api = self.api_url("/api/health");
        let https = SocketAddr::from(([127, 0, 0, 1], self.https_port));
        let client = reqwest::Client::new();
        wait_for("minicloud to answer", Duration::from_secs(20), || {
            let client = client.clone();
            let api = api.clone();
            async move {
                let ok = client.get(&api).bearer_auth(TOKEN).send().await.ok()?;
                tokio::net::TcpStream::connect(https).await.ok()?;
                ok.status().is_success().then_some(())
            }
        })
        .await;
    }

    /// Starts `minicloud serve --upgrade` on this one's data dir, ports and settings, logging
    /// to `successor.log` in the data dir, and returns at once: it waits for this one's
    /// sockets, which this one sends on SIGQUIT. Keep this one until the successor is done
    /// with the data dir (its temporary dir goes with it).
    pub fn spawn_successor(&self) -> Minicloud {
        let log_path = self.data_dir.join("successor.log");
        let child = self
            .command(&["--upgrade"], &log_path)
            .spawn()
            .expect("start the successor");
        Minicloud {
            child: Some(child),
            data_dir: self.data_dir.clone(),
            _tmp: None,
            http_port: self.http_port,
            https_port: self.https_port,
            api_port: self.api_port,
            domain: self.domain.clone(),
            extra_env: self.extra_env.clone(),
            log_path,
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("minicloud is running").id()
    }

    /// The exit status once the process has exited by itself, without waiting; `None` while
    /// it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut().expect("minicloud was running");
        let status = child.try_wait().expect("wait for minicloud")?;
        self.child = None;
        Some(status)
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    pub fn https_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.https_port))
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    pub fn admin_host(&self) -> String {
        format!("admin.{}", self.domain)
    }

    /// An HTTPS URL on the edge for `host`.
    pub fn https_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https_port)
    }

    pub fn http_url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.http_port)
    }

    /// A client that resolves `hosts` to the edge and accepts its self-signed certificates.
    pub fn client_for(&self, hosts: &[&str]) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30));
        for host in hosts {
            // The port comes from the URL; only the address is overridden.
            builder = builder.resolve(host, self.https_addr());
        }
        builder.build().expect("client")
    }

    /// GETs `path` on `host` through the edge over HTTPS and returns the body.
    pub async fn get_text(&self, host: &str, path: &str) -> String {
        self.client_for(&[host])
            .get(self.https_url(host, path))
            .send()
            .await
            .expect("the edge answers")
            .text()
            .await
            .expect("a body")
    }

    /// The API, directly on its loopback address.
    pub fn api(&self) -> Api {
        Api {
            base: self.api_url(""),
            client: reqwest::Client::new(),
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("minicloud is running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("signal minicloud");
        child.wait().expect("wait for minicloud")
    }

    /// Sends `signal` to the running process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("minicloud is running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)
            .expect("signal minicloud");
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&mut self) -> Child {
        let child = self.child.take().expect("minicloud is running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("signal minicloud");
        child
    }

    /// Kills the process outright (SIGKILL): no drain, no clean-up, like a crash.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("minicloud is running");
        child.kill().expect("kill minicloud");
        child.wait().expect("wait for minicloud");
    }

    /// Sets a variable for the next start (it wins over one set before).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts again after `kill` or `terminate`, on the same ports and data dir.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "minicloud is still running");
        self.spawn().await;
    }

    /// Stops and starts again on the same ports and data dir.
    pub async fn restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "minicloud exited with {status}");
        self.spawn().await;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn data_path(&self) -> &Path {
        &self.data_dir
    }

    /// This minicloud's instance id, the `minicloud.instance` label on the containers it makes.
    /// The state store is the server's alone while it runs: call this after `stop`.
    pub fn instance_id(&self) -> String {
        assert!(self.child.is_none(), "stop minicloud first");
        let path = self.data_dir.join("minicloud").join("state.redb");
        minicloud::store::Store::open(&path)
            .and_then(|store| store.instance_id())
            .expect("the instance id in the state store")
    }
}

impl Drop for Minicloud {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The control plane API with the test token.
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("API answers")
    }

    /// GETs `path` and decodes the JSON answer.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.get(path).await.json().await.expect("a JSON answer")
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("API answers")
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .put(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("API answers")
    }

    pub async fn client_patch(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .patch(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("API answers")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("API answers")
    }

    /// Adds a route and asserts it was accepted.
    pub async fn add_route(&self, host: &str, upstream: SocketAddr) {
        let resp = self
            .post(
                "/api/routes",
                serde_json::json!({"host": host, "upstream": upstream.to_string()}),
            )
            .await;
        let status = resp.status();
        assert_eq!(
            status,
            201,
            "add route: {}",
            resp.text().await.unwrap_or_default()
        );
    }
}

/// A TLS connection to the edge with `sni`, accepting any certificate; HTTP/1.1 unless `h2`.
pub async fn tls_connect(
    addr: SocketAddr,
    sni: &str,
    h2: bool,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tls_over(tcp, sni, h2).await
}

/// [`tls_connect`] over a connection the caller opened (or wrapped).
pub async fn tls_over<S>(io: S, sni: &str, h2: bool) -> tokio_rustls::client::TlsStream<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    try_tls_over(io, sni, h2).await.expect("TLS handshake")
}

/// [`tls_over`], for a handshake that may fail.
pub async fn try_tls_over<S>(
    io: S,
    sni: &str,
    h2: bool,
) -> std::io::Result<tokio_rustls::client::TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use rustls::pki_types::ServerName;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAnything))
    .with_no_client_auth();
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::try_from(sni.to_string()).expect("sni"), io)
        .await
}

/// One HTTP/1.1 response read from `conn`, which stays open for the next: the head and the
/// body (by its `content-length`) as text. `None` if the connection ended first.
pub async fn read_response<S>(conn: &mut S) -> Option<(String, String)>
where
    S: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a response with a content-length");
    while got.len() < head_end + length {
        let n = conn.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&got[head_end..]).into_owned();
    Some((head, body))
}

/// A connection that counts the TLS records it receives, by reading their 5-byte headers
/// as they pass: what a packet capture would show, without one.
pub struct RecordCounter<S> {
    inner: S,
    /// Application-data records read in full so far.
    records: Arc<std::sync::atomic::AtomicUsize>,
    /// The header of the record in progress, then how much of its body is still to come.
    header: Vec<u8>,
    remaining: usize,
}

impl<S> RecordCounter<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            records: Arc::default(),
            header: Vec::with_capacity(5),
            remaining: 0,
        }
    }

    /// The count, readable while the connection is in use.
    pub fn records(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        self.records.clone()
    }

    fn saw(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.header.len() < 5 {
                let n = (5 - self.header.len()).min(bytes.len());
                self.header.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                if self.header.len() == 5 {
                    self.remaining = u16::from_be_bytes([self.header[3], self.header[4]]) as usize;
                }
            } else {
                let n = self.remaining.min(bytes.len());
                self.remaining -= n;
                bytes = &bytes[n..];
            }
            if self.header.len() == 5 && self.remaining == 0 {
                if self.header[0] == 23 {
                    self.records
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                self.header.clear();
            }
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for RecordCounter<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if polled.is_ready() {
            let read = buf.filled()[before..].to_vec();
            self.saw(&read);
        }
        polled
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for RecordCounter<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The certificate the edge serves for `sni`, as (DNS names, serial hex).
pub async fn served_certificate(addr: SocketAddr, sni: &str) -> (Vec<String>, String) {
    let tls = tls_connect(addr, sni, false).await;
    let (_, conn) = tls.get_ref();
    let leaf = conn.peer_certificates().expect("a certificate")[0].clone();
    certificate_names(leaf.as_ref())
}

/// DNS names and serial of a DER certificate.
pub fn certificate_names(der: &[u8]) -> (Vec<String>, String) {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).expect("a certificate");
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    (names, cert.raw_serial_as_string())
}

#[derive(Debug)]
struct AcceptAnything;

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
