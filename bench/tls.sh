#!/usr/bin/env bash
# bench/tls.sh — what TLS costs, in one run, A B A B: one sprocketd with a
# plain port and a TLS port (--ssl-port, an EC P-256 certificate made here
# with openssl), loaded through each in turn: foreground round trips (16
# clients, 4 workers) and background submits (64 connections) on the
# in-memory queue; new connections per second (`idle`, 1000 connections:
# a TCP connect, a TLS handshake and an ECHO each); and the plain port of
# that server against a server started without any TLS flag (the TLS code
# being present must not slow plaintext).
#
# Usage: bench/tls.sh [--reps N] [--duration S] [--out DIR] [--no-build]
# Environment: CARGO_TARGET_DIR (default <repo>/target).
# Prints medians and ratios; writes results.jsonl.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
REPS=3
DUR=3
OUT=""
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS=$2; shift ;;
        --duration) DUR=$2; shift ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "tls.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
OUT=${OUT:-$REPO/bench/results/tls-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -9 "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$BUILD" = 1 ]; then
    log "building sprocketd and sprocket (release)"
    (cd "$REPO" && cargo build --release -q -p sprocket-server -p sprocket-cli)
fi

# A CA and a server certificate for 127.0.0.1 (the commands of docs/security.md).
(
    cd "$WORK"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout ca.key -out ca.pem -subj "/CN=Bench CA" 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
    openssl req -new -key server.key -out server.csr -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -copy_extensions copy -out server.pem 2>/dev/null
)


# start_server tls|plain: sprocketd -q builtin on $PORT (and $TLS_PORT with tls).
start_server() {
    PORT=$(free_port)
    local args=(-p "$PORT" --listen 127.0.0.1 --web-listen=none -q builtin)
    if [ "$1" = tls ]; then
        TLS_PORT=$(free_port)
        args+=(--ssl-port "$TLS_PORT" --ssl-certificate "$WORK/server.pem" --ssl-key "$WORK/server.key")
    fi
    "$BIN/sprocketd" "${args[@]}" 2>>"$OUT/server.err" &
    SERVER_PID=$!
    for _ in $(seq 1 3000); do
        if "$BIN/sprocket" admin -s "127.0.0.1:$PORT" status >/dev/null 2>&1; then return 0; fi
        sleep 0.01
    done
    echo "sprocketd did not start" >&2
    exit 1
}


row() { # row LABEL-JSON PORT [TLS-ARGS...] -- BENCH-ARGS...
    local label=$1 port=$2; shift 2
    local tls=()
    while [ "$1" != "--" ]; do tls+=("$1"); shift; done
    shift
    local out
    if out=$("$BIN/sprocket" bench "$@" "${tls[@]}" --server "127.0.0.1:$port" --json -q 2>>"$OUT/bench.err"); then
        jq -nc --argjson l "$label" --argjson o "$out" '$l + {throughput: $o.throughput}' >>"$RESULTS"
        log "$(jq -c . <<<"$label"): $(jq -r '.throughput|floor' <<<"$out")/s"
    else
        log "$(jq -c . <<<"$label"): FAILED (see bench.err)"
    fi
}

for rep in $(seq 1 "$REPS"); do
    start_server tls
    for transport in plain tls; do
        if [ "$transport" = tls ]; then port=$TLS_PORT; tls=(--ssl-ca "$WORK/ca.pem"); else port=$PORT; tls=(); fi
        label=$(jq -nc --arg t "$transport" --argjson r "$rep" '{server: "with TLS port", transport: $t, rep: $r}')
        row "$(jq -c '. + {load: "roundtrip c=16"}' <<<"$label")" "$port" "${tls[@]}" -- roundtrip -c 16 -w 4 -d "$DUR" -n 100000000
        row "$(jq -c '. + {load: "submit-bg c=64"}' <<<"$label")" "$port" "${tls[@]}" -- submit-bg -c 64 -d "$DUR" -n 100000000
        row "$(jq -c '. + {load: "new connections (idle c=1000)"}' <<<"$label")" "$port" "${tls[@]}" -- idle -c 1000 -d 0.1
    done
    stop_server
    start_server plain
    label=$(jq -nc --argjson r "$rep" '{server: "without TLS", transport: "plain", rep: $r}')
    row "$(jq -c '. + {load: "roundtrip c=16"}' <<<"$label")" "$PORT" -- roundtrip -c 16 -w 4 -d "$DUR" -n 100000000
    row "$(jq -c '. + {load: "submit-bg c=64"}' <<<"$label")" "$PORT" -- submit-bg -c 64 -d "$DUR" -n 100000000
    stop_server
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(**sel):
    vals = [r["throughput"] for r in rows if all(r.get(k) == v for k, v in sel.items())]
    return statistics.median(vals) if vals else None
print("\nTLS against plaintext on the same server (medians):")
print(f"{'load':32} {'plain':>10} {'tls':>10} {'tls/plain':>9}")
for load in ("roundtrip c=16", "submit-bg c=64", "new connections (idle c=1000)"):
    p = med(server="with TLS port", transport="plain", load=load)
    t = med(server="with TLS port", transport="tls", load=load)
    if p and t:
        print(f"{load:32} {p:10.0f} {t:10.0f} {t/p:9.2f}")
print("\nPlaintext with a TLS port configured against a server without TLS (medians):")
for load in ("roundtrip c=16", "submit-bg c=64"):
    a = med(server="with TLS port", transport="plain", load=load)
    b = med(server="without TLS", transport="plain", load=load)
    if a and b:
        print(f"{load:32} {b:10.0f} {a:10.0f} {a/b:9.2f}")
PY
