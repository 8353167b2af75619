#!/usr/bin/env bash
# bench/records.sh — what job records cost: the same loads against sprocketd
# with records on (the default, --records=background) and off
# (--records=none), alternating A B A B in one run, on the in-memory queue
# and on the durable SQLite and PostgreSQL queues; then how fast
# `sprocket.result` answers for ended jobs (16 readers, p99).
#
# Usage: bench/records.sh [--reps N] [--duration S] [--out DIR] [--no-build]
#                         [--skip memory,sqlite,postgres,result]
# Environment: CARGO_TARGET_DIR (default <repo>/target), PGHOST/PGPORT/PGUSER/
# PGDATABASE (127.0.0.1/5432/postgres/test).
# Prints a table of medians and on/off ratios; writes results.jsonl.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
REPS=3
DUR=2
OUT=""
BUILD=1
SKIP=","
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=$2; shift ;;
        --duration) DUR=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --skip) SKIP=",$2,"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "records.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
skipped() { [[ "$SKIP" == *",$1,"* ]]; }

BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
OUT=${OUT:-$REPO/bench/results/records-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d)
PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGDATABASE=${PGDATABASE:-test}
TABLE="records_bench_$$"
SERVER_PID=""


if [ "$BUILD" = 1 ]; then
    log "building sprocketd and sprocket (release)"
    (cd "$REPO" && cargo build --release -q -p sprocket-server -p sprocket-cli)
fi


drop_pg() {
    psql -q -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" -c \
        "DROP TABLE IF EXISTS $TABLE; DELETE FROM sprocket_records WHERE namespace = '$TABLE'; \
         DELETE FROM sprocket_handles WHERE namespace = '$TABLE'; DELETE FROM sprocket_meta WHERE queue_table = '$TABLE';" \
        >/dev/null 2>&1 || true
}

cleanup() { stop_server; drop_pg; rm -rf "$WORK"; }
trap cleanup EXIT

# start_server STORE RECORDS: a fresh server on a fresh store.
start_server() {
    local store=$1 records=$2
    PORT=$(free_port)
    rm -rf "$WORK/data"; mkdir -p "$WORK/data"
    local args=(-p "$PORT" --web-listen none --records "$records")
    case $store in
        memory) args+=(-q builtin) ;;
        sqlite) args+=(--data-dir "$WORK/data") ;;
        postgres) drop_pg; args+=(-q postgres --libpq-conninfo "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE" --libpq-table "$TABLE") ;;
    esac
    "$BIN/sprocketd" "${args[@]}" >>"$OUT/servers.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    log "sprocketd did not start ($store, --records=$records)"
    return 1
}

# row STORE LOAD -- ARGS: REPS x (records on, records off).
row() {
    local store=$1 load=$2; shift 3
    skipped "$store" && return 0
    local rep records out
    for rep in $(seq "$REPS"); do
        for records in background none; do
            start_server "$store" "$records" || continue
            if out=$("$BIN/sprocket" bench "$@" --server "127.0.0.1:$PORT" --json -q 2>>"$OUT/bench.err"); then
                jq -nc --arg st "$store" --arg l "$load" --arg rc "$records" --argjson r "$rep" --argjson o "$out" \
                    '{store:$st,load:$l,records:$rc,rep:$r,throughput:$o.throughput,latency:$o.latency}' >>"$RESULTS"
                log "$store / $load / records=$records #$rep: $(jq -r '.throughput|floor' <<<"$out") jobs/s"
            else
                log "$store / $load / records=$records #$rep: FAILED (see bench.err)"
            fi
            stop_server
        done
    done
}

common=(-s 100 -u -d "$DUR" -n 10000000)
for store in memory sqlite postgres; do
    row "$store" "submit-bg c=64" -- submit-bg -c 64 --window 1 "${common[@]}"
    row "$store" "mixed c=64 w=4" -- mixed -c 64 -w 4 --window 1 "${common[@]}"
done
row memory "drain w=4 (50000 queued)" -- drain -c 4 --window 16 -w 4 -s 100 -u -d "$DUR" -n 50000
row sqlite "drain w=4 (up to 5000 queued in 3s)" -- drain -c 16 --window 1 -w 4 -s 100 -u -d "$DUR" -n 5000 --prefill-duration 3

# sprocket.result on ended jobs: 16 readers over 1000 ended jobs, records on.
if ! skipped result; then
    for store in memory sqlite postgres; do
        skipped "$store" && continue
        for rep in $(seq "$REPS"); do
            start_server "$store" background || continue
            if out=$("$BIN/sprocket" bench result-read -c 16 -w 4 --prefill 1000 -s 100 -d "$DUR" -n 10000000 \
                    --server "127.0.0.1:$PORT" --json -q 2>>"$OUT/bench.err"); then
                jq -nc --arg st "$store" --argjson r "$rep" --argjson o "$out" \
                    '{store:$st,load:"sprocket.result c=16",records:"background",rep:$r,throughput:$o.throughput,latency:$o.latency}' >>"$RESULTS"
                log "$store / sprocket.result c=16 #$rep: $(jq -r '"\(.throughput|floor) reads/s, p99 \(.latency.p99_us) us"' <<<"$out")"
            fi
            stop_server
        done
    done
fi

python3 - "$RESULTS" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["store"], r["load"]), {}).setdefault(r["records"], []).append(r)
print("| Store | Load | Records on (jobs/s) | Records off (jobs/s) | On / off | p99 on (µs) |")
print("|---|---|---|---|---|---|")
for (store, load), by in groups.items():
    on = by.get("background", []); off = by.get("none", [])
    med = lambda rs: statistics.median(r["throughput"] for r in rs) if rs else None
    p99 = [r["latency"].get("p99_us") for r in on if r.get("latency")]
    mon, moff = med(on), med(off)
    ratio = f"{mon / moff:.0%}" if mon and moff else "—"
    fmt = lambda v: f"{v:,.0f}" if v else "—"
    print(f"| {store} | {load} | {fmt(mon)} | {fmt(moff)} | {ratio} | {fmt(statistics.median(p99)) if p99 else '—'} |")
PY
