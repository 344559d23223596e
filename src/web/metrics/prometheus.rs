//! The [`Report`] in Prometheus' text exposition format (version 0.0.4), for `/metrics`.

use std::fmt::Write;

use minicloud_proxy::metrics::LATENCY_BOUNDS_MS;

use super::Report;

/// The content type scrapers expect.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Reads one figure of an app, if it has it.
type AppGauge = fn(&super::AppMetrics) -> Option<f64>;
/// Reads one counter of a host.
type HostCounter = fn(&minicloud_proxy::metrics::Totals) -> u64;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let counters: [(&str, &str, HostCounter); 2] = [
        (
            "minicloud_http_requests_total",
            "Requests the edge answered, per host.",
            |t| t.requests,
        ),
        (
            "minicloud_http_server_errors_total",
            "Answers with a 5xx status, per host.",
            |t| t.server_errors,
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help);
        for h in &report.hosts {
            let _ = writeln!(
                out,
                "{name}{{host=\"{}\"}} {}",
                label(&h.host),
                value(&h.totals)
            );
        }
    }
    family(
        &mut out,
        "minicloud_http_request_duration_seconds",
        "histogram",
        "Time from the request's arrival to the end of its answer, per host.",
    );
    for h in &report.hosts {
        let host = label(&h.host);
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BOUNDS_MS.iter().zip(h.totals.latency) {
            cumulative += count;
            let le = *bound as f64 / 1000.0;
            let _ = writeln!(
                out,
                "minicloud_http_request_duration_seconds_bucket{{host=\"{host}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let count: u64 = h.totals.latency.iter().sum();
        let sum = h.totals.latency_sum_us as f64 / 1e6;
        let _ = writeln!(
            out,
            "minicloud_http_request_duration_seconds_bucket{{host=\"{host}\",le=\"+Inf\"}} {count}\n\
             minicloud_http_request_duration_seconds_sum{{host=\"{host}\"}} {sum}\n\
             minicloud_http_request_duration_seconds_count{{host=\"{host}\"}} {count}"
        );
    }
    let gauges: [(&str, &str, AppGauge); 3] = [
        (
            "minicloud_app_memory_bytes",
            "Memory the app's web container uses.",
            |a| a.memory_bytes.map(|b| b as f64),
        ),
        (
            "minicloud_app_memory_limit_bytes",
            "The app's memory limit.",
            |a| Some(a.memory_limit_bytes as f64),
        ),
        (
            "minicloud_app_cpu_percent",
            "CPU the app's web container uses, in percent of one core.",
            |a| a.cpu_percent,
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help);
        for app in &report.apps {
            if let Some(v) = value(app) {
                let _ = writeln!(out, "{name}{{app=\"{}\"}} {v}", label(&app.name));
            }
        }
    }
    let m = &report.machine;
    let [load1, load5, load15] = m.load.map_or([None; 3], |l| l.map(Some));
    let machine = [
        (
            "minicloud_machine_memory_total_bytes",
            "The box's memory.",
            m.memory_total_bytes.map(|b| b as f64),
        ),
        (
            "minicloud_machine_memory_available_bytes",
            "Memory new work can still get.",
            m.memory_available_bytes.map(|b| b as f64),
        ),
        (
            "minicloud_data_disk_total_bytes",
            "Size of the data dir's disk.",
            m.disk_total_bytes.map(|b| b as f64),
        ),
        (
            "minicloud_data_disk_free_bytes",
            "Space left on the data dir's disk.",
            m.disk_free_bytes.map(|b| b as f64),
        ),
        (
            "minicloud_machine_load1",
            "Load average over 1 minute.",
            load1,
        ),
        (
            "minicloud_machine_load5",
            "Load average over 5 minutes.",
            load5,
        ),
        (
            "minicloud_machine_load15",
            "Load average over 15 minutes.",
            load15,
        ),
    ];
    for (name, help, value) in machine {
        if let Some(v) = value {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {v}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use minicloud_proxy::metrics::Totals;

    use super::super::{HostMetrics, Machine};
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_labels_escaped() {
        let mut totals = Totals {
            requests: 3,
            server_errors: 1,
            latency_sum_us: 1_500_000,
            ..Totals::default()
        };
        totals.latency[0] = 2;
        totals.latency[LATENCY_BOUNDS_MS.len()] = 1;
        let report = Report {
            sampled_every_seconds: 60,
            machine: Machine::default(),
            apps: Vec::new(),
            hosts: vec![HostMetrics::new("we\"ird".into(), totals)],
        };
        let text = render(&report);
        assert!(text.contains("minicloud_http_requests_total{host=\"we\\\"ird\"} 3\n"));
        assert!(text.contains("minicloud_http_server_errors_total{host=\"we\\\"ird\"} 1\n"));
        assert!(text.contains("_bucket{host=\"we\\\"ird\",le=\"0.001\"} 2\n"));
        assert!(text.contains("_bucket{host=\"we\\\"ird\",le=\"10\"} 2\n"));
        assert!(text.contains("_bucket{host=\"we\\\"ird\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("_sum{host=\"we\\\"ird\"} 1.5\n"));
        assert!(text.contains("# TYPE minicloud_http_request_duration_seconds histogram\n"));
    }
}
