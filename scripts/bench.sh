#!/usr/bin/env bash
# Load benchmark (issue 6): litegate in front of a fast fake upstream, against the same upstream
# called directly, with wrk. Builds release, installs wrk if missing (apt-get), seeds 10,000 orgs /
# 100,000 teams / 1,000,000 keys, then for non-streaming and streaming chat at each concurrency
# runs wrk against the upstream directly and through litegate (a virtual key whose access goes
# key -> team -> org through `all-org-models`), alternating, BENCH_REPS times, and prints one
# Markdown table of medians. The same at c=1 for an Anthropic deployment (`anthropic/…`, the
# fake answering the Messages API on /v1/messages; direct = the fake's /v1/messages), for the
# per-call cost of the OpenAI ⇄ Anthropic translation. Then 1,000 concurrent slow streams (one chunk/s for 20 s) through a
# fresh litegate for its RSS. Loopback only. About 6 minutes on a 2-core VM.
#
# Usage: scripts/bench.sh            (env: BENCH_DURATION=5 BENCH_REPS=3
#                                     BENCH_CONCURRENCY="1 8 64 256" BENCH_KEYS=1000000
#                                     BENCH_SLOW_STREAMS=1000 BENCH_SLOW_SECS=20
#                                     BENCH_KEEP=1 keeps the work dir;
#                                     BENCH_BIN=DIR benches the binaries in DIR, no build)
#        BENCH_DB=postgres scripts/bench.sh   the store comparison only (issue 14): key check
#                                     (authenticated GET /v1/models) and chat throughput on
#                                     SQLite, on PostgreSQL with one litegate and with two
#                                     (a throwaway cluster via scripts/pg.sh; seeded directly);
#                                     BENCH_DB=both runs the benchmark above and then this;
#                                     BENCH_PG_CONCURRENCY="8 64" (total connections)
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${BENCH_DURATION:-5}
REPS=${BENCH_REPS:-3}
CONCS=${BENCH_CONCURRENCY:-"1 8 64 256"}
KEYS=${BENCH_KEYS:-1000000}
SLOW_STREAMS=${BENCH_SLOW_STREAMS:-1000}
SLOW_SECS=${BENCH_SLOW_SECS:-20}
WORKERS=256
# sqlite (default): the benchmark above; postgres: only the store comparison below; both.
DB_MODE=${BENCH_DB:-sqlite}
PG_CONCS=${BENCH_PG_CONCURRENCY:-"8 64"}
case "$DB_MODE" in sqlite | postgres | both) ;; *) echo "BENCH_DB: sqlite, postgres or both" >&2; exit 2 ;; esac

say() { echo "bench: $*" >&2; }

# ---- build and tools ------------------------------------------------------------------------
say "building release binaries"
# BENCH_BIN=DIR: the binaries (litegate, fake_upstream, seed) of another build, e.g. a commit's
# before a change, for a before/after pair of runs in one session.
if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
else
    cargo build --release --quiet --bin litegate --bin fake_upstream --bin seed
    BIN=target/release
fi
# The floor (issue 17): a minimal thread-per-connection proxy (../shared/perf-floor, beside the
# repository), run `--mode b` (JSON parse, key lookup, model check) against the same upstream in
# the same interleaved loop. Absent (a clone without ../shared): skipped with a message.
FLOOR_SRC=${BENCH_FLOOR_SRC:-../shared/perf-floor}
FLOOR_BIN=""
if [ -f "$FLOOR_SRC/Cargo.toml" ]; then
    say "building the floor proxy from $FLOOR_SRC"
    cargo build --release --quiet --manifest-path "$FLOOR_SRC/Cargo.toml" --target-dir target/perf-floor
    FLOOR_BIN=target/perf-floor/release/thread_proxy_floor
else
    say "no $FLOOR_SRC/Cargo.toml: the floor is skipped (litegate and direct only)"
fi
if ! command -v wrk >/dev/null; then
    say "installing wrk"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/litegate-bench.XXXXXX")
PIDS=()
# The PostgreSQL mode's throwaway cluster (outside $WORK: when run as root the cluster runs as
# `postgres`, which cannot enter the private $WORK).
PG_DIR="${TMPDIR:-/tmp}/litegate-bench-pg.$$"
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -d "$PG_DIR" ]; then LITEGATE_PG_DIR="$PG_DIR" scripts/pg.sh stop >/dev/null 2>&1 || true; fi
    if [ -z "${BENCH_KEEP:-}" ] && [ ! -e "$WORK/errors-seen" ]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap cleanup EXIT

# Waits for "listening on ..." in a process's stdout file; prints the port.
port_of() {
    local f=$1 i
    for i in $(seq 1 200); do
        if grep -q "listening on" "$f" 2>/dev/null; then
            grep -m1 "listening on" "$f" | sed -E 's/.*:([0-9]+)\/?$/\1/'
            return
        fi
        sleep 0.05
    done
    say "no 'listening on' in $f"; cat "$f" >&2; exit 1
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f", kb / 1024}'; }

# ---- fake upstream, database, litegate --------------------------------------------------------
"$BIN/fake_upstream" --listen 127.0.0.1:0 --slow-chunks "$SLOW_SECS" --slow-interval-ms 1000 \
    >"$WORK/fake.out" 2>&1 &
PIDS+=($!)
UP_PORT=$(port_of "$WORK/fake.out")
say "fake upstream on 127.0.0.1:$UP_PORT"

say "seeding $KEYS keys"
KEY=$("$BIN/seed" --db "$WORK/bench.db" --keys "$KEYS" --models bench,bench-slow,bench-anthropic)

cat >"$WORK/config.yaml" <<EOF
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$UP_PORT/v1
      api_key: sk-fake-provider-key
  - model_name: bench-slow
    litellm_params:
      model: openai/bench-slow
      api_base: http://127.0.0.1:$UP_PORT/v1
      api_key: sk-fake-provider-key
  - model_name: bench-anthropic
    litellm_params:
      model: anthropic/claude-bench
      api_base: http://127.0.0.1:$UP_PORT
      api_key: sk-fake-provider-key
      input_cost_per_token: 0.000003
      output_cost_per_token: 0.000015
general_settings:
  master_key: os.environ/LITEGATE_BENCH_MASTER_KEY
EOF
export LITEGATE_BENCH_MASTER_KEY="sk-bench-master-$(od -An -tx1 -N24 /dev/urandom | tr -d " \n")"

# The floor, mode b, with the benchmark's key in its table (it answers model `fake-gpt` only:
# its body names that model, same length class as litegate's). Chunked (streaming) answers are
# beyond it: it runs in the JSON rows only.
FLOOR_PID=""
start_floor() {
    [ -n "$FLOOR_BIN" ] || return 0
    local fport
    fport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$FLOOR_BIN" --listen "127.0.0.1:$fport" --upstream "127.0.0.1:$UP_PORT" --mode b --key "$KEY" \
        >"$WORK/floor.out" 2>&1 &
    FLOOR_PID=$!
    PIDS+=("$FLOOR_PID")
    FLOOR_PORT=$fport
    local i
    for i in $(seq 1 200); do
        grep -q "listening on" "$WORK/floor.out" 2>/dev/null && return 0
        sleep 0.05
    done
    say "the floor did not start"; cat "$WORK/floor.out" >&2; exit 1
}

LG_PID=""
start_litegate() {
    local workers=$1 out="$WORK/litegate.$1.out"
    # Default log level (info, one access-log line per request), as deployed; to a file.
    "$BIN/litegate" --config "$WORK/config.yaml" --db "$WORK/bench.db" --listen 127.0.0.1:0 \
        --workers "$workers" >"$out" 2>"$WORK/litegate.$1.log" &
    LG_PID=$!
    PIDS+=("$LG_PID")
    LG_PORT=$(port_of "$out")
}
stop_litegate() { kill "$LG_PID"; wait "$LG_PID" 2>/dev/null || true; }

# ---- wrk -------------------------------------------------------------------------------------
cat >"$WORK/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_AUTH")
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
EOF
sed -e '/^wrk.body/d' -e 's/^wrk.method = "POST"/wrk.method = "GET"/' \
    -e '/Content-Type/d' "$WORK/post.lua" >"$WORK/get.lua"
BODY_JSON='{"model":"bench","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}'
BODY_SSE='{"model":"bench","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16,"stream":true}'
BODY_FLOOR='{"model":"fake-gpt","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}'
export BENCH_AUTH=$KEY

# run_wrk URL CONCURRENCY SECONDS [SCRIPT] -> "requests duration_us p50_us p99_us status_errors
# io_errors" (SCRIPT: post.lua by default, get.lua for an authenticated GET)
run_wrk() {
    local threads=$(($2 < 2 ? $2 : 2))
    wrk -t"$threads" -c"$2" -d"$3s" --timeout 30s -s "$WORK/${4:-post.lua}" "$1" | awk '/^RESULT/ {print $2, $3, $4, $5, $6, $7}'
}

# The SQLite benchmark (the tables above in the README); BENCH_DB=postgres skips it.
if [ "$DB_MODE" != postgres ]; then
start_floor
start_litegate "$WORKERS"
sleep 1
IDLE_RSS=$(status_kb "$LG_PID" VmRSS)
say "litegate (pid $LG_PID, $WORKERS workers) on 127.0.0.1:$LG_PORT, idle RSS $(mb "$IDLE_RSS") MB"

RAW="$WORK/raw.txt"
: >"$RAW"
declare -A PEAK
for mode in json sse; do
    if [ $mode = json ]; then export BENCH_BODY=$BODY_JSON; else export BENCH_BODY=$BODY_SSE; fi
    # Warm both paths (connections, pages of the key's rows) before measuring.
    run_wrk "http://127.0.0.1:$UP_PORT/v1/chat/completions" 8 1 >/dev/null
    run_wrk "http://127.0.0.1:$LG_PORT/v1/chat/completions" 8 1 >/dev/null
    if [ $mode = json ] && [ -n "$FLOOR_PID" ]; then
        BENCH_BODY=$BODY_FLOOR run_wrk "http://127.0.0.1:$FLOOR_PORT/v1/chat/completions" 8 1 >/dev/null
    fi
    for c in $CONCS; do
        for rep in $(seq 1 "$REPS"); do
            d=$(run_wrk "http://127.0.0.1:$UP_PORT/v1/chat/completions" "$c" "$DUR")
            echo "$mode $c $rep direct $d 0" >>"$RAW"
            if [ $mode = json ] && [ -n "$FLOOR_PID" ]; then
                t0=$(cpu_ticks "$FLOOR_PID")
                f=$(BENCH_BODY=$BODY_FLOOR run_wrk "http://127.0.0.1:$FLOOR_PORT/v1/chat/completions" "$c" "$DUR")
                t1=$(cpu_ticks "$FLOOR_PID")
                echo "$mode $c $rep floor $f $((t1 - t0))" >>"$RAW"
                say "$mode c=$c rep $rep: floor [$f] cpu $((t1 - t0)) ticks"
            fi
            t0=$(cpu_ticks "$LG_PID")
            t=$(run_wrk "http://127.0.0.1:$LG_PORT/v1/chat/completions" "$c" "$DUR")
            t1=$(cpu_ticks "$LG_PID")
            echo "$mode $c $rep through $t $((t1 - t0))" >>"$RAW"
            say "$mode c=$c rep $rep: direct [$d] through [$t] cpu $((t1 - t0)) ticks"
        done
        PEAK[$mode.$c]=$(status_kb "$LG_PID" VmHWM)
    done
done
# The Anthropic deployment at c=1: through litegate (OpenAI chat in, Messages out and back)
# against the fake's /v1/messages called directly with the Messages body litegate sends.
A_BODY_JSON='{"model":"bench-anthropic","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}'
A_BODY_SSE='{"model":"bench-anthropic","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16,"stream":true}'
A_DIRECT_JSON='{"model":"claude-bench","messages":[{"role":"user","content":[{"type":"text","text":"Say hello to the benchmark."}]}],"max_tokens":16}'
A_DIRECT_SSE='{"model":"claude-bench","messages":[{"role":"user","content":[{"type":"text","text":"Say hello to the benchmark."}]}],"max_tokens":16,"stream":true}'
for mode in ajson asse; do
    if [ $mode = ajson ]; then through=$A_BODY_JSON direct=$A_DIRECT_JSON; else through=$A_BODY_SSE direct=$A_DIRECT_SSE; fi
    BENCH_BODY=$direct run_wrk "http://127.0.0.1:$UP_PORT/v1/messages" 1 1 >/dev/null
    BENCH_BODY=$through run_wrk "http://127.0.0.1:$LG_PORT/v1/chat/completions" 1 1 >/dev/null
    for rep in $(seq 1 "$REPS"); do
        d=$(BENCH_BODY=$direct run_wrk "http://127.0.0.1:$UP_PORT/v1/messages" 1 "$DUR")
        echo "$mode 1 $rep direct $d 0" >>"$RAW"
        t0=$(cpu_ticks "$LG_PID")
        t=$(BENCH_BODY=$through run_wrk "http://127.0.0.1:$LG_PORT/v1/chat/completions" 1 "$DUR")
        t1=$(cpu_ticks "$LG_PID")
        echo "$mode 1 $rep through $t $((t1 - t0))" >>"$RAW"
        say "$mode c=1 rep $rep: direct [$d] through [$t] cpu $((t1 - t0)) ticks"
    done
    PEAK[$mode.1]=$(status_kb "$LG_PID" VmHWM)
done
PEAK_ALL=$(status_kb "$LG_PID" VmHWM)
FLOOR_RSS=""
if [ -n "$FLOOR_PID" ]; then
    FLOOR_RSS=$(status_kb "$FLOOR_PID" VmHWM)
    kill "$FLOOR_PID"; wait "$FLOOR_PID" 2>/dev/null || true
fi
ANON_END=$(status_kb "$LG_PID" RssAnon)
FILE_END=$(status_kb "$LG_PID" RssFile)
stop_litegate

# ---- 1,000 slow streams ----------------------------------------------------------------------
SLOW_WORKERS=$((SLOW_STREAMS + 64))
start_litegate "$SLOW_WORKERS"
sleep 1
SLOW_IDLE=$(status_kb "$LG_PID" VmRSS)
say "$SLOW_STREAMS slow streams through litegate ($SLOW_WORKERS workers, idle RSS $(mb "$SLOW_IDLE") MB)"
export BENCH_BODY='{"model":"bench-slow","messages":[{"role":"user","content":"Say hello slowly."}],"stream":true}'
wrk -t2 -c"$SLOW_STREAMS" -d"$((SLOW_SECS + 8))s" --timeout 60s -s "$WORK/post.lua" \
    "http://127.0.0.1:$LG_PORT/v1/chat/completions" >"$WORK/slow.out" 2>&1 &
WRK_PID=$!
MAX_STREAMS=0
MAX_RSS=0
for _ in $(seq 1 $((SLOW_SECS + 6))); do
    sleep 1
    n=$( (exec 3<>"/dev/tcp/127.0.0.1/$LG_PORT" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3) 2>/dev/null | awk '/^litegate_active_streams / {print $2}')
    [ -n "$n" ] && [ "$n" -gt "$MAX_STREAMS" ] && MAX_STREAMS=$n
    r=$(status_kb "$LG_PID" VmRSS)
    [ "$r" -gt "$MAX_RSS" ] && MAX_RSS=$r
done
wait "$WRK_PID" || true
SLOW_HWM=$(status_kb "$LG_PID" VmHWM)
SLOW_RESULT=$(awk '/^RESULT/ {print $2, $6, $7}' "$WORK/slow.out")
stop_litegate
SLOW_OK=$(grep -c "POST /v1/chat/completions 200" "$WORK/litegate.$SLOW_WORKERS.log" || true)

# ---- report ----------------------------------------------------------------------------------
CPUS=$(nproc)
REPORT=$(awk -v tck="$TCK" -v concs="$CONCS" -v peaks="$(for k in "${!PEAK[@]}"; do echo -n "$k=${PEAK[$k]} "; done)" '
function med(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function us(x) { return x >= 1000 ? sprintf("%.2f ms", x / 1000) : sprintf("%d µs", x) }
function sus(x) { return (x < 0 ? "−" : "") us(x < 0 ? -x : x) }
{
    k = $1 SUBSEP $2
    if ($4 == "direct") {
        drps[k] = drps[k] " " $5 * 1e6 / $6; dp50[k] = dp50[k] " " $7; dp99[k] = dp99[k] " " $8
        last50[k] = $7; last99[k] = $8; derr[k] += $9 + $10
    } else if ($4 == "floor") {
        frps[k] = frps[k] " " $5 * 1e6 / $6
        f50[k] = f50[k] " " ($7 - last50[k]); f99[k] = f99[k] " " ($8 - last99[k])
        fcpu[k] = fcpu[k] " " ($5 ? $11 * 1e6 / tck / $5 : 0); ferr[k] += $9 + $10
    } else {
        trps[k] = trps[k] " " $5 * 1e6 / $6; tp50[k] = tp50[k] " " $7; tp99[k] = tp99[k] " " $8
        a50[k] = a50[k] " " ($7 - last50[k]); a99[k] = a99[k] " " ($8 - last99[k])
        cpu[k] = cpu[k] " " ($5 ? $11 * 1e6 / tck / $5 : 0); terr[k] += $9 + $10
    }
}
END {
    split(peaks, pk, " "); for (i in pk) { split(pk[i], kv, "="); peak[kv[1]] = kv[2] }
    print "| mode | c | direct req/s | floor req/s (% of direct) | litegate req/s | % of direct | direct p50 / p99 | litegate p50 / p99 | floor added p50 / p99 | added p50 | added p99 | floor CPU/req | litegate CPU/req | peak RSS |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    n = split(concs, cs, " ")
    split("json sse ajson asse", modes, " ")
    label["json"] = "chat"; label["sse"] = "chat, stream"
    label["ajson"] = "chat, anthropic"; label["asse"] = "chat, stream, anthropic"
    for (m = 1; m <= 4; m++) {
        mode = modes[m]
        for (i = 1; i <= (m <= 2 ? n : 1); i++) {
            c = m <= 2 ? cs[i] : 1
            k = mode SUBSEP c
            if (!(k in trps)) continue
            d = med(drps[k]); t = med(trps[k])
            if (k in frps) {
                f = med(frps[k])
                fl = sprintf("%.0f (%.0f %%)", f, d ? 100 * f / d : 0)
                fa = sus(med(f50[k])) " / " sus(med(f99[k]))
                fc = sprintf("%.0f µs", med(fcpu[k]))
            } else { fl = "—"; fa = "—"; fc = "—" }
            printf "| %s | %d | %.0f | %s | %.0f | %.0f %% | %s / %s | %s / %s | %s | %s | %s | %s | %.0f µs | %.1f MB |%s\n", \
                label[mode], c, d, fl, t, d ? 100 * t / d : 0, \
                us(med(dp50[k])), us(med(dp99[k])), us(med(tp50[k])), us(med(tp99[k])), fa, \
                sus(med(a50[k])), sus(med(a99[k])), fc, med(cpu[k]), peak[mode "." c] / 1024, \
                (derr[k] + terr[k] + ferr[k]) ? sprintf(" errors: direct %d, floor %d, litegate %d", derr[k], ferr[k], terr[k]) : ""
        }
    }
}' "$RAW")

cat <<EOF

## litegate load benchmark — $(date -u +%Y-%m-%d), ${CPUS}-core machine, \`scripts/bench.sh\`

wrk, ${DUR} s per run, ${REPS} repetitions alternating direct/through, medians; $KEYS keys seeded;
litegate --workers $WORKERS, default logging (access log to a file). "added" = median over
repetitions of (through − direct) in the same repetition. CPU/req = litegate's utime+stime ÷
requests. Peak RSS = litegate's VmHWM after that concurrency level (cumulative). The
"anthropic" rows call an \`anthropic/\` deployment (OpenAI chat translated to Anthropic's
Messages API and back) at c=1, direct = the fake's /v1/messages: beside the "chat" rows at c=1
they give the per-call cost of the translation.

$REPORT

- the floor (\`../shared/perf-floor\`, \`--mode b\`: JSON parse, key lookup in a HashMap, model check; JSON rows only, it does not relay chunked answers): $([ -n "$FLOOR_RSS" ] && echo "peak RSS $(mb "$FLOOR_RSS") MB; floor CPU/req = its utime+stime ÷ requests, floor added = floor − direct in the same repetition" || echo "skipped (no ../shared/perf-floor)")
- litegate idle RSS (after start, $WORKERS workers): $(mb "$IDLE_RSS") MB; peak over all levels: $(mb "$PEAK_ALL") MB (at the end: anon $(mb "$ANON_END") MB, file-backed incl. the mmapped database $(mb "$FILE_END") MB)
- $SLOW_STREAMS slow streams (${SLOW_SECS} chunks, 1/s) through litegate --workers $SLOW_WORKERS: idle RSS $(mb "$SLOW_IDLE") MB, peak RSS $(mb "$SLOW_HWM") MB (max sampled VmRSS $(mb "$MAX_RSS") MB), max concurrent streams seen $MAX_STREAMS; streams answered 200 (litegate access log, incl. those cut at the end): $SLOW_OK; wrk [requests status_errors io_errors]: ${SLOW_RESULT:-none}
EOF
cp "$RAW" target/bench-raw.txt 2>/dev/null || true
fi

# ---- the store comparison: SQLite, PostgreSQL × 1 and × 2 instances (issue 14) -----------------
# Key check = an authenticated GET /v1/models with the virtual key (THE key-check statement, no
# write); chat = the non-streaming chat call (key check, spend commit). Two instances: two wrk
# processes at once, one per instance, each with half the connections; req/s is their sum, p50
# and p99 the worse of the two. The cluster is scripts/pg.sh's throwaway one with
# `synchronous_commit=on` (a commit is acknowledged once its WAL is written, as with SQLite's
# synchronous=NORMAL: it survives a crash of the database process, not of the machine; fsync
# stays off, as SQLite NORMAL does not sync at commit either). Each instance holds at most 8
# PostgreSQL connections (the default pool).
if [ "$DB_MODE" != sqlite ]; then
    PG_URL=$(LITEGATE_PG_DIR="$PG_DIR" LITEGATE_PG_OPTS="-c synchronous_commit=on" scripts/pg.sh start)
    say "PostgreSQL (throwaway, $PG_DIR); seeding $KEYS keys"
    "$BIN/seed" --db "$PG_URL" --keys "$KEYS" --models bench,bench-slow,bench-anthropic >/dev/null
    # start_instance NAME [DATABASE_URL]: sets INST_PID and INST_PORT.
    start_instance() {
        local out="$WORK/inst.$1.out"
        if [ -n "${2:-}" ]; then
            DATABASE_URL="$2" "$BIN/litegate" --config "$WORK/config.yaml" --listen 127.0.0.1:0 \
                --workers "$WORKERS" >"$out" 2>"$WORK/inst.$1.log" &
        else
            "$BIN/litegate" --config "$WORK/config.yaml" --db "$WORK/bench.db" \
                --listen 127.0.0.1:0 --workers "$WORKERS" >"$out" 2>"$WORK/inst.$1.log" &
        fi
        INST_PID=$!
        PIDS+=("$INST_PID")
        INST_PORT=$(port_of "$out")
    }
    STORE_RAW="$WORK/store.txt"
    : >"$STORE_RAW"
    export BENCH_BODY=$BODY_JSON
    # measure LABEL PORT...: each mode and concurrency, REPS times, one wrk per port at once.
    measure() {
        local label=$1 mode c rep port n i script path wrks
        shift
        n=$#
        for mode in keycheck chat; do
            if [ $mode = keycheck ]; then script=get.lua path=/v1/models; else script=post.lua path=/v1/chat/completions; fi
            for port in "$@"; do run_wrk "http://127.0.0.1:$port$path" 4 1 "$script" >/dev/null; done
            for c in $PG_CONCS; do
                for rep in $(seq 1 "$REPS"); do
                    i=0
                    wrks=()
                    for port in "$@"; do
                        run_wrk "http://127.0.0.1:$port$path" "$((c / n))" "$DUR" "$script" >"$WORK/w.$i" &
                        wrks+=($!)
                        i=$((i + 1))
                    done
                    wait "${wrks[@]}"
                    for i in $(seq 0 $((n - 1))); do
                        echo "$label|$mode $c $rep $(cat "$WORK/w.$i")" >>"$STORE_RAW"
                    done
                    say "$label $mode c=$c rep $rep: $(cat "$WORK"/w.* | tr '\n' ' ')"
                    # Error answers (fields 5 and 6: status and socket errors): the work dir
                    # and the instances' logs are kept, and their non-200 statuses and
                    # warnings are counted here, so an error burst can be explained.
                    if awk '$5 > 0 || $6 > 0 { e = 1 } END { exit !e }' "$WORK"/w.*; then
                        touch "$WORK/errors-seen"
                        say "errors in this run; instance logs: $(cat "$WORK"/inst.*.log | grep -oE '(GET|POST) [^ ]+ [1-5][0-9][0-9]|WARN.*|ERROR.*' | grep -vE ' 200$|price table' | sort | uniq -c | sort -rn | head -5 | tr '\n' ';')"
                    fi
                    rm -f "$WORK"/w.*
                done
            done
        done
    }
    start_instance sqlite
    measure "SQLite, 1 instance" "$INST_PORT"
    kill "$INST_PID"
    wait "$INST_PID" 2>/dev/null || true
    start_instance pg1 "$PG_URL"
    P1_PID=$INST_PID P1_PORT=$INST_PORT
    measure "PostgreSQL, 1 instance" "$P1_PORT"
    start_instance pg2 "$PG_URL"
    measure "PostgreSQL, 2 instances" "$P1_PORT" "$INST_PORT"
    kill "$P1_PID" "$INST_PID"
    wait "$P1_PID" "$INST_PID" 2>/dev/null || true
    # Lines: "label|mode c rep requests duration_us p50_us p99_us status_errors io_errors".
    STORE_REPORT=$(awk -F'|' '
    function med(s,   a, n, i, j, t) {
        n = split(s, a, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function us(x) { return x >= 1000 ? sprintf("%.2f ms", x / 1000) : sprintf("%d µs", x) }
    {
        split($2, f, " ")
        k = $1 SUBSEP f[1] SUBSEP f[2]
        if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
        r = k SUBSEP f[3]
        if (!(r in rps)) reps[k] = reps[k] " " f[3]
        rps[r] += f[4] * 1e6 / f[5]
        if (f[6] > p50[r]) p50[r] = f[6]
        if (f[7] > p99[r]) p99[r] = f[7]
        err[k] += f[8] + f[9]
    }
    END {
        print "| store | mode | c | req/s | p50 / p99 | errors |"
        print "|---|---|---|---|---|---|"
        for (o = 1; o <= nk; o++) {
            k = order[o]; split(k, kk, SUBSEP)
            m = split(reps[k], rs, " "); R = ""; P5 = ""; P9 = ""
            for (i = 1; i <= m; i++) { r = k SUBSEP rs[i]; R = R " " rps[r]; P5 = P5 " " p50[r]; P9 = P9 " " p99[r] }
            printf "| %s | %s | %d | %.0f | %s / %s | %d |\n", kk[1], \
                kk[2] == "keycheck" ? "key check (GET /v1/models)" : "chat", kk[3], med(R), \
                us(med(P5)), us(med(P9)), err[k]
        }
    }' "$STORE_RAW")
    cat <<EOF

## litegate store comparison (issue 14) — $(date -u +%Y-%m-%d), $(nproc)-core machine, \`BENCH_DB=$DB_MODE scripts/bench.sh\`

wrk, ${DUR} s per run, ${REPS} repetitions, medians; $KEYS keys seeded in each store; litegate
--workers $WORKERS, default pool (PostgreSQL: 8 connections per instance); c = connections in
total (two instances: two wrk processes at once, c/2 each, req/s summed, p50/p99 the worse of
the two). PostgreSQL: throwaway local cluster, \`synchronous_commit=on\`, fsync off. Everything
(wrk, litegate, PostgreSQL, the fake upstream) shares the machine's cores.

$STORE_REPORT
EOF
    cp "$STORE_RAW" target/bench-store-raw.txt 2>/dev/null || true
fi
