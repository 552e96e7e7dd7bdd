#!/usr/bin/env bash
# Prints `diff -ru` of the pristine tiny_http 0.12.0 (as published on crates.io) against our
# fork in vendor/tiny_http, so a reviewer can check that vendor/tiny_http/PATCHES.md lists every
# hunk. The .crate is fetched by cargo itself (checksum-verified against the registry index) for
# a temporary project, never this one, and unpacked as published. Packaging noise is left out:
# PATCHES.md, the
# registry's Cargo.toml.orig / Cargo.lock / .cargo_vcs_info.json / checksum files, and the
# crate's benches/, examples/ and tests/, which we do not vendor. Exit status 0 whether or not
# there are differences (there are: that is the fork); non-zero if the download fails.
#   scripts/vendor-diff.sh            the full diff
#   scripts/vendor-diff.sh --stat     one line per changed file (diffstat-like)
#   scripts/vendor-diff.sh postgres [--stat]   the same for vendor/postgres (postgres 0.19.14,
#                                     vendor/postgres/PATCHES.md)
set -euo pipefail
cd "$(dirname "$0")/.."
name=tiny_http
version=0.12.0
if [ "${1:-}" = postgres ]; then
    name=postgres
    version=0.19.14
    shift
fi
here=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/p/src"
cat > "$tmp/p/Cargo.toml" <<TOML
[package]
name = "vendor-diff-probe"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$name = "=$version"

[workspace]
TOML
: > "$tmp/p/src/lib.rs"
(cd "$tmp/p" && cargo fetch --quiet)
crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/$name-$version.crate 2>/dev/null | head -n1)
[ -n "$crate" ] || { echo "vendor-diff: $name-$version.crate not found after cargo fetch" >&2; exit 2; }
mkdir -p "$tmp/v"
tar xzf "$crate" -C "$tmp/v"
pristine="$tmp/v/$name-$version"

excludes=(-x PATCHES.md -x Cargo.toml.orig -x Cargo.lock -x .cargo_vcs_info.json
          -x .cargo-checksum.json -x .cargo-ok -x benches -x examples -x tests)
status=0
if [ "${1:-}" = "--stat" ]; then
    diff -rq "${excludes[@]}" "$pristine" "$here/vendor/$name" | sed "s|$pristine|upstream|; s|$here/||" || status=$?
else
    (cd "$tmp/v" && diff -ru "${excludes[@]}" "$name-$version" "$here/vendor/$name") \
        | sed "s|$here/||" || status=$?
fi
# diff: 0 = same, 1 = differences, 2 = trouble.
[ "$status" -le 1 ] || exit "$status"
