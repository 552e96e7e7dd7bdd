#!/usr/bin/env bash
# A throwaway PostgreSQL for tests (issue 14): `scripts/pg.sh start|stop|url|status`.
#
# start  installs Debian's `postgresql` when its binaries are missing (apt-get), then initdb +
#        pg_ctl as a non-root user (the `postgres` account when run as root) in a temp
#        directory, listening on a free loopback port only; prints the postgresql:// URL.
#        Idempotent: a cluster already running is reused and its URL printed again.
# url    prints the URL of the running cluster (exit 1 when none runs).
# stop   stops the cluster and removes its directory.
#
# For outage tests (tests/it/pg_outage.rs), on a cluster of their own (LITEGATE_PG_DIR):
# kill   stops the server at once (`pg_ctl stop -m immediate`: no clean shutdown, clients see
#        their connections reset), keeping the directory; `start` brings it back on the SAME
#        port (a stopped cluster keeps its port while the port is free).
# pause  SIGSTOP of the postmaster and every backend: TCP still accepts (the kernel's listen
#        backlog) but nobody answers. `resume`: SIGCONT, the server goes on where it was.
#
# The cluster is for tests only: fsync is off (a crash of the machine may lose it; nothing in
# it outlives a test run), password authentication (scram) on 127.0.0.1 only, no TCP elsewhere.
# Tests give each case its own database (tests/it/common.rs: LITEGATE_TEST_PG=<url>).
# The directory is $LITEGATE_PG_DIR (default /tmp/litegate-pg-$UID). $LITEGATE_PG_OPTS adds
# server options at start (e.g. `-c synchronous_commit=on`: with the default `off` a commit is
# acknowledged before its WAL is written, so `kill` loses the last ones — right for speed,
# wrong for a test of acknowledged writes).
set -euo pipefail

DIR="${LITEGATE_PG_DIR:-/tmp/litegate-pg-$(id -u)}"
USER_NAME=litegate
PASSWORD=litegate

bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

install_pg() {
    if bindir >/dev/null; then return 0; fi
    if [ "$(id -u)" != 0 ]; then
        echo "pg.sh: PostgreSQL is not installed and this is not root: apt-get install postgresql" >&2
        exit 1
    fi
    echo "pg.sh: installing Debian's postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -o DPkg::Lock::Timeout=300 postgresql >/dev/null 2>&1 || {
        apt-get update -o DPkg::Lock::Timeout=300 >/dev/null
        apt-get install -y -o DPkg::Lock::Timeout=300 postgresql >/dev/null
    }
    bindir >/dev/null || { echo "pg.sh: no initdb after installing postgresql" >&2; exit 1; }
}

# Runs a PostgreSQL binary as the cluster's owner (never root: initdb and postgres refuse it).
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() {
    [ -f "$DIR/port" ] || return 1
    echo "postgresql://$USER_NAME:$PASSWORD@127.0.0.1:$(cat "$DIR/port")/postgres"
}

running() {
    [ -d "$DIR/data" ] && as_owner "$(bindir)/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Whether nothing listens on port $1. SO_REUSEADDR as the postmaster's own listen socket: the
# connections of a killed server linger in TIME_WAIT on its port and must not move it.
port_free() {
    python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# The postmaster and its children (backends, background workers), by process id.
server_pids() {
    local pm
    pm="$(head -n1 "$DIR/data/postmaster.pid" 2>/dev/null)" || return 1
    [ -n "$pm" ] || return 1
    echo "$pm"
    pgrep -P "$pm" || true
}

signal_all() {
    local pids
    pids="$(server_pids)" || { echo "pg.sh: no server running in $DIR" >&2; exit 1; }
    # shellcheck disable=SC2086
    kill "-$1" $pids
}

kill_now() {
    running || { echo "pg.sh: no server running in $DIR" >&2; exit 1; }
    signal_all CONT
    as_owner "$(bindir)/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null
}

start() {
    install_pg
    local bin
    bin="$(bindir)"
    if running; then
        url
        return 0
    fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        rm -rf "$DIR"
        mkdir -p "$DIR"
        chmod 700 "$DIR"
        [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
        local pw="$DIR/pwfile"
        echo "$PASSWORD" >"$pw"
        [ "$(id -u)" = 0 ] && chown postgres: "$pw"
        as_owner "$bin/initdb" -D "$DIR/data" -U "$USER_NAME" --pwfile="$pw" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
            >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
        rm -f "$pw"
    fi
    # A cluster stopped by `kill` comes back on its port, unless something else took it.
    if [ ! -f "$DIR/port" ] || ! port_free "$(cat "$DIR/port")"; then
        free_port >"$DIR/port"
    fi
    [ "$(id -u)" = 0 ] && chown postgres: "$DIR/port"
    as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start -o \
        "-c listen_addresses=127.0.0.1 -p $(cat "$DIR/port") -k $DIR -c max_connections=400 \
         -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c shared_buffers=128MB \
         ${LITEGATE_PG_OPTS:-}" \
        >/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
    url
}

stop() {
    if [ -d "$DIR/data" ] && bindir >/dev/null; then
        as_owner "$(bindir)/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
url) running && url ;;
status) running && echo "running: $(url)" || { echo "not running"; exit 1; } ;;
kill) kill_now ;;
pause) signal_all STOP ;;
resume) signal_all CONT ;;
*)
    echo "usage: $0 start|stop|url|status|kill|pause|resume" >&2
    exit 2
    ;;
esac
