#!/usr/bin/env bash
# Packaging test (issue 5): build the .deb with cargo-deb, install it with dpkg -i, start the
# installed binary as the service user against the installed default config, check it serves,
# stop it with SIGTERM, and purge the package. Needs root. Run by scripts/test.sh in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v curl >/dev/null || ! command -v pgrep >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q curl procps
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0
cargo deb
deb=$(ls -t target/debian/litegate_*.deb | head -1)
echo "packaging: built $deb"
dpkg -i "$deb"
trap 'dpkg --purge litegate >/dev/null 2>&1 || true; rm -rf /etc/litegate /var/lib/litegate' EXIT

test -x /usr/bin/litegate
/usr/bin/litegate --version
/usr/bin/litegate check-config /etc/litegate/config.yaml
test -f /etc/litegate/litegate.env
test "$(stat -c %a /etc/litegate/litegate.env)" = 640
getent passwd litegate >/dev/null
test -f /lib/systemd/system/litegate.service || test -f /usr/lib/systemd/system/litegate.service
if command -v systemd-analyze >/dev/null; then
    unit=$(ls /lib/systemd/system/litegate.service /usr/lib/systemd/system/litegate.service 2>/dev/null | head -1)
    systemd-analyze verify "$unit" 2>&1 | grep -v "^$" || true
fi

set -a; . /etc/litegate/litegate.env; set +a
log=$(mktemp)
runuser -u litegate -- env LITELLM_MASTER_KEY="$LITELLM_MASTER_KEY" \
    /usr/bin/litegate --config /etc/litegate/config.yaml --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$log" && break
    sleep 0.1
done
addr=$(grep -o 'http://[0-9.:]*' "$log" | head -1)
test -n "$addr" || { cat "$log"; exit 1; }
curl -fsS "$addr/health/readiness" | grep -q '"db":"connected"'
curl -fsS "$addr/v1/models" -H "Authorization: Bearer $LITELLM_MASTER_KEY" | grep -q mock-gpt
curl -fsS "$addr/v1/chat/completions" -H "Authorization: Bearer $LITELLM_MASTER_KEY" \
    -d '{"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}' | grep -q '"choices"'
test "$(stat -c %U /var/lib/litegate/litegate.db)" = litegate
# SIGTERM to litegate itself (runuser is its parent): a clean shutdown exits 0.
lg=$(pgrep -u litegate -f "/usr/bin/litegate --config" | head -1)
kill -TERM "$lg"
status=0
wait "$pid" || status=$?
test "$status" = 0 || { echo "litegate exited $status after SIGTERM"; cat "$log"; exit 1; }
grep -q "WAL checkpointed" "$log" || { cat "$log"; exit 1; }
echo "packaging: 1 passed, 0 failed"
