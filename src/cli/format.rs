//! How numbers, times, digests and failures read in the CLI's output. Pure functions.

/// Bytes in binary units, one decimal above KiB: `512 B`, `3.4 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Megabytes as registries and `docker pull` count them (10^6), one decimal: `12.4`.
pub fn megabytes(n: u64) -> String {
    format!("{:.1}", n as f64 / 1_000_000.0)
}

/// How long ago `then` was, at `now` (both Unix seconds), the way `docker ps` says it.
pub fn ago(now: i64, then: i64) -> String {
    let secs = now.saturating_sub(then).max(0);
    let (n, unit) = match secs {
        0..=1 => return "just now".into(),
        2..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{s} ago")
}

/// The first 12 hex digits of a digest (`sha256:…`), as `docker images` shows image IDs.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    hex.chars().take(12).collect()
}

/// The first line of `text`, cut to `max` characters with an ellipsis.
pub fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('\u{2026}');
    cut
}

/// A deploy failure for the terminal: what failed and why, the failed revision's last log
/// lines indented under it, and which revision keeps serving on a line of its own.
pub fn deploy_failure(failed: &super::progress::FailedDeploy) -> String {
    let mut out = format!("deploy of {}", failed.app);
    if let Some(rev) = failed.revision {
        out.push_str(&format!(" revision {rev}"));
    }
    out.push_str(&format!(" failed: {}", failed.reason.trim_end()));
    let still = failed
        .still_serving
        .map(|rev| format!("revision {rev} keeps serving"));
    match &failed.log_tail {
        Some(logs) => {
            out.push_str("; its last log lines:");
            for line in logs.trim_end().lines() {
                out.push_str("\n    ");
                out.push_str(line);
            }
            if let Some(still) = still {
                out.push('\n');
                out.push_str(&still);
            }
        }
        None => {
            if let Some(still) = still {
                out.push_str("; ");
                out.push_str(&still);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(256 * 1024 * 1024), "256.0 MiB");
        assert_eq!(megabytes(40_100_000), "40.1");
    }

    #[test]
    fn times_read_like_docker_ps() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(100, 200), "just now");
        assert_eq!(ago(100, 70), "30 seconds ago");
        assert_eq!(ago(4000, 400), "1 hour ago");
        assert_eq!(ago(200_000, 0), "2 days ago");
        assert_eq!(ago(125, 0), "2 minutes ago");
    }

    #[test]
    fn digests_and_reasons_shorten() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest(""), "");
        assert_eq!(first_line("one\ntwo", 10), "one");
        assert_eq!(first_line("abcdef", 4), "abc\u{2026}");
    }

    #[test]
    fn a_failed_deploy_indents_its_log_lines() {
        let failed = |log_tail: Option<&str>, still_serving| super::super::progress::FailedDeploy {
            app: "probe".into(),
            revision: Some(2),
            reason: "no answer in 20s".into(),
            log_tail: log_tail.map(str::to_owned),
            still_serving,
        };
        assert_eq!(
            deploy_failure(&failed(Some("boom\nbang"), Some(1))),
            "deploy of probe revision 2 failed: no answer in 20s; its last log lines:\n    boom\n    bang\nrevision 1 keeps serving"
        );
        assert_eq!(
            deploy_failure(&failed(None, Some(1))),
            "deploy of probe revision 2 failed: no answer in 20s; revision 1 keeps serving"
        );
        assert_eq!(
            deploy_failure(&failed(None, None)),
            "deploy of probe revision 2 failed: no answer in 20s"
        );
    }
}
