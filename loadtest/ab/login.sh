#!/usr/bin/env bash
# Sign-in throughput with ab, then Turnout's check (the ballot box is untouched).
#   loadtest/ab/login.sh [REQUESTS=4000] [CONCURRENCY=100] [USER=student00001] [PASS=vote-00001]
# The nginx sign-in limit per address applies: start the local stack with
# TURNOUT_DEV_LOGIN_RATE=100000 to measure Turnout rather than the limit.
set -euo pipefail
source "$(dirname "$0")/common.sh"
N="${1:-4000}"; C="${2:-100}"; USER_="${3:-student00001}"; PASS="${4:-vote-00001}"
officer_login
read -r voted0 ballots0 < <(box_counts)
printf '{"username":"%s","password":"%s"}' "$USER_" "$PASS" > "$JAR.body"
echo "== ab -n $N -c $C -k POST $TURNOUT_URL/auth/login"
ab -q -k -n "$N" -c "$C" -p "$JAR.body" -T application/json -H 'Accept: application/json' "$TURNOUT_URL/auth/login" \
  | sed -n '/^Concurrency Level/,/^Transfer rate/p;/Non-2xx/p;/Percentage/,$p'
rm -f "$JAR.body"
read -r voted1 ballots1 < <(box_counts)
echo "== Turnout's check: ballots $ballots0 -> $ballots1 (unchanged expected), participation == ballots: $([ "$voted1" -eq "$ballots1" ] && echo yes || echo NO)"
[ "$ballots1" -eq "$ballots0" ] && [ "$voted1" -eq "$ballots1" ]
