//! Tests for manifest parsing: valid files in both formats, and each reported problem.

use super::*;

const YML: &str = "/cloud_manifest.yml";
const JSON: &str = "/cloud_manifest.json";

/// The problems of an invalid manifest, as the lines a person sees.
fn problems(file: &str, text: &str) -> Vec<String> {
    match parse(file, text) {
        Ok(m) => panic!("accepted: {m:?}"),
        Err(e) => e.lines(),
    }
}

/// Asserts that parsing `body` (appended to a valid name/expose) reports exactly `expected`.
fn assert_one_problem(body: &str, expected: &str) {
    let text = format!("name: myapp\nexpose: [{{proto: http, port: 80}}]\n{body}");
    assert_eq!(
        problems(YML, &text),
        vec![format!("{YML}: {expected}")],
        "for {body:?}"
    );
}

#[test]
fn full_yaml_manifest() {
    let text = r#"
name: myapp
expose:
- proto: http
  port: 8080
needs:
- database
- messagebus
- storage
health: {path: /healthz}
runners:
- name: worker
  command: ["./worker", "--queue", "mail"]
- name: cron
  command: [./cron]
env: {LOG_LEVEL: info, _X1: ""}
"#;
    let m = parse(YML, text).unwrap();
    assert_eq!(m.name.as_str(), "myapp");
    assert_eq!(
        m.expose,
        vec![Expose {
            proto: Proto::Http,
            port: 8080
        }]
    );
    assert_eq!(m.http_port(), 8080);
    assert_eq!(m.needs, BTreeSet::from(Need::ALL));
    assert_eq!(
        m.health,
        Some(Health {
            path: "/healthz".into()
        })
    );
    assert_eq!(
        m.runners,
        vec![
            Runner {
                name: "worker".into(),
                command: vec!["./worker".into(), "--queue".into(), "mail".into()]
            },
            Runner {
                name: "cron".into(),
                command: vec!["./cron".into()]
            },
        ]
    );
    assert_eq!(m.env.get("LOG_LEVEL").map(String::as_str), Some("info"));
    assert_eq!(m.env.get("_X1").map(String::as_str), Some(""));
}

#[test]
fn minimal_yaml_manifest_has_empty_extensions() {
    let m = parse(
        "/cloud_manifest.yaml",
        "name: a\nexpose: [{proto: http, port: 80}]\n",
    )
    .unwrap();
    assert!(m.needs.is_empty() && m.health.is_none() && m.runners.is_empty() && m.env.is_empty());
    assert!(m.init, "Docker's init runs unless the manifest opts out");
    // Explicit nulls mean "none" too.
    let m = parse(
        YML,
        "name: a\nexpose: [{proto: http, port: 80}]\nneeds:\nhealth:\nrunners:\nenv:\n",
    )
    .unwrap();
    assert!(m.needs.is_empty() && m.health.is_none());
}

#[test]
fn init_can_be_turned_off_and_takes_only_a_boolean() {
    let base = "name: a\nexpose: [{proto: http, port: 80}]\n";
    assert!(!parse(YML, &format!("{base}init: false\n")).unwrap().init);
    assert!(parse(YML, &format!("{base}init: true\n")).unwrap().init);
    assert!(parse(YML, &format!("{base}init:\n")).unwrap().init);
    let json = r#"{"name": "a", "expose": [{"proto": "http", "port": 80}], "init": false}"#;
    assert!(!parse(JSON, json).unwrap().init);
    assert_one_problem("init: \"no\"", "init: expected true or false, got a string");
}

#[test]
fn json_manifest() {
    let text = r#"{
        "name": "shop",
        "expose": [{"proto": "http", "port": 3000}],
        "needs": ["storage", "database", "database"],
        "runners": [{"name": "jobs", "command": ["node", "jobs.js"]}],
        "env": {"NODE_ENV": "production"}
    }"#;
    let m = parse(JSON, text).unwrap();
    assert_eq!(m.name.as_str(), "shop");
    assert_eq!(m.http_port(), 3000);
    assert_eq!(m.needs, BTreeSet::from([Need::Database, Need::Storage]));
    assert_eq!(m.runners[0].command, vec!["node", "jobs.js"]);
    assert_eq!(m.env["NODE_ENV"], "production");
}

#[test]
fn file_name_picks_format() {
    let e = parse("/cloud_manifest.toml", "").unwrap_err();
    assert!(matches!(e, ManifestError::UnsupportedFile { .. }));
    assert!(
        e.to_string()
            .starts_with("/cloud_manifest.toml: not a manifest file name"),
        "{e}"
    );
    // YAML text in a .json file is a JSON syntax error, not silently accepted.
    let e = parse(JSON, "name: a\n").unwrap_err();
    assert!(
        matches!(e, ManifestError::Syntax { format: "JSON", .. }),
        "{e:?}"
    );
}

#[test]
fn syntax_errors_name_file_and_format() {
    let e = parse(YML, "name: [unclosed\n").unwrap_err().to_string();
    assert!(
        e.starts_with("/cloud_manifest.yml: not valid YAML: "),
        "{e}"
    );
    let e = parse(JSON, "{\"name\": ").unwrap_err().to_string();
    assert!(
        e.starts_with("/cloud_manifest.json: not valid JSON: "),
        "{e}"
    );
}

#[test]
fn empty_and_non_mapping_documents() {
    assert_eq!(
        problems(YML, ""),
        vec![format!(
            "{YML}: the manifest is empty (expected at least 'name' and 'expose')"
        )]
    );
    assert_eq!(
        problems(YML, "- a\n"),
        vec![format!("{YML}: expected a mapping, got a list")]
    );
}

#[test]
fn missing_required_keys() {
    assert_eq!(
        problems(YML, "needs: [database]\n"),
        vec![
            format!("{YML}: missing key 'name' (the app's name, e.g. name: myapp)"),
            format!("{YML}: missing key 'expose' (e.g. expose: [{{proto: http, port: 80}}])"),
        ]
    );
}

#[test]
fn unknown_keys_are_listed() {
    let lines = problems(YML, "name: a\nexposes: [{proto: http, port: 80}]\n");
    assert_eq!(
        lines,
        vec![
            format!("{YML}: unknown key 'exposes' at top level (known: name, expose, needs, health, runners, env, init)"),
            format!("{YML}: missing key 'expose' (e.g. expose: [{{proto: http, port: 80}}])"),
        ]
    );
    assert_one_problem(
        "health: {path: /h, timeout: 3}",
        "health: unknown key 'timeout' (known: path)",
    );
    assert_one_problem(
        "runners: [{name: w, command: [x], replicas: 2}]",
        "runners[0]: unknown key 'replicas' (known: name, command)",
    );
}

#[test]
fn bad_name() {
    let lines = problems(YML, "name: Admin\nexpose: [{proto: http, port: 80}]\n");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with(&format!("{YML}: name: app name 'Admin' contains 'A'")),
        "{lines:?}"
    );
    let lines = problems(YML, "name: 12\nexpose: [{proto: http, port: 80}]\n");
    assert_eq!(
        lines,
        vec![format!("{YML}: name: expected a string, got a number")]
    );
}

#[test]
fn expose_problems() {
    let p = |expose: &str| problems(YML, &format!("name: a\nexpose: {expose}\n"));
    assert_eq!(
        p("[{proto: tcp, port: 5432}]"),
        vec![format!(
            "{YML}: expose[0].proto: 'tcp' is not supported yet (supported: http)"
        )]
    );
    assert_eq!(
        p("[{proto: ftp, port: 21}]"),
        vec![format!(
            "{YML}: expose[0].proto: unknown proto 'ftp' (known: http)"
        )]
    );
    assert_eq!(
        p("[{proto: http, port: 0}]"),
        vec![format!(
            "{YML}: expose[0].port: expected a port number 1-65535, got 0"
        )]
    );
    assert_eq!(
        p("[{proto: http, port: 70000}]"),
        vec![format!(
            "{YML}: expose[0].port: expected a port number 1-65535, got 70000"
        )]
    );
    assert_eq!(
        p("[{proto: http, port: \"80\"}]"),
        vec![format!(
            "{YML}: expose[0].port: expected a port number 1-65535, got '80'"
        )]
    );
    assert_eq!(
        p("[{port: 80}]"),
        vec![format!(
            "{YML}: expose[0]: missing key 'proto' (e.g. proto: http)"
        )]
    );
    assert_eq!(
        p("[{proto: http}]"),
        vec![format!(
            "{YML}: expose[0]: missing key 'port' (e.g. port: 80)"
        )]
    );
    assert_eq!(
        p("[]"),
        vec![format!(
            "{YML}: expose: needs one entry (e.g. expose: [{{proto: http, port: 80}}])"
        )]
    );
    assert_eq!(
        p("{proto: http, port: 80}"),
        vec![format!("{YML}: expose: expected a list (e.g. expose: [{{proto: http, port: 80}}]), got a mapping")]
    );
    let several = p("[{proto: http, port: 80}, {proto: http, port: 81}]");
    assert_eq!(several.len(), 1);
    assert!(
        several[0].contains("expose: 2 entries, but exactly one is supported"),
        "{several:?}"
    );
}

#[test]
fn needs_problems() {
    assert_one_problem(
        "needs: [database, redis]",
        "needs[1]: unknown need 'redis' (known: database, messagebus, storage)",
    );
    assert_one_problem(
        "needs: database",
        "needs: expected a list (e.g. needs: [database, storage]), got a string",
    );
    assert_one_problem(
        "needs: [{db: 1}]",
        "needs[0]: expected a string (database, messagebus or storage), got a mapping",
    );
}

#[test]
fn health_problems() {
    assert_one_problem(
        "health: {path: healthz}",
        "health.path: 'healthz' must start with '/' and have no spaces (e.g. /healthz)",
    );
    assert_one_problem(
        "health: {path: '/a b'}",
        "health.path: '/a b' must start with '/' and have no spaces (e.g. /healthz)",
    );
    assert_one_problem(
        "health: {}",
        "health: missing key 'path' (e.g. health: {path: /healthz})",
    );
    assert_one_problem(
        "health: /healthz",
        "health: expected a mapping, got a string",
    );
}

#[test]
fn runner_problems() {
    assert_one_problem(
        "runners: [{name: Worker, command: [x]}]",
        "runners[0].name: 'Worker' is not a runner name (1-20 of a-z, 0-9, '-', starting with a letter, not ending with '-', no '--')",
    );
    assert_one_problem(
        "runners: [{name: abcdefghijklmnopqrstu, command: [x]}]",
        "runners[0].name: 'abcdefghijklmnopqrstu' is not a runner name (1-20 of a-z, 0-9, '-', starting with a letter, not ending with '-', no '--')",
    );
    assert_one_problem(
        "runners: [{name: web, command: [x]}]",
        "runners[0].name: 'web' is reserved for the app's web container",
    );
    assert_one_problem(
        "runners: [{name: w, command: [x]}, {name: w, command: [y]}]",
        "runners[1].name: runner 'w' is listed twice",
    );
    assert_one_problem(
        "runners: [{name: w}]",
        "runners[0]: missing key 'command' (e.g. command: [\"./worker\", \"--queue\", \"mail\"])",
    );
    assert_one_problem(
        "runners: [{name: w, command: ./worker --x}]",
        "runners[0].command: expected a list of strings (e.g. command: [\"./worker\", \"--queue\", \"mail\"]), got a string",
    );
    assert_one_problem(
        "runners: [{name: w, command: []}]",
        "runners[0].command: must name a program to run (e.g. command: [\"./worker\", \"--queue\", \"mail\"])",
    );
    assert_one_problem(
        "runners: [{name: w, command: [x, 1]}]",
        "runners[0].command: every item must be a string (e.g. command: [\"./worker\", \"--queue\", \"mail\"])",
    );
    assert_one_problem(
        "runners: [{command: [x]}]",
        "runners[0]: missing key 'name' (e.g. name: worker)",
    );
}

#[test]
fn env_problems() {
    assert_one_problem(
        "env: {'1X': a}",
        "env: '1X' is not a variable name (letters, digits, '_', not starting with a digit)",
    );
    assert_one_problem(
        "env: {'A-B': a}",
        "env: 'A-B' is not a variable name (letters, digits, '_', not starting with a digit)",
    );
    for injected in INJECTED_ENV {
        assert_one_problem(
            &format!("env: {{{injected}: x}}"),
            &format!("env.{injected}: is set by minicloud and cannot be set in the manifest"),
        );
    }
    assert_one_problem(
        "env: {WORKERS: 4}",
        "env.WORKERS: expected a string, got a number (quote it: WORKERS: \"…\")",
    );
    assert_one_problem(
        "env: [A]",
        "env: expected a mapping (e.g. env: {LOG_LEVEL: info}), got a list",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"{
        "name": "Bad_Name",
        "expose": [{"proto": "tcp", "port": 99999}],
        "needs": ["redis"],
        "health": {"path": "x"},
        "runners": [{"name": "web", "command": []}],
        "env": {"PORT": "1"},
        "extra": true
    }"#;
    let lines = problems(JSON, text);
    assert_eq!(lines.len(), 9, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("/cloud_manifest.json: ")),
        "{lines:#?}"
    );
    let e = parse(JSON, text).unwrap_err();
    // Display is the same lines, one per row.
    assert_eq!(e.to_string(), lines.join("\n"));
}
