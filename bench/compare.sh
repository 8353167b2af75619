#!/usr/bin/env bash
# bench/compare.sh — Sprocket's sprocketd against Debian's gearmand 1.1.20,
# side by side on this machine, with the same load generator.
#
# For each row (a load on a queue store) and each repetition, it starts a
# fresh server with a fresh, private store, runs the load, stops the server
# and cleans the store up; the two servers alternate (A B A B ...). Then it
# measures peak resident memory (VmHWM from /proc) with 1,000,000 queued
# 100-byte background jobs and with 10,000 idle connections, runs
# redis-benchmark PING and LPUSH as the cost floor, and prints medians and
# Sprocket/gearmand ratios (bench-chart), plus a PNG chart.
#
# Usage: bench/compare.sh [--quick | --smoke] [--reps N] [--duration S]
#                         [--out DIR] [--no-build] [--skip GROUPS]
#   --quick     2 repetitions, 1 s runs, smaller memory tests (development)
#   --smoke     1 repetition, short runs, in-memory only, tiny memory tests (CI)
#   --skip      comma-separated groups to leave out:
#               memory,sqlite,sqlite-normal,postgres,mysql,redis,libgearman,
#               footprint,floor (libgearman: the rows through the C client
#               library, bench/libgearman-load.c; needs libgearman-dev)
#   --out DIR   where results.jsonl, summary.md, chart.png and logs go
#               (default bench/results/<UTC timestamp>)
# Environment: CARGO_TARGET_DIR (default <repo>/target), GEARMAND
# (default /usr/sbin/gearmand), PGHOST/PGPORT/PGUSER/PGDATABASE
# (127.0.0.1/5432/postgres/test), MYSQL_HOST/MYSQL_PORT/MYSQL_USER/MYSQL_DB
# (127.0.0.1/3306/root/test), REDIS_HOST/REDIS_PORT (127.0.0.1/6379).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=full
REPS=""
DUR=""
OUT=""
BUILD=1
SKIP=","
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) PROFILE=quick ;;
        --smoke) PROFILE=smoke ;;
        --reps) REPS=$2; shift ;;
        --duration) DUR=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --skip) SKIP=",$2,"; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# Sizes per profile. MEM_JOBS/IDLE_CONNS are the footprint tests.
case $PROFILE in
    full)  : "${REPS:=5}" "${DUR:=1}"  ; MEM_JOBS=1000000; IDLE_CONNS=10000; DRAIN_N=100000; DRAIN_DURABLE_N=5000; PREFILL_S=3; FLOOR_N=40000 ;;
    quick) : "${REPS:=2}" "${DUR:=1}";   MEM_JOBS=200000;  IDLE_CONNS=2000;  DRAIN_N=50000;  DRAIN_DURABLE_N=2000; PREFILL_S=2; FLOOR_N=20000 ;;
    smoke) : "${REPS:=1}" "${DUR:=0.3}"; MEM_JOBS=5000;    IDLE_CONNS=100;   DRAIN_N=2000;   DRAIN_DURABLE_N=200;  PREFILL_S=1; FLOOR_N=2000
           [ "$SKIP" = "," ] && SKIP=",sqlite,sqlite-normal,postgres,mysql,redis,libgearman," ;;
esac
# Every load is cut at $DUR seconds; N only has to be larger than that.
BIG_N=10000000

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
BIN=$CARGO_TARGET_DIR/release
GEARMAND=${GEARMAND:-/usr/sbin/gearmand}
: "${PGHOST:=127.0.0.1}" "${PGPORT:=5432}" "${PGUSER:=postgres}" "${PGDATABASE:=test}"
: "${MYSQL_HOST:=127.0.0.1}" "${MYSQL_PORT:=3306}" "${MYSQL_USER:=root}" "${MYSQL_DB:=test}"
: "${REDIS_HOST:=127.0.0.1}" "${REDIS_PORT:=6379}"
export PGHOST PGPORT PGUSER PGDATABASE

OUT=${OUT:-$REPO/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
LOG=$OUT/servers.log
: >"$RESULTS"
: >"$LOG"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sprocket-compare.XXXXXX")
TAG="b$$"          # private table names / key prefixes of this run
SERVER_PID=""
SERVER_PORT=""
BENCH_PID=""
FLOOR_PID=""
STARTED=$(date +%s)

log() { printf '[%4ss] %s\n' "$(($(date +%s) - STARTED))" "$*" >&2; }
skipped() { case $SKIP in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# --- cleanup, even on error or Ctrl-C -------------------------------------
drop_stores() {
    if command -v psql >/dev/null; then
        for t in $(psql -Atc "SELECT tablename FROM pg_tables WHERE tablename LIKE '${TAG}\_%'" 2>/dev/null || true); do
            psql -qc "DROP TABLE IF EXISTS \"$t\"" >/dev/null 2>&1 || true
        done
    fi
    if command -v mysql >/dev/null; then
        for t in $(mysql -h"$MYSQL_HOST" -P"$MYSQL_PORT" -u"$MYSQL_USER" "$MYSQL_DB" -Nse "SHOW TABLES LIKE '${TAG}\_%'" 2>/dev/null || true); do
            mysql -h"$MYSQL_HOST" -P"$MYSQL_PORT" -u"$MYSQL_USER" "$MYSQL_DB" -e "DROP TABLE IF EXISTS \`$t\`" >/dev/null 2>&1 || true
        done
    fi
    if command -v redis-cli >/dev/null; then
        { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "${TAG}_*"
          redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "sprocket-side:${TAG}_*"; } 2>/dev/null |
            xargs -r -n 500 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" DEL >/dev/null 2>&1 || true
    fi
}
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
# bench ARGS... > out: runs the load generator in the background and waits,
# so that Ctrl-C / TERM reach the trap at once instead of after the run.
bench() {
    local limit=$1; shift
    timeout "$limit" "${BENCH[@]}" "$@" &
    BENCH_PID=$!
    local rc=0
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    return $rc
}
cleanup() {
    [ -n "$BENCH_PID" ] && { kill "$BENCH_PID" 2>/dev/null || true; wait "$BENCH_PID" 2>/dev/null || true; }
    stop_server
    [ -n "$FLOOR_PID" ] && { kill "$FLOOR_PID" 2>/dev/null || true; wait "$FLOOR_PID" 2>/dev/null || true; }
    drop_stores
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -----------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    log "building sprocketd and the load generator (release) in $CARGO_TARGET_DIR"
    (cd "$REPO" && cargo build --release -q -p sprocket-server -p sprocket-bench)
fi
[ -x "$BIN/sprocketd" ] || { echo "compare.sh: $BIN/sprocketd not built" >&2; exit 1; }
[ -x "$GEARMAND" ] || { echo "compare.sh: gearmand not found at $GEARMAND" >&2; exit 1; }
if [ -x "$BIN/sprocket" ] && "$BIN/sprocket" bench --help >/dev/null 2>&1; then
    BENCH=("$BIN/sprocket" bench)
else
    BENCH=("$BIN/sprocket-bench")
fi
log "load generator: ${BENCH[*]}"
# The libgearman load generator, built here from bench/libgearman-load.c
# when Debian's libgearman-dev is installed; its rows are left out otherwise.
LGLOAD=""
if ! skipped libgearman; then
    if [ -f /usr/include/libgearman/gearman.h ] && command -v cc >/dev/null &&
        cc -O2 -o "$WORK/libgearman-load" "$REPO/bench/libgearman-load.c" -lgearman -lpthread 2>"$WORK/cc.err"; then
        LGLOAD=$WORK/libgearman-load
    else
        log "libgearman load generator not built (apt-get install libgearman-dev): its rows are skipped"
    fi
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
meta() { jq -nc --arg k "$1" --arg v "$2" '{kind:"meta",key:$k,value:$v}' >>"$RESULTS"; }
meta profile "$PROFILE, $REPS repetitions, ${DUR}s per run"
meta machine "$(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
meta cpu "$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
meta gearmand "$("$GEARMAND" --version 2>/dev/null | tr -d '\n')"
meta sprocket "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
meta load_generator "${BENCH[*]}${LGLOAD:+; rows marked (libgearman): bench/libgearman-load.c on $(dpkg-query -W -f='libgearman ${Version}' libgearman8 2>/dev/null || echo libgearman)}"
meta load_before "$(cut -d' ' -f1-3 /proc/loadavg)"

# --- servers ----------------------------------------------------------------
# start_server NAME STORE RUN: sets SERVER_PID and SERVER_PORT, or returns 1.
start_server() {
    local name=$1 store=$2 run=$3 port args
    shift 3
    port=$(free_port)
    local table="${TAG}_${run}"
    case $name in
        sprocketd) args=("$BIN/sprocketd" --port "$port" --listen 127.0.0.1 --log-file stderr -f 20000) ;;
        gearmand) args=("$GEARMAND" --port "$port" --listen 127.0.0.1 --log-file stderr -f 20000
                         --pid-file "$WORK/gearmand-$port.pid") ;;
    esac
    case $name/$store in
        sprocketd/memory) args+=(-q builtin) ;;
        gearmand/memory) ;;
        # Sprocket's default: durable SQLite in its data directory.
        sprocketd/sqlite) args+=(--data-dir "$WORK/data-$run") ;;
        gearmand/sqlite|gearmand/sqlite-normal)
            args+=(-q libsqlite3 --libsqlite3-db "$WORK/$table.db" --libsqlite3-table gearman_queue) ;;
        # The same store, fsync left to the OS (survives kill -9, not power loss).
        sprocketd/sqlite-normal) args+=(--data-dir "$WORK/data-$run" --sync=normal) ;;
        sprocketd/postgres) args+=(-q postgres --libpq-conninfo "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE" --libpq-table "$table") ;;
        gearmand/postgres) args+=(-q Postgres --libpq-conninfo "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE" --libpq-table "$table") ;;
        */mysql) args+=(-q MySQL --mysql-host "$MYSQL_HOST" --mysql-port "$MYSQL_PORT" --mysql-user "$MYSQL_USER"
                         --mysql-db "$MYSQL_DB" --mysql-table "$table") ;;
        */redis) args+=(-q redis --redis-server "$REDIS_HOST" --redis-port "$REDIS_PORT" --redis-prefix "${table}_") ;;
    esac
    args+=("$@")
    echo "=== $(date -u +%T) ${args[*]}" >>"$LOG"
    "${args[@]}" >>"$LOG" 2>&1 &
    SERVER_PID=$!
    SERVER_PORT=$port
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; return 1; }
        sleep 0.1
    done
    stop_server
    return 1
}
vmhwm() { awk '/VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo null; }

# run_load ARGS...: one load against the server just started, one JSON
# report on stdout; by the generator LOADGEN names (sprocket: `sprocket
# bench`; libgearman: bench/libgearman-load.c, Debian's C client library).
LOADGEN=sprocket
run_load() {
    case $LOADGEN in
        sprocket) bench 120 "$@" --server "127.0.0.1:$SERVER_PORT" --json -q ;;
        libgearman)
            local saved=("${BENCH[@]}") rc=0
            BENCH=("$LGLOAD")
            bench 120 -h 127.0.0.1 -p "$SERVER_PORT" -j "$@" || rc=$?
            BENCH=("${saved[@]}")
            return $rc ;;
    esac
}

# row GROUP LOAD SERIES -- LOAD-ARGS...: REPS x (sprocketd, gearmand).
RUN=0
FOOTPRINT_FLAGS=()
row() {
    local group=$1 load=$2 series=$3; shift 4
    local store=${group%% *}
    skipped "$store" && return 0
    [ "$LOADGEN" = libgearman ] && skipped libgearman && return 0
    local rep server out err
    for rep in $(seq "$REPS"); do
        for server in sprocketd gearmand; do
            RUN=$((RUN + 1))
            if ! start_server "$server" "$store" "$RUN"; then
                err="$server did not start with the $store store (see servers.log)"
                log "$group / $load / $server: $err"
                jq -nc --arg g "$group" --arg l "$load" --arg s "$server" --arg se "$series" --argjson r "$rep" \
                    --arg e "$err" '{kind:"run",group:$g,load:$l,series:(if $se=="" then null else $se end),server:$s,rep:$r,error:$e}' >>"$RESULTS"
                drop_stores
                continue
            fi
            if run_load "$@" >"$WORK/bench.out" 2>"$WORK/bench.err"; then
                out=$(cat "$WORK/bench.out")
                jq -nc --arg g "$group" --arg l "$load" --arg s "$server" --arg se "$series" --argjson r "$rep" \
                    --argjson rep_json "$out" '{kind:"run",group:$g,load:$l,series:(if $se=="" then null else $se end),server:$s,rep:$r,report:$rep_json}' >>"$RESULTS"
                log "$group / $load / $server #$rep: $(jq -r '"\(.throughput|floor) jobs/s, errors \(.errors)"' <<<"$out")"
            else
                err=$(tail -n 3 "$WORK/bench.err" | tr '\n' ' ')
                log "$group / $load / $server #$rep: FAILED: $err"
                jq -nc --arg g "$group" --arg l "$load" --arg s "$server" --arg se "$series" --argjson r "$rep" \
                    --arg e "bench failed: $err" '{kind:"run",group:$g,load:$l,series:(if $se=="" then null else $se end),server:$s,rep:$r,error:$e}' >>"$RESULTS"
            fi
            stop_server
            rm -rf "$WORK/data-$RUN" "$WORK/${TAG}_$RUN.db"*
        done
        drop_stores
    done
}

# --- throughput rows -------------------------------------------------------
# Uniques on every job, as libgearman sends for background jobs (and as the
# SQL queues need: they key rows on (unique, function)).
common=(-s 100 -u -d "$DUR" -n "$BIG_N")
skipped memory || log "in-memory queue: submit-bg, roundtrip, drain, mixed"
for c in 1 16 64 256; do
    row memory "submit-bg c=$c window=1" submit-bg -- submit-bg -c "$c" --window 1 "${common[@]}"
done
row memory "submit-bg c=4 window=16 (pipelined)" "" -- submit-bg -c 4 --window 16 "${common[@]}"
for c in 1 8 16 256; do
    row memory "roundtrip c=$c w=4" roundtrip -- roundtrip -c "$c" -w 4 "${common[@]}"
done
row memory "drain w=4 ($DRAIN_N queued)" "" -- drain -c 4 --window 16 -w 4 -s 100 -u -d "$DUR" -n "$DRAIN_N"
row memory "mixed c=8 w=4" "" -- mixed -c 8 -w 4 --window 4 "${common[@]}"

for store in sqlite sqlite-normal postgres mysql redis; do
    skipped "$store" && continue
    log "$store queue: submit-bg at 4 and 64 connections, drain, mixed"
    for c in 4 64; do
        row "$store" "submit-bg c=$c window=1" "" -- submit-bg -c "$c" --window 1 "${common[@]}"
    done
    # Pre-filling is cut at PREFILL_S: gearmand's SQL queues take one
    # synchronous commit per job, so each server drains what it queued by then.
    row "$store" "drain w=4 (up to $DRAIN_DURABLE_N queued in ${PREFILL_S}s)" "" -- drain -c 16 --window 1 -w 4 -s 100 -u \
        -d "$DUR" -n "$DRAIN_DURABLE_N" --prefill-duration "$PREFILL_S"
    # Pipelining background submitters beside quick workers: jobs finish
    # while their inserts wait for a commit.
    row "$store" "mixed c=8 w=4" "" -- mixed -c 8 -w 4 --window 4 "${common[@]}"
done

# --- the same submits through libgearman ------------------------------------
# The issue's own figures were taken with a C load generator on libgearman,
# which costs the machine more per job than `sprocket bench`: on two cores
# whatever the generator uses is taken from the server, so each generator's
# durable/in-memory ratio is reported against its own in-memory row.
if [ -n "$LGLOAD" ]; then
    LOADGEN=libgearman
    skipped libgearman || log "through libgearman: submit-bg at 4 and 64 connections"
    for store in memory sqlite sqlite-normal; do
        for c in 4 64; do
            row "$store (libgearman)" "submit-bg c=$c window=1" "" -- -c "$c" -d "$DUR" -s 100
        done
    done
    LOADGEN=sprocket
fi

# --- footprint: VmHWM with many queued jobs, with many idle connections ----
# FOOTPRINT_SERVERS lists the server/store pairs measured.
FOOTPRINT_SERVERS=(sprocketd/memory gearmand/memory)
footprint() {
    local what=$1 count=$2; shift 2
    local pair server store base peak
    for pair in "${FOOTPRINT_SERVERS[@]}"; do
        server=${pair%/*} store=${pair#*/}
        RUN=$((RUN + 1))
        if ! start_server "$server" "$store" "$RUN" "${FOOTPRINT_FLAGS[@]}"; then
            log "footprint $what: $server did not start"
            continue
        fi
        base=$(vmhwm "$SERVER_PID")
        if bench 300 "$@" --server "127.0.0.1:$SERVER_PORT" --json -q >"$WORK/fp.json" 2>"$WORK/bench.err"; then
            peak=$(vmhwm "$SERVER_PID")
        else
            log "footprint $what / $server: FAILED: $(tail -n 2 "$WORK/bench.err" | tr '\n' ' ')"
            peak=null
        fi
        jq -nc --arg w "$what" --arg s "$server" --argjson p "$peak" --argjson b "$base" --argjson n "$count" \
            '{kind:"memory",what:$w,server:$s,vmhwm_kb:$p,baseline_kb:$b,count:$n}' >>"$RESULTS"
        log "footprint $what / $server: VmHWM ${peak} kB (at start ${base} kB)"
        stop_server
    done
}
if ! skipped footprint; then
    # gearmand's unique-id hash table has 991 buckets by default, which makes
    # a million submits with uniques take minutes; both servers get a larger
    # table (sprocketd accepts the flag and sizes its maps itself).
    FOOTPRINT_FLAGS=(--hashtable-buckets 1048573)
    footprint "$MEM_JOBS queued 100-byte background jobs" "$MEM_JOBS" \
        submit-bg -c 4 --window 16 -s 100 -u -n "$MEM_JOBS"
    # What users get out of the box: Sprocket's durable SQLite default
    # against gearmand's default (in memory, measured just above).
    FOOTPRINT_SERVERS=(sprocketd/sqlite)
    defaults="$MEM_JOBS queued 100-byte background jobs, each server's default queue"
    footprint "$defaults" "$MEM_JOBS" submit-bg -c 4 --window 16 -s 100 -u -n "$MEM_JOBS"
    jq -c --arg w "$defaults" --arg m "$MEM_JOBS queued 100-byte background jobs" \
        'select(.kind=="memory" and .server=="gearmand" and .what==$m) | .what=$w' "$RESULTS" >"$WORK/defaults.jsonl"
    cat "$WORK/defaults.jsonl" >>"$RESULTS"
    FOOTPRINT_SERVERS=(sprocketd/memory gearmand/memory)
    FOOTPRINT_FLAGS=()
    footprint "$IDLE_CONNS idle connections" "$IDLE_CONNS" idle -c "$IDLE_CONNS" -d 1
fi

# --- cost floor: redis-benchmark on a private redis-server ------------------
if ! skipped floor && command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
    log "cost floor: redis-benchmark PING and LPUSH"
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >>"$LOG" 2>&1 &
    FLOOR_PID=$!
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    for rep in $(seq "$REPS"); do
        for c in 1 8 16 64 256; do
            n=$FLOOR_N; [ "$c" = 1 ] && n=$((FLOOR_N / 4))
            redis-benchmark -h 127.0.0.1 -p "$port" -c "$c" -n "$n" -t ping_mbulk,lpush --csv 2>/dev/null |
                tr -d '"' | awk -F, -v c="$c" -v r="$rep" '$1=="PING_MBULK" || $1=="LPUSH" {
                    printf "{\"kind\":\"floor\",\"test\":\"%s\",\"connections\":%d,\"rep\":%d,\"rps\":%s}\n", $1, c, r, $2 }' >>"$RESULTS"
        done
    done
    kill "$FLOOR_PID" 2>/dev/null || true; wait "$FLOOR_PID" 2>/dev/null || true; FLOOR_PID=""
fi

meta load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
meta elapsed_s "$(($(date +%s) - STARTED))"
log "done in $(($(date +%s) - STARTED)) s; results in $OUT"
"$BIN/bench-chart" "$RESULTS" --png "$OUT/chart.png" --markdown "$OUT/summary.md"
