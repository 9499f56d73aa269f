//! The console in MongoDB: the audit chain, election edits, candidates, window moves,
//! results, roll imports, and the dashboard's counts. Every change runs in a transaction
//! together with its audit line.
//!
//! - `audit` `{_id: seq, at, actor, action, e, detail, prev_hash, hash}` and one
//!   `audit_head` `{_id: "head", seq, hash}`: an append reads the head and moves it in the
//!   same transaction, so appends are serialized (two at once conflict and one is run
//!   again) and sequence numbers never skip; `verify` compares the last entry with the
//!   head, so a removed tail is found too.
//! - `activity` `{_id: {e, m, k}, n}`: counts per minute, bumped with `$inc` after the
//!   change they count commits (one document per minute would make every concurrent
//!   transaction conflict). A crash between the two loses one count on the dashboard,
//!   never a vote or a code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};

use super::decode::{self, bad, int};
use super::*;
use crate::store::shared;

/// Changes are refused with these, as in the SQLite adapter.
fn refused(why: impl Into<String>) -> ChangeError {
    ChangeError::Refused(why.into())
}

/// Appends `entry` to the chain inside the caller's transaction.
pub(super) async fn append_audit_in(
    store: &MongoStore,
    session: &mut ClientSession,
    entry: &AuditEntry,
    now: Timestamp,
) -> mongodb::error::Result<()> {
    let heads = store.coll::<Document>("audit_head");
    let head = heads.find_one(doc! { "_id": "head" }).session(&mut *session).await?;
    let (seq, prev) = match &head {
        Some(h) => (int(h, "seq").unwrap_or(0), h.get_str("hash").unwrap_or("").to_owned()),
        None => (0, String::new()),
    };
    let detail = entry.detail.to_string();
    let election = entry.election.as_ref().map(|e| e.as_str().to_owned());
    let hash = shared::audit_hash(
        &prev,
        now.as_second(),
        &entry.actor,
        &entry.action,
        election.as_deref().unwrap_or(""),
        &detail,
    );
    store
        .coll::<Document>("audit")
        .insert_one(doc! {
            "_id": seq + 1, "at": now.as_second(), "actor": &entry.actor, "action": &entry.action,
            "e": election, "detail": detail, "prev_hash": prev, "hash": &hash,
        })
        .session(&mut *session)
        .await?;
    heads
        .update_one(doc! { "_id": "head" }, doc! { "$set": { "seq": seq + 1, "hash": hash } })
        .upsert(true)
        .session(&mut *session)
        .await?;
    Ok(())
}

/// An election's window and zone inside a transaction, or "unknown election".
async fn window(
    store: &MongoStore,
    session: &mut ClientSession,
    election: &ElectionId,
) -> mongodb::error::Result<Option<Schedule>> {
    let found = store
        .coll::<Document>("elections")
        .find_one(doc! { "_id": election.as_str() })
        .projection(doc! { "opens_at": 1, "closes_at": 1, "grace_secs": 1, "time_zone": 1 })
        .session(&mut *session)
        .await?;
    Ok(found.and_then(|d| decode::schedule(&d).ok()))
}

fn local(s: &Schedule, at: Timestamp) -> String {
    crate::schedule::local_in(&s.time_zone, at)
}

/// Candidates and the ballot are fixed once voting starts.
fn before_opening(s: &Schedule, now: Timestamp) -> Result<(), ChangeError> {
    if now.as_second() >= s.opens_at.as_second() {
        return Err(refused(format!(
            "The voting window opened at {}; the election and its candidates can no longer change.",
            local(s, s.opens_at)
        )));
    }
    Ok(())
}

/// Each process numbers its outbox rows within a millisecond (console paging cursor).
static OUTBOX_SEQ: AtomicI64 = AtomicI64::new(0);

/// A cursor for the console's outbox list: newest highest.
pub(super) fn outbox_seq(now_ms: i64) -> i64 {
    (now_ms << 12) | (OUTBOX_SEQ.fetch_add(1, Ordering::Relaxed) & 0xfff)
}

/// Refuses (as a conflict) a write by a run that does not hold the import.
fn held_by(current: &Document, job: &str, owner: &str) -> Result<(), StoreError> {
    if current.get_str("owner").ok() == Some(owner) {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("import {job} was taken over by another process")))
    }
}

fn job_from(d: &Document) -> Result<ImportJob, StoreError> {
    let n = |k: &str| int(d, k).map(|v| v.max(0) as u64);
    Ok(ImportJob {
        id: d.get_str("_id").map_err(bad)?.to_owned(),
        election: ElectionId::parse(d.get_str("e").map_err(bad)?).map_err(bad)?,
        actor: d.get_str("actor").map_err(bad)?.to_owned(),
        file_name: d.get_str("file_name").map_err(bad)?.to_owned(),
        state: ImportState::parse(d.get_str("state").map_err(bad)?).unwrap_or(ImportState::Failed),
        rows_total: n("rows_total")?,
        rows_done: n("rows_done")?,
        added: n("added")?,
        updated: n("updated")?,
        unchanged: n("unchanged")?,
        rejected: n("rejected")?,
        message: d.get_str("message").ok().map(str::to_owned),
        created_at: decode::ts(int(d, "created_at")?),
        updated_at: decode::ts(int(d, "updated_at")?),
    })
}

impl MongoStore {
    /// Adds `n` events of `kind` to their minute (outside any transaction, see above).
    pub(super) async fn bump_activity(
        &self,
        election: &str,
        kind: Activity,
        n: u64,
        minute: i64,
    ) -> Result<(), StoreError> {
        self.timed(
            self.coll::<Document>("activity")
                .update_one(
                    doc! { "_id": { "e": election, "m": minute, "k": kind.as_str() } },
                    doc! { "$inc": { "n": n as i64 } },
                )
                .upsert(true),
        )
        .await
        .map(|_| ())
    }

    pub async fn record_activity(&self, counts: &[ActivityCount]) -> Result<(), StoreError> {
        for c in counts {
            self.bump_activity(&c.election, c.kind, c.n, c.minute).await?;
        }
        Ok(())
    }

    pub async fn activity(&self, election: &ElectionId, since_minute: i64) -> Result<Vec<ActivityCount>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("activity")
                    .find(doc! { "_id.e": { "$in": [election.as_str(), ALL_ELECTIONS] }, "_id.m": { "$gte": since_minute } })
                    .sort(doc! { "_id.m": 1, "_id.k": 1 }),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let mut out = Vec::new();
        for d in found {
            let id = d.get_document("_id").map_err(bad)?;
            if let Some(kind) = Activity::parse(id.get_str("k").map_err(bad)?) {
                out.push(ActivityCount {
                    election: id.get_str("e").map_err(bad)?.to_owned(),
                    kind,
                    minute: int(id, "m")?,
                    n: int(&d, "n")?.max(0) as u64,
                });
            }
        }
        Ok(out)
    }

    // Audit.

    pub async fn append_audit(&self, entry: &AuditEntry, now: Timestamp) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.in_transaction(|store, session| {
            let entry = entry.clone();
            Box::pin(async move {
                append_audit_in(store, session, &entry, now).await?;
                Ok(Ok::<(), StoreError>(()))
            })
        })
        .await?
    }

    pub async fn list_audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("audit")
                    .find(doc! { "_id": { "$gt": after } })
                    .sort(doc! { "_id": 1 })
                    .limit(i64::from(limit.clamp(1, MAX_PAGE))),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                let detail = d.get_str("detail").map_err(bad)?;
                Ok(AuditRecord {
                    seq: int(d, "_id")?,
                    at: decode::ts(int(d, "at")?),
                    actor: d.get_str("actor").map_err(bad)?.to_owned(),
                    action: d.get_str("action").map_err(bad)?.to_owned(),
                    election: d.get_str("e").ok().map(str::to_owned),
                    detail: serde_json::from_str(detail).unwrap_or(serde_json::Value::String(detail.to_owned())),
                    hash: d.get_str("hash").map_err(bad)?.to_owned(),
                })
            })
            .collect()
    }

    /// Walks the whole chain in order (each link and each hash), then checks the last
    /// entry is the head's: an edit, an insertion or a removal anywhere is found.
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let mut cursor = self.timed(self.coll::<Document>("audit").find(doc! {}).sort(doc! { "_id": 1 })).await?;
        let (mut entries, mut prev, mut last_seq) = (0u64, String::new(), 0i64);
        let broken = |seq: i64, entries: u64, why: &str| AuditVerification {
            entries,
            broken_at: Some(seq),
            problem: Some(why.to_owned()),
        };
        while let Some(d) = self.timed(cursor.try_next()).await? {
            let seq = int(&d, "_id")?;
            let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(bad);
            let (actor, action, detail) = (text("actor")?, text("action")?, text("detail")?);
            let (prev_hash, hash) = (text("prev_hash")?, text("hash")?);
            let election = d.get_str("e").unwrap_or("").to_owned();
            if seq != last_seq + 1 {
                return Ok(broken(seq, entries, &format!("entries {} to {} are missing", last_seq + 1, seq - 1)));
            }
            if prev_hash != prev {
                return Ok(broken(seq, entries, "does not link to the entry before it"));
            }
            let at = int(&d, "at")?;
            if shared::audit_hash(&prev, at, &actor, &action, &election, &detail) != hash {
                return Ok(broken(seq, entries, "its content does not match its hash (edited)"));
            }
            entries += 1;
            prev = hash;
            last_seq = seq;
        }
        let head = self.timed(self.coll::<Document>("audit_head").find_one(doc! { "_id": "head" })).await?;
        let highest = head.as_ref().map(|h| int(h, "seq")).transpose()?.unwrap_or(0);
        if highest > last_seq {
            return Ok(broken(last_seq + 1, entries, &format!("entries {} to {highest} are missing", last_seq + 1)));
        }
        Ok(AuditVerification { entries, broken_at: None, problem: None })
    }

    // Elections and candidates.

    pub async fn set_otp_extra(
        &self,
        election: &ElectionId,
        extra: Duration,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (election, audit) = (election.clone(), audit.clone());
        self.in_transaction(|store, session| {
            let (election, audit) = (election.clone(), audit.clone());
            Box::pin(async move {
                let changed = store
                    .coll::<Document>("elections")
                    .update_one(
                        doc! { "_id": election.as_str() },
                        doc! { "$set": { "otp_extra_secs": extra.as_secs() as i64 } },
                    )
                    .session(&mut *session)
                    .await?;
                if changed.matched_count == 0 {
                    return Ok(Err(StoreError::Conflict(format!("no election {election}"))));
                }
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok(()))
            })
        })
        .await?
    }

    pub async fn edit_election(
        &self,
        id: &ElectionId,
        edit: &ElectionEdit,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        self.in_transaction(|store, session| {
            let audit = audit.clone();
            let (id, edit) = (id.clone(), edit.clone());
            Box::pin(async move {
                let elections = store.coll::<Document>("elections");
                let Some(current) = elections.find_one(doc! { "_id": id.as_str() }).session(&mut *session).await?
                else {
                    return Ok(Err(ChangeError::UnknownElection));
                };
                let s = match decode::schedule(&current) {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(e.into())),
                };
                if let Err(refusal) = before_opening(&s, now) {
                    return Ok(Err(refusal));
                }
                let opens = edit.opens_at.unwrap_or(s.opens_at);
                let closes = edit.closes_at.unwrap_or(s.closes_at);
                if closes.as_second() <= opens.as_second() {
                    return Ok(Err(refused("The close must be after the opening.")));
                }
                if edit.opens_at.is_some() && opens.as_second() <= now.as_second() {
                    return Ok(Err(refused("The opening must be in the future.")));
                }
                let mut set = doc! { "opens_at": opens.as_second(), "closes_at": closes.as_second() };
                if let Some(t) = &edit.title {
                    set.insert("title", t.as_str());
                }
                if let Some(z) = &edit.time_zone {
                    set.insert("time_zone", z.as_str());
                }
                if let Some(g) = edit.grace_secs {
                    set.insert("grace_secs", g as i64);
                }
                if let Some(q) = edit.quorum_pct {
                    set.insert("quorum_pct", q);
                }
                if let Some(v) = edit.otp_validity_secs {
                    set.insert("otp_validity_secs", v as i64);
                }
                if let Some(wanted) = &edit.contests {
                    let existing: Vec<Document> = current
                        .get_array("contests")
                        .map(|a| a.iter().filter_map(|c| c.as_document().cloned()).collect())
                        .unwrap_or_default();
                    for gone in
                        existing.iter().filter(|c| !wanted.iter().any(|w| Some(w.id.as_str()) == c.get_str("id").ok()))
                    {
                        if gone.get_array("candidates").is_ok_and(|k| !k.is_empty()) {
                            return Ok(Err(refused(format!(
                                "Contest {} has candidates; reject or move them before removing it.",
                                gone.get_str("id").unwrap_or("?")
                            ))));
                        }
                    }
                    let contests: Vec<Document> = wanted
                        .iter()
                        .map(|w| {
                            let candidates = existing
                                .iter()
                                .find(|c| c.get_str("id").ok() == Some(w.id.as_str()))
                                .and_then(|c| c.get_array("candidates").ok().cloned())
                                .unwrap_or_default();
                            doc! { "id": w.id.as_str(), "title": &w.title, "candidates": candidates }
                        })
                        .collect();
                    set.insert("contests", contests);
                }
                elections.update_one(doc! { "_id": id.as_str() }, doc! { "$set": set }).session(&mut *session).await?;
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok(()))
            })
        })
        .await
        .map_err(ChangeError::Store)?
    }

    pub async fn nominate_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &NewCandidate,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        self.in_transaction(|store, session| {
            let audit = audit.clone();
            let (election, contest, candidate) = (election.clone(), contest.clone(), candidate.clone());
            Box::pin(async move {
                let elections = store.coll::<Document>("elections");
                let Some(current) =
                    elections.find_one(doc! { "_id": election.as_str() }).session(&mut *session).await?
                else {
                    return Ok(Err(ChangeError::UnknownElection));
                };
                match decode::schedule(&current) {
                    Ok(s) => {
                        if let Err(refusal) = before_opening(&s, now) {
                            return Ok(Err(refusal));
                        }
                    }
                    Err(e) => return Ok(Err(e.into())),
                }
                let contests = current.get_array("contests").cloned().unwrap_or_default();
                let Some(found) = contests
                    .iter()
                    .filter_map(Bson::as_document)
                    .find(|c| c.get_str("id").ok() == Some(contest.as_str()))
                else {
                    return Ok(Err(ChangeError::UnknownCandidate));
                };
                let candidates = found.get_array("candidates").cloned().unwrap_or_default();
                if candidates.len() >= 200 {
                    return Ok(Err(refused("A contest has at most 200 candidates.")));
                }
                if candidates
                    .iter()
                    .filter_map(Bson::as_document)
                    .any(|k| k.get_str("id").ok() == Some(candidate.id.as_str()))
                {
                    return Ok(Err(refused(format!(
                        "There is already a candidate {} in contest {contest}.",
                        candidate.id
                    ))));
                }
                elections
                    .update_one(
                        doc! { "_id": election.as_str(), "contests.id": contest.as_str() },
                        doc! { "$push": { "contests.$.candidates": {
                            "id": candidate.id.as_str(), "name": &candidate.name, "statement": &candidate.statement,
                            "status": "pending", "reason": Bson::Null,
                        } } },
                    )
                    .session(&mut *session)
                    .await?;
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok(()))
            })
        })
        .await
        .map_err(ChangeError::Store)?
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn decide_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &CandidateId,
        decision: Decision,
        reason: &str,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        self.in_transaction(|store, session| {
            let audit = audit.clone();
            let (election, contest, candidate, reason) =
                (election.clone(), contest.clone(), candidate.clone(), reason.to_owned());
            Box::pin(async move {
                let Some(s) = window(store, session, &election).await? else {
                    return Ok(Err(ChangeError::UnknownElection));
                };
                if let Err(refusal) = before_opening(&s, now) {
                    return Ok(Err(refusal));
                }
                let changed = store
                    .coll::<Document>("elections")
                    .update_one(
                        doc! { "_id": election.as_str() },
                        doc! { "$set": {
                            "contests.$[c].candidates.$[k].status": decision.status().as_str(),
                            "contests.$[c].candidates.$[k].reason": &reason,
                        } },
                    )
                    .array_filters(vec![doc! { "c.id": contest.as_str() }, doc! { "k.id": candidate.as_str() }])
                    .session(&mut *session)
                    .await?;
                // `modified` is 0 both for no such candidate and for the same decision
                // again; tell them apart by looking.
                if changed.modified_count == 0 {
                    let exists = store
                        .coll::<Document>("elections")
                        .count_documents(doc! { "_id": election.as_str(), "contests": { "$elemMatch": {
                            "id": contest.as_str(), "candidates.id": candidate.as_str(),
                        } } })
                        .session(&mut *session)
                        .await?;
                    if exists == 0 {
                        return Ok(Err(ChangeError::UnknownCandidate));
                    }
                }
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok(()))
            })
        })
        .await
        .map_err(ChangeError::Store)?
    }

    pub async fn list_candidates(
        &self,
        election: &ElectionId,
        after: Option<(&ContestId, &CandidateId)>,
        limit: u32,
    ) -> Result<Vec<CandidateRow>, StoreError> {
        let Some(d) =
            self.timed(self.coll::<Document>("elections").find_one(doc! { "_id": election.as_str() })).await?
        else {
            return Ok(Vec::new());
        };
        let mut rows = Vec::new();
        for c in d.get_array("contests").map_err(bad)?.iter().filter_map(Bson::as_document) {
            let contest = ContestId::parse(c.get_str("id").map_err(bad)?).map_err(bad)?;
            for k in c.get_array("candidates").map_err(bad)?.iter().filter_map(Bson::as_document) {
                let Candidate { id, name, statement, status } = decode::candidate(k)?;
                let reason = k.get_str("reason").ok().map(str::to_owned);
                rows.push(CandidateRow { contest: contest.clone(), id, name, statement, status, reason });
            }
        }
        rows.sort_by(|a, b| (a.contest.as_str(), a.id.as_str()).cmp(&(b.contest.as_str(), b.id.as_str())));
        let after = after.map(|(c, k)| (c.as_str().to_owned(), k.as_str().to_owned()));
        Ok(rows
            .into_iter()
            .filter(|r| {
                after.as_ref().is_none_or(|(c, k)| (r.contest.as_str(), r.id.as_str()) > (c.as_str(), k.as_str()))
            })
            .take(limit.clamp(1, MAX_PAGE) as usize)
            .collect())
    }

    pub async fn extend_close(
        &self,
        election: &ElectionId,
        new_close: Timestamp,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        self.in_transaction(|store, session| {
            let audit = audit.clone();
            let election = election.clone();
            Box::pin(async move {
                let Some(s) = window(store, session, &election).await? else {
                    return Ok(Err(ChangeError::UnknownElection));
                };
                if now.as_second() >= s.closes_at.as_second() {
                    return Ok(Err(refused(format!(
                        "The election closed at {}; a closed election can't be reopened.",
                        local(&s, s.closes_at)
                    ))));
                }
                if new_close.as_second() <= s.closes_at.as_second() {
                    return Ok(Err(refused(format!(
                        "The close can only move later than the current {}.",
                        local(&s, s.closes_at)
                    ))));
                }
                store
                    .coll::<Document>("elections")
                    .update_one(
                        doc! { "_id": election.as_str() },
                        doc! { "$set": { "closes_at": new_close.as_second() } },
                    )
                    .session(&mut *session)
                    .await?;
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok(()))
            })
        })
        .await
        .map_err(ChangeError::Store)?
    }

    pub async fn close_now(
        &self,
        election: &ElectionId,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Timestamp, ChangeError> {
        self.in_transaction(|store, session| {
            let audit = audit.clone();
            let election = election.clone();
            Box::pin(async move {
                let Some(s) = window(store, session, &election).await? else {
                    return Ok(Err(ChangeError::UnknownElection));
                };
                if now.as_second() < s.opens_at.as_second() {
                    return Ok(Err(refused("The election has not opened yet; edit its window instead.")));
                }
                if now.as_second() >= s.closes_at.as_second() {
                    return Ok(Err(refused("The election is already closed.")));
                }
                store
                    .coll::<Document>("elections")
                    .update_one(doc! { "_id": election.as_str() }, doc! { "$set": { "closes_at": now.as_second() } })
                    .session(&mut *session)
                    .await?;
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok(decode::ts(now.as_second())))
            })
        })
        .await
        .map_err(ChangeError::Store)?
    }

    /// Counts per contest and candidate, with participation and ballots, from one
    /// snapshot (a transaction).
    pub async fn tally(&self, election: &ElectionId) -> Result<Tally, StoreError> {
        let election = election.clone();
        self.in_transaction(|store, session| {
            let election = election.clone();
            Box::pin(async move {
                let (participation, ballots) = super::counts_in(store, session, &election).await?;
                let mut contests: BTreeMap<String, ContestTally> = BTreeMap::new();
                if let Some(d) = store
                    .coll::<Document>("elections")
                    .find_one(doc! { "_id": election.as_str() })
                    .session(&mut *session)
                    .await?
                {
                    for c in d
                        .get_array("contests")
                        .map(|a| a.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .filter_map(Bson::as_document)
                    {
                        let entry = contests.entry(c.get_str("id").unwrap_or("").to_owned()).or_default();
                        for k in c
                            .get_array("candidates")
                            .map(|a| a.as_slice())
                            .unwrap_or_default()
                            .iter()
                            .filter_map(Bson::as_document)
                        {
                            if k.get_str("status").ok() == Some("approved") {
                                entry.votes.insert(k.get_str("id").unwrap_or("").to_owned(), 0);
                            }
                        }
                    }
                }
                // Counted in the database: one row per (contest, candidate).
                let pipeline = vec![
                    doc! { "$match": docs::of_election(&election) },
                    doc! { "$project": { "c": { "$objectToArray": "$choices" } } },
                    doc! { "$unwind": "$c" },
                    doc! { "$group": { "_id": { "k": "$c.k", "v": "$c.v" }, "n": { "$sum": 1 } } },
                ];
                let mut cursor = store.coll::<Document>("ballots").aggregate(pipeline).session(&mut *session).await?;
                while let Some(row) = cursor.next(&mut *session).await.transpose()? {
                    let (Ok(id), Some(n)) = (row.get_document("_id"), int(&row, "n").ok()) else { continue };
                    let (Ok(contest), Ok(candidate)) = (id.get_str("k"), id.get_str("v")) else { continue };
                    *contests.entry(contest.to_owned()).or_default().votes.entry(candidate.to_owned()).or_default() +=
                        n.max(0) as u64;
                }
                for c in contests.values_mut() {
                    c.blank = ballots.saturating_sub(c.votes.values().sum());
                }
                Ok(Ok(Tally { participation, ballots, contests }))
            })
        })
        .await?
    }

    // The roll and its imports.

    pub async fn list_roll(
        &self,
        election: &ElectionId,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<RollRow>, StoreError> {
        let mut filter = doc! { "_id.e": election.as_str() };
        if let Some(a) = after {
            filter.insert("_id.u", doc! { "$gt": a.as_str() });
        }
        let cursor = self
            .timed(
                self.coll::<Document>("voter_roll")
                    .find(filter)
                    .sort(doc! { "_id.u": 1 })
                    .limit(i64::from(limit.clamp(1, MAX_PAGE))),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                let uid = d.get_document("_id").and_then(|id| id.get_str("u")).map_err(bad)?;
                Ok(RollRow {
                    uid: Username::parse(uid).map_err(bad)?,
                    email: d.get_str("email").ok().map(str::to_owned),
                    name: d.get_str("name").ok().map(str::to_owned),
                })
            })
            .collect()
    }

    pub async fn roll_size(&self, election: &ElectionId) -> Result<u64, StoreError> {
        self.timed(self.coll::<Document>("voter_roll").count_documents(doc! { "_id.e": election.as_str() })).await
    }

    pub async fn create_import(
        &self,
        job: &ImportJob,
        lease: &ImportLease,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (job, lease, audit) = (job.clone(), lease.clone(), audit.clone());
        self.in_transaction(|store, session| {
            let (job, lease, audit) = (job.clone(), lease.clone(), audit.clone());
            Box::pin(async move {
                store
                    .coll::<Document>("roll_imports")
                    .insert_one(doc! {
                        "_id": &job.id, "e": job.election.as_str(), "actor": &job.actor, "file_name": &job.file_name,
                        "state": "running", "rows_total": job.rows_total as i64, "rows_done": 0_i64, "added": 0_i64,
                        "updated": 0_i64, "unchanged": 0_i64, "rejected": 0_i64, "message": Bson::Null,
                        "errors": 0_i64, "created_at": now.as_second(), "updated_at": now.as_second(),
                        "owner": &lease.owner, "lease_until": lease.until.as_second(),
                    })
                    .session(&mut *session)
                    .await?;
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok::<(), StoreError>(()))
            })
        })
        .await?
    }

    /// Takes over a running import whose lease has passed (or that has none).
    pub async fn claim_import(
        &self,
        job: &str,
        lease: &ImportLease,
        now: Timestamp,
    ) -> Result<Option<ImportJob>, StoreError> {
        let claimed = self
            .timed(
                self.coll::<Document>("roll_imports")
                    .find_one_and_update(
                        doc! {
                            "_id": job, "state": "running",
                            "$or": [{ "lease_until": Bson::Null }, { "lease_until": { "$lt": now.as_second() } }],
                        },
                        doc! { "$set": { "owner": &lease.owner, "lease_until": lease.until.as_second() } },
                    )
                    .return_document(mongodb::options::ReturnDocument::After),
            )
            .await?;
        claimed.map(|d| job_from(&d)).transpose()
    }

    /// One chunk (entries, row errors, progress) in one transaction, by the lease holder.
    pub async fn import_chunk(
        &self,
        job: &str,
        lease: &ImportLease,
        chunk: &ImportChunk,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError> {
        let (job, lease, chunk) = (job.to_owned(), lease.clone(), chunk.clone());
        self.in_transaction(|store, session| {
            let (job, lease, chunk) = (job.clone(), lease.clone(), chunk.clone());
            Box::pin(async move {
                let imports = store.coll::<Document>("roll_imports");
                let Some(current) = imports.find_one(doc! { "_id": &job }).session(&mut *session).await? else {
                    return Ok(Err(StoreError::Conflict(format!("no import {job}"))));
                };
                if let Err(e) = held_by(&current, &job, &lease.owner) {
                    return Ok(Err(e));
                }
                let current = match job_from(&current) {
                    Ok(j) => j,
                    Err(e) => return Ok(Err(e)),
                };
                if current.state != ImportState::Running {
                    return Ok(Err(StoreError::Conflict(format!("import {job} is {}", current.state.as_str()))));
                }
                let stats = upsert_roll_in(store, session, &current.election, &chunk.entries).await?;
                let kept = store
                    .coll::<Document>("roll_import_errors")
                    .count_documents(doc! { "_id.j": &job })
                    .session(&mut *session)
                    .await?;
                let room = MAX_IMPORT_ERRORS.saturating_sub(kept) as usize;
                for e in chunk.errors.iter().take(room) {
                    store
                        .coll::<Document>("roll_import_errors")
                        .update_one(
                            doc! { "_id": { "j": &job, "l": e.line as i64 } },
                            doc! { "$setOnInsert": { "reason": &e.reason } },
                        )
                        .upsert(true)
                        .session(&mut *session)
                        .await?;
                }
                let updated = imports
                    .find_one_and_update(
                        doc! { "_id": &job },
                        doc! {
                            "$inc": {
                                "rows_done": chunk.rows as i64, "added": stats.added as i64, "updated": stats.updated as i64,
                                "unchanged": stats.unchanged as i64, "rejected": chunk.errors.len() as i64,
                            },
                            "$set": { "updated_at": now.as_second(), "lease_until": lease.until.as_second() },
                        },
                    )
                    .return_document(mongodb::options::ReturnDocument::After)
                    .session(&mut *session)
                    .await?;
                Ok(updated.ok_or_else(|| StoreError::Conflict(format!("no import {job}"))).and_then(|d| job_from(&d)))
            })
        })
        .await?
    }

    pub async fn finish_import(
        &self,
        job: &str,
        owner: &str,
        state: ImportState,
        message: Option<&str>,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError> {
        let (job, owner, message) = (job.to_owned(), owner.to_owned(), message.map(str::to_owned));
        self.in_transaction(|store, session| {
            let (job, owner, message) = (job.clone(), owner.clone(), message.clone());
            Box::pin(async move {
                let imports = store.coll::<Document>("roll_imports");
                let Some(current) = imports.find_one(doc! { "_id": &job }).session(&mut *session).await? else {
                    return Ok(Err(StoreError::Conflict(format!("no import {job}"))));
                };
                if let Err(e) = held_by(&current, &job, &owner) {
                    return Ok(Err(e));
                }
                let done = imports
                    .find_one_and_update(
                        doc! { "_id": &job },
                        doc! { "$set": {
                            "state": state.as_str(), "message": message.as_deref(), "updated_at": now.as_second(),
                            "lease_until": Bson::Null,
                        } },
                    )
                    .return_document(mongodb::options::ReturnDocument::After)
                    .session(&mut *session)
                    .await?;
                let done = match done.map(|d| job_from(&d)) {
                    Some(Ok(j)) => j,
                    Some(Err(e)) => return Ok(Err(e)),
                    None => return Ok(Err(StoreError::Conflict(format!("no import {job}")))),
                };
                let audit = AuditEntry {
                    actor: done.actor.clone(),
                    action: "roll_import_finished".into(),
                    election: Some(done.election.clone()),
                    detail: serde_json::json!({
                        "import": done.id, "state": state.as_str(), "rows": done.rows_done, "added": done.added,
                        "updated": done.updated, "unchanged": done.unchanged, "rejected": done.rejected, "message": message,
                    }),
                };
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok(done))
            })
        })
        .await?
    }

    pub async fn import_job(&self, job: &str) -> Result<Option<ImportJob>, StoreError> {
        let found = self.timed(self.coll::<Document>("roll_imports").find_one(doc! { "_id": job })).await?;
        found.map(|d| job_from(&d)).transpose()
    }

    pub async fn import_errors(&self, job: &str, after_line: u64, limit: u32) -> Result<Vec<RowError>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("roll_import_errors")
                    .find(doc! { "_id.j": job, "_id.l": { "$gt": after_line as i64 } })
                    .sort(doc! { "_id.l": 1 })
                    .limit(i64::from(limit.clamp(1, MAX_PAGE))),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                Ok(RowError {
                    line: int(d.get_document("_id").map_err(bad)?, "l")?.max(0) as u64,
                    reason: d.get_str("reason").map_err(bad)?.to_owned(),
                })
            })
            .collect()
    }

    pub async fn running_imports(&self) -> Result<Vec<ImportJob>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("roll_imports").find(doc! { "state": "running" }).sort(doc! { "created_at": 1 }),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found.iter().map(job_from).collect()
    }

    // The dashboard.

    /// Counts by state and the oldest waiting message from the database; the delivery
    /// percentiles from the last 10 minutes' sent mail, grouped by whole seconds in the database.
    pub async fn outbox_summary(&self, election: &ElectionId, now: Timestamp) -> Result<OutboxSummary, StoreError> {
        let outbox = self.coll::<Document>("outbox");
        let mut summary = OutboxSummary::default();
        let by_state = vec![
            doc! { "$match": { "e": election.as_str() } },
            doc! { "$group": { "_id": "$state", "n": { "$sum": 1 } } },
        ];
        let cursor = self.timed(outbox.aggregate(by_state)).await?;
        let rows: Vec<Document> = self.timed(cursor.try_collect()).await?;
        for row in rows {
            let n = int(&row, "n")?.max(0) as u64;
            match row.get_str("_id").unwrap_or("") {
                "queued" => summary.queued = n,
                "sending" => summary.sending = n,
                "deferred" => summary.deferred = n,
                "sent" => summary.sent = n,
                "failed" => summary.failed = n,
                _ => {}
            }
        }
        let oldest = self
            .timed(
                outbox
                    .find_one(doc! { "e": election.as_str(), "state": { "$in": ["queued", "sending", "deferred"] } })
                    .sort(doc! { "created_at": 1 })
                    .projection(doc! { "created_at": 1 }),
            )
            .await?;
        summary.oldest_waiting_secs =
            oldest.map(|d| int(&d, "created_at")).transpose()?.map(|at| (now.as_second() - at).max(0));
        let by_latency = vec![
            doc! { "$match": { "e": election.as_str(), "state": "sent", "sent_at": { "$gte": now.as_second() - 600 } } },
            doc! { "$group": { "_id": { "$subtract": ["$sent_at", "$created_at"] }, "n": { "$sum": 1 } } },
            doc! { "$sort": { "_id": 1 } },
        ];
        let cursor = self.timed(outbox.aggregate(by_latency)).await?;
        let rows: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let histogram = rows
            .iter()
            .map(|r| Ok((int(r, "_id")?, int(r, "n")?.max(0) as u64)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        (summary.latency_p50_secs, summary.latency_p95_secs) = shared::delivery_percentiles(&histogram);
        Ok(summary)
    }

    pub async fn list_outbox(
        &self,
        election: &ElectionId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<OutboxPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut rows = self.outbox_rows(election, doc! { "$lt": before.unwrap_or(i64::MAX) }, limit + 1).await?;
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        // Two processes can number rows alike (see `outbox_seq`): never split them.
        match shared::cut_outbox_page(&seqs, limit as usize) {
            shared::OutboxCut::Page { rows: n, next_before } => {
                rows.truncate(n);
                Ok(OutboxPage { rows, next_before })
            }
            shared::OutboxCut::Group { seq } => {
                let rows = self.outbox_rows(election, Bson::Int64(seq), MAX_PAGE).await?;
                Ok(OutboxPage { rows, next_before: Some(seq) })
            }
        }
    }

    /// Up to `take` rows whose `seq` matches `seq`, newest first.
    async fn outbox_rows(
        &self,
        election: &ElectionId,
        seq: impl Into<Bson>,
        take: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("outbox")
                    .find(doc! { "e": election.as_str(), "seq": seq.into() })
                    .sort(doc! { "seq": -1 })
                    .limit(i64::from(take)),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                Ok(OutboxRow {
                    seq: int(d, "seq")?,
                    id: d.get_str("_id").map_err(bad)?.to_owned(),
                    voter: d.get_str("v").map_err(bad)?.to_owned(),
                    recipient: d.get_str("recipient").map_err(bad)?.to_owned(),
                    state: d.get_str("state").map_err(bad)?.to_owned(),
                    attempts: int(d, "attempts")? as u32,
                    account: d.get_str("account").ok().map(str::to_owned),
                    created_at: decode::ts(int(d, "created_at")?),
                    sent_at: int(d, "sent_at").ok().map(decode::ts),
                    last_error: d.get_str("last_error").ok().map(str::to_owned),
                })
            })
            .collect()
    }

    pub async fn report_status(
        &self,
        service: &str,
        ok: bool,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.timed(
            self.coll::<Document>("service_status")
                .update_one(
                    doc! { "_id": service },
                    doc! { "$set": { "ok": ok, "detail": detail.to_string(), "at": now.as_second() } },
                )
                .upsert(true),
        )
        .await
        .map(|_| ())
    }

    pub async fn service_status(&self) -> Result<Vec<ServiceStatus>, StoreError> {
        let cursor = self.timed(self.coll::<Document>("service_status").find(doc! {}).sort(doc! { "_id": 1 })).await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                Ok(ServiceStatus {
                    service: d.get_str("_id").map_err(bad)?.to_owned(),
                    ok: d.get_bool("ok").map_err(bad)?,
                    detail: serde_json::from_str(d.get_str("detail").unwrap_or("null"))
                        .unwrap_or(serde_json::Value::Null),
                    at: decode::ts(int(d, "at")?),
                })
            })
            .collect()
    }
}

/// Adds or updates roll entries inside the caller's transaction, counting what changed:
/// one read for the chunk's existing entries, one insert for the new ones, and an update
/// only for each entry that changed (a fresh import of 1,000 is three round trips).
pub(super) async fn upsert_roll_in(
    store: &MongoStore,
    session: &mut ClientSession,
    election: &ElectionId,
    entries: &[RollEntry],
) -> mongodb::error::Result<RollImport> {
    let roll = store.coll::<Document>("voter_roll");
    let mut stats = RollImport::default();
    if entries.is_empty() {
        return Ok(stats);
    }
    let uids: Vec<&str> = entries.iter().map(|e| e.uid.as_str()).collect();
    let mut cursor =
        roll.find(doc! { "_id.e": election.as_str(), "_id.u": { "$in": uids } }).session(&mut *session).await?;
    let mut existing: std::collections::HashMap<String, Document> = std::collections::HashMap::new();
    while let Some(d) = cursor.next(&mut *session).await.transpose()? {
        if let Ok(u) = d.get_document("_id").and_then(|id| id.get_str("u")) {
            existing.insert(u.to_owned(), d);
        }
    }
    // New entries are inserted together at the end; a uid repeated within the chunk
    // compares against (and replaces) its earlier line, as one upsert after another would.
    let mut fresh: Vec<(String, Document)> = Vec::new();
    for e in entries {
        let fields = docs::roll_fields(e);
        let same = |d: &Document| d.get("email") == fields.get("email") && d.get("name") == fields.get("name");
        if let Some((_, d)) = fresh.iter_mut().find(|(u, _)| u == e.uid.as_str()) {
            if same(d) {
                stats.unchanged += 1;
            } else {
                d.extend(fields);
                stats.updated += 1;
            }
            continue;
        }
        match existing.get(e.uid.as_str()) {
            Some(d) if same(d) => stats.unchanged += 1,
            Some(_) => {
                roll.update_one(docs::roll_id(election, &e.uid), doc! { "$set": fields.clone() })
                    .session(&mut *session)
                    .await?;
                existing.insert(e.uid.as_str().to_owned(), fields);
                stats.updated += 1;
            }
            None => {
                let mut d = docs::roll_id(election, &e.uid);
                d.extend(fields);
                fresh.push((e.uid.as_str().to_owned(), d));
                stats.added += 1;
            }
        }
    }
    if !fresh.is_empty() {
        roll.insert_many(fresh.into_iter().map(|(_, d)| d)).session(&mut *session).await?;
    }
    Ok(stats)
}
