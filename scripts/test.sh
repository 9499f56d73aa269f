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
# The deployment file validates (compose v2 if present, else Debian's docker-compose).
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
command -v "${compose[0]}" >/dev/null 2>&1 || { echo "Missing: docker-compose (sudo apt-get install -y docker-compose)" >&2; exit 1; }
"${compose[@]}" --env-file .env.example --profile monitoring --profile mongodb config -q
cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
# The end-to-end tests start the service binaries as separate processes.
cargo build --quiet --workspace --bins
cargo test --workspace
