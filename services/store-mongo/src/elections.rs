//! Elections in MongoDB: definitions (one `elections` document each, its contests and
//! candidates inside: see `docs`), edits before opening, candidates, and window moves.
//! Every change runs in a transaction together with its audit line.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::ClientSession;
use mongodb::bson::{Bson, Document, doc};
use turnout_domain::schedule::{Schedule, local_in};
use turnout_domain::{CandidateId, ContestId, ElectionId};
use turnout_store::{
    AuditEntry, Candidate, CandidateRow, ChangeError, ContestRules, Decision, Election, ElectionEdit, ElectionSummary,
    Elections, MAX_PAGE, NewCandidate, NewElection, StoreError,
};

use crate::audit::append_audit_in;
use crate::decode::{self, bad};
use crate::{MongoStore, docs, errors, unavailable};

/// Changes are refused with these, as in the SQLite adapter.
fn refused(why: impl Into<String>) -> ChangeError {
    ChangeError::Refused(why.into())
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
    local_in(&s.time_zone, at)
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

#[async_trait]
impl Elections for MongoStore {
    async fn create_election(&self, election: &NewElection, now: Timestamp) -> Result<(), StoreError> {
        let d = docs::election(election, now.as_second()).map_err(|e| StoreError::Other(e.into()))?;
        match tokio::time::timeout(self.op_timeout, self.coll::<Document>("elections").insert_one(d).into_future())
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if errors::is_duplicate_key(&e) => {
                Err(StoreError::Conflict(format!("election {} already exists", election.id)))
            }
            Ok(Err(e)) => Err(errors::store_error(&e)),
            Err(_) => Err(unavailable("creating the election timed out")),
        }
    }

    async fn create_election_audited(
        &self,
        election: &NewElection,
        entry: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let d = docs::election(election, now.as_second()).map_err(|e| StoreError::Other(e.into()))?;
        let created = self
            .in_transaction(|store, session| {
                let (d, entry) = (d.clone(), entry.clone());
                Box::pin(async move {
                    match store.coll::<Document>("elections").insert_one(d).session(&mut *session).await {
                        Err(e) if errors::is_duplicate_key(&e) => return Ok(Err(())),
                        other => other?,
                    };
                    append_audit_in(store, session, &entry, now).await?;
                    Ok(Ok(()))
                })
            })
            .await?;
        created.map_err(|()| StoreError::Conflict(format!("election {} already exists", election.id)))
    }

    async fn election(&self, id: &ElectionId) -> Result<Option<Election>, StoreError> {
        let found = self.timed(self.coll::<Document>("elections").find_one(doc! { "_id": id.as_str() })).await?;
        found.map(|d| decode::election(&d)).transpose()
    }

    async fn list_elections(&self, after: Option<&ElectionId>, limit: u32) -> Result<Vec<ElectionSummary>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("elections")
                    .find(docs::elections_after(after))
                    .sort(doc! { "_id": 1 })
                    .limit(i64::from(limit.clamp(1, 100)))
                    .projection(doc! { "contests.candidates": 0 }),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found.iter().map(decode::summary).collect()
    }

    async fn edit_election(
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
                // The period (a new one, or the one kept) must still close before voting opens.
                let period = match decode::nomination_period(&current) {
                    Ok(current) => edit.nominations_after(current, opens),
                    Err(e) => return Ok(Err(e.into())),
                };
                let period = match period {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(refused(e.to_string()))),
                };
                let period = match docs::nomination_period(period.as_ref()) {
                    Ok(b) => b,
                    Err(e) => return Ok(Err(ChangeError::Store(bad(e)))),
                };
                let mut set = doc! {
                    "opens_at": opens.as_second(), "closes_at": closes.as_second(), "nominations": period,
                };
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
                if let Some(shuffle) = edit.shuffle_candidates {
                    set.insert("shuffle_candidates", shuffle);
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
                        let gone_id = gone.get_str("id").unwrap_or("?");
                        let nominated = store
                            .coll::<Document>("nominations")
                            .count_documents(doc! { "election": id.as_str(), "contest": gone_id, "live": true })
                            .session(&mut *session)
                            .await?;
                        if nominated > 0 {
                            return Ok(Err(refused(format!(
                                "Contest {gone_id} has nominations; they must be withdrawn or the contest kept."
                            ))));
                        }
                    }
                    let mut contests: Vec<Document> = Vec::new();
                    for w in wanted {
                        let before = existing.iter().find(|c| c.get_str("id").ok() == Some(w.id.as_str()));
                        let candidates =
                            before.and_then(|c| c.get_array("candidates").ok().cloned()).unwrap_or_default();
                        // New rules replace the old; left out, an existing contest keeps its own.
                        let rules = match (&w.rules, before) {
                            (Some(r), _) => r.clone(),
                            (None, Some(c)) => match decode::rules(c) {
                                Ok(r) => r,
                                Err(e) => return Ok(Err(ChangeError::Store(e))),
                            },
                            (None, None) => ContestRules::default(),
                        };
                        let rules = match docs::rules(&rules) {
                            Ok(b) => b,
                            Err(e) => return Ok(Err(ChangeError::Store(bad(e)))),
                        };
                        contests.push(
                            doc! { "id": w.id.as_str(), "title": &w.title, "rules": rules, "candidates": candidates },
                        );
                    }
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

    async fn list_candidates(
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
                let Candidate { id, name, statement, status, .. } = decode::candidate(k)?;
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

    async fn extend_close(
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

    async fn close_now(
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
}
