# Shared by the ab scripts: where Turnout is, and Turnout's own count of the ballot box
# (through the officer dashboard, so it works against any deployment).
TURNOUT_URL="${TURNOUT_URL:-http://127.0.0.1:8080}"
ELECTION="${ELECTION:-demo}"
OFFICER_USER="${OFFICER_USER:-officer1}"
OFFICER_PASS="${OFFICER_PASS:-vote-officer1}"
BIN="${BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release}"
JAR="$(mktemp)"
trap 'rm -f "$JAR"' EXIT

officer_login() {
  curl -sf -o /dev/null -c "$JAR" -H 'Accept: application/json' -H 'Content-Type: application/json' \
    -d "{\"username\":\"$OFFICER_USER\",\"password\":\"$OFFICER_PASS\"}" "$TURNOUT_URL/auth/login" \
    || { echo "officer sign-in as $OFFICER_USER failed (set OFFICER_USER/OFFICER_PASS)" >&2; exit 1; }
}

# Prints "voted ballots" for the election.
box_counts() {
  curl -sf -b "$JAR" -H 'Accept: application/json' "$TURNOUT_URL/officer/elections/$ELECTION" \
    | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["voted"], d["ballots"])'
}
