//! The nomination steps, each the body of one transaction (`MongoStore::in_transaction`):
//! the port's rule applied to what the transaction read, then the change, the ballot and
//! the audit line. Why each bound holds under a race: see `nominations`.

use jiff::Timestamp;
use mongodb::ClientSession;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use turnout_domain::{ElectionId, Username};
use turnout_store::nominations::rules::{self, DecisionPlan, EditPlan};
use turnout_store::{
    AuditEntry, Decision, InvalidField, MAX_NOMINATIONS_PER_CONTEST, NewNomination, NewPhoto, Nomination,
    NominationContent, NominationError, NominationId, NominationPeriod, NominationStatus, StoreError, check_photo,
};

use super::{NOMINATIONS, PHOTOS, VERSIONS, id_filter};
use crate::audit::append_audit_in;
use crate::decode::{self, bad, int};
use crate::{MongoStore, docs, errors};

const CONTESTS: &str = "nomination_contests";
const SECONDERS: &str = "nomination_seconders";
/// Most candidates in one contest, as `nominate_candidate` and SQLite have it.
const MAX_CANDIDATES: usize = 200;

/// Why a step's body stopped: the database (the transaction is aborted, and run again on
/// a write conflict) or a refusal (aborted, and answered). Lets the bodies use `?`.
pub(super) enum Halt {
    Db(mongodb::error::Error),
    No(NominationError),
}

impl From<mongodb::error::Error> for Halt {
    fn from(e: mongodb::error::Error) -> Self {
        Self::Db(e)
    }
}

impl From<NominationError> for Halt {
    fn from(e: NominationError) -> Self {
        Self::No(e)
    }
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Self {
        Self::No(e.into())
    }
}

impl From<InvalidField> for Halt {
    fn from(e: InvalidField) -> Self {
        Self::No(e.into())
    }
}

/// A body's outcome in `MongoStore::in_transaction`'s terms.
pub(super) fn settle<T>(step: Result<T, Halt>) -> mongodb::error::Result<Result<T, NominationError>> {
    match step {
        Ok(v) => Ok(Ok(v)),
        Err(Halt::No(refusal)) => Ok(Err(refusal)),
        Err(Halt::Db(e)) => Err(e),
    }
}

fn refused(why: impl Into<String>) -> Halt {
    Halt::No(NominationError::Refused(why.into()))
}

/// What a step needs to know of the election, read inside its transaction (the contests'
/// ids only: the candidates, with their statements, stay on the server).
struct Times {
    period: Option<NominationPeriod>,
    voting_opens: Timestamp,
    zone: String,
    contests: Vec<String>,
}

async fn times(store: &MongoStore, session: &mut ClientSession, election: &ElectionId) -> Result<Times, Halt> {
    let found = store
        .coll::<Document>("elections")
        .find_one(doc! { "_id": election.as_str() })
        .projection(doc! { "nominations": 1, "opens_at": 1, "time_zone": 1, "contests.id": 1 })
        .session(&mut *session)
        .await?;
    let d = found.ok_or(NominationError::UnknownElection)?;
    let contests = d
        .get_array("contests")
        .map_err(bad)?
        .iter()
        .filter_map(Bson::as_document)
        .filter_map(|c| c.get_str("id").ok().map(str::to_owned))
        .collect();
    Ok(Times {
        period: decode::nomination_period(&d)?,
        voting_opens: decode::ts(int(&d, "opens_at")?),
        zone: d.get_str("time_zone").map_err(bad)?.to_owned(),
        contests,
    })
}

async fn find(store: &MongoStore, session: &mut ClientSession, id: &NominationId) -> Result<Option<Nomination>, Halt> {
    let found = store.coll::<Document>(NOMINATIONS).find_one(id_filter(id)).session(&mut *session).await?;
    Ok(found.as_ref().map(decode::nomination).transpose()?)
}

async fn existing(store: &MongoStore, session: &mut ClientSession, id: &NominationId) -> Result<Nomination, Halt> {
    find(store, session, id).await?.ok_or(Halt::No(NominationError::UnknownNomination))
}

/// Applies `update` to the nomination and answers it as it now stands (one round trip,
/// where SQLite reads it back).
async fn update(
    store: &MongoStore,
    session: &mut ClientSession,
    filter: Document,
    update: Document,
) -> Result<Option<Nomination>, Halt> {
    let found = store
        .coll::<Document>(NOMINATIONS)
        .find_one_and_update(filter, update)
        .return_document(ReturnDocument::After)
        .session(&mut *session)
        .await?;
    Ok(found.as_ref().map(decode::nomination).transpose()?)
}

/// Stores a new photo (once per hash) and checks the content names the photo given with
/// it, or, for an edit (`own`), one this nomination has had. The photo is upserted with
/// `$setOnInsert` rather than inserted: a duplicate key would abort the whole
/// transaction, and a hash already held is the same bytes.
async fn keep_photo(
    store: &MongoStore,
    session: &mut ClientSession,
    own: Option<&NominationId>,
    content: &NominationContent,
    photo: Option<&NewPhoto>,
    now: Timestamp,
) -> Result<(), Halt> {
    content.validate()?;
    let photos = store.coll::<Document>(PHOTOS);
    if let Some(photo) = photo {
        check_photo(photo)?;
        let hash = photo.hash();
        if content.photo.as_ref() != Some(&hash) {
            return Err(InvalidField::new("photo", "the content must name the photo stored with it").into());
        }
        photos
            .update_one(
                doc! { "_id": hash.as_str() },
                doc! { "$setOnInsert": docs::photo(&photo.bytes, now.as_second()) },
            )
            .upsert(true)
            .session(&mut *session)
            .await?;
    } else if let Some(hash) = &content.photo {
        let had = match own {
            None => false,
            Some(id) => store
                .coll::<Document>(VERSIONS)
                .find_one(doc! { "_id.n": id.as_str(), "photo": hash.as_str() })
                .projection(doc! { "_id": 1 })
                .session(&mut *session)
                .await?
                .is_some(),
        };
        rules::own_photo(had)?;
    }
    Ok(())
}

async fn add_version(
    store: &MongoStore,
    session: &mut ClientSession,
    id: &NominationId,
    version: u32,
    content: &NominationContent,
    now: Timestamp,
) -> Result<(), Halt> {
    let d = docs::nomination_version(id, version, content, now.as_second());
    store.coll::<Document>(VERSIONS).insert_one(d).session(&mut *session).await?;
    Ok(())
}

/// Takes the nominee off the ballot (an edit, a withdrawal, a rejection); a nominee not
/// on it is left as is (the `$pull` writes nothing).
async fn off_the_ballot(store: &MongoStore, session: &mut ClientSession, n: &Nomination) -> Result<(), Halt> {
    store
        .coll::<Document>("elections")
        .update_one(
            doc! { "_id": n.election.as_str(), "contests.id": n.contest.as_str() },
            doc! { "$pull": { "contests.$.candidates": { "id": n.candidate_id().as_str() } } },
        )
        .session(&mut *session)
        .await?;
    Ok(())
}

/// Puts an approved nominee on the ballot as candidate `n-…`: appended after the others,
/// or, already there, its name, statement, status and photo replaced in place (its place
/// kept), as SQLite's upsert does.
async fn on_the_ballot(store: &MongoStore, session: &mut ClientSession, n: &Nomination) -> Result<(), Halt> {
    let elections = store.coll::<Document>("elections");
    let found = elections
        .find_one(doc! { "_id": n.election.as_str() })
        .projection(doc! { "contests.id": 1, "contests.candidates.id": 1 })
        .session(&mut *session)
        .await?;
    let d = found.ok_or(NominationError::UnknownElection)?;
    let contest = d
        .get_array("contests")
        .map_err(bad)?
        .iter()
        .filter_map(Bson::as_document)
        .find(|c| c.get_str("id").ok() == Some(n.contest.as_str()))
        .ok_or(NominationError::UnknownContest)?;
    let candidate = n.candidate_id();
    let ids: Vec<&str> = contest
        .get_array("candidates")
        .map(|k| k.iter().filter_map(Bson::as_document).filter_map(|k| k.get_str("id").ok()).collect())
        .unwrap_or_default();
    let standing = ids.contains(&candidate.as_str());
    if ids.len() - usize::from(standing) >= MAX_CANDIDATES {
        return Err(refused("A contest has at most 200 candidates."));
    }
    let entry = docs::nominated_candidate(n);
    if standing {
        let mut set = Document::new();
        for field in ["name", "statement", "status", "photo"] {
            set.insert(
                format!("contests.$[c].candidates.$[k].{field}"),
                entry.get(field).cloned().unwrap_or(Bson::Null),
            );
        }
        elections
            .update_one(doc! { "_id": n.election.as_str() }, doc! { "$set": set })
            .array_filters(vec![doc! { "c.id": n.contest.as_str() }, doc! { "k.id": candidate.as_str() }])
            .session(&mut *session)
            .await?;
    } else {
        elections
            .update_one(
                doc! { "_id": n.election.as_str(), "contests.id": n.contest.as_str() },
                doc! { "$push": { "contests.$.candidates": entry } },
            )
            .session(&mut *session)
            .await?;
    }
    Ok(())
}

/// See `Nominations::submit_nomination`. The contest's counter is written after the
/// count is read (the snapshot is the transaction's first read, so a submission committed
/// since makes this write conflict), and only once the submission is allowed.
pub(super) async fn submit(
    store: &MongoStore,
    session: &mut ClientSession,
    new: &NewNomination,
    photo: Option<&NewPhoto>,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, Halt> {
    if let Some(done) = find(store, session, &new.id).await? {
        // A retried request: the same submission again.
        return Ok(rules::resubmitted(done, new)?);
    }
    let t = times(store, session, &new.election).await?;
    rules::in_period(t.period.as_ref(), &t.zone, now)?;
    if !t.contests.iter().any(|c| c == new.contest.as_str()) {
        return Err(NominationError::UnknownContest.into());
    }
    let live = store
        .coll::<Document>(NOMINATIONS)
        .count_documents(doc! { "election": new.election.as_str(), "contest": new.contest.as_str(), "live": true })
        .session(&mut *session)
        .await?;
    let made = store
        .coll::<Document>(NOMINATIONS)
        .count_documents(doc! { "election": new.election.as_str(), "nominee": new.nominee.as_str() })
        .session(&mut *session)
        .await?;
    rules::nominee_bound(u32::try_from(made).unwrap_or(u32::MAX))?;
    if live >= u64::from(MAX_NOMINATIONS_PER_CONTEST) {
        return Err(refused(format!("This contest has {MAX_NOMINATIONS_PER_CONTEST} nominations, the most it takes.")));
    }
    keep_photo(store, session, None, &new.content, photo, now).await?;
    store
        .coll::<Document>(CONTESTS)
        .update_one(
            doc! { "_id": { "e": new.election.as_str(), "c": new.contest.as_str() } },
            doc! { "$inc": { "submitted": 1_i64 } },
        )
        .upsert(true)
        .session(&mut *session)
        .await?;
    let d = docs::nomination(new, now.as_second());
    match store.coll::<Document>(NOMINATIONS).insert_one(&d).session(&mut *session).await {
        Err(e) if errors::is_duplicate_key(&e) => return Err(NominationError::AlreadyNominated.into()),
        other => other?,
    };
    add_version(store, session, &new.id, 1, &new.content, now).await?;
    append_audit_in(store, session, audit, now).await?;
    Ok(decode::nomination(&d)?)
}

/// See `Nominations::edit_nomination`: a new version, its seconds cleared, back to pending
/// and off the ballot until decided again (the nominee's earlier versions stay in
/// `nomination_versions`).
#[allow(clippy::too_many_arguments)]
pub(super) async fn edit(
    store: &MongoStore,
    session: &mut ClientSession,
    id: &NominationId,
    nominee: &Username,
    content: &NominationContent,
    photo: Option<&NewPhoto>,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, Halt> {
    let n = existing(store, session, id).await?;
    let plan = rules::edit(&n, nominee, content)?;
    let t = times(store, session, &n.election).await?;
    rules::in_period(t.period.as_ref(), &t.zone, now)?;
    if plan == EditPlan::Unchanged {
        return Ok(n);
    }
    keep_photo(store, session, Some(id), content, photo, now).await?;
    let version = n.version + 1;
    let mut set = docs::nomination_content(content);
    set.extend(doc! {
        "version": i64::from(version), "status": NominationStatus::Pending.as_str(), "live": true,
        "seconds": [], "reason": Bson::Null, "decided_version": Bson::Null, "updated_at": now.as_second(),
    });
    let stored = update(store, session, id_filter(id), doc! { "$set": set }).await?;
    let stored = stored.ok_or(NominationError::UnknownNomination)?;
    add_version(store, session, id, version, content, now).await?;
    off_the_ballot(store, session, &n).await?;
    append_audit_in(store, session, audit, now).await?;
    Ok(stored)
}

/// See `Nominations::withdraw_nomination`: withdrawn again (a retried request) is
/// answered as it stands, with no audit line.
pub(super) async fn withdraw(
    store: &MongoStore,
    session: &mut ClientSession,
    id: &NominationId,
    nominee: &Username,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, Halt> {
    let n = existing(store, session, id).await?;
    if &n.nominee == nominee && n.status == NominationStatus::Withdrawn {
        return Ok(n);
    }
    rules::nominee_change(&n, nominee)?;
    let t = times(store, session, &n.election).await?;
    rules::in_period(t.period.as_ref(), &t.zone, now)?;
    let set = doc! { "status": NominationStatus::Withdrawn.as_str(), "live": false, "updated_at": now.as_second() };
    let stored = update(store, session, id_filter(id), doc! { "$set": set }).await?;
    let stored = stored.ok_or(NominationError::UnknownNomination)?;
    off_the_ballot(store, session, &n).await?;
    append_audit_in(store, session, audit, now).await?;
    Ok(stored)
}

/// See `Nominations::second_nomination`. `given` is counted from the nominations
/// themselves (live ones only: a withdrawn nomination no longer counts against its
/// seconders); the seconder's counter is the write two of their seconds in this contest
/// share, so one racing another for the last allowed one conflicts and, run again,
/// counts the other.
#[allow(clippy::too_many_arguments)]
pub(super) async fn second(
    store: &MongoStore,
    session: &mut ClientSession,
    id: &NominationId,
    version: u32,
    seconder: &Username,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, Halt> {
    let n = existing(store, session, id).await?;
    let t = times(store, session, &n.election).await?;
    rules::in_period(t.period.as_ref(), &t.zone, now)?;
    let given = store
        .coll::<Document>(NOMINATIONS)
        .count_documents(doc! {
            "election": n.election.as_str(), "contest": n.contest.as_str(),
            "status": { "$in": ["pending", "approved"] }, "seconds.by": seconder.as_str(),
        })
        .session(&mut *session)
        .await?;
    let max = t.period.as_ref().map_or(0, |p| p.max_seconds);
    rules::second(&n, version, seconder, u32::try_from(given).unwrap_or(u32::MAX), max)?;
    store
        .coll::<Document>(SECONDERS)
        .update_one(
            doc! { "_id": { "e": n.election.as_str(), "c": n.contest.as_str(), "by": seconder.as_str() } },
            doc! { "$inc": { "given": 1_i64 }, "$set": { "at": now.as_second() } },
        )
        .upsert(true)
        .session(&mut *session)
        .await?;
    let stored = update(
        store,
        session,
        doc! { "_id": id.as_str(), "version": i64::from(version), "seconds.by": { "$ne": seconder.as_str() } },
        doc! { "$push": { "seconds": { "by": seconder.as_str(), "at": now.as_second() } } },
    )
    .await?;
    let stored = stored.ok_or(NominationError::AlreadySeconded)?;
    append_audit_in(store, session, audit, now).await?;
    Ok(stored)
}

/// See `Nominations::decide_nomination`: the plan `Unchanged` (the same decision on the
/// same version again) writes nothing, not even an audit line.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide(
    store: &MongoStore,
    session: &mut ClientSession,
    id: &NominationId,
    version: u32,
    decision: Decision,
    reason: &str,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, Halt> {
    let n = existing(store, session, id).await?;
    let t = times(store, session, &n.election).await?;
    rules::before_voting(t.voting_opens, &t.zone, now)?;
    let proposers = t.period.as_ref().map_or(0, |p| p.proposers);
    if rules::decide(&n, version, decision, proposers)? == DecisionPlan::Unchanged {
        return Ok(n);
    }
    let status = match decision {
        Decision::Approve => {
            on_the_ballot(store, session, &n).await?;
            NominationStatus::Approved
        }
        Decision::Reject => {
            off_the_ballot(store, session, &n).await?;
            NominationStatus::Rejected
        }
    };
    let mut set = doc! {
        "status": status.as_str(), "reason": reason, "decided_version": i64::from(version),
        "updated_at": now.as_second(),
    };
    if decision == Decision::Reject {
        // Set aside, as SQLite deletes them: they no longer count against the seconders,
        // so they must not count for this nomination again either.
        set.insert("seconds", Bson::Array(Vec::new()));
    }
    let stored = update(store, session, id_filter(id), doc! { "$set": set }).await?;
    let stored = stored.ok_or(NominationError::UnknownNomination)?;
    append_audit_in(store, session, audit, now).await?;
    Ok(stored)
}
