-- The console: quorum and code validity per election, decision reasons, resumable roll
-- imports, per-minute activity for the dashboard, and each service's last status.
ALTER TABLE elections ADD COLUMN quorum_pct REAL NOT NULL DEFAULT 0;
ALTER TABLE elections ADD COLUMN otp_validity_secs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE candidates ADD COLUMN reason TEXT;

CREATE TABLE roll_imports (
    id          TEXT PRIMARY KEY,
    election_id TEXT NOT NULL,
    actor       TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    rows_total  INTEGER NOT NULL,
    rows_done   INTEGER NOT NULL DEFAULT 0,
    added       INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    message     TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE roll_import_errors (
    import_id TEXT NOT NULL,
    line      INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (import_id, line)
) WITHOUT ROWID;

-- Counts only: no voter, and a minute is far coarser than a ballot's moment.
CREATE TABLE activity (
    election_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (election_id, minute, kind)
) WITHOUT ROWID;

CREATE TABLE service_status (
    service TEXT PRIMARY KEY,
    ok      INTEGER NOT NULL,
    detail  TEXT NOT NULL,
    at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX outbox_by_election ON outbox(election_id, state);
