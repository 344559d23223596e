#!/usr/bin/env bash
# Builds the probe (probe/) as a static binary and pushes the test images to a registry.
#
#   scripts/build-probe-images.sh [REGISTRY]     # default 127.0.0.1:5000
#
# Images (see probe/images/README.md): probe:v1 probe:v2 probe:v3 probe-json:v1
# probe-services:v1 no-manifest:v1 bad-manifest:v1 probe-stubborn:v1 probe-stubborn:v2, all FROM scratch with /probe as entrypoint.
#
# Idempotent: cargo runs only when a probe source is newer than the binary; docker reuses its
# layer cache and the registry skips layers it has. CARGO_TARGET_DIR is honoured.
# 127.0.0.0/8 registries are insecure (plain HTTP) for Docker by default; another REGISTRY must be
# listed under "insecure-registries" in the daemon's config or serve TLS.
set -euo pipefail

REGISTRY="${1:-${MINICLOUD_TEST_REGISTRY:-127.0.0.1:5000}}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROBE_DIR="$ROOT/probe"
TARGET_TRIPLE=x86_64-unknown-linux-gnu
TARGET_DIR="${CARGO_TARGET_DIR:-$PROBE_DIR/target}"
BIN="$TARGET_DIR/$TARGET_TRIPLE/release/minicloud-probe"

log() { printf '[build-probe-images] %s\n' "$*"; }
die() { printf '[build-probe-images] error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker engine (docker info failed)"

# --- the binary ------------------------------------------------------------------------------
needs_build() {
    [[ -x "$BIN" ]] || return 0
    [[ -n "$(find "$PROBE_DIR/src" "$PROBE_DIR/Cargo.toml" "$PROBE_DIR/Cargo.lock" \
        -newer "$BIN" -print -quit)" ]]
}
if needs_build; then
    log "building the probe (static glibc, $TARGET_TRIPLE)"
    # --target keeps RUSTFLAGS away from build scripts; crt-static links glibc in.
    (cd "$PROBE_DIR" && RUSTFLAGS='-C target-feature=+crt-static' \
        cargo build --release --locked --target "$TARGET_TRIPLE")
    touch "$BIN"
else
    log "probe binary is up to date: $BIN"
fi
if ldd "$BIN" 2>&1 | grep -q '=>'; then
    die "$BIN is dynamically linked; a FROM scratch image cannot run it"
fi

# --- the images ------------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/probe-images.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# build_image NAME:TAG MANIFEST_SOURCE|- MANIFEST_NAME|- EXTRA_ENV...
build_image() {
    local ref="$1" manifest_src="$2" manifest_name="$3"
    shift 3
    local ctx="$WORK/${ref//[:\/]/_}"
    mkdir -p "$ctx"
    cp "$BIN" "$ctx/probe"
    {
        echo "FROM scratch"
        echo "COPY probe /probe"
        if [[ "$manifest_src" != "-" ]]; then
            cp "$PROBE_DIR/images/$manifest_src" "$ctx/$manifest_name"
            echo "COPY $manifest_name /$manifest_name"
        fi
        echo "ENV PROBE_VERSION=${ref##*:}"
        local kv
        for kv in "$@"; do echo "ENV $kv"; done
        echo 'LABEL org.opencontainers.image.title="minicloud-probe"'
        echo 'ENTRYPOINT ["/probe"]'
    } >"$ctx/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q -t "$REGISTRY/$ref" "$ctx" >/dev/null 2>"$ctx/build.err" \
        || { cat "$ctx/build.err" >&2; die "docker build of $REGISTRY/$ref failed"; }
    local out digest
    out="$(docker push "$REGISTRY/$ref" 2>&1)" \
        || { printf '%s\n' "$out" >&2; die "docker push of $REGISTRY/$ref failed (is the registry up?)"; }
    digest="$(printf '%s\n' "$out" | grep -o 'sha256:[0-9a-f]*' | tail -n1)"
    log "pushed $REGISTRY/$ref ${digest:-}"
}

build_image probe:v1 probe.yml cloud_manifest.yml
build_image probe:v2 probe.yml cloud_manifest.yml
build_image probe:v3 probe.yml cloud_manifest.yml PROBE_UNHEALTHY=1
build_image probe-json:v1 probe-json.json cloud_manifest.json
build_image probe-services:v1 probe-services.yml cloud_manifest.yml
build_image no-manifest:v1 - -
build_image bad-manifest:v1 bad-manifest.yml cloud_manifest.yml
build_image probe-stubborn:v1 probe-stubborn.yml cloud_manifest.yml PROBE_IGNORE_SIGTERM=1
build_image probe-stubborn:v2 probe-stubborn.yml cloud_manifest.yml PROBE_IGNORE_SIGTERM=1
