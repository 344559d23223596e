#!/usr/bin/env bash
# The backup benchmark: one app's database of SIZE_MB (default 1024) backed up by minicloud,
# against plain `mariadb-dump | gzip` of the same database, on the same machine in one run.
#
#   benches/backup.sh [SIZE_MB]
#
# Reports: the time and size of each; what a second, unchanged backup adds to the repository
# (the issue's target: under 1% of the first); and memory during the backup: minicloud's own
# resident set above its idle one (target: under 64 MB), and restic's peak, which runs as a child
# process. Needs the test environment (`scripts/test-env.sh`: MariaDB, the registry with the probe
# images) and builds minicloud in release mode. Nothing is kept: the app, its database and the
# repository live in a temporary data dir removed at the end.
set -euo pipefail

SIZE_MB="${1:-1024}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="${MINICLOUD_TEST_ENV_DIR:-/tmp/minicloud-test-env}/test-env.env"
[ -f "$ENV_FILE" ] || { echo "no test environment at $ENV_FILE: run scripts/test-env.sh first" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a

echo "==> building minicloud (release)"
cargo build --release --quiet --bin minicloud --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/minicloud"

WORK="$(mktemp -d)"
API_PORT=17780
export MINICLOUD_URL="http://127.0.0.1:$API_PORT"
export MINICLOUD_TOKEN="bench-token-0123456789abcdef0123456789"
APP="benchdb"
MC_PID=""
cleanup() {
    if [ -n "$MC_PID" ]; then
        "$BIN" apps rm "$APP" --with-data >/dev/null 2>&1 || true
        kill "$MC_PID" 2>/dev/null || true
        wait "$MC_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The admin connection, from the test environment's URL: mysql://user:password@host:port
admin="${MINICLOUD_TEST_MARIADB_ADMIN_URL#mysql://}"
DB_USER="${admin%%:*}"
rest="${admin#*:}"
DB_PASS="${rest%%@*}"
hostport="${rest#*@}"
DB_HOST="${hostport%%:*}"
DB_PORT="${hostport##*:}"
DB_PORT="${DB_PORT%%/*}"
sql() { mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -p"$DB_PASS" "$@"; }

echo "==> starting minicloud on a fresh data dir"
env -i PATH="$PATH" HOME="$WORK" \
    MINICLOUD_DOMAIN=bench.test MINICLOUD_DATA_DIR="$WORK/data" MINICLOUD_LISTEN=127.0.0.1 \
    MINICLOUD_HTTP_PORT=17080 MINICLOUD_HTTPS_PORT=17443 MINICLOUD_API_LISTEN="127.0.0.1:$API_PORT" \
    MINICLOUD_ADMIN_TOKEN="$MINICLOUD_TOKEN" MINICLOUD_BACKUP_SCHEDULE=false \
    MINICLOUD_MARIADB_URL="$MINICLOUD_TEST_MARIADB_ADMIN_URL" \
    MINICLOUD_MARIADB_APP_HOST="$MINICLOUD_TEST_HOST_GATEWAY" \
    "$BIN" serve >"$WORK/minicloud.log" 2>&1 &
MC_PID=$!
for _ in $(seq 100); do
    curl -fsS -H "Authorization: Bearer $MINICLOUD_TOKEN" "$MINICLOUD_URL/api/health" >/dev/null 2>&1 && break
    sleep 0.2
done
"$BIN" apps add "$MINICLOUD_TEST_REGISTRY/probe:v1" --name "$APP" --service database >/dev/null
DB="app_$APP"
[ -n "$(sql -N -e "SHOW DATABASES LIKE '$DB'")" ] || { echo "the app's database $DB was not found" >&2; exit 1; }

echo "==> filling $DB with about $SIZE_MB MB (rows of text, half of it repeating, like an app's)"
ROWS=$((SIZE_MB * 1024 * 1024 / 300))
sql "$DB" -e "CREATE TABLE posts (id BIGINT PRIMARY KEY AUTO_INCREMENT, author VARCHAR(64), body TEXT, created DATETIME)"
batch=200000
done_rows=0
while [ "$done_rows" -lt "$ROWS" ]; do
    n=$((ROWS - done_rows < batch ? ROWS - done_rows : batch))
    sql "$DB" -e "INSERT INTO posts (author, body, created)
        SELECT CONCAT('author-', seq MOD 997),
               CONCAT(REPEAT('minicloud keeps hobby apps small. ', 4), MD5(RAND()), SHA2(RAND(), 256)),
               NOW() - INTERVAL seq SECOND
        FROM seq_1_to_$n"
    done_rows=$((done_rows + n))
done
# InnoDB's table statistics lag behind a bulk insert until the table is analyzed.
sql "$DB" -N -e "ANALYZE TABLE posts" >/dev/null
TABLE_MB="$(sql -N -e "SELECT ROUND((data_length + index_length) / 1048576) FROM information_schema.tables WHERE table_schema = '$DB' AND table_name = 'posts'")"

now_ms() { date +%s%3N; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Peak RSS of minicloud and of its restic children while "$@" runs.
measure() {
    local peak_mc=0 peak_restic=0 r pid
    "$@" >"$WORK/out.log" 2>&1 &
    local job=$!
    while kill -0 "$job" 2>/dev/null; do
        r="$(rss_kb "$MC_PID")"; [ "$r" -gt "$peak_mc" ] && peak_mc="$r"
        local sum=0
        for pid in $(pgrep -P "$MC_PID" restic || true); do sum=$((sum + $(rss_kb "$pid"))); done
        [ "$sum" -gt "$peak_restic" ] && peak_restic="$sum"
        sleep 0.05
    done
    wait "$job" || { cat "$WORK/out.log" >&2; return 1; }
    echo "$peak_mc $peak_restic"
}

echo "==> mariadb-dump | gzip"
t0="$(now_ms)"
mariadb-dump -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -p"$DB_PASS" \
    --single-transaction --routines --triggers --events --hex-blob "$DB" | gzip >"$WORK/dump.sql.gz"
DUMP_MS=$(($(now_ms) - t0))
DUMP_BYTES="$(stat -c %s "$WORK/dump.sql.gz")"

repo_bytes() { du -sb "$WORK/data/backups" 2>/dev/null | cut -f1 || echo 0; }
IDLE_KB="$(rss_kb "$MC_PID")"
echo "==> minicloud backups run (first)"
before="$(repo_bytes)"
t0="$(now_ms)"
read -r PEAK1 RESTIC1 < <(measure "$BIN" backups run "$APP")
RUN1_MS=$(($(now_ms) - t0))
FIRST_BYTES=$(($(repo_bytes) - before))

echo "==> minicloud backups run (second, nothing changed)"
before="$(repo_bytes)"
t0="$(now_ms)"
read -r PEAK2 RESTIC2 < <(measure "$BIN" backups run "$APP")
RUN2_MS=$(($(now_ms) - t0))
SECOND_BYTES=$(($(repo_bytes) - before))

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }
secs() { awk -v m="$1" 'BEGIN { printf "%.1f s", m / 1000 }'; }
cat <<EOF

Backup of a ${TABLE_MB} MB table ($ROWS rows) on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)

| | time | size |
|---|---|---|
| mariadb-dump \| gzip | $(secs "$DUMP_MS") | $(mb "$DUMP_BYTES") |
| minicloud, first run | $(secs "$RUN1_MS") | $(mb "$FIRST_BYTES") added to the repository |
| minicloud, second run, unchanged | $(secs "$RUN2_MS") | $(mb "$SECOND_BYTES") added ($(awk -v a="$SECOND_BYTES" -v b="$FIRST_BYTES" 'BEGIN { printf "%.2f%%", 100 * a / b }') of the first) |

Memory: minicloud idle $(mb $((IDLE_KB * 1024))); during the first run +$(mb $(((PEAK1 - IDLE_KB) * 1024))), the second +$(mb $(((PEAK2 - IDLE_KB) * 1024))); restic's peak $(mb $((RESTIC1 * 1024))) and $(mb $((RESTIC2 * 1024))).
EOF
