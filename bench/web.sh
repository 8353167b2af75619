#!/usr/bin/env bash
# bench/web.sh — what the web port costs the Gearman port while people and
# Prometheus look at it, in one run (issue 20's performance rows):
#  1. quiet against watched, A B C A B C: a fresh sprocketd (web port on, in
#     both) loaded with foreground round trips (16 clients, 4 workers) and
#     background submits (64 connections); in the watched runs a real
#     headless Chromium has the dashboard open, its live stream running
#     (bench/web_watch.py, selenium with Debian's chromium and
#     chromium-driver), and curl scrapes /metrics every second. A watched
#     run counts only if the page received the stream's snapshots and they
#     showed the load, and every scrape answered 200. The CPU time of the
#     server's web thread, the whole server and the browser during the
#     loads is recorded too (bench/cpu_times.py). A third kind of run,
#     "stream", does the server's side of watching without a browser on
#     these two cores: curl holds the dashboard's live stream and another
#     curl scrapes /metrics every second;
#  2. /metrics with 10,000 functions (bench/many_functions.py: each has a
#     worker and a queued job; then also ended jobs, so per-function
#     histograms too): 20 scrapes timed with curl, median and max, the
#     page's size and series; checked with promtool when it is installed.
#
# Usage: bench/web.sh [--reps N] [--duration S] [--functions N] [--scrapes N]
#                     [--store memory|sqlite] [--out DIR] [--no-build]
#                     [--skip watched,metrics] [--quick]
# --quick: 1 repetition of 1 s runs, 1,000 functions, 5 scrapes (checks the
# script end to end in about a minute; the figures mean nothing).
# Environment: CARGO_TARGET_DIR (default <repo>/target).
# Prints medians and ratios (a Markdown table to paste); writes results.jsonl.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
REPS=5
DUR=5
FUNCTIONS=10000
SCRAPES=20
STORE=memory
OUT=""
BUILD=1
SKIP=","
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=$2; shift ;;
        --duration) DUR=$2; shift ;;
        --functions) FUNCTIONS=$2; shift ;;
        --scrapes) SCRAPES=$2; shift ;;
        --store) STORE=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --skip) SKIP=",$2,"; shift ;;
        --quick) REPS=1; DUR=1; FUNCTIONS=1000; SCRAPES=5 ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "web.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
skipped() { [[ "$SKIP" == *",$1,"* ]]; }
case "$STORE" in memory|sqlite) ;; *) echo "web.sh: --store memory or sqlite" >&2; exit 2 ;; esac

BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
OUT=${OUT:-$REPO/bench/results/web-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d)
SERVER_PID="" WATCH_PID="" SCRAPER_PID="" HELPER_PID="" STREAM_PID=""
BAD_WATCHES=0

cleanup() {
    for pid in "$SCRAPER_PID" "$STREAM_PID" "$WATCH_PID" "$HELPER_PID" "$SERVER_PID"; do
        if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "web.sh: needs $1 ($2)" >&2; exit 1; }; }
need jq "apt install jq"
need curl "apt install curl"
need python3 "apt install python3"
if ! skipped watched; then
    need chromium "apt install chromium"
    need chromedriver "apt install chromium-driver"
    python3 -c 'import selenium' 2>/dev/null || { echo "web.sh: needs Python's selenium (pip install selenium)" >&2; exit 1; }
fi

if [ "$BUILD" = 1 ]; then
    log "building sprocketd and sprocket (release)"
    (cd "$REPO" && cargo build --release -q -p sprocket-server -p sprocket-cli)
fi


# start_server: sprocketd with its web port on $PORT and $WEB_PORT, waiting
# until both answer. The web port is on in quiet runs too: what is measured
# is people looking at it, not its being there (docs/http.md has that).
start_server() {
    PORT=$(free_port)
    WEB_PORT=$(free_port)
    local args=(-p "$PORT" --listen 127.0.0.1 --web-listen "127.0.0.1:$WEB_PORT")
    if [ "$STORE" = memory ]; then
        args+=(-q builtin)
    else
        rm -rf "$WORK/data"; mkdir -p "$WORK/data"
        args+=(--data-dir "$WORK/data")
    fi
    "$BIN/sprocketd" "${args[@]}" 2>>"$OUT/server.err" &
    SERVER_PID=$!
    for _ in $(seq 1 3000); do
        if "$BIN/sprocket" admin -s "127.0.0.1:$PORT" status >/dev/null 2>&1 &&
            curl -sf -o /dev/null "http://127.0.0.1:$WEB_PORT/metrics"; then
            return 0
        fi
        sleep 0.01
    done
    echo "sprocketd did not start (see $OUT/server.err)" >&2
    exit 1
}


# wait_line FILE PATTERN SECONDS PID: until FILE has a line matching PATTERN;
# fails early when PID (the process writing it) has ended.
wait_line() {
    local file=$1 pattern=$2 limit=$3 pid=$4
    for _ in $(seq 1 $((limit * 10))); do
        if grep -q "$pattern" "$file" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# The watchers: the dashboard in Chromium, with its stdin on descriptor 7
# (a line there ends it), and a curl scrape of /metrics every second.
start_watchers() {
    rm -f "$WORK/watch.in" "$WORK/watch.out"
    : >"$WORK/scrapes"
    mkfifo "$WORK/watch.in"
    SE_OFFLINE=true python3 "$REPO/bench/web_watch.py" --url "http://127.0.0.1:$WEB_PORT/" \
        <"$WORK/watch.in" >"$WORK/watch.out" 2>>"$OUT/watch.err" &
    WATCH_PID=$!
    exec 7>"$WORK/watch.in"
    if ! wait_line "$WORK/watch.out" '^LIVE' 60 "$WATCH_PID"; then
        log "the dashboard did not become live (see $OUT/watch.err)"
        return 1
    fi
    start_scraper
    # Let Chromium settle after loading the page before the load starts.
    sleep 1
}

# start_stream: the same server-side work without a browser on these two
# cores: curl holds the dashboard's live stream open and another scrapes
# /metrics every second.
start_stream() {
    : >"$WORK/scrapes"
    curl -sN "http://127.0.0.1:$WEB_PORT/api/v1/events" >"$WORK/stream" 2>/dev/null &
    STREAM_PID=$!
    start_scraper
    sleep 1
    STREAM_FROM=$(grep -c '^data:' "$WORK/stream" || true)
}

stop_stream() {
    stop_scraper
    kill "$STREAM_PID" 2>/dev/null || true
    wait "$STREAM_PID" 2>/dev/null || true
    STREAM_PID=""
    local events scrapes ok
    events=$(( $(grep -c '^data:' "$WORK/stream" || true) - STREAM_FROM ))
    scrapes=$(wc -l <"$WORK/scrapes")
    ok=$(awk '$1 == 200' "$WORK/scrapes" | wc -l || true)
    SEEN=$(jq -nc --argjson e "$events" --argjson n "$scrapes" --argjson ok "$ok" \
        '{events: $e, scrapes: $n, scrapes_ok: $ok}')
}

start_scraper() {
    (
        while :; do
            curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total} %{size_download}\n' \
                "http://127.0.0.1:$WEB_PORT/metrics" >>"$WORK/scrapes" || echo "000 0 0" >>"$WORK/scrapes"
            sleep 1
        done
    ) &
    SCRAPER_PID=$!
}

stop_scraper() {
    if [ -n "$SCRAPER_PID" ]; then kill "$SCRAPER_PID" 2>/dev/null || true; wait "$SCRAPER_PID" 2>/dev/null || true; fi
    SCRAPER_PID=""
}

# stop_watchers: ends both; SEEN is one JSON object with what they saw.
stop_watchers() {
    local seen='{"events": 0, "live": "gone"}'
    stop_scraper
    if [ -n "$WATCH_PID" ]; then
        # Only to a live watcher: writing to its pipe after it died would
        # end this script with SIGPIPE, before its clean-up.
        if kill -0 "$WATCH_PID" 2>/dev/null; then echo STOP >&7 || true; fi
        exec 7>&-
        if wait_line "$WORK/watch.out" '^{' 30 "$WATCH_PID" || grep -q '^{' "$WORK/watch.out"; then
            seen=$(grep '^{' "$WORK/watch.out" | tail -1)
        fi
        wait "$WATCH_PID" 2>/dev/null || true
    fi
    WATCH_PID=""
    local scrapes ok
    scrapes=$(wc -l <"$WORK/scrapes" 2>/dev/null || echo 0)
    ok=$(awk '$1 == 200' "$WORK/scrapes" 2>/dev/null | wc -l || true)
    SEEN=$(jq -c --argjson n "$scrapes" --argjson ok "$ok" '. + {scrapes: $n, scrapes_ok: $ok}' <<<"$seen")
}

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

if ! skipped watched; then
    for rep in $(seq 1 "$REPS"); do
        for mode in quiet watched stream; do
            start_server
            live=1
            if [ "$mode" = watched ] && ! start_watchers; then live=0; fi
            if [ "$mode" = stream ]; then start_stream; fi
            label=$(jq -nc --arg m "$mode" --arg s "$STORE" --argjson r "$rep" '{part: "watched", mode: $m, store: $s, rep: $r}')
            cpu_before=$(python3 "$REPO/bench/cpu_times.py" "$SERVER_PID" "$WATCH_PID")
            bench_row "$(jq -c '. + {load: "roundtrip c=16"}' <<<"$label")" roundtrip -c 16 -w 4 -d "$DUR" -n 100000000
            bench_row "$(jq -c '. + {load: "submit-bg c=64"}' <<<"$label")" submit-bg -c 64 -d "$DUR" -n 100000000
            # Where the CPU went during both loads: the server's web thread,
            # the whole server, the browser (on these two cores it competes
            # with the server and the load generator).
            cpu_after=$(python3 "$REPO/bench/cpu_times.py" "$SERVER_PID" "$WATCH_PID")
            jq -nc --argjson l "$label" --argjson a "$cpu_before" --argjson b "$cpu_after" \
                '$l + {load: "cpu", cpu_ms: ($b | with_entries(.value -= $a[.key]))}' >>"$RESULTS"
            log "CPU ms during the loads: $(tail -1 "$RESULTS" | jq -c .cpu_ms)"
            if [ "$mode" = watched ]; then
                stop_watchers
                seen=$SEEN
                # The page must have had the stream's snapshots through both
                # loads (one a second), shown the load, and every scrape
                # must have answered; otherwise the run measured nothing.
                min_events=$(python3 -c "print(int(2 * $DUR * 0.6))")
                if [ "$live" = 1 ] && jq -e --argjson min "$min_events" \
                    '.events >= $min and .max_completed_rate > 0 and .max_submitted_rate > 0 and .live == "live"
                     and .scrapes > 0 and .scrapes == .scrapes_ok' <<<"$seen" >/dev/null; then
                    ok=true
                else
                    ok=false
                    BAD_WATCHES=$((BAD_WATCHES + 1))
                    log "WATCHERS FAILED in this run; it does not count: $seen"
                fi
                log "watchers: $seen"
                jq -nc --argjson l "$label" --argjson w "$seen" --argjson ok "$ok" '$l + {load: "watchers", watch: $w, valid: $ok}' >>"$RESULTS"
            fi
            if [ "$mode" = stream ]; then
                stop_stream
                min_events=$(python3 -c "print(int(2 * $DUR * 0.6))")
                if jq -e --argjson min "$min_events" '.events >= $min and .scrapes > 0 and .scrapes == .scrapes_ok' \
                    <<<"$SEEN" >/dev/null; then ok=true; else
                    ok=false
                    BAD_WATCHES=$((BAD_WATCHES + 1))
                    log "STREAM OR SCRAPES FAILED in this run; it does not count: $SEEN"
                fi
                log "stream: $SEEN"
                jq -nc --argjson l "$label" --argjson w "$SEEN" --argjson ok "$ok" '$l + {load: "watchers", watch: $w, valid: $ok}' >>"$RESULTS"
            fi
            stop_server
        done
    done
fi

# scrape_rows STAGE: $SCRAPES timed scrapes of /metrics, one JSON line.
scrape_rows() {
    local stage=$1 url="http://127.0.0.1:$WEB_PORT/metrics"
    curl -sf -o "$WORK/page" "$url"
    local series workers promtool_ok=null
    series=$(grep -vc '^#' "$WORK/page")
    workers=$(grep -c '^gearman_workers{' "$WORK/page" || true)
    if command -v promtool >/dev/null; then
        if promtool check metrics <"$WORK/page" >"$WORK/promtool.out" 2>&1; then promtool_ok=true; else
            promtool_ok=false
            log "promtool: $(head -3 "$WORK/promtool.out")"
        fi
    fi
    : >"$WORK/times"
    for _ in $(seq 1 "$SCRAPES"); do
        curl -sf -o /dev/null -w '%{time_total} %{size_download}\n' "$url" >>"$WORK/times"
    done
    python3 - "$WORK/times" "$stage" "$FUNCTIONS" "$series" "$workers" "$promtool_ok" "$STORE" <<'PY' >>"$RESULTS"
import json, statistics, sys
times, stage, functions, series, workers, promtool, store = sys.argv[1:]
rows = [l.split() for l in open(times) if l.strip()]
ms = [float(t) * 1000 for t, _ in rows]
print(json.dumps({"part": "metrics", "stage": stage, "store": store, "functions": int(functions),
                  "gearman_workers_series": int(workers), "series": int(series),
                  "bytes": int(rows[-1][1]), "promtool_ok": json.loads(promtool),
                  "times_ms": [round(m, 2) for m in ms],
                  "median_ms": round(statistics.median(ms), 2), "max_ms": round(max(ms), 2)}))
PY
    log "/metrics, $stage: $(tail -1 "$RESULTS" | jq -c '{median_ms, max_ms, bytes, series, promtool_ok}')"
}

if ! skipped metrics; then
    start_server
    rm -f "$WORK/helper.in" "$WORK/helper.out"
    mkfifo "$WORK/helper.in"
    python3 "$REPO/bench/many_functions.py" 127.0.0.1 "$PORT" "$FUNCTIONS" \
        <"$WORK/helper.in" >"$WORK/helper.out" 2>>"$OUT/helper.err" &
    HELPER_PID=$!
    exec 8>"$WORK/helper.in"
    log "making $FUNCTIONS functions"
    for stage in registered ended; do
        if ! wait_line "$WORK/helper.out" "^STAGE $stage" 300 "$HELPER_PID"; then
            echo "many_functions.py failed before stage $stage (see $OUT/helper.err)" >&2
            exit 1
        fi
        scrape_rows "$stage"
        echo next >&8
    done
    exec 8>&-
    wait "$HELPER_PID" 2>/dev/null || true
    HELPER_PID=""
    stop_server
fi

python3 - "$RESULTS" "$DUR" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
dur = sys.argv[2]
watch = {(r["mode"], r["rep"]): r for r in rows if r.get("load") == "watchers"}
def counts(mode, rep):
    # A watched run counts only when its watchers were seen working.
    return mode == "quiet" or watch.get((mode, rep), {}).get("valid", False)
def vals(mode, load):
    return [r["throughput"] for r in rows
            if r.get("part") == "watched" and r.get("mode") == mode and r.get("load") == load and counts(mode, r["rep"])]
def cell(v):
    return f"{statistics.median(v):,.0f} ({min(v):,.0f}–{max(v):,.0f})" if v else "–"
def ratio(a, b):
    return f"**{statistics.median(a) / statistics.median(b):.2f}**" if a and b else "–"
if any(r.get("part") == "watched" for r in rows):
    store = next(r["store"] for r in rows if r.get("part") == "watched")
    valid = {m: sum(1 for (mode, _), w in watch.items() if mode == m and w["valid"]) for m in ("watched", "stream")}
    total = {m: sum(1 for (mode, _) in watch if mode == m) for m in ("watched", "stream")}
    print(f"\nStore {store}, {dur} s per run, jobs/s, medians (min–max). quiet: nobody looks; watched: the dashboard "
          f"open and live in headless Chromium + curl /metrics every second ({valid['watched']} of {total['watched']} "
          f"runs with working watchers); stream: the same stream held by curl, no browser, + the scrapes "
          f"({valid['stream']} of {total['stream']} working):\n")
    print("| load | quiet | watched | watched / quiet | stream (no browser) | stream / quiet |")
    print("|---|---|---|---|---|---|")
    for load, name in (("roundtrip c=16", "roundtrip c=16 w=4"), ("submit-bg c=64", "submit-bg c=64")):
        q, w, st = vals("quiet", load), vals("watched", load), vals("stream", load)
        print(f"| {name} | {cell(q)} | {cell(w)} | {ratio(w, q)} | {cell(st)} | {ratio(st, q)} |")
    seen = [w["watch"] for (m, _), w in watch.items() if m == "watched" and w["valid"]]
    if seen:
        med = lambda k: statistics.median(s[k] for s in seen)
        print(f"\nWatched runs (medians): {med('events'):.0f} snapshots reached the page, {med('scrapes'):.0f} "
              f"scrapes (all 200); the page showed up to {med('max_completed_rate'):,.0f} completed/s and "
              f"{med('max_submitted_rate'):,.0f} submitted/s.")
cpu = [r for r in rows if r.get("load") == "cpu"]
if cpu:
    print("\nCPU time during both loads of a run (medians, ms):\n")
    print("| run | server's web thread | whole server | browser and its driver |")
    print("|---|---|---|---|")
    for mode in ("quiet", "watched", "stream"):
        c = [r["cpu_ms"] for r in cpu if r["mode"] == mode and counts(mode, r["rep"])]
        if c:
            m = lambda k: statistics.median(x[k] for x in c)
            print(f"| {mode} | {m('server_web'):,.0f} | {m('server'):,.0f} | {m('watcher'):,.0f} |")
metrics = [r for r in rows if r.get("part") == "metrics"]
if metrics:
    print(f"\n/metrics with {metrics[0]['functions']:,} functions ({len(metrics[0]['times_ms'])} scrapes each, curl time_total):\n")
    print("| functions have | median | max | body | series | promtool |")
    print("|---|---|---|---|---|---|")
    for r in metrics:
        what = {"registered": "a worker and a queued job",
                "ended": "that, and ended jobs (duration histograms)"}[r["stage"]]
        prom = {True: "ok", False: "FAILED", None: "not installed"}[r["promtool_ok"]]
        print(f"| {what} | {r['median_ms']:.1f} ms | {r['max_ms']:.1f} ms | {r['bytes'] / 1e6:.2f} MB | {r['series']:,} | {prom} |")
PY

if [ "$BAD_WATCHES" -gt 0 ]; then
    echo "web.sh: $BAD_WATCHES watched run(s) had watchers that did not work; they are left out (see $OUT/watch.err)" >&2
    exit 1
fi
