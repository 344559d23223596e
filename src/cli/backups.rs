//! `minicloud backups …`: run, list, restore and download an app's backups, show and change
//! its schedule and retention, and show the recovery key.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde::Deserialize;

use super::error::CliError;
use super::progress::{self, Outcome};
use super::{encode_segment, format, table, ApiClient};
use crate::backups::s3::S3Check;
use crate::model::format_time;
use crate::store::Verification;

/// One backup run as the API answers it; unknown fields are ignored, missing ones empty.
#[derive(Debug, Clone, Deserialize)]
pub struct BackupView {
    /// The app, or `minicloud` for a platform run.
    #[serde(default)]
    pub app: String,
    pub id: String,
    #[serde(default)]
    pub trigger: String,
    #[serde(default)]
    pub started_at: i64,
    #[serde(default)]
    pub finished_at: Option<i64>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub parts: Vec<PartView>,
    /// Only in the answer of the run that made the repository.
    #[serde(default)]
    pub recovery_key: Option<String>,
    #[serde(default)]
    pub verified: Option<Verification>,
    /// Each place the run was written to, with its confirmation.
    #[serde(default)]
    pub destinations: Vec<DestinationView>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DestinationView {
    pub kind: String,
    #[serde(default)]
    pub confirmed: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PartView {
    pub part: String,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub added: u64,
}

fn app_path(app: &str) -> String {
    format!("/api/apps/{}/backups", encode_segment(app))
}

pub async fn list(api: &ApiClient, app: &str) -> Result<(), CliError> {
    let runs: Vec<BackupView> = api.get(&app_path(app)).await?;
    let rows: Vec<Vec<String>> = runs.iter().map(row).collect();
    print!(
        "{}",
        table::render(
            &["id", "started", "trigger", "state", "size", "added", "took", "detail"],
            &rows
        )
    );
    Ok(())
}

/// Every app's runs and the platform's, newest first.
pub async fn list_all(api: &ApiClient) -> Result<(), CliError> {
    let runs: Vec<BackupView> = api.get("/api/backups").await?;
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let subject = if run.app == crate::model::name::PLATFORM {
                "(platform)".to_owned()
            } else {
                run.app.clone()
            };
            std::iter::once(subject).chain(row(run)).collect()
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["app", "id", "started", "trigger", "state", "size", "added", "took", "detail"],
            &rows
        )
    );
    Ok(())
}

pub async fn run(api: &ApiClient, app: &str) -> Result<(), CliError> {
    run_at(api, &app_path(app), app).await
}

/// Backs the platform (minicloud's state store) up now.
pub async fn run_platform(api: &ApiClient) -> Result<(), CliError> {
    run_at(api, "/api/backups/platform", "the platform").await
}

async fn run_at(api: &ApiClient, path: &str, app: &str) -> Result<(), CliError> {
    let body = serde_json::json!({});
    match progress::run::<_, BackupView>(api, Method::POST, path, Some(&body)).await? {
        Outcome::Done { app: run, .. } => {
            if let Some(key) = &run.recovery_key {
                println!(
                    "The backup repository was created. Its password (the recovery key) is:\n\n    {key}\n\n\
                     Keep it somewhere safe, away from this server: without it no backup can be read.\n\
                     `minicloud backups key` shows it again.\n"
                );
            }
            if run.state == "succeeded" {
                println!("backup {} of {app} succeeded: {}", run.id, sizes(&run));
                Ok(())
            } else if run.state == "partial" {
                // Restorable from the local repository, but not what was asked: not a success.
                Err(CliError::message(format!(
                    "backup {} of {app} is partial: {}",
                    run.id,
                    run.reason.unwrap_or_default()
                )))
            } else {
                Err(CliError::message(format!(
                    "backup {} of {app} failed: {}",
                    run.id,
                    run.reason.unwrap_or_else(|| run.state.clone())
                )))
            }
        }
        Outcome::Failed { error, .. } => Err(CliError::message(error)),
    }
}

pub async fn restore(
    api: &ApiClient,
    app: &str,
    id: &str,
    only: &[String],
    clone: Option<&str>,
) -> Result<(), CliError> {
    let path = format!("{}/{}/restore", app_path(app), encode_segment(id));
    let body = serde_json::json!({ "parts": only, "as": clone });
    match progress::run::<_, serde_json::Value>(api, Method::POST, &path, Some(&body)).await? {
        Outcome::Done { app: done, .. } => {
            match clone {
                Some(new) => println!("{new} made from backup {id} of {app}"),
                None => println!(
                    "{app} restored from backup {id} (the state before is in backup {})",
                    done["safety_backup"].as_str().unwrap_or("?")
                ),
            }
            if let Some(skipped) = done["database"]["skipped_shown"].as_array() {
                for s in skipped {
                    println!("  skipped: {}", s.as_str().unwrap_or_default());
                }
            }
            Ok(())
        }
        Outcome::Failed { error, .. } => Err(CliError::message(error)),
    }
}

/// Shows the app's schedule and retention; with a change, makes it first (the API checks
/// it, so the CLI and the pages refuse the same things with the same sentence).
pub async fn settings(
    api: &ApiClient,
    app: &str,
    change: &crate::model::PolicyChange,
) -> Result<(), CliError> {
    let path = format!("{}/settings", app_path(app));
    let view: crate::backups::PolicyView = if change.is_empty() {
        api.get(&path).await?
    } else {
        let body = serde_json::json!({
            "schedule": change.schedule,
            "keep_last": change.keep_last,
            "keep_daily": change.keep_daily,
            "keep_weekly": change.keep_weekly,
            "keep_monthly": change.keep_monthly,
        });
        api.put(&path, &body).await?
    };
    print!("{}", describe_policy(&view));
    Ok(())
}

/// The policy as lines a person reads.
fn describe_policy(view: &crate::backups::PolicyView) -> String {
    use crate::model::Schedule;
    let p = &view.policy;
    let schedule = match p.schedule {
        Schedule::Off => "off (no scheduled backup)".to_owned(),
        Schedule::Daily => format!("daily at {} UTC (picked for the app)", view.daily_at),
        Schedule::At(_) => format!("daily at {} UTC", p.schedule),
    };
    let next = match view.next_run {
        _ if p.schedule == Schedule::Off => "none".to_owned(),
        None => "none: the app has no database or storage to back up".to_owned(),
        Some(at) if at <= crate::model::now() => "due now".to_owned(),
        Some(at) => format_time(at),
    };
    let changed = view
        .updated_at
        .map_or("never (the defaults)".to_owned(), format_time);
    format!(
        "app:       {}\nschedule:  {schedule}\nnext run:  {next}\nkeep:      last {}, daily {}, weekly {}, monthly {}\nchanged:   {changed}\n",
        view.app, p.keep_last, p.keep_daily, p.keep_weekly, p.keep_monthly
    )
}

pub async fn verify(api: &ApiClient, app: &str) -> Result<(), CliError> {
    let path = format!("{}/verify", app_path(app));
    let body = serde_json::json!({});
    match progress::run::<_, BackupView>(api, Method::POST, &path, Some(&body)).await? {
        Outcome::Done { app: run, .. } => match &run.verified {
            Some(v) if v.problem.is_none() => {
                println!("backup {} of {app}: {}", run.id, v.describe());
                Ok(())
            }
            Some(v) => Err(CliError::message(format!(
                "backup {} of {app}: {}",
                run.id,
                v.describe()
            ))),
            None => Err(CliError::message(format!(
                "backup {} of {app} was not verified",
                run.id
            ))),
        },
        Outcome::Failed { error, .. } => Err(CliError::message(error)),
    }
}

/// Streams backup `id` into `output`, through a `.partial` file beside it renamed when
/// whole: a cut download never leaves a file that looks complete.
pub async fn download(api: &ApiClient, app: &str, id: &str, output: &Path) -> Result<(), CliError> {
    use tokio::io::AsyncWriteExt;
    let path = format!("{}/{}/download", app_path(app), encode_segment(id));
    let mut response = api
        .open(Method::GET, &path, None::<&()>, "application/zstd")
        .await?;
    let mut partial = output.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let io = |what: &'static str| move |source| CliError::Io { what, source };
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(io("cannot create the output file"))?;
    let mut written: u64 = 0;
    let copied = async {
        while let Some(chunk) = response.chunk().await.map_err(|e| api.stream_error(&e))? {
            file.write_all(&chunk)
                .await
                .map_err(io("cannot write the output file"))?;
            written += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(io("cannot write the output file"))?;
        Ok::<_, CliError>(())
    }
    .await;
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    tokio::fs::rename(&partial, output)
        .await
        .map_err(io("cannot rename the output file into place"))?;
    println!(
        "backup {id} of {app} written to {} ({} MB)",
        output.display(),
        format::megabytes(written)
    );
    Ok(())
}

pub async fn key(api: &ApiClient) -> Result<(), CliError> {
    let key: serde_json::Value = api.get("/api/backups/key").await?;
    println!(
        "repository: {}\npassword:   {}\n\n\
         With these, Debian's restic reads every backup:\n  \
         RESTIC_REPOSITORY=… RESTIC_PASSWORD=… restic snapshots --tag minicloud",
        key["repository"].as_str().unwrap_or("?"),
        key["password"].as_str().unwrap_or("?"),
    );
    if let Some(s3) = key["s3_repository"].as_str() {
        println!(
            "\nThe copy in S3, with the same password and the bucket's keys:\n  \
             AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… RESTIC_PASSWORD=… \
             restic -r {s} snapshots --tag minicloud",
            s = s3
        );
    }
    Ok(())
}

/// Tests the S3 destination: one line a step, then the advice when one failed.
pub async fn test_s3(api: &ApiClient) -> Result<(), CliError> {
    let check: S3Check = api
        .post("/api/backups/s3/test", &serde_json::json!({}))
        .await?;
    print!("{}", describe_check(&check));
    if check.ok {
        Ok(())
    } else {
        Err(CliError::message(format!(
            "the S3 destination {} failed its test: {}",
            check.destination,
            check.advice.as_deref().unwrap_or("see above")
        )))
    }
}

/// `S3 destination …`, then `  ok   write: …` / `  FAIL read: …` lines.
fn describe_check(check: &S3Check) -> String {
    let mut out = format!("S3 destination {}\n", check.destination);
    for step in &check.steps {
        let mark = if step.ok { "ok  " } else { "FAIL" };
        out.push_str(&format!("  {mark} {}: {}\n", step.step, step.detail));
    }
    out
}

fn sizes(run: &BackupView) -> String {
    let total: u64 = run.parts.iter().map(|p| p.bytes).sum();
    let added: u64 = run.parts.iter().map(|p| p.added).sum();
    let parts: Vec<&str> = run.parts.iter().map(|p| p.part.as_str()).collect();
    format!(
        "{} MB read, {} MB added ({})",
        format::megabytes(total),
        format::megabytes(added),
        parts.join(", ")
    )
}

/// id, started, trigger, state, size, added, took, detail.
fn row(run: &BackupView) -> Vec<String> {
    let total: u64 = run.parts.iter().map(|p| p.bytes).sum();
    let added: u64 = run.parts.iter().map(|p| p.added).sum();
    let took = run
        .finished_at
        .map(|f| format!("{}s", f - run.started_at))
        .unwrap_or_else(|| "-".into());
    let parts: Vec<&str> = run.parts.iter().map(|p| p.part.as_str()).collect();
    let mut detail = run.reason.clone().unwrap_or_else(|| {
        // Where it is, when it is in more places than the local repository.
        let confirmed: Vec<&str> = run
            .destinations
            .iter()
            .filter(|d| d.confirmed)
            .map(|d| d.kind.as_str())
            .collect();
        match confirmed.as_slice() {
            [] | ["local"] => parts.join(", "),
            places => format!("{} (in {})", parts.join(", "), places.join(" + ")),
        }
    });
    if let Some(v) = &run.verified {
        detail = format!("{detail}; {}", v.describe());
    }
    vec![
        run.id.clone(),
        format_time(run.started_at),
        run.trigger.clone(),
        run.state.clone(),
        format!("{} MB", format::megabytes(total)),
        format!("{} MB", format::megabytes(added)),
        took,
        detail,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_shows_why_and_a_good_one_its_parts() {
        let failed: BackupView = serde_json::from_str(
            r#"{"id":"1-aa","trigger":"manual","started_at":0,"finished_at":3,"state":"failed","reason":"MariaDB at h:1: down","parts":[]}"#,
        )
        .unwrap();
        let r = row(&failed);
        assert_eq!(r[3], "failed");
        assert_eq!(r[6], "3s");
        assert_eq!(r[7], "MariaDB at h:1: down");
        let good: BackupView = serde_json::from_str(
            r#"{"id":"2-bb","state":"succeeded","started_at":0,"parts":[{"part":"record","bytes":2000000,"added":1000000},{"part":"database","bytes":2000000,"added":0}],"new":1}"#,
        )
        .unwrap();
        let r = row(&good);
        assert_eq!(r[4], "4.0 MB");
        assert_eq!(r[5], "1.0 MB");
        assert_eq!(r[7], "record, database");
        let copied: BackupView = serde_json::from_str(
            r#"{"id":"3-cc","state":"succeeded","parts":[{"part":"record"}],"destinations":[{"kind":"local","confirmed":true},{"kind":"s3","confirmed":true}]}"#,
        )
        .unwrap();
        assert_eq!(row(&copied)[7], "record (in local + s3)");
    }
}
