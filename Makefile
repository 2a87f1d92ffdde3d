# pg_clerk — the two commands: `make demo` runs it, `make test` tests it.
# Each installs what is missing first (scripts/setup.sh: apt packages,
# cargo-pgrx 0.18.1, pgrx init against the system PostgreSQL 15).

SHELL := /bin/bash

.PHONY: demo test bench fuzz setup
demo: setup
	@scripts/demo.sh

test: setup
	@scripts/test.sh

bench: setup
	@EXTRA_APT_PACKAGES=wrk scripts/setup.sh
	@scripts/bench.sh

# FUZZ_SECONDS per target (default 60); scripts/fuzz.sh TARGET for one.
fuzz: setup
	@scripts/fuzz.sh

setup:
	@scripts/setup.sh
