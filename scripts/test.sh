#!/usr/bin/env bash
# Every test: `cargo test` (unit, integration against the real binary, property tests), the
# web UI's browser tests (ui/test/run.sh: chromium + playwright-core against the binary), the real
# Claude Code CLI against /v1/messages (tests/claude_code/run.sh), then in
# CI (CI=true) or with LITEGATE_TEST_DEB=1 the packaging test, which installs a .deb on this
# machine and so does not run on a developer's machine by default.
set -euo pipefail
cd "$(dirname "$0")/.."
# The top-level modules of src/ never import each other in a circle (issue 12).
python3 scripts/import-cycles.py >/dev/null
cargo test
# The README's two commands on a fresh clone (issue 15 item 1): the first until it serves.
bash tests/readme_commands.sh
# The vendored tiny_http fork's own tests (its parser property test; not a workspace member).
cargo test -p tiny_http --lib
# The web UI in a real browser (installs Debian's chromium and playwright-core when missing).
bash ui/test/run.sh
# The real Claude Code CLI (pinned) against the zero-config default's /v1/messages.
bash tests/claude_code/run.sh
if [ "${CI:-}" = "true" ] || [ "${LITEGATE_TEST_DEB:-}" = "1" ]; then
    bash packaging/test-deb.sh
else
    echo "packaging test not run (it installs a .deb; set LITEGATE_TEST_DEB=1 to run it)"
fi
