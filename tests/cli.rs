//! The `minicloud` command as a person uses it: client subcommands against a running server,
//! and `serve` refusing a bad configuration.

mod support;

use std::process::{Command, Output};

use support::{upstream, Minicloud, TOKEN};

fn minicloud(mc: &Minicloud, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(args)
        .env("MINICLOUD_URL", mc.api_url(""))
        .env("MINICLOUD_TOKEN", TOKEN)
        .output()
        .expect("run minicloud")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn routes_add_list_and_remove_from_the_command_line() {
    let mc = Minicloud::start().await;
    let app = upstream::start("cli").await;
    let upstream = app.addr.to_string();

    let out = minicloud(&mc, &["routes", "add", "cli.example.com", &upstream]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("cli.example.com"));

    let out = minicloud(&mc, &["routes", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    let mut lines = listing.lines();
    assert!(lines.next().unwrap().starts_with("HOST"));
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("cli.example.com") && row.ends_with(&upstream),
        "{row}"
    );

    // Served right away.
    let body = mc
        .client_for(&["cli.example.com"])
        .get(mc.https_url("cli.example.com", "/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "cli");

    let out = minicloud(&mc, &["routes", "rm", "cli.example.com"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = minicloud(&mc, &["routes", "list"]);
    assert!(stdout(&out).contains("No routes"));
}

#[tokio::test]
async fn client_errors_are_one_line_and_exit_non_zero() {
    let mc = Minicloud::start().await;
    for (args, expected) in [
        (
            vec!["routes", "add", "bad host", "127.0.0.1:1"],
            "not a valid host name",
        ),
        (vec!["routes", "rm", "missing.example.com"], "no route for"),
    ] {
        let out = minicloud(&mc, &args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    }

    let out = Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(["routes", "list", "--token", "wrong-token"])
        .env("MINICLOUD_URL", mc.api_url(""))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid API token"));

    let unreachable = format!("http://127.0.0.1:{}", support::free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(["routes", "list"])
        .env("MINICLOUD_URL", &unreachable)
        .env("MINICLOUD_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach minicloud"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_reports_every_bad_setting_and_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(["serve", "--http-port", "eighty", "--domain", "not a domain"])
        .env_clear()
        .env("MINICLOUD_DATA_DIR", dir.path())
        .env("MINICLOUD_THREADS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    for expected in [
        "--http-port: 'eighty'",
        "--domain: 'not a domain'",
        "MINICLOUD_THREADS: '0'",
    ] {
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was written"
    );
}

#[test]
fn help_teaches_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(["routes", "add", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = stdout(&out);
    assert!(help.contains("HOST") && help.contains("UPSTREAM") && help.contains("MINICLOUD_URL"));
}
