//! The MongoDB adapter: every Store operation with the SQLite adapter's semantics (the
//! conformance suite runs against both). Each aggregate's module implements its role
//! trait of the port on `MongoStore`.
//!
//! Layout:
//! - this file: settings, connection, indexes, the transaction helper;
//! - `elections`: definitions and the console's changes (`Elections`);
//! - `roll`: the voter roll (`Roll`);
//! - `sign_in`: the sign-in throttle and sign-outs (`SignIn`);
//! - `ballot_box`: casting, receipts, turnout, the tally (`BallotBox`);
//! - `codes`: one-time code state (`Codes`);
//! - `outbox`: the mail outbox (`Outbox`);
//! - `senders`: the sender-account pool (`Senders`);
//! - `audit`: the hash-chained audit log (`Audit`);
//! - `imports`: resumable roll imports (`Imports`);
//! - `activity`: the dashboard's counts, service status, ping (`ActivityLog`);
//! - `notices`: mail to staff that is not a code (`Notices`);
//! - `staff`: the addresses staff last signed in with (`StaffContacts`);
//! - `nominations`: students' nominations, their versions, seconds and photos
//!   (`Nominations`; each step's transaction in `nominations/steps.rs`);
//! - `docs`: the documents, filters and updates it sends (pure);
//! - `decode`: stored documents back into the port's values (pure);
//! - `errors`: what a driver error means (pure);
//! - `migrate`: one-time data migrations, run as a store opens.
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

mod activity;
mod audit;
mod ballot_box;
mod codes;
mod decode;
pub mod docs;
mod elections;
pub mod errors;
mod imports;
mod migrate;
mod nominations;
mod notices;
mod outbox;
mod roll;
mod senders;
mod sign_in;
mod staff;

use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::options::ClusteredIndex;
use mongodb::options::{ClientOptions, IndexOptions, ReadConcern, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use std::future::IntoFuture;

use turnout_store::{StoreError, StoreKeys};

use crate::errors::{Class, classify};

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
    /// The server's keys: ballots are sealed and the audit chain hashed with them.
    keys: StoreKeys,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("mongodb: {e}"))
}

impl MongoStore {
    /// Connects, creates the sealed ballot box and the collections' indexes, and runs the
    /// one-time migrations (all idempotent: safe on every start, from every process).
    pub async fn open(settings: &MongoSettings, keys: StoreKeys) -> Result<Self, StoreError> {
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
        let store = Self { db: client.database(&db_name), client, op_timeout: settings.op_timeout, keys };
        store.create_ballot_box().await?;
        store.create_indexes().await?;
        store.migrate().await?;
        Ok(store)
    }

    /// The client (tests read the oplog through it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The database this store uses (tests drop it).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// `sealed_ballots` is a clustered collection keyed by `_id` `{e, r}` (the random
    /// receipt): its natural order, like its `_id` order, is the receipts' order, never
    /// the order of casting. A clustered collection can only be made so at creation.
    async fn create_ballot_box(&self) -> Result<(), StoreError> {
        let create = self.db.create_collection(docs::SEALED_BALLOTS).clustered_index(ClusteredIndex::default());
        match tokio::time::timeout(self.op_timeout, create.into_future()).await {
            Ok(Ok(())) => Ok(()),
            // NamespaceExists: made on an earlier start, or by another process now.
            Ok(Err(e)) if errors::Facts::of(&e).code == Some(errors::NAMESPACE_EXISTS) => Ok(()),
            Ok(Err(e)) => Err(errors::store_error(&e)),
            Err(_) => Err(unavailable(format!("creating the ballot box took over {:?}", self.op_timeout))),
        }
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
            // Notices: the claim, abandoned leases, settling by id; officers by last sign-in.
            ("notices", doc! { "state": 1, "next_attempt_at": 1 }, "due"),
            ("notices", doc! { "state": 1, "lease_until": 1 }, "leases"),
            ("notices", doc! { "id": 1 }, "by_id"),
            ("staff_contacts", doc! { "officer": 1, "seen_at": -1 }, "officers"),
            // Nominations: the review queue (by status, or all) by (contest, id); a
            // nominee's own; a student's seconds in a contest; a nomination's versions.
            ("nominations", doc! { "election": 1, "status": 1, "contest": 1, "_id": 1 }, "by_status"),
            ("nominations", doc! { "election": 1, "contest": 1, "_id": 1 }, "by_contest"),
            ("nominations", doc! { "election": 1, "nominee": 1 }, "by_nominee"),
            ("nominations", doc! { "election": 1, "contest": 1, "seconds.by": 1 }, "by_seconder"),
            ("nomination_versions", doc! { "_id.n": 1, "_id.v": 1 }, "by_nomination"),
            // Where a photo is used (`Nominations::photo`): on a ballot, on a nomination,
            // in any version.
            ("elections", doc! { "contests.candidates.photo": 1 }, "by_photo"),
            ("nominations", doc! { "photo": 1 }, "by_photo"),
            ("nomination_versions", doc! { "photo": 1 }, "by_photo"),
        ];
        for (collection, keys, name) in indexes {
            self.timed(self.coll::<Document>(collection).create_index(index(keys, false, name))).await?;
        }
        // One live (not withdrawn) nomination per nominee and contest, as SQLite's partial
        // unique index; a partial filter can't say "status is not withdrawn" (no `$ne`),
        // hence the `live` flag each step keeps.
        let live = IndexModel::builder()
            .keys(doc! { "election": 1, "contest": 1, "nominee": 1 })
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .partial_filter_expression(doc! { "live": true })
                    .name("one_live".to_owned())
                    .build(),
            )
            .build();
        self.timed(self.coll::<Document>("nominations").create_index(live)).await?;
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

#[async_trait::async_trait]
impl turnout_store::Upgrades for MongoStore {
    async fn pending_upgrades(&self) -> Result<Vec<String>, StoreError> {
        MongoStore::pending_upgrades(self).await
    }

    async fn run_upgrades(&self) -> Result<Vec<String>, StoreError> {
        MongoStore::run_upgrades(self).await
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
