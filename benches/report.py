#!/usr/bin/env python3
"""Turns bench.py's results.json into one markdown table (every figure, with its ratio to
nginx) and a PNG chart.

    python3 benches/report.py bench-results/<run>/results.json --md out.md --png out.png
"""

import argparse
import json
import statistics
from pathlib import Path

NAMES = {"minicloud": "minicloud", "minicloud-ab": "minicloud+A/B", "nginx": "nginx",
         "haproxy": "HAProxy", "caddy": "Caddy", "direct": "direct"}


def name_ab(res):
    """The A/B column is named after its build option: `minicloud+<feature>`."""
    ab = res["meta"].get("ab")
    if ab:
        NAMES["minicloud-ab"] = f"minicloud+{ab}"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    """Half the range, as a share of the median: the ± of the interleaved runs."""
    xs = [x for x in xs if x is not None]
    m = med(xs)
    if not xs or not m:
        return None
    return (max(xs) - min(xs)) / 2 / m


def fmt_num(x, digits=None):
    if x is None:
        return "–"
    if digits is not None:
        return f"{x:,.{digits}f}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(value, sp=None, ratio=None, digits=None):
    if value is None:
        return "–"
    s = fmt_num(value, digits)
    if sp is not None:
        s += f" ±{sp * 100:.0f}%"
    if ratio is not None:
        s += f" · **{ratio:.2f}×**"
    return s


def table(res):
    name_ab(res)
    meta = res["meta"]
    proxies = meta["proxies"]
    cols = proxies + ["direct"]
    head = "| case | figure | " + " | ".join(NAMES.get(p, p) for p in cols) + " |"
    rows = [head, "|" + "---|" * (len(cols) + 2)]

    def row(case, fig, cells):
        rows.append(f"| {case} | {fig} | " + " | ".join(cells) + " |")

    for case in res["cases"]:
        runs = res["runs"].get(case["id"], {})
        if not runs:
            continue
        direct_runs = res["runs"].get(case.get("direct_as") or case["id"], {}).get("direct", [])
        runs = {**runs, "direct": direct_runs} if not case.get("logs") else runs
        get = lambda p, k: [r.get(k) for r in runs.get(p, [])]
        direct_rps = med(get("direct", "rps"))
        nginx = {k: med(get("nginx", k)) for k in ("rps", "p50_us", "p99_us", "cpu_s_per_100k")}

        def ratio(p, k, v):
            base = nginx.get(k)
            if p == "nginx" or v is None or not base:
                return None
            return v / base

        label = case["label"]
        noise = res.get("noise", {}).get(case["id"])
        noisy = case["id"] in meta.get("noisy_cases", [])
        if noisy:
            label += " ⚠ noisy"
        cs = []
        for p in cols:
            v = med(get(p, "rps"))
            cs.append(cell(v, spread(get(p, "rps")), ratio(p, "rps", v)))
        row(label, "req/s (±spread · ×nginx)", cs)
        row("", "÷ direct to upstream", [fmt_num(med(get(p, "rps")) / direct_rps, 2)
                                         if direct_rps and med(get(p, "rps")) else "–" for p in cols])
        for k, name in (("p50_us", "p50 ms"), ("p99_us", "p99 ms")):
            cs = []
            for p in cols:
                v = med(get(p, k))
                v = v / 1000 if v is not None else None
                cs.append(cell(v, None, ratio(p, k, v * 1000 if v is not None else None)))
            row("", name + " (×nginx)", cs)
        row("", "errors (all rounds)", [str(sum(get(p, "errors"))) if runs.get(p) else "–"
                                         for p in cols])
        cs = []
        for p in cols:
            v = med(get(p, "cpu_s_per_100k"))
            cs.append(cell(v, None, ratio(p, "cpu_s_per_100k", v)))
        row("", "CPU s per 100k req (×nginx)", cs)
        row("", "proxy core busy", [f"{med(get(p, 'busy')) * 100:.0f}%"
                                    if med(get(p, "busy")) is not None else "–" for p in cols])
        cs = []
        for p in cols:
            v = med(get(p, "upstream_connects_per_1k"))
            cs.append(fmt_num(v) if v is not None else "–")
        row("", "upstream connects per 1,000 requests (about)", cs)
        if noise:
            # Other work on the machine, as a share of all cores: the most seen just before a
            # round of this case, and while each proxy ran it.
            cs = []
            for p in cols:
                during = [r.get("foreign") for r in runs.get(p, []) if r.get("foreign") is not None]
                cs.append(f"{max(during) * 100:.0f}%" if during else "–")
            row("", f"other work during a run, max (before the case: "
                    f"{max(noise['before']) * 100:.0f}%)", cs)

    mem = res.get("memory", {})
    n_idle = max((m.get("idle_conns_n", 0) for m in mem.values()), default=0)
    after = meta.get("after_wait_s", 60)
    for key, fig in (("idle_kb", "idle"), ("idle_conns_kb", f"{n_idle:,} idle TLS keep-alive conns"),
                     ("peak_kb", "peak under load"), ("after_kb", f"{after:.0f} s after the load")):
        base = mem.get("nginx", {}).get(key)
        cs = []
        for p in cols:
            v = mem.get(p, {}).get(key)
            r = v / base if v and base and p != "nginx" else None
            cs.append(cell(v / 1024 if v else None, None, r))
        row("memory: RSS MB (×nginx)" if key == "idle_kb" else "", fig, cs)
    conns_note = [f"{mem.get(p, {}).get('idle_conns_n', '–'):,}" if p in mem else "–" for p in cols]
    row("", "idle conns actually held", conns_note)
    base = mem.get("nginx", {}).get("per_idle_conn_kb")
    cs = []
    for p in cols:
        v = mem.get(p, {}).get("per_idle_conn_kb")
        cs.append(cell(v, None, v / base if v is not None and base and p != "nginx" else None))
    row("", "KB per idle TLS connection: (RSS with them − RSS just before) ÷ N (×nginx)", cs)

    ctl = res.get("control", {})
    blank = ["–"] * len(cols)

    def only(values):
        cs = list(blank)
        for p, v in values.items():
            if p in cols:
                cs[cols.index(p)] = v
        return cs

    if ctl:
        row("control plane", "idle RSS of `minicloud serve`, 0 routes (MB)",
            only({"minicloud": fmt_num(ctl.get("idle_rss_0_routes_kb", 0) / 1024)}))
        row("", "idle RSS, 1,000 routes + certificates (MB)",
            only({"minicloud": fmt_num(ctl.get("idle_rss_1000_routes_kb", 0) / 1024)}))
        row("", "time to add 1,000 routes through the API (s)",
            only({"minicloud": fmt_num(ctl.get("add_1000_routes_s"))}))
        mc, ng = ctl.get("minicloud_change_ms", []), ctl.get("nginx_change_ms", [])
        r = med(mc) / med(ng) if mc and ng else None

        def p90(xs):
            return sorted(xs)[int(len(xs) * 0.9)] if xs else None
        row("", f"route change → first request on the new upstream, median (p90) ms, "
                f"{len(mc)} changes (minicloud: API call; nginx: file + `nginx -s reload`)",
            only({"minicloud": f"{fmt_num(med(mc))} ({fmt_num(p90(mc))})" + (f" · **{r:.3f}×**" if r else ""),
                  "nginx": f"{fmt_num(med(ng))} ({fmt_num(p90(ng))})"}))
        n1 = ctl.get("nginx_1host_change_ms", [])
        if n1:
            row("", f"… nginx with a single host instead of 1,000, median (p90) ms, {len(n1)} reloads",
                only({"nginx": f"{fmt_num(med(n1))} ({fmt_num(p90(n1))})"}))
        row("", "… of which the API call itself, median ms",
            only({"minicloud": fmt_num(med(ctl.get("minicloud_api_call_ms", [])))}))
        pub = ctl.get("minicloud_publish_ms", [])
        if pub:
            row("", "… of which store commit → new snapshot served (`Server-Timing: publish`), "
                    "median (max) ms",
                only({"minicloud": f"{med(pub):.3f} ({max(pub):.3f})"}))
        row("", "… errors/reconnects seen by the polling client",
            only({"minicloud": str(ctl.get("minicloud_change_client_errors", "–")),
                  "nginx": f"{ctl.get('nginx_change_client_errors', '–')} "
                           f"(1 host: {ctl.get('nginx_1host_change_client_errors', '–')})"}))
        for_load = {}
        for p in ("minicloud", "nginx"):
            u = ctl.get(f"{p}_under_changes")
            if u:
                for_load[p] = (f"{u['errors']} errors / {u['requests']:,} req, {u['changes']} changes "
                               f"(read {u['read']}, non-2xx {u['status']}, connect {u['connect']}, "
                               f"timeout {u['timeout']})")
        row("", "client under load (100 conn) during route changes", only(for_load))

    micro = res.get("micro", {})
    if micro:
        first = True
        for group, fig in (("route_lookup", "route lookup"), ("sni_cert_lookup", "SNI cert lookup")):
            for n in ("10", "1000", "100000"):
                v = micro.get(f"{group}/{n}")
                if v is None:
                    continue
                base = micro.get(f"{group}/10")
                flat = f" · {v / base:.2f}× the 10-host figure" if base else ""
                row("micro-bench (Criterion, ns per lookup)" if first else "",
                    f"{fig}, {int(n):,} hosts", only({"minicloud": f"{v:.1f}{flat}"}))
                first = False
            for n in ("10", "1000", "100000"):
                v = micro.get(f"{group}/miss/{n}")
                if v is not None:
                    row("", f"{fig}, unknown host, {int(n):,} hosts", only({"minicloud": f"{v:.1f}"}))
    return "\n".join(rows)


def notes(res):
    meta = res["meta"]
    s = meta.get("settings", {})
    out = [f"Run of {meta.get('date')} on {meta.get('machine')} ({meta.get('mode')} mode, "
           f"{meta.get('total_s', 0) / 60:.1f} min).", ""]
    v = meta.get("versions", {})
    out.append("Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".")
    out.append("")
    name_ab(res)
    out.append(f"- {s.get('rounds')} interleaved rounds (each case: minicloud, nginx, HAProxy, Caddy, "
               f"direct, in turn); {s.get('dur')} s per run ({s.get('dur_c1000')} s at 1,000 "
               f"connections), after a {s.get('warm')} s warm-up of each case and proxy. Figures are "
               "medians; ± is half the range across rounds (direct: measured in every other round, "
               "once per kind of request, and repeated in the rows that send the same one); ×nginx is the ratio to nginx's median "
               "(for req/s higher is better; for latency, CPU and memory lower is better).")
    out.append("- Each proxy has one worker thread (nginx `worker_processes 1`, HAProxy `nbthread 1`, "
               "Caddy `GOMAXPROCS=1`, minicloud `MINICLOUD_THREADS=1`) and runs pinned to core 0; wrk "
               "(one thread), the upstream (nginx, one worker, `return 200` / a 100 KB file) and the "
               "harness share core 1. Same routes everywhere (the bench host + 1,000 `hN.bench.test` "
               "hosts + one host for the route-change test), keep-alive to the upstream (pool of 1,024 "
               "idle connections: nginx `keepalive`, HAProxy `pool-max-conn`, Caddy "
               "`keepalive_idle_conns_per_host`, minicloud's default), X-Forwarded-* and an X-Request-Id set by every proxy, access logs off "
               "except in the row that says ON (each proxy's default format, to a file). "
               "The access-log-ON instances route only the bench host.")
    out.append("- minicloud's plain-HTTP port only answers ACME challenges and redirects to HTTPS, so "
               "the proxy-throughput cases go over HTTPS (HTTP/1.1 in TLS 1.3) for everyone, and the "
               "plain HTTP rows compare the other proxies only. *direct* is wrk straight to the upstream "
               "over plain HTTP: the ceiling of this load generator, and the base of the ÷ direct row.")
    out.append("- HTTPS new connection per request: `Connection: close`, and wrk never resumes a "
               "TLS session, so every request is a full TLS 1.3 handshake.")
    tls = meta.get("tls", {})
    if tls:
        out.append("- TLS as negotiated with wrk's OpenSSL: " + "; ".join(
            f"{NAMES.get(p, p)} {t.get('version')} {t.get('cipher')}, key exchange {t.get('kx', '?')}, "
            f"{t.get('sig', '?')}, leaf certificate {t.get('leaf_cert_bytes')} bytes, chain of "
            f"{t.get('chain_len', '?')}" for p, t in tls.items()) + ". nginx, HAProxy and Caddy "
            "share one ECDSA P-256 certificate made with openssl (its SAN names the bench host, the "
            "route-change host and `*.bench.test`); minicloud cannot be given a certificate yet and "
            "serves the self-signed ECDSA P-256 one it makes per routed host: same algorithm and key "
            "size, a chain of one in both cases, a slightly different size.")
    fc = meta.get("foreign_cpu_share")
    if fc is not None:
        cores = ", ".join(f"{c} {b * 100:.0f}%" for c, b in meta.get("core_busy", {}).items())
        out.append(f"- Noise: during the {meta.get('load_phase_s', 0):.0f} s load phase, other work "
                   f"on the machine used {fc * 100:.0f}% of the cores (cores busy: {cores}); load "
                   f"average at the start {' '.join(meta.get('loadavg_start', []))}.")
    noisy = meta.get("noisy_cases")
    if noisy is not None:
        share = meta.get("noisy_share", 0.05) * 100
        out.append(f"- A case is marked ⚠ noisy when other work (the machine's busy time from "
                   f"/proc/stat less the bench's own processes) took more than {share:.0f}% of the "
                   "cores just before a round of it or during any run of it: "
                   + (f"{len(noisy)} of {len(res['cases'])} cases were." if noisy
                      else "none was."))
    if meta.get("ab"):
        out.append(f"- {NAMES['minicloud-ab']}: the same source built with `--features "
                   f"bench-{meta['ab']}`, which puts that one of Pingora's defaults back; it runs "
                   "every case minicloud runs, interleaved in the same rounds (benches/README.md).")
    for n in res.get("notes", []):
        out.append(f"- {n}")
    return "\n".join(out)


def chart(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = res["meta"]
    proxies = meta["proxies"]
    name_ab(res)
    colors = {"minicloud": "#d9480f", "minicloud-ab": "#f08c00", "nginx": "#2b8a3e",
              "haproxy": "#1971c2", "caddy": "#7048e8"}
    cases = [c for c in res["cases"] if res["runs"].get(c["id"], {}).get("nginx")]
    proxies_all = proxies
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 9), gridspec_kw={"height_ratios": [3, 2]})
    width = 0.8 / len(proxies)
    for i, p in enumerate(proxies):
        xs, ys, lo, hi = [], [], [], []
        for j, c in enumerate(cases):
            runs = res["runs"][c["id"]]
            base = med([r["rps"] for r in runs["nginx"]])
            vals = [r["rps"] for r in runs.get(p, [])]
            if not vals or not base:
                continue
            m = med(vals)
            xs.append(j + (i - (len(proxies) - 1) / 2) * width)
            ys.append(m / base)
            lo.append((m - min(vals)) / base)
            hi.append((max(vals) - m) / base)
        ax1.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=NAMES.get(p, p),
                color=colors.get(p, "grey"))
    ax1.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax1.set_xticks(range(len(cases)))
    short = lambda l: (l.replace("HTTPS ", "").replace("plain HTTP", "plain").replace("keep-alive, ", "")
                       .replace("new connection per request", "handshake/req").replace(" conn", " c")
                       .replace(", ", "\n"))
    ax1.set_xticklabels([short(c["label"]) for c in cases], fontsize=7)
    ax1.set_ylabel("requests/s ÷ nginx (higher is better)")
    ax1.legend(fontsize=8, ncol=len(proxies))
    ax1.set_title(f"minicloud edge vs nginx, HAProxy, Caddy — {meta.get('date')}\n{meta.get('machine')}",
                  fontsize=10)

    mem = res.get("memory", {})
    keys = [("idle_kb", "idle"), ("idle_conns_kb", "idle conns"), ("peak_kb", "peak"),
            ("after_kb", "after load")]
    for i, p in enumerate(proxies):
        xs = [j + (i - (len(proxies) - 1) / 2) * width for j in range(len(keys))]
        ys = [(mem.get(p, {}).get(k) or 0) / 1024 for k, _ in keys]
        ax2.bar(xs, ys, width, label=NAMES.get(p, p), color=colors.get(p, "grey"))
    n_idle = max((m.get("idle_conns_n", 0) for m in mem.values()), default=0)
    ax2.set_xticks(range(len(keys)))
    ax2.set_xticklabels([l if k != "idle_conns_kb" else f"{n_idle:,} idle TLS conns" for k, l in keys])
    ax2.set_ylabel("RSS MB (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--md")
    ap.add_argument("--png")
    a = ap.parse_args()
    res = json.loads(Path(a.results).read_text())
    md = (f"### minicloud edge vs nginx, HAProxy, Caddy — {res['meta'].get('date')}\n\n"
          f"Machine: {res['meta'].get('machine')}\n\n" + table(res) + "\n\n" + notes(res) + "\n")
    print(md)
    if a.md:
        Path(a.md).write_text(md)
    if a.png:
        chart(res, a.png)


if __name__ == "__main__":
    main()
