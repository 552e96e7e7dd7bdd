#!/usr/bin/env bash
# Issue 15 item 1: the README's two commands work on a fresh clone. The two commands are read
# from README.md (the first fenced `sh` block of its opening, one command per line, comments
# after `#` dropped), never written here:
# - the first (`cargo run --release`) runs in a fresh clone of this commit until the server it
#   starts answers `GET /health/readiness` with 200, then its process group is stopped;
# - the second (`./scripts/test.sh`) is what `.ci/run` runs, and this script is run by it, so
#   running it again would recurse: instead `.ci/run` must run exactly that one command (and
#   nothing else), and the clone must hold it as an executable file.
# The clone builds into CARGO_TARGET_DIR (default: this checkout's `target/`), so the release
# profile's dependencies are compiled once and reused. The clone's own crates (litegate and the
# vendored tiny_http) are rebuilt every time, since a fresh clone's files are new; to keep that
# short the clone is made at the same place each run (`$CARGO_TARGET_DIR/readme-clone`, removed
# first) and built with CARGO_INCREMENTAL=1, so rustc reuses what did not change.
# The server binds 0.0.0.0:4000 as the README says: a port already taken there fails the test
# with that reason. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

fail() { echo "readme commands: $*" >&2; exit 1; }

# The README's opening commands: the first ```sh block.
mapfile -t cmds < <(awk '
    /^```sh[[:space:]]*$/ && !seen { inside = 1; seen = 1; next }
    inside && /^```/ { exit }
    inside {
        line = $0
        sub(/[[:space:]]+#.*$/, "", line)
        sub(/^[[:space:]]+/, "", line)
        sub(/[[:space:]]+$/, "", line)
        if (line != "") print line
    }' README.md)
[ "${#cmds[@]}" -ge 2 ] || fail "README.md's first sh block has fewer than two commands"
first=${cmds[0]}
second=${cmds[1]}
echo "readme commands: first:  $first"
echo "readme commands: second: $second"

# The second command: .ci/run runs exactly it (its other lines: comments, `set`, `cd`).
mapfile -t ci < <(grep -vE '^[[:space:]]*(#|$|set |cd )' .ci/run)
[ "${#ci[@]}" -eq 1 ] || fail ".ci/run runs ${#ci[@]} commands, expected only: $second"
[ "${ci[0]}" = "$second" ] || fail ".ci/run runs '${ci[0]}', the README says '$second'"
grep -qE '^cd "\$\(dirname "\$0"\)/\.\."$' .ci/run || fail ".ci/run does not run from the repository root"

# The first command, in a fresh clone of this commit.
commit=$(git rev-parse HEAD)
export CARGO_TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target}")
clone=$CARGO_TARGET_DIR/readme-clone
tmp=$(mktemp -d)
pgid=""
cleanup() {
    if [ -n "$pgid" ]; then
        kill -TERM -- "-$pgid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    rm -rf "$tmp" "$clone"
}
trap cleanup EXIT
rm -rf "$clone"
git clone --quiet --no-checkout "$repo" "$clone"
git -C "$clone" checkout --quiet "$commit"
prog=${second%% *}
[ -x "$clone/$prog" ] || fail "the second command's program $prog is not an executable file in the clone"

if (exec 3<>/dev/tcp/127.0.0.1/4000) 2>/dev/null; then
    fail "port 4000 is already taken; the README's first command serves there"
fi
start=$(date +%s)
# Its own process group (setsid), so stopping it stops cargo and the server it started.
(cd "$clone" && CARGO_INCREMENTAL=1 exec setsid bash -c "$first" >"$tmp/out.log" 2>&1) &
pgid=$!
ready=""
for _ in $(seq 1 9000); do   # up to 15 minutes: the first release build from nothing is slow
    if ! kill -0 "$pgid" 2>/dev/null; then
        cat "$tmp/out.log" >&2
        fail "'$first' exited before the server was ready"
    fi
    if grep -q 'listening on http://0.0.0.0:4000' "$tmp/out.log" &&
        status=$(curl -s -o "$tmp/ready.json" -w '%{http_code}' http://127.0.0.1:4000/health/readiness) &&
        [ "$status" = "200" ]; then
        ready=1
        break
    fi
    sleep 0.1
done
[ -n "$ready" ] || { tail -50 "$tmp/out.log" >&2; fail "no 200 from /health/readiness"; }
grep -q '"status"' "$tmp/ready.json" || fail "readiness answered without a status: $(cat "$tmp/ready.json")"
[ -f "$clone/litegate.db" ] || fail "the server did not create ./litegate.db in the clone"
grep -q 'master key: sk-' "$tmp/out.log" || fail "the first start printed no master key"
echo "readme commands: '$first' answered /health/readiness after $(($(date +%s) - start)) s: $(cat "$tmp/ready.json")"
