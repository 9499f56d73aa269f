-- The sign-in throttle per (username, address) and per address (see turnout_store::sign_in);
-- the old per-username counts are dropped (they only ever delayed an attempt). Keys are
-- keyed hashes; `last_ms` and `window_start_ms` decide when a row is purged.
DROP TABLE login_failures;
CREATE TABLE login_failures (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    next_allowed_ms INTEGER NOT NULL,
    last_ms         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_failures_by_last ON login_failures(last_ms);
CREATE TABLE login_address_failures (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    window_start_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_address_failures_by_window ON login_address_failures(window_start_ms);
-- The last sign-out per account (see sign_outs): every service ends older sessions.
CREATE TABLE sign_outs (
    uid   TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sign_outs_by_time ON sign_outs(at_ms);
-- Voters are canonical usernames now (trimmed, ASCII lower case: see Username). Rows
-- written under another spelling are folded; where the folded row already exists, the
-- other spelling's row stays as it is (it was a second ballot's participation, or a
-- duplicate roll row), so participation = ballots still holds.
UPDATE OR IGNORE participation SET voter = lower(trim(voter)) WHERE voter <> lower(trim(voter));
UPDATE OR IGNORE voter_roll SET uid = lower(trim(uid)) WHERE uid <> lower(trim(uid));
UPDATE OR IGNORE otp_codes SET voter = lower(trim(voter)) WHERE voter <> lower(trim(voter));
UPDATE outbox SET voter = lower(trim(voter)) WHERE voter <> lower(trim(voter));
