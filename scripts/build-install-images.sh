#!/usr/bin/env bash
# Builds the local images the install test runs (no public image can be pulled here):
#   minicloud-test/debian:bookworm    Debian bookworm made with debootstrap, imported into Docker
#   minicloud-test/runtime:latest     the Dockerfile's runtime stage on it (the install test adds
#                                     the minicloud binary it built: `--target prebuilt`)
#   minicloud-test/mariadb:latest     deploy/test-images/mariadb on it (Debian's mariadb-server)
#   minicloud-test/rabbitmq:latest    deploy/test-images/rabbitmq on it (Debian's rabbitmq-server)
#
#   scripts/build-install-images.sh        # as root (debootstrap); called by scripts/test-env.sh
#
# Cached: the base image's tag carries a content key (suite, variant, mirror, this recipe), its
# root file system is kept as a tarball under $MINICLOUD_TEST_ENV_DIR/images, and the other
# images reuse Docker's layer cache, so a second run takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${MINICLOUD_TEST_ENV_DIR:-${TMPDIR:-/tmp}/minicloud-test-env}"
SUITE=bookworm
VARIANT=minbase
MIRROR="${MINICLOUD_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump when the recipe below changes: it is part of the content key.
RECIPE=1
BASE=minicloud-test/debian
STARTED_AT=$SECONDS

log() { printf '[build-install-images %3ss] %s\n' "$((SECONDS - STARTED_AT))" "$*"; }
die() { printf '[build-install-images] error: %s\n' "$*" >&2; exit 1; }

[[ "$(id -u)" == 0 ]] || die "run as root (debootstrap needs it)"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker engine (docker info failed)"
mkdir -p "$DIR/images" "$DIR/logs"

KEY="$(printf '%s\n' "$SUITE" "$VARIANT" "$MIRROR" "$RECIPE" | sha256sum | cut -c1-12)"
TARBALL="$DIR/images/debian-$SUITE-$KEY.tar"

# The root file system: debootstrap's minimal variant, apt sources for updates and security
# fixes, no package lists or downloaded packages left in it.
make_rootfs() {
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    local work
    work="$(mktemp -d "$DIR/images/rootfs.XXXXXX")"
    log "debootstrap --variant=$VARIANT $SUITE from $MIRROR (log: $DIR/logs/debootstrap.log)"
    debootstrap --variant="$VARIANT" "$SUITE" "$work/rootfs" "$MIRROR" \
        >"$DIR/logs/debootstrap.log" 2>&1 \
        || { tail -n 20 "$DIR/logs/debootstrap.log" >&2; rm -rf "$work"; die "debootstrap failed"; }
    cat >"$work/rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
    rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin \
        "$work/rootfs/var/cache/apt/archives/"*.deb
    tar -C "$work/rootfs" --numeric-owner -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$work"
}

ensure_base() {
    if docker image inspect "$BASE:$SUITE-$KEY" >/dev/null 2>&1; then
        log "base: $BASE:$SUITE-$KEY is there"
    else
        [[ -s "$TARBALL" ]] || make_rootfs
        log "base: importing $TARBALL as $BASE:$SUITE-$KEY"
        docker import -c 'CMD ["bash"]' "$TARBALL" "$BASE:$SUITE-$KEY" >/dev/null
    fi
    docker tag "$BASE:$SUITE-$KEY" "$BASE:$SUITE"
}

# build TAG DOCKERFILE CONTEXT [ARGS...]: the classic builder (no buildx here), quiet unless it fails.
build() {
    local tag="$1" file="$2" ctx="$3"
    shift 3
    local logfile="$DIR/logs/build-${tag//[:\/]/_}.log"
    DOCKER_BUILDKIT=0 docker build -t "$tag" -f "$file" "$@" "$ctx" >"$logfile" 2>&1 \
        || { tail -n 30 "$logfile" >&2; die "docker build of $tag failed (log: $logfile)"; }
    log "built $tag"
}

ensure_base
# The runtime stage needs no context; an empty one keeps the repository out of the build.
EMPTY="$(mktemp -d)"
trap 'rm -rf "$EMPTY"' EXIT
# The three builds are independent and mostly wait on apt downloads: run them side by side.
pids=()
build minicloud-test/runtime:latest "$ROOT/Dockerfile" "$EMPTY" \
    --target runtime --build-arg DEBIAN_IMAGE="$BASE:$SUITE" &
pids+=($!)
for service in mariadb rabbitmq; do
    build "minicloud-test/$service:latest" "$ROOT/deploy/test-images/$service/Dockerfile" \
        "$ROOT/deploy/test-images/$service" --build-arg BASE_IMAGE="$BASE:$SUITE" &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
((failed == 0)) || die "an image did not build (see above)"
log "done"
