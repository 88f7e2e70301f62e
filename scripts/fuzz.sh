#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds, starting from the corpus in fuzz/corpus.
# cargo-fuzz needs nightly features; on a stable toolchain RUSTC_BOOTSTRAP enables them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 1
fi
for target in $(cargo fuzz list); do
    echo "== fuzz target $target for ${seconds}s"
    mkdir -p "fuzz/corpus/$target"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" -max_len=4096
done
