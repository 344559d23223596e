#!/usr/bin/env python3
"""Drives the side-by-side benchmark: minicloud's edge, nginx, HAProxy and Caddy.

Started by benches/run.sh, which installs the tools, builds minicloud and cleans up. This
script writes every config into the work dir, starts each daemon by hand on loopback ports
(pinned to core 0; wrk, the upstream and this script on core 1), runs the cases interleaved
(A B C D A B C D ...), takes the memory and control-plane figures, runs the Criterion
lookup benches and writes results.json. report.py turns that into the table and the chart.

Every load loop is bounded in count and time, and traffic goes only to 127.0.0.1.
"""

import argparse
import asyncio
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

PROXY_CORE = "0"
LOAD_CORE = "1"
DOMAIN = "bench.test"
APP = "app.bench.test"
RC = "rc.bench.test"  # the host whose upstream the route-change test flips
TOKEN = "bench-admin-token-0123456789abcdef0123"  # at least 32 characters
N_HOSTS = 1000
# Idle upstream connections each proxy keeps (minicloud's default; the others set to match).
UPSTREAM_POOL = 1024
# A case is noisy when other work on the machine takes more than this share of all cores,
# just before it or while it runs (its figures are then kept, and marked).
NOISY_SHARE = 0.05
# How long the machine is watched before each case, for the "before" noise figure.
QUIET_SAMPLE_S = 0.3


def small_body(name):
    return f"upstream {name}: a small response body of 64 bytes".ljust(63, ".") + "\n"

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Modes: how long and how often. The full run stays under 15 minutes on 2 cores.
MODES = {
    "full": dict(rounds=5, dur=2, dur_c1000=3, warm=1, idle_conns=10_000, after_wait=60,
                 rc_reps=30, rc_reps_nginx=5, change_load_s=8, change_every_s=0.5),
    "short": dict(rounds=2, dur=1, dur_c1000=2, warm=1, idle_conns=1_000, after_wait=5,
                  rc_reps=8, rc_reps_nginx=3, change_load_s=4, change_every_s=0.5),
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- processes ---------------------------------------------------------------------------

def foreign_share(busy0, busy1, ours_s, wall_s):
    """The share of all cores that other work took between two /proc/stat readings: the
    machine's busy time less what the bench's own processes used."""
    if wall_s <= 0:
        return 0.0
    busy = sum(busy1[c] - busy0.get(c, busy1[c]) for c in busy1)
    # /proc/stat counts in clock ticks: over a short window the share can round past 100%.
    return min(1.0, max(0.0, busy - ours_s) / (wall_s * len(busy1)))


def tcp_active_opens():
    """Outgoing TCP connections opened on the machine so far (/proc/net/snmp, like `nstat`)."""
    lines = [l.split() for l in Path("/proc/net/snmp").read_text().splitlines() if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("ActiveOpens")])


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    """pid and all its descendants (nginx: master + workers)."""
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_kb(pids):
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_s(pids):
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def system_busy():
    """Busy seconds per core from /proc/stat (everything but idle and iowait): idle is what
    the noise figures are taken from."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            f = line.split()
            vals = list(map(int, f[1:]))
            out[f[0]] = (sum(vals) - vals[3] - vals[4]) / CLK_TCK
    return out


class Daemon:
    def __init__(self, name, cmd, work, env=None, cwd=None, core=PROXY_CORE):
        self.name = name
        logf = open(work / "logs" / f"{name}.out", "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", core] + cmd, stdout=logf, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
        with open(work / "pids", "a") as f:
            f.write(f"{self.proc.pid}\n")

    def pids(self):
        return tree(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(timeout=8)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, 9)
                except ProcessLookupError:
                    pass


# --- a tiny HTTP/1.1 client over one keep-alive connection --------------------------------

def client_tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


TLS = client_tls()


class Conn:
    def __init__(self, port, sni=None, timeout=5.0):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if sni:
            sock = TLS.wrap_socket(sock, server_hostname=sni)
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def get(self, host, path="/small"):
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        status = self.rfile.readline()
        if not status:
            raise ConnectionError("closed")
        length = 0
        while True:
            line = self.rfile.readline()
            if not line:
                raise ConnectionError("closed in headers")
            if line in (b"\r\n", b"\n"):
                break
            k, _, v = line.decode("latin-1").partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        body = self.rfile.read(length)
        return int(status.split()[1]), body

    def close(self):
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass


def wait_ready(port, sni, deadline_s=40, daemon=None):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        if daemon is not None and not daemon.alive():
            raise RuntimeError(f"{daemon.name} exited during start-up (see logs/{daemon.name}.out)")
        try:
            c = Conn(port, sni, timeout=2)
            status, _ = c.get(APP)
            c.close()
            if status == 200:
                return
            last = f"status {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise RuntimeError(f"port {port} not ready in {deadline_s}s: {last}")


def tls_facts(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = TLS.wrap_socket(sock, server_hostname=APP)
    cert = s.getpeercert(binary_form=True)
    facts = {"version": s.version(), "cipher": s.cipher()[0], "leaf_cert_bytes": len(cert)}
    s.close()
    # The whole chain's size as sent, from openssl (Python shows only the leaf).
    try:
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", APP,
             "-showcerts", "-brief"], input=b"", capture_output=True, timeout=10).stdout
        facts["chain_len"] = out.count(b"-----BEGIN CERTIFICATE-----") or 1
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", APP],
            input=b"", capture_output=True, timeout=10).stdout.decode("latin-1")
        m = re.search(r"Peer signature type: (\S+)", out)
        g = re.search(r"(?:Server Temp Key|Negotiated TLS1.3 group): ([^\n]+)", out)
        facts["sig"] = m.group(1) if m else "?"
        facts["kx"] = g.group(1).strip() if g else "?"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return facts


# --- configs -----------------------------------------------------------------------------

def host_names():
    return [f"h{i}.{DOMAIN}" for i in range(N_HOSTS)]


def write_upstream_conf(work, port_a, port_b):
    www = work / "www"
    www.mkdir(exist_ok=True)
    (www / "100k.bin").write_bytes(os.urandom(100 * 1024))
    body_a, body_b = small_body("a"), small_body("b")
    conf = f"""
worker_processes 1;
worker_rlimit_nofile 19000;
pid {work}/upstream.pid;
error_log {work}/logs/upstream-error.log warn;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    default_type text/plain;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_body_temp_path {work}/tmp-upstream;
    server {{
        listen 127.0.0.1:{port_a} backlog=4096;
        location = /small {{ return 200 "{body_a}"; }}
        location = /100k {{ alias {www}/100k.bin; }}
    }}
    server {{
        listen 127.0.0.1:{port_b} backlog=4096;
        location = /small {{ return 200 "{body_b}"; }}
        location = /100k {{ alias {www}/100k.bin; }}
    }}
}}
"""
    path = work / "upstream.conf"
    path.write_text(conf)
    return path


def nginx_rc_block(https, up):
    return f"""server {{
    listen 127.0.0.1:{https} ssl;
    server_name {RC};
    location / {{ proxy_pass http://{up}; }}
}}
"""


def write_nginx_conf(work, name, https, http_, up_a, up_b, cert, key, access_log, hosts):
    logs = f"access_log {work}/logs/{name}-access.log;" if access_log else "access_log off;"
    tmp = work / f"tmp-{name}"
    tmp.mkdir(exist_ok=True)
    servers = []
    for i, h in enumerate([APP] + hosts):
        opts = " backlog=4096" if i == 0 else ""  # listen options go on one server only
        servers.append(f"""server {{
    listen 127.0.0.1:{https} ssl{opts};
    listen 127.0.0.1:{http_}{opts};
    server_name {h};
    location / {{ proxy_pass http://up; }}
}}""")
    rc_conf = work / f"{name}-rc.conf"
    rc_conf.write_text(nginx_rc_block(https, "up_a"))
    conf = f"""
worker_processes 1;
worker_rlimit_nofile 19000;
pid {work}/{name}.pid;
error_log {work}/logs/{name}-error.log warn;
events {{ worker_connections 19000; }}
http {{
    {logs}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    server_names_hash_max_size 4096;
    server_names_hash_bucket_size 64;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.3;
    upstream up {{ server 127.0.0.1:{up_a}; keepalive {UPSTREAM_POOL}; keepalive_requests 100000000; keepalive_timeout 60s; }}
    upstream up_a {{ server 127.0.0.1:{up_a}; keepalive {UPSTREAM_POOL}; keepalive_timeout 60s; }}
    upstream up_b {{ server 127.0.0.1:{up_b}; keepalive {UPSTREAM_POOL}; keepalive_timeout 60s; }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $host;
    proxy_set_header X-Request-Id $request_id;
    add_header X-Request-Id $request_id always;
    include {rc_conf};
{chr(10).join(servers)}
}}
"""
    path = work / f"{name}.conf"
    path.write_text(conf)
    return path, rc_conf


def write_haproxy_conf(work, name, https, http_, up_a, up_b, pem, access_log, hosts):
    mapf = work / f"{name}-hosts.map"
    mapf.write_text("".join(f"{h} be_up\n" for h in [APP] + hosts) + f"{RC} be_a\n")
    log_global = "    log stdout format raw local0\n" if access_log else ""
    log_defaults = "    log global\n    option httplog\n" if access_log else ""
    conf = f"""global
    nbthread 1
    maxconn 19000
    # HAProxy wants 2 descriptors per connection up front; the machine's hard limit may be
    # lower. Warn instead of refusing: the bench holds at most ~10,000 client connections.
    no strict-limits
    pidfile {work}/{name}.pid
    ssl-default-bind-options ssl-min-ver TLSv1.3
{log_global}
defaults
    mode http
{log_defaults}    timeout connect 3s
    timeout client 75s
    timeout server 60s
    timeout http-keep-alive 75s
    option http-keep-alive

frontend edge
    bind 127.0.0.1:{https} ssl crt {pem} alpn h2,http/1.1
    bind 127.0.0.1:{http_}
    maxconn 19000
    http-request set-var(txn.rid) uuid
    http-request set-header X-Request-Id %[var(txn.rid)]
    http-request set-header X-Forwarded-For %[src]
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-response set-header X-Request-Id %[var(txn.rid)]
    use_backend %[req.hdr(host),lower,map_str({mapf},be_none)]

backend be_up
    server up 127.0.0.1:{up_a} pool-max-conn {UPSTREAM_POOL}
backend be_a
    server a 127.0.0.1:{up_a} pool-max-conn {UPSTREAM_POOL}
backend be_b
    server b 127.0.0.1:{up_b} pool-max-conn {UPSTREAM_POOL}
backend be_none
    http-request return status 404
"""
    path = work / f"{name}.cfg"
    path.write_text(conf)
    return path


def write_caddyfile(work, name, https, http_, up_a, cert, key, access_log, hosts):
    log = f"    log {{\n        output file {work}/logs/{name}-access.log\n    }}\n" if access_log else ""
    proxy = f"""    bind 127.0.0.1
    header X-Request-Id {{http.request.uuid}}
    reverse_proxy 127.0.0.1:{up_a} {{
        header_up X-Request-Id {{http.request.uuid}}
        transport http {{
            keepalive 60s
            keepalive_idle_conns_per_host {UPSTREAM_POOL}
        }}
    }}
{log}"""
    blocks = []
    for h in [APP, RC] + hosts:
        # One block per host, as a person would write one per app; HTTPS and plain HTTP apart
        # because a block's TLS settings cannot apply to a plain listener.
        blocks.append(f"""https://{h}:{https} {{
    tls {cert} {key} {{
        protocols tls1.3
    }}
{proxy}}}
http://{h}:{http_} {{
{proxy}}}""")
    conf = f"""{{
    admin off
    auto_https off
    storage file_system {work}/caddy-{name}
}}

{chr(10).join(blocks)}
"""
    path = work / f"{name}.Caddyfile"
    path.write_text(conf)
    return path


# --- load --------------------------------------------------------------------------------

LUA_DONE = r"""
done = function(s, lat, req)
  io.write(string.format('BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    s.requests, s.duration, s.bytes, s.errors.connect, s.errors.read, s.errors.write,
    s.errors.status, s.errors.timeout, lat:percentile(50), lat:percentile(99)))
end
"""


def write_lua(work):
    scripts = {}
    base = f'wrk.headers["Host"] = "{APP}"\n'
    scripts["keepalive"] = base + LUA_DONE
    scripts["close"] = base + 'wrk.headers["Connection"] = "close"\n' + LUA_DONE
    scripts["rc"] = f'wrk.headers["Host"] = "{RC}"\n' + LUA_DONE
    # Requests spread round-robin over the 1,000 hosts; prebuilt so Lua costs the same for all.
    scripts["many"] = base + f"""
local reqs = {{}}
for i = 0, {N_HOSTS - 1} do
  reqs[i + 1] = wrk.format(nil, nil, {{ Host = "h" .. i .. ".{DOMAIN}" }})
end
local n = 0
request = function()
  n = n % {N_HOSTS} + 1
  return reqs[n]
end
""" + LUA_DONE
    paths = {}
    for k, v in scripts.items():
        p = work / f"wrk-{k}.lua"
        p.write_text(v)
        paths[k] = p
    return paths


class Wrk:
    def __init__(self, work, lua):
        self.hosts = work / "hosts"
        self.hosts.write_text(
            "127.0.0.1 localhost\n" + f"127.0.0.1 {APP} {RC}\n"
            + "".join(f"127.0.0.1 {h}\n" for h in host_names()))
        self.lua = lua

    def cmd(self, url, conns, dur, script):
        # wrk sends SNI from the URL's host and resolves it through /etc/hosts: a private mount
        # namespace gives it a hosts file naming the bench hosts, all on 127.0.0.1, without
        # touching the machine's. Nothing else changes: same network, same loopback.
        inner = (f"mount --bind {self.hosts} /etc/hosts && exec taskset -c {LOAD_CORE} "
                 f"wrk -t1 -c{conns} -d{dur}s --timeout 5s -s {self.lua[script]} {url}")
        return ["unshare", "-m", "sh", "-c", inner]

    def run(self, url, conns, dur, script):
        out = subprocess.run(self.cmd(url, conns, dur, script), capture_output=True,
                             timeout=dur + 60)
        return parse_wrk(out.stdout.decode(errors="replace"), out.stderr.decode(errors="replace"))

    def start(self, url, conns, dur, script):
        return subprocess.Popen(self.cmd(url, conns, dur, script), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)


def parse_wrk(stdout, stderr):
    for line in stdout.splitlines():
        if line.startswith("BENCHJSON "):
            r = json.loads(line[len("BENCHJSON "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0
            r["errors"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
            return r
    raise RuntimeError(f"wrk gave no result:\n{stdout[-2000:]}\n{stderr[-2000:]}")


class PeakSampler(threading.Thread):
    """Samples the RSS of whichever proxy is under load; keeps the maximum per proxy."""

    def __init__(self):
        super().__init__(daemon=True)
        self.target = None  # (name, daemon)
        self.peak = {}
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.wait(0.2):
            t = self.target
            if t:
                kb = rss_kb(t[1].pids())
                self.peak[t[0]] = max(self.peak.get(t[0], 0), kb)


async def hold_idle(port, n, sni, deadline_s):
    """Opens n TLS keep-alive connections, one request each, then leaves them idle."""
    sem = asyncio.Semaphore(400)
    conns = []
    req = f"GET /small HTTP/1.1\r\nHost: {APP}\r\n\r\n".encode()

    async def one():
        async with sem:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", port, ssl=TLS, server_hostname=sni), 10)
                w.write(req)
                head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await asyncio.wait_for(r.readexactly(int(m.group(1)) if m else 0), 10)
                conns.append(w)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
                pass

    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), deadline_s)
    except asyncio.TimeoutError:
        pass
    return conns


async def close_all(conns):
    for w in conns:
        w.close()
    await asyncio.sleep(0.5)


# --- the run -----------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.mode = MODES[args.mode]
        self.work = Path(args.work)
        self.out = Path(args.out)
        (self.work / "logs").mkdir(parents=True, exist_ok=True)
        # nginx workers run as an unprivileged user: they must reach the 100 KB file and the
        # temp dirs below the work dir, which mktemp made private.
        os.chmod(self.work, 0o755)
        b = args.port_base
        self.ports = {
            "upstream_a": b + 80, "upstream_b": b + 82,
            # name: (https, http, api)
            "minicloud": (b + 143, b + 100, b + 190), "minicloud-logs": (b + 1143, b + 1100, b + 1190),
            "nginx": (b + 243, b + 200, None), "nginx-logs": (b + 1243, b + 1200, None),
            "haproxy": (b + 343, b + 300, None), "haproxy-logs": (b + 1343, b + 1300, None),
            "caddy": (b + 443, b + 400, None), "caddy-logs": (b + 1443, b + 1400, None),
            # minicloud built with one `bench-*` feature (run.sh --ab): Pingora's default back.
            "minicloud-ab": (b + 543, b + 500, b + 590),
        }
        self.daemons = {}
        self.results = {"meta": {}, "cases": [], "runs": {}, "memory": {}, "control": {},
                        "micro": {}, "notes": [], "noise": {}}
        # Why a compared proxy is missing, exactly (run.sh says why it could not install one).
        self.missing = dict(m.split("=", 1) for m in args.missing)
        for name in ("haproxy", "caddy"):
            if name not in self.missing and shutil.which(name) is None:
                self.missing[name] = f"no {name} command on PATH (run.sh installs it from Debian)"
        self.have_caddy = "caddy" not in self.missing
        self.have_haproxy = "haproxy" not in self.missing
        self.ab = args.ab_name
        self.results["meta"]["ab"] = self.ab

    # -- set-up --

    def check_ports_free(self):
        for name, p in self.ports.items():
            for port in (p if isinstance(p, tuple) else (p,)):
                if port is None:
                    continue
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        raise RuntimeError(f"port {port} ({name}) is taken: choose --port-base")

    def make_cert(self):
        cert, key = self.work / "cert.pem", self.work / "key.pem"
        names = ",".join(f"DNS:{n}" for n in [APP, RC, f"*.{DOMAIN}"])
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "30", "-subj", f"/CN={APP}", "-addext", f"subjectAltName={names}",
             "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        pem = self.work / "combined.pem"
        pem.write_text(cert.read_text() + key.read_text())
        return cert, key, pem

    def start_minicloud(self, name, with_hosts, env_extra=None, binary=None):
        https, http_, api = self.ports[name]
        data = self.work / f"data-{name}"
        data.mkdir()
        env = {
            "MINICLOUD_DATA_DIR": str(data), "MINICLOUD_LISTEN": "127.0.0.1",
            "MINICLOUD_HTTP_PORT": str(http_), "MINICLOUD_HTTPS_PORT": str(https),
            "MINICLOUD_API_LISTEN": f"127.0.0.1:{api}", "MINICLOUD_ADMIN_TOKEN": TOKEN,
            "MINICLOUD_THREADS": "1", "MINICLOUD_DOMAIN": DOMAIN,
            "MINICLOUD_ACCESS_LOG": "true" if name.endswith("-logs") else "false",
            # Every client here is 127.0.0.1: minicloud's caps (64 per address, 1,024 in total)
            # would refuse most of wrk's and the idle test's connections. The others' limits
            # are set to 19,000 too (nginx worker_connections, HAProxy maxconn).
            "MINICLOUD_MAX_CONNECTIONS": "19000", "MINICLOUD_MAX_CONNECTIONS_PER_IP": "19000",
            **(env_extra or {}),
        }
        d = Daemon(name, [binary or self.args.minicloud, "serve"], self.work, env=env)
        self.daemons[name] = d
        # wait for the API
        end = time.monotonic() + 40
        while True:
            if not d.alive():
                raise RuntimeError(f"{name} exited at start (see logs/{name}.out)")
            try:
                c = http.client.HTTPConnection("127.0.0.1", api, timeout=2)
                c.request("GET", "/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
                if c.getresponse().status == 200:
                    c.close()
                    break
            except OSError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"{name}: API not up")
            time.sleep(0.2)
        return d

    def api(self, name):
        return http.client.HTTPConnection("127.0.0.1", self.ports[name][2], timeout=10)

    def add_route(self, conn, host, upstream):
        body = json.dumps({"host": host, "upstream": upstream})
        conn.request("POST", "/api/routes", body=body, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status not in (200, 201):
            raise RuntimeError(f"route {host}: API answered {r.status}")
        # Store commit → new snapshot served, in ms, as the API reports it.
        m = re.search(r"publish;dur=([0-9.]+)", r.getheader("server-timing") or "")
        return float(m.group(1)) if m else None

    def start_all(self):
        w = self.work
        up_a, up_b = self.ports["upstream_a"], self.ports["upstream_b"]
        upconf = write_upstream_conf(w, up_a, up_b)
        (w / "tmp-upstream").mkdir(exist_ok=True)
        up = Daemon("upstream", ["nginx", "-e", str(w / "logs/upstream-error.log"), "-p", str(w),
                                 "-c", str(upconf), "-g", "daemon off;"], w, core=LOAD_CORE)
        # The upstream shares core 1 with wrk, away from the proxy under test.
        self.daemons["upstream"] = up
        wait_ready(up_a, None, daemon=up)
        c = Conn(up_a)
        status, body = c.get(APP, "/100k")
        c.close()
        if status != 200 or len(body) != 100 * 1024:
            raise RuntimeError(f"upstream: GET /100k gave {status} with {len(body)} bytes")

        cert, key, pem = self.make_cert()
        hosts = host_names()

        # minicloud: control-plane figures first (idle RSS with 0, then 1,000 routes + certs).
        mc = self.start_minicloud("minicloud", True)
        time.sleep(2)
        ctl = self.results["control"]
        ctl["idle_rss_0_routes_kb"] = rss_kb(mc.pids())
        api = self.api("minicloud")
        t0 = time.monotonic()
        for h in hosts:
            self.add_route(api, h, f"127.0.0.1:{up_a}")
        ctl["add_1000_routes_s"] = time.monotonic() - t0
        self.add_route(api, APP, f"127.0.0.1:{up_a}")
        self.add_route(api, RC, f"127.0.0.1:{up_a}")
        api.close()
        time.sleep(2)
        ctl["idle_rss_1000_routes_kb"] = rss_kb(mc.pids())
        log(f"minicloud: idle RSS {ctl['idle_rss_0_routes_kb'] / 1024:.1f} MB with 0 routes, "
            f"{ctl['idle_rss_1000_routes_kb'] / 1024:.1f} MB with 1,000 routes+certs "
            f"(added in {ctl['add_1000_routes_s']:.1f} s)")

        variants = [("", False, hosts), ("-logs", True, [])]
        for suffix, logs, hs in variants:
            name = "nginx" + suffix
            https, http_, _ = self.ports[name]
            conf, rc = write_nginx_conf(w, name, https, http_, up_a, up_b, cert, key, logs, hs)
            self.daemons[name] = Daemon(name, ["nginx", "-e", str(w / f"logs/{name}-error.log"),
                                               "-p", str(w), "-c", str(conf), "-g", "daemon off;"], w)
            self.daemons[name].conf, self.daemons[name].rc = conf, rc
            if self.have_haproxy:
                name = "haproxy" + suffix
                https, http_, _ = self.ports[name]
                conf = write_haproxy_conf(w, name, https, http_, up_a, up_b, pem, logs, hs)
                self.daemons[name] = Daemon(name, ["haproxy", "-db", "-f", str(conf)], w)
            if self.have_caddy:
                name = "caddy" + suffix
                https, http_, _ = self.ports[name]
                conf = write_caddyfile(w, name, https, http_, up_a, cert, key, logs, hs)
                env = {"GOMAXPROCS": "1", "HOME": str(w), "XDG_DATA_HOME": str(w / "xdg-data"),
                       "XDG_CONFIG_HOME": str(w / "xdg-config")}
                self.daemons[name] = Daemon(name, ["caddy", "run", "--config", str(conf),
                                                   "--adapter", "caddyfile"], w, env=env)
        self.start_minicloud("minicloud-logs", False)
        api = self.api("minicloud-logs")
        self.add_route(api, APP, f"127.0.0.1:{up_a}")
        api.close()
        if self.ab:
            self.start_minicloud("minicloud-ab", True, binary=self.args.ab_bin)
            api = self.api("minicloud-ab")
            for h in [APP, RC] + hosts:
                self.add_route(api, h, f"127.0.0.1:{up_a}")
            api.close()

        for name, d in self.daemons.items():
            if name == "upstream":
                continue
            wait_ready(self.ports[name][0], APP, daemon=d)
            # Every proxy must really serve both bodies, or the figures measure error pages.
            c = Conn(self.ports[name][0], APP)
            for path, size in (("/small", 64), ("/100k", 100 * 1024)):
                status, body = c.get(APP, path)
                if status != 200 or len(body) != size:
                    raise RuntimeError(f"{name}: GET {path} gave {status} with {len(body)} bytes")
            c.close()
        self.proxies = ["minicloud", "nginx"] + (["haproxy"] if self.have_haproxy else []) \
            + (["caddy"] if self.have_caddy else [])
        if self.ab:
            self.proxies.append("minicloud-ab")
        log("all daemons up: " + ", ".join(self.daemons))

    def stop_all(self):
        for d in self.daemons.values():
            d.stop()

    # -- load cases --

    def cases(self):
        m = self.mode
        full = self.args.mode == "full"
        cs = []
        conns = [10, 100, 1000] if full else [100]
        bodies = (("small", "/small"), ("100 KB", "/100k")) if full else (("small", "/small"),)
        for body, path in bodies:
            for c in conns:
                cs.append(dict(id=f"https_{path[1:]}_c{c}", label=f"HTTPS keep-alive, {body}, {c} conn",
                               scheme="https", path=path, conns=c, script="keepalive",
                               dur=m["dur_c1000"] if c >= 1000 else m["dur"]))
        cs.append(dict(id="https_newconn", label="HTTPS new connection per request, small, 32 conn",
                       scheme="https", path="/small", conns=32, script="close", dur=m["dur"]))
        cs.append(dict(id="https_manyhosts", label="HTTPS keep-alive, 1,000 hosts, small, 100 conn",
                       scheme="https", path="/small", conns=100, script="many", dur=m["dur"],
                       direct_as="https_small_c100"))
        cs.append(dict(id="https_small_logs", label="HTTPS keep-alive, small, 100 conn, access log ON",
                       scheme="https", path="/small", conns=100, script="keepalive", dur=m["dur"],
                       logs=True))
        for body, path in bodies:
            cs.append(dict(id=f"http_{path[1:]}_c100", label=f"plain HTTP keep-alive, {body}, 100 conn",
                           scheme="http", path=path, conns=100, script="keepalive", dur=m["dur"],
                           no_minicloud=True, direct_as=f"https_{path[1:]}_c100"))
        return cs

    def url(self, proxy, case):
        if proxy == "direct":
            port = self.ports["upstream_a"]
            return f"http://{APP}:{port}{case['path']}"
        https, http_, _ = self.ports[proxy]
        if case["scheme"] == "https":
            return f"https://{APP}:{https}{case['path']}"
        return f"http://{APP}:{http_}{case['path']}"

    def one(self, proxy, case, dur, sampler):
        daemon_name = proxy + ("-logs" if case.get("logs") and proxy != "direct" else "")
        d = self.daemons["upstream" if proxy == "direct" else daemon_name]
        pids = d.pids()
        if proxy != "direct":
            sampler.target = (daemon_name, d)
        c0 = cpu_s(pids)
        b0, o0, opens0 = system_busy(), self.our_cpu(), tcp_active_opens()
        t0 = time.monotonic()
        r = self.wrk.run(self.url(daemon_name, case), case["conns"], dur, case["script"])
        wall = time.monotonic() - t0
        b1, o1, opens1 = system_busy(), self.our_cpu(), tcp_active_opens()
        # Connections the proxy opened to the upstream: all opened on the machine less wrk's
        # (one per connection kept alive, and one more after each connect or read error; one
        # per request, plus those in flight, when closing). About: other work's connections
        # count too. A pool that churns shows here.
        wrk_opens = case["conns"] + r["connect"] + r["read"] \
            + (r["requests"] if case["script"] == "close" else 0)
        upstream_opens = max(0, opens1 - opens0 - wrk_opens)
        r["upstream_connects_per_1k"] = (upstream_opens / r["requests"] * 1000
                                         if r["requests"] and proxy != "direct" else None)
        sampler.target = None
        used = cpu_s(d.pids()) - c0
        r["foreign"] = foreign_share(b0, b1, o1 - o0, wall)
        r["cpu_s"] = used
        r["cpu_s_per_100k"] = used / r["requests"] * 1e5 if r["requests"] else None
        r["busy"] = used / (r["duration_us"] / 1e6) if r["duration_us"] else None
        r["wall_s"] = wall
        if proxy == "direct":
            r["cpu_s_per_100k"] = None
            r["busy"] = None
        return r

    def our_cpu(self):
        """CPU seconds used so far by everything the bench runs: the daemons, this script and
        its reaped children (wrk)."""
        kids = children_map()
        pids = []
        for d in self.daemons.values():
            todo = [d.proc.pid]
            while todo:
                p = todo.pop()
                pids.append(p)
                todo.extend(kids.get(p, []))
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cpu_s(pids) + cpu_s([os.getpid()]) + ch.ru_utime + ch.ru_stime

    def quiet_before(self):
        """The share of the cores other work takes while the bench itself is idle."""
        b0, o0, t0 = system_busy(), self.our_cpu(), time.monotonic()
        time.sleep(QUIET_SAMPLE_S)
        return foreign_share(b0, system_busy(), self.our_cpu() - o0, time.monotonic() - t0)

    def run_load(self):
        cases = self.cases()
        self.results["cases"] = cases
        lua = write_lua(self.work)
        self.wrk = Wrk(self.work, lua)
        runs = self.results["runs"]
        sampler = PeakSampler()
        sampler.start()

        def who(case, rnd=0):
            ps = [p for p in self.proxies if not (case.get("no_minicloud") and p.startswith("minicloud"))]
            if case.get("logs"):
                ps = [p for p in ps if p + "-logs" in self.daemons]
            # Straight to the upstream: the same in many cases, so measured once per kind of
            # request, and in every other round only (it is the reference, not a contestant).
            if not case.get("logs") and not case.get("direct_as") and rnd % 2 == 0:
                ps = ps + ["direct"]
            return ps

        busy0, self_cpu0 = system_busy(), cpu_s([os.getpid()])
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours0 = cpu_s([p for d in self.daemons.values() for p in d.pids()])
        t_start = time.monotonic()
        log(f"warm-up: {self.mode['warm']} s per case and proxy")
        for case in cases:
            for p in who(case):
                self.one(p, case, self.mode["warm"], sampler)
        total = sum(len(who(c, r)) for c in cases for r in range(self.mode["rounds"]))
        k = 0
        noise = self.results["noise"]
        for rnd in range(self.mode["rounds"]):
            for case in cases:
                n = noise.setdefault(case["id"], {"before": [], "during": []})
                n["before"].append(self.quiet_before())
                for p in who(case, rnd):
                    r = self.one(p, case, case["dur"], sampler)
                    runs.setdefault(case["id"], {}).setdefault(p, []).append(r)
                    n["during"].append(r["foreign"])
                    k += 1
                log(f"round {rnd + 1}/{self.mode['rounds']} {case['id']}: " + "  ".join(
                    f"{p} {runs[case['id']][p][-1]['rps']:,.0f}" for p in who(case, rnd))
                    + f"   [{k}/{total}]")
        elapsed = time.monotonic() - t_start
        busy1 = system_busy()
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours1 = cpu_s([p for d in self.daemons.values() for p in d.pids()])
        ours = (ours1 - ours0) + (cpu_s([os.getpid()]) - self_cpu0) + \
            (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime)
        all_busy = sum(busy1[c] - busy0[c] for c in busy1)
        self.results["meta"]["load_phase_s"] = elapsed
        self.results["meta"]["foreign_cpu_share"] = max(0.0, (all_busy - ours) / (elapsed * len(busy1)))
        self.results["meta"]["core_busy"] = {c: (busy1[c] - busy0[c]) / elapsed for c in busy1}
        sampler.stop_flag.set()
        for p, kb in sampler.peak.items():
            self.results["memory"].setdefault(p, {})["peak_kb"] = kb
        noisy = [c["id"] for c in cases
                 if max(noise[c["id"]]["before"] + noise[c["id"]]["during"]) > NOISY_SHARE]
        self.results["meta"]["noisy_cases"] = noisy
        self.results["meta"]["noisy_share"] = NOISY_SHARE
        log(f"load phase took {elapsed:.0f} s; other work on the machine used "
            f"{self.results['meta']['foreign_cpu_share'] * 100:.0f}% of the cores meanwhile; "
            + (f"noisy cases (over {NOISY_SHARE * 100:.0f}%): {', '.join(noisy)}" if noisy
               else "no case was noisy"))

    # -- memory --

    def idle_rss(self):
        for p in self.proxies:
            self.results["memory"].setdefault(p, {})["idle_kb"] = rss_kb(self.daemons[p].pids())

    def idle_connections(self):
        n = self.mode["idle_conns"]
        for p in self.proxies:
            d = self.daemons[p]
            t0 = time.monotonic()
            # The same process just before: the difference is what the connections hold.
            kb0 = rss_kb(d.pids())
            loop = asyncio.new_event_loop()
            conns = loop.run_until_complete(hold_idle(self.ports[p][0], n, APP, deadline_s=90))
            time.sleep(1.0)
            kb = rss_kb(d.pids())
            loop.run_until_complete(close_all(conns))
            loop.close()
            mem = self.results["memory"].setdefault(p, {})
            mem["idle_conns_kb"] = kb
            mem["idle_conns_n"] = len(conns)
            mem["before_conns_kb"] = kb0
            mem["per_idle_conn_kb"] = (kb - kb0) / len(conns) if conns else None
            per = f"{mem['per_idle_conn_kb']:.1f} KB each" if conns else "none held"
            log(f"{p}: {len(conns)} idle TLS keep-alive connections -> RSS {kb / 1024:.1f} MB, "
                f"{per} ({time.monotonic() - t0:.1f} s)")

    def after_load(self):
        wait = self.mode["after_wait"]
        log(f"waiting {wait} s after the load; the lookup micro-benchmarks run meanwhile on core {LOAD_CORE}")
        t0 = time.monotonic()
        self.micro()
        left = wait - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
        self.results["meta"]["after_wait_s"] = time.monotonic() - t0
        for p in self.proxies:
            self.results["memory"].setdefault(p, {})["after_kb"] = rss_kb(self.daemons[p].pids())

    def micro(self):
        crit = Path(self.args.target_dir) / "criterion"
        for g in ("route_lookup", "sni_cert_lookup"):
            shutil.rmtree(crit / g, ignore_errors=True)
        extra = ["--warm-up-time", "0.1", "--measurement-time", "0.3"] if self.args.mode == "short" else []
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "CARGO_TARGET_DIR": self.args.target_dir}
        out = subprocess.run(["taskset", "-c", LOAD_CORE, "cargo", "bench", "--quiet", "--bench",
                              "lookup", "--", *extra], cwd=root, env=env, capture_output=True,
                             timeout=240)
        (self.work / "logs" / "criterion.out").write_bytes(out.stdout + out.stderr)
        for bj in crit.glob("**/new/benchmark.json"):
            est = bj.parent / "estimates.json"
            if est.exists():
                bid = json.loads(bj.read_text())["full_id"]
                self.results["micro"][bid] = json.loads(est.read_text())["median"]["point_estimate"]
        if not self.results["micro"]:
            self.results["notes"].append("the Criterion benches gave no result: see logs/criterion.out")

    # -- control plane: route changes --

    def route_change_latency(self):
        reps = self.mode["rc_reps"]
        up = {"a": f"127.0.0.1:{self.ports['upstream_a']}", "b": f"127.0.0.1:{self.ports['upstream_b']}"}
        out = self.results["control"]

        def poll_until(port, want, state, deadline):
            while time.monotonic() < deadline:
                try:
                    if state.get("conn") is None:
                        state["conn"] = Conn(port, RC)
                        state["reconnects"] = state.get("reconnects", 0) + 1
                    status, body = state["conn"].get(RC)
                    if status == 200 and body.startswith(f"upstream {want}".encode()):
                        return time.perf_counter()
                    if status != 200:
                        state["bad"] = state.get("bad", 0) + 1
                except (OSError, ConnectionError, ValueError):
                    state["errors"] = state.get("errors", 0) + 1
                    if state.get("conn"):
                        state["conn"].close()
                    state["conn"] = None
            return None

        # minicloud: one API call, then the first request that lands on the new upstream.
        api = self.api("minicloud")
        port = self.ports["minicloud"][0]
        state = {}
        lat, api_lat, publish, misses = [], [], [], 0
        for i in range(reps):
            want = "b" if i % 2 == 0 else "a"
            t0 = time.perf_counter()
            pub = self.add_route(api, RC, up[want])
            t1 = time.perf_counter()
            if pub is not None:
                publish.append(pub)
            t2 = poll_until(port, want, state, time.monotonic() + 5)
            if t2 is None:
                misses += 1
                continue
            lat.append((t2 - t0) * 1e3)
            api_lat.append((t1 - t0) * 1e3)
            time.sleep(0.02)
        api.close()
        out["minicloud_change_ms"] = lat
        out["minicloud_api_call_ms"] = api_lat
        out["minicloud_publish_ms"] = publish
        out["minicloud_change_client_errors"] = state.get("errors", 0)
        out["minicloud_change_misses"] = misses

        # nginx: rewrite the host's server block, `nginx -s reload`, first request on the new
        # one; with 1,000 TLS hosts (like minicloud here) and with one host (the reload floor).
        for inst, key in (("nginx", "nginx"), ("nginx-logs", "nginx_1host")):
            d = self.daemons[inst]
            port = self.ports[inst][0]
            state = {}
            lat, misses = [], 0
            budget = time.monotonic() + 120
            for i in range(self.mode["rc_reps_nginx"] if inst == "nginx" else reps):
                if time.monotonic() > budget:
                    break
                want = "b" if i % 2 == 0 else "a"
                t0 = time.perf_counter()
                self.nginx_switch(inst, want)
                t2 = poll_until(port, want, state, time.monotonic() + 20)
                if t2 is None:
                    misses += 1
                    continue
                lat.append((t2 - t0) * 1e3)
                self.wait_nginx_settled(d)
            out[f"{key}_change_ms"] = lat
            out[f"{key}_change_client_errors"] = state.get("errors", 0)
            out[f"{key}_change_misses"] = misses
            if state.get("conn"):
                state["conn"].close()
        med = lambda xs: sorted(xs)[len(xs) // 2] if xs else float("nan")
        log(f"route change live after: minicloud {med(out['minicloud_change_ms']):.2f} ms "
            f"(API call {med(out['minicloud_api_call_ms']):.2f} ms, of which commit to served "
            f"{med(out['minicloud_publish_ms']):.3f} ms), nginx reload "
            f"{med(out['nginx_change_ms']):.1f} ms (1 host: {med(out['nginx_1host_change_ms']):.1f} ms)")

    def nginx_switch(self, inst, want):
        d = self.daemons[inst]
        d.rc.write_text(nginx_rc_block(self.ports[inst][0], f"up_{want}"))
        subprocess.run(["nginx", "-e", str(self.work / f"logs/{inst}-error.log"), "-p",
                        str(self.work), "-c", str(d.conf), "-s", "reload"],
                       check=True, capture_output=True, timeout=60)

    def wait_nginx_settled(self, d, limit_s=10):
        """Until the old worker has gone: one master and one worker."""
        end = time.monotonic() + limit_s
        while time.monotonic() < end and len(d.pids()) > 2:
            time.sleep(0.05)

    def errors_during_changes(self):
        dur, every = self.mode["change_load_s"], self.mode["change_every_s"]
        up = {"a": f"127.0.0.1:{self.ports['upstream_a']}", "b": f"127.0.0.1:{self.ports['upstream_b']}"}
        out = self.results["control"]
        for proxy in ("minicloud", "nginx"):
            https = self.ports[proxy][0]
            w = self.wrk.start(f"https://{RC}:{https}/small", 100, dur, "rc")
            time.sleep(1)
            changes = 0
            api = self.api("minicloud") if proxy == "minicloud" else None
            end = time.monotonic() + dur - 2
            while time.monotonic() < end and changes < 100:
                want = "b" if changes % 2 == 0 else "a"
                if api:
                    self.add_route(api, RC, up[want])
                else:
                    self.nginx_switch("nginx", want)
                changes += 1
                time.sleep(every)
            if api:
                api.close()
            so, se = w.communicate(timeout=dur + 60)
            r = parse_wrk(so.decode(errors="replace"), se.decode(errors="replace"))
            out[f"{proxy}_under_changes"] = {"changes": changes, **r}
            log(f"{proxy}: {changes} route changes under load: {r['requests']} requests, "
                f"{r['errors']} errors (read {r['read']}, non-2xx {r['status']}, connect {r['connect']})")
        self.wait_nginx_settled(self.daemons["nginx"])

    # -- meta --

    def meta(self):
        m = self.results["meta"]
        m["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        cpu = "?"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        m["machine"] = f"{cpu}, {os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * PAGE / 2**30:.0f} GiB, " \
                       f"Linux {platform.release()}"
        m["mode"] = self.args.mode
        m["settings"] = self.mode
        m["proxies"] = self.proxies
        m["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]

        def ver(cmd):
            try:
                o = subprocess.run(cmd, capture_output=True, timeout=10)
                return (o.stdout + o.stderr).decode().strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return "?"
        m["versions"] = {
            "minicloud": subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                        cwd=Path(__file__).parent).stdout.decode().strip(),
            "nginx": ver(["nginx", "-v"]),
            "haproxy": ver(["haproxy", "-v"]) if self.have_haproxy else "missing",
            "caddy": ver(["caddy", "version"]) if self.have_caddy else "missing",
            "wrk": ver(["wrk", "-v"]),
        }
        m["tls"] = {p: tls_facts(self.ports[p][0]) for p in self.proxies}

    def main(self):
        os.sched_setaffinity(0, {int(LOAD_CORE)})
        try:
            # Everything the bench starts inherits this: on a shared machine, other work
            # (compiles) then yields to the proxies, wrk and the upstream, which cuts the noise.
            os.nice(-10)
            self.results["meta"]["nice"] = -10
        except OSError:
            self.results["meta"]["nice"] = 0
        self.check_ports_free()
        t0 = time.monotonic()
        try:
            self.start_all()
            self.meta()
            time.sleep(1)
            self.idle_rss()
            self.run_load()
            self.idle_connections()
            self.after_load()
            self.route_change_latency()
            self.errors_during_changes()
        finally:
            self.stop_all()
            self.results["meta"]["total_s"] = time.monotonic() - t0
            for name, why in sorted(self.missing.items()):
                self.results["notes"].append(f"{name} is missing from this run: {why}.")
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "results.json").write_text(json.dumps(self.results, indent=1))
            shutil.copytree(self.work / "logs", self.out / "logs", dirs_exist_ok=True)
        log(f"done in {self.results['meta']['total_s'] / 60:.1f} min")


def main():
    # SIGTERM (run.sh's timeout, a developer's kill) unwinds through Bench.main's finally,
    # which stops every daemon.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=MODES, default="full")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minicloud", required=True)
    ap.add_argument("--target-dir", required=True)
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("BENCH_PORT_BASE", 18000)))
    ap.add_argument("--ab-name", help="the bench-* feature of the A/B build (without bench-)")
    ap.add_argument("--ab-bin", help="minicloud built with that feature")
    ap.add_argument("--missing", action="append", default=[], metavar="NAME=REASON",
                    help="a compared proxy that could not be installed, and why")
    args = ap.parse_args()
    Bench(args).main()


if __name__ == "__main__":
    sys.exit(main())
