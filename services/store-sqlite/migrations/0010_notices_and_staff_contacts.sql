-- Staff mail that is not a code (turnout_store::notices): queued once per key and
-- recipient, claimed under a lease like the outbox, sent only when no code is due.
CREATE TABLE notices (
    id              TEXT PRIMARY KEY,
    key             TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    account         TEXT,
    last_error      TEXT,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    UNIQUE (key, recipient)
);
CREATE INDEX notices_due ON notices (state, next_attempt_at);

-- The address each admin and officer last signed in with (turnout_store::staff).
CREATE TABLE staff_contacts (
    username TEXT PRIMARY KEY,
    email    TEXT NOT NULL,
    admin    INTEGER NOT NULL,
    officer  INTEGER NOT NULL,
    seen_at  INTEGER NOT NULL
);
