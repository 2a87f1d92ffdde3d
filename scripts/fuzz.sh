#!/usr/bin/env bash
# `make fuzz`: runs each cargo-fuzz target (fuzz/) for FUZZ_SECONDS
# (default 60) with libFuzzer.
#   scripts/fuzz.sh [TARGET...]        default: every target
#   FUZZ_SECONDS=600 scripts/fuzz.sh query_string
# Built on the stable toolchain without a sanitizer (the code under test is
# safe Rust: a panic, including an arithmetic overflow, is the failure),
# with debug assertions and overflow checks (cargo fuzz's default). The
# corpus grows in fuzz/corpus/<target> (not in git; fuzz/seeds/<target>
# is); a crashing input is saved in fuzz/artifacts/<target>/, the end of
# libFuzzer's log is printed, and the script exits non-zero.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT/fuzz"

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

for t in "${targets[@]}"; do
  say "fuzzing $t for ${SECONDS_PER_TARGET}s"
  mkdir -p "corpus/$t"
  cargo fuzz run --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 -print_final_stats=1 2>"corpus/$t.log" \
    || { tail -60 "corpus/$t.log" >&2; say "fuzz target $t failed: reproduce with (cd fuzz && cargo fuzz run --sanitizer none $t artifacts/$t/<file>)"; exit 1; }
  grep -E '^stat::(number_of_executed_units|new_units_added)' "corpus/$t.log" | tr '\n' ' ' >&2; echo >&2
done
