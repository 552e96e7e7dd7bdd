#!/usr/bin/env bash
# HTTP-layer profile (issue 17), load-independent: system calls and instructions per call, not
# wall-clock. Release litegate in front of target/release/fake_upstream (the benchmark's
# setup, scripts/bench.sh, with a small seed), one keep-alive client connection at c=1.
#
#   strace:   after a warm-up, `strace -f -c` attached to every litegate thread for N calls;
#             prints the syscall table divided by N (calls per model call).
#   callgrind: litegate under valgrind with instrumentation off; switched on after the warm-up
#             for N calls; prints instructions per call, total and by layer (inclusive costs
#             of the tiny_http read/parse, the response write, the upstream client (ureq), ...).
#
# Usage: scripts/profile-http.sh [strace|callgrind|both]   (or `report DIR`: reprint a kept run)
#        (env: PROFILE_CALLS=1000, PROFILE_MODE="json sse", PROFILE_KEEP=1 keeps the work dir, PROFILE_NOBUILD=1)
set -euo pipefail
cd "$(dirname "$0")/.."

WHAT=${1:-both}
# `report DIR`: the callgrind tables again from a kept work dir.
if [ "$WHAT" = report ]; then
    WORK=$2
    PROFILE_NOBUILD=1
fi
N=${PROFILE_CALLS:-1000}
MODES=${PROFILE_MODE:-"json sse"}
say() { echo "profile: $*" >&2; }

if [ -z "${PROFILE_NOBUILD:-}" ]; then
    say "building release binaries"
    cargo build --release --quiet --bin litegate --bin fake_upstream --bin seed
fi
BIN=${PROFILE_BIN:-target/release}
[ "$WHAT" = report ] || WORK=$(mktemp -d "${TMPDIR:-/tmp}/litegate-profile.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -z "${PROFILE_KEEP:-}" ] && [ "$WHAT" != report ]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap cleanup EXIT

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
"$BIN/fake_upstream" --listen 127.0.0.1:0 >"$WORK/fake.out" 2>&1 &
PIDS+=($!)
UP_PORT=$(port_of "$WORK/fake.out")
KEY=$("$BIN/seed" --db "$WORK/p.db" --keys 1000 --models bench 2>/dev/null)
cat >"$WORK/config.yaml" <<EOF
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$UP_PORT/v1
      api_key: sk-fake-provider-key
general_settings:
  master_key: sk-profile-master-key-0123456789
EOF

# The client: one keep-alive connection, COUNT calls, every answer checked (status 200 and, for
# streams, the final chunk). Python's http.client: its cost is not litegate's.
cat >"$WORK/client.py" <<'EOF'
import http.client, json, sys
port, key, mode, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
body = {"model": "bench", "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "max_tokens": 16}
if mode == "sse":
    body["stream"] = True
body = json.dumps(body).encode()
h = {"Content-Type": "application/json", "Authorization": "Bearer " + key}
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    c.request("POST", "/v1/chat/completions", body, h)
    r = c.getresponse()
    data = r.read()
    if r.status != 200 or (mode == "sse" and b"[DONE]" not in data):
        sys.exit(f"bad answer {r.status}: {data[:200]!r}")
EOF

fi

LG=()
start_litegate() {
    "${LG[@]}" "$BIN/litegate" --config "$WORK/config.yaml" --db "$WORK/p.db" \
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
    python3 "$WORK/client.py" "$LG_PORT" "$KEY" "$mode" 200
    local args=()
    for t in /proc/"$LG_PID"/task/*; do args+=(-p "${t##*/}"); done
    strace -f -c -o "$WORK/strace.$mode" "${args[@]}" 2>/dev/null &
    local st=$!
    sleep 1
    python3 "$WORK/client.py" "$LG_PORT" "$KEY" "$mode" "$N"
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
    python3 "$WORK/client.py" "$LG_PORT" "$KEY" "$mode" 100
    callgrind_control -i on "$LG_PID" >/dev/null
    python3 "$WORK/client.py" "$LG_PORT" "$KEY" "$mode" "$N"
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

for mode in $MODES; do
    case "$WHAT" in
    report) cg_report "$mode" ;;
    strace) run_strace "$mode" ;;
    callgrind) run_callgrind "$mode" ;;
    both) run_strace "$mode"; run_callgrind "$mode" ;;
    *) echo "usage: $0 [strace|callgrind|both]" >&2; exit 2 ;;
    esac
done
