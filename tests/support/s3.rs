//! The S3 server the test script starts (moto, checking signatures): minicloud's settings
//! for a bucket of a test's own, and the stock restic pointed at the repository there.

use super::env::test_env;

/// moto's URL, e.g. `http://127.0.0.1:41234`.
pub fn endpoint() -> String {
    test_env("MINICLOUD_TEST_S3_ENDPOINT")
}

/// A bucket no other test run uses.
pub fn bucket() -> String {
    super::unique("mc-bk")
}

/// minicloud's environment for an S3 destination at `endpoint`, bucket `bucket`, prefix
/// `box`, with moto's key (`secret_key` replaces its secret when given).
pub fn settings(endpoint: &str, bucket: &str, secret_key: Option<&str>) -> Vec<(String, String)> {
    let secret = secret_key
        .map(str::to_owned)
        .unwrap_or_else(|| test_env("MINICLOUD_TEST_S3_SECRET_KEY"));
    [
        ("MINICLOUD_BACKUP_S3_ENDPOINT", endpoint.to_owned()),
        (
            "MINICLOUD_BACKUP_S3_REGION",
            test_env("MINICLOUD_TEST_S3_REGION"),
        ),
        ("MINICLOUD_BACKUP_S3_BUCKET", bucket.to_owned()),
        ("MINICLOUD_BACKUP_S3_PREFIX", "box".to_owned()),
        (
            "MINICLOUD_BACKUP_S3_ACCESS_KEY",
            test_env("MINICLOUD_TEST_S3_ACCESS_KEY"),
        ),
        ("MINICLOUD_BACKUP_S3_SECRET_KEY", secret),
        ("MINICLOUD_BACKUP_S3_PATH_STYLE", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Runs the stock restic on the repository in moto's `bucket` (prefix `box`) with
/// `password`; returns stdout.
pub fn restic(bucket: &str, password: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("restic")
        .args(["--no-cache", "-o", "s3.bucket-lookup=path"])
        .args(args)
        .env(
            "RESTIC_REPOSITORY",
            format!("s3:{}/{bucket}/box", endpoint()),
        )
        .env("RESTIC_PASSWORD", password)
        .env(
            "AWS_ACCESS_KEY_ID",
            test_env("MINICLOUD_TEST_S3_ACCESS_KEY"),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            test_env("MINICLOUD_TEST_S3_SECRET_KEY"),
        )
        .output()
        .expect("restic (Debian's package) is installed");
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
