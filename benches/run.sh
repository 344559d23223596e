#!/usr/bin/env bash
# minicloud's edge against nginx, HAProxy and Caddy, side by side, in one run.
#
#   benches/run.sh            # the full run (about 13 minutes on 2 cores)
#   benches/run.sh --short    # a quick check of a change (under 3 minutes)
#   benches/run.sh --ab work-stealing  # also minicloud built with --features bench-work-stealing,
#                             # as a column `minicloud+work-stealing` (an A/B in the same run)
#   benches/run.sh --publish  # also copy the table and chart to benches/results/ for the README
#                             # (only a full run in which no case was noisy)
#
# benches/README.md explains the method. Installs what it needs from Debian (nginx, haproxy,
# caddy, wrk, matplotlib) and says exactly why a proxy is missing when it cannot, builds
# minicloud in release mode and the Criterion micro-benchmarks, then hands over to benches/bench.py, which
# starts every daemon by hand on loopback ports (own config and pid files in a temp dir), drives
# them with wrk and stops them at the end, also on failure or Ctrl-C. Results land in
# bench-results/<date>/ (gitignored): results.json, results.md, chart.png and the raw logs.
# Traffic goes only to 127.0.0.1; every load loop is bounded in count and time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE=full
PUBLISH=0
AB=""
while [ $# -gt 0 ]; do
    case "$1" in
        --short) MODE=short ;;
        --publish) PUBLISH=1 ;;
        --ab)
            [ $# -ge 2 ] || { echo "--ab needs a feature name (see --help)" >&2; exit 2; }
            AB="${2#bench-}"
            shift
            ;;
        --ab=*) AB="${1#--ab=}"; AB="${AB#bench-}" ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -n "$AB" ] && ! grep -q "^bench-$AB = " "$ROOT/Cargo.toml"; then
    echo "--ab $AB: the root Cargo.toml has no feature bench-$AB; there are:" >&2
    grep -o '^bench-[a-z0-9-]*' "$ROOT/Cargo.toml" | sed 's/^bench-/  /' >&2
    exit 2
fi

if [ "$(nproc)" -lt 2 ]; then
    echo "the bench pins the proxy to core 0 and wrk + upstream to core 1: it needs 2 cores" >&2
    exit 1
fi

# --- install -------------------------------------------------------------------------------
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v cmake >/dev/null || need+=(cmake)
# Debian's python3 with its matplotlib, whatever other python3 comes first on PATH.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing from Debian: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The compared proxies: each one that cannot be installed is left out with the exact reason,
# which the results show (no silent gaps). Debian packages both (Caddy from bookworm on).
MISSING=()
UPDATED=0
for pkg in haproxy caddy; do
    command -v "$pkg" >/dev/null && continue
    if [ $UPDATED -eq 0 ]; then
        $SUDO apt-get update -qq || true
        UPDATED=1
    fi
    candidate="$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        # shellcheck source=/dev/null
        MISSING+=(--missing "$pkg=not packaged for $(. /etc/os-release && echo "$PRETTY_NAME") (apt-cache policy $pkg: no candidate)")
        continue
    fi
    echo "==> installing $pkg $candidate from Debian"
    if ! err="$(DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$pkg" 2>&1 >/dev/null)"; then
        MISSING+=(--missing "$pkg=apt-get install $pkg ($candidate) failed: $(echo "$err" | tail -1)")
    elif ! command -v "$pkg" >/dev/null; then
        MISSING+=(--missing "$pkg=package $pkg $candidate installed, but no $pkg command on PATH")
    fi
done
# Debian's packages start their services where an init system runs: the bench starts its
# own instances on other ports and leaves those alone.

# --- build ---------------------------------------------------------------------------------
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
echo "==> building minicloud (release) and the lookup micro-benchmarks"
cargo build --release --bin minicloud --quiet
cargo bench --bench lookup --no-run --quiet 2>/dev/null || cargo bench --bench lookup --no-run
MINICLOUD_BIN="$CARGO_TARGET_DIR/release/minicloud"
EXTRA=()
if [ -n "$AB" ]; then
    # The same source with one of Pingora's defaults put back: its own target dir, so neither
    # build invalidates the other.
    echo "==> building minicloud (release) with --features bench-$AB for the A/B column"
    CARGO_TARGET_DIR="$CARGO_TARGET_DIR/ab-$AB" cargo build --release --bin minicloud --quiet \
        --features "bench-$AB"
    EXTRA=(--ab-name "$AB" --ab-bin "$CARGO_TARGET_DIR/ab-$AB/release/minicloud")
fi

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
            if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
        done <"$WORK/pids"
        sleep 0.5
        while read -r pid; do
            if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
        done <"$WORK/pids"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PY" "$ROOT/benches/bench.py" --mode "$MODE" --work "$WORK" --out "$OUT" \
    --minicloud "$MINICLOUD_BIN" --target-dir "$CARGO_TARGET_DIR" "${EXTRA[@]}" "${MISSING[@]}"

"$PY" "$ROOT/benches/report.py" "$OUT/results.json" --md "$OUT/results.md" --png "$OUT/chart.png"
echo
echo "==> results in ${OUT#"$ROOT"/}/ (results.md, chart.png, results.json, logs/)"
if [ $PUBLISH -eq 1 ] && ! "$PY" -c '
import json, sys
meta = json.load(open(sys.argv[1]))["meta"]
sys.exit(0 if meta.get("mode") == "full" and not meta.get("noisy_cases") else 1)
' "$OUT/results.json"; then
    echo "==> not published: only a full run in which no case was noisy goes into the README"
    PUBLISH=0
fi
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
