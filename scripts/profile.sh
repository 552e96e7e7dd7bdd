#!/usr/bin/env bash
# Per-call profile of litegate (issue 17), in figures that do not depend on machine load:
# instructions per call under valgrind's callgrind (repeatable on a busy machine, where wall-clock
# timing is noise) and system calls per call under strace. Release build, the benchmark's fake
# upstream (src/bin/fake_upstream.rs), a seeded database, one keep-alive client at c=1.
# Two modes (PROFILE_MODE), one setup:
#
# layers (default): litegate by layer, the floor proxy beside it (../shared/perf-floor `--mode b`,
#   when present). PROFILE_CALLS non-streaming chat calls after PROFILE_WARM warm-up calls: once
#   under callgrind (counters zeroed after the warm-up with callgrind_control, dumped after the
#   calls) and once under strace -c -f (the warm-up's calls subtracted by a second run of only
#   the warm-up). Prints one Markdown table per tool: instructions per call by layer (inclusive,
#   every thread), and system calls per call by name.
# http: the HTTP layer, JSON and SSE (PROFILE_KINDS); 1,000 keys seeded unless PROFILE_KEYS.
#   strace:    after a warm-up, `strace -f -c` attached to every litegate thread for N calls;
#              prints the syscall table divided by N (calls per model call).
#   callgrind: litegate under valgrind with instrumentation off; switched on after the warm-up
#              for N calls; prints instructions per call, total and by layer (inclusive costs
#              of the tiny_http read/parse, the response write, the upstream client (ureq), ...).
#
# Usage: scripts/profile.sh      (env: PROFILE_CALLS=2000 PROFILE_WARM=200 PROFILE_KEYS=100000
#                                 PROFILE_STREAM=1 streams instead)
#        PROFILE_MODE=http scripts/profile.sh [strace|callgrind|both]   (or `report DIR`:
#                                 reprint a kept run; env: PROFILE_CALLS=1000 PROFILE_KINDS="json sse")
#        Either mode: PROFILE_KEEP=1 keeps the work dir; PROFILE_BIN=DIR profiles the binaries
#        in DIR (litegate, fake_upstream, seed; PROFILE_NOBUILD=1 skips the build); LITEGATE_*
#        variables reach litegate, e.g. LITEGATE_ACCESS_LOG_BATCH=0 for a line per write.
#        PROFILE_SEED_SQL='...' runs that SQL on the seeded database (system sqlite3) before
#        the runs: one binary against a schema variant, e.g. an index as an older schema had it.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${PROFILE_MODE:-layers}
case "$MODE" in
layers | http) ;;
*) echo "profile: PROFILE_MODE is layers or http, not '$MODE'" >&2; exit 2 ;;
esac
WHAT=${1:-both}
if [ "$MODE" = http ] && [ "$WHAT" = report ]; then
    WORK=${2:?usage: PROFILE_MODE=http $0 report DIR}
    PROFILE_NOBUILD=1
fi
if [ "$MODE" = http ]; then
    CALLS=${PROFILE_CALLS:-1000}
    KEYS=${PROFILE_KEYS:-1000}
else
    CALLS=${PROFILE_CALLS:-2000}
    KEYS=${PROFILE_KEYS:-100000}
fi
N=$CALLS
WARM=${PROFILE_WARM:-200}
STREAM=${PROFILE_STREAM:-}
KINDS=${PROFILE_KINDS:-"json sse"}
say() { echo "profile: $*" >&2; }
for t in valgrind callgrind_control callgrind_annotate strace python3; do
    command -v "$t" >/dev/null || { say "needs $t (apt-get install valgrind strace python3)"; exit 2; }
done

if [ -z "${PROFILE_NOBUILD:-}" ]; then
    say "building release binaries"
    cargo build --release --quiet --bin litegate --bin fake_upstream --bin seed
fi
BIN=${PROFILE_BIN:-target/release}
FLOOR_SRC=${BENCH_FLOOR_SRC:-../shared/perf-floor}
FLOOR_BIN=""
if [ "$MODE" = http ]; then
    :
elif [ -f "$FLOOR_SRC/Cargo.toml" ] && [ -z "$STREAM" ]; then
    cargo build --release --quiet --manifest-path "$FLOOR_SRC/Cargo.toml" --target-dir target/perf-floor
    FLOOR_BIN=target/perf-floor/release/thread_proxy_floor
else
    say "the floor is skipped (no $FLOOR_SRC, or streams)"
fi

[ "$WHAT" = report ] || WORK=$(mktemp -d "${TMPDIR:-/tmp}/litegate-profile.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -z "${PROFILE_KEEP:-}" ] && [ "$WHAT" != report ]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    local i
    for i in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    say "nothing listens on $1"; exit 1
}
# The port of a server's "listening on ...:PORT" line in file $1.
port_of() {
    local f=$1 i
    for i in $(seq 1 600); do
        if grep -q "listening on" "$f" 2>/dev/null; then
            grep -m1 "listening on" "$f" | sed -E 's/.*:([0-9]+)\/?$/\1/'
            return
        fi
        sleep 0.05
    done
    say "no 'listening on' in $f"; cat "$f" >&2; exit 1
}

if [ "$WHAT" != report ]; then
    UP_PORT=$(free_port)
    "$BIN/fake_upstream" --listen "127.0.0.1:$UP_PORT" >"$WORK/fake.out" 2>&1 &
    PIDS+=($!)
    wait_port "$UP_PORT"
    KEY=$("$BIN/seed" --db "$WORK/seed.db" --keys "$KEYS" --models bench)
    export KEY
    if [ -n "${PROFILE_SEED_SQL:-}" ]; then
        command -v sqlite3 >/dev/null || { say "PROFILE_SEED_SQL needs sqlite3"; exit 2; }
        sqlite3 "$WORK/seed.db" "$PROFILE_SEED_SQL"
    fi
    cat >"$WORK/config.yaml" <<EOF
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$UP_PORT/v1
      api_key: sk-fake-provider-key
general_settings:
  master_key: sk-profile-master-key-0123456789abcdef
EOF

    # The client: calls.py PORT N MODEL [json|sse]: N chat calls on one keep-alive connection
    # (Python's http.client: its cost is not litegate's); fails on any non-200 answer and on a
    # stream without its final `[DONE]`. Streams for `sse` or when PROFILE_STREAM is set.
    cat >"$WORK/calls.py" <<'EOF'
import http.client, json, os, sys
port, n, model = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sse = sys.argv[4:5] == ["sse"] or bool(os.environ.get("PROFILE_STREAM"))
body = {"model": model, "messages": [{"role": "user", "content": "Say hello to the benchmark."}], "max_tokens": 16}
if sse:
    body["stream"] = True
body = json.dumps(body, separators=(",", ":"))
h = {"Authorization": "Bearer " + os.environ["KEY"], "Content-Type": "application/json"}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for i in range(n):
    c.request("POST", "/v1/chat/completions", body, h)
    r = c.getresponse()
    data = r.read()
    if r.status != 200 or (sse and b"[DONE]" not in data):
        sys.exit(f"call {i}: {r.status} {data[:300]!r}")
EOF
fi
calls() { python3 "$WORK/calls.py" "$@"; }

# ==== PROFILE_MODE=http: the HTTP layer, JSON and SSE ===========================================
if [ "$MODE" = http ]; then
LG=()
start_litegate() {
    "${LG[@]}" "$BIN/litegate" --config "$WORK/config.yaml" --db "$WORK/seed.db" \
        --listen 127.0.0.1:0 --workers 64 >"$WORK/lg.out" 2>"$WORK/lg.log" &
    LG_PID=$!
    PIDS+=("$LG_PID")
    LG_PORT=$(port_of "$WORK/lg.out")
}
stop_litegate() { kill "$LG_PID" 2>/dev/null || true; wait "$LG_PID" 2>/dev/null || true; }

run_strace() {
    local mode=$1
    LG=()
    start_litegate
    calls "$LG_PORT" "$WARM" bench "$mode"
    local args=()
    for t in /proc/"$LG_PID"/task/*; do args+=(-p "${t##*/}"); done
    strace -f -c -o "$WORK/strace.$mode" "${args[@]}" 2>/dev/null &
    local st=$!
    sleep 1
    calls "$LG_PORT" "$N" bench "$mode"
    kill -INT "$st"
    wait "$st" 2>/dev/null || true
    stop_litegate
    echo "== strace, $mode: system calls per call (N=$N, errors = EAGAIN/timeouts)"
    awk -v n="$N" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
        name = $NF; if (name == "total") next; calls = $4; errs = (NF == 6 ? $5 : 0);
        if (calls / n >= 0.05) printf "  %-16s %6.2f  errors %5.2f\n", name, calls / n, errs / n;
        total += calls } END { printf "  %-16s %6.2f\n", "total", total / n }' "$WORK/strace.$mode"
}

run_callgrind() {
    local mode=$1
    LG=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.$mode.%p")
    start_litegate
    calls "$LG_PORT" 100 bench "$mode"
    callgrind_control -i on "$LG_PID" >/dev/null
    calls "$LG_PORT" "$N" bench "$mode"
    callgrind_control -i off "$LG_PID" >/dev/null
    callgrind_control -d "$LG_PID" >/dev/null
    stop_litegate
    local f
    f=$(ls -S "$WORK"/cg."$mode".* | head -1)
    callgrind_annotate --inclusive=yes --threshold=100 "$f" >"$WORK/cg.$mode.txt" 2>/dev/null
    cg_report "$mode"
}

# Instructions per call by layer from $WORK/cg.MODE.txt (callgrind_annotate --inclusive).
cg_report() {
    local mode=$1
    echo "== callgrind, $mode: instructions per call (N=$N), inclusive, by layer"
    awk -v n="$N" '
        function show(label, pat,   i, best) {
            best = 0
            for (i = 1; i <= nl; i++) if (index(fn[i], pat) && ir[i] > best) best = ir[i]
            printf "  %-50s %9.0f\n", label, best / n
        }
        /PROGRAM TOTALS/ { t = $1; gsub(",", "", t); t += 0; next }
        /^ *[0-9,]+ / {
            x = $1; gsub(",", "", x); if (x !~ /^[0-9]+$/) next
            $1 = ""; nl++; ir[nl] = x + 0; fn[nl] = $0
        }
        END {
            printf "  %-50s %9.0f\n", "whole process", t / n
            show("connection thread: one request", "tiny_http::Server::from_listener_inner::{{closure}}::{{closure}}")
            show("tiny_http: next request (read head, parse)", "ClientConnection as core::iter::traits::iterator::Iterator>::next")
            show("  of which: the request object (new_request)", "tiny_http::request::new_request_with_state")
            show("tiny_http: previous reader hand-off (drop)", "SequentialReader<R> as core::ops::drop::Drop>::drop")
            show("litegate: the request (server::handler)", "litegate::server::handler::{{closure}}")
            show("  body read (server::read_body)", "litegate::server::read_body")
            show("  response write (tiny_http respond_impl)", "tiny_http::request::Request::respond_impl")
            show("  stream write (server::sse::write)", "litegate::server::sse::write")
            show("  stream write (server::respond_sse, before)", "litegate::server::respond_sse")
            show("  upstream: ureq request + answer head", "ureq::request::RequestBuilder<ureq::request::WithBody>::send")
            show("  upstream: ureq body read (JSON)", "ureq::body::BodyWithConfig::read_to_vec")
            show("  upstream: ureq body reads (stream)", "<ureq::run::BodyHandler as std::io::Read>::read")
            show("  key check (dispatch::admit)", "litegate::http::dispatch::admit")
            show("  spend (call::Call::settle)", "litegate::call::Call::settle")
            show("  access log line", "<litegate::NoStatementParams as log::Log>::log")
        }' "$WORK/cg.$mode.txt"
}

for mode in $KINDS; do
    case "$WHAT" in
    report) cg_report "$mode" ;;
    strace) run_strace "$mode" ;;
    callgrind) run_callgrind "$mode" ;;
    both) run_strace "$mode"; run_callgrind "$mode" ;;
    *) echo "usage: PROFILE_MODE=http $0 [strace|callgrind|both|report DIR]" >&2; exit 2 ;;
    esac
done
exit 0
fi

# ==== PROFILE_MODE=layers (default): by layer, the floor beside ================================
# start NAME WRAPPER... : starts target NAME (litegate or floor) under WRAPPER on a free port.
# Sets T_PID (the wrapper's pid: valgrind and strace run the target in their own process) and T_PORT.
start() {
    local name=$1
    shift
    T_PORT=$(free_port)
    if [ "$name" = litegate ]; then
        rm -f "$WORK/run.db"*
        cp "$WORK/seed.db" "$WORK/run.db"
        "$@" "$BIN/litegate" --config "$WORK/config.yaml" --db "$WORK/run.db" \
            --listen "127.0.0.1:$T_PORT" --workers 64 >"$WORK/$name.out" 2>"$WORK/$name.log" &
    else
        "$@" "$FLOOR_BIN" --listen "127.0.0.1:$T_PORT" --upstream "127.0.0.1:$UP_PORT" --mode b \
            --key "$KEY" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    fi
    T_PID=$!
    PIDS+=("$T_PID")
    wait_port "$T_PORT"
}
# Stops the target: under valgrind the wrapper is the target itself; under strace, its child.
stop() {
    local victim
    victim=$(pgrep -P "$T_PID" | head -1 || true)
    kill -TERM "${victim:-$T_PID}" 2>/dev/null || true
    wait "$T_PID" 2>/dev/null || true
}
model_of() { [ "$1" = litegate ] && echo bench || echo fake-gpt; }

TARGETS=(litegate)
[ -n "$FLOOR_BIN" ] && TARGETS+=(floor)

# ---- callgrind: instructions per call, by layer --------------------------------------------
for t in "${TARGETS[@]}"; do
    say "$t under callgrind: $WARM warm-up calls, then $CALLS"
    start "$t" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$t.%p" --dump-instr=no \
        --collect-systime=no --separate-threads=no
    calls "$T_PORT" "$WARM" "$(model_of "$t")"
    callgrind_control --zero "$T_PID" >/dev/null
    calls "$T_PORT" "$CALLS" "$(model_of "$t")"
    callgrind_control --dump=measured "$T_PID" >/dev/null
    stop
    f=$(ls "$WORK"/cg."$t".*.1 2>/dev/null | head -1)
    [ -n "$f" ] || f=$(grep -l "^desc: Trigger: Client Request: measured" "$WORK"/cg."$t".* | head -1)
    callgrind_annotate --auto=no --inclusive=yes --threshold=100 "$f" >"$WORK/incl.$t.txt" 2>/dev/null
    callgrind_annotate --auto=no --inclusive=no --threshold=100 "$f" >"$WORK/self.$t.txt" 2>/dev/null
done

# Layers: inclusive instructions of the functions that own them (a name matched anywhere in
# callgrind_annotate's function column; the largest match counts, so nesting is not summed),
# and self instructions summed over a family of functions (SQLite, serde_json, the kernel's
# side is not counted by callgrind).
summarise() {
    python3 - "$WORK" "$CALLS" "${TARGETS[@]}" <<'EOF'
import re, sys
work, calls, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def rows(path):
    out = []
    for line in open(path, errors="replace"):
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*)$", line)
        if m and not line.lstrip().startswith("--"):
            try:
                out.append((int(m.group(1).replace(",", "")), m.group(2)))
            except ValueError:
                pass
    return out
INCL = [  # layer, regex on the function name (inclusive, largest match)
    ("HTTP read: request head and body (tiny_http)", r"tiny_http::.*(read_request|ClientConnection.*next|Request.*from)|read_body"),
    ("HTTP write: the answer (server::respond)", r"litegate::server::respond(_sse)?\b"),
    ("key check (auth::authenticate)", r"litegate::auth::authenticate\b"),
    ("call::run (body to settlement, incl. upstream)", r"litegate::call::run\b"),
    ("upstream round trip (call::relay::forward, ureq)", r"litegate::call::relay::forward\b"),
    ("spend commit (Call::settle)", r"litegate::call::.*settle\b"),
    ("spend group commit (db::spend)", r"litegate::db::spend::.*(commit|write)"),
    ("access log line (log::__private_api)", r"log::__private_api::log"),
    ("log writer thread (log_batch)", r"litegate::log_batch::(writer|Shared::drain)"),
    ("spend journal applier thread (db::journal_apply)", r"journal_apply\.rs:(std::sys::backtrace::__rust_begin_short_backtrace|litegate::db::journal_apply::Applier::run\b)"),
    ("WAL checkpointer thread", r"litegate::db::.*checkpoint"),
    ("metrics", r"litegate::metrics::"),
]
SELF = [
    ("SQLite (self, all sqlite3* functions)", r"sqlite3|^0x.*libsqlite|rusqlite"),
    ("serde_json (self)", r"serde_json::|<serde_json"),
    # glibc's malloc family, or jemalloc's / mimalloc's library when one is the global allocator
    ("allocator (self: malloc/free/realloc)", r"\b(malloc|free|realloc|calloc|_int_malloc|_int_free|cfree)\b|_rjem_|tikv-jemalloc-sys|libmimalloc-sys|\bmi_|_mi_"),
    ("memcpy/memmove/memset (self)", r"mem(cpy|move|set)"),
]
for t in targets:
    inc, slf = rows(f"{work}/incl.{t}.txt"), rows(f"{work}/self.{t}.txt")
    total = next((n for n, name in slf if "PROGRAM TOTALS" in name), None)
    if total is None:
        total = sum(n for n, _ in slf)
    print(f"\n### {t}: instructions per call ({calls} calls at c=1, callgrind, every thread)\n")
    print("| layer | instructions/call | share |")
    print("|---|---:|---:|")
    print(f"| **total** | {total / calls:,.0f} | 100 % |")
    for label, rx in INCL:
        n = max((n for n, name in inc if re.search(rx, name)), default=0)
        if n:
            print(f"| {label} | {n / calls:,.0f} | {100 * n / total:.0f} % |")
    for label, rx in SELF:
        n = sum(n for n, name in slf if re.search(rx, name) and "PROGRAM TOTALS" not in name)
        if n:
            print(f"| {label} | {n / calls:,.0f} | {100 * n / total:.0f} % |")
EOF
}
CG_TABLE=$(summarise)

# ---- strace -c -f: system calls per call ------------------------------------------------------
# Two runs per target (warm-up only; warm-up + CALLS): the difference is CALLS calls' worth.
strace_run() {
    local t=$1 n=$2
    start "$t" strace -c -f -o "$WORK/st.$t.$n"
    calls "$T_PORT" "$WARM" "$(model_of "$t")"
    [ "$n" -gt 0 ] && calls "$T_PORT" "$n" "$(model_of "$t")"
    stop
}
for t in "${TARGETS[@]}"; do
    say "$t under strace -c -f"
    strace_run "$t" 0
    strace_run "$t" "$CALLS"
done
ST_TABLE=$(python3 - "$WORK" "$CALLS" "${TARGETS[@]}" <<'EOF'
import re, sys
work, calls, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def counts(path):
    c = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and re.match(r"^[\d.]+$", f[0]) and f[-1] != "total":
            n = int(f[3]); c[f[-1]] = n
    return c
per = {}
for t in targets:
    a, b = counts(f"{work}/st.{t}.0"), counts(f"{work}/st.{t}.{calls}")
    per[t] = {k: (b.get(k, 0) - a.get(k, 0)) / calls for k in set(a) | set(b)}
names = sorted({k for t in targets for k, v in per[t].items() if v >= 0.05},
               key=lambda k: -per[targets[0]].get(k, 0))
print("| system call | " + " | ".join(f"{t} per call" for t in targets) + " |")
print("|---|" + "---:|" * len(targets))
print("| **total** | " + " | ".join(f"{sum(v for v in per[t].values()):.1f}" for t in targets) + " |")
for k in names:
    print(f"| {k} | " + " | ".join(f"{per[t].get(k, 0):.2f}" for t in targets) + " |")
EOF
)

cat <<EOF

## litegate per-call profile — $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), \`scripts/profile.sh\`

$CALLS ${STREAM:+streaming }chat calls at c=1 on one keep-alive connection after $WARM warm-up calls,
$KEYS keys seeded, the fake upstream; every thread of the target counted.
$CG_TABLE

### system calls per call (strace -c -f, warm-up subtracted)

$ST_TABLE
EOF
