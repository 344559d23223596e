//! Route and SNI-certificate lookups at 10, 1,000 and 100,000 hosts.
//!
//! The edge does one route lookup per request and one certificate lookup per TLS handshake,
//! both on the request path; the target is a flat cost from 10 to 100,000 hosts. Run with
//! `cargo bench --bench lookup` (or through `benches/run.sh`, which collects the figures).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use minicloud_proxy::{CertTable, Certificate, HostPattern, RouteTable, Upstream};

const SIZES: [usize; 3] = [10, 1_000, 100_000];

fn host(i: usize) -> String {
    format!("app{i}.bench.test")
}

/// Hosts looked up, spread over the table so the caches see a realistic mix.
fn probes(n: usize) -> Vec<String> {
    (0..256).map(|k| host((k * 7919) % n)).collect()
}

fn route_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    for &n in &SIZES {
        let upstream: Upstream = "127.0.0.1:9000".parse().expect("upstream");
        let routes: BTreeMap<HostPattern, Upstream> = (0..n)
            .map(|i| (HostPattern::parse(&host(i)).expect("host"), upstream))
            .collect();
        let table = RouteTable::from_routes(&routes);
        let probes = probes(n);
        let mut k = 0usize;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) & 255;
                black_box(table.lookup(black_box(&probes[k])))
            })
        });
        // A miss falls through to the wildcard map: the cost of an unknown Host header.
        group.bench_with_input(BenchmarkId::new("miss", n), &n, |b, _| {
            b.iter(|| black_box(table.lookup(black_box("nobody.elsewhere.test"))))
        });
    }
    group.finish();
}

fn cert_lookup(c: &mut Criterion) {
    // Generating 100,000 key pairs would take minutes: one certificate serves every pattern,
    // which changes nothing for the lookup (the table holds an Arc per name).
    let cert = Certificate::self_signed(&HostPattern::parse("bench.test").expect("host"))
        .expect("self-signed certificate");
    let mut group = c.benchmark_group("sni_cert_lookup");
    for &n in &SIZES {
        let certs: BTreeMap<HostPattern, Certificate> = (0..n)
            .map(|i| (HostPattern::parse(&host(i)).expect("host"), cert.clone()))
            .collect();
        let table = CertTable::from_certs(&certs);
        let probes = probes(n);
        let mut k = 0usize;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) & 255;
                black_box(table.lookup(black_box(&probes[k])).is_some())
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = route_lookup, cert_lookup
}
criterion_main!(benches);
