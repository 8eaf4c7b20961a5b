#!/usr/bin/env bash
# Builds the certificate fuzz targets and runs each for a bounded time (FUZZ_SECONDS, default 30).
# The seed corpus is generated (never committed): DER forms of the fixtures of tests/fixtures/make.sh.
# Same conventions as gateway/waf/fuzz/run.sh (stable compiler via RUSTC_BOOTSTRAP, no sanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
sh tests/fixtures/make.sh "$seeds/fx" >/dev/null 2>&1
mkdir -p fuzz/corpus/decode fuzz/corpus/validate fuzz/corpus/cms
for f in "$seeds"/fx/*/*.pem; do
    n=$(basename "$(dirname "$f")")-$(basename "$f" .pem)
    openssl x509 -in "$f" -outform DER -out "fuzz/corpus/decode/$n.der" 2>/dev/null ||
        openssl crl -in "$f" -outform DER -out "fuzz/corpus/decode/$n.der" 2>/dev/null || true
done
for alg in ec rsa sm2; do
    cat "$seeds/fx/$alg/root.pem" > "$seeds/a"
    cat "$seeds/fx/$alg/leaf.pem" "$seeds/fx/$alg/int.pem" > "$seeds/b"
    len=$(wc -c < "$seeds/a")
    { printf "\\$(printf %03o $((len >> 8)))\\$(printf %03o $((len & 255)))"; cat "$seeds/a" "$seeds/b"; } > "fuzz/corpus/validate/$alg"
done
cp "$seeds"/fx/*/*.p7s "$seeds"/fx/ec/doc.tst fuzz/corpus/cms/ 2>/dev/null || true
cargo fuzz build --sanitizer none -O
for target in decode validate cms; do
    out=$(cargo fuzz run --sanitizer none -O "$target" "fuzz/corpus/$target" -- -max_total_time="$SECONDS_EACH" 2>&1) || {
        echo "$out" | tail -40
        echo "fuzz: $target FAILED"
        exit 1
    }
    echo "fuzz: $target $(echo "$out" | grep -E '^Done [0-9]+ runs' | tail -1)"
done
