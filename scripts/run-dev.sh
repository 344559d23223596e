#!/usr/bin/env bash
# Runs minicloud with development defaults: domain localhost, data in ./data, HTTP on 8080,
# HTTPS on 8443, the API for the local CLI on 127.0.0.1:7780. Installs the build tools a fresh
# Debian machine lacks (cmake, for pingora's zlib-ng), then builds and starts.
#
#   scripts/run-dev.sh              # extra arguments go to `minicloud serve`
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v cmake >/dev/null 2>&1; then
    echo "==> installing cmake (needed to build pingora)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cmake >/dev/null
fi

exec cargo run --release --bin minicloud -- serve --http-port 8080 --https-port 8443 "$@"
