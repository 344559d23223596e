//! `minicloud apps …` and `minicloud domains …`: the app verbs of the API, printed for
//! people. Results go to stdout, deploy progress to stderr (see [`super::progress`]).
//!
//! Arguments arrive already parsed by clap (see [`super::args`]); what clap cannot check
//! (`KEY=VALUE`) is checked here by [`parse_assignments`] before any request is sent.

use std::collections::BTreeMap;
use std::io::Write;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;

use super::error::CliError;
use super::format;
use super::progress::{self, Finished, Outcome};
use super::table;
use super::view::{AppView, DeployView};
use super::{encode_segment, ApiClient};

/// What `apps add` sends.
pub struct NewApp {
    pub image: String,
    pub name: Option<String>,
    pub env: BTreeMap<String, String>,
    pub memory_mb: Option<u64>,
    pub pids_limit: Option<u64>,
    pub cpu_shares: Option<u64>,
    /// Username and password for a private registry.
    pub registry: Option<(String, crate::model::secret::Secret)>,
    /// Services beyond the manifest's: `database`, `messagebus`, `storage`.
    pub services: Vec<String>,
    /// Domains besides `<name>.<domain>`.
    pub domains: Vec<String>,
}

/// Parses `KEY=VALUE` arguments; the value may be empty or contain `=`.
pub fn parse_assignments(
    args: &[String],
    flag: &str,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut vars = BTreeMap::new();
    for arg in args {
        match arg.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                vars.insert(key.to_owned(), value.to_owned());
            }
            _ => {
                return Err(CliError::message(format!(
                    "{flag} '{arg}': expected KEY=VALUE (e.g. LOG_LEVEL=debug)"
                )))
            }
        }
    }
    Ok(vars)
}

/// Reads a registry password from stdin (as `docker login --password-stdin` does): all of
/// it, without the final line end.
pub fn read_password_stdin() -> Result<crate::model::secret::Secret, CliError> {
    read_secret_stdin(
        "--registry-password-stdin",
        "could not read the registry password from stdin",
    )
}

/// A secret given on stdin (so it is in no shell history), without its line ending.
pub fn read_secret_stdin(
    flag: &str,
    what: &'static str,
) -> Result<crate::model::secret::Secret, CliError> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .map_err(|source| CliError::Io { what, source })?;
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(CliError::message(format!("{flag}: stdin was empty")));
    }
    Ok(crate::model::secret::Secret::new(password))
}

fn app_path(name: &str, rest: &str) -> String {
    format!("/api/apps/{}{rest}", encode_segment(name))
}

/// Runs a call that deploys, following its progress; prints how the app ended up.
async fn deploying(
    api: &ApiClient,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    target: &str,
) -> Result<(), CliError> {
    match progress::run(api, method, path, body).await? {
        Outcome::Done { app, finished } => {
            println!("{}", describe(&app, finished));
            Ok(())
        }
        Outcome::Failed {
            deploy: Some(failed),
            ..
        } => Err(CliError::message(format::deploy_failure(&failed))),
        Outcome::Failed {
            status: 422, error, ..
        } => Err(CliError::message(format!(
            "deploy of {target} failed: {error}"
        ))),
        Outcome::Failed { error, .. } => Err(CliError::message(error)),
    }
}

/// One line on how an app is after an operation.
fn describe(app: &AppView, finished: Option<Finished>) -> String {
    let name = &app.name;
    let rev = app
        .revision
        .map(|r| format!(" (revision {r})"))
        .unwrap_or_default();
    match (finished, app.state.as_str()) {
        (Some(Finished::Unchanged(r)), _) => format!(
            "{name}: revision {r} already runs this image; nothing deployed (--force redeploys it)"
        ),
        (_, "running") => format!("{name} is running at {}{rev}", app.url),
        (_, state) => format!("{name} is {state}{rev}"),
    }
}

pub async fn add(api: &ApiClient, new: NewApp) -> Result<(), CliError> {
    let mut body = json!({ "image": new.image });
    if let Some(name) = &new.name {
        body["name"] = json!(name);
    }
    if !new.env.is_empty() {
        body["env"] = json!(new.env);
    }
    if let Some(mb) = new.memory_mb {
        body["memory_mb"] = json!(mb);
    }
    if let Some(n) = new.pids_limit {
        body["pids_limit"] = json!(n);
    }
    if let Some(n) = new.cpu_shares {
        body["cpu_shares"] = json!(n);
    }
    if let Some((user, password)) = &new.registry {
        body["registry_username"] = json!(user);
        body["registry_password"] = json!(password.expose());
    }
    if !new.services.is_empty() {
        body["services"] = json!(new.services);
    }
    if !new.domains.is_empty() {
        body["domains"] = json!(new.domains);
    }
    let target = new.name.as_deref().unwrap_or(&new.image);
    deploying(api, Method::POST, "/api/apps", Some(&body), target).await
}

pub async fn list(api: &ApiClient) -> Result<(), CliError> {
    let apps: Vec<AppView> = api.get("/api/apps").await?;
    if apps.is_empty() {
        println!("No apps. Add one with: minicloud apps add IMAGE");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.state.clone(),
                a.revision.map_or("-".into(), |r| r.to_string()),
                a.serving_image.clone().unwrap_or_else(|| a.image.clone()),
                a.url.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["name", "state", "revision", "image", "url"], &rows)
    );
    Ok(())
}

pub async fn show(api: &ApiClient, name: &str) -> Result<(), CliError> {
    let app: AppView = api.get(&app_path(name, "")).await?;
    print!("{}", show_text(&app));
    Ok(())
}

/// `apps show` as `key: value` lines, values aligned.
fn show_text(app: &AppView) -> String {
    let mut lines: Vec<(&str, String)> =
        vec![("name", app.name.clone()), ("state", app.state.clone())];
    if let Some(op) = &app.operation {
        lines.push(("operation", op.clone()));
    }
    if app.env_not_deployed {
        lines.push(("environment", "changed, not deployed".into()));
    }
    if let Some(pending) = &app.pending_restore {
        let text = match &pending.failed {
            None => format!(
                "its data comes back from backup {} (whole-box restore), then it is deployed",
                pending.backup
            ),
            Some(failed) => format!(
                "FAILED {}: {}\n    it stays out of service; retry with `minicloud backups restore {} {}` \
                 (or restart minicloud), or serve it without that data: `minicloud apps restart {}`",
                crate::model::format_time(failed.at),
                failed.reason,
                app.name,
                pending.backup,
                app.name
            ),
        };
        lines.push(("restore", text));
    }
    lines.push((
        "revision",
        app.revision.map_or("none".into(), |r| r.to_string()),
    ));
    let serving = app
        .serving_image
        .clone()
        .unwrap_or_else(|| app.image.clone());
    if serving != app.image {
        lines.push(("deploys from", app.image.clone()));
    }
    lines.push(("image", serving));
    if let Some(digest) = &app.digest {
        lines.push(("digest", digest.clone()));
    }
    lines.push(("url", app.url.clone()));
    lines.push(("domains", app.domains.join(", ")));
    let limit = app.memory_limit_mb.map(|mb| format!("{mb} MiB"));
    let memory = match (app.memory_bytes, limit) {
        (Some(used), Some(limit)) => format!("{} of {limit}", format::bytes(used)),
        (Some(used), None) => format::bytes(used),
        (None, Some(limit)) => format!("- (limit {limit})"),
        (None, None) => "-".into(),
    };
    lines.push(("memory", memory));
    lines.push((
        "cpu",
        app.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%")),
    ));
    if let Some(storage) = app.storage_bytes {
        lines.push(("storage", format::bytes(storage)));
    }
    if let Some(restarts) = app.restarts.filter(|r| *r > 0 || app.crash_looping) {
        let mut text = restarts.to_string();
        if let Some(code) = app.last_exit_code {
            text.push_str(&format!(", last exit code {code}"));
        }
        if app.out_of_memory {
            text.push_str(", out of memory");
        }
        if app.crash_looping {
            text.push_str(", crash-looping");
        }
        lines.push(("restarts", text));
    }
    if let Some(error) = &app.last_error {
        let mut text = String::new();
        for (i, line) in error.trim_end().lines().enumerate() {
            if i > 0 {
                text.push_str("\n    ");
            }
            text.push_str(line);
        }
        lines.push(("last error", text));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    lines
        .iter()
        .map(|(key, value)| format!("{:<width$} {value}\n", format!("{key}:")))
        .collect()
}

pub async fn deploy(
    api: &ApiClient,
    name: &str,
    image: Option<&str>,
    force: bool,
) -> Result<(), CliError> {
    let mut body = json!({ "force": force });
    if let Some(image) = image {
        body["image"] = json!(image);
    }
    deploying(
        api,
        Method::POST,
        &app_path(name, "/deploy"),
        Some(&body),
        name,
    )
    .await
}

pub async fn rollback(api: &ApiClient, name: &str, revision: Option<u64>) -> Result<(), CliError> {
    let body = match revision {
        Some(r) => json!({ "revision": r }),
        None => json!({}),
    };
    let path = app_path(name, "/rollback");
    deploying(api, Method::POST, &path, Some(&body), name).await
}

/// `restart`, `stop` or `start`.
pub async fn lifecycle(api: &ApiClient, name: &str, verb: &str) -> Result<(), CliError> {
    let path = app_path(name, &format!("/{verb}"));
    deploying(api, Method::POST, &path, None, name).await
}

/// Attaches `service` to the app and follows the redeploy.
pub async fn attach(api: &ApiClient, name: &str, service: &str) -> Result<(), CliError> {
    let body = json!({ "service": service });
    deploying(
        api,
        Method::POST,
        &app_path(name, "/services"),
        Some(&body),
        name,
    )
    .await
}

/// Detaches `service` (and deletes its data with `with_data`), following the redeploy.
pub async fn detach(
    api: &ApiClient,
    name: &str,
    service: &str,
    with_data: bool,
) -> Result<(), CliError> {
    let query = if with_data { "?data=true" } else { "" };
    let path = app_path(name, &format!("/services/{service}{query}"));
    deploying(api, Method::DELETE, &path, None, name).await
}

pub async fn rotate_webhook(api: &ApiClient, name: &str) -> Result<(), CliError> {
    let answer: serde_json::Value = api
        .post(&app_path(name, "/rotate-webhook"), &serde_json::json!({}))
        .await?;
    println!(
        "{name}'s new webhook URL (the old one no longer works):\n{}",
        answer["webhook_url"].as_str().unwrap_or("")
    );
    Ok(())
}

pub async fn services(api: &ApiClient, name: &str, reveal: bool) -> Result<(), CliError> {
    let path = app_path(
        name,
        if reveal {
            "/services?reveal=true"
        } else {
            "/services"
        },
    );
    let services: Vec<serde_json::Value> = api.get(&path).await?;
    if services.is_empty() {
        println!("{name} has no database or message-bus account (its manifest needs none).");
        return Ok(());
    }
    let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or("").to_owned();
    for s in &services {
        println!("{}:", text(s, "kind"));
        for key in ["user", "resource", "host", "password"] {
            println!("  {key:<9} {}", text(s, key));
        }
        if let Some(env) = s["env"].as_object() {
            for (k, v) in env {
                println!("  {k}={}", v.as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

pub async fn history(api: &ApiClient, name: &str) -> Result<(), CliError> {
    let deploys: Vec<DeployView> = api.get(&app_path(name, "/deploys")).await?;
    if deploys.is_empty() {
        println!("{name} has not been deployed yet.");
        return Ok(());
    }
    print!("{}", history_table(&deploys, crate::model::now()));
    Ok(())
}

fn history_table(deploys: &[DeployView], now: i64) -> String {
    // Newest first, as the API sends it and `docker history` and `heroku releases` list.
    let mut newest_first: Vec<&DeployView> = deploys.iter().collect();
    newest_first.sort_by_key(|d| std::cmp::Reverse(d.revision));
    let rows: Vec<Vec<String>> = newest_first
        .into_iter()
        .map(|d| {
            vec![
                d.revision.to_string(),
                d.state.clone(),
                // The digest has its own column.
                d.image
                    .split_once('@')
                    .map_or(d.image.as_str(), |(image, _)| image)
                    .to_owned(),
                Some(format::short_digest(&d.digest))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "-".into()),
                d.trigger.clone(),
                format::ago(now, d.started_at),
                d.reason
                    .as_deref()
                    .map(|r| format::first_line(r, 72))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table::render(
        &[
            "revision", "state", "image", "digest", "trigger", "when", "reason",
        ],
        &rows,
    )
}

/// Copies the app's log to stdout as it arrives; with `follow`, until interrupted.
pub async fn logs(
    api: &ApiClient,
    name: &str,
    tail: Option<usize>,
    follow: bool,
    previous: bool,
) -> Result<(), CliError> {
    let mut query = Vec::new();
    if let Some(n) = tail {
        query.push(format!("tail={n}"));
    }
    if follow {
        query.push("follow=true".to_owned());
    }
    if previous {
        query.push("previous=true".to_owned());
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let response = api
        .open(
            Method::GET,
            &app_path(name, &format!("/logs{query}")),
            None::<&()>,
            "text/plain",
        )
        .await?;
    let mut body = response.bytes_stream();
    let mut stdout = std::io::stdout();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| api.stream_error(&e))?;
        let written = stdout.write_all(&chunk).and_then(|()| stdout.flush());
        match written {
            // `apps logs probe | head` closing the pipe is a normal way to stop.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other.map_err(|source| CliError::Io {
                what: "could not write the log to stdout",
                source,
            })?,
        }
    }
    Ok(())
}

pub async fn env_list(api: &ApiClient, name: &str) -> Result<(), CliError> {
    let vars: BTreeMap<String, String> = api.get(&app_path(name, "/env")).await?;
    if vars.is_empty() {
        println!("{name} has no variables of its own. Set one with: minicloud apps env set {name} KEY=VALUE");
    }
    for (key, value) in vars {
        println!("{key}={value}");
    }
    Ok(())
}

/// Sets and unsets variables; the API redeploys the app with them.
pub async fn env_change(
    api: &ApiClient,
    name: &str,
    set: BTreeMap<String, String>,
    unset: Vec<String>,
) -> Result<(), CliError> {
    let body = json!({ "set": set, "unset": unset });
    let path = app_path(name, "/env");
    deploying(api, Method::PATCH, &path, Some(&body), name).await
}

pub async fn remove(api: &ApiClient, name: &str, with_data: bool) -> Result<(), CliError> {
    let query = if with_data { "?data=true" } else { "" };
    api.delete(&app_path(name, query)).await?;
    if with_data {
        println!("removed {name} and its data");
    } else {
        println!("removed {name} (its data is kept; `apps rm {name} --with-data` removes it)");
    }
    Ok(())
}

pub async fn domain_add(api: &ApiClient, name: &str, domain: &str) -> Result<(), CliError> {
    let body = json!({ "domain": domain });
    let app: AppView = api.post(&app_path(name, "/domains"), &body).await?;
    println!("{domain} → {}", app.name);
    Ok(())
}

pub async fn domain_remove(api: &ApiClient, name: &str, domain: &str) -> Result<(), CliError> {
    let path = app_path(name, &format!("/domains/{}", encode_segment(domain)));
    let _: AppView = api.delete_json(&path).await?;
    println!("removed {domain} from {name}");
    Ok(())
}

pub async fn domain_list(api: &ApiClient, name: &str) -> Result<(), CliError> {
    let app: AppView = api.get(&app_path(name, "")).await?;
    for domain in &app.domains {
        println!("{domain}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(state: &str) -> AppView {
        serde_json::from_value(json!({
            "name": "probe", "state": state, "revision": 2, "image": "r/probe:v1",
            "digest": "sha256:abc", "url": "https://probe.example.com",
            "domains": ["probe.example.com", "www.example.com"], "memory_limit_mb": 256,
            "memory_bytes": 3_355_443, "cpu_percent": 0.25, "last_error": "boom\nline 2",
            "operation": null, "storage_bytes": 0, "some_new_field": 1,
            "restarts": 4, "last_exit_code": 137, "crash_looping": true
        }))
        .unwrap()
    }

    #[test]
    fn assignments_need_an_equals_sign_and_a_key() {
        let args = ["A=1".to_owned(), "B=x=y".to_owned(), "C=".to_owned()];
        let vars = parse_assignments(&args, "--env").unwrap();
        assert_eq!(vars["B"], "x=y");
        assert_eq!(vars["C"], "");
        for bad in ["NOEQUALS", "=value"] {
            let err = parse_assignments(&[bad.to_owned()], "--env").unwrap_err();
            assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
        }
    }

    #[test]
    fn outcomes_read_as_one_line() {
        assert_eq!(
            describe(&app("running"), Some(Finished::Deployed(2))),
            "probe is running at https://probe.example.com (revision 2)"
        );
        assert_eq!(
            describe(&app("stopped"), None),
            "probe is stopped (revision 2)"
        );
        assert!(describe(&app("running"), Some(Finished::Unchanged(2))).contains("--force"));
    }

    #[test]
    fn show_aligns_keys_and_indents_the_error() {
        let text = show_text(&app("running"));
        assert!(text.contains("name:       probe\n"), "{text}");
        assert!(text.contains("memory:     3.2 MiB of 256 MiB\n"), "{text}");
        // `{:.1}` rounds the exact 0.25 half to even.
        assert!(text.contains("cpu:        0.2%\n"), "{text}");
        assert!(text.contains("domains:    probe.example.com, www.example.com\n"));
        assert!(
            text.contains("restarts:   4, last exit code 137, crash-looping\n"),
            "{text}"
        );
        assert!(text.ends_with("last error: boom\n    line 2\n"), "{text}");
    }

    #[test]
    fn show_says_what_a_whole_box_restore_still_owes_the_app() {
        let mut view = app("unhealthy");
        view.pending_restore =
            serde_json::from_value(json!({"backup": "0000000001-abcd"})).unwrap();
        let text = show_text(&view);
        assert!(
            text.contains("restore:    its data comes back from backup 0000000001-abcd"),
            "{text}"
        );
        view.pending_restore = serde_json::from_value(json!({
            "backup": "0000000001-abcd",
            "failed": {"at": 0, "reason": "restic restore failed: no matching ID found"}
        }))
        .unwrap();
        let text = show_text(&view);
        assert!(
            text.contains("FAILED ") && text.contains("no matching ID found"),
            "{text}"
        );
        assert!(
            text.contains("`minicloud backups restore probe 0000000001-abcd`"),
            "{text}"
        );
    }

    #[test]
    fn history_lists_newest_first() {
        let deploys: Vec<DeployView> = serde_json::from_value(json!([
            {"revision": 1, "image": "r/p:v1", "digest": "sha256:0123456789abcdef", "trigger": "api",
             "started_at": 1000, "finished_at": 1010, "state": "succeeded"},
            {"revision": 2, "image": "r/p:v3", "digest": "", "trigger": "webhook",
             "started_at": 1900, "finished_at": 1950, "state": "failed", "reason": "no answer\nlogs"}
        ]))
        .unwrap();
        let out = history_table(&deploys, 2000);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("REVISION   STATE"), "{out}");
        assert!(lines[1].starts_with("2          failed"), "{out}");
        assert!(
            lines[1].contains(" 1 minute ago ") && lines[1].ends_with("   no answer"),
            "{out}"
        );
        assert!(lines[2].contains("0123456789ab ") && lines[2].contains("16 minutes ago"));
    }
}
