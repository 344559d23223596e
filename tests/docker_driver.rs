//! The Docker driver against the real engine on this machine: no mocks, no skipping.
//!
//! Test images are made here from nothing (`tests/fixtures/docker`: a static C program built
//! with `gcc -static`, `FROM scratch`), the pull path goes through the local registry of
//! `scripts/test-env.sh` on 127.0.0.1:5000. Every name is unique per test, and guards
//! remove containers, images and networks even when an assertion fails, so tests can run
//! concurrently with each other and with other suites.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use minicloud::docker::{
    ContainerSpec, ContainerState, Docker, DockerError, ManagedLabels, PullProgress, Role,
};
use minicloud::model::image_ref::ImageRef;
use minicloud::model::manifest;

const REGISTRY: &str = "127.0.0.1:5000";

// ---------------------------------------------------------------------------------------------
// helpers

async fn docker() -> Docker {
    // A missing engine is a failure, not a skip.
    Docker::connect()
        .await
        .unwrap_or_else(|e| panic!("the Docker engine is required: {e}"))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Runs a command, panicking with its output when it fails.
fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes a local image tag when dropped.
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// Builds `Dockerfile.<kind>` as `tag` from a fresh context: the fixture files, the static
/// binary, and a `nonce` file that is the image's first layer. The nonce makes every test's
/// layers its own: with shared layers a concurrent test's copy makes a pull report "Already
/// exists" instead of downloading, and removing one test's image cannot touch another's.
fn build(kind: &str, tag: &str) -> ImageGuard {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker");
    let dir = tempfile::Builder::new()
        .prefix("docker-fixture")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    std::fs::write(dir.path().join("nonce"), unique("nonce")).unwrap();
    if kind == "app" {
        sh(Command::new("gcc")
            .args(["-static", "-Os", "-o"])
            .arg(dir.path().join("app"))
            .arg(dir.path().join("app.c")));
    }
    // The legacy builder (the engine here has no BuildKit) races with concurrent `docker rmi`
    // in its cache lookup ("unable to find image sha256:…"): skip the cache, nothing in it is
    // ours anyway, and retry the rare leftover race.
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "--no-cache", "-t", tag, "-f"])
        .arg(dir.path().join(format!("Dockerfile.{kind}")))
        .arg(dir.path());
    for attempt in 1.. {
        let out = cmd.output().unwrap();
        if out.status.success() {
            break;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            attempt < 3 && stderr.contains("unable to find image"),
            "{cmd:?} failed:\n{stderr}"
        );
    }
    ImageGuard(tag.to_owned())
}

/// Force-removes containers by name when dropped.
struct ContainerGuard(Vec<String>);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
    }
}

struct NetworkGuard(String);

impl Drop for NetworkGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

/// `minicloud.tmp` containers made from `image` (the manifest reader's helpers).
fn tmp_containers_of(image: &str) -> String {
    sh(Command::new("docker").args([
        "ps",
        "-aq",
        "--filter",
        "label=minicloud.tmp",
        "--filter",
        &format!("ancestor={image}"),
    ]))
}

async fn wait_for_log(docker: &Docker, name: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = docker.last_log_lines(name, 200).await.unwrap();
        if log.lines().any(|l| l.contains(needle)) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log of {name} within 15s:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// connection

#[tokio::test]
async fn connects_and_pings() {
    docker().await.ping().await.unwrap();
}

#[tokio::test]
async fn a_missing_engine_is_reported_clearly() {
    let err = Docker::connect_to("unix:///nonexistent/minicloud-test.sock")
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/minicloud-test.sock"), "{msg}");
    assert!(
        msg.contains("is the Docker engine running? is the socket mounted?"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// read_manifest

#[tokio::test]
async fn read_manifest_yml_json_and_none() {
    let docker = docker().await;
    let base = unique("mc-test-manifest");

    let yml_tag = format!("{base}:yml");
    let _yml = build("app", &yml_tag);
    let (file, text) = docker
        .read_manifest(&yml_tag.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(file, "/cloud_manifest.yml");
    let m = manifest::parse(&file, &text).unwrap();
    assert_eq!(m.name.as_str(), "fixture");
    assert_eq!(m.http_port(), 8080);
    assert_eq!(m.runners[0].command, vec!["/app", "work"]);
    assert_eq!(
        tmp_containers_of(&yml_tag),
        "",
        "a helper container was left behind"
    );

    let json_tag = format!("{base}:json");
    let _json = build("json", &json_tag);
    let (file, text) = docker
        .read_manifest(&json_tag.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(file, "/cloud_manifest.json");
    assert_eq!(
        manifest::parse(&file, &text).unwrap().name.as_str(),
        "fixture-json"
    );
    assert_eq!(
        tmp_containers_of(&json_tag),
        "",
        "a helper container was left behind"
    );

    let none_tag = format!("{base}:none");
    let _none = build("none", &none_tag);
    let err = docker
        .read_manifest(&none_tag.parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::NoManifest { .. }), "{err:?}");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains(&none_tag), "{msg}");
    assert!(
        msg.contains("/cloud_manifest.yml and /cloud_manifest.json"),
        "{msg}"
    );
    assert_eq!(
        tmp_containers_of(&none_tag),
        "",
        "a helper container was left behind"
    );
}

#[tokio::test]
async fn read_manifest_of_a_missing_image_fails_and_leaves_nothing() {
    let docker = docker().await;
    let tag = format!("{}:v1", unique("mc-test-absent"));
    let err = docker
        .read_manifest(&tag.parse().unwrap())
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert!(err.to_string().contains(&tag), "{err}");
}

/// Manifest readers a crash left behind are swept: this minicloud's older than the cutoff
/// go; another minicloud's, and this one's newer than the cutoff (a read in progress), stay.
#[tokio::test]
async fn left_over_manifest_readers_are_swept() {
    let (mine, theirs) = (unique("inst-a"), unique("inst-b"));
    let docker = docker().await.with_instance(&mine);
    let tag = format!("{}:v1", unique("mc-test-sweep"));
    let _image = build("app", &tag);
    let names: Vec<String> = (0..2).map(|_| unique("mc-manifest")).collect();
    let _guard = ContainerGuard(names.clone());
    for (name, instance) in names.iter().zip([&mine, &theirs]) {
        sh(Command::new("docker").args([
            "create",
            "--name",
            name,
            "--label",
            "minicloud.tmp=1",
            "--label",
            &format!("minicloud.instance={instance}"),
            &tag,
            "/never",
        ]));
    }
    let now = minicloud::model::now();
    assert_eq!(docker.sweep_manifest_readers(now - 300).await.unwrap(), 0);
    assert_eq!(docker.sweep_manifest_readers(now + 5).await.unwrap(), 1);
    let left = sh(Command::new("docker").args([
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        "label=minicloud.tmp",
        "--filter",
        &format!("ancestor={tag}"),
    ]));
    assert_eq!(left, names[1], "only the other minicloud's reader stays");
}

// ---------------------------------------------------------------------------------------------
// pull

#[tokio::test]
async fn pull_from_the_local_registry_reports_progress_and_digest() {
    let docker = docker().await;
    let local = format!("{}:v1", unique("mc-test-pull"));
    let remote = format!("{REGISTRY}/{}", local.replace(":v1", "/app:v1"));
    let _local = build("app", &local);
    let _remote = ImageGuard(remote.clone());
    sh(Command::new("docker").args(["tag", &local, &remote]));
    sh(Command::new("docker").args(["push", &remote]));
    let pushed_digest = sh(Command::new("docker").args([
        "inspect",
        "--format",
        "{{index .RepoDigests 0}}",
        &remote,
    ]));
    // Forget the image locally so the pull really downloads it.
    sh(Command::new("docker").args(["rmi", "-f", &remote, &local]));

    let image: ImageRef = remote.parse().unwrap();
    let mut events: Vec<PullProgress> = Vec::new();
    let pulled = docker.pull(&image, None, |p| events.push(p)).await.unwrap();

    assert!(
        pulled.digest.starts_with("sha256:") && pulled.digest.len() == 71,
        "{pulled:?}"
    );
    assert_eq!(pushed_digest, format!("{}@{}", image.name(), pulled.digest));
    assert_eq!(pulled.image.digest(), Some(pulled.digest.as_str()));
    assert_eq!(pulled.image.tag(), Some("v1"));
    assert!(pulled.image_id.starts_with("sha256:"), "{pulled:?}");

    eprintln!("progress events: {events:?}");
    assert!(!events.is_empty(), "no progress events");
    let last = events.last().unwrap();
    // Three layers: the nonce, the binary and the manifest.
    assert_eq!(last.layers_total, 3, "{events:?}");
    assert_eq!(last.layers_done, 3, "{events:?}");
    assert_eq!(last.bytes_done, last.bytes_total, "{events:?}");
    // The binary layer announces its size (the tiny manifest layer may not).
    assert!(last.bytes_total > 0, "{events:?}");
    assert!(
        events
            .windows(2)
            .all(|w| w[0].layers_done <= w[1].layers_done),
        "{events:?}"
    );

    // Pulling by the pinned digest gets the same image again (now without downloading).
    let again = docker.pull(&pulled.image, None, |_| {}).await.unwrap();
    assert_eq!(again.digest, pulled.digest);
    assert_eq!(again.image_id, pulled.image_id);
}

#[tokio::test]
async fn pulling_a_missing_image_names_it_and_what_the_registry_said() {
    let docker = docker().await;
    let image: ImageRef = format!("{REGISTRY}/{}:v1", unique("mc-test-nope"))
        .parse()
        .unwrap();
    let err = docker.pull(&image, None, |_| {}).await.unwrap_err();
    assert!(matches!(err, DockerError::Pull { .. }), "{err:?}");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.starts_with(&format!("cannot pull {image}: ")), "{msg}");
    assert!(
        msg.contains("not found") || msg.contains("unknown"),
        "{msg}"
    );

    // A registry that is not there at all.
    let image: ImageRef = "127.0.0.1:1/nothing/here:v1".parse().unwrap();
    let msg = docker
        .pull(&image, None, |_| {})
        .await
        .unwrap_err()
        .to_string();
    eprintln!("{msg}");
    assert!(
        msg.starts_with("cannot pull 127.0.0.1:1/nothing/here:v1: "),
        "{msg}"
    );
    assert!(msg.contains("connection refused"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// networks and containers

#[tokio::test]
async fn ensure_network_is_idempotent_and_returns_the_gateway() {
    let docker = docker().await;
    let net = unique("mc-test-net");
    let _guard = NetworkGuard(net.clone());
    let gw = docker.ensure_network(&net).await.unwrap();
    assert!(gw.is_ipv4());
    assert_eq!(docker.ensure_network(&net).await.unwrap(), gw);
    let count = sh(Command::new("docker").args([
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("name=^{net}$"),
    ]));
    assert_eq!(count.lines().count(), 1, "{count}");
}

#[tokio::test]
async fn run_inspect_logs_list_stats_stop_remove() {
    let docker = docker().await;
    let id = unique("t");
    let app = id.clone(); // a valid AppName: starts with a letter, short
    let net = format!("mc-test-net-{id}");
    let _net = NetworkGuard(net.clone());
    docker.ensure_network(&net).await.unwrap();

    let tag = format!("mc-test-run-{id}:v1");
    let _image = build("app", &tag);
    let web = format!("mc-{app}-web-3");
    let worker = format!("mc-{app}-worker-3");
    let _containers = ContainerGuard(vec![web.clone(), worker.clone()]);
    let data = tempfile::tempdir().unwrap();

    let spec = ContainerSpec {
        name: web.clone(),
        image: tag.parse().unwrap(),
        env: [("FIXTURE_GREETING".to_owned(), "hello-web".to_owned())].into(),
        labels: ManagedLabels {
            app: app.parse().unwrap(),
            rev: 3,
            role: Role::Web,
            runner: None,
        },
        command: None,
        memory_bytes: Some(64 << 20),
        network: net.clone(),
        data_dir: Some(data.path().to_owned()),
        init: true,
        pids_limit: None,
        cpu_shares: None,
    };
    let running = docker.run(&spec).await.unwrap();
    assert_eq!(running.name, web);

    // As asked: state, labels, env, memory, restart policy, address, log driver.
    let info = docker.inspect(&web).await.unwrap();
    assert_eq!(info.id, running.id);
    assert_eq!(info.state, ContainerState::Running);
    assert_eq!(info.managed, Some(spec.labels.clone()));
    assert!(
        info.env.contains(&"FIXTURE_GREETING=hello-web".to_owned()),
        "{:?}",
        info.env
    );
    assert_eq!(info.memory_bytes, Some(64 << 20));
    assert_eq!(info.restart_policy.as_deref(), Some("unless-stopped"));
    assert_eq!(info.ip_on(&net), Some(running.ip));
    let log_config = sh(Command::new("docker").args([
        "inspect",
        "--format",
        "{{json .HostConfig.LogConfig}}",
        &web,
    ]));
    assert_eq!(
        log_config,
        r#"{"Type":"json-file","Config":{"max-file":"3","max-size":"10m"}}"#
    );

    // Logs: stdout and stderr, lines; the data volume is mounted.
    let log = wait_for_log(&docker, &web, "tick 2").await;
    assert!(log.contains("greeting=hello-web"), "{log}");
    assert!(log.contains("arg1=serve"), "{log}");
    assert!(log.contains("fixture stderr line"), "{log}");
    assert!(log.contains("wrote /data/started"), "{log}");
    assert!(data.path().join("started").exists());
    let tail = docker.last_log_lines(&web, 2).await.unwrap();
    assert_eq!(tail.lines().count(), 2, "{tail}");
    let mut follow = Box::pin(docker.logs(&web, Some(0), true));
    let next = tokio::time::timeout(Duration::from_secs(5), follow.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(next.starts_with("tick "), "{next}");
    drop(follow);

    // A runner: same image, its whole command line, runner labels.
    let worker_spec = ContainerSpec {
        name: worker.clone(),
        command: Some(vec!["/app".into(), "work".into(), "queue-a".into()]),
        labels: ManagedLabels {
            role: Role::Runner,
            runner: Some("worker".into()),
            ..spec.labels.clone()
        },
        data_dir: None,
        init: true,
        pids_limit: None,
        cpu_shares: None,
        ..spec.clone()
    };
    docker.run(&worker_spec).await.unwrap();
    let log = wait_for_log(&docker, &worker, "arg2=queue-a").await;
    assert!(log.contains("arg1=work"), "{log}");

    // list_managed finds both by label, parsed.
    let managed = docker.list_managed().await.unwrap();
    let mine: Vec<_> = managed
        .iter()
        .filter(|c| c.managed.as_ref().is_some_and(|m| m.app.as_str() == app))
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    let w = mine.iter().find(|c| c.name == worker).unwrap();
    assert_eq!(w.managed, worker_spec.labels.clone().into());
    assert_eq!(w.state, ContainerState::Running);
    assert!(w.ip_on(&net).is_some());
    assert_eq!(w.image, tag.parse::<ImageRef>().unwrap().pull_reference());
    assert!(w.image_id.starts_with("sha256:"));

    // Stats from one sample.
    let stats = docker.stats(&web).await.unwrap();
    assert!(stats.memory_bytes > 0, "{stats:?}");
    assert_eq!(stats.memory_limit, Some(64 << 20));
    assert!(stats.cpu_percent >= 0.0, "{stats:?}");

    // run again under the same name (a retried step): the leftover is replaced.
    let again = docker.run(&spec).await.unwrap();
    assert_ne!(again.id, running.id);
    wait_for_log(&docker, &web, "tick 1").await;

    // stop: SIGTERM reaches the app, which exits at once; stopping twice is fine.
    let started = Instant::now();
    docker.stop(&web, Duration::from_secs(10)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop waited for the kill timeout"
    );
    let info = docker.inspect(&web).await.unwrap();
    assert_eq!(info.state, ContainerState::Exited);
    assert_eq!(info.exit_code, Some(0));
    assert!(docker
        .last_log_lines(&web, 1)
        .await
        .unwrap()
        .contains("fixture stopping"));
    docker.stop(&web, Duration::from_secs(1)).await.unwrap();
    let exited = docker.list_managed().await.unwrap();
    assert!(exited
        .iter()
        .any(|c| c.name == web && c.state == ContainerState::Exited));

    // remove: gone, and removing again is fine.
    docker.remove(&web).await.unwrap();
    docker.remove(&worker).await.unwrap();
    let err = docker.inspect(&web).await.unwrap_err();
    assert!(
        matches!(
            err,
            DockerError::NotFound {
                kind: "container",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), format!("container '{web}' not found"));
    docker.remove(&web).await.unwrap();
    assert!(matches!(
        docker.stop(&web, Duration::from_secs(1)).await,
        Err(DockerError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_container_that_cannot_start_is_reported_and_not_kept() {
    let docker = docker().await;
    let id = unique("t");
    let net = format!("mc-test-net-{id}");
    let _net = NetworkGuard(net.clone());
    docker.ensure_network(&net).await.unwrap();
    // A file-only image: there is no program to start.
    let tag = format!("mc-test-nostart-{id}:v1");
    let _image = build("json", &tag);
    let name = format!("mc-{id}-web-1");
    let _container = ContainerGuard(vec![name.clone()]);
    let spec = ContainerSpec {
        name: name.clone(),
        image: tag.parse().unwrap(),
        env: Default::default(),
        labels: ManagedLabels {
            app: id.parse().unwrap(),
            rev: 1,
            role: Role::Web,
            runner: None,
        },
        command: Some(vec!["/no-such-program".into()]),
        memory_bytes: None,
        network: net,
        data_dir: None,
        // Without Docker's init the engine execs the command itself and reports the failure
        // at start; with it, init starts and then exits 127 for the missing program.
        init: false,
        pids_limit: None,
        cpu_shares: None,
    };
    let msg = docker.run(&spec).await.unwrap_err().to_string();
    eprintln!("{msg}");
    assert!(
        msg.starts_with(&format!("cannot start container {name}: ")),
        "{msg}"
    );
    assert!(msg.contains("/no-such-program"), "{msg}");
    assert!(matches!(
        docker.inspect(&name).await,
        Err(DockerError::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// images

#[tokio::test]
async fn an_image_the_engine_lacks_is_named_missing_and_removing_it_is_fine() {
    let docker = docker().await;
    let reference = format!(
        "{REGISTRY}/{}/gone@sha256:{}",
        unique("mc-test-image"),
        "0".repeat(64)
    );
    assert_eq!(docker.image_id(&reference).await.unwrap(), None);
    let user = docker.image_user(&reference.parse().unwrap()).await;
    assert!(
        matches!(user, Err(DockerError::ImageMissing { .. })),
        "{user:?}"
    );
    docker
        .remove_image(&format!("sha256:{}", "0".repeat(64)))
        .await
        .unwrap();

    // A container of it: the error says the image is missing (a deploy pulls it again).
    let name = unique("mc-test-missing");
    let _guard = ContainerGuard(vec![name.clone()]);
    let spec = ContainerSpec {
        name,
        image: reference.parse().unwrap(),
        env: Default::default(),
        labels: ManagedLabels {
            app: "t-missing".parse().unwrap(),
            rev: 1,
            role: Role::Web,
            runner: None,
        },
        command: None,
        memory_bytes: None,
        network: "bridge".into(),
        data_dir: None,
        init: false,
        pids_limit: None,
        cpu_shares: None,
    };
    let err = docker.run(&spec).await.unwrap_err();
    assert!(matches!(err, DockerError::ImageMissing { .. }), "{err:?}");
}
