#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts what the tests need
# (scripts/test-env.sh), then formatting, lints, and every unit and integration test.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -E 'test(edge)' # extra arguments go to cargo nextest
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "test environment (Debian packages, services, probe images)"
scripts/test-env.sh
ENV_FILE="${MINICLOUD_TEST_ENV_DIR:-${TMPDIR:-/tmp}/minicloud-test-env}/test-env.env"
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a

step "shellcheck (install.sh, the scripts and the benchmarks)"
shellcheck install.sh scripts/*.sh benches/*.sh deploy/test-images/*/*.sh

step "GitHub Actions workflows (the workflow schema, with check-jsonschema)"
"$MINICLOUD_TEST_WORKFLOW_LINT" --builtin-schema vendor.github-workflows \
    .github/workflows/*.yml docs/workflows/*.yml

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
cargo nextest run --workspace --no-fail-fast "$@"
