#!/usr/bin/env bash
# bench/policies.sh — what retry policies cost, in one run:
#  1. a policy on every function (`policy set '*' …`) against none, A B A B:
#     foreground round trips (16 clients, 4 workers) and background submits
#     (64 connections), on the in-memory queue and on the default SQLite
#     store;
#  2. 100,000 jobs waiting in their backoff (failed once, retried in an hour)
#     against none: background submits of another function beside them, and
#     the time a restart takes to replay them (against 100,000 plain queued
#     jobs).
#
# Usage: bench/policies.sh [--reps N] [--duration S] [--parked N] [--out DIR]
#                          [--no-build] [--skip throughput,backoff]
# Environment: CARGO_TARGET_DIR (default <repo>/target).
# Prints medians and ratios; writes results.jsonl.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
REPS=2
DUR=3
PARKED=100000
OUT=""
BUILD=1
SKIP=","
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=$2; shift ;;
        --duration) DUR=$2; shift ;;
        --parked) PARKED=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --skip) SKIP=",$2,"; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "policies.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
skipped() { [[ "$SKIP" == *",$1,"* ]]; }

BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
OUT=${OUT:-$REPO/bench/results/policies-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d)
SERVER_PID=""
POLICY='{"max_attempts": 5, "backoff": {"kind": "exponential", "base": "1s", "max": "10m"}, "timeout": "10m", "dead_letter": true}'

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -9 "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$BUILD" = 1 ]; then
    log "building sprocketd and sprocket (release)"
    (cd "$REPO" && cargo build --release -q -p sprocket-server -p sprocket-cli)
fi


# start_server STORE DATA_DIR: sprocketd on a free port ($PORT), waiting until it answers.
start_server() {
    local store=$1 data=$2
    PORT=$(free_port)
    local args=(-p "$PORT" --listen 127.0.0.1 --web-listen=none)
    if [ "$store" = memory ]; then args+=(-q builtin); else args+=(--data-dir "$data"); fi
    "$BIN/sprocketd" "${args[@]}" 2>>"$OUT/server.err" &
    SERVER_PID=$!
    wait_answering
}

wait_answering() {
    for _ in $(seq 1 3000); do
        if "$BIN/sprocket" admin -s "127.0.0.1:$PORT" status >/dev/null 2>&1; then return 0; fi
        sleep 0.01
    done
    echo "sprocketd did not start" >&2
    exit 1
}


now_ms() { date +%s%3N; }

bench_row() { # bench_row LABEL-JSON ARGS...: one sprocket bench run appended to results
    local label=$1; shift
    local out
    if out=$("$BIN/sprocket" bench "$@" --server "127.0.0.1:$PORT" --json -q 2>>"$OUT/bench.err"); then
        jq -nc --argjson l "$label" --argjson o "$out" '$l + {throughput: $o.throughput}' >>"$RESULTS"
        log "$(jq -c . <<<"$label"): $(jq -r '.throughput|floor' <<<"$out") jobs/s"
    else
        log "$(jq -c . <<<"$label"): FAILED (see bench.err)"
    fi
}

if ! skipped throughput; then
    for rep in $(seq 1 "$REPS"); do
        for store in memory sqlite; do
            for policy in off on; do
                rm -rf "$WORK/data"; mkdir -p "$WORK/data"
                start_server "$store" "$WORK/data"
                if [ "$policy" = on ]; then
                    "$BIN/sprocket" policy set '*' "$POLICY" -s "127.0.0.1:$PORT"
                fi
                label=$(jq -nc --arg s "$store" --arg p "$policy" --argjson r "$rep" '{part: "throughput", store: $s, policy: $p, rep: $r}')
                bench_row "$(jq -c '. + {load: "roundtrip c=16"}' <<<"$label")" roundtrip -c 16 -w 4 -d "$DUR" -n 100000000
                bench_row "$(jq -c '. + {load: "submit-bg c=64"}' <<<"$label")" submit-bg -c 64 -d "$DUR" -n 100000000
                stop_server
            done
        done
    done
fi

if ! skipped backoff; then
    for rep in $(seq 1 "$REPS"); do
        for parked in none waiting; do
            rm -rf "$WORK/data"; mkdir -p "$WORK/data"
            start_server sqlite "$WORK/data"
            "$BIN/sprocket" policy set 'parked*' '{"max_attempts": 2, "backoff": {"kind": "fixed", "delay": "1h"}}' \
                -s "127.0.0.1:$PORT"
            "$BIN/sprocket" bench submit-bg -c 16 -n "$PARKED" --function parked --server "127.0.0.1:$PORT" -q >/dev/null
            if [ "$parked" = waiting ]; then
                fn=$("$BIN/sprocket" admin -s "127.0.0.1:$PORT" status | awk '$1 ~ /^parked/ {print $1; exit}')
                failed=$(python3 "$REPO/bench/fail_worker.py" 127.0.0.1 "$PORT" "$fn")
                log "$failed jobs failed once and wait an hour for their retry"
            fi
            label=$(jq -nc --arg p "$parked" --argjson r "$rep" --argjson n "$PARKED" '{part: "backoff", parked: $p, jobs: $n, rep: $r}')
            bench_row "$(jq -c '. + {load: "submit-bg c=64 (another function)"}' <<<"$label")" submit-bg -c 64 -d "$DUR" -n 100000000 --function other
            # Replay: the store now holds the parked jobs plus what the load
            # submitted; time a restart until the server answers.
            rows=$(sqlite3 "$WORK/data"/sprocket-*.db "SELECT COUNT(*) FROM gearman_queue" 2>/dev/null || echo "?")
            stop_server
            start=$(now_ms)
            start_server sqlite "$WORK/data"
            took=$(( $(now_ms) - start ))
            jq -nc --argjson l "$label" --argjson ms "$took" --arg rows "$rows" '$l + {load: "restart and replay", replay_ms: $ms, rows: $rows}' >>"$RESULTS"
            log "restart with $rows rows ($parked parked): $took ms"
            stop_server
        done
    done
fi

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(sel, key="throughput"):
    vals = [r[key] for r in rows if all(r.get(k) == v for k, v in sel.items()) and key in r]
    return statistics.median(vals) if vals else None
print("\nA policy on every function against none (medians, jobs/s):")
print(f"{'store':8} {'load':18} {'off':>10} {'on':>10} {'on/off':>7}")
for store in ("memory", "sqlite"):
    for load in ("roundtrip c=16", "submit-bg c=64"):
        off = med({"part": "throughput", "store": store, "load": load, "policy": "off"})
        on = med({"part": "throughput", "store": store, "load": load, "policy": "on"})
        if off and on:
            print(f"{store:8} {load:18} {off:10.0f} {on:10.0f} {on/off:7.2f}")
print("\n100,000 jobs waiting in backoff against none (SQLite, medians):")
load = "submit-bg c=64 (another function)"
none = med({"part": "backoff", "parked": "none", "load": load})
wait = med({"part": "backoff", "parked": "waiting", "load": load})
if none and wait:
    print(f"submit-bg c=64 beside them: {none:.0f} vs {wait:.0f} jobs/s ({wait/none:.2f})")
rnone = med({"part": "backoff", "parked": "none", "load": "restart and replay"}, "replay_ms")
rwait = med({"part": "backoff", "parked": "waiting", "load": "restart and replay"}, "replay_ms")
if rnone and rwait:
    print(f"restart and replay: {rnone:.0f} ms (queued) vs {rwait:.0f} ms (waiting in backoff)")
PY
