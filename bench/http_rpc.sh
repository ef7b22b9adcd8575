#!/usr/bin/env bash
# HTTP RPC throughput: Anvil vs a bare libevent evhttp server, same session.
#
#   bench/http_rpc.sh            # DURATION=10s by default; ANVIL_BIN=build/anvil
#
# Builds bench/bare_evhttp into build/bench/, starts it and `anvil serve` (config
# written to a temp dir: token auth, one token with scopes ["*"], 127.0.0.1 on a
# free port, database in the temp dir), and runs
#   wrk -t1 -c32 -d$DURATION --latency -s bench/post.lua
# against: the bare server; POST /v1/rpc/health {}; POST /v1/rpc/listWorkflows {}.
# Prints a markdown block for bench/RESULTS.md (nothing is written to it).
# If $ANVIL_BIN does not exist, only the bare server is measured.
#
# Environment: DURATION (10s), WARMUP (2s; 0 to skip), CONNECTIONS (32),
#              ANVIL_BIN (build/anvil), CC (cc).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-32}
ANVIL_BIN=${ANVIL_BIN:-build/anvil}
CC=${CC:-cc}
BARE_BIN=build/bench/bare_evhttp
LUA=bench/post.lua

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

for tool in wrk curl python3 pkg-config "$CC"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/install-deps.sh)"
done

# ---- build the bare server --------------------------------------------------
if [[ ! -x $BARE_BIN || bench/bare_evhttp.c -nt $BARE_BIN ]]; then
    log "building $BARE_BIN"
    mkdir -p "${BARE_BIN%/*}"
    # shellcheck disable=SC2046
    "$CC" -std=c11 -O2 -Wall -Wextra -Werror -o "$BARE_BIN" bench/bare_evhttp.c \
        $(pkg-config --cflags --libs libevent)
fi

# ---- processes and cleanup -------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/anvil-bench.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # wait_http URL PID LOG: until URL answers (any status), max 10 s
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$2" 2>/dev/null || { tail -n 20 "$3" >&2; die "server exited before answering $1"; }
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    tail -n 20 "$3" >&2
    die "no answer from $1 within 10 s"
}

token=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

# Check one request answers 2xx before measuring it.
probe() { # probe URL BODY
    local code
    code=$(curl -s -o "$tmp/probe.out" -w '%{http_code}' --max-time 5 -X POST \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        --data-binary "$2" "$1") || true
    [[ $code == 2?? ]] || die "$1 answered HTTP $code: $(head -c 300 "$tmp/probe.out")"
}

results=() # "label|req/s|p50|p99|errors"
run_wrk() { # run_wrk LABEL URL BODY
    local label=$1 url=$2 body=$3 out=$tmp/wrk.out
    probe "$url" "$body"
    if [[ $WARMUP != 0 ]]; then
        BENCH_BODY=$body BENCH_TOKEN=$token \
            wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" -s "$LUA" "$url" >/dev/null
    fi
    log "wrk $label ($DURATION)"
    BENCH_BODY=$body BENCH_TOKEN=$token \
        wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "$url" >"$out"
    cat "$out" >&2
    local rps p50 p99 errs
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    errs=$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
                /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
                END { print n + 0 }' "$out")
    [[ -n $rps && -n $p50 && -n $p99 ]] || die "could not parse wrk output for $label"
    results+=("$label|$rps|$p50|$p99|$errs")
}

# ---- bare evhttp -------------------------------------------------------------
bare_port=$(free_port)
"$BARE_BIN" "$bare_port" 2>"$tmp/bare.log" &
pids+=($!)
wait_http "http://127.0.0.1:$bare_port/" "${pids[-1]}" "$tmp/bare.log"
run_wrk "bare evhttp (fixed JSON)" "http://127.0.0.1:$bare_port/v1/rpc/health" '{}'
kill "${pids[-1]}" 2>/dev/null || true

# ---- anvil -------------------------------------------------------------------
anvil_note=
if [[ -x $ANVIL_BIN ]]; then
    anvil_port=$(free_port)
    cat >"$tmp/bench.workflow.yaml" <<'EOF'
name: bench
description: Benchmark workflow.
root:
  sequence:
    - task: { id: hello, output: { message: "hello" } }
EOF
    cat >"$tmp/anvil.yaml" <<EOF
listen: 127.0.0.1:$anvil_port
database: $tmp/anvil.db
auth:
  mode: token
  tokens:
    $token: { role: operator, scopes: ["*"], userId: "user:bench" }
workflows:
  bench:
    file: $tmp/bench.workflow.yaml
EOF
    "$ANVIL_BIN" serve --config "$tmp/anvil.yaml" >"$tmp/anvil.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$anvil_port/health" "${pids[-1]}" "$tmp/anvil.log"
    run_wrk "anvil POST /v1/rpc/health {}" "http://127.0.0.1:$anvil_port/v1/rpc/health" '{}'
    run_wrk "anvil POST /v1/rpc/listWorkflows {}" "http://127.0.0.1:$anvil_port/v1/rpc/listWorkflows" '{}'
    anvil_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    anvil_note="anvil: \`$ANVIL_BIN\` at $anvil_rev$(git diff --quiet HEAD 2>/dev/null || echo ' (dirty tree)')"
else
    log "WARNING: $ANVIL_BIN not found; measured the bare server only"
    anvil_note="anvil: not measured (\`$ANVIL_BIN\` not found)"
fi

# ---- report --------------------------------------------------------------------
to_ms() { # wrk latency (e.g. 812.00us, 1.20ms, 1.02s) -> ms with 3 decimals
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
        if (f < 0) print v; else printf "%.3f ms", n * f }'
}
bare_rps=${results[0]#*|}
bare_rps=${bare_rps%%|*}
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

cat <<EOF

### HTTP RPC — $(date -u '+%Y-%m-%d %H:%M UTC')

- command: \`DURATION=$DURATION WARMUP=$WARMUP bench/http_rpc.sh\` — each row
  \`wrk -t1 -c$CONNECTIONS -d$DURATION --latency -s bench/post.lua URL\` (POST, body \`{}\`, bearer token)
- host: \`$(uname -srm)\`, nproc $(nproc), CPU: $cpu; wrk and server share the cores, loopback
- $anvil_note

| target | req/s | p50 | p99 | ratio to bare | errors |
| --- | ---: | ---: | ---: | ---: | ---: |
EOF
for r in "${results[@]}"; do
    IFS='|' read -r label rps p50 p99 errs <<<"$r"
    ratio=$(awk -v a="$rps" -v b="$bare_rps" 'BEGIN { printf "%.2f", a / b }')
    printf '| %s | %s | %s | %s | %s | %s |\n' "$label" \
        "$(printf '%.0f' "$rps")" "$(to_ms "$p50")" "$(to_ms "$p99")" "$ratio" "$errs"
done
echo
