#!/usr/bin/env bash
# Builds the WAF fuzz targets and runs each for a bounded time (FUZZ_SECONDS, default 30),
# printing libFuzzer's execution count. Fails if a target crashes.
# cargo-fuzz wants a nightly compiler for its -Z flags; RUSTC_BOOTSTRAP lets the stable one
# accept them, and `--sanitizer none` avoids needing a sanitizer-built standard library.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build --sanitizer none -O
for target in parse_rules inspect_request literal_scan; do
  mkdir -p "fuzz/corpus/$target"
  out=$(cargo fuzz run --sanitizer none -O "$target" "fuzz/corpus/$target" -- -max_total_time="$SECONDS_EACH" 2>&1) || {
    echo "$out" | tail -40
    echo "fuzz: $target FAILED"
    exit 1
  }
  echo "fuzz: $target $(echo "$out" | grep -E '^Done [0-9]+ runs' | tail -1)"
done
