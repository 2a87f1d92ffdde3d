#!/usr/bin/env bash
# `make bench`: every benchmark; results are printed and written under
# target/bench/ for the README's table.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/benches/identity_sql.sh"
