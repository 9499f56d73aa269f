-- Ballots sealed at rest (turnout_store::seal): the box holds each ballot's choices only
-- as XChaCha20-Poly1305 ciphertext under a key derived from TURNOUT_SECRET, with the
-- election and receipt as associated data. Still keyed by (election, receipt), so no
-- order the table offers follows the order of casting.
CREATE TABLE sealed_ballots (
    election_id TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    PRIMARY KEY (election_id, receipt)
) WITHOUT ROWID;
-- Ballots cast before sealing wait here until the operator's `turnout-ballot upgrade`
-- seals them (it holds the key, SQL does not), drops this table and wipes its pages
-- (`upgrade.rs`).
ALTER TABLE ballots RENAME TO plaintext_ballots;
ALTER TABLE sealed_ballots RENAME TO ballots;

-- Each participation row's tag (HMAC over election and voter, keyed from TURNOUT_SECRET):
-- a row added in the database to balance a stuffed ballot has none. Rows from before
-- are tagged by the upgrade.
ALTER TABLE participation ADD COLUMN tag BLOB;

-- One-time upgrades that need the server's keys, each recorded once by name.
CREATE TABLE upgrades (
    name   TEXT PRIMARY KEY,
    at     INTEGER NOT NULL,
    detail TEXT NOT NULL
);
