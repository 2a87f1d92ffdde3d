#!/usr/bin/env bash
# Installs what building and testing pg_clerk needs on Debian/Ubuntu, once.
# Every step checks first, so a second run does nothing and takes a second.
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
PGRX_VERSION=0.18.1
CARGO_FUZZ_VERSION=0.13.1
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
APT_PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libclang-dev clang pkg-config libssl-dev cmake sudo openssl curl ${EXTRA_APT_PACKAGES:-}"
# The postgrest-js suite (tests/postgrest-js) needs Node and npm; any
# Node already on the PATH (nvm, NodeSource, …) will do.
command -v npm >/dev/null || APT_PACKAGES="$APT_PACKAGES nodejs npm"

say() { printf '==> %s\n' "$*" >&2; }

missing_packages() {
  local p missing=""
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
  done
  echo "$missing"
}

install_apt() {
  local missing; missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  command -v apt-get >/dev/null || { say "apt-get not found; install these packages yourself:$missing"; exit 1; }
  local run=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then run="sudo"
    else say "need root to install:$missing — run: sudo apt-get install -y$missing"; exit 1; fi
  fi
  say "installing apt packages:$missing"
  $run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

install_cargo_pgrx() {
  if cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION"; then return 0; fi
  say "installing cargo-pgrx $PGRX_VERSION (takes a few minutes, once)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
}

# `make fuzz` (fuzz/): libFuzzer targets, built on the stable toolchain.
install_cargo_fuzz() {
  if cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\b"; then return 0; fi
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION (under a minute, once)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
}

init_pgrx() {
  local cfg="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
  if [ -f "$cfg" ] && grep -q "pg$PG_MAJOR = \"$PG_CONFIG\"" "$cfg"; then return 0; fi
  say "cargo pgrx init --pg$PG_MAJOR $PG_CONFIG (system Postgres, no download)"
  cargo pgrx init --pg"$PG_MAJOR" "$PG_CONFIG" >/dev/null
}

install_apt
install_cargo_pgrx
install_cargo_fuzz
init_pgrx
