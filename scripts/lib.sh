# Shared by the scripts: paths, privilege helpers, extension install.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_BIN=$("$PG_CONFIG" --bindir)
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '==> %s\n' "$*" >&2; }

is_root() { [ "$(id -u)" = 0 ]; }

# A directory the cluster's owner (postgres when we are root) can use.
owned_tmpdir() {
  local dir; dir=$(mktemp -d "/tmp/pg_clerk-$1.XXXXXX")
  if is_root; then chown postgres:postgres "$dir"; fi
  echo "$dir"
}

# Builds the extension and installs it into the system Postgres
# (needs write access to its lib and share dirs: root, or sudo).
install_extension() { # install_extension [--release]
  local sudo=(); is_root || sudo=(--sudo)
  say "installing pg_clerk into $("$PG_CONFIG" --pkglibdir) ${1:-(debug build)}"
  (cd "$ROOT/pg_clerk" && cargo pgrx install --pg-config "$PG_CONFIG" "${sudo[@]}" "$@" >/dev/null)
}

# psql as the superuser of a cluster started by scripts/cluster.sh.
psql_su() { # psql_su PORT DB [psql args...]
  local port=$1 db=$2; shift 2
  "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

# Applies the reference schema (sql/*.sql, in name order) to a database
# that has the extension.
apply_schema() { # apply_schema PORT DB
  local f
  for f in "$ROOT"/sql/*.sql; do
    PGOPTIONS='-c client_min_messages=warning' psql_su "$1" "$2" -f "$f" >/dev/null
  done
}

# Starts a throwaway cluster in a new $work directory, and arranges that it
# (and the clerk-proxy whose PID is put in $proxy_pid, if any) is stopped
# and removed when the script exits, fails or is interrupted.
start_throwaway_cluster() { # start_throwaway_cluster NAME PORT
  work=$(owned_tmpdir "$1")
  proxy_pid=""
  trap stop_throwaway_cluster EXIT
  trap 'exit 130' INT TERM
  "$ROOT/scripts/cluster.sh" start "$work/cluster" "$2"
}

stop_throwaway_cluster() {
  if [ -n "${proxy_pid:-}" ]; then kill -INT "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null || true; fi
  "$ROOT/scripts/cluster.sh" stop "$work/cluster" || true
  rm -rf "$work"
}
