//! Retention against the real restic and the S3 server the test script starts (moto, env
//! `MINICLOUD_TEST_S3_*`): after more runs than the policy keeps, the S3 repository holds
//! the kept runs' snapshots and no others. In process, with `apply_retention` given a
//! policy of its own; the platform subject needs no app or engine.

use std::collections::BTreeSet;

use super::plan::Retention;
use super::platform::subject_tag;
use super::Backups;
use crate::apps::{AppSettings, Apps};
use crate::config::Sources;
use crate::ctx::Ctx;
use crate::model::{Actor, AppName};
use crate::store::{BackupState, Store};

#[allow(clippy::disallowed_methods)]
fn test_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: load the test services' env (scripts/test-env.sh)")
    })
}

/// The platform runs (their `run:` tags) whose snapshots the S3 repository holds, by the stock restic.
fn runs_in_s3(repository: &str, password: &str) -> BTreeSet<String> {
    let out = std::process::Command::new("restic")
        .args([
            "--no-cache",
            "-o",
            "s3.bucket-lookup=path",
            "snapshots",
            "--json",
        ])
        .args(["--tag", &subject_tag(&AppName::platform())])
        .env("RESTIC_REPOSITORY", repository)
        .env("RESTIC_PASSWORD", password)
        .env(
            "AWS_ACCESS_KEY_ID",
            test_env("MINICLOUD_TEST_S3_ACCESS_KEY"),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            test_env("MINICLOUD_TEST_S3_SECRET_KEY"),
        )
        .env("AWS_DEFAULT_REGION", test_env("MINICLOUD_TEST_S3_REGION"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["tags"].as_array().unwrap().iter())
        .filter_map(|t| t.as_str()?.strip_prefix("run:").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn after_runs_beyond_the_policy_s3_holds_only_the_kept_runs_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = test_env("MINICLOUD_TEST_S3_ENDPOINT");
    let bucket = format!("mc-ret-{}-{}", std::process::id(), crate::model::now());
    let access = test_env("MINICLOUD_TEST_S3_ACCESS_KEY");
    let secret = test_env("MINICLOUD_TEST_S3_SECRET_KEY");
    let region = test_env("MINICLOUD_TEST_S3_REGION");
    let config = Sources::new()
        .flags([
            ("data_dir", dir.path().to_str().unwrap()),
            ("backup_s3_endpoint", endpoint.as_str()),
            ("backup_s3_region", region.as_str()),
            ("backup_s3_bucket", bucket.as_str()),
            ("backup_s3_prefix", "box"),
            ("backup_s3_access_key", access.as_str()),
            ("backup_s3_secret_key", secret.as_str()),
            ("backup_s3_path_style", "true"),
        ])
        .resolve()
        .unwrap();
    let store = Store::open(&config.state_path()).unwrap();
    let ctx = Ctx::new(config, store, minicloud_proxy::Edge::new());
    let settings = AppSettings {
        health_timeout: std::time::Duration::from_secs(1),
        networks: Default::default(),
        pull_timeout: crate::docker::DEFAULT_PULL_TIMEOUT,
        min_free_mb: 0,
    };
    let backups = Backups::new(ctx.clone(), Apps::new(ctx.clone(), settings).unwrap());
    let platform = AppName::platform();
    let op = ctx.begin(Actor::System);

    let mut ids = Vec::new();
    for _ in 0..4 {
        let done = backups.run(&op, &platform, "manual").await.unwrap();
        assert_eq!(
            done.backup.state,
            BackupState::Succeeded,
            "{:?}",
            done.backup
        );
        ids.push(done.backup.id);
    }
    let password = backups.key().unwrap();
    let repository = format!("s3:{endpoint}/{bucket}/box");
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(runs_in_s3(&repository, password.expose()), all);

    let policy = Retention {
        last: 2,
        daily: 0,
        weekly: 0,
        monthly: 0,
    };
    let dropped = backups.apply_retention(&platform, policy).await.unwrap();
    assert_eq!(dropped, 2);
    let kept: BTreeSet<String> = ctx
        .store
        .backups(&platform)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, ids[2..].iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(runs_in_s3(&repository, password.expose()), kept);
}
