#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the demo and the tests.
#
#   scripts/cluster.sh start DIR PORT   create (once) and start; prints nothing else
#   scripts/cluster.sh stop DIR         stop if running (fast shutdown)
#
# PG_SHARED_BUFFERS (default 256MB) sizes the buffer cache when DIR is created;
# INITDB_OPTIONS are added to initdb's. PG_MAJOR / PG_CONFIG (scripts/lib.sh)
# pick the PostgreSQL.
#
# The cluster lives in DIR (under /tmp by default, see the Makefile),
# listens on 127.0.0.1:PORT and a socket in DIR, trusts local connections
# and runs as `postgres` when we are root (initdb refuses root).
set -euo pipefail

source "$(dirname "$0")/lib.sh"

start() {
  local dir=$1 port=$2
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres -m 700 "$dir"; else install -d -m 700 "$dir"; fi
    # shellcheck disable=SC2086 # INITDB_OPTIONS: one word per option
    as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --locale=C.UTF-8 -E UTF8 ${INITDB_OPTIONS:-} >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = ${PG_SHARED_BUFFERS:-256MB}
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  if as_owner "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then return 0; fi
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null \
    || { tail -20 "$dir/server.log" >&2; exit 1; }
}

stop() {
  local dir=$1
  [ -d "$dir/data" ] || return 0
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start "$2" "$3" ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
