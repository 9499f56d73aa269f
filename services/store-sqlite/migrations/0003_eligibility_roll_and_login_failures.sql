ALTER TABLE elections ADD COLUMN eligibility TEXT NOT NULL DEFAULT '{"kind":"everyone"}';

CREATE TABLE voter_roll (
    election_id TEXT NOT NULL,
    uid         TEXT NOT NULL,
    email       TEXT,
    name        TEXT,
    PRIMARY KEY (election_id, uid)
) WITHOUT ROWID;
CREATE INDEX voter_roll_by_uid ON voter_roll(uid);

-- Failed logins per submitted username (hashed: any string can be submitted).
-- Milliseconds: a one-second wait must not round down to nothing.
CREATE TABLE login_failures (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    next_allowed_ms INTEGER NOT NULL
) WITHOUT ROWID;
