//! The test environment `scripts/test-env.sh` sets up (registry, MariaDB, RabbitMQ, Pebble,
//! SMTP, S3): one reader for its variables. A test that needs one fails, rather than skips,
//! without it.

/// A variable of the test environment: the process environment (as `scripts/test.sh` sets
/// it), else the env file `scripts/test-env.sh` writes.
pub fn test_env(name: &str) -> String {
    try_test_env(name).unwrap_or_else(|| {
        panic!(
            "{name} is not set: run scripts/test-env.sh, then \
             set -a; . \"${{TMPDIR:-/tmp}}/minicloud-test-env/test-env.env\"; set +a"
        )
    })
}

/// Like [`test_env`], `None` when the variable is set nowhere.
pub fn try_test_env(name: &str) -> Option<String> {
    if let Ok(v) = std::env::var(name) {
        return Some(v);
    }
    let dir = std::env::var("MINICLOUD_TEST_ENV_DIR").unwrap_or_else(|_| {
        format!(
            "{}/minicloud-test-env",
            std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into())
        )
    });
    let file = std::fs::read_to_string(format!("{dir}/test-env.env")).ok()?;
    file.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
}
