#!/usr/bin/env bash
# Every test: `cargo test` (unit, integration against the real binary, property tests, on
# SQLite), the whole integration suite again on PostgreSQL (`cargo test --test it` with
# LITEGATE_TEST_PG: a throwaway cluster of scripts/pg.sh, which installs Debian's postgresql when
# missing, started here and stopped at the end if this script started it), the
# web UI's browser tests (ui/test/run.sh: chromium + playwright-core against the binary), the real
# Claude Code CLI against /v1/messages (tests/claude_code/run.sh), then in
# CI (CI=true) or with LITEGATE_TEST_DEB=1 the packaging test, which installs a .deb on this
# machine and so does not run on a developer's machine by default.
set -euo pipefail
cd "$(dirname "$0")/.."
# The top-level modules of src/ never import each other in a circle (issue 12).
python3 scripts/import-cycles.py >/dev/null
# The throwaway PostgreSQL (issue 14) lives in a directory of this script's own, so a cluster
# someone else started (scripts/pg.sh's default directory) is neither used nor stopped here. The
# SQLite pass's tests/it/pg.rs start it too; whoever starts it, it is stopped on exit if it was
# not running when this script began.
export LITEGATE_PG_DIR="${LITEGATE_PG_DIR:-/tmp/litegate-test-pg-$(id -u)}"
if ! bash scripts/pg.sh status >/dev/null 2>&1; then
    trap 'bash scripts/pg.sh stop' EXIT
fi
# The SQLite pass (a LITEGATE_TEST_PG in the caller's environment would move it to PostgreSQL).
env -u LITEGATE_TEST_PG cargo test
# The whole integration suite on PostgreSQL, each test on a database of its own; a
# LITEGATE_TEST_PG given by the caller (an admin URL) is used instead of the throwaway cluster.
# (A plain assignment, so that a failed start stops the script under `set -e`.)
pg_url="${LITEGATE_TEST_PG:-}"
if [ -z "$pg_url" ]; then
    pg_url="$(bash scripts/pg.sh start)"
fi
# The tests that bring PostgreSQL databases of their own (pg::, multi_instance::, pg_outage::,
# copy_db::, import_litellm::) ran in the first pass already; they are not run twice.
LITEGATE_TEST_PG="$pg_url" cargo test --test it -- \
    --skip pg:: --skip multi_instance:: --skip pg_outage:: --skip copy_db:: --skip import_litellm::
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
