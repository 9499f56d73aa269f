#!/usr/bin/env bash
# wrk against a running Turnout: the ballot page, then voting, each request with the next
# verified session from SESSIONS_FILE (prepare-sessions output).
#   loadtest/wrk/run.sh SESSIONS_FILE [DURATION=10s] [CONNECTIONS=100]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
URL="${TURNOUT_URL:-http://127.0.0.1:8080}"; ELECTION="${ELECTION:-demo}"
SESSIONS="${1:?usage: run.sh SESSIONS_FILE [DURATION] [CONNECTIONS]}"; D="${2:-10s}"; C="${3:-100}"
echo "== ballot page (GET, JSON)"
wrk -t2 -c"$C" -d"$D" --latency -s "$HERE/ballot_page.lua" "$URL/e/$ELECTION/ballot" -- "$SESSIONS" 2
echo "== voting (POST); repeats after the sessions run out answer 409"
wrk -t2 -c"$C" -d"$D" --latency -s "$HERE/vote.lua" "$URL/e/$ELECTION/ballot" -- "$SESSIONS" 2
