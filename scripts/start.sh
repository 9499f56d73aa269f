#!/usr/bin/env bash
# Start the whole Turnout stack on this machine: a real slapd seeded with students, the
# SMTP mail sink, the SQLite store, the auth/otp/ballot services and nginx in front.
# Prints where to open it. Ctrl-C (or SIGTERM) stops every process it started.
#
# Settings (environment): TURNOUT_DEV_PORT (nginx, default 8080), TURNOUT_DEV_STUDENTS
# (default 5000), TURNOUT_DEV_MINUTES (demo election length, default 120),
# TURNOUT_DEV_DIR (logs and database, default .turnout/dev), TURNOUT_DEV_TLS_PORT (HTTPS,
# default 8443, 0 for none), TURNOUT_DEV_LOGIN_RATE and TURNOUT_DEV_POOL (load testing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prereqs.sh
turnout_check_prereqs
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
echo "Building (the first build takes several minutes) ..."
cargo build --quiet --workspace --bins
exec target/debug/turnout-dev
