#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ for a bounded time. Not part of CI or scripts/test.sh:
# fuzzing needs a nightly toolchain and cargo-fuzz, and finds more the longer it runs. The
# property tests beside the same code (`prop_tests`) check the same properties on stable.
#
#   scripts/fuzz.sh                # every target, 60 seconds each
#   scripts/fuzz.sh 600 manifest   # one target (host, image_ref, manifest, env), 10 minutes
#
# A crash leaves its input in fuzz/artifacts/<target>/; `cargo +nightly fuzz run <target>
# <file>` replays it. Fix the code and keep the input as a plain unit test beside it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

SECONDS_EACH="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=(host image_ref manifest env)
fi

if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || [ "$SECONDS_EACH" -lt 1 ]; then
    echo "fuzz.sh: the first argument is seconds per target (a positive number), not '$SECONDS_EACH'" >&2
    exit 2
fi

missing=()
if ! command -v rustup >/dev/null 2>&1 || ! rustup run nightly rustc --version >/dev/null 2>&1; then
    missing+=("a nightly toolchain:  rustup toolchain install nightly")
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    missing+=("cargo-fuzz:           cargo install cargo-fuzz")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "fuzz.sh: cargo-fuzz targets need what is not installed here:" >&2
    printf '  %s\n' "${missing[@]}" >&2
    echo "The same properties run on stable as property tests: cargo nextest run --workspace -E 'test(prop)'" >&2
    exit 1
fi

failed=()
for target in "${TARGETS[@]}"; do
    printf '\n==> fuzz %s for %ss\n' "$target" "$SECONDS_EACH"
    if ! cargo +nightly fuzz run "$target" -- -max_total_time="$SECONDS_EACH"; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${TARGETS[*]} (${SECONDS_EACH}s each)"
