//! The MongoDB adapter: every Store operation with the SQLite adapter's semantics (the
//! conformance suite runs against both). Layout: this file (connection, indexes,
//! transactions, elections, roll, throttle, the ballot box), `otp`, `outbox`, `senders`,
//! `console`, the pure `docs` and `errors`, and `store_impl` (the port).
//!
//! - Every multi-document change runs in a transaction (so MongoDB must be a replica set,
//!   even a one-member one), with write concern majority + journal: an acknowledged vote
//!   is on disk on a majority of members. A transaction that hits a write conflict
//!   (`TransientTransactionError`) is run again, a bounded number of times.
//! - Every operation has a deadline (`op_timeout`); past it the caller gets "store
//!   unavailable" (503) instead of waiting on a hung server.
//! - The pool is sized for a burst: `min_pool_size` connections are kept open and
//!   `max_connecting` bounds how many are opened at once when the rush starts.
//!
//! Ballot and participation go in one transaction rather than one document: a single
//! document holding both would link the ballot to the voter, which is exactly what the
//! ballot box must never do (see `docs.rs` for what each collection holds).

mod console;
pub mod docs;
pub mod errors;
mod migrate;
mod otp;
mod outbox;
mod senders;
mod sign_outs;
mod store_impl;
mod throttle;

use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions, ReadConcern, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};

use super::*;
use errors::{Class, classify};

/// Runs of a transaction after write conflicts, at most (with a growing pause between).
const TXN_RETRIES: u32 = 20;

#[derive(Debug, Clone)]
pub struct MongoSettings {
    pub uri: String,
    /// Deadline for each store operation.
    pub op_timeout: Duration,
    pub min_pool_size: u32,
    pub max_pool_size: u32,
    /// Connections opened at once when the pool grows (a burst at opening).
    pub max_connecting: u32,
}

impl MongoSettings {
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            op_timeout: Duration::from_secs(5),
            min_pool_size: 8,
            max_pool_size: 64,
            max_connecting: 8,
        }
    }
}

/// `base` (a `mongodb://` URI) pointed at database `db`, its hosts and options kept:
/// the test suites give every test a database of its own on one server.
pub fn uri_with_database(base: &str, db: &str) -> Option<String> {
    let (main, query) = base.split_once('?').map_or((base, None), |(m, q)| (m, Some(q)));
    let hosts = main.strip_prefix("mongodb://")?.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("mongodb://{hosts}/{db}{}", query.map(|q| format!("?{q}")).unwrap_or_default()))
}

pub struct MongoStore {
    client: Client,
    db: Database,
    op_timeout: Duration,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("mongodb: {e}"))
}

impl MongoStore {
    /// Connects and creates the collections' indexes (idempotent: safe on every start,
    /// from every process).
    pub async fn open(settings: &MongoSettings) -> Result<Self, StoreError> {
        if settings.uri.starts_with("mongodb+srv://") {
            return Err(StoreError::Other(anyhow::anyhow!(
                "mongodb+srv:// URIs need DNS SRV lookups, which this build leaves out: use a mongodb:// URI listing the hosts"
            )));
        }
        let mut options = ClientOptions::parse(&settings.uri).await.map_err(|e| {
            StoreError::Other(anyhow::anyhow!("TURNOUT_MONGODB_URI is not a valid MongoDB URI: {}", e.kind))
        })?;
        options.app_name.get_or_insert_with(|| "turnout".into());
        options.min_pool_size = Some(settings.min_pool_size);
        options.max_pool_size = Some(settings.max_pool_size);
        options.max_connecting = Some(settings.max_connecting);
        options.connect_timeout.get_or_insert(settings.op_timeout);
        options.server_selection_timeout.get_or_insert(settings.op_timeout);
        options.write_concern = Some(durable());
        options.read_concern = Some(ReadConcern::majority());
        let db_name = options.default_database.clone().unwrap_or_else(|| "turnout".into());
        let client = Client::with_options(options).map_err(|e| StoreError::Other(anyhow::anyhow!("mongodb: {e}")))?;
        let store = Self { db: client.database(&db_name), client, op_timeout: settings.op_timeout };
        store.create_indexes().await?;
        store.migrate().await?;
        Ok(store)
    }

    /// The database this store uses (tests drop it).
    pub fn database(&self) -> &Database {
        &self.db
    }

    async fn create_indexes(&self) -> Result<(), StoreError> {
        let index = |keys: Document, unique: bool, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().unique(unique).name(name.to_owned()).build())
                .build()
        };
        // `_id` already makes participation (election, voter) and ballots (election,
        // receipt) unique, and keys the roll, codes, accounts and slots.
        let indexes = [
            ("voter_roll", doc! { "_id.u": 1 }, "by_uid"),
            // The worker's claim: due messages, and abandoned leases.
            ("outbox", doc! { "state": 1, "next_attempt_at": 1 }, "due"),
            ("outbox", doc! { "state": 1, "lease_until": 1 }, "leases"),
            // A voter's latest mail; the console's pages; the dashboard's counts.
            ("outbox", doc! { "e": 1, "v": 1, "created_at": -1 }, "by_voter"),
            ("outbox", doc! { "e": 1, "seq": -1 }, "by_election"),
            ("outbox", doc! { "e": 1, "state": 1, "created_at": 1 }, "by_state"),
            ("sender_slots", doc! { "holder": 1 }, "by_holder"),
            ("roll_imports", doc! { "state": 1, "created_at": 1 }, "running"),
            ("sign_outs", doc! { "at_ms": 1 }, "by_time"),
        ];
        for (collection, keys, name) in indexes {
            self.timed(self.coll::<Document>(collection).create_index(index(keys, false, name))).await?;
        }
        let ttl = IndexModel::builder()
            .keys(doc! { "expires_at": 1 })
            .options(IndexOptions::builder().expire_after(Duration::ZERO).name("expiry".to_owned()).build())
            .build();
        for collection in ["login_failures", "login_address_failures"] {
            self.timed(self.coll::<Document>(collection).create_index(ttl.clone())).await?;
        }
        Ok(())
    }

    fn coll<T: Send + Sync>(&self, name: &str) -> Collection<T> {
        self.db.collection(name)
    }

    /// Runs one driver call under the store's deadline, with errors classified.
    async fn timed<T>(
        &self,
        call: impl std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.op_timeout, call.into_future()).await {
            Ok(result) => result.map_err(|e| errors::store_error(&e)),
            Err(_) => Err(unavailable(format!("no answer within {:?}", self.op_timeout))),
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.timed(self.db.run_command(doc! { "ping": 1 })).await.map(|_| ())
    }

    // Elections.

    pub async fn create_election(&self, election: &NewElection, now: Timestamp) -> Result<(), StoreError> {
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

    pub async fn create_election_audited(
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
                    console::append_audit_in(store, session, &entry, now).await?;
                    Ok(Ok(()))
                })
            })
            .await?;
        created.map_err(|()| StoreError::Conflict(format!("election {} already exists", election.id)))
    }

    pub async fn election(&self, id: &ElectionId) -> Result<Option<Election>, StoreError> {
        let found = self.timed(self.coll::<Document>("elections").find_one(doc! { "_id": id.as_str() })).await?;
        found.map(|d| decode::election(&d)).transpose()
    }

    pub async fn list_elections(
        &self,
        after: Option<&ElectionId>,
        limit: u32,
    ) -> Result<Vec<ElectionSummary>, StoreError> {
        use futures_util::TryStreamExt;
        let cursor = self
            .timed(
                self.coll::<Document>("elections")
                    .find(docs::elections_after(after))
                    .sort(doc! { "_id": 1 })
                    .limit(i64::from(limit.clamp(1, 100)))
                    .projection(doc! { "contests": 0 }),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found.iter().map(decode::summary).collect()
    }

    // The voter roll.

    pub async fn import_roll(&self, election: &ElectionId, entries: &[RollEntry]) -> Result<RollImport, StoreError> {
        let entries = entries.to_vec();
        let election = election.clone();
        self.in_transaction(|store, session| {
            let (entries, election) = (entries.clone(), election.clone());
            Box::pin(async move { Ok(Ok(console::upsert_roll_in(store, session, &election, &entries).await?)) })
        })
        .await?
    }

    pub async fn roll_memberships(
        &self,
        uid: &Username,
        elections: &[ElectionId],
    ) -> Result<Vec<(ElectionId, Option<VoterEmail>)>, StoreError> {
        use futures_util::TryStreamExt;
        let cursor = self.timed(self.coll::<Document>("voter_roll").find(docs::roll_of(uid, elections))).await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let mut out = Vec::new();
        for d in found {
            let e = d.get_document("_id").and_then(|id| id.get_str("e")).map_err(decode::bad)?;
            if let Some(id) = elections.iter().find(|w| w.as_str() == e) {
                out.push((id.clone(), d.get_str("email").ok().and_then(|m| VoterEmail::parse(m).ok())));
            }
        }
        Ok(out)
    }

    // The ballot box.

    /// The window as stored now, the one-ballot rule and the ballot, in one transaction.
    pub async fn cast_ballot(&self, cast: CastBallot) -> Result<Receipt, CastError> {
        // A voter who already voted (a double click, a retry after a lost answer) is
        // answered from one read, without a transaction that could only conflict. The
        // transaction below stays the rule: this is only the early answer.
        let voted = self
            .timed(self.coll::<Document>("participation").find_one(docs::participation(&cast.election, &cast.voter)))
            .await?;
        if voted.is_some() {
            return Err(CastError::AlreadyVoted);
        }
        let outcome = self
            .in_transaction(|store, session| {
                let cast = cast.clone();
                Box::pin(async move {
                    let found = store
                        .coll::<Document>("elections")
                        .find_one(doc! { "_id": cast.election.as_str() })
                        .projection(doc! { "opens_at": 1, "closes_at": 1, "grace_secs": 1, "time_zone": 1 })
                        .session(&mut *session)
                        .await?;
                    let Some(found) = found else { return Ok(Err(CastError::UnknownElection)) };
                    let schedule = match decode::schedule(&found) {
                        Ok(s) => s,
                        Err(e) => return Ok(Err(CastError::Store(e))),
                    };
                    if let Err(refusal) = schedule.check_ballot(cast.now, cast.verified_at) {
                        return Ok(Err(CastError::OutsideWindow(refusal)));
                    }
                    let joined = store
                        .coll::<Document>("participation")
                        .insert_one(docs::participation(&cast.election, &cast.voter))
                        .session(&mut *session)
                        .await;
                    match joined {
                        Err(e) if errors::is_duplicate_key(&e) => return Ok(Err(CastError::AlreadyVoted)),
                        other => other?,
                    };
                    let receipt = Receipt::generate();
                    store
                        .coll::<Document>("ballots")
                        .insert_one(docs::ballot(&cast.election, &receipt, &cast.choices))
                        .session(&mut *session)
                        .await?;
                    Ok(Ok(receipt))
                })
            })
            .await;
        let receipt = outcome.map_err(CastError::Store)??;
        // Counted once the ballot is durable (see `console.rs` on activity counts).
        self.bump_activity(cast.election.as_str(), Activity::Ballot, 1, cast.now.as_second().div_euclid(60)).await?;
        Ok(receipt)
    }

    pub async fn receipt_in_box(&self, election: &ElectionId, receipt: &Receipt) -> Result<bool, StoreError> {
        let found = self.timed(self.coll::<Document>("ballots").find_one(docs::ballot_id(election, receipt))).await?;
        Ok(found.is_some())
    }

    /// Participation and ballots counted from one snapshot (a transaction with snapshot
    /// reads), so the two always agree.
    pub async fn turnout(&self, election: &ElectionId) -> Result<Turnout, StoreError> {
        let election = election.clone();
        self.in_transaction(|store, session| {
            let election = election.clone();
            Box::pin(async move {
                let (participation, ballots) = counts_in(store, session, &election).await?;
                Ok(Ok(Turnout { participation, ballots }))
            })
        })
        .await?
    }

    /// Runs `body` in a transaction (snapshot reads, majority + journal writes) and
    /// commits it. `body` answers `Ok(Ok(v))` to commit, `Ok(Err(refusal))` to abort
    /// with a domain refusal, `Err(db error)` to abort; a write conflict runs it again.
    async fn in_transaction<T, E, F>(&self, body: F) -> Result<Result<T, E>, StoreError>
    where
        T: Send,
        E: Send,
        F: Send
            + Sync
            + for<'s> Fn(
                &'s Self,
                &'s mut ClientSession,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = mongodb::error::Result<Result<T, E>>> + Send + 's>,
            >,
    {
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        let mut session = self.timed(self.client.start_session()).await?;
        let mut tries = 0;
        loop {
            tries += 1;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = tokio::time::timeout(left, async {
                session.start_transaction().read_concern(ReadConcern::snapshot()).write_concern(durable()).await?;
                match body(self, &mut session).await {
                    Ok(Ok(v)) => commit(&mut session).await.map(|()| Ok(v)),
                    Ok(Err(refusal)) => {
                        let _ = session.abort_transaction().await;
                        Ok(Err(refusal))
                    }
                    Err(e) => {
                        let _ = session.abort_transaction().await;
                        Err(e)
                    }
                }
            })
            .await;
            match attempt {
                Err(_) => {
                    let _ = session.abort_transaction().await;
                    return Err(unavailable(format!("transaction not done within {:?}", self.op_timeout)));
                }
                Ok(Ok(outcome)) => return Ok(outcome),
                Ok(Err(e)) => match classify(&errors::Facts::of(&e)) {
                    Class::Retry if tries < TXN_RETRIES => {
                        // Conflicting transactions back off a little, apart, before the rerun.
                        let mut jitter = [0u8; 1];
                        let _ = getrandom::fill(&mut jitter);
                        let pause = (1u64 << tries.min(6)) + u64::from(jitter[0] % 16);
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    _ => return Err(errors::store_error(&e)),
                },
            }
        }
    }
}

/// Participation and ballots of one election, inside the caller's transaction (one
/// snapshot, so the two can be compared).
pub(super) async fn counts_in(
    store: &MongoStore,
    session: &mut ClientSession,
    election: &ElectionId,
) -> mongodb::error::Result<(u64, u64)> {
    let participation = store
        .coll::<Document>("participation")
        .count_documents(docs::of_election(election))
        .session(&mut *session)
        .await?;
    let ballots =
        store.coll::<Document>("ballots").count_documents(docs::of_election(election)).session(&mut *session).await?;
    Ok((participation, ballots))
}

/// Majority of the replica set, in the journal: an acknowledged vote survives a crash of
/// the primary and of the machine.
fn durable() -> WriteConcern {
    WriteConcern::builder()
        .w(mongodb::options::Acknowledgment::Majority)
        .journal(true)
        .w_timeout(Duration::from_secs(5))
        .build()
}

/// Commits, retrying the commit itself when its result is unknown (the driver's advice).
async fn commit(session: &mut ClientSession) -> mongodb::error::Result<()> {
    let mut tries = 0;
    loop {
        match session.commit_transaction().await {
            Err(e) if e.contains_label(mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT) && tries < 3 => tries += 1,
            other => return other,
        }
    }
}

/// Documents back into domain values; a field that does not decode is reported as an
/// error (the data was edited by hand), never a panic.
pub(super) mod decode {
    use super::*;

    pub fn bad(e: impl std::fmt::Display) -> StoreError {
        StoreError::Other(anyhow::anyhow!("mongodb: a stored document does not decode: {e}"))
    }

    /// Integers may come back as Int32 or Int64 (or a double written by another tool).
    pub fn int(d: &Document, key: &str) -> Result<i64, StoreError> {
        match d.get(key) {
            Some(Bson::Int32(n)) => Ok(i64::from(*n)),
            Some(Bson::Int64(n)) => Ok(*n),
            Some(Bson::Double(f)) if f.fract() == 0.0 => Ok(*f as i64),
            other => Err(bad(format!("{key} is {other:?}"))),
        }
    }

    pub(crate) use crate::store::shared::{ts, ts_ms};

    pub fn schedule(d: &Document) -> Result<Schedule, StoreError> {
        Ok(Schedule {
            opens_at: ts(int(d, "opens_at")?),
            closes_at: ts(int(d, "closes_at")?),
            grace: Duration::from_secs(int(d, "grace_secs")?.max(0) as u64),
            time_zone: d.get_str("time_zone").map_err(bad)?.to_owned(),
        })
    }

    fn eligibility(d: &Document) -> Result<Eligibility, StoreError> {
        match d.get("eligibility") {
            Some(b) => mongodb::bson::from_bson(b.clone()).map_err(bad),
            None => Ok(Eligibility::Everyone),
        }
    }

    pub fn summary(d: &Document) -> Result<ElectionSummary, StoreError> {
        let s = schedule(d)?;
        Ok(ElectionSummary {
            id: ElectionId::parse(d.get_str("_id").map_err(bad)?).map_err(bad)?,
            title: d.get_str("title").map_err(bad)?.to_owned(),
            opens_at: s.opens_at,
            closes_at: s.closes_at,
            time_zone: s.time_zone,
            grace_secs: s.grace.as_secs(),
            eligibility: eligibility(d)?,
        })
    }

    pub fn candidate(k: &Document) -> Result<Candidate, StoreError> {
        Ok(Candidate {
            id: CandidateId::parse(k.get_str("id").map_err(bad)?).map_err(bad)?,
            name: k.get_str("name").map_err(bad)?.to_owned(),
            statement: k.get_str("statement").map_err(bad)?.to_owned(),
            status: CandidateStatus::parse(k.get_str("status").map_err(bad)?).unwrap_or(CandidateStatus::Pending),
        })
    }

    pub fn election(d: &Document) -> Result<Election, StoreError> {
        let mut contests = Vec::new();
        for c in d.get_array("contests").map_err(bad)? {
            let c = c.as_document().ok_or_else(|| bad("a contest is not a document"))?;
            let mut candidates = Vec::new();
            for k in c.get_array("candidates").map_err(bad)? {
                let k = k.as_document().ok_or_else(|| bad("a candidate is not a document"))?;
                candidates.push(candidate(k)?);
            }
            contests.push(Contest {
                id: ContestId::parse(c.get_str("id").map_err(bad)?).map_err(bad)?,
                title: c.get_str("title").map_err(bad)?.to_owned(),
                candidates,
            });
        }
        let validity = int(d, "otp_validity_secs")?;
        Ok(Election {
            id: ElectionId::parse(d.get_str("_id").map_err(bad)?).map_err(bad)?,
            title: d.get_str("title").map_err(bad)?.to_owned(),
            schedule: schedule(d)?,
            contests,
            otp_extra: Duration::from_secs(int(d, "otp_extra_secs")?.max(0) as u64),
            eligibility: eligibility(d)?,
            quorum_pct: d.get_f64("quorum_pct").map_err(bad)?,
            otp_validity: (validity > 0).then(|| Duration::from_secs(validity as u64)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::uri_with_database;

    #[test]
    fn a_test_database_keeps_the_hosts_and_options() {
        assert_eq!(
            uri_with_database("mongodb://127.0.0.1:4242/", "t1").as_deref(),
            Some("mongodb://127.0.0.1:4242/t1")
        );
        assert_eq!(
            uri_with_database("mongodb://a:1,b:2/turnout?replicaSet=rs0", "t2").as_deref(),
            Some("mongodb://a:1,b:2/t2?replicaSet=rs0")
        );
        assert_eq!(uri_with_database("postgres://x/", "t"), None);
        assert_eq!(uri_with_database("mongodb:///", "t"), None);
    }
}
