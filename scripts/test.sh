#!/usr/bin/env bash
# Every check Turnout has: formatting, lints, unit tests, the store conformance suite,
# each service against real slapd and a real SMTP sink, and end to end through nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prereqs.sh
turnout_check_prereqs
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# The browser tests drive Debian's chromium through playwright-core and check pages with
# axe-core (both pinned in the lock file).
[ -d frontend/tests/browser/node_modules/playwright-core ] && [ -d frontend/tests/browser/node_modules/axe-core ] ||
  npm ci --prefix frontend/tests/browser --no-audit --no-fund --loglevel=error
# The API fuzzer (schemathesis, from PyPI) in its own venv under target/.
[ -x target/schemathesis/bin/st ] || {
  python3 -m venv target/schemathesis &&
    target/schemathesis/bin/pip install -q --disable-pip-version-check 'schemathesis==3.39.16' 'hypothesis==6.122.0'
}
# The deployment file validates (compose v2 if present, else Debian's docker-compose).
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
command -v "${compose[0]}" >/dev/null 2>&1 || { echo "Missing: docker-compose (sudo apt-get install -y docker-compose)" >&2; exit 1; }
"${compose[@]}" --env-file .env.example --profile monitoring config -q
# The MongoDB adapter's tests need a MongoDB-wire server. Given TURNOUT_TEST_MONGODB_URI
# (e.g. a real replica set), they use it; otherwise SecantusDB (PyPI, pinned, in its own
# venv under target/) serves them for this run.
if [ -z "${TURNOUT_TEST_MONGODB_URI:-}" ]; then
  [ -x target/secantus/bin/python ] || {
    python3 -m venv target/secantus &&
      target/secantus/bin/pip install -q --disable-pip-version-check 'secantusdb==0.7.0b3'
  }
  target/secantus/bin/python scripts/lib/mongo_test_server.py >target/secantus/uri 2>target/secantus/server.log &
  mongo_server=$!
  trap 'kill "$mongo_server" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do [ -s target/secantus/uri ] && break; sleep 0.2; done
  [ -s target/secantus/uri ] || { echo "the MongoDB test server did not start:" >&2; cat target/secantus/server.log >&2; exit 1; }
  TURNOUT_TEST_MONGODB_URI="$(head -n1 target/secantus/uri)"
  export TURNOUT_TEST_MONGODB_URI
fi
cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
# A workspace build links both store adapters (cargo unifies features), so core is also
# checked as one service alone builds it (SQLite only), and with no adapter at all: the
# refusal of a store left out of the build is tested there.
cargo clippy --quiet -p turnout-core --no-default-features --all-targets -- -D warnings
cargo test --quiet -p turnout-core --lib
# The end-to-end tests start the service binaries as separate processes.
cargo build --quiet --workspace --bins
cargo test --workspace
