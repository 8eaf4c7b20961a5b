#!/usr/bin/env bash
# Throughput/latency benchmark: govgate (plain, and with rate limiting) against Debian's nginx
# as a plain reverse proxy, all three forwarding to the same nginx upstream on loopback.
#
#   bash bench/run.sh                      # build, run, print the table and a BENCH line
#   DURATION=30 ROUNDS=5 bash bench/run.sh
#
# Environment (defaults in brackets):
#   GOVGATE_BIN      use this govgate binary instead of building one [cargo build --release];
#                    `make bench-pgo` passes the profile-guided build of bench/pgo.sh
#   BARE_BIN         the bare pingora proxy for pingora-bare [built with cargo build --release
#                    -p govgate-gateway --example bare_proxy]
#   DURATION         seconds of each measured wrk run [10]
#   WARMUP           seconds of the warm-up run before each measured run [3]
#   ROUNDS           measured runs per proxy, interleaved; the median is reported [3]
#   CONNECTIONS      wrk connections [32]
#   REQUEST          what wrk sends [bare]: `bare` is wrk's own `GET /` with only a Host header
#                    (127.0.0.1:port); `browser` is what a citizen's browser sends to a service
#                    page: `GET /apply/status?ref=A2024-00017&lang=zh`, Host services.gov.example,
#                    User-Agent, Accept, Accept-Language, Accept-Encoding, two cookies and a
#                    Referer (the same request as the WAF engine benchmark's benign GET)
#   WRK_THREADS      wrk threads, the same for all proxies [2]
#   RATE             latency at a fixed load instead of throughput at saturation: each run sends
#                    RATE requests/s over CONNECTIONS connections with oha (`oha -q RATE
#                    --latency-correction`, so a stalled answer delays the schedule, not the
#                    figures: no coordinated omission) and reports its p99. wrk sends as fast as
#                    the proxy answers, so its p99 is the queueing of a saturated two-core machine,
#                    where even nginx is above 2 ms. oha is installed with `cargo install oha`
#                    if missing (OHA_BIN: use this oha binary) [unset: wrk at saturation]
#   TARGETS          which proxies to run, in order ["gateway-plain gateway-ratelimit nginx"];
#                    also known: gateway-crs (the gateway with the OWASP CRS at PL1, block mode)
#                    and nginx-modsec (nginx + libnginx-mod-http-modsecurity, ModSecurity 3,
#                    loading the same CRS at PL1): `TARGETS="gateway-crs nginx-modsec"`;
#                    and pingora-bare (gateway/examples/bare_proxy.rs: pingora with no filter,
#                    log or metric, the gateway's settings; what pingora itself costs)
#   GOVGATE_CRS_DIR  the OWASP CRS for those two [../shared/crs beside the repository]
#   MODSEC_AUDIT     ModSecurity's audit log for nginx-modsec [off]: `off` (SecAuditEngine Off);
#                    `relevant`, as Debian's /etc/nginx/modsecurity.conf ships it (RelevantOnly,
#                    status ^(?:5|4(?!04)), parts ABIJDEFHZ, one serial file): a transaction in
#                    which a rule matched is written, as the gateway writes an attack event
#   GATEWAY_THREADS, WORK_STEALING, KEEPALIVE_POOL
#                    override [server] threads / work_stealing / upstream_keepalive_pool_size
#                    of both bench policies (for tuning sweeps) [as in bench/*.toml]
#   NGINX_WORKERS    worker_processes of the nginx proxy [2]
#   PORT_BASE        first of the loopback ports used: upstream = PORT_BASE, proxies = +11..+13,
#                    gateway admin listeners = +21,+22 [18700]
#   NICE             nice value for the upstream, the proxies and wrk: above other work on a shared
#                    machine, alike for all three [-10 as root, else 0]
#   KEEP_TMP=1       keep the temp dir (configs, logs, raw wrk output) after the run
#   QUIET_MAX, QUIET_WAIT
#                    before each run, wait up to QUIET_WAIT s [60] until the machine is less
#                    than QUIET_MAX % busy [15] with other work (shared machines, builds)
#   FOREIGN_MAX, RETRIES
#                    a measured run during which other processes used more than FOREIGN_MAX %
#                    of the CPUs [10] is repeated, up to RETRIES attempts in all [3]
#
# Every process the script starts is stopped on exit. It fails if a port is already in use,
# a process does not come up, a proxy does not answer "hello" through to the upstream, or any
# measured response is not 2xx (so a rate limit that fires cannot inflate the figures).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/apt.sh
source "$BENCH/apt.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
REQUEST=${REQUEST:-bare}
WRK_THREADS=${WRK_THREADS:-2}
TARGETS=${TARGETS:-"gateway-plain gateway-ratelimit nginx"}
NGINX_WORKERS=${NGINX_WORKERS:-2}
MODSEC_AUDIT=${MODSEC_AUDIT:-off}
PORT_BASE=${PORT_BASE:-18700}
# On a shared machine, run everything of the benchmark (upstream, proxy, wrk) at a higher
# priority than other work, the same for all three proxies. Only root may lower nice values.
if [[ -z "${NICE:-}" ]]; then
    if [[ $(id -u) -eq 0 ]]; then NICE=-10; else NICE=0; fi
fi
PRIO=(nice -n "$NICE")

UPSTREAM_PORT=$PORT_BASE
declare -A PORT=([gateway-plain]=$((PORT_BASE + 11)) [gateway-ratelimit]=$((PORT_BASE + 12)) [nginx]=$((PORT_BASE + 13))
    [gateway-crs]=$((PORT_BASE + 14)) [nginx-modsec]=$((PORT_BASE + 15)) [pingora-bare]=$((PORT_BASE + 16)))
declare -A ADMIN_PORT=([gateway-plain]=$((PORT_BASE + 21)) [gateway-ratelimit]=$((PORT_BASE + 22)) [gateway-crs]=$((PORT_BASE + 24)))
declare -A POLICY=([gateway-plain]="$BENCH/gateway-plain.toml" [gateway-ratelimit]="$BENCH/gateway-ratelimit.toml"
    [gateway-crs]="$BENCH/gateway-crs.toml")
CRS_DIR=${GOVGATE_CRS_DIR:-$ROOT/../shared/crs}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

for t in $TARGETS; do
        [[ -n "${PORT[$t]:-}" ]] || die "unknown target '$t' in TARGETS (known: ${!PORT[*]})"
done
[[ $MODSEC_AUDIT == off || $MODSEC_AUDIT == relevant ]] || die "unknown MODSEC_AUDIT '$MODSEC_AUDIT' (known: off, relevant)"

# --- tools ------------------------------------------------------------------------------------
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    log "nginx or wrk missing: installing nginx-light and wrk with apt-get"
    apt_install nginx-light wrk
fi
command -v nginx >/dev/null || die "nginx is not installed (apt-get install -y nginx-light)"
command -v wrk >/dev/null || die "wrk is not installed (apt-get install -y wrk)"
command -v curl >/dev/null || die "curl is not installed"
if [[ -n "${RATE:-}" ]]; then
    [[ "$RATE" =~ ^[0-9]+$ && "$RATE" -gt 0 ]] || die "RATE must be a number of requests per second, not '$RATE'"
    # OHA_BIN, else oha on the PATH, else the copy an earlier run installed under target/tools.
    OHA=${OHA_BIN:-$(command -v oha || echo "$ROOT/target/tools/bin/oha")}
    if [[ -z "${OHA_BIN:-}" && ! -x "$OHA" ]]; then
        log "oha missing (needed for RATE): installing it with cargo install oha --locked"
        cargo install oha --locked --root "$ROOT/target/tools" >&2 || die "cargo install oha failed"
    fi
    [[ -x "$OHA" ]] || die "OHA_BIN=$OHA is not an executable file"
fi
MODSEC_MODULE=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
if [[ " $TARGETS " == *" nginx-modsec "* && ! -f $MODSEC_MODULE ]]; then
    log "the ModSecurity module for nginx is missing: installing libnginx-mod-http-modsecurity with apt-get"
    apt_install libnginx-mod-http-modsecurity
fi
if [[ " $TARGETS " == *" gateway-crs "* || " $TARGETS " == *" nginx-modsec "* ]]; then
    [[ -d "$CRS_DIR/rules" ]] || die "the OWASP CRS is missing at $CRS_DIR (set GOVGATE_CRS_DIR)"
    CRS_DIR=$(cd "$CRS_DIR" && pwd)
fi

# --- the gateway binary -----------------------------------------------------------------------
if [[ -n "${GOVGATE_BIN:-}" ]]; then
    BIN=$GOVGATE_BIN
    [[ -x "$BIN" ]] || die "GOVGATE_BIN=$BIN is not an executable file"
else
    log "building the release binary (cargo build --release --bin govgate)"
    (cd "$ROOT" && cargo build --release --bin govgate) || die "cargo build failed"
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/govgate"
    [[ -x "$BIN" ]] || die "built, but $BIN is missing (is CARGO_TARGET_DIR set elsewhere?)"
fi
log "gateway binary: $BIN"
if [[ " $TARGETS " == *" pingora-bare "* ]]; then
    if [[ -n "${BARE_BIN:-}" ]]; then
        [[ -x "$BARE_BIN" ]] || die "BARE_BIN=$BARE_BIN is not an executable file"
    else
        log "building the bare pingora proxy (cargo build --release -p govgate-gateway --example bare_proxy)"
        (cd "$ROOT" && cargo build --release -p govgate-gateway --example bare_proxy) || die "cargo build failed"
        BARE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bare_proxy"
    fi
fi

# --- temp dir and cleanup ---------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/govgate-bench.XXXXXX")
# The request sent (see REQUEST above): for wrk a script (none for its own request), for oha
# (RATE) the path and -H flags, both made from one definition.
WRK_SCRIPT=()
REQ_PATH=/
OHA_HEADERS=()
case $REQUEST in
    bare) ;;
    browser)
        # A desktop browser asking a government service page for the status of an application
        # (gateway/waf/benches/common/mod.rs has the same headers).
        REQ_PATH="/apply/status?ref=A2024-00017&lang=zh"
        headers=(
            "Host: services.gov.example"
            "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
            "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            "Accept-Language: zh-CN,zh;q=0.9,en;q=0.8"
            "Accept-Encoding: gzip, deflate, br"
            "Cookie: session=8f3a9c0d2b7e4f61a5c3; lang=zh-CN"
            "Referer: https://services.gov.example/apply/start"
        )
        {
            echo 'wrk.method = "GET"'
            echo "wrk.path = \"$REQ_PATH\""
            for h in "${headers[@]}"; do
                echo "wrk.headers[\"${h%%: *}\"] = \"${h#*: }\""
                OHA_HEADERS+=(-H "$h")
            done
        } >"$TMP/browser.lua"
        WRK_SCRIPT=(-s "$TMP/browser.lua")
        ;;
    *) die "unknown REQUEST '$REQUEST' (known: bare, browser)" ;;
esac
PIDS=()

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop on SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        log "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ----------------------------------------------------------------------------------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start NAME LOGFILE CMD... : runs CMD in the background, records its pid in STARTED_PID.
start() {
    local name=$1 logfile=$2
    shift 2
    "${PRIO[@]}" "$@" >/dev/null 2>"$logfile" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    log "started $name (pid $STARTED_PID)"
}

# wait_up NAME PID PORT LOGFILE : waits until PORT accepts and answers "hello" through to the upstream.
wait_up() {
    local name=$1 pid=$2 port=$3 logfile=$4 i body
    for i in $(seq 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$logfile" >&2 || true
            die "$name (pid $pid) exited during start-up; its log is above"
        fi
        if port_busy "$port"; then
            body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/" 2>&1) || {
                tail -n 30 "$logfile" >&2 || true
                die "$name listens on $port but the request failed: $body"
            }
            [[ "$body" == hello* ]] || die "$name on port $port answered '$body' instead of 'hello'"
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$logfile" >&2 || true
    die "$name (pid $pid) did not listen on 127.0.0.1:$port within 10 s"
}

# to_ms VALUE : wrk latency such as 812.00us / 1.23ms / 1.01s → milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u);
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1;
        if (f < 0) { print "NaN"; exit 1 } printf "%.3f", n * f }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

nginx_temp_paths() {
    local dir=$1 m
    echo "client_body_temp_path $dir/body;"
    echo "proxy_temp_path $dir/proxy;"
    for m in fastcgi uwsgi scgi; do
        nginx -V 2>&1 | grep -q -- "--without-http_${m}_module" || echo "${m}_temp_path $dir/$m;"
    done
}

# --- port check (all of them, before anything starts) ----------------------------------------
for p in "$UPSTREAM_PORT" "${PORT[@]}" "${ADMIN_PORT[@]}"; do
    case $p in 3306 | 4222 | 5432 | 5672 | 6379 | 1883 | 8080 | 8443 | 9090) die "port $p is reserved; choose another PORT_BASE" ;; esac
    port_busy "$p" && die "port 127.0.0.1:$p is already in use; stop what uses it or set PORT_BASE"
done

# --- upstream: nginx, one worker, static body, keep-alive -------------------------------------
mkdir -p "$TMP/upstream"
cat >"$TMP/upstream/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/upstream/nginx.pid;
error_log $TMP/upstream/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    $(nginx_temp_paths "$TMP/upstream")
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;
        location / {
            default_type text/plain;
            return 200 "hello\n";
        }
    }
}
EOF
nginx -t -q -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" 2>"$TMP/upstream/check.log" || {
    cat "$TMP/upstream/check.log" >&2
    die "the generated upstream nginx config is invalid"
}
start upstream "$TMP/upstream/stderr.log" nginx -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf"
UPSTREAM_PID=$STARTED_PID
wait_up upstream "$UPSTREAM_PID" "$UPSTREAM_PORT" "$TMP/upstream/stderr.log"

# --- the proxies ------------------------------------------------------------------------------
prepare_gateway() {
    local t=$1 dir="$TMP/$1"
    mkdir -p "$dir"
    sed -e "s/@PROXY_PORT@/${PORT[$t]}/g" -e "s/@ADMIN_PORT@/${ADMIN_PORT[$t]}/g" -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/g" \
        -e "s|@CRS_DIR@|$CRS_DIR|g" \
        "${POLICY[$t]}" >"$dir/policy.toml"
    [[ -n "${GATEWAY_THREADS:-}" ]] && sed -i -E "s/^threads = [0-9]+/threads = $GATEWAY_THREADS/" "$dir/policy.toml"
    [[ -n "${WORK_STEALING:-}" ]] && sed -i -E "s/^work_stealing = [a-z]+/work_stealing = $WORK_STEALING/" "$dir/policy.toml"
    [[ -n "${KEEPALIVE_POOL:-}" ]] && sed -i -E "s/^upstream_keepalive_pool_size = [0-9]+/upstream_keepalive_pool_size = $KEEPALIVE_POOL/" "$dir/policy.toml"
    "$BIN" check --config "$dir/policy.toml" >&2 || die "policy for $t is invalid"
    grep -E '^(threads|work_stealing|upstream_keepalive_pool_size) =' "$dir/policy.toml" | sed 's/ *#.*//' | tr '\n' ' ' | sed "s/^/[bench] $t: /" >&2
    echo >&2
}

# modsec_audit_conf DIR : the audit-log directives of MODSEC_AUDIT (see above).
modsec_audit_conf() {
    case $MODSEC_AUDIT in
        off) echo "SecAuditEngine Off" ;;
        relevant)
            printf '%s\n' 'SecAuditEngine RelevantOnly' 'SecAuditLogRelevantStatus "^(?:5|4(?!04))"' \
                'SecAuditLogParts ABIJDEFHZ' 'SecAuditLogType Serial' "SecAuditLog $1/modsec_audit.log"
            ;;
    esac
}

# prepare_nginx TARGET : nginx as a plain reverse proxy, or (nginx-modsec) with ModSecurity 3
# running the CRS at PL1 in blocking mode on requests and responses (response bodies of the same
# types as the gateway inspects, up to the same 512 KiB).
prepare_nginx() {
    local t=$1 dir="$TMP/$1" load_module="" modsec=""
    mkdir -p "$dir"
    if [[ $t == nginx-modsec ]]; then
        load_module="load_module $MODSEC_MODULE;"
        modsec="modsecurity on; modsecurity_rules_file $dir/modsec.conf;"
        cat >"$dir/modsec.conf" <<EOF
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html text/xml application/json
SecResponseBodyLimit 524288
SecResponseBodyLimitAction ProcessPartial
$(modsec_audit_conf "$dir")
SecPcreMatchLimit 1000
SecPcreMatchLimitRecursion 1000
Include $CRS_DIR/crs-setup.conf.example
Include $CRS_DIR/rules/*.conf
EOF
    fi
    cat >"$dir/nginx.conf" <<EOF
$load_module
worker_processes $NGINX_WORKERS;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    $(nginx_temp_paths "$dir")
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    upstream app {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${PORT[$t]} backlog=4096;
        $modsec
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    nginx -t -q -p "$dir" -c "$dir/nginx.conf" 2>"$dir/check.log" || {
        cat "$dir/check.log" >&2
        die "the generated nginx proxy config is invalid"
    }
}

# run_load OUTFILE SECONDS PORT : wrk at saturation, or oha at RATE requests/s (JSON output).
run_load() {
    if [[ -n "${RATE:-}" ]]; then
        "${PRIO[@]}" "$OHA" -c "$CONNECTIONS" -q "$RATE" --latency-correction -z "$2"s -w --no-tui \
            --output-format json "${OHA_HEADERS[@]}" "http://127.0.0.1:$3$REQ_PATH" >"$1" 2>&1 || {
            cat "$1" >&2
            die "oha failed"
        }
        return
    fi
    "${PRIO[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2"s --latency "${WRK_SCRIPT[@]}" "http://127.0.0.1:$3/" >"$1" 2>&1 || {
        cat "$1" >&2
        die "wrk failed"
    }
}

# parse_oha FILE : "requests/s p99-ms failed" from oha's JSON output; failed counts errors,
# non-2xx answers and requests the run's deadline cut off.
parse_oha() {
    python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution", {})
bad = sum(n for c, n in codes.items() if not c.startswith("2")) + sum(d.get("errorDistribution", {}).values())
print(f'{d["summary"]["requestsPerSec"]:.2f} {d["latencyPercentiles"]["p99"] * 1000:.3f} {bad}')
PY
}

# proc_cpu PID : CPU ticks used so far by PID and its child processes (nginx workers).
proc_cpu() {
    local total=0 p f
    for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
        f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
        total=$((total + ${f% *} + ${f#* }))
    done
    echo "$total"
}

# stat_ticks : "TOTAL IDLE IRQ" CPU ticks of the whole machine so far: all (user .. steal; guest
# time is already part of user), idle (with iowait), and hard+soft interrupts. Interrupt time is
# not charged to any process; on loopback it is mostly the benchmark's own packet delivery.
stat_ticks() { head -1 /proc/stat | awk '{ t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6, $7 + $8 }'; }

# cpu_busy : percentage of all CPUs busy during the next second (anything: other users too).
cpu_busy() {
    local a b
    read -r -a a < <(head -1 /proc/stat)
    sleep 1
    read -r -a b < <(head -1 /proc/stat)
    awk -v a="${a[*]}" -v b="${b[*]}" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); t = 0;
        for (i = 2; i <= 9 && i <= n; i++) t += y[i] - x[i];
        idle = (y[5] - x[5]) + (y[6] - x[6]);
        printf "%.0f", (t > 0) ? 100 * (t - idle) / t : 0 }'
}

# wait_quiet : the machine may be shared; wait (up to QUIET_WAIT s) until it is idle
# (< QUIET_MAX % busy) before measuring, so that a compile elsewhere does not skew one proxy.
QUIET_MAX=${QUIET_MAX:-15}
FOREIGN_MAX=${FOREIGN_MAX:-10}
RETRIES=${RETRIES:-3}
QUIET_WAIT=${QUIET_WAIT:-60}
NOISY=0
wait_quiet() {
    local waited=0 busy
    while :; do
        busy=$(cpu_busy)
        ((busy < QUIET_MAX)) && return 0
        if ((waited >= QUIET_WAIT)); then
            log "warning: the machine is still ${busy}% busy with other work; measuring anyway (figures are noisy)"
            NOISY=1
            return 0
        fi
        ((waited == 0)) && log "machine is ${busy}% busy with other work (e.g. a build); waiting up to ${QUIET_WAIT}s for it to calm down"
        waited=$((waited + 5))
        sleep 4
    done
}

start_target() {
    local t=$1 dir="$TMP/$1"
    if [[ $t == nginx* ]]; then
        start "$t" "$dir/stderr.log" nginx -p "$dir" -c "$dir/nginx.conf"
    elif [[ $t == pingora-bare ]]; then
        start "$t" "$dir/stderr.log" "$BARE_BIN" "127.0.0.1:${PORT[$t]}" "127.0.0.1:$UPSTREAM_PORT" "${GATEWAY_THREADS:-2}"
    else
        start "$t" "$dir/stderr.log" env GOVGATE_LOG=warn "$BIN" serve --config "$dir/policy.toml"
    fi
    wait_up "$t" "$STARTED_PID" "${PORT[$t]}" "$dir/stderr.log"
}

stop_target() {
    local pid=$1 p remaining=()
    stop_pid "$pid"
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || remaining+=("$p"); done
    PIDS=("${remaining[@]}")
}

for t in $TARGETS; do
    case $t in
        nginx*) prepare_nginx "$t" ;;
        pingora-bare) mkdir -p "$TMP/$t" ;;
        *) prepare_gateway "$t" ;;
    esac
done

# Rounds are interleaved (plain, ratelimit, nginx, plain, ...) and each proxy runs alone:
# started, warmed up, measured, stopped. Slow drifts of the machine then hit all three alike.
declare -A RPS P99 CPU RPS_ALL P99_ALL CPU_ALL
TICK=$(getconf CLK_TCK)
for r in $(seq "$ROUNDS"); do
    for t in $TARGETS; do
        dir="$TMP/$t"
        out="$dir/wrk-$r.txt"
        attempt=0
        while :; do
            attempt=$((attempt + 1))
            start_target "$t"
            pid=$STARTED_PID
            wait_quiet
            run_load "$dir/warmup-$r.txt" "$WARMUP" "${PORT[$t]}"
            read -r tot0 idle0 irq0 < <(stat_ticks)
            cpu0=$(proc_cpu "$pid")
            up0=$(proc_cpu "$UPSTREAM_PID")
            # The subshell reports the CPU ticks its child (wrk) used: cutime + cstime.
            wrk_ticks=$(
                run_load "$out" "$DURATION" "${PORT[$t]}"
                f=$(cut -d' ' -f16,17 "/proc/$BASHPID/stat")
                echo $((${f% *} + ${f#* }))
            )
            cpu1=$(proc_cpu "$pid")
            up1=$(proc_cpu "$UPSTREAM_PID")
            read -r tot1 idle1 irq1 < <(stat_ticks)
            kill -0 "$pid" 2>/dev/null || { tail -n 30 "$dir/stderr.log" >&2; die "$t died during the run"; }
            stop_target "$pid"
            # CPU used by anything but wrk, the upstream, this proxy and interrupts during the
            # run, in % of the machine (kernel threads such as ksoftirqd count too: a few %).
            foreign=$(awk -v b=$(((tot1 - tot0) - (idle1 - idle0) - (irq1 - irq0))) -v all=$((tot1 - tot0)) \
                -v ours=$((cpu1 - cpu0 + up1 - up0 + wrk_ticks)) 'BEGIN { printf "%.0f", (all > 0) ? 100 * (b - ours) / all : 0 }')
            if ((foreign > FOREIGN_MAX)); then
                if ((attempt < RETRIES)); then
                    log "round $r $t: other work took ${foreign}% of the CPUs during the run; repeating it"
                    continue
                fi
                log "round $r $t: other work took ${foreign}% of the CPUs during the run; keeping it after $RETRIES attempts (noisy)"
                NOISY=1
            fi
            break
        done
        if [[ -n "${RATE:-}" ]]; then
            read -r rps p99 bad < <(parse_oha "$out") || { cat "$out" >&2; die "could not parse oha output for $t"; }
            ((bad == 0)) || { cat "$out" >&2; die "$t: $bad requests failed or answered non-2xx: figures invalid"; }
        else
            if grep -q 'Non-2xx or 3xx responses' "$out"; then
                cat "$out" >&2
                die "$t answered non-2xx responses (a rate limit fired, or the upstream failed): figures invalid"
            fi
            if grep -q 'Socket errors' "$out"; then log "$t: warning: $(grep 'Socket errors' "$out" | sed 's/^ *//')"; fi
            rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
            p99raw=$(awk '/Latency Distribution/ { d = 1 } d && $1 == "99%" { print $2; exit }' "$out")
            [[ -n "$rps" && -n "$p99raw" ]] || { cat "$out" >&2; die "could not parse wrk output for $t"; }
            p99=$(to_ms "$p99raw")
        fi
        # CPU time the proxy itself used per request (all its threads/workers), in microseconds.
        cpu_us=$(awk -v c=$((cpu1 - cpu0)) -v tick="$TICK" -v rps="$rps" -v d="$DURATION" 'BEGIN { printf "%.1f", (rps > 0) ? c / tick / (rps * d) * 1e6 : 0 }')
        log "round $r/$ROUNDS $t: $rps req/s, p99 $p99 ms, proxy CPU $cpu_us us/request, other load ${foreign}%"
        RPS_ALL[$t]+="$rps " P99_ALL[$t]+="$p99 " CPU_ALL[$t]+="$cpu_us "
    done
done
for t in $TARGETS; do
    # shellcheck disable=SC2086 # word splitting wanted
    RPS[$t]=$(median ${RPS_ALL[$t]})
    # shellcheck disable=SC2086
    P99[$t]=$(median ${P99_ALL[$t]})
    # shellcheck disable=SC2086
    CPU[$t]=$(median ${CPU_ALL[$t]})
done

# --- report -----------------------------------------------------------------------------------
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "NaN" }'; }

echo
if [[ -n "${RATE:-}" ]]; then
    load="oha -c$CONNECTIONS -q$RATE --latency-correction -z${DURATION}s"
else
    load="wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency"
fi
audit=""
[[ " $TARGETS " == *" nginx-modsec "* ]] && audit="; ModSecurity audit log $MODSEC_AUDIT"
echo "$load, $REQUEST request$audit; median of $ROUNDS interleaved round(s), each after a ${WARMUP}s warm-up; $(nproc) cores"
printf '%-20s %12s %10s %16s\n' name requests/s "p99 ms" "proxy CPU us/req"
for t in $TARGETS; do
    printf '%-20s %12.0f %10.3f %16.1f\n' "$t" "${RPS[$t]}" "${P99[$t]}" "${CPU[$t]}"
done
if [[ -n "${RATE:-}" ]]; then
    echo "(fixed load: requests/s is the rate sent, not what the proxy could serve; no ratios)"
    [[ -n "${P99[gateway-ratelimit]:-}" ]] && echo "target (gateway-ratelimit p99 <= 2 ms at $RATE requests/s): $(awk -v p="${P99[gateway-ratelimit]}" 'BEGIN { print (p <= 2.0) ? "yes" : "no" }')"
    ((NOISY == 0)) || echo "WARNING: other work was running on the machine during some runs; the figures are noisy"
    printf 'BENCH rate=%s p99_bare_ms=%s p99_plain_ms=%s p99_rl_ms=%s p99_nginx_ms=%s p99_crs_ms=%s p99_modsec_ms=%s\n' "$RATE" \
        "${P99[pingora-bare]:-NaN}" "${P99[gateway-plain]:-NaN}" "${P99[gateway-ratelimit]:-NaN}" "${P99[nginx]:-NaN}" \
        "${P99[gateway-crs]:-NaN}" "${P99[nginx-modsec]:-NaN}"
    exit 0
fi
if [[ -n "${RPS[nginx]:-}" ]]; then
    [[ -n "${RPS[gateway-plain]:-}" ]] && printf '%-34s %s\n' "ratio gateway-plain/nginx" "$(ratio "${RPS[gateway-plain]}" "${RPS[nginx]}")"
    [[ -n "${RPS[gateway-ratelimit]:-}" ]] && printf '%-34s %s\n' "ratio gateway-ratelimit/nginx" "$(ratio "${RPS[gateway-ratelimit]}" "${RPS[nginx]}")"
    [[ -n "${RPS[pingora-bare]:-}" ]] && printf '%-34s %s\n' "ratio pingora-bare/nginx" "$(ratio "${RPS[pingora-bare]}" "${RPS[nginx]}")"
fi
# The most any filter in the gateway could give against ModSecurity: the gateway without filters.
if [[ -n "${RPS[nginx-modsec]:-}" && -n "${RPS[gateway-plain]:-}" ]]; then
    printf '%-34s %s\n' "ratio gateway-plain/nginx-modsec" "$(ratio "${RPS[gateway-plain]}" "${RPS[nginx-modsec]}")"
fi
if [[ -n "${RPS[nginx-modsec]:-}" && -n "${RPS[gateway-crs]:-}" ]]; then
    printf '%-34s %s\n' "ratio gateway-crs/nginx-modsec" "$(ratio "${RPS[gateway-crs]}" "${RPS[nginx-modsec]}")"
    met=$(awk -v r="$(ratio "${RPS[gateway-crs]}" "${RPS[nginx-modsec]}")" 'BEGIN { print (r >= 20) ? "yes" : "no" }')
    echo "target (gateway-crs >= 20x the req/s of nginx + ModSecurity + CRS): $met"
fi
if [[ -n "${RPS[nginx]:-}" && -n "${RPS[gateway-ratelimit]:-}" ]]; then
    met=$(awk -v r="$(ratio "${RPS[gateway-ratelimit]}" "${RPS[nginx]}")" -v p="${P99[gateway-ratelimit]}" 'BEGIN { print (r >= 0.5 && p <= 2.0) ? "yes" : "no" }')
    echo "target (gateway-ratelimit >= 50% of nginx req/s and p99 <= 2 ms): $met"
fi
((NOISY == 0)) || echo "WARNING: other work was running on the machine during some runs; the figures are noisy"
printf 'BENCH gateway_plain_rps=%s gateway_rl_rps=%s nginx_rps=%s ratio_plain=%s ratio_rl=%s p99_plain_ms=%s p99_rl_ms=%s p99_nginx_ms=%s gateway_crs_rps=%s nginx_modsec_rps=%s ratio_crs=%s\n' \
    "${RPS[gateway-plain]:-NaN}" "${RPS[gateway-ratelimit]:-NaN}" "${RPS[nginx]:-NaN}" \
    "$(ratio "${RPS[gateway-plain]:-0}" "${RPS[nginx]:-0}")" "$(ratio "${RPS[gateway-ratelimit]:-0}" "${RPS[nginx]:-0}")" \
    "${P99[gateway-plain]:-NaN}" "${P99[gateway-ratelimit]:-NaN}" "${P99[nginx]:-NaN}" \
    "${RPS[gateway-crs]:-NaN}" "${RPS[nginx-modsec]:-NaN}" "$(ratio "${RPS[gateway-crs]:-0}" "${RPS[nginx-modsec]:-0}")"
