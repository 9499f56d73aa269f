//! Nominations on SQLite: each step takes the write lock up front (`BEGIN IMMEDIATE`),
//! reads the nomination and its election inside it, applies the port's rule
//! (`turnout_store::nominations::rules`) and commits with its audit line, so two seconds
//! racing for a student's last allowed one, or an edit racing a decision, are decided
//! in one order.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;

use turnout_domain::{ContestId, ElectionId, Username, VoterEmail};
use turnout_store::nominations::rules::{self, DecisionPlan, EditPlan};
use turnout_store::rules::ts;
use turnout_store::{
    AuditEntry, Decision, MAX_NOMINATIONS_PER_CONTEST, MAX_PAGE, NewNomination, NewPhoto, Nomination,
    NominationContent, NominationError, NominationId, NominationPeriod, NominationStatus, NominationVersion,
    Nominations, PhotoHash, PhotoShown, Second, StoreError, StoreKeys, StoredPhoto, check_photo, check_reason,
};

use crate::SqliteStore;
use crate::audit::append_audit_in;
use crate::error::{SqlResult, is_unique_violation, parsed};

/// What a step needs to know of the election, read inside its transaction.
struct Times {
    period: Option<NominationPeriod>,
    voting_opens: Timestamp,
    zone: String,
}

fn times(tx: &rusqlite::Transaction<'_>, election: &ElectionId) -> Result<Times, NominationError> {
    let row: Option<(Option<String>, i64, String)> = tx
        .query_row("SELECT nominations, opens_at, time_zone FROM elections WHERE id = ?1", [election.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .sql()?;
    let (period, opens, zone) = row.ok_or(NominationError::UnknownElection)?;
    let period = period
        .map(|raw| serde_json::from_str::<NominationPeriod>(&raw))
        .transpose()
        .map_err(|e| StoreError::Other(e.into()))?;
    Ok(Times { period, voting_opens: ts(opens), zone })
}

const COLUMNS: &str = "id, election_id, contest_id, nominee, email, version, name, manifesto, photo, status, reason,
                       decided_version, submitted_at, updated_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Nomination> {
    let status: String = r.get(9)?;
    Ok(Nomination {
        id: parsed(0, r.get(0)?, NominationId::parse)?,
        election: parsed(1, r.get(1)?, ElectionId::parse)?,
        contest: parsed(2, r.get(2)?, ContestId::parse)?,
        nominee: parsed(3, r.get(3)?, Username::parse)?,
        email: parsed(4, r.get(4)?, VoterEmail::parse)?,
        version: r.get(5)?,
        content: NominationContent {
            name: r.get(6)?,
            manifesto: r.get(7)?,
            photo: r.get::<_, Option<String>>(8)?.map(|h| parsed(8, h, PhotoHash::parse)).transpose()?,
        },
        // An unknown status is a damaged row, as MongoDB's adapter has it: never read as
        // pending (which would let it be seconded and decided).
        status: NominationStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                9,
                rusqlite::types::Type::Text,
                format!("status {status:?}").into(),
            )
        })?,
        reason: r.get(10)?,
        decided_version: r.get(11)?,
        seconds: Vec::new(),
        submitted_at: ts(r.get(12)?),
        updated_at: ts(r.get(13)?),
    })
}

fn with_seconds(conn: &Connection, mut n: Nomination) -> Result<Nomination, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT seconder, at FROM nomination_seconds WHERE nomination_id = ?1 ORDER BY at, seconder")
        .sql()?;
    n.seconds = stmt
        .query_map([n.id.as_str()], |r| Ok(Second { by: parsed(0, r.get(0)?, Username::parse)?, at: ts(r.get(1)?) }))
        .sql()?
        .collect::<Result<_, _>>()
        .sql()?;
    Ok(n)
}

fn load(conn: &Connection, id: &NominationId) -> Result<Option<Nomination>, StoreError> {
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM nominations WHERE id = ?1"))
        .sql()?
        .query_row([id.as_str()], from_row)
        .optional()
        .sql()?;
    found.map(|n| with_seconds(conn, n)).transpose()
}

fn existing(tx: &rusqlite::Transaction<'_>, id: &NominationId) -> Result<Nomination, NominationError> {
    load(tx, id)?.ok_or(NominationError::UnknownNomination)
}

/// Stores a new photo (once per hash) and checks the content names the photo given with
/// it, or, for an edit (`own`), one this nomination has had.
fn keep_photo(
    tx: &rusqlite::Transaction<'_>,
    own: Option<&NominationId>,
    content: &NominationContent,
    photo: Option<&NewPhoto>,
    now: Timestamp,
) -> Result<(), NominationError> {
    content.validate()?;
    if let Some(photo) = photo {
        check_photo(photo)?;
        let hash = photo.hash();
        if content.photo.as_ref() != Some(&hash) {
            return Err(
                turnout_store::InvalidField::new("photo", "the content must name the photo stored with it").into()
            );
        }
        tx.execute(
            "INSERT OR IGNORE INTO photos (hash, bytes, stored_at) VALUES (?1, ?2, ?3)",
            params![hash.as_str(), photo.bytes, now.as_second()],
        )
        .sql()?;
    } else if let Some(hash) = &content.photo {
        let had = match own {
            None => false,
            Some(id) => tx
                .query_row(
                    "SELECT 1 FROM nomination_versions WHERE nomination_id = ?1 AND photo = ?2 LIMIT 1",
                    [id.as_str(), hash.as_str()],
                    |_| Ok(()),
                )
                .optional()
                .sql()?
                .is_some(),
        };
        rules::own_photo(had)?;
    }
    Ok(())
}

fn add_version(
    tx: &rusqlite::Transaction<'_>,
    id: &NominationId,
    version: u32,
    content: &NominationContent,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO nomination_versions (nomination_id, version, name, manifesto, photo, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id.as_str(),
            version,
            content.name,
            content.manifesto,
            content.photo.as_ref().map(PhotoHash::as_str),
            now.as_second()
        ],
    )
    .sql()?;
    Ok(())
}

/// Takes an approved nominee off the ballot (an edit, a withdrawal, a rejection).
fn off_the_ballot(tx: &rusqlite::Transaction<'_>, n: &Nomination) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM candidates WHERE election_id = ?1 AND contest_id = ?2 AND id = ?3",
        params![n.election.as_str(), n.contest.as_str(), n.candidate_id().as_str()],
    )
    .sql()?;
    Ok(())
}

fn submit(
    conn: &mut Connection,
    keys: &StoreKeys,
    new: &NewNomination,
    photo: Option<&NewPhoto>,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, NominationError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    if let Some(done) = load(&tx, &new.id)? {
        // A retried request: the same submission again.
        return rules::resubmitted(done, new);
    }
    let t = times(&tx, &new.election)?;
    rules::in_period(t.period.as_ref(), &t.zone, now)?;
    let contest = tx
        .query_row(
            "SELECT 1 FROM contests WHERE election_id = ?1 AND id = ?2",
            params![new.election.as_str(), new.contest.as_str()],
            |_| Ok(()),
        )
        .optional()
        .sql()?;
    if contest.is_none() {
        return Err(NominationError::UnknownContest);
    }
    let live: u32 = tx
        .query_row(
            "SELECT COUNT(*) FROM nominations WHERE election_id = ?1 AND contest_id = ?2 AND status != 'withdrawn'",
            params![new.election.as_str(), new.contest.as_str()],
            |r| r.get(0),
        )
        .sql()?;
    let made: u32 = tx
        .query_row(
            "SELECT COUNT(*) FROM nominations WHERE election_id = ?1 AND nominee = ?2",
            params![new.election.as_str(), new.nominee.as_str()],
            |r| r.get(0),
        )
        .sql()?;
    rules::nominee_bound(made)?;
    if live >= MAX_NOMINATIONS_PER_CONTEST {
        return Err(NominationError::Refused(format!(
            "This contest has {MAX_NOMINATIONS_PER_CONTEST} nominations, the most it takes."
        )));
    }
    keep_photo(&tx, None, &new.content, photo, now)?;
    let inserted = tx.execute(
        "INSERT INTO nominations (id, election_id, contest_id, nominee, email, version, name, manifesto, photo,
                                  status, submitted_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, 'pending', ?9, ?9)",
        params![
            new.id.as_str(),
            new.election.as_str(),
            new.contest.as_str(),
            new.nominee.as_str(),
            new.email.as_str(),
            new.content.name,
            new.content.manifesto,
            new.content.photo.as_ref().map(PhotoHash::as_str),
            now.as_second()
        ],
    );
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(NominationError::AlreadyNominated),
        other => other.sql()?,
    };
    add_version(&tx, &new.id, 1, &new.content, now)?;
    append_audit_in(&tx, keys, audit, now)?;
    let stored = existing(&tx, &new.id)?;
    tx.commit().sql()?;
    Ok(stored)
}

#[allow(clippy::too_many_arguments)]
fn edit(
    conn: &mut Connection,
    keys: &StoreKeys,
    id: &NominationId,
    nominee: &Username,
    content: &NominationContent,
    photo: Option<&NewPhoto>,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, NominationError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let n = existing(&tx, id)?;
    let plan = rules::edit(&n, nominee, content)?;
    let t = times(&tx, &n.election)?;
    rules::in_period(t.period.as_ref(), &t.zone, now)?;
    if plan == EditPlan::Unchanged {
        return Ok(n);
    }
    keep_photo(&tx, Some(id), content, photo, now)?;
    let version = n.version + 1;
    tx.execute(
        "UPDATE nominations SET version = ?2, name = ?3, manifesto = ?4, photo = ?5, status = 'pending',
                reason = NULL, decided_version = NULL, updated_at = ?6
         WHERE id = ?1",
        params![
            id.as_str(),
            version,
            content.name,
            content.manifesto,
            content.photo.as_ref().map(PhotoHash::as_str),
            now.as_second()
        ],
    )
    .sql()?;
    add_version(&tx, id, version, content, now)?;
    tx.execute("DELETE FROM nomination_seconds WHERE nomination_id = ?1", params![id.as_str()]).sql()?;
    off_the_ballot(&tx, &n)?;
    append_audit_in(&tx, keys, audit, now)?;
    let stored = existing(&tx, id)?;
    tx.commit().sql()?;
    Ok(stored)
}

fn withdraw(
    conn: &mut Connection,
    keys: &StoreKeys,
    id: &NominationId,
    nominee: &Username,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, NominationError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let n = existing(&tx, id)?;
    if &n.nominee == nominee && n.status == NominationStatus::Withdrawn {
        return Ok(n);
    }
    rules::nominee_change(&n, nominee)?;
    let t = times(&tx, &n.election)?;
    rules::in_period(t.period.as_ref(), &t.zone, now)?;
    tx.execute(
        "UPDATE nominations SET status = 'withdrawn', updated_at = ?2 WHERE id = ?1",
        params![id.as_str(), now.as_second()],
    )
    .sql()?;
    off_the_ballot(&tx, &n)?;
    append_audit_in(&tx, keys, audit, now)?;
    let stored = existing(&tx, id)?;
    tx.commit().sql()?;
    Ok(stored)
}

#[allow(clippy::too_many_arguments)]
fn second(
    conn: &mut Connection,
    keys: &StoreKeys,
    id: &NominationId,
    version: u32,
    seconder: &Username,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, NominationError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let n = existing(&tx, id)?;
    let t = times(&tx, &n.election)?;
    rules::in_period(t.period.as_ref(), &t.zone, now)?;
    let given: u32 = tx
        .query_row(
            "SELECT COUNT(*) FROM nomination_seconds s JOIN nominations n ON n.id = s.nomination_id
             WHERE s.election_id = ?1 AND s.contest_id = ?2 AND s.seconder = ?3
               AND n.status IN ('pending', 'approved')",
            params![n.election.as_str(), n.contest.as_str(), seconder.as_str()],
            |r| r.get(0),
        )
        .sql()?;
    rules::second(&n, version, seconder, given, t.period.as_ref().map_or(0, |p| p.max_seconds))?;
    let inserted = tx.execute(
        "INSERT INTO nomination_seconds (nomination_id, seconder, election_id, contest_id, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id.as_str(), seconder.as_str(), n.election.as_str(), n.contest.as_str(), now.as_second()],
    );
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(NominationError::AlreadySeconded),
        other => other.sql()?,
    };
    append_audit_in(&tx, keys, audit, now)?;
    let stored = existing(&tx, id)?;
    tx.commit().sql()?;
    Ok(stored)
}

#[allow(clippy::too_many_arguments)]
fn decide(
    conn: &mut Connection,
    keys: &StoreKeys,
    id: &NominationId,
    version: u32,
    decision: Decision,
    reason: &str,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<Nomination, NominationError> {
    check_reason(decision, reason)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let n = existing(&tx, id)?;
    let t = times(&tx, &n.election)?;
    rules::before_voting(t.voting_opens, &t.zone, now)?;
    let proposers = t.period.as_ref().map_or(0, |p| p.proposers);
    if rules::decide(&n, version, decision, proposers)? == DecisionPlan::Unchanged {
        return Ok(n);
    }
    match decision {
        Decision::Approve => {
            let (count, max_position): (u32, i64) = tx
                .query_row(
                    "SELECT COUNT(*), COALESCE(MAX(position), -1) FROM candidates
                     WHERE election_id = ?1 AND contest_id = ?2 AND id != ?3",
                    params![n.election.as_str(), n.contest.as_str(), n.candidate_id().as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .sql()?;
            if count >= 200 {
                return Err(NominationError::Refused("A contest has at most 200 candidates.".into()));
            }
            tx.execute(
                "INSERT INTO candidates (election_id, contest_id, id, name, statement, status, position, photo)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'approved', ?6, ?7)
                 ON CONFLICT (election_id, contest_id, id) DO UPDATE SET name = excluded.name,
                     statement = excluded.statement, status = 'approved', photo = excluded.photo",
                params![
                    n.election.as_str(),
                    n.contest.as_str(),
                    n.candidate_id().as_str(),
                    n.content.name,
                    n.content.manifesto,
                    max_position + 1,
                    n.content.photo.as_ref().map(PhotoHash::as_str)
                ],
            )
            .sql()?;
        }
        Decision::Reject => {
            off_the_ballot(&tx, &n)?;
            tx.execute("DELETE FROM nomination_seconds WHERE nomination_id = ?1", [id.as_str()]).sql()?;
        }
    }
    let status = match decision {
        Decision::Approve => NominationStatus::Approved,
        Decision::Reject => NominationStatus::Rejected,
    };
    tx.execute(
        "UPDATE nominations SET status = ?2, reason = ?3, decided_version = ?4, updated_at = ?5 WHERE id = ?1",
        params![id.as_str(), status.as_str(), reason, version, now.as_second()],
    )
    .sql()?;
    append_audit_in(&tx, keys, audit, now)?;
    let stored = existing(&tx, id)?;
    tx.commit().sql()?;
    Ok(stored)
}

#[async_trait]
impl Nominations for SqliteStore {
    async fn submit_nomination(
        &self,
        nomination: &NewNomination,
        photo: Option<&NewPhoto>,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError> {
        let (n, p, a, keys) = (nomination.clone(), photo.cloned(), audit.clone(), self.keys.clone());
        self.run(move |conn| submit(conn, &keys, &n, p.as_ref(), &a, now)).await
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
        let (id, who, c, p, a, keys) =
            (id.clone(), nominee.clone(), content.clone(), photo.cloned(), audit.clone(), self.keys.clone());
        self.run(move |conn| edit(conn, &keys, &id, &who, &c, p.as_ref(), &a, now)).await
    }

    async fn withdraw_nomination(
        &self,
        id: &NominationId,
        nominee: &Username,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError> {
        let (id, who, a, keys) = (id.clone(), nominee.clone(), audit.clone(), self.keys.clone());
        self.run(move |conn| withdraw(conn, &keys, &id, &who, &a, now)).await
    }

    async fn second_nomination(
        &self,
        id: &NominationId,
        version: u32,
        seconder: &Username,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError> {
        let (id, who, a, keys) = (id.clone(), seconder.clone(), audit.clone(), self.keys.clone());
        self.run(move |conn| second(conn, &keys, &id, version, &who, &a, now)).await
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
        let (id, r, a, keys) = (id.clone(), reason.to_owned(), audit.clone(), self.keys.clone());
        self.run(move |conn| decide(conn, &keys, &id, version, decision, &r, &a, now)).await
    }

    async fn nomination(&self, id: &NominationId) -> Result<Option<Nomination>, StoreError> {
        let id = id.clone();
        self.read_here(move |conn| {
            let tx = conn.unchecked_transaction().sql()?;
            load(&tx, &id)
        })
    }

    async fn nomination_versions(&self, id: &NominationId) -> Result<Vec<NominationVersion>, StoreError> {
        let id = id.clone();
        self.read_here(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT version, name, manifesto, photo, at FROM nomination_versions
                     WHERE nomination_id = ?1 ORDER BY version LIMIT ?2",
                )
                .sql()?;
            stmt.query_map(params![id.as_str(), turnout_store::MAX_VERSIONS], |r| {
                Ok(NominationVersion {
                    version: r.get(0)?,
                    content: NominationContent {
                        name: r.get(1)?,
                        manifesto: r.get(2)?,
                        photo: r.get::<_, Option<String>>(3)?.map(|h| parsed(3, h, PhotoHash::parse)).transpose()?,
                    },
                    at: ts(r.get(4)?),
                })
            })
            .sql()?
            .collect::<Result<_, _>>()
            .sql()
        })
    }

    async fn nominations_of(&self, election: &ElectionId, nominee: &Username) -> Result<Vec<Nomination>, StoreError> {
        let (election, nominee) = (election.clone(), nominee.clone());
        self.read_here(move |conn| {
            let tx = conn.unchecked_transaction().sql()?;
            let found: Vec<Nomination> = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM nominations WHERE election_id = ?1 AND nominee = ?2
                     ORDER BY contest_id, submitted_at LIMIT ?3"
                ))
                .sql()?
                .query_map(params![election.as_str(), nominee.as_str(), MAX_PAGE], from_row)
                .sql()?
                .collect::<Result<_, _>>()
                .sql()?;
            found.into_iter().map(|n| with_seconds(&tx, n)).collect()
        })
    }

    async fn list_nominations(
        &self,
        election: &ElectionId,
        status: Option<NominationStatus>,
        after: Option<(&ContestId, &NominationId)>,
        limit: u32,
    ) -> Result<Vec<Nomination>, StoreError> {
        let election = election.clone();
        let (after_contest, after_id) =
            after.map_or((String::new(), String::new()), |(c, n)| (c.as_str().to_owned(), n.as_str().to_owned()));
        let limit = limit.clamp(1, MAX_PAGE);
        self.run(move |conn| {
            let tx = conn.unchecked_transaction().sql()?;
            let found: Vec<Nomination> = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM nominations
                     WHERE election_id = ?1 AND (?2 IS NULL OR status = ?2)
                       AND (contest_id > ?3 OR (contest_id = ?3 AND id > ?4))
                     ORDER BY contest_id, id LIMIT ?5"
                ))
                .sql()?
                .query_map(
                    params![election.as_str(), status.map(NominationStatus::as_str), after_contest, after_id, limit],
                    from_row,
                )
                .sql()?
                .collect::<Result<_, _>>()
                .sql()?;
            found.into_iter().map(|n| with_seconds(&tx, n)).collect()
        })
        .await
    }

    async fn photo(
        &self,
        hash: &PhotoHash,
        viewer: Option<&Username>,
        now: Timestamp,
    ) -> Result<Option<StoredPhoto>, StoreError> {
        let (hash, viewer) = (hash.clone(), viewer.cloned());
        self.read_here(move |conn| {
            let found: Option<(Vec<u8>, bool, bool)> = conn
                .prepare_cached(
                    "SELECT bytes,
                            EXISTS (SELECT 1 FROM candidates c JOIN elections e ON e.id = c.election_id
                                    WHERE c.photo = ?1 AND c.status = 'approved' AND e.opens_at <= ?2),
                            EXISTS (SELECT 1 FROM candidates WHERE photo = ?1 AND status = 'approved')
                            OR EXISTS (SELECT 1 FROM nominations WHERE photo = ?1 AND status IN ('pending', 'approved'))
                     FROM photos WHERE hash = ?1",
                )
                .sql()?
                .query_row(params![hash.as_str(), now.as_second()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .sql()?;
            let Some((bytes, locked, public)) = found else { return Ok(None) };
            let shown = PhotoShown::of(locked, public);
            let viewers_own = match (&viewer, shown) {
                (Some(who), PhotoShown::Private) => conn
                    .prepare_cached(
                        "SELECT 1 FROM nomination_versions v JOIN nominations n ON n.id = v.nomination_id
                         WHERE v.photo = ?1 AND n.nominee = ?2 LIMIT 1",
                    )
                    .sql()?
                    .query_row([hash.as_str(), who.as_str()], |_| Ok(()))
                    .optional()
                    .sql()?
                    .is_some(),
                _ => false,
            };
            Ok(Some(StoredPhoto { bytes, shown, viewers_own }))
        })
    }
}
