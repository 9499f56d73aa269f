-- Students' nominations (turnout_store::nominations): each nomination's current version,
-- every version it had, who seconded it, and the photos they carry (by content hash).
ALTER TABLE elections ADD COLUMN nominations TEXT;
ALTER TABLE candidates ADD COLUMN photo TEXT;

CREATE TABLE nominations (
    id              TEXT PRIMARY KEY,
    election_id     TEXT NOT NULL,
    contest_id      TEXT NOT NULL,
    nominee         TEXT NOT NULL,
    email           TEXT NOT NULL,
    version         INTEGER NOT NULL,
    name            TEXT NOT NULL,
    manifesto       TEXT NOT NULL,
    photo           TEXT,
    status          TEXT NOT NULL,
    reason          TEXT,
    decided_version INTEGER,
    submitted_at    INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX nominations_by_contest ON nominations (election_id, contest_id, id);
CREATE INDEX nominations_by_nominee ON nominations (election_id, nominee);
-- One live nomination per nominee and contest; a withdrawn one may be followed by another.
CREATE UNIQUE INDEX nominations_live ON nominations (election_id, contest_id, nominee) WHERE status != 'withdrawn';

CREATE TABLE nomination_versions (
    nomination_id TEXT NOT NULL,
    version       INTEGER NOT NULL,
    name          TEXT NOT NULL,
    manifesto     TEXT NOT NULL,
    photo         TEXT,
    at            INTEGER NOT NULL,
    PRIMARY KEY (nomination_id, version)
);

CREATE TABLE nomination_seconds (
    nomination_id TEXT NOT NULL,
    seconder      TEXT NOT NULL,
    election_id   TEXT NOT NULL,
    contest_id    TEXT NOT NULL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (nomination_id, seconder)
);
CREATE INDEX seconds_by_seconder ON nomination_seconds (election_id, contest_id, seconder);

CREATE TABLE photos (
    hash      TEXT PRIMARY KEY,
    bytes     BLOB NOT NULL,
    stored_at INTEGER NOT NULL
);
