//! Per-app backup schedule and retention against a real minicloud, restic and the CLI: a
//! policy that keeps one run leaves exactly one run and one set of snapshots after two
//! backups; a clone made from a backup takes the policy over; bad settings are refused with a
//! sentence and change nothing; changes are audited.

mod support;

use serde_json::{json, Value};

use support::backups::{cli, deploy_with_a_file, restic};
use support::services::app;
use support::AppCleanup;

/// The distinct `run:` tags of the app's snapshots in the local repository.
fn runs_in_repository(mc: &support::Minicloud, password: &str, name: &str) -> Vec<String> {
    let out = restic(
        &mc.data_path().join("backups"),
        password,
        &["snapshots", "--json", "--tag", &format!("app:{name}")],
        None,
    );
    let snapshots: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut runs: Vec<String> = snapshots
        .iter()
        .flat_map(|s| s["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str()?.strip_prefix("run:").map(str::to_owned))
        .collect();
    runs.sort();
    runs.dedup();
    runs
}

#[tokio::test]
async fn keep_last_one_leaves_one_backup_and_bad_settings_change_nothing() {
    let mc = support::Minicloud::start().await;
    let name = app("policy").to_string();
    let _cleanup = AppCleanup(&name);
    let api = mc.api();
    deploy_with_a_file(&mc, &name).await;
    let settings = format!("/api/apps/{name}/backups/settings");

    // No policy yet: the defaults, a daily slot ahead.
    let view: Value = api.get_json(&settings).await;
    assert_eq!(view["schedule"], "daily", "{view}");
    assert_eq!(
        [
            &view["keep_last"],
            &view["keep_daily"],
            &view["keep_weekly"],
            &view["keep_monthly"]
        ],
        [7, 7, 4, 6],
        "{view}"
    );
    assert!(view["updated_at"].is_null(), "{view}");
    assert!(view["next_run"].as_i64().is_some(), "{view}");

    // Keep one run, nothing else; the schedule at a fixed time.
    let resp = api
        .put(
            &settings,
            json!({"schedule": "03:30", "keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}),
        )
        .await;
    let status = resp.status();
    let view: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["schedule"], "03:30", "{view}");
    let next = view["next_run"].as_i64().unwrap();
    assert_eq!(next.rem_euclid(86_400), 3 * 3600 + 30 * 60, "{view}");

    // Bad input: a 400 with a sentence, and the policy as it was.
    for (body, says) in [
        (json!({"keep_last": 0}), "at least 1"),
        (
            json!({"keep_daily": -1}),
            "keep_daily must be a whole number from 0 to 1000",
        ),
        (
            json!({"keep_monthly": 5000}),
            "keep_monthly must be a whole number",
        ),
        (json!({"schedule": "25:00"}), "HH:MM"),
        (json!({"schedule": "hourly", "keep_last": 3}), "HH:MM"),
        (json!({"keep_last": "seven"}), ""),
        (json!({"retention": 3}), ""),
    ] {
        let resp = api.put(&settings, body.clone()).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text}");
    }
    let kept: Value = api.get_json(&settings).await;
    assert_eq!(kept, view, "refused changes changed nothing");
    // An unknown app is a 404.
    let resp = api
        .put(
            "/api/apps/no-such-app/backups/settings",
            json!({"keep_last": 2}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        api.get("/api/apps/no-such-app/backups/settings")
            .await
            .status(),
        404
    );

    // Two manual runs: retention after each keeps only the newest.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let resp = api
            .post(&format!("/api/apps/{name}/backups"), json!({}))
            .await;
        assert_eq!(resp.status(), 201);
        let run: Value = resp.json().await.unwrap();
        assert_eq!(run["state"], "succeeded", "{run}");
        ids.push(run["id"].as_str().unwrap().to_owned());
        // Run ids start with their second: two runs in one second would tie.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let listed: Value = api.get_json(&format!("/api/apps/{name}/backups")).await;
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[1].as_str()]);
    let key: Value = api.get_json("/api/backups/key").await;
    let password = key["password"].as_str().unwrap();
    assert_eq!(runs_in_repository(&mc, password, &name), [ids[1].clone()]);

    // A clone made from the backup takes the policy over from the app's record in it.
    let clone = app("polclone").to_string();
    let _clone_cleanup = AppCleanup(&clone);
    let resp = api
        .post(
            &format!("/api/apps/{name}/backups/{}/restore", ids[1]),
            json!({"as": clone}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let cloned: Value = api
        .get_json(&format!("/api/apps/{clone}/backups/settings"))
        .await;
    assert_eq!(cloned["schedule"], "03:30", "{cloned}");
    assert_eq!(cloned["keep_last"], 1, "{cloned}");
    let resp = api.delete(&format!("/api/apps/{clone}?data=true")).await;
    assert_eq!(resp.status(), 204);

    // The CLI shows the policy and changes it; it refuses what the API refuses.
    let (ok, out, err) = cli(&mc, &["backups", "settings", &name]).await;
    assert!(ok, "{err}");
    assert!(out.contains("daily at 03:30 UTC"), "{out}");
    assert!(
        out.contains("last 1, daily 0, weekly 0, monthly 0"),
        "{out}"
    );
    let (ok, out, err) = cli(
        &mc,
        &[
            "backups",
            "settings",
            &name,
            "--schedule",
            "off",
            "--keep-last",
            "2",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("schedule:  off"), "{out}");
    assert!(out.contains("next run:  none"), "{out}");
    let (ok, _, err) = cli(&mc, &["backups", "settings", &name, "--keep-last", "0"]).await;
    assert!(!ok);
    assert!(err.contains("at least 1"), "{err}");
    let view: Value = api.get_json(&settings).await;
    assert_eq!(view["schedule"], "off", "{view}");
    assert_eq!(view["keep_last"], 2, "{view}");
    assert!(view["next_run"].is_null(), "{view}");

    // Every change and refusal is in the audit log.
    let audit: Value = api
        .get_json("/api/audit?what=/backups/settings&limit=100")
        .await;
    // The CLI sends the app's name as it is (`-` unencoded), so its entries read like the
    // API's and a search for the name finds them.
    let what = format!("PUT /api/apps/{name}/backups/settings");
    let entries: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["what"] == what.as_str())
        .collect();
    assert_eq!(
        entries.iter().filter(|e| e["ok"] == true).count(),
        2,
        "{audit}"
    );
    assert_eq!(
        entries.iter().filter(|e| e["ok"] == false).count(),
        8,
        "{audit}"
    );

    let resp = api.delete(&format!("/api/apps/{name}?data=true")).await;
    assert_eq!(resp.status(), 204);
}
