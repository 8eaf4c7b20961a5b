#!/usr/bin/env bash
# Profile-guided build of the govgate binary (and of the WAF engine benchmark): the build we
# recommend for production, where the WAF runs on cold caches between network events and the
# code layout that PGO gives (hot paths together, cold paths out of the way) pays the most.
#
#   bash bench/pgo.sh            # → target/pgo/govgate and the WAF engine benchmark
#   GOVGATE_BIN=target/pgo/govgate bash bench/run.sh
#
# Four steps; the two cargo builds have target directories of their own, so that the ordinary
# build in target/release is left alone (a change of RUSTFLAGS would rebuild it):
#   1. an instrumented build (-Cprofile-generate) in target/pgo-gen;
#   2. training, on traffic that is not the benchmarks' own requests:
#      - CRS's regression suite (gateway/waf/tests/crs_regression.rs: the ~4 900 requests of
#        ../shared/crs/tests, attacks and benign ones, through the engine at PL1 to PL4),
#      - bench/run.sh with wrk's bare `GET /` through the gateway without filters, with rate
#        limiting and with CRS (so pingora's and the gateway's request path are profiled too);
#   3. llvm-profdata merges the profiles and the final build (-Cprofile-use, linked with
#      --emit-relocs so that BOLT may move functions) goes to target/pgo/release/govgate;
#   4. BOLT lays that binary's code out anew (hot blocks and functions together, cold ones
#      split off) from a profile of its own: llvm-bolt instruments it, the gateway part of the
#      training runs again on the instrumented binary, and llvm-bolt writes target/pgo/govgate.
# llvm-profdata must match rustc's LLVM: llvm-profdata-N for rustc's LLVM N, installed with
# apt-get (package llvm-N) when missing; llvm-bolt-N and merge-fdata-N likewise (package bolt-N).
#
# Environment: GOVGATE_CRS_DIR (the OWASP CRS, default ../shared/crs beside the repository),
# TRAIN_SECONDS (wrk seconds per gateway target, default 5), CARGO_TARGET_DIR.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
GEN_DIR=$TARGET/pgo-gen
USE_DIR=$TARGET/pgo
PROFILES=$TARGET/pgo-profiles
CRS_DIR=${GOVGATE_CRS_DIR:-$ROOT/../shared/crs}
TRAIN_SECONDS=${TRAIN_SECONDS:-5}

# shellcheck source=bench/apt.sh
source "$ROOT/bench/apt.sh"

log() { printf '[pgo] %s\n' "$*" >&2; }
die() { printf '[pgo] ERROR: %s\n' "$*" >&2; exit 1; }
# cargo_in DIR FLAGS ARGS... : cargo in the repository with target directory DIR and RUSTFLAGS FLAGS.
cargo_in() {
    local dir=$1 flags=$2
    shift 2
    (cd "$ROOT" && RUSTFLAGS="$flags" CARGO_TARGET_DIR="$dir" cargo "$@")
}

[[ -d "$CRS_DIR/rules" ]] || die "the OWASP CRS is missing at $CRS_DIR (set GOVGATE_CRS_DIR)"
CRS_DIR=$(cd "$CRS_DIR" && pwd)

# --- llvm-profdata of rustc's LLVM ------------------------------------------------------------
LLVM_MAJOR=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
[[ -n "$LLVM_MAJOR" ]] || die "cannot tell rustc's LLVM version from 'rustc -vV'"
PROFDATA=$(command -v "llvm-profdata-$LLVM_MAJOR" || true)
if [[ -z "$PROFDATA" ]]; then
    log "llvm-profdata-$LLVM_MAJOR missing (rustc uses LLVM $LLVM_MAJOR): installing llvm-$LLVM_MAJOR with apt-get"
    apt_install "llvm-$LLVM_MAJOR" || die "apt-get install llvm-$LLVM_MAJOR failed"
    PROFDATA=$(command -v "llvm-profdata-$LLVM_MAJOR") || die "llvm-profdata-$LLVM_MAJOR still missing"
fi

# llvm-bolt-N and merge-fdata-N (step 4), from the same LLVM release.
BOLT=$(command -v "llvm-bolt-$LLVM_MAJOR" || true)
MERGE_FDATA=$(command -v "merge-fdata-$LLVM_MAJOR" || true)
if [[ -z "$BOLT" || -z "$MERGE_FDATA" ]]; then
    log "llvm-bolt-$LLVM_MAJOR missing: installing bolt-$LLVM_MAJOR with apt-get"
    apt_install "bolt-$LLVM_MAJOR" || die "apt-get install bolt-$LLVM_MAJOR failed"
    BOLT=$(command -v "llvm-bolt-$LLVM_MAJOR") || die "llvm-bolt-$LLVM_MAJOR still missing"
    MERGE_FDATA=$(command -v "merge-fdata-$LLVM_MAJOR") || die "merge-fdata-$LLVM_MAJOR still missing"
fi

# train_gateway BIN : the gateway part of the training, on binary BIN.
train_gateway() {
    GOVGATE_BIN="$1" GOVGATE_CRS_DIR="$CRS_DIR" TARGETS="gateway-plain gateway-ratelimit gateway-crs" \
        REQUEST=bare ROUNDS=1 WARMUP=1 DURATION="$TRAIN_SECONDS" QUIET_WAIT=5 bash "$ROOT/bench/run.sh" >/dev/null
}

# --- 1. instrumented build --------------------------------------------------------------------
rm -rf "$PROFILES"
mkdir -p "$PROFILES/raw"
GEN_FLAGS="-Cprofile-generate=$PROFILES/raw"
log "instrumented build in $GEN_DIR"
cargo_in "$GEN_DIR" "$GEN_FLAGS" build --release --bin govgate || die "instrumented build failed"
cargo_in "$GEN_DIR" "$GEN_FLAGS" test --release -p govgate-waf --test crs_regression --no-run \
    || die "instrumented build of the CRS regression suite failed"

# --- 2. training ------------------------------------------------------------------------------
# RUSTFLAGS instrument the build scripts too: drop what they wrote while building.
rm -f "$PROFILES"/raw/*.profraw
log "training 1/2: CRS's regression suite through the engine"
GOVGATE_CRS_DIR="$CRS_DIR" cargo_in "$GEN_DIR" "$GEN_FLAGS" test --release -p govgate-waf --test crs_regression -q >/dev/null \
    || die "the CRS regression suite failed"
log "training 2/2: wrk's GET / through the gateway (plain, rate limiting, CRS)"
train_gateway "$GEN_DIR/release/govgate" || die "the gateway training run failed"
n=$(find "$PROFILES/raw" -name '*.profraw' | wc -l)
[[ "$n" -gt 0 ]] || die "training wrote no profile to $PROFILES/raw"
"$PROFDATA" merge -o "$PROFILES/merged.profdata" "$PROFILES/raw" || die "llvm-profdata merge failed"
# Named by its contents: cargo does not watch the file a flag names, but a new name in RUSTFLAGS
# makes it rebuild with a new profile.
PROFILE="$PROFILES/merged-$(sha256sum "$PROFILES/merged.profdata" | cut -c1-16).profdata"
mv "$PROFILES/merged.profdata" "$PROFILE"
log "merged $n raw profiles into $PROFILE"

# --- 3. optimised build -----------------------------------------------------------------------
# --emit-relocs keeps the relocations in the binary: BOLT needs them to move functions (step 4).
USE_FLAGS="-Cprofile-use=$PROFILE -Clink-arg=-Wl,--emit-relocs"
log "profile-guided build in $USE_DIR"
cargo_in "$USE_DIR" "$USE_FLAGS" build --release --bin govgate || die "profile-guided build failed"
cargo_in "$USE_DIR" "$USE_FLAGS" build --release -p govgate-waf --bench waf_bench --example waf_profile \
    || die "profile-guided build of the WAF benchmark failed"

# --- 4. BOLT ----------------------------------------------------------------------------------
BOLT_DIR=$PROFILES/bolt
rm -rf "$BOLT_DIR"
mkdir -p "$BOLT_DIR"
log "BOLT: instrumenting $USE_DIR/release/govgate"
"$BOLT" "$USE_DIR/release/govgate" -instrument -o "$BOLT_DIR/govgate.instrumented" \
    --instrumentation-file="$BOLT_DIR/profile" --instrumentation-file-append-pid >"$BOLT_DIR/instrument.log" 2>&1 \
    || die "llvm-bolt -instrument failed (see $BOLT_DIR/instrument.log)"
log "BOLT: training (wrk's GET / through the gateway, as in step 2)"
train_gateway "$BOLT_DIR/govgate.instrumented" || die "the BOLT training run failed"
# Every process of the instrumented binary wrote a profile when it exited.
shopt -s nullglob
fdata=("$BOLT_DIR"/profile.*.fdata)
shopt -u nullglob
[[ ${#fdata[@]} -gt 0 ]] || die "the BOLT training wrote no profile to $BOLT_DIR"
"$MERGE_FDATA" "${fdata[@]}" >"$BOLT_DIR/merged.fdata" 2>"$BOLT_DIR/merge.log" || die "merge-fdata failed"
"$BOLT" "$USE_DIR/release/govgate" -o "$TARGET/pgo/govgate" -data="$BOLT_DIR/merged.fdata" \
    -reorder-blocks=ext-tsp -reorder-functions=cdsort -split-functions -split-all-cold -split-eh \
    -icf=1 -use-gnu-stack -dyno-stats >"$BOLT_DIR/optimize.log" 2>&1 \
    || die "llvm-bolt failed (see $BOLT_DIR/optimize.log)"
log "BOLT: done with ${#fdata[@]} profiles; $(grep -m1 ': taken branches (' "$BOLT_DIR/optimize.log" | sed 's/^ *//')"

WAF_BENCH=$(find "$USE_DIR/release/deps" -maxdepth 1 -type f -executable -name 'waf_bench-*' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
log "done: $TARGET/pgo/govgate (profile-guided and laid out by BOLT; without BOLT: $USE_DIR/release/govgate)"
log "WAF engine benchmark: GOVGATE_CRS_DIR=$CRS_DIR $WAF_BENCH --bench"
