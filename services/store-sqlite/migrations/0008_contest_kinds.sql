-- Contest kinds: each contest's rules (kind, seats, counting rule, RON, constituency) as
-- the port's JSON, `{}` being a one-seat plurality contest open to everyone, so every
-- existing contest reads as it always counted. An election may shuffle its candidates
-- per voter.
ALTER TABLE contests ADD COLUMN rules TEXT NOT NULL DEFAULT '{}';
ALTER TABLE elections ADD COLUMN shuffle_candidates INTEGER NOT NULL DEFAULT 0;

-- Constituencies: a roll row's named columns (`{"faculty": "Science"}`), and per contest
-- with a constituency how many of its voters have cast (a count, nothing about who).
ALTER TABLE voter_roll ADD COLUMN columns TEXT NOT NULL DEFAULT '{}';
CREATE TABLE contest_turnout (
    election_id TEXT NOT NULL,
    contest_id  TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (election_id, contest_id)
) WITHOUT ROWID;
