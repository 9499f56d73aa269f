//! The SQLite side of the console operations (see `console`): plain functions on a
//! connection, called from `SqliteStore`'s trait methods. Each change takes the write
//! lock up front (`BEGIN IMMEDIATE`), checks its rule against the row it changes, and
//! commits together with its audit line.

use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;

use super::shared::{audit_hash, delivery_percentiles, ts};
use super::sqlite::{append_audit_in, is_unique_violation, parsed};
use super::*;

/// The election's window, read inside the caller's transaction.
fn window(tx: &rusqlite::Transaction<'_>, election: &ElectionId) -> Result<(i64, i64), ChangeError> {
    tx.query_row("SELECT opens_at, closes_at FROM elections WHERE id = ?1", [election.as_str()], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()?
    .ok_or(ChangeError::UnknownElection)
}

fn local(tx: &rusqlite::Transaction<'_>, election: &ElectionId, at: i64) -> String {
    let zone: String = tx
        .query_row("SELECT time_zone FROM elections WHERE id = ?1", [election.as_str()], |r| r.get(0))
        .unwrap_or_else(|_| "UTC".into());
    crate::schedule::local_in(&zone, ts(at))
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

pub fn edit_election(
    conn: &mut Connection,
    id: &ElectionId,
    edit: &ElectionEdit,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
    tx.execute(
        "UPDATE elections SET title = COALESCE(?2, title), opens_at = ?3, closes_at = ?4,
                time_zone = COALESCE(?5, time_zone), grace_secs = COALESCE(?6, grace_secs),
                quorum_pct = COALESCE(?7, quorum_pct), otp_validity_secs = COALESCE(?8, otp_validity_secs)
         WHERE id = ?1",
        params![
            id.as_str(),
            edit.title,
            opens,
            closes,
            edit.time_zone,
            edit.grace_secs.map(|g| g as i64),
            edit.quorum_pct,
            edit.otp_validity_secs.map(|v| v as i64)
        ],
    )?;
    if let Some(contests) = &edit.contests {
        let existing: Vec<String> = tx
            .prepare("SELECT id FROM contests WHERE election_id = ?1")
            .and_then(|mut s| s.query_map([id.as_str()], |r| r.get(0))?.collect())?;
        for gone in existing.iter().filter(|e| !contests.iter().any(|c| c.id.as_str() == e.as_str())) {
            let candidates: i64 = tx.query_row(
                "SELECT COUNT(*) FROM candidates WHERE election_id = ?1 AND contest_id = ?2",
                params![id.as_str(), gone],
                |r| r.get(0),
            )?;
            if candidates > 0 {
                return Err(ChangeError::Refused(format!(
                    "Contest {gone} has candidates; reject or move them before removing it."
                )));
            }
            tx.execute("DELETE FROM contests WHERE election_id = ?1 AND id = ?2", params![id.as_str(), gone])?;
        }
        for (i, c) in contests.iter().enumerate() {
            tx.execute(
                "INSERT INTO contests (election_id, id, title, position) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (election_id, id) DO UPDATE SET title = excluded.title, position = excluded.position",
                params![id.as_str(), c.id.as_str(), c.title, i as i64],
            )?;
        }
    }
    append_audit_in(&tx, audit, now)?;
    tx.commit()?;
    Ok(())
}

pub fn nominate_candidate(
    conn: &mut Connection,
    election: &ElectionId,
    contest: &ContestId,
    candidate: &NewCandidate,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    before_opening(&tx, election, now)?;
    let contest_exists = tx
        .query_row(
            "SELECT 1 FROM contests WHERE election_id = ?1 AND id = ?2",
            params![election.as_str(), contest.as_str()],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !contest_exists {
        return Err(ChangeError::UnknownCandidate);
    }
    let count: i64 = tx.query_row(
        "SELECT COUNT(*) FROM candidates WHERE election_id = ?1 AND contest_id = ?2",
        params![election.as_str(), contest.as_str()],
        |r| r.get(0),
    )?;
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
        other => other?,
    };
    append_audit_in(&tx, audit, now)?;
    tx.commit()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn decide_candidate(
    conn: &mut Connection,
    election: &ElectionId,
    contest: &ContestId,
    candidate: &CandidateId,
    decision: Decision,
    reason: &str,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    before_opening(&tx, election, now)?;
    let changed = tx.execute(
        "UPDATE candidates SET status = ?4, reason = ?5 WHERE election_id = ?1 AND contest_id = ?2 AND id = ?3",
        params![election.as_str(), contest.as_str(), candidate.as_str(), decision.status().as_str(), reason],
    )?;
    if changed == 0 {
        return Err(ChangeError::UnknownCandidate);
    }
    append_audit_in(&tx, audit, now)?;
    tx.commit()?;
    Ok(())
}

pub fn list_candidates(
    conn: &mut Connection,
    election: &ElectionId,
    after: Option<(String, String)>,
    limit: u32,
) -> Result<Vec<CandidateRow>, StoreError> {
    let (after_contest, after_id) = after.unwrap_or_default();
    let mut stmt = conn.prepare(
        "SELECT contest_id, id, name, statement, status, reason FROM candidates
         WHERE election_id = ?1 AND (contest_id, id) > (?2, ?3)
         ORDER BY contest_id, id LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![election.as_str(), after_contest, after_id, limit.clamp(1, MAX_PAGE)], |r| {
        let status: String = r.get(4)?;
        Ok(CandidateRow {
            contest: parsed(0, r.get(0)?, ContestId::parse)?,
            id: parsed(1, r.get(1)?, CandidateId::parse)?,
            name: r.get(2)?,
            statement: r.get(3)?,
            status: CandidateStatus::parse(&status).unwrap_or(CandidateStatus::Pending),
            reason: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn extend_close(
    conn: &mut Connection,
    election: &ElectionId,
    new_close: Timestamp,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
    tx.execute("UPDATE elections SET closes_at = ?2 WHERE id = ?1", params![election.as_str(), new_close.as_second()])?;
    append_audit_in(&tx, audit, now)?;
    tx.commit()?;
    Ok(())
}

pub fn close_now(
    conn: &mut Connection,
    election: &ElectionId,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Timestamp, ChangeError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (opens_at, closes_at) = window(&tx, election)?;
    if now.as_second() < opens_at {
        return Err(ChangeError::Refused("The election has not opened yet; edit its window instead.".into()));
    }
    if now.as_second() >= closes_at {
        return Err(ChangeError::Refused("The election is already closed.".into()));
    }
    tx.execute("UPDATE elections SET closes_at = ?2 WHERE id = ?1", params![election.as_str(), now.as_second()])?;
    append_audit_in(&tx, audit, now)?;
    tx.commit()?;
    Ok(ts(now.as_second()))
}

pub fn tally(conn: &mut Connection, election: &ElectionId) -> Result<Tally, StoreError> {
    let tx = conn.transaction()?;
    let count = |table: &str| -> rusqlite::Result<u64> {
        tx.query_row(&format!("SELECT COUNT(*) FROM {table} WHERE election_id = ?1"), [election.as_str()], |r| {
            r.get::<_, i64>(0).map(|n| n.max(0) as u64)
        })
    };
    let (participation, ballots) = (count("participation")?, count("ballots")?);
    let mut contests: BTreeMap<String, ContestTally> = BTreeMap::new();
    {
        let mut names = tx.prepare("SELECT id FROM contests WHERE election_id = ?1 ORDER BY position")?;
        for id in names.query_map([election.as_str()], |r| r.get::<_, String>(0))? {
            contests.insert(id?, ContestTally::default());
        }
        let mut candidates =
            tx.prepare("SELECT contest_id, id FROM candidates WHERE election_id = ?1 AND status = 'approved'")?;
        for row in
            candidates.query_map([election.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        {
            let (contest, candidate) = row?;
            contests.entry(contest).or_default().votes.insert(candidate, 0);
        }
        let mut votes = tx.prepare(
            "SELECT j.key, j.value, COUNT(*) FROM ballots b, json_each(b.choices) j
             WHERE b.election_id = ?1 GROUP BY j.key, j.value",
        )?;
        let rows = votes.query_map([election.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
        })?;
        for row in rows {
            let (contest, candidate, n) = row?;
            *contests.entry(contest).or_default().votes.entry(candidate).or_default() += n.max(0) as u64;
        }
    }
    for c in contests.values_mut() {
        c.blank = ballots.saturating_sub(c.votes.values().sum());
    }
    Ok(Tally { participation, ballots, contests })
}

pub fn list_roll(
    conn: &mut Connection,
    election: &ElectionId,
    after: Option<String>,
    limit: u32,
) -> Result<Vec<RollRow>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT uid, email, name FROM voter_roll WHERE election_id = ?1 AND uid > ?2 ORDER BY uid LIMIT ?3")?;
    let rows = stmt
        .query_map(params![election.as_str(), after.unwrap_or_default(), limit.clamp(1, MAX_PAGE)], |r| {
            Ok(RollRow { uid: parsed(0, r.get(0)?, Username::parse)?, email: r.get(1)?, name: r.get(2)? })
        })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn roll_size(conn: &mut Connection, election: &ElectionId) -> Result<u64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM voter_roll WHERE election_id = ?1", [election.as_str()], |r| {
        r.get::<_, i64>(0).map(|n| n.max(0) as u64)
    })?)
}

const JOB_COLUMNS: &str = "id, election_id, actor, file_name, state, rows_total, rows_done, added, updated,
     unchanged, rejected, message, created_at, updated_at";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImportJob> {
    let state: String = r.get(4)?;
    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
    Ok(ImportJob {
        id: r.get(0)?,
        election: parsed(1, r.get(1)?, ElectionId::parse)?,
        actor: r.get(2)?,
        file_name: r.get(3)?,
        state: ImportState::parse(&state).unwrap_or(ImportState::Failed),
        rows_total: n(5)?,
        rows_done: n(6)?,
        added: n(7)?,
        updated: n(8)?,
        unchanged: n(9)?,
        rejected: n(10)?,
        message: r.get(11)?,
        created_at: ts(r.get(12)?),
        updated_at: ts(r.get(13)?),
    })
}

fn job_in(conn: &Connection, id: &str) -> rusqlite::Result<Option<ImportJob>> {
    conn.query_row(&format!("SELECT {JOB_COLUMNS} FROM roll_imports WHERE id = ?1"), [id], job_row).optional()
}

pub fn create_import(
    conn: &mut Connection,
    job: &ImportJob,
    lease: &ImportLease,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO roll_imports
             (id, election_id, actor, file_name, state, rows_total, created_at, updated_at, owner, lease_until)
         VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?6, ?7, ?8)",
        params![
            job.id,
            job.election.as_str(),
            job.actor,
            job.file_name,
            job.rows_total as i64,
            now.as_second(),
            lease.owner,
            lease.until.as_second()
        ],
    )?;
    append_audit_in(&tx, audit, now)?;
    tx.commit()?;
    Ok(())
}

pub fn claim_import(
    conn: &mut Connection,
    job: &str,
    lease: &ImportLease,
    now: Timestamp,
) -> Result<Option<ImportJob>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken = tx.execute(
        "UPDATE roll_imports SET owner = ?2, lease_until = ?3
         WHERE id = ?1 AND state = 'running' AND (lease_until IS NULL OR lease_until < ?4)",
        params![job, lease.owner, lease.until.as_second(), now.as_second()],
    )?;
    let claimed = if taken == 1 { job_in(&tx, job)? } else { None };
    tx.commit()?;
    Ok(claimed)
}

/// Refuses (as a conflict) a write by a run that does not hold the import.
fn check_owner(tx: &rusqlite::Transaction<'_>, job: &str, owner: &str) -> Result<(), StoreError> {
    let holder: Option<Option<String>> =
        tx.query_row("SELECT owner FROM roll_imports WHERE id = ?1", [job], |r| r.get(0)).optional()?;
    match holder {
        None => Err(StoreError::Conflict(format!("no import {job}"))),
        Some(h) if h.as_deref() == Some(owner) => Ok(()),
        Some(_) => Err(StoreError::Conflict(format!("import {job} was taken over by another process"))),
    }
}

pub fn import_chunk(
    conn: &mut Connection,
    job: &str,
    lease: &ImportLease,
    chunk: &ImportChunk,
    now: Timestamp,
) -> Result<ImportJob, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    check_owner(&tx, job, &lease.owner)?;
    let current = job_in(&tx, job)?.ok_or_else(|| StoreError::Conflict(format!("no import {job}")))?;
    if current.state != ImportState::Running {
        return Err(StoreError::Conflict(format!("import {job} is {}", current.state.as_str())));
    }
    let stats = super::sqlite::upsert_roll(&tx, &current.election, &chunk.entries)?;
    {
        let mut insert = tx.prepare(
            "INSERT OR IGNORE INTO roll_import_errors (import_id, line, reason)
             SELECT ?1, ?2, ?3 WHERE (SELECT COUNT(*) FROM roll_import_errors WHERE import_id = ?1) < ?4",
        )?;
        for e in &chunk.errors {
            insert.execute(params![job, e.line as i64, e.reason, MAX_IMPORT_ERRORS as i64])?;
        }
    }
    tx.execute(
        "UPDATE roll_imports SET rows_done = rows_done + ?2, added = added + ?3, updated = updated + ?4,
                unchanged = unchanged + ?5, rejected = rejected + ?6, updated_at = ?7, lease_until = ?8
         WHERE id = ?1",
        params![
            job,
            chunk.rows as i64,
            stats.added as i64,
            stats.updated as i64,
            stats.unchanged as i64,
            chunk.errors.len() as i64,
            now.as_second(),
            lease.until.as_second()
        ],
    )?;
    let updated = job_in(&tx, job)?.expect("the job row was just read");
    tx.commit()?;
    Ok(updated)
}

pub fn finish_import(
    conn: &mut Connection,
    job: &str,
    owner: &str,
    state: ImportState,
    message: Option<&str>,
    now: Timestamp,
) -> Result<ImportJob, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    check_owner(&tx, job, owner)?;
    tx.execute(
        "UPDATE roll_imports SET state = ?2, message = ?3, updated_at = ?4, lease_until = NULL WHERE id = ?1",
        params![job, state.as_str(), message, now.as_second()],
    )?;
    let done = job_in(&tx, job)?.ok_or_else(|| StoreError::Conflict(format!("no import {job}")))?;
    let audit = AuditEntry {
        actor: done.actor.clone(),
        action: "roll_import_finished".into(),
        election: Some(done.election.clone()),
        detail: serde_json::json!({
            "import": done.id, "state": state.as_str(), "rows": done.rows_done, "added": done.added,
            "updated": done.updated, "unchanged": done.unchanged, "rejected": done.rejected, "message": message,
        }),
    };
    append_audit_in(&tx, &audit, now)?;
    tx.commit()?;
    Ok(done)
}

pub fn import_job(conn: &mut Connection, job: &str) -> Result<Option<ImportJob>, StoreError> {
    Ok(job_in(conn, job)?)
}

pub fn import_errors(
    conn: &mut Connection,
    job: &str,
    after_line: u64,
    limit: u32,
) -> Result<Vec<RowError>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT line, reason FROM roll_import_errors WHERE import_id = ?1 AND line > ?2 ORDER BY line LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![job, after_line as i64, limit.clamp(1, MAX_PAGE)], |r| {
        Ok(RowError { line: r.get::<_, i64>(0)?.max(0) as u64, reason: r.get(1)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn running_imports(conn: &mut Connection) -> Result<Vec<ImportJob>, StoreError> {
    let mut stmt =
        conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM roll_imports WHERE state = 'running' ORDER BY created_at"))?;
    let rows = stmt.query_map([], job_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn list_audit(conn: &mut Connection, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, actor, action, election_id, detail, hash FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit.clamp(1, MAX_PAGE)], |r| {
        let detail: String = r.get(5)?;
        Ok(AuditRecord {
            seq: r.get(0)?,
            at: ts(r.get(1)?),
            actor: r.get(2)?,
            action: r.get(3)?,
            election: r.get(4)?,
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
            hash: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Walks the chain in order: each entry's `prev_hash` must be the previous entry's hash,
/// and its own hash must match its content. Sequence numbers must not skip (AUTOINCREMENT
/// never reuses one, so a gap means a removed entry).
pub fn verify_audit(conn: &mut Connection) -> Result<AuditVerification, StoreError> {
    let tx = conn.transaction()?;
    let mut stmt =
        tx.prepare("SELECT seq, at, actor, action, election_id, detail, prev_hash, hash FROM audit_log ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let (mut entries, mut prev, mut last_seq) = (0u64, String::new(), 0i64);
    let broken = |seq: i64, entries: u64, why: &str| AuditVerification {
        entries,
        broken_at: Some(seq),
        problem: Some(why.to_owned()),
    };
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let (at, actor, action): (i64, String, String) = (r.get(1)?, r.get(2)?, r.get(3)?);
        let (election, detail): (Option<String>, String) = (r.get(4)?, r.get(5)?);
        let (prev_hash, hash): (String, String) = (r.get(6)?, r.get(7)?);
        if seq != last_seq + 1 {
            return Ok(broken(seq, entries, &format!("entries {} to {} are missing", last_seq + 1, seq - 1)));
        }
        if prev_hash != prev {
            return Ok(broken(seq, entries, "does not link to the entry before it"));
        }
        if audit_hash(&prev, at, &actor, &action, election.as_deref().unwrap_or(""), &detail) != hash {
            return Ok(broken(seq, entries, "its content does not match its hash (edited)"));
        }
        entries += 1;
        prev = hash;
        last_seq = seq;
    }
    // A removed tail leaves a gap against the highest sequence ever handed out.
    let highest: Option<i64> =
        tx.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'", [], |r| r.get(0)).optional()?;
    if let Some(highest) = highest
        && highest > last_seq
    {
        return Ok(broken(last_seq + 1, entries, &format!("entries {} to {highest} are missing", last_seq + 1)));
    }
    Ok(AuditVerification { entries, broken_at: None, problem: None })
}

/// Adds one event to its minute's count inside the caller's transaction.
pub fn bump_activity(
    tx: &rusqlite::Transaction<'_>,
    election: &str,
    kind: Activity,
    n: u64,
    now: Timestamp,
) -> rusqlite::Result<()> {
    add_activity(tx, election, kind, now.as_second().div_euclid(60), n)
}

fn add_activity(
    tx: &rusqlite::Transaction<'_>,
    election: &str,
    kind: Activity,
    minute: i64,
    n: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO activity (election_id, kind, minute, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (election_id, minute, kind) DO UPDATE SET n = n + excluded.n",
    )?
    .execute(params![election, kind.as_str(), minute, n as i64])?;
    Ok(())
}

pub fn record_activity(conn: &mut Connection, counts: &[ActivityCount]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for c in counts {
        add_activity(&tx, &c.election, c.kind, c.minute, c.n)?;
    }
    tx.commit()?;
    Ok(())
}

pub fn activity(
    conn: &mut Connection,
    election: &ElectionId,
    since_minute: i64,
) -> Result<Vec<ActivityCount>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT election_id, kind, minute, n FROM activity
         WHERE election_id IN (?1, '') AND minute >= ?2 ORDER BY minute, kind",
    )?;
    let rows = stmt.query_map(params![election.as_str(), since_minute], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (election, kind, minute, n) = row?;
        if let Some(kind) = Activity::parse(&kind) {
            out.push(ActivityCount { election, kind, minute, n: n.max(0) as u64 });
        }
    }
    Ok(out)
}

pub fn outbox_summary(
    conn: &mut Connection,
    election: &ElectionId,
    now: Timestamp,
) -> Result<OutboxSummary, StoreError> {
    let tx = conn.transaction()?;
    let mut summary = OutboxSummary::default();
    {
        let mut stmt = tx.prepare("SELECT state, COUNT(*) FROM outbox WHERE election_id = ?1 GROUP BY state")?;
        for row in stmt.query_map([election.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (state, n) = row?;
            let n = n.max(0) as u64;
            match state.as_str() {
                "queued" => summary.queued = n,
                "sending" => summary.sending = n,
                "deferred" => summary.deferred = n,
                "sent" => summary.sent = n,
                "failed" => summary.failed = n,
                _ => {}
            }
        }
        summary.oldest_waiting_secs = tx
            .query_row(
                "SELECT MIN(created_at) FROM outbox WHERE election_id = ?1 AND state IN ('queued', 'sending', 'deferred')",
                [election.as_str()],
                |r| r.get::<_, Option<i64>>(0),
            )?
            .map(|oldest| (now.as_second() - oldest).max(0));
        let histogram: Vec<(i64, u64)> = tx
            .prepare(
                "SELECT sent_at - created_at AS secs, COUNT(*) FROM outbox
                 WHERE election_id = ?1 AND state = 'sent' AND sent_at >= ?2 GROUP BY secs ORDER BY secs",
            )?
            .query_map(params![election.as_str(), now.as_second() - 600], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?
            .collect::<Result<_, _>>()?;
        (summary.latency_p50_secs, summary.latency_p95_secs) = delivery_percentiles(&histogram);
    }
    Ok(summary)
}

pub fn list_outbox(
    conn: &mut Connection,
    election: &ElectionId,
    before: Option<i64>,
    limit: u32,
) -> Result<OutboxPage, StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    // One row past the page says there is more.
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, id, voter, recipient, state, attempts, account, created_at, sent_at, last_error FROM outbox
         WHERE election_id = ?1 AND rowid < ?2 ORDER BY rowid DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![election.as_str(), before.unwrap_or(i64::MAX), limit + 1], |r| {
        Ok(OutboxRow {
            seq: r.get(0)?,
            id: r.get(1)?,
            voter: r.get(2)?,
            recipient: r.get(3)?,
            state: r.get(4)?,
            attempts: r.get(5)?,
            account: r.get(6)?,
            created_at: ts(r.get(7)?),
            sent_at: r.get::<_, Option<i64>>(8)?.map(ts),
            last_error: r.get(9)?,
        })
    })?;
    let mut rows: Vec<OutboxRow> = rows.collect::<Result<_, _>>()?;
    // Row ids are unique, so a page simply ends at its last row (MongoDB's numbers are
    // not: see `cut_outbox_page`).
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_before = if more { rows.last().map(|r| r.seq) } else { None };
    Ok(OutboxPage { rows, next_before })
}

pub fn report_status(
    conn: &mut Connection,
    service: &str,
    ok: bool,
    detail: &serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO service_status (service, ok, detail, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (service) DO UPDATE SET ok = excluded.ok, detail = excluded.detail, at = excluded.at",
        params![service, ok, detail.to_string(), now.as_second()],
    )?;
    Ok(())
}

pub fn service_status(conn: &mut Connection) -> Result<Vec<ServiceStatus>, StoreError> {
    let mut stmt = conn.prepare("SELECT service, ok, detail, at FROM service_status ORDER BY service")?;
    let rows = stmt.query_map([], |r| {
        let detail: String = r.get(2)?;
        Ok(ServiceStatus {
            service: r.get(0)?,
            ok: r.get(1)?,
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            at: ts(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
