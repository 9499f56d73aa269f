//! Nominations in MongoDB (the documents: see `docs`): each step is one transaction that
//! reads the nomination and its election, applies the port's rule
//! (`turnout_store::nominations::rules`) and writes its change with its audit line, as
//! the SQLite adapter does under its write lock.
//!
//! Snapshot reads never conflict, so each bound a race could overrun has a document that
//! every step pushing against it writes; of two such steps at once one hits a write
//! conflict, is run again and then counts the other's change:
//! - one live nomination per nominee and contest: the partial unique index `one_live`;
//! - `MAX_NOMINATIONS_PER_CONTEST`: every submission bumps `nomination_contests` `{e, c}`;
//! - a student's `max_seconds` in a contest: every second they give bumps
//!   `nomination_seconders` `{e, c, by}`;
//! - once each, versions, decisions on the current version: every step writes the
//!   nomination's own document.
//!
//! (Every step also moves the audit head, which serializes them today; the bounds don't
//! lean on that.) "Live" is "not withdrawn", as in SQLite's partial index: a rejected
//! nomination still stands (the nominee may edit it and be decided again).
//!
//! This file: the role trait and its reads; `steps`: each step's transaction body.

mod steps;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::bson::{Document, doc};
use turnout_domain::{ContestId, ElectionId, Username};
use turnout_store::{
    AuditEntry, Decision, MAX_PAGE, MAX_VERSIONS, NewNomination, NewPhoto, Nomination, NominationContent,
    NominationError, NominationId, NominationStatus, NominationVersion, Nominations, PhotoHash, PhotoShown, StoreError,
    StoredPhoto, check_reason,
};

use crate::decode::{self, bad};
use crate::{MongoStore, docs};
use steps::settle;

const NOMINATIONS: &str = "nominations";
const VERSIONS: &str = "nomination_versions";
const PHOTOS: &str = "photos";

fn id_filter(id: &NominationId) -> Document {
    doc! { "_id": id.as_str() }
}

/// Nominations matching `filter` in `sort` order, at most `limit`.
async fn many(store: &MongoStore, filter: Document, sort: Document, limit: u32) -> Result<Vec<Nomination>, StoreError> {
    let cursor =
        store.timed(store.coll::<Document>(NOMINATIONS).find(filter).sort(sort).limit(i64::from(limit))).await?;
    let found: Vec<Document> = store.timed(cursor.try_collect()).await?;
    found.iter().map(decode::nomination).collect()
}

#[async_trait]
impl Nominations for MongoStore {
    async fn submit_nomination(
        &self,
        nomination: &NewNomination,
        photo: Option<&NewPhoto>,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError> {
        let outcome = self
            .in_transaction(|store, session| {
                let (n, p, a) = (nomination.clone(), photo.cloned(), audit.clone());
                Box::pin(async move { settle(steps::submit(store, session, &n, p.as_ref(), &a, now).await) })
            })
            .await?;
        match outcome {
            // The same submission twice at once: the one that lost sees the other's
            // insert as a duplicate key; the stored nomination is its answer too.
            Err(NominationError::AlreadyNominated) => match self.nomination(&nomination.id).await? {
                Some(done) if done.nominee == nomination.nominee => Ok(done),
                _ => Err(NominationError::AlreadyNominated),
            },
            other => other,
        }
    }

    async fn edit_nomination(
        &self,
        id: &NominationId,
        nominee: &Username,
        content: &NominationContent,
        photo: Option<&NewPhoto>,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError> {
        self.in_transaction(|store, session| {
            let (id, who, c, p, a) = (id.clone(), nominee.clone(), content.clone(), photo.cloned(), audit.clone());
            Box::pin(async move { settle(steps::edit(store, session, &id, &who, &c, p.as_ref(), &a, now).await) })
        })
        .await?
    }

    async fn withdraw_nomination(
        &self,
        id: &NominationId,
        nominee: &Username,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError> {
        self.in_transaction(|store, session| {
            let (id, who, a) = (id.clone(), nominee.clone(), audit.clone());
            Box::pin(async move { settle(steps::withdraw(store, session, &id, &who, &a, now).await) })
        })
        .await?
    }

    async fn second_nomination(
        &self,
        id: &NominationId,
        version: u32,
        seconder: &Username,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError> {
        self.in_transaction(|store, session| {
            let (id, who, a) = (id.clone(), seconder.clone(), audit.clone());
            Box::pin(async move { settle(steps::second(store, session, &id, version, &who, &a, now).await) })
        })
        .await?
    }

    async fn decide_nomination(
        &self,
        id: &NominationId,
        version: u32,
        decision: Decision,
        reason: &str,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError> {
        check_reason(decision, reason)?;
        self.in_transaction(|store, session| {
            let (id, r, a) = (id.clone(), reason.to_owned(), audit.clone());
            Box::pin(async move { settle(steps::decide(store, session, &id, version, decision, &r, &a, now).await) })
        })
        .await?
    }

    async fn nomination(&self, id: &NominationId) -> Result<Option<Nomination>, StoreError> {
        let found = self.timed(self.coll::<Document>(NOMINATIONS).find_one(id_filter(id))).await?;
        found.as_ref().map(decode::nomination).transpose()
    }

    async fn nomination_versions(&self, id: &NominationId) -> Result<Vec<NominationVersion>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>(VERSIONS)
                    .find(doc! { "_id.n": id.as_str() })
                    .sort(doc! { "_id.v": 1 })
                    .limit(i64::from(MAX_VERSIONS)),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found.iter().map(decode::nomination_version).collect()
    }

    async fn nominations_of(&self, election: &ElectionId, nominee: &Username) -> Result<Vec<Nomination>, StoreError> {
        let filter = doc! { "election": election.as_str(), "nominee": nominee.as_str() };
        many(self, filter, doc! { "contest": 1, "submitted_at": 1, "_id": 1 }, MAX_PAGE).await
    }

    async fn list_nominations(
        &self,
        election: &ElectionId,
        status: Option<NominationStatus>,
        after: Option<(&ContestId, &NominationId)>,
        limit: u32,
    ) -> Result<Vec<Nomination>, StoreError> {
        let filter = docs::nominations_page(election, status, after);
        many(self, filter, doc! { "contest": 1, "_id": 1 }, limit.clamp(1, MAX_PAGE)).await
    }

    async fn photo(
        &self,
        hash: &PhotoHash,
        viewer: Option<&Username>,
        now: Timestamp,
    ) -> Result<Option<StoredPhoto>, StoreError> {
        let found = self.timed(self.coll::<Document>(PHOTOS).find_one(doc! { "_id": hash.as_str() })).await?;
        let Some(bytes) = found.map(|d| d.get_binary_generic("bytes").cloned().map_err(bad)).transpose()? else {
            return Ok(None);
        };
        let h = hash.as_str();
        // The elections with an approved candidate using it (a photo is one nominee's:
        // a few at most), and when each opens.
        let on_ballot = self
            .timed(
                self.coll::<Document>("elections")
                    .find(doc! { "contests.candidates": { "$elemMatch": { "photo": h, "status": "approved" } } })
                    .projection(doc! { "opens_at": 1 })
                    .limit(100),
            )
            .await?;
        let elections: Vec<Document> = self.timed(on_ballot.try_collect()).await?;
        let opens_at = elections.iter().map(|d| decode::int(d, "opens_at")).collect::<Result<Vec<_>, _>>()?;
        let locked = opens_at.iter().any(|at| *at <= now.as_second());
        let public = !opens_at.is_empty()
            || self
                .timed(
                    self.coll::<Document>(NOMINATIONS)
                        .find_one(doc! { "photo": h, "status": { "$in": ["pending", "approved"] } })
                        .projection(doc! { "_id": 1 }),
                )
                .await?
                .is_some();
        let shown = PhotoShown::of(locked, public);
        let viewers_own = match (viewer, shown) {
            (Some(who), PhotoShown::Private) => {
                // The versions with this photo (by the `by_photo` index; one student's,
                // bar a file two students both sent), then whether one is the viewer's.
                let cursor = self
                    .timed(
                        self.coll::<Document>(VERSIONS)
                            .find(doc! { "photo": h })
                            .projection(doc! { "_id.n": 1 })
                            .limit(1000),
                    )
                    .await?;
                let versions: Vec<Document> = self.timed(cursor.try_collect()).await?;
                let ids: Vec<&str> =
                    versions.iter().filter_map(|v| v.get_document("_id").ok()?.get_str("n").ok()).collect();
                self.timed(
                    self.coll::<Document>(NOMINATIONS)
                        .find_one(doc! { "_id": { "$in": ids }, "nominee": who.as_str() })
                        .projection(doc! { "_id": 1 }),
                )
                .await?
                .is_some()
            }
            _ => false,
        };
        Ok(Some(StoredPhoto { bytes, shown, viewers_own }))
    }
}
