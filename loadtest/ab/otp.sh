#!/usr/bin/env bash
# Code requests with ab, then Turnout's check.
#   loadtest/ab/otp.sh SESSIONS_FILE [REQUESTS=4000] [CONCURRENCY=100]
# SESSIONS_FILE: signed-in voters (prepare-sessions output works). Each session asks for a
# code; a repeat inside the cooldown answers 429 and sends nothing. For distinct-voter
# delivery numbers see `otp-bench`.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SESSIONS="${1:?usage: otp.sh SESSIONS_FILE [REQUESTS] [CONCURRENCY]}"
N="${2:-4000}"; C="${3:-100}"
officer_login
read -r voted0 ballots0 < <(box_counts)
echo "== ab-sessions -n $N -c $C -k POST $TURNOUT_URL/e/$ELECTION/otp/request (distinct sessions)"
"$BIN/ab-sessions" -n "$N" -c "$C" -k -m POST -s "$SESSIONS" "$TURNOUT_URL/e/$ELECTION/otp/request"
read -r voted1 ballots1 < <(box_counts)
echo "== Turnout's check: ballots $ballots0 -> $ballots1 (unchanged expected), participation == ballots: $([ "$voted1" -eq "$ballots1" ] && echo yes || echo NO)"
[ "$ballots1" -eq "$ballots0" ] && [ "$voted1" -eq "$ballots1" ]
