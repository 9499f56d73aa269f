//! Elections on SQLite: the definition (elections, contests, candidates) and the
//! console's changes. Each change takes the write lock up front (`BEGIN IMMEDIATE`),
//! checks its rule against the row it changes, and commits with its audit line.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;

use turnout_domain::schedule::{Schedule, local_in};
use turnout_domain::{CandidateId, ContestId, ElectionId};
use turnout_store::rules::ts;
use turnout_store::{
    AuditEntry, Candidate, CandidateRow, CandidateStatus, ChangeError, Contest, ContestRules, Decision, Election,
    ElectionEdit, ElectionSummary, Elections, Eligibility, MAX_PAGE, NewCandidate, NewElection, PhotoHash, StoreError,
    StoreKeys,
};

use crate::SqliteStore;
use crate::audit::append_audit_in;
use crate::error::{SqlResult, is_unique_violation, parsed};

#[async_trait]
impl Elections for SqliteStore {
    #[tracing::instrument(skip_all, fields(election = %election.id))]
    async fn create_election(&self, election: &NewElection, now: Timestamp) -> Result<(), StoreError> {
        let e = election.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            insert_election(&tx, &e, now)?;
            tx.commit().sql()?;
            Ok(())
        })
        .await
    }

    async fn create_election_audited(
        &self,
        election: &NewElection,
        entry: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (e, entry, keys) = (election.clone(), entry.clone(), self.keys.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            insert_election(&tx, &e, now)?;
            append_audit_in(&tx, &keys, &entry, now)?;
            tx.commit().sql()?;
            Ok(())
        })
        .await
    }

    async fn election(&self, id: &ElectionId) -> Result<Option<Election>, StoreError> {
        let id = id.clone();
        self.read_here(move |conn| {
            let tx = conn.unchecked_transaction().sql()?;
            let head = tx
                .query_row(
                    "SELECT title, opens_at, closes_at, time_zone, grace_secs, otp_extra_secs, eligibility,
                            quorum_pct, otp_validity_secs, shuffle_candidates, nominations
                     FROM elections WHERE id = ?1",
                    [id.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, String>(6)?,
                            r.get::<_, f64>(7)?,
                            r.get::<_, i64>(8)?,
                            r.get::<_, bool>(9)?,
                            r.get::<_, Option<String>>(10)?,
                        ))
                    },
                )
                .optional()
                .sql()?;
            let Some((
                title,
                opens_at,
                closes_at,
                time_zone,
                grace_secs,
                otp_extra_secs,
                eligibility,
                quorum_pct,
                validity,
                shuffle_candidates,
                nominations,
            )) = head
            else {
                return Ok(None);
            };
            let mut contests: Vec<Contest> = tx
                .prepare_cached("SELECT id, title, rules FROM contests WHERE election_id = ?1 ORDER BY position")
                .sql()?
                .query_map([id.as_str()], |r| {
                    Ok(Contest {
                        id: parsed(0, r.get(0)?, ContestId::parse)?,
                        title: r.get(1)?,
                        rules: parsed(2, r.get(2)?, |raw: &str| serde_json::from_str::<ContestRules>(raw))?,
                        candidates: Vec::new(),
                    })
                })
                .sql()?
                .collect::<Result<_, _>>()
                .sql()?;
            let mut stmt = tx
                .prepare_cached(
                    "SELECT contest_id, id, name, statement, status, photo FROM candidates
                 WHERE election_id = ?1 ORDER BY contest_id, position",
                )
                .sql()?;
            let rows = stmt
                .query_map([id.as_str()], |r| {
                    let status: String = r.get(4)?;
                    Ok((
                        r.get::<_, String>(0)?,
                        Candidate {
                            id: parsed(1, r.get(1)?, CandidateId::parse)?,
                            name: r.get(2)?,
                            statement: r.get(3)?,
                            status: CandidateStatus::parse(&status).unwrap_or(CandidateStatus::Pending),
                            photo: r
                                .get::<_, Option<String>>(5)?
                                .map(|raw| parsed(5, raw, |h: &str| PhotoHash::parse(h)))
                                .transpose()?,
                        },
                    ))
                })
                .sql()?;
            for row in rows {
                let (contest_id, candidate) = row.sql()?;
                if let Some(contest) = contests.iter_mut().find(|c| c.id.as_str() == contest_id) {
                    contest.candidates.push(candidate);
                }
            }
            Ok(Some(Election {
                id,
                title,
                schedule: Schedule {
                    opens_at: ts(opens_at),
                    closes_at: ts(closes_at),
                    grace: Duration::from_secs(grace_secs.max(0) as u64),
                    time_zone,
                },
                contests,
                otp_extra: Duration::from_secs(otp_extra_secs.max(0) as u64),
                eligibility: parsed(6, eligibility, |raw| serde_json::from_str::<Eligibility>(raw)).sql()?,
                quorum_pct,
                otp_validity: (validity > 0).then(|| Duration::from_secs(validity as u64)),
                shuffle_candidates,
                nominations: nominations
                    .map(|raw| parsed(10, raw, |r: &str| serde_json::from_str(r)))
                    .transpose()
                    .sql()?,
            }))
        })
    }

    async fn list_elections(&self, after: Option<&ElectionId>, limit: u32) -> Result<Vec<ElectionSummary>, StoreError> {
        let after = after.map(|a| a.as_str().to_owned()).unwrap_or_default();
        let limit = limit.clamp(1, 100);
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT id, title, opens_at, closes_at, time_zone, grace_secs, eligibility, nominations FROM elections
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
                )
                .sql()?;
            let rows = stmt
                .query_map(params![after, limit], |r| {
                    Ok(ElectionSummary {
                        id: parsed(0, r.get(0)?, ElectionId::parse)?,
                        title: r.get(1)?,
                        opens_at: ts(r.get(2)?),
                        closes_at: ts(r.get(3)?),
                        time_zone: r.get(4)?,
                        grace_secs: r.get::<_, i64>(5)?.max(0) as u64,
                        eligibility: parsed(6, r.get(6)?, |raw| serde_json::from_str::<Eligibility>(raw))?,
                        constituencies: Vec::new(),
                        nominations: r
                            .get::<_, Option<String>>(7)?
                            .map(|raw| parsed(7, raw, |r: &str| serde_json::from_str(r)))
                            .transpose()?,
                    })
                })
                .sql()?;
            let mut page = rows.collect::<Result<Vec<_>, _>>().sql()?;
            let mut contests =
                conn.prepare_cached("SELECT id, rules FROM contests WHERE election_id = ?1 ORDER BY position").sql()?;
            for summary in &mut page {
                let rows = contests
                    .query_map([summary.id.as_str()], |r| {
                        let rules = parsed(1, r.get(1)?, |raw: &str| serde_json::from_str::<ContestRules>(raw))?;
                        Ok((parsed(0, r.get(0)?, ContestId::parse)?, rules.voters))
                    })
                    .sql()?;
                for row in rows {
                    let (id, voters) = row.sql()?;
                    if !voters.is_everyone() {
                        summary.constituencies.push((id, voters));
                    }
                }
            }
            Ok(page)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(election = %id))]
    async fn edit_election(
        &self,
        id: &ElectionId,
        edit: &ElectionEdit,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        let (id, edit, audit) = (id.clone(), edit.clone(), audit.clone());
        let keys = self.keys.clone();
        self.run(move |c| edit_election(c, &keys, &id, &edit, &audit, now)).await
    }

    async fn nominate_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &NewCandidate,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        // The port's rule, whoever calls: no reserved id, no oversized name.
        candidate.validate().map_err(|e| ChangeError::Refused(e.to_string()))?;
        let (e, k, c, a) = (election.clone(), contest.clone(), candidate.clone(), audit.clone());
        let keys = self.keys.clone();
        self.run(move |conn| nominate_candidate(conn, &keys, &e, &k, &c, &a, now)).await
    }

    async fn decide_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &CandidateId,
        decision: Decision,
        reason: &str,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        let (e, k, c, r, a) = (election.clone(), contest.clone(), candidate.clone(), reason.to_owned(), audit.clone());
        let keys = self.keys.clone();
        self.run(move |conn| decide_candidate(conn, &keys, &e, &k, &c, decision, &r, &a, now)).await
    }

    async fn list_candidates(
        &self,
        election: &ElectionId,
        after: Option<(&ContestId, &CandidateId)>,
        limit: u32,
    ) -> Result<Vec<CandidateRow>, StoreError> {
        let election = election.clone();
        let after = after.map(|(k, c)| (k.to_string(), c.to_string()));
        self.run(move |conn| list_candidates(conn, &election, after, limit)).await
    }

    async fn extend_close(
        &self,
        election: &ElectionId,
        new_close: Timestamp,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        let (election, audit) = (election.clone(), audit.clone());
        let keys = self.keys.clone();
        self.run(move |conn| extend_close(conn, &keys, &election, new_close, &audit, now)).await
    }

    async fn close_now(
        &self,
        election: &ElectionId,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Timestamp, ChangeError> {
        let (election, audit) = (election.clone(), audit.clone());
        let keys = self.keys.clone();
        self.run(move |conn| close_now(conn, &keys, &election, &audit, now)).await
    }
}

/// The election, its contests and candidates, inside the caller's transaction.
fn insert_election(tx: &rusqlite::Transaction<'_>, e: &NewElection, now: Timestamp) -> Result<(), StoreError> {
    let inserted = tx.execute(
        "INSERT INTO elections (id, title, opens_at, closes_at, time_zone, grace_secs, created_at, eligibility,
                                quorum_pct, otp_validity_secs, shuffle_candidates, nominations)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            e.id.as_str(),
            e.title,
            e.opens_at.as_second(),
            e.closes_at.as_second(),
            e.time_zone,
            e.grace_secs as i64,
            now.as_second(),
            serde_json::to_string(&e.eligibility).map_err(|e| StoreError::Other(e.into()))?,
            e.quorum_pct,
            e.otp_validity_secs as i64,
            e.shuffle_candidates,
            e.nominations.as_ref().map(serde_json::to_string).transpose().map_err(|e| StoreError::Other(e.into()))?
        ],
    );
    match inserted {
        Err(err) if is_unique_violation(&err) => {
            return Err(StoreError::Conflict(format!("election {} already exists", e.id)));
        }
        other => other.sql()?,
    };
    for (i, contest) in e.contests.iter().enumerate() {
        tx.execute(
            "INSERT INTO contests (election_id, id, title, position, rules) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.id.as_str(), contest.id.as_str(), contest.title, i as i64, rules_json(&contest.rules)?],
        )
        .sql()?;
        for (j, c) in contest.candidates.iter().enumerate() {
            tx.execute(
                "INSERT INTO candidates (election_id, contest_id, id, name, statement, status, position)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    e.id.as_str(),
                    contest.id.as_str(),
                    c.id.as_str(),
                    c.name,
                    c.statement,
                    c.status.as_str(),
                    j as i64
                ],
            )
            .sql()?;
        }
    }
    Ok(())
}

/// The election's window, read inside the caller's transaction.
fn window(tx: &rusqlite::Transaction<'_>, election: &ElectionId) -> Result<(i64, i64), ChangeError> {
    tx.query_row("SELECT opens_at, closes_at FROM elections WHERE id = ?1", [election.as_str()], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
    .sql()?
    .ok_or(ChangeError::UnknownElection)
}

fn local(tx: &rusqlite::Transaction<'_>, election: &ElectionId, at: i64) -> String {
    let zone: String = tx
        .query_row("SELECT time_zone FROM elections WHERE id = ?1", [election.as_str()], |r| r.get(0))
        .unwrap_or_else(|_| "UTC".into());
    local_in(&zone, ts(at))
}

/// Candidates and the ballot are fixed once voting starts.
fn before_opening(tx: &rusqlite::Transaction<'_>, election: &ElectionId, now: Timestamp) -> Result<(), ChangeError> {
    let (opens_at, _) = window(tx, election)?;
    if now.as_second() >= opens_at {
        return Err(ChangeError::Refused(format!(
            "The voting window opened at {}; the election and its candidates can no longer change.",
            local(tx, election, opens_at)
        )));
    }
    Ok(())
}

pub(crate) fn edit_election(
    conn: &mut Connection,
    keys: &StoreKeys,
    id: &ElectionId,
    edit: &ElectionEdit,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    before_opening(&tx, id, now)?;
    let (opens_at, closes_at) = window(&tx, id)?;
    let opens = edit.opens_at.map_or(opens_at, |t| t.as_second());
    let closes = edit.closes_at.map_or(closes_at, |t| t.as_second());
    if closes <= opens {
        return Err(ChangeError::Refused("The close must be after the opening.".into()));
    }
    if edit.opens_at.is_some() && opens <= now.as_second() {
        return Err(ChangeError::Refused("The opening must be in the future.".into()));
    }
    let current: Option<String> =
        tx.query_row("SELECT nominations FROM elections WHERE id = ?1", [id.as_str()], |r| r.get(0)).sql()?;
    let current = current.map(|raw| serde_json::from_str(&raw)).transpose().map_err(|e| StoreError::Other(e.into()))?;
    let period = edit.nominations_after(current, ts(opens)).map_err(|e| ChangeError::Refused(e.to_string()))?;
    let period = period.as_ref().map(serde_json::to_string).transpose().map_err(|e| StoreError::Other(e.into()))?;
    tx.execute("UPDATE elections SET nominations = ?2 WHERE id = ?1", params![id.as_str(), period]).sql()?;
    tx.execute(
        "UPDATE elections SET title = COALESCE(?2, title), opens_at = ?3, closes_at = ?4,
                time_zone = COALESCE(?5, time_zone), grace_secs = COALESCE(?6, grace_secs),
                quorum_pct = COALESCE(?7, quorum_pct), otp_validity_secs = COALESCE(?8, otp_validity_secs),
                shuffle_candidates = COALESCE(?9, shuffle_candidates)
         WHERE id = ?1",
        params![
            id.as_str(),
            edit.title,
            opens,
            closes,
            edit.time_zone,
            edit.grace_secs.map(|g| g as i64),
            edit.quorum_pct,
            edit.otp_validity_secs.map(|v| v as i64),
            edit.shuffle_candidates
        ],
    )
    .sql()?;
    if let Some(contests) = &edit.contests {
        let existing: Vec<String> = tx
            .prepare("SELECT id FROM contests WHERE election_id = ?1")
            .and_then(|mut s| s.query_map([id.as_str()], |r| r.get(0))?.collect())
            .sql()?;
        for gone in existing.iter().filter(|e| !contests.iter().any(|c| c.id.as_str() == e.as_str())) {
            let candidates: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM candidates WHERE election_id = ?1 AND contest_id = ?2",
                    params![id.as_str(), gone],
                    |r| r.get(0),
                )
                .sql()?;
            if candidates > 0 {
                return Err(ChangeError::Refused(format!(
                    "Contest {gone} has candidates; reject or move them before removing it."
                )));
            }
            let nominated: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM nominations WHERE election_id = ?1 AND contest_id = ?2 AND status != 'withdrawn'",
                    params![id.as_str(), gone],
                    |r| r.get(0),
                )
                .sql()?;
            if nominated > 0 {
                return Err(ChangeError::Refused(format!(
                    "Contest {gone} has nominations; they must be withdrawn or the contest kept."
                )));
            }
            tx.execute("DELETE FROM contests WHERE election_id = ?1 AND id = ?2", params![id.as_str(), gone]).sql()?;
        }
        for (i, c) in contests.iter().enumerate() {
            // New rules replace the old; left out, an existing contest keeps its own.
            let rules = c.rules.as_ref().map(rules_json).transpose()?;
            tx.execute(
                "INSERT INTO contests (election_id, id, title, position, rules) VALUES (?1, ?2, ?3, ?4, COALESCE(?5, '{}'))
                 ON CONFLICT (election_id, id) DO UPDATE SET title = excluded.title, position = excluded.position,
                     rules = COALESCE(?5, rules)",
                params![id.as_str(), c.id.as_str(), c.title, i as i64, rules],
            )
            .sql()?;
        }
    }
    append_audit_in(&tx, keys, audit, now)?;
    tx.commit().sql()?;
    Ok(())
}

pub(crate) fn nominate_candidate(
    conn: &mut Connection,
    keys: &StoreKeys,
    election: &ElectionId,
    contest: &ContestId,
    candidate: &NewCandidate,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    before_opening(&tx, election, now)?;
    let contest_exists = tx
        .query_row(
            "SELECT 1 FROM contests WHERE election_id = ?1 AND id = ?2",
            params![election.as_str(), contest.as_str()],
            |_| Ok(()),
        )
        .optional()
        .sql()?
        .is_some();
    if !contest_exists {
        return Err(ChangeError::UnknownCandidate);
    }
    let count: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM candidates WHERE election_id = ?1 AND contest_id = ?2",
            params![election.as_str(), contest.as_str()],
            |r| r.get(0),
        )
        .sql()?;
    if count >= 200 {
        return Err(ChangeError::Refused("A contest has at most 200 candidates.".into()));
    }
    let inserted = tx.execute(
        "INSERT INTO candidates (election_id, contest_id, id, name, statement, status, position)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
        params![election.as_str(), contest.as_str(), candidate.id.as_str(), candidate.name, candidate.statement, count],
    );
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            return Err(ChangeError::Refused(format!(
                "There is already a candidate {} in contest {contest}.",
                candidate.id
            )));
        }
        other => other.sql()?,
    };
    append_audit_in(&tx, keys, audit, now)?;
    tx.commit().sql()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn decide_candidate(
    conn: &mut Connection,
    keys: &StoreKeys,
    election: &ElectionId,
    contest: &ContestId,
    candidate: &CandidateId,
    decision: Decision,
    reason: &str,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    before_opening(&tx, election, now)?;
    let changed = tx
        .execute(
            "UPDATE candidates SET status = ?4, reason = ?5 WHERE election_id = ?1 AND contest_id = ?2 AND id = ?3",
            params![election.as_str(), contest.as_str(), candidate.as_str(), decision.status().as_str(), reason],
        )
        .sql()?;
    if changed == 0 {
        return Err(ChangeError::UnknownCandidate);
    }
    append_audit_in(&tx, keys, audit, now)?;
    tx.commit().sql()?;
    Ok(())
}

pub(crate) fn list_candidates(
    conn: &mut Connection,
    election: &ElectionId,
    after: Option<(String, String)>,
    limit: u32,
) -> Result<Vec<CandidateRow>, StoreError> {
    let (after_contest, after_id) = after.unwrap_or_default();
    let mut stmt = conn
        .prepare(
            "SELECT contest_id, id, name, statement, status, reason FROM candidates
         WHERE election_id = ?1 AND (contest_id, id) > (?2, ?3)
         ORDER BY contest_id, id LIMIT ?4",
        )
        .sql()?;
    let rows = stmt
        .query_map(params![election.as_str(), after_contest, after_id, limit.clamp(1, MAX_PAGE)], |r| {
            let status: String = r.get(4)?;
            Ok(CandidateRow {
                contest: parsed(0, r.get(0)?, ContestId::parse)?,
                id: parsed(1, r.get(1)?, CandidateId::parse)?,
                name: r.get(2)?,
                statement: r.get(3)?,
                status: CandidateStatus::parse(&status).unwrap_or(CandidateStatus::Pending),
                reason: r.get(5)?,
            })
        })
        .sql()?;
    rows.collect::<Result<_, _>>().sql()
}

pub(crate) fn extend_close(
    conn: &mut Connection,
    keys: &StoreKeys,
    election: &ElectionId,
    new_close: Timestamp,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let (_, closes_at) = window(&tx, election)?;
    if now.as_second() >= closes_at {
        return Err(ChangeError::Refused(format!(
            "The election closed at {}; a closed election can't be reopened.",
            local(&tx, election, closes_at)
        )));
    }
    if new_close.as_second() <= closes_at {
        return Err(ChangeError::Refused(format!(
            "The close can only move later than the current {}.",
            local(&tx, election, closes_at)
        )));
    }
    tx.execute("UPDATE elections SET closes_at = ?2 WHERE id = ?1", params![election.as_str(), new_close.as_second()])
        .sql()?;
    append_audit_in(&tx, keys, audit, now)?;
    tx.commit().sql()?;
    Ok(())
}

pub(crate) fn close_now(
    conn: &mut Connection,
    keys: &StoreKeys,
    election: &ElectionId,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Timestamp, ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let (opens_at, closes_at) = window(&tx, election)?;
    if now.as_second() < opens_at {
        return Err(ChangeError::Refused("The election has not opened yet; edit its window instead.".into()));
    }
    if now.as_second() >= closes_at {
        return Err(ChangeError::Refused("The election is already closed.".into()));
    }
    tx.execute("UPDATE elections SET closes_at = ?2 WHERE id = ?1", params![election.as_str(), now.as_second()])
        .sql()?;
    append_audit_in(&tx, keys, audit, now)?;
    tx.commit().sql()?;
    Ok(ts(now.as_second()))
}

fn rules_json(rules: &ContestRules) -> Result<String, StoreError> {
    serde_json::to_string(rules).map_err(|e| StoreError::Other(e.into()))
}
