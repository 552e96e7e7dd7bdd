#!/usr/bin/env bash
# The real Claude Code CLI (pinned in package.json) against litegate's zero-config default:
# ANTHROPIC_BASE_URL = the server, the master key as ANTHROPIC_AUTH_TOKEN, the mock models.
# Proves issue 13's "Claude Code pointed at litegate must work" with the client itself (a request
# shaped like its own is in tests/it/messages.rs). Installs nodejs/npm and the CLI when missing;
# its non-essential traffic is turned off, so it talks only to the local server.
# Exits non-zero when anything fails (a missing CLI is a failure, not a skip).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "claude code test: installing nodejs and npm (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q nodejs npm
fi
if [ ! -x tests/claude_code/node_modules/.bin/claude ]; then
    echo "claude code test: installing the pinned CLI (npm ci)"
    (cd tests/claude_code && npm ci --no-audit --no-fund --loglevel=error)
fi
cargo build --quiet --bin litegate

tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
target/debug/litegate --db "$tmp/db.sqlite" --listen 127.0.0.1:0 >"$tmp/out.log" 2>&1 &
pid=$!
base=""
for _ in $(seq 1 100); do
    base=$(grep -o 'listening on http://[0-9.:]*' "$tmp/out.log" | head -1 | sed 's/listening on //') || true
    [ -n "$base" ] && break
    sleep 0.1
done
[ -n "$base" ] || { echo "claude code test: litegate did not start"; cat "$tmp/out.log"; exit 1; }
key=$(grep -o 'master key: sk-[A-Za-z0-9_-]*' "$tmp/out.log" | head -1 | sed 's/master key: //')

mkdir -p "$tmp/home"
HOME="$tmp/home" ANTHROPIC_BASE_URL="$base" ANTHROPIC_AUTH_TOKEN="$key" \
    ANTHROPIC_MODEL=mock-gpt ANTHROPIC_SMALL_FAST_MODEL=mock-gpt-mini \
    ANTHROPIC_DEFAULT_HAIKU_MODEL=mock-gpt-mini \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
    timeout 120 tests/claude_code/node_modules/.bin/claude -p "say hi" --output-format json \
    >"$tmp/result.json" </dev/null

python3 - "$tmp/result.json" "$base" "$key" <<'PY'
import json, sys, urllib.request
r = json.load(open(sys.argv[1]))
assert r.get("is_error") is False, r
assert r.get("result") == "This is a mock response from litegate.", r
req = urllib.request.Request(sys.argv[2] + "/spend/logs",
                             headers={"Authorization": "Bearer " + sys.argv[3]})
logs = json.load(urllib.request.urlopen(req, timeout=10))
rows = [l for l in logs if l.get("call_type") == "anthropic_messages"]
assert rows, logs
assert all(l.get("status") == "success" for l in rows), rows
assert any(l.get("model") == "mock-gpt" and l.get("prompt_tokens", 0) > 0 for l in rows), rows
print(f"claude code test: ok ({len(rows)} /v1/messages call(s), answer {r['result']!r})")
PY
