//! Backups as a person drives them from outside: the stock restic on a repository, the CLI
//! against a running minicloud, and `minicloud restore` on a new server.

use std::path::PathBuf;
use std::process::Command;

use super::Minicloud;

/// What [`deploy_with_a_file`] writes into the app's storage, as `kept`.
pub const KEPT_BYTES: &str = "the backed-up bytes";

/// Deploys the probe as `name` and puts a file, `kept`, in its storage; returns the storage
/// directory.
pub async fn deploy_with_a_file(mc: &Minicloud, name: &str) -> PathBuf {
    let resp = mc
        .api()
        .post(
            "/api/apps",
            serde_json::json!({"image": super::image("probe:v1"), "name": name}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let storage = mc.data_path().join("apps").join(name);
    std::fs::create_dir_all(&storage).unwrap();
    std::fs::write(storage.join("kept"), KEPT_BYTES).unwrap();
    storage
}

/// Runs the stock restic on `repo` with `password`; returns stdout.
pub fn restic(
    repo: &std::path::Path,
    password: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> String {
    use std::io::Write;
    let mut child = Command::new("restic")
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", password)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("restic (Debian's package) is installed");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the CLI against `mc`: success, stdout, stderr. Async: the test's runtime may also run
/// something the CLI's call waits on (a switch), which a blocking wait would stall.
pub async fn cli(mc: &Minicloud, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(args)
        .env("MINICLOUD_URL", mc.api_url(""))
        .env("MINICLOUD_TOKEN", super::TOKEN)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `minicloud restore --repository REPO` on a new server: the settings of `serve` (domain,
/// data dir) and `env`, the password on standard input. Nothing else of the test's
/// environment but its `PATH` (for restic) reaches it.
pub fn restore_cli(
    data_dir: &std::path::Path,
    repo: &str,
    password: &str,
    force: bool,
    env: &[(&str, &str)],
) -> std::process::Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minicloud"));
    cmd.arg("restore")
        .arg("--repository")
        .arg(repo)
        .arg("--password-stdin")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MINICLOUD_DOMAIN", "mc.test")
        .env("MINICLOUD_DATA_DIR", data_dir)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if force {
        cmd.arg("--force");
    }
    let mut child = cmd.spawn().expect("run minicloud restore");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}
