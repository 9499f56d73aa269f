CREATE TABLE elections (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    opens_at    INTEGER NOT NULL,
    closes_at   INTEGER NOT NULL,
    time_zone   TEXT NOT NULL,
    grace_secs  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE contests (
    election_id TEXT NOT NULL REFERENCES elections(id),
    id          TEXT NOT NULL,
    title       TEXT NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (election_id, id)
) WITHOUT ROWID;

CREATE TABLE candidates (
    election_id TEXT NOT NULL,
    contest_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    statement   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    position    INTEGER NOT NULL,
    PRIMARY KEY (election_id, contest_id, id),
    FOREIGN KEY (election_id, contest_id) REFERENCES contests(election_id, id)
) WITHOUT ROWID;

-- Who has voted. The primary key is the one-ballot rule. Deliberately no time and no
-- link to the ballot.
CREATE TABLE participation (
    election_id TEXT NOT NULL,
    voter       TEXT NOT NULL,
    PRIMARY KEY (election_id, voter)
) WITHOUT ROWID;

-- The ballot box: a random id, the receipt and the choices. No voter, no address, no
-- time. WITHOUT ROWID, so rows are kept in random-id order, not insertion order, and
-- can't be lined up with participation by position.
CREATE TABLE ballots (
    id          TEXT PRIMARY KEY,
    election_id TEXT NOT NULL,
    receipt     TEXT NOT NULL UNIQUE,
    choices     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX ballots_by_election ON ballots(election_id);

-- The current code per voter and election. The code itself is never stored: it is
-- derived from the server secret, the generation and issued_at.
CREATE TABLE otp_codes (
    election_id     TEXT NOT NULL,
    voter           TEXT NOT NULL,
    generation      INTEGER NOT NULL,
    issued_at       INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    consumed        INTEGER NOT NULL DEFAULT 0,
    sends           INTEGER NOT NULL,
    last_request_at INTEGER NOT NULL,
    PRIMARY KEY (election_id, voter)
) WITHOUT ROWID;

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    election_id     TEXT NOT NULL,
    voter           TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    generation      INTEGER NOT NULL,
    issued_at       INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    account         TEXT,
    sender          TEXT,
    lease_owner     TEXT,
    lease_until     INTEGER,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_by_voter ON outbox(election_id, voter, created_at);

-- Append-only; each row's hash covers the previous row's, so an edit breaks the chain.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    election_id TEXT,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
