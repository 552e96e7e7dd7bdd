#!/usr/bin/env bash
# Durability soak (issue 5): SIGKILL litegate at random moments under concurrent management
# writes and metered model calls, N cycles (default 100), checking after every restart that each
# acknowledged write is present and the database passes integrity and foreign-key checks.
# CI runs 20 cycles as part of `cargo test`; this runs more on demand.
set -euo pipefail
cd "$(dirname "$0")/.."
LITEGATE_KILL_CYCLES="${1:-100}" cargo test --test it kill_dash_nine_loses_no_acknowledged_write -- --nocapture
