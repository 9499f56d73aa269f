#!/usr/bin/env bash
# The original team's ballot test, then Turnout's own check of the ballot box.
#   loadtest/ab/ballot.sh SESSIONS_FILE [REQUESTS=4000] [CONCURRENCY=100]
# SESSIONS_FILE comes from prepare-sessions (verified voters). Runs:
#   1. ab-sessions: POST /e/$ELECTION/ballot, one distinct session per request (keepalive);
#   2. real ab -k with ONE session, same -n/-c: one ballot, every other answer 409;
#   3. the check: ballots stored == 2xx answers, and participation == ballots.
# Env: TURNOUT_URL (default http://127.0.0.1:8080), ELECTION (demo), OFFICER_USER/PASS.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SESSIONS="${1:?usage: ballot.sh SESSIONS_FILE [REQUESTS] [CONCURRENCY]}"
N="${2:-4000}"
C="${3:-100}"
BODY='{"choices":{"president":"ben-carter","treasurer":"eli-novak"}}'
officer_login
read -r voted0 ballots0 < <(box_counts)

echo "== ab-sessions -n $N -c $C -k POST $TURNOUT_URL/e/$ELECTION/ballot (distinct sessions)"
out="$("$BIN/ab-sessions" -n "$N" -c "$C" -k -m POST -b "$BODY" -s "$SESSIONS" "$TURNOUT_URL/e/$ELECTION/ballot")"
echo "$out"
ok=$(awk '/^2XX_COUNT/ {print $2}' <<<"$out")

echo "== ab -n $N -c $C -k with one session (the one-ballot rule under load)"
one="$(head -n "$((N + 1))" "$SESSIONS" | tail -n 1 | cut -f2)"
printf '%s' "$BODY" > "$JAR.body"
ab -q -k -n "$N" -c "$C" -p "$JAR.body" -T application/json -H 'Accept: application/json' -C "$one" \
  "$TURNOUT_URL/e/$ELECTION/ballot" | sed -n '/^Concurrency Level/,/^Transfer rate/p;/Non-2xx/p;/Percentage/,$p'
rm -f "$JAR.body"

read -r voted1 ballots1 < <(box_counts)
stored=$((ballots1 - ballots0))
echo "== Turnout's check"
echo "2xx answers (distinct sessions): $ok; ballots stored during the run: $stored (ab's single session adds at most 1)"
echo "participation $voted1 == ballots $ballots1"
if [ "$voted1" -ne "$ballots1" ] || [ "$stored" -lt "$ok" ] || [ "$stored" -gt "$((ok + 1))" ]; then
  echo "MISMATCH: the ballot box does not match the answers" >&2
  exit 1
fi
echo "OK"
