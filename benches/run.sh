#!/usr/bin/env bash
# minicloud's edge against nginx, HAProxy and Caddy, side by side, in one run.
#
#   benches/run.sh            # the full run (about 13 minutes on 2 cores)
#   benches/run.sh --short    # a quick check of a change (about 2 minutes)
#   benches/run.sh --publish  # also copy the table and chart to benches/results/ for the README
#   benches/run.sh --no-jemalloc  # skip the minicloud + jemalloc (LD_PRELOAD) memory variant
#
# Installs what it needs from Debian (nginx, haproxy, caddy, wrk, matplotlib), builds minicloud
# in release mode and the Criterion micro-benchmarks, then hands over to benches/bench.py, which
# starts every daemon by hand on loopback ports (own config and pid files in a temp dir), drives
# them with wrk and stops them at the end, also on failure or Ctrl-C. Results land in
# bench-results/<date>/ (gitignored): results.json, results.md, chart.png and the raw logs.
# Traffic goes only to 127.0.0.1; every load loop is bounded in count and time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE=full
PUBLISH=0
EXTRA=(--jemalloc)
for arg in "$@"; do
    case "$arg" in
        --short) MODE=short ;;
        --publish) PUBLISH=1 ;;
        --no-jemalloc) EXTRA=() ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$(nproc)" -lt 2 ]; then
    echo "the bench pins the proxy to core 0 and wrk + upstream to core 1: it needs 2 cores" >&2
    exit 1
fi

# --- install -------------------------------------------------------------------------------
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v cmake >/dev/null || need+=(cmake)
# Debian's python3 with its matplotlib, whatever other python3 comes first on PATH.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
[ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ] || [ ${#EXTRA[@]} -eq 0 ] || need+=(libjemalloc2)
want_caddy=0
command -v caddy >/dev/null || want_caddy=1
if [ ${#need[@]} -gt 0 ] || [ $want_caddy -eq 1 ]; then
    echo "==> installing from Debian: ${need[*]} $([ $want_caddy -eq 1 ] && echo caddy)"
    $SUDO apt-get update -qq
    if [ ${#need[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    if [ $want_caddy -eq 1 ]; then
        # Caddy is in Debian from bookworm on; on a release without it the bench skips it.
        if apt-cache policy caddy 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends caddy >/dev/null
        else
            echo "==> caddy is not packaged in this Debian release: skipping it"
        fi
    fi
    # Debian's packages start their services where an init system runs: the bench starts its
    # own instances on other ports and leaves those alone.
fi

# --- build ---------------------------------------------------------------------------------
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
echo "==> building minicloud (release) and the lookup micro-benchmarks"
cargo build --release --bin minicloud --quiet
cargo bench --bench lookup --no-run --quiet 2>/dev/null || cargo bench --bench lookup --no-run
MINICLOUD_BIN="$CARGO_TARGET_DIR/release/minicloud"

# --- run -----------------------------------------------------------------------------------
# 10,000 idle keep-alive connections need that many descriptors in the proxy and the client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

STAMP="$(date -u +%Y-%m-%dT%H%M%SZ)"
OUT="$ROOT/bench-results/$STAMP-$MODE"
WORK="$(mktemp -d /tmp/minicloud-bench.XXXXXX)"
mkdir -p "$OUT"

cleanup() {
    # bench.py stops what it started; this catches what a crash or a signal left behind.
    if [ -f "$WORK/pids" ]; then
        while read -r pid; do
            [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
        done <"$WORK/pids"
        sleep 0.5
        while read -r pid; do
            [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
        done <"$WORK/pids"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PY" "$ROOT/benches/bench.py" --mode "$MODE" --work "$WORK" --out "$OUT" \
    --minicloud "$MINICLOUD_BIN" --target-dir "$CARGO_TARGET_DIR" "${EXTRA[@]}"

"$PY" "$ROOT/benches/report.py" "$OUT/results.json" --md "$OUT/results.md" --png "$OUT/chart.png"
echo
echo "==> results in ${OUT#"$ROOT"/}/ (results.md, chart.png, results.json, logs/)"
if [ $PUBLISH -eq 1 ]; then
    mkdir -p benches/results
    cp "$OUT/results.md" benches/results/latest.md
    cp "$OUT/chart.png" benches/results/latest.png
    "$PY" - "$ROOT/README.md" "$ROOT/benches/results/latest.md" <<'PYEOF'
import re, sys
readme, latest = sys.argv[1], sys.argv[2]
text = open(readme).read()
body = open(latest).read().replace("### ", "#### ", 1)
new = "<!-- bench:start -->\n![benchmark chart](benches/results/latest.png)\n\n" + body + "<!-- bench:end -->"
text = re.sub(r"<!-- bench:start -->.*?<!-- bench:end -->", lambda m: new, text, flags=re.S)
open(readme, "w").write(text)
PYEOF
    echo "==> copied to benches/results/latest.md and latest.png, and into README.md"
fi
