#!/usr/bin/env bash
# Browser tests of the web UI (issue 7): installs Debian's chromium and the pinned npm packages
# when missing, builds the debug binary, and runs ui/test/ui.test.mjs with node's test runner.
# Exits non-zero when anything fails (a missing browser is a failure, not a skip).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/chromium ]; then
    echo "ui tests: installing chromium (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q chromium
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "ui tests: installing nodejs and npm (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q nodejs npm
fi
if [ ! -d ui/test/node_modules/playwright-core ]; then
    echo "ui tests: installing playwright-core (npm ci)"
    (cd ui/test && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -z "${LITEGATE_BIN:-}" ]; then
    cargo build --quiet
fi
cd ui/test
exec node --test --test-concurrency=1 --test-timeout=180000 ui.test.mjs
