#!/bin/sh
# minicloud's server installer: from a fresh Debian 12+ / Ubuntu 22.04+ box to minicloud, its
# MariaDB and its RabbitMQ running under Docker Compose.
#
#   curl -fsSL https://raw.githubusercontent.com/minicloud-dev/minicloud/main/install.sh \
#       | sudo sh -s -- --domain example.com --email you@example.com
#
# Run again, it upgrades (images pulled, minicloud recreated, apps untouched). `--help` lists
# every flag. Every check only reads; `--dry-run` runs them all and prints each step instead of
# doing it.
set -eu

# --- settings -------------------------------------------------------------------------------
DOMAIN=''
EMAIL=''
EMAIL_SET=''
ADMIN_PASSWORD=''
INSTALL_DIR=/cloud
DATA_DIR=/data
DATA_DIR_SET=''
HTTP_PORT=''
HTTPS_PORT=''
YES=''
DRY_RUN=''
ACTION=install
PURGE=''
RESTORE=''
RECOVERY_KEY_FILE=''
MINICLOUD_IMAGE="${MINICLOUD_IMAGE:-}"
MARIADB_IMAGE="${MARIADB_IMAGE:-}"
RABBITMQ_IMAGE="${RABBITMQ_IMAGE:-}"
# The compose project; only tests (and a second minicloud on one engine) need another one.
# Another project prefixes its container and network names with "<project>-", so two installs
# on one engine never share a name.
PROJECT="${MINICLOUD_COMPOSE_PROJECT:-minicloud}"
case "$PROJECT" in
minicloud) NAME_PREFIX='' ;;
*) NAME_PREFIX="$PROJECT-" ;;
esac
# How long the services may take to become healthy, in seconds.
HEALTH_WAIT="${MINICLOUD_HEALTH_WAIT:-300}"

DEFAULT_MINICLOUD_IMAGE=minicloud/minicloud:latest
DEFAULT_MARIADB_IMAGE=mariadb:11.4
DEFAULT_RABBITMQ_IMAGE=rabbitmq:3.13-management
# The Docker network of minicloud and its services (each app gets one more of its own,
# mc-net-<app>, which minicloud and the services join). Docker 20.10 routes a container's
# default gateway, and moves its published ports (restarting their proxies, which cuts every
# connection to the edge), to the network whose name sorts first: "mc-core" sorts before every
# "mc-net-", so deploying or removing an app never moves them.
case "$PROJECT" in
minicloud) NETWORK=mc-core ;;
*) NETWORK="mc-core-$PROJECT" ;;
esac
# Docker 20.10 is what Debian 12 ships; older engines lack the API minicloud uses.
DOCKER_MIN_MAJOR=20
DOCKER_MIN_MINOR=10
MIN_DISK_MB=5120
WARN_DISK_MB=10240

usage() {
    cat <<'EOF'
Usage: install.sh [FLAGS]

Installs minicloud under Docker Compose, or upgrades it when it is installed already.

  --domain DOMAIN          apps answer at <app>.DOMAIN, the admin app at admin.DOMAIN
  --email EMAIL            ACME (Let's Encrypt) account e-mail; empty: self-signed certificates
  --admin-password PW      the admin app's password (12 characters at least); default: generated
  --dir DIR                where docker-compose.yml and .env go (default /cloud)
  --data-dir DIR           where every piece of state goes (default /data)
  --http-port N            host port of the edge's HTTP (default 80)
  --https-port N           host port of the edge's HTTPS (default 443)
  --yes                    ask nothing: take the defaults
  --dry-run                run every check and print every step, change nothing
  --uninstall              stop and remove the services; the data directory is kept
  --purge                  with --uninstall: remove the data directory too (apps' data included)
  --restore REPOSITORY     on a fresh box: rebuild everything from a whole-box backup, a
                           directory (the old <data-dir>/backups or a copy of it) or
                           s3:<endpoint>/<bucket>/<prefix> (keys: AWS_ACCESS_KEY_ID and
                           AWS_SECRET_ACCESS_KEY in the environment)
  --recovery-key-file F    with --restore: the recovery key (the repository password) is
                           in F; default: asked on the terminal, else standard input
  -h, --help               this text

Images (flags win over the environment): --minicloud-image, --mariadb-image, --rabbitmq-image
or MINICLOUD_IMAGE, MARIADB_IMAGE, RABBITMQ_IMAGE; defaults: minicloud/minicloud:latest,
mariadb:11.4, rabbitmq:3.13-management.
EOF
}

# --- output ---------------------------------------------------------------------------------
say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
# step DESCRIPTION CMD...: runs CMD, or only prints it with --dry-run.
step() {
    what="$1"
    shift
    if [ -n "$DRY_RUN" ]; then
        printf '[dry-run] %s: %s\n' "$what" "$*"
    else
        say "$what"
        "$@"
    fi
}

# quietly CMD...: runs CMD without its output (docker rm prints each id).
quietly() { "$@" >/dev/null; }

# A terminal to ask on, even when the script itself comes through a pipe (curl | sh).
has_tty() { [ -z "$YES" ] && (exec </dev/tty) 2>/dev/null; }
# ask VAR PROMPT DEFAULT: sets VAR to the answer (DEFAULT when empty, or without a terminal).
ask() {
    answer=''
    if has_tty; then
        printf '%s [%s]: ' "$2" "$3" >/dev/tty
        IFS= read -r answer </dev/tty || answer=''
    fi
    [ -n "$answer" ] || answer="$3"
    eval "$1=\$answer"
}
# confirm PROMPT DEFAULT(y|n): true for yes.
confirm() {
    reply=""
    ask reply "$1 (y/n)" "$2"
    case "$reply" in y | Y | yes | YES) return 0 ;; *) return 1 ;; esac
}

# --- flags ----------------------------------------------------------------------------------
need_value() { [ "$#" -ge 2 ] || die "$1 needs a value (see --help)"; }
parse_flags() {
    while [ "$#" -gt 0 ]; do
        case "$1" in
        --domain) need_value "$@"; DOMAIN="$2"; shift ;;
        --email) need_value "$@"; EMAIL="$2"; EMAIL_SET=1; shift ;;
        --admin-password) need_value "$@"; ADMIN_PASSWORD="$2"; shift ;;
        --dir) need_value "$@"; INSTALL_DIR="$2"; shift ;;
        --data-dir) need_value "$@"; DATA_DIR="$2"; DATA_DIR_SET=1; shift ;;
        --http-port) need_value "$@"; HTTP_PORT="$2"; shift ;;
        --https-port) need_value "$@"; HTTPS_PORT="$2"; shift ;;
        --minicloud-image) need_value "$@"; MINICLOUD_IMAGE="$2"; shift ;;
        --mariadb-image) need_value "$@"; MARIADB_IMAGE="$2"; shift ;;
        --rabbitmq-image) need_value "$@"; RABBITMQ_IMAGE="$2"; shift ;;
        --restore) need_value "$@"; RESTORE="$2"; ACTION=restore; shift ;;
        --recovery-key-file) need_value "$@"; RECOVERY_KEY_FILE="$2"; shift ;;
        --yes | -y) YES=1 ;;
        --dry-run) DRY_RUN=1 ;;
        --uninstall) ACTION=uninstall ;;
        --purge) PURGE=1 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown flag $1 (see --help)" ;;
        esac
        shift
    done
    [ -z "$PURGE" ] || [ "$ACTION" = uninstall ] || die "--purge goes with --uninstall"
    [ -z "$RECOVERY_KEY_FILE" ] || [ "$ACTION" = restore ] || die "--recovery-key-file goes with --restore"
    printf '%s\n' "$PROJECT" | grep -Eq '^[a-z0-9][a-z0-9_-]{0,39}$' \
        || die "MINICLOUD_COMPOSE_PROJECT '$PROJECT' is not a compose project name: lower-case letters, digits, - and _"
}

# --- validation -----------------------------------------------------------------------------
valid_port() {
    case "$1" in '' | *[!0-9]*) return 1 ;; esac
    [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}
# A DNS name of two labels at least, letters, digits and hyphens.
valid_domain() {
    printf '%s\n' "$1" | grep -Eq '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
}
# The path goes into the compose file and a bind mount: absolute, plain characters.
valid_dir() {
    printf '%s\n' "$1" | grep -Eq '^/[A-Za-z0-9._/-]*$' && [ "$1" != / ]
}

# --- checks (they only read) ----------------------------------------------------------------
check_root() {
    [ "$(id -u)" = 0 ] || die "run as root: curl -fsSL …/install.sh | sudo sh -s -- $*"
}

check_os() {
    [ -r /etc/os-release ] || die "cannot tell the OS (/etc/os-release missing): minicloud installs on Debian 12+ or Ubuntu 22.04+"
    # shellcheck disable=SC1091
    os_id=$(. /etc/os-release && printf '%s' "${ID:-}")
    # shellcheck disable=SC1091
    os_version=$(. /etc/os-release && printf '%s' "${VERSION_ID:-0}")
    major=${os_version%%.*}
    case "$os_id" in
    debian) [ "${major:-0}" -ge 12 ] 2>/dev/null || die "Debian $os_version is too old: minicloud needs Debian 12 (bookworm) or newer; upgrade the OS or use a new server" ;;
    ubuntu) [ "${major:-0}" -ge 22 ] 2>/dev/null || die "Ubuntu $os_version is too old: minicloud needs Ubuntu 22.04 or newer" ;;
    *) die "$os_id is not supported: minicloud installs on Debian 12+ or Ubuntu 22.04+" ;;
    esac
    say "OS: $os_id $os_version"
}

# Memory in MB, and whether there is any swap.
MEM_MB=0
check_memory() {
    MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    swap_kb=$(awk '/^SwapTotal:/ {print $2}' /proc/meminfo)
    say "memory: ${MEM_MB} MB, swap: $((swap_kb / 1024)) MB"
    if [ "$MEM_MB" -lt 900 ]; then
        warn "under 1 GB of memory: minicloud, MariaDB and RabbitMQ fit, but apps will be tight; add swap"
    fi
    [ "$swap_kb" -gt 0 ] && return
    default=n
    [ "$MEM_MB" -lt 2048 ] && default=y
    if confirm "No swap: create a 1 GB swap file at /swapfile?" "$default"; then
        WANT_SWAP=1
    fi
}
WANT_SWAP=''

existing_parent() {
    p="$1"
    while [ ! -d "$p" ]; do p=$(dirname "$p"); done
    printf '%s' "$p"
}
check_disk() {
    where=$(existing_parent "$DATA_DIR")
    free_mb=$(df -Pm "$where" | awk 'NR == 2 {print $4}')
    say "disk: ${free_mb} MB free under $where"
    [ "$free_mb" -ge "$MIN_DISK_MB" ] || die "only ${free_mb} MB free under $where: minicloud needs 5 GB at least (images, databases, backups); free some space or pick --data-dir on a larger disk"
    [ "$free_mb" -ge "$WARN_DISK_MB" ] || warn "${free_mb} MB free under $where: 10 GB or more is recommended"
}

# Which process listens on a TCP port: "name (pid N)", or nothing.
port_holder() {
    ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n 1
}
port_in_use() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }
# Our own minicloud publishing the port (a rerun) is no conflict.
port_is_ours() {
    command -v docker >/dev/null 2>&1 || return 1
    [ -n "$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "publish=$1" 2>/dev/null)" ]
}
check_ports() {
    for port in "$HTTP_PORT" "$HTTPS_PORT"; do
        port_in_use "$port" || continue
        port_is_ours "$port" && continue
        holder=$(port_holder "$port")
        name=${holder%% *}
        case "$name" in
        nginx | apache2 | httpd | caddy | lighttpd | haproxy | traefik)
            service=$name
            [ "$name" = httpd ] && service=apache2
            hint="stop it for good with: systemctl disable --now $service" ;;
        '') holder='an unknown process'; hint="find it with: ss -ltnp 'sport = :$port'" ;;
        docker-proxy) hint="a Docker container publishes it: docker ps --filter publish=$port, then docker stop it" ;;
        *) hint="stop it, or install on another port with --http-port/--https-port" ;;
        esac
        die "port $port is taken by $holder; minicloud's edge needs it: $hint"
    done
    say "ports $HTTP_PORT and $HTTPS_PORT: free"
}

COMPOSE=''
DOCKER_MISSING=''
check_docker() {
    if ! command -v docker >/dev/null 2>&1; then
        DOCKER_MISSING=1
        say "Docker: not installed; it will be installed from $os_id's packages"
        return
    fi
    if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then :; else
        die "Docker is installed but its engine does not answer: start it (systemctl start docker) and run this again"
    fi
    version=$(docker version --format '{{.Server.Version}}')
    case "$(command -v docker)" in
    /snap/*) die "Docker from snap is not supported (it cannot reach $DATA_DIR): snap remove docker, then run this again" ;;
    esac
    major=$(printf '%s' "$version" | cut -d. -f1)
    minor=$(printf '%s' "$version" | cut -d. -f2 | sed 's/[^0-9].*//')
    if [ "$major" -lt "$DOCKER_MIN_MAJOR" ] || { [ "$major" -eq "$DOCKER_MIN_MAJOR" ] && [ "${minor:-0}" -lt "$DOCKER_MIN_MINOR" ]; }; then
        die "Docker $version is too old: minicloud needs $DOCKER_MIN_MAJOR.$DOCKER_MIN_MINOR or newer; upgrade it (apt-get install --only-upgrade docker.io, or docker-ce from Docker's repository)"
    fi
    find_compose
    say "Docker: $version, compose: ${COMPOSE:-missing (it will be installed)}"
}
find_compose() {
    if docker compose version >/dev/null 2>&1; then
        COMPOSE='docker compose'
    elif command -v docker-compose >/dev/null 2>&1; then
        COMPOSE='docker-compose'
    fi
}

# --- steps that change things ---------------------------------------------------------------
install_docker() {
    [ -n "$DOCKER_MISSING" ] || [ -z "$COMPOSE" ] || return 0
    # The distribution's own packages: compose v2 where it is packaged, v1 (Debian 12) otherwise.
    compose_pkg=docker-compose
    if apt-cache show docker-compose-v2 >/dev/null 2>&1; then compose_pkg=docker-compose-v2; fi
    step "installing Docker and compose ($os_id packages)" sh -c \
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io $compose_pkg && (systemctl enable --now docker 2>/dev/null || true)"
    [ -n "$DRY_RUN" ] && { COMPOSE='docker compose'; return 0; }
    find_compose
    [ -n "$COMPOSE" ] || die "compose is still missing after installing $compose_pkg"
}

make_swap() {
    [ -n "$WANT_SWAP" ] || return 0
    step "creating a 1 GB swap file /swapfile" sh -c \
        'fallocate -l 1G /swapfile && chmod 600 /swapfile && mkswap /swapfile >/dev/null && swapon /swapfile && (grep -q "^/swapfile " /etc/fstab || echo "/swapfile none swap sw 0 0" >>/etc/fstab) && sysctl -q vm.swappiness=10'
}

random_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# env_get KEY: a value from the existing .env, if any.
env_get() {
    [ -r "$INSTALL_DIR/.env" ] || return 0
    sed -n "s/^$1=//p" "$INSTALL_DIR/.env" | head -n 1
}

# The data directory: the flag, else the one the existing .env names (a rerun, an uninstall),
# else the default.
settle_data_dir() {
    [ -n "$DATA_DIR_SET" ] && return 0
    kept=$(env_get DATA_DIR)
    DATA_DIR=${kept:-$DATA_DIR}
}

# Settings: flags > the existing .env (a rerun) > questions > defaults.
UPGRADE=''
settle_settings() {
    [ -r "$INSTALL_DIR/.env" ] && UPGRADE=1
    [ -n "$DOMAIN" ] || DOMAIN=$(env_get MINICLOUD_DOMAIN)
    [ -n "$DOMAIN" ] || ask DOMAIN "Domain (apps at <app>.DOMAIN, admin at admin.DOMAIN)" ""
    [ -n "$DOMAIN" ] || die "no domain: pass --domain example.com (apps answer at <app>.example.com)"
    DOMAIN=$(printf '%s' "$DOMAIN" | tr '[:upper:]' '[:lower:]')
    valid_domain "$DOMAIN" || die "'$DOMAIN' is not a domain name: pass e.g. --domain example.com"
    if [ -z "$EMAIL_SET" ]; then
        EMAIL=$(env_get MINICLOUD_ACME_EMAIL)
        [ -n "$UPGRADE" ] || [ -n "$EMAIL" ] || ask EMAIL "E-mail for Let's Encrypt (empty: self-signed certificates)" ""
    fi
    case "$EMAIL" in '' | ?*@?*.?*) ;; *) die "'$EMAIL' is not an e-mail address (--email)" ;; esac
    case "$EMAIL" in *[[:space:]\'\"\$]*) die "the e-mail address may not contain spaces, quotes or \$" ;; esac
    [ -n "$HTTP_PORT" ] || HTTP_PORT=$(env_get HTTP_PORT)
    [ -n "$HTTPS_PORT" ] || HTTPS_PORT=$(env_get HTTPS_PORT)
    HTTP_PORT=${HTTP_PORT:-80}
    HTTPS_PORT=${HTTPS_PORT:-443}
    valid_port "$HTTP_PORT" || die "--http-port $HTTP_PORT is not a port number"
    valid_port "$HTTPS_PORT" || die "--https-port $HTTPS_PORT is not a port number"
    [ "$HTTP_PORT" != "$HTTPS_PORT" ] || die "--http-port and --https-port must differ"
    valid_dir "$INSTALL_DIR" || die "--dir must be an absolute path of letters, digits, . _ - /"
    valid_dir "$DATA_DIR" || die "--data-dir must be an absolute path of letters, digits, . _ - /"
    [ -n "$MINICLOUD_IMAGE" ] || MINICLOUD_IMAGE=$(env_get MINICLOUD_IMAGE)
    [ -n "$MARIADB_IMAGE" ] || MARIADB_IMAGE=$(env_get MARIADB_IMAGE)
    [ -n "$RABBITMQ_IMAGE" ] || RABBITMQ_IMAGE=$(env_get RABBITMQ_IMAGE)
    MINICLOUD_IMAGE=${MINICLOUD_IMAGE:-$DEFAULT_MINICLOUD_IMAGE}
    MARIADB_IMAGE=${MARIADB_IMAGE:-$DEFAULT_MARIADB_IMAGE}
    RABBITMQ_IMAGE=${RABBITMQ_IMAGE:-$DEFAULT_RABBITMQ_IMAGE}
    # A local tag of the minicloud image, made once: upgrades never move it (see the holder).
    HOLDER_IMAGE=$(env_get HOLDER_IMAGE)
    HOLDER_IMAGE=${HOLDER_IMAGE:-minicloud-holder:$PROJECT}
    # The admin password: kept on a rerun unless given; asked on a terminal, else generated.
    NEW_PASSWORD=''
    if [ -z "$ADMIN_PASSWORD" ]; then
        ADMIN_PASSWORD=$(env_get MINICLOUD_ADMIN_PASSWORD)
    else
        NEW_PASSWORD=1
    fi
    if [ -z "$ADMIN_PASSWORD" ]; then
        ask ADMIN_PASSWORD "Admin password (12 characters at least; empty: generate one)" ""
        [ -n "$ADMIN_PASSWORD" ] || ADMIN_PASSWORD=$(random_secret)
        NEW_PASSWORD=1
    fi
    [ "${#ADMIN_PASSWORD}" -ge 12 ] || die "the admin password needs 12 characters at least (--admin-password)"
    case "$ADMIN_PASSWORD" in *[[:space:]\'\"\$\\]*) die "the admin password may not contain spaces, quotes, \$ or backslashes" ;; esac
    MARIADB_ROOT_PASSWORD=$(env_get MARIADB_ROOT_PASSWORD)
    RABBITMQ_ADMIN_PASSWORD=$(env_get RABBITMQ_ADMIN_PASSWORD)
    ADMIN_TOKEN=$(env_get MINICLOUD_ADMIN_TOKEN)
    # Hex only: these go into URLs.
    MARIADB_ROOT_PASSWORD=${MARIADB_ROOT_PASSWORD:-$(random_secret)}
    RABBITMQ_ADMIN_PASSWORD=${RABBITMQ_ADMIN_PASSWORD:-$(random_secret)}
    ADMIN_TOKEN=${ADMIN_TOKEN:-mc_$(random_secret)}
}

write_env() {
    cat <<EOF
# minicloud's settings and secrets, written by install.sh (mode 0600). Keep a copy off this
# server: the passwords below unlock MariaDB, RabbitMQ and the admin API.
MINICLOUD_DOMAIN=$DOMAIN
MINICLOUD_ACME_EMAIL=$EMAIL
MINICLOUD_ADMIN_PASSWORD=$ADMIN_PASSWORD
MINICLOUD_ADMIN_TOKEN=$ADMIN_TOKEN
MARIADB_ROOT_PASSWORD=$MARIADB_ROOT_PASSWORD
RABBITMQ_ADMIN_PASSWORD=$RABBITMQ_ADMIN_PASSWORD
MINICLOUD_IMAGE=$MINICLOUD_IMAGE
MARIADB_IMAGE=$MARIADB_IMAGE
RABBITMQ_IMAGE=$RABBITMQ_IMAGE
HOLDER_IMAGE=$HOLDER_IMAGE
HTTP_PORT=$HTTP_PORT
HTTPS_PORT=$HTTPS_PORT
DATA_DIR=$DATA_DIR
NAME_PREFIX=$NAME_PREFIX
NETWORK=$NETWORK
EOF
}

write_compose() {
    cat <<'EOF'
# minicloud on one small server, written by install.sh (run it again to upgrade; settings and
# secrets are in .env beside this file). The edge and control plane, and the one MariaDB and one
# RabbitMQ that every app shares (each app gets its own database, vhost and credentials).
# Memory limits fit a 1 GB server with swap.
#
#   docker compose logs minicloud
#   docker compose exec minicloud minicloud apps list     (the API: 127.0.0.1:7780 inside)

services:
  # Holds the network namespace and the published ports, and nothing else: minicloud runs
  # inside its namespace, so a new minicloud takes the listening sockets over from the running
  # one (`serve --upgrade`, sent on SIGQUIT) and no connection is refused during an upgrade.
  # It keeps the fixed name minicloud's container had: minicloud attaches the container of
  # that name to every app's own network (MINICLOUD_APP_NETWORK_PEERS), so apps reach the edge
  # by it and the attachments outlive each minicloud container. Its image is pinned (a local
  # tag made once, HOLDER_IMAGE): were it recreated, the namespace and every connection in it
  # would go. Change nothing here lightly, for the same reason.
  holder:
    image: ${HOLDER_IMAGE}
    container_name: ${NAME_PREFIX}minicloud
    entrypoint: ["sleep", "infinity"]
    init: true
    restart: unless-stopped
    ports:
      - "${HTTP_PORT}:80"
      - "${HTTPS_PORT}:443"
    # The image declares a volume at /data; the holder needs none.
    tmpfs: [/data]
    mem_limit: 16m
    networks: [minicloud]
    logging: &logging
      driver: json-file
      options: {max-size: "10m", max-file: "3"}

  minicloud:
    image: ${MINICLOUD_IMAGE}
    # No fixed name: during an upgrade two run side by side (install.sh scales to 2, hands
    # over with SIGQUIT, removes the old one). `--upgrade` with none running starts as usual.
    command: ["serve", "--upgrade"]
    network_mode: "service:holder"
    restart: unless-stopped
    volumes:
      # minicloud runs the apps' containers on the host's engine.
      - /var/run/docker.sock:/var/run/docker.sock
      # Same path inside and out: app storage is bind-mounted into app containers by its host
      # path, which must be the path minicloud sees.
      - ${DATA_DIR}:${DATA_DIR}
    environment:
      MINICLOUD_DOMAIN: ${MINICLOUD_DOMAIN}
      MINICLOUD_DATA_DIR: ${DATA_DIR}
EOF
    # Without an e-mail ACME is off: the variable is left out (an empty one is refused).
    # shellcheck disable=SC2016 # compose expands it, from .env
    [ -z "$EMAIL" ] || echo '      MINICLOUD_ACME_EMAIL: ${MINICLOUD_ACME_EMAIL}'
    cat <<'EOF'
      MINICLOUD_ADMIN_PASSWORD: ${MINICLOUD_ADMIN_PASSWORD}
      MINICLOUD_ADMIN_TOKEN: ${MINICLOUD_ADMIN_TOKEN}
      MINICLOUD_TOKEN: ${MINICLOUD_ADMIN_TOKEN}
      MINICLOUD_LOG_FORMAT: json
      MINICLOUD_MARIADB_URL: mysql://root:${MARIADB_ROOT_PASSWORD}@mariadb:3306
      # Apps reach the services on their own network by container name.
      MINICLOUD_MARIADB_APP_HOST: ${NAME_PREFIX}mariadb:3306
      MINICLOUD_RABBITMQ_API: http://minicloud:${RABBITMQ_ADMIN_PASSWORD}@rabbitmq:15672
      MINICLOUD_RABBITMQ_APP_HOST: ${NAME_PREFIX}rabbitmq:5672
      MINICLOUD_APP_NETWORK_PEERS: ${NAME_PREFIX}minicloud,${NAME_PREFIX}mariadb,${NAME_PREFIX}rabbitmq
    healthcheck:
      test: ["CMD-SHELL", "curl -fsS -o /dev/null -H \"Authorization: Bearer $$MINICLOUD_ADMIN_TOKEN\" http://127.0.0.1:7780/api/health"]
      interval: 5s
      timeout: 5s
      retries: 3
      start_period: 30s
    depends_on:
      holder:
        condition: service_started
      mariadb:
        condition: service_healthy
      rabbitmq:
        condition: service_healthy
    mem_limit: 256m
    logging: *logging

  mariadb:
    image: ${MARIADB_IMAGE}
    container_name: ${NAME_PREFIX}mariadb
    restart: unless-stopped
    environment:
      MARIADB_ROOT_PASSWORD: ${MARIADB_ROOT_PASSWORD}
      # minicloud connects from its own container; apps never get this account.
      MARIADB_ROOT_HOST: "%"
      MARIADB_AUTO_UPGRADE: "1"
    command:
      - --innodb-buffer-pool-size=64M
      - --innodb-log-file-size=32M
      - --innodb-log-buffer-size=8M
      - --max-connections=100
      - --performance-schema=OFF
      - --key-buffer-size=8M
      - --tmp-table-size=16M
      - --max-heap-table-size=16M
      - --table-open-cache=400
      - --thread-cache-size=8
      - --skip-name-resolve
    volumes:
      - ${DATA_DIR}/mariadb:/var/lib/mysql
    healthcheck:
      test: ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]
      interval: 5s
      timeout: 5s
      retries: 5
      start_period: 30s
    mem_limit: 384m
    networks: [minicloud]
    logging: *logging

  rabbitmq:
    image: ${RABBITMQ_IMAGE}
    container_name: ${NAME_PREFIX}rabbitmq
    # The node name (rabbit@<hostname>) names its data directory: keep it fixed.
    hostname: rabbitmq
    restart: unless-stopped
    environment:
      # The management API's admin (tag administrator); apps get their own users.
      RABBITMQ_DEFAULT_USER: minicloud
      RABBITMQ_DEFAULT_PASS: ${RABBITMQ_ADMIN_PASSWORD}
    volumes:
      - ${DATA_DIR}/rabbitmq:/var/lib/rabbitmq
      - ./rabbitmq.conf:/etc/rabbitmq/conf.d/90-minicloud.conf:ro
    healthcheck:
      # Every listener, the management API's included (minicloud provisions through it):
      # a ping passes seconds before that one listens.
      test: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"]
      interval: 5s
      timeout: 10s
      retries: 5
      start_period: 60s
    mem_limit: 320m
    networks: [minicloud]
    logging: *logging

networks:
  # minicloud's own network with MariaDB and RabbitMQ (install.sh creates it). Each app runs
  # on a network of its own, which minicloud makes and these three join.
  minicloud:
    name: ${NETWORK}
    external: true
EOF
}

write_rabbitmq_conf() {
    cat <<'EOF'
# RabbitMQ settings for a 1 GB server, written by install.sh.
# Block publishers at 200 MiB of memory (the container's limit is 320 MiB), well before the
# kernel's OOM killer would pick a process.
vm_memory_high_watermark.absolute = 200MiB
# Stop accepting messages when the disk gets this close to full.
disk_free_limit.absolute = 1GB
# Apps are few and small.
channel_max = 128
# The management API answers only on the compose network (no port is published).
management.tcp.port = 15672
EOF
}

# put FILE MODE GENERATOR: writes what GENERATOR prints to FILE with MODE, atomically.
put() {
    if [ -n "$DRY_RUN" ]; then
        printf '[dry-run] write %s (mode %s)\n' "$1" "$2"
        return
    fi
    (umask 077 && "$3" >"$1.new")
    chmod "$2" "$1.new"
    mv "$1.new" "$1"
}

compose() {
    # shellcheck disable=SC2086 # COMPOSE is one or two words.
    $COMPOSE -p "$PROJECT" --project-directory "$INSTALL_DIR" -f "$INSTALL_DIR/docker-compose.yml" "$@"
}

container_of() { compose ps -q "$1" 2>/dev/null | head -n 1; }

# health_of ID: the container's health (its state when it has no health check), or "missing".
health_of() {
    docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null || echo missing
}

# wait_healthy SERVICE...: until each one's health check passes, or HEALTH_WAIT runs out.
wait_healthy() {
    deadline=$(($(date +%s) + HEALTH_WAIT))
    for service in "$@"; do
        until_healthy "$service" "$deadline" || return 1
    done
}

# until_healthy SERVICE DEADLINE [ID]: until the container ID (default: the service's) is
# healthy, or DEADLINE (epoch seconds) passes.
until_healthy() {
    while :; do
        id=${3:-$(container_of "$1")}
        status=missing
        [ -z "$id" ] || status=$(health_of "$id")
        [ "$status" = healthy ] && break
        if [ "$(date +%s)" -ge "$2" ]; then
            warn "$1 is $status after ${HEALTH_WAIT}s; its last log lines:"
            [ -n "$id" ] && docker logs --tail 30 "$id" >&2 2>&1
            return 1
        fi
        sleep 2
    done
    say "$1: healthy"
}

# The holder's image: a local tag of the minicloud image, made on the first install (or the
# first upgrade from an install without a holder) and never moved by an upgrade.
ensure_holder_image() {
    [ -z "$DRY_RUN" ] || return 0
    docker image inspect "$HOLDER_IMAGE" >/dev/null 2>&1 && return 0
    step "tagging $MINICLOUD_IMAGE as $HOLDER_IMAGE (the holder's image, kept across upgrades)" \
        docker tag "$MINICLOUD_IMAGE" "$HOLDER_IMAGE"
}

# An install made by an install.sh without the holder: minicloud's own container has the
# holder's name, and holds the ports itself.
minicloud_owns_the_name() {
    service=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "${NAME_PREFIX}minicloud" 2>/dev/null || true)
    [ "$service" = minicloud ]
}

# minicloud_changed ID: whether the running container ID differs from what the compose file
# and .env ask for (its settings, or the image its tag names now), as compose sees it.
minicloud_changed() {
    want_hash=$(compose config --hash=minicloud 2>/dev/null | awk '{print $2}')
    have_hash=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.config-hash"}}' "$1" 2>/dev/null || true)
    want_image=$(docker image inspect -f '{{.Id}}' "$MINICLOUD_IMAGE" 2>/dev/null || true)
    have_image=$(docker inspect -f '{{.Image}}' "$1" 2>/dev/null || true)
    [ -z "$want_hash" ] || [ "$want_hash" != "$have_hash" ] || [ "$want_image" != "$have_image" ]
}

# How long a new minicloud may take to wait for the sockets (its upgrade socket made).
HANDOVER_WAIT=60
NEW_ID=''
# remove_handed_over: a hand-over cut short (install.sh stopped after the SIGQUIT) leaves the
# old minicloud exited beside the new one; at scale 1 compose could remove the running one.
remove_handed_over() {
    ids=$(compose ps -q minicloud 2>/dev/null)
    [ "$(printf '%s\n' "$ids" | grep -c .)" -gt 1 ] || return 0
    for id in $ids; do
        [ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" = true ] && continue
        step "removing a minicloud container left by an upgrade cut short" quietly docker rm "$id"
    done
}

# The holder as it is (recreated, its namespace and every connection in it would go), the
# services as compose sees fit; minicloud is left to hand_over.
start_all_but_minicloud() {
    compose up -d --no-recreate holder && compose up -d --remove-orphans mariadb rabbitmq
}

# hand_over OLD: a second minicloud container beside OLD (compose's scale 2; `serve
# --upgrade`) receives OLD's listening sockets when OLD gets SIGQUIT, then takes the data dir;
# OLD drains and exits, and is removed (the next `up` finds one container, at scale 1).
# Returns 1 when the new one never got ready to take over (OLD was not signalled and serves
# on), 2 when it took over but is not healthy.
hand_over() {
    old=$1
    sock="$DATA_DIR/minicloud/upgrade.sock"
    # One left by a successor killed while it waited would pass for the new one's.
    rm -f "$sock"
    compose up -d --no-deps --no-recreate --scale minicloud=2 minicloud || return 1
    NEW_ID=$(compose ps -q minicloud | grep -vx "$old" | head -n 1)
    if [ -z "$NEW_ID" ]; then
        warn "compose started no second minicloud container"
        return 1
    fi
    deadline=$(($(date +%s) + HANDOVER_WAIT))
    until [ -S "$sock" ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            warn "the new minicloud did not get ready to take over in ${HANDOVER_WAIT}s; its last log lines:"
            docker logs --tail 30 "$NEW_ID" >&2 2>&1
            return 1
        fi
        sleep 0.2
    done
    # Pingora's receiver gives up about 6 s after it made the socket: no dawdling from here.
    # `unless-stopped` would start the old one again once it has exited.
    quietly docker update --restart=no "$old"
    quietly docker kill -s QUIT "$old"
    say "SIGQUIT sent: the new minicloud takes over the listening sockets, the old one drains"
    until_healthy minicloud "$(($(date +%s) + HEALTH_WAIT))" "$NEW_ID" || return 2
    # It accepts for 5 s more, then drains for shutdown_grace (5 s by default).
    timeout 120 docker wait "$old" >/dev/null || warn "the old minicloud did not exit in 120 s after its hand-over: removed"
    quietly docker rm -f "$old"
}

pull_images() {
    for image in "$MINICLOUD_IMAGE" "$MARIADB_IMAGE" "$RABBITMQ_IMAGE"; do
        if [ -n "$DRY_RUN" ]; then
            printf '[dry-run] pull %s\n' "$image"
        elif ! docker pull -q "$image" >/dev/null 2>&1; then
            # A locally built image (tests, air-gapped boxes) has no registry to come from.
            docker image inspect "$image" >/dev/null 2>&1 \
                || die "cannot pull $image and it is not on this machine: check the name and the network"
            say "$image: not pulled, the local one is used"
        fi
    done
}

public_ip() {
    [ -n "${MINICLOUD_PUBLIC_IP:-}" ] && { printf '%s' "$MINICLOUD_PUBLIC_IP"; return; }
    ip=$(curl -fsS --max-time 4 https://api.ipify.org 2>/dev/null || true)
    [ -n "$ip" ] || ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
    printf '%s' "$ip"
}

# Where a name points now, as the system's resolver sees it.
resolves_to() { getent ahostsv4 "$1" 2>/dev/null | awk 'NR == 1 {print $1}'; }

print_dns() {
    ip=$(public_ip)
    printf '\nDNS records to create (at your DNS provider), pointing at this server (%s):\n' "${ip:-its public address}"
    for name in "admin.$DOMAIN" "*.$DOMAIN"; do
        probe=$name
        [ "$name" = "*.$DOMAIN" ] && probe="minicloud-dns-check.$DOMAIN"
        now=$(resolves_to "$probe")
        if [ -z "$now" ]; then state="not set yet"
        elif [ "$now" = "$ip" ]; then state="points here already"
        else state="points at $now, not here"; fi
        printf '  A  %-28s %-16s (%s)\n' "$name" "${ip:-?}" "$state"
    done
    printf '  (or, instead of the wildcard, one A record per app: <app>.%s)\n' "$DOMAIN"
}

url_port() { [ "$HTTPS_PORT" = 443 ] || printf ':%s' "$HTTPS_PORT"; }

# --- whole-box restore ----------------------------------------------------------------------
# The recovery key: from --recovery-key-file, else asked on the terminal (not shown), else the
# first line of standard input (`sh install.sh --restore ... <key.txt`; not when the script
# itself comes through standard input, as with curl | sh).
read_recovery_key() {
    RECOVERY_KEY=''
    if [ -n "$RECOVERY_KEY_FILE" ]; then
        IFS= read -r RECOVERY_KEY <"$RECOVERY_KEY_FILE" || true
    elif has_tty; then
        printf 'Recovery key (minicloud backups key showed it on the old server): ' >/dev/tty
        stty -echo </dev/tty 2>/dev/null || true
        IFS= read -r RECOVERY_KEY </dev/tty || true
        stty echo </dev/tty 2>/dev/null || true
        printf '\n' >/dev/tty
    elif [ -f "$0" ]; then
        IFS= read -r RECOVERY_KEY || true
    fi
    [ -n "$RECOVERY_KEY" ] || die "no recovery key: pass --recovery-key-file FILE (or give it on standard input)"
}

# Before the first `up`: `minicloud restore` in the minicloud service's own image, without
# MariaDB and RabbitMQ (it brings back the state store and the backups; each app's data comes
# back when minicloud starts). A directory elsewhere is mounted for it; S3 keys pass by name.
restore_state() {
    [ -z "$UPGRADE" ] || die "--restore is for a fresh box, and $INSTALL_DIR/.env says minicloud is installed here; nothing was changed"
    repo="$RESTORE"
    mount=''
    case "$RESTORE" in
    s3:*) ;;
    /*)
        [ -d "$RESTORE" ] || die "--restore $RESTORE: no such directory"
        if [ "$RESTORE" != "$DATA_DIR/backups" ]; then
            mount="$RESTORE:/restore-from"
            repo=/restore-from
        fi
        ;;
    *) die "--restore takes an absolute directory or s3:<endpoint>/<bucket>/<prefix>" ;;
    esac
    if [ -n "$RECOVERY_KEY_FILE" ] && [ ! -r "$RECOVERY_KEY_FILE" ]; then
        die "cannot read --recovery-key-file $RECOVERY_KEY_FILE"
    fi
    if [ -n "$DRY_RUN" ]; then
        printf '[dry-run] restore from %s: minicloud restore --repository %s --password-stdin, in the minicloud service (the holder started, then compose run --no-deps)\n' "$RESTORE" "$repo"
        return 0
    fi
    read_recovery_key
    set -- run --rm -T --no-deps -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_DEFAULT_REGION
    [ -z "$mount" ] || set -- "$@" -v "$mount"
    # minicloud runs in the holder's network namespace (it reaches an S3 repository from it).
    compose up -d --no-deps holder
    say "restoring minicloud's state and backups from $RESTORE"
    printf '%s\n' "$RECOVERY_KEY" | compose "$@" minicloud restore --repository "$repo" --password-stdin \
        || die "the restore failed (see above); nothing was started: fix it, then run install.sh --restore again"
}

# --- actions --------------------------------------------------------------------------------
# keep_previous: .env names the previous minicloud image by a local tag (a pulled tag may name
# the new one by now), so the next `up` does not bring the new one back.
keep_previous() {
    docker tag "$previous" "minicloud-rollback:$PROJECT"
    MINICLOUD_IMAGE="minicloud-rollback:$PROJECT"
    put "$INSTALL_DIR/.env" 0600 write_env
}

# roll_back: the new minicloud is not healthy: the previous image and state store come back
# (a gap: the new one is stopped first, it may have changed the store).
roll_back() {
    warn "the new minicloud is not healthy: going back to the previous image"
    keep_previous
    compose stop minicloud
    [ ! -f "$state.before-upgrade" ] || cp -p "$state.before-upgrade" "$state"
    compose rm -f minicloud
    compose up -d minicloud
    wait_healthy minicloud || true
    die "the upgrade failed and the previous version was put back; see: $COMPOSE -p $PROJECT logs minicloud"
}

do_install() {
    settle_data_dir
    check_os
    check_memory
    check_disk
    check_docker
    settle_settings
    check_ports
    if [ -n "$UPGRADE" ]; then say "minicloud is installed in $INSTALL_DIR: upgrading"; fi

    make_swap
    install_docker
    step "creating $INSTALL_DIR and $DATA_DIR" mkdir -p "$INSTALL_DIR" "$DATA_DIR/mariadb" "$DATA_DIR/rabbitmq"
    [ -n "$DRY_RUN" ] || chmod 0700 "$INSTALL_DIR"
    put "$INSTALL_DIR/.env" 0600 write_env
    put "$INSTALL_DIR/docker-compose.yml" 0644 write_compose
    put "$INSTALL_DIR/rabbitmq.conf" 0644 write_rabbitmq_conf
    if ! docker network inspect "$NETWORK" >/dev/null 2>&1; then
        step "creating the Docker network $NETWORK" docker network create --label minicloud.network=1 "$NETWORK"
    fi
    pull_images

    previous=''
    previous_id=''
    state="$DATA_DIR/minicloud/state.redb"
    if [ -n "$UPGRADE" ] && [ -z "$DRY_RUN" ]; then
        remove_handed_over
        previous_id=$(container_of minicloud)
        [ -n "$previous_id" ] && previous=$(docker inspect -f '{{.Image}}' "$previous_id" 2>/dev/null || true)
        if [ -f "$state" ]; then
            step "copying the state store aside ($state.before-upgrade)" cp -p "$state" "$state.before-upgrade"
        fi
        if minicloud_owns_the_name; then
            # Its name and ports go to the holder: this once, minicloud stops before the new
            # one listens (a few seconds of refused connections); later upgrades hand over.
            step "replacing minicloud's container by the holder and a new one (once: this upgrade refuses connections for a few seconds)" \
                compose rm -sf minicloud
            previous_id=''
        elif [ -n "$previous_id" ] && [ "$(docker inspect -f '{{.State.Running}}' "$previous_id" 2>/dev/null)" != true ]; then
            previous_id=''
        fi
    fi
    ensure_holder_image
    [ "$ACTION" != restore ] || restore_state
    if [ -z "$previous_id" ]; then
        step "starting the services (docker compose up -d)" compose up -d --remove-orphans
    else
        step "starting the services but minicloud (docker compose up -d)" start_all_but_minicloud
    fi
    [ -n "$DRY_RUN" ] && { say "dry run: nothing was changed"; return 0; }

    if [ -n "$previous_id" ]; then
        wait_healthy mariadb rabbitmq || die "the services did not become healthy (minicloud was left as it was); see: cd $INSTALL_DIR && $COMPOSE -p $PROJECT logs"
    fi
    if [ -n "$previous_id" ] && minicloud_changed "$previous_id"; then
        say "handing over to the new minicloud (no connection refused, no request dropped)"
        handed=0
        hand_over "$previous_id" || handed=$?
        if [ "$handed" = 1 ]; then
            [ -z "$NEW_ID" ] || quietly docker rm -f "$NEW_ID"
            keep_previous
            die "the new minicloud did not take over; the previous one serves on (.env now names it $MINICLOUD_IMAGE); see the log lines above"
        elif [ "$handed" = 2 ]; then
            roll_back
        fi
    fi
    if ! wait_healthy mariadb rabbitmq minicloud; then
        [ -z "$previous" ] || roll_back
        die "the services did not become healthy; see: cd $INSTALL_DIR && $COMPOSE -p $PROJECT logs"
    fi

    printf '\nminicloud is running.\n'
    printf '  admin app:  https://admin.%s%s/  (user admin)\n' "$DOMAIN" "$(url_port)"
    if [ -n "$NEW_PASSWORD" ] && [ -z "$UPGRADE" ]; then
        printf '  password:   %s  (shown once; it is also in %s/.env)\n' "$ADMIN_PASSWORD" "$INSTALL_DIR"
    else
        printf '  password:   unchanged (in %s/.env)\n' "$INSTALL_DIR"
    fi
    printf '  API token:  in %s/.env (MINICLOUD_ADMIN_TOKEN)\n' "$INSTALL_DIR"
    print_dns
    if [ "$ACTION" = restore ]; then
        printf '\nEach app comes back now, its data first, one at a time; follow it with:\n'
        printf '  cd %s && %s -p %s logs -f minicloud\n' "$INSTALL_DIR" "$COMPOSE" "$PROJECT"
    fi
    printf '\nKeep a copy of %s/.env off this server.\n' "$INSTALL_DIR"
}

# This install's minicloud instance ids: the `minicloud.instance` label of each app network
# the holder has joined (minicloud labels the containers and networks it makes with it, so
# apps of another minicloud on the same engine are never picked; an install without a
# holder: minicloud's own container). Asked before `compose down`.
our_instances() {
    id=$(container_of holder)
    [ -n "$id" ] || id=$(container_of minicloud)
    if [ -z "$id" ]; then
        warn "minicloud's containers are gone, so its apps' containers cannot be told from others: list them with docker ps -a --filter label=minicloud.app and remove them with docker rm -f"
        return 0
    fi
    for net in $(docker inspect -f '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}' "$id" 2>/dev/null); do
        docker network inspect -f '{{index .Labels "minicloud.instance"}}' "$net" 2>/dev/null || true
    done | grep -v '^$' | sort -u
}

# remove_apps INSTANCE...: the apps' containers (after minicloud stopped, so nothing brings
# them back), and with --purge their networks.
remove_apps() {
    removed=0
    for instance in "$@"; do
        ids=$(docker ps -aq --filter "label=minicloud.instance=$instance")
        if [ -n "$ids" ]; then
            count=$(printf '%s\n' "$ids" | wc -l | tr -d ' ')
            removed=$((removed + count))
            # shellcheck disable=SC2086 # one id a word
            step "removing the apps' $count containers (label minicloud.instance=$instance)" quietly docker rm -f $ids
        fi
        [ -n "$PURGE" ] || continue
        nets=$(docker network ls -q --filter "label=minicloud.instance=$instance")
        # shellcheck disable=SC2086 # one id a word
        [ -z "$nets" ] || step "removing the apps' networks (--purge)" quietly docker network rm $nets
    done
    if [ "$removed" -eq 0 ]; then
        say "no app containers to remove"
    elif [ -z "$PURGE" ]; then
        say "removed $removed app containers; their data stays in $DATA_DIR"
    else
        say "removed $removed app containers"
    fi
}

do_uninstall() {
    settle_data_dir
    [ -f "$INSTALL_DIR/docker-compose.yml" ] || die "no minicloud in $INSTALL_DIR (pass --dir if it is elsewhere)"
    check_docker
    [ -n "$COMPOSE" ] || die "compose is missing: install docker-compose, then run this again"
    instances=$(our_instances)
    step "stopping and removing the services" compose down --remove-orphans
    # shellcheck disable=SC2086 # one id a word
    remove_apps $instances
    if [ -n "$PURGE" ]; then
        if docker network inspect "$NETWORK" >/dev/null 2>&1; then
            step "removing the Docker network $NETWORK (--purge)" quietly docker network rm "$NETWORK"
        fi
        holder_image=$(env_get HOLDER_IMAGE)
        if [ -n "$holder_image" ] && docker image inspect "$holder_image" >/dev/null 2>&1; then
            step "removing the holder's image tag $holder_image (--purge)" quietly docker image rm "$holder_image"
        fi
        step "removing $INSTALL_DIR (--purge)" rm -rf "$INSTALL_DIR"
        step "removing $DATA_DIR (--purge)" rm -rf "$DATA_DIR"
    else
        # .env stays: its passwords are the ones the kept databases know.
        step "removing the compose files" rm -f "$INSTALL_DIR/docker-compose.yml" "$INSTALL_DIR/rabbitmq.conf"
        say "kept $DATA_DIR (databases, apps' storage, state) and $INSTALL_DIR/.env; run install.sh again to bring it all back (apps included)"
    fi
}

main() {
    parse_flags "$@"
    check_root "$@"
    case "$ACTION" in
    install) do_install ;;
    uninstall) do_uninstall ;;
    restore) do_install ;;
    esac
}

main "$@"
