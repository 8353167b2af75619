#!/usr/bin/env bash
# bench/onoff.sh — what one server setting costs: the same loads against a
# fresh sprocketd started with the "on" flags and with the "off" flags,
# alternating on, off, on, off in one run, on the in-memory queue and on
# the durable SQLite queue. For settings that are on by default (such as
# the history) "on" is the default and "off" the flag that turns it off.
#
# Usage: bench/onoff.sh --name NAME [--on "FLAGS"] [--off "FLAGS"]
#                       [--reps N] [--duration S] [--out DIR] [--no-build]
#                       [--skip memory,sqlite]
#   bench/onoff.sh --name history --off --no-history
# Environment: CARGO_TARGET_DIR (default <repo>/target).
# Prints a Markdown table of medians and on/off ratios; writes results.jsonl.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
NAME=""
ON=""
OFF=""
REPS=5
DUR=3
OUT=""
BUILD=1
SKIP=","
while [ $# -gt 0 ]; do
    case "$1" in
        --name) NAME=$2; shift ;;
        --on) ON=$2; shift ;;
        --off) OFF=$2; shift ;;
        --reps) REPS=$2; shift ;;
        --duration) DUR=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --skip) SKIP=",$2,"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "onoff.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$NAME" ] || [ "$ON" = "$OFF" ]; then
    echo "onoff.sh: give --name and --on/--off flags that differ (try --help)" >&2
    exit 2
fi
skipped() { [[ "$SKIP" == *",$1,"* ]]; }

BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
OUT=${OUT:-$REPO/bench/results/onoff-$NAME-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d)
SERVER_PID=""


if [ "$BUILD" = 1 ]; then
    log "building sprocketd and sprocket (release)"
    (cd "$REPO" && cargo build --release -q -p sprocket-server -p sprocket-cli)
fi


cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT

# start_server STORE on|off: a fresh server on a fresh store.
start_server() {
    local store=$1 side=$2 flags
    PORT=$(free_port)
    rm -rf "$WORK/data"; mkdir -p "$WORK/data"
    if [ "$side" = on ]; then flags=$ON; else flags=$OFF; fi
    # The flags are words split at spaces, as typed on a command line.
    # shellcheck disable=SC2206
    local args=(-p "$PORT" --web-listen none --data-dir "$WORK/data" $flags)
    [ "$store" = memory ] && args+=(-q builtin)
    "$BIN/sprocketd" "${args[@]}" >>"$OUT/servers.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    log "sprocketd did not start ($store, $side: $flags)"
    return 1
}

# row STORE LOAD -- ARGS: REPS x (on, off).
row() {
    local store=$1 load=$2; shift 3
    skipped "$store" && return 0
    local rep side out
    for rep in $(seq "$REPS"); do
        for side in on off; do
            start_server "$store" "$side" || continue
            if out=$("$BIN/sprocket" bench "$@" --server "127.0.0.1:$PORT" --json -q 2>>"$OUT/bench.err"); then
                jq -nc --arg st "$store" --arg l "$load" --arg sd "$side" --argjson r "$rep" --argjson o "$out" \
                    '{store:$st,load:$l,side:$sd,rep:$r,throughput:$o.throughput,latency:$o.latency}' >>"$RESULTS"
                log "$store / $load / $side #$rep: $(jq -r '.throughput|floor' <<<"$out") jobs/s"
            else
                log "$store / $load / $side #$rep: FAILED (see bench.err)"
            fi
            stop_server
        done
    done
}

common=(-s 100 -u -d "$DUR" -n 100000000)
for store in memory sqlite; do
    row "$store" "roundtrip c=16 w=4" -- roundtrip -c 16 -w 4 "${common[@]}"
    row "$store" "submit-bg c=64" -- submit-bg -c 64 "${common[@]}"
    row "$store" "mixed c=64 w=4" -- mixed -c 64 -w 4 "${common[@]}"
done

python3 - "$RESULTS" "$NAME" "$ON" "$OFF" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
path, name, on_flags, off_flags = sys.argv[1:5]
rows = [json.loads(l) for l in open(path) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["store"], r["load"]), {}).setdefault(r["side"], []).append(r["throughput"])
label = lambda flags: f"`{flags}`" if flags else "default"
print(f"{name}: on = {label(on_flags)}, off = {label(off_flags)}; medians, jobs/s (min–max)\n")
print("| Store | Load | On | Off | On / off |")
print("|---|---|---|---|---|")
fmt = lambda v: f"{v:,.0f}"
for (store, load), by in groups.items():
    on, off = by.get("on", []), by.get("off", [])
    cell = lambda xs: f"{fmt(statistics.median(xs))} ({fmt(min(xs))}–{fmt(max(xs))})" if xs else "—"
    ratio = f"**{statistics.median(on) / statistics.median(off):.2f}**" if on and off else "—"
    print(f"| {store} | {load} | {cell(on)} | {cell(off)} | {ratio} |")
PY
