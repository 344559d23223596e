#!/bin/sh
# Starts a local Docker registry on 127.0.0.1:5000 for the integration tests, unless one
# already answers there. Idempotent: run it before every test run.
#
# Uses Debian's `docker-registry` package (installed here if missing and we are root). The
# Docker engine allows plain HTTP to 127.0.0.0/8 registries, so no TLS is needed.
set -eu

ADDR="${MINICLOUD_TEST_REGISTRY:-127.0.0.1:5000}"
DIR="${MINICLOUD_TEST_REGISTRY_DIR:-${TMPDIR:-/tmp}/minicloud-test-registry}"

answers() {
    # The v2 API root answers 200 (or 401 with auth) on any registry.
    code=$(curl -s --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' "http://$ADDR/v2/" || true)
    [ "$code" = 200 ] || [ "$code" = 401 ]
}

# A few tries: a registry another test run is starting may need a moment.
for _ in 1 2 3; do
    if answers; then
        echo "registry already answering on $ADDR"
        exit 0
    fi
    sleep 0.2
done

if ! command -v docker-registry >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y docker-registry >/dev/null
    else
        echo "docker-registry is not installed: sudo apt-get install -y docker-registry" >&2
        exit 1
    fi
fi

mkdir -p "$DIR/storage"
cat > "$DIR/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/storage
  delete:
    enabled: true
http:
  addr: $ADDR
CONFIG

# setsid + nohup: the registry outlives this script and the test run that started it.
setsid nohup docker-registry serve "$DIR/config.yml" >"$DIR/registry.log" 2>&1 &
echo $! >"$DIR/registry.pid"

i=0
until answers; do
    i=$((i + 1))
    if [ "$i" -ge 50 ]; then
        echo "registry did not start on $ADDR; see $DIR/registry.log" >&2
        exit 1
    fi
    sleep 0.1
done
if kill -0 "$(cat "$DIR/registry.pid")" 2>/dev/null; then
    echo "registry started on $ADDR (pid $(cat "$DIR/registry.pid"), data in $DIR)"
else
    # Lost a race: another registry took the address first, and it answers.
    echo "registry already answering on $ADDR (started by someone else meanwhile)"
fi
