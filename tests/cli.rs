//! The `minicloud` command as a person uses it: client subcommands against a running server,
//! and `serve` refusing a bad configuration.

mod support;

use std::process::{Command, Output};

use support::{upstream, AppCleanup, Minicloud, TOKEN};

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
    let body = mc.get_text("cli.example.com", "/").await;
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
    assert!(stderr(&out).contains("refused the API token: check MINICLOUD_TOKEN"));

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

#[test]
fn apps_and_domains_help_and_local_argument_errors() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_minicloud"))
            .args(args)
            // Nothing listens here: a request would fail with "cannot reach", not our error.
            .env(
                "MINICLOUD_URL",
                format!("http://127.0.0.1:{}", support::free_port()),
            )
            .env("MINICLOUD_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    for (args, expected) in [
        (vec!["apps", "--help"], "minicloud apps add"),
        (vec!["apps", "add", "--help"], "--registry-password-stdin"),
        (vec!["apps", "logs", "--help"], "--follow"),
        (vec!["apps", "env", "--help"], "apps env set blog"),
        (vec!["apps", "rm", "--help"], "--with-data"),
        (
            vec!["apps", "attach", "--help"],
            "apps attach blog database",
        ),
        (vec!["apps", "detach", "--help"], "--with-data"),
        (vec!["domains", "--help"], "minicloud domains add blog"),
        (vec!["manifest", "init", "--help"], "--runner"),
    ] {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let help = stdout(&out);
        assert!(help.contains(expected), "{args:?} help: {help}");
        assert!(help.contains("Example"), "{args:?} has examples: {help}");
    }

    for (args, expected) in [
        (
            vec![
                "apps",
                "add",
                "127.0.0.1:5000/probe:v1",
                "--env",
                "NOEQUALS",
            ],
            "--env 'NOEQUALS': expected KEY=VALUE",
        ),
        (
            vec!["apps", "env", "set", "probe", "A=1", "=2"],
            "'=2': expected KEY=VALUE",
        ),
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
        assert!(
            !err.contains("cannot reach"),
            "no request was sent: {err:?}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    }

    // The registry password comes only from stdin, and only with a user.
    let out = run(&["apps", "add", "x/y", "--registry-user", "u"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--registry-password-stdin"));
}

#[tokio::test]
async fn apps_list_with_no_apps_says_how_to_add_one() {
    let mc = Minicloud::start().await;
    let out = minicloud(&mc, &["apps", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("No apps"), "{}", stdout(&out));

    let out = minicloud(&mc, &["apps", "show", "nothing-here"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no app named 'nothing-here'"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
}

#[tokio::test]
async fn apps_add_show_history_and_rm_a_real_image() {
    let mc = Minicloud::start_with(vec![("MINICLOUD_HEALTH_TIMEOUT".into(), "20".into())]).await;
    // Container names are global to the engine: unique per run.
    let name = support::unique("cli-probe");
    let _cleanup = AppCleanup(&name);
    let domain = format!("{name}.example.org");

    let out = minicloud(
        &mc,
        &[
            "apps",
            "add",
            "127.0.0.1:5000/probe:v1",
            "--name",
            &name,
            "--env",
            "GREETING=hello",
            "--service",
            "storage",
            "--domain",
            &domain,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let url = format!("https://{name}.{}:{}", mc.domain, mc.https_port);
    let result = stdout(&out);
    assert_eq!(
        result.trim_end(),
        format!("{name} is running at {url} (revision 1)")
    );
    let progress = stderr(&out);
    assert!(
        progress.lines().any(|l| l.starts_with("==> ")),
        "{progress}"
    );
    assert!(
        !progress.contains('\r'),
        "no pull line when not a TTY: {progress:?}"
    );

    let out = minicloud(&mc, &["apps", "show", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    let show = stdout(&out);
    assert!(
        show.contains("state:") && show.contains("running"),
        "{show}"
    );
    assert!(show.contains(&url), "{show}");
    assert!(show.contains(&domain), "{show}");

    let out = minicloud(&mc, &["apps", "list"]);
    let listing = stdout(&out);
    let row = listing.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with(&name) && row.contains("running"),
        "{listing}"
    );

    let out = minicloud(&mc, &["apps", "history", &name]);
    assert!(
        stdout(&out)
            .lines()
            .nth(1)
            .unwrap_or_default()
            .contains("succeeded"),
        "{}",
        stdout(&out)
    );

    let out = minicloud(&mc, &["apps", "env", &name]);
    assert!(stdout(&out).contains("GREETING=hello"), "{}", stdout(&out));

    // The storage given at add goes, and comes back: each a redeploy.
    let out = minicloud(&mc, &["apps", "detach", &name, "storage"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(revision 2)"), "{}", stdout(&out));
    let out = minicloud(&mc, &["apps", "detach", &name, "storage"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no storage attached"),
        "{}",
        stderr(&out)
    );
    let out = minicloud(&mc, &["apps", "attach", &name, "storage"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(revision 3)"), "{}", stdout(&out));

    let out = minicloud(&mc, &["apps", "logs", &name, "-n", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = minicloud(&mc, &["apps", "rm", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = minicloud(&mc, &["apps", "list"]);
    assert!(stdout(&out).contains("No apps"), "{}", stdout(&out));
}

#[test]
fn manifest_check_reads_files_and_images_and_names_every_problem() {
    let run = |target: &str| {
        Command::new(env!("CARGO_BIN_EXE_minicloud"))
            .args(["manifest", "check", target])
            .output()
            .unwrap()
    };
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/probe/images/probe.yml");
    let out = run(file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("runners:  worker"));

    let out = run(&support::image("probe-json:v1"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("name:     probe"));

    let out = run(&support::image("bad-manifest:v1"));
    assert!(!out.status.success());
    let err = stderr(&out);
    for problem in ["unknown key", "70000", "unknown need 'redis'"] {
        assert!(err.contains(problem), "{err}");
    }
    let out = run(&support::image("no-manifest:v1"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no app manifest"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn manifest_init_writes_a_file_check_accepts_and_keeps_it_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloud_manifest.yml");
    let path = path.to_str().unwrap();
    let init = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_minicloud"))
            .args(["manifest", "init", "--name", "blog", "--port", "8000"])
            .args(["--health", "/healthz", "--database", "--storage"])
            .args(["--runner", "worker=python -m blog.worker", "--output", path])
            .args(extra)
            // Not a terminal: it must not ask, whatever stdin holds.
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = init(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("wrote"), "{}", stdout(&out));

    let out = Command::new(env!("CARGO_BIN_EXE_minicloud"))
        .args(["manifest", "check", path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let described = stdout(&out);
    for expected in [
        "name:     blog",
        "8000",
        "/healthz",
        "database, storage",
        "runners:  worker",
    ] {
        assert!(described.contains(expected), "{expected}: {described}");
    }

    let before = std::fs::read_to_string(path).unwrap();
    let out = init(&["--yes"]);
    assert!(!out.status.success(), "a second run without --force fails");
    let err = stderr(&out);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert_eq!(std::fs::read_to_string(path).unwrap(), before);

    let out = init(&["--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
