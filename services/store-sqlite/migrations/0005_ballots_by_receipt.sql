-- The ballot box keyed by (election, receipt): one B-tree per ballot instead of three
-- (random id, unique receipt, per-election index), so a cast dirties a third of the
-- pages. The receipt is 100 random bits: the ballot's only id, never time-ordered.
CREATE TABLE ballot_box (
    election_id TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    choices     TEXT NOT NULL,
    PRIMARY KEY (election_id, receipt)
) WITHOUT ROWID;
INSERT INTO ballot_box (election_id, receipt, choices) SELECT election_id, receipt, choices FROM ballots;
DROP TABLE ballots;
ALTER TABLE ballot_box RENAME TO ballots;
