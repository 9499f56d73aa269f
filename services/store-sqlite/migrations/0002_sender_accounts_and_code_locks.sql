-- Sender accounts as every OTP instance sees them: the rate schedule (GCRA: the
-- theoretical time of the next send), today's count, quarantine and health.
CREATE TABLE sender_accounts (
    name              TEXT PRIMARY KEY,
    tat               REAL NOT NULL DEFAULT 0,
    day               TEXT NOT NULL DEFAULT '',
    sent_today        INTEGER NOT NULL DEFAULT 0,
    quarantined_until INTEGER NOT NULL DEFAULT 0,
    quarantine_reason TEXT,
    strikes           INTEGER NOT NULL DEFAULT 0,
    sent_total        INTEGER NOT NULL DEFAULT 0,
    failed_total      INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    last_sent_at      INTEGER
) WITHOUT ROWID;

-- Concurrent SMTP sessions per account, leased to an OTP instance for one batch.
CREATE TABLE sender_slots (
    account     TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    holder      TEXT NOT NULL,
    lease_until INTEGER NOT NULL,
    PRIMARY KEY (account, slot)
) WITHOUT ROWID;

ALTER TABLE otp_codes ADD COLUMN voids INTEGER NOT NULL DEFAULT 0;
ALTER TABLE otp_codes ADD COLUMN locked_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE elections ADD COLUMN otp_extra_secs INTEGER NOT NULL DEFAULT 0;
