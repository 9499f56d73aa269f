#!/usr/bin/env bash
# Every check Turnout has: formatting, lints, unit tests, the store conformance suite,
# each service against real slapd and a real SMTP sink, and end to end through nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prereqs.sh
turnout_check_prereqs
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# The browser tests drive Debian's chromium through playwright-core (pinned in the lock file).
[ -d frontend/tests/browser/node_modules/playwright-core ] ||
  npm ci --prefix frontend/tests/browser --no-audit --no-fund --loglevel=error
# The API fuzzer (schemathesis, from PyPI) in its own venv under target/.
[ -x target/schemathesis/bin/st ] || {
  python3 -m venv target/schemathesis &&
    target/schemathesis/bin/pip install -q --disable-pip-version-check 'schemathesis==3.39.16' 'hypothesis==6.122.0'
}
cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
# The end-to-end tests start the service binaries as separate processes.
cargo build --quiet --workspace --bins
cargo test --workspace
