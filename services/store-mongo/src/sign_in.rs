//! Sign-in in MongoDB: the throttle (rules in `turnout_store::sign_in`) and sign-outs.
//!
//! The throttle: `login_failures` `{_id: pair key, failures, next_allowed_ms, last_ms,
//! ver, expires_at}` and `login_address_failures` `{_id: address key, failures,
//! window_start_ms, expires_at}`. A TTL index on `expires_at` removes rows with nothing
//! left to hold back.
//!
//! No transactions: every sign-in behind one campus NAT passes the same address
//! document, and at the opening burst transactions on it would abort each other
//! (write conflicts) faster than they commit. Instead:
//! - the address is counted by one conditional `$inc` on its document ("add one if the
//!   window is current and not full"), which the server applies atomically, one after
//!   another, however many arrive at once;
//! - the pair is read, decided by the shared rule and written back only if its version
//!   is still the one read (compare-and-set, retried on a race), so parallel guesses for
//!   one username are counted one by one;
//! - a pair that refuses gives the address its count back.
//!
//! Sign-outs (read by core's `sign_outs`): `sign_outs` `{_id: uid, at_ms}`, one document
//! per account, indexed by `at_ms` for the services' reads every 250 ms.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::bson::{Document, doc};
use turnout_domain::Username;
use turnout_store::sign_in::{AddressCount, PairCount};
use turnout_store::{Admission, AttemptOutcome, SignIn, SignInKeys, StoreError, ThrottleRules};

use crate::MongoStore;
use crate::decode::{self, int};

const PAIRS: &str = "login_failures";
const ADDRESSES: &str = "login_address_failures";
/// Compare-and-set rounds before giving up (a 503: only parallel guesses get there).
const ROUNDS: u32 = 8;

fn pair_of(d: &Document) -> PairCount {
    let field = |k: &str| int(d, k).unwrap_or(0);
    PairCount {
        failures: field("failures").max(0) as u32,
        next_allowed_ms: field("next_allowed_ms"),
        last_ms: field("last_ms"),
    }
}

fn pair_fields(p: &PairCount, rules: &ThrottleRules, ver: i64) -> Document {
    let expires = (p.last_ms + rules.decay.as_millis() as i64).max(p.next_allowed_ms);
    doc! {
        "failures": i64::from(p.failures), "next_allowed_ms": p.next_allowed_ms, "last_ms": p.last_ms, "ver": ver,
        "expires_at": mongodb::bson::DateTime::from_millis(expires),
    }
}

fn contended() -> StoreError {
    StoreError::Unavailable("the sign-in throttle is contended; try again".into())
}

#[async_trait]
impl SignIn for MongoStore {
    async fn sign_in_attempt(
        &self,
        keys: &SignInKeys,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        let now_ms = now.as_millisecond();
        if let Err(refused) = self.count_address(&keys.address, rules, now_ms).await? {
            return Ok(refused);
        }
        let pair = self.change_pair(&keys.pair, rules, |stored| rules.admit_pair(stored, now_ms).map(Some)).await;
        match pair {
            Ok(Ok(())) => Ok(Admission::Allowed),
            Ok(Err(refused)) => {
                self.give_back_address(&keys.address).await?;
                Ok(refused)
            }
            Err(e) => {
                let _ = self.give_back_address(&keys.address).await;
                Err(e)
            }
        }
    }

    async fn sign_in_settled(
        &self,
        keys: &SignInKeys,
        outcome: AttemptOutcome,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        match outcome {
            AttemptOutcome::Succeeded => {
                self.timed(self.coll::<Document>(PAIRS).delete_one(doc! { "_id": &keys.pair })).await?;
            }
            AttemptOutcome::NotCounted => {
                let now_ms = now.as_millisecond();
                let back = |stored: Option<PairCount>| Ok(stored.map(|p| rules.give_back(p, now_ms)));
                let _ = self.change_pair(&keys.pair, rules, back).await?;
            }
        }
        self.give_back_address(&keys.address).await
    }

    /// Expired rows only, all of them (the TTL index bounds how many there can be). The
    /// TTL index removes these within a minute of expiry; this does it now.
    async fn purge_sign_in_throttles(&self, _: &ThrottleRules, now: Timestamp, _: u32) -> Result<u64, StoreError> {
        let expired = doc! { "expires_at": { "$lte": mongodb::bson::DateTime::from_millis(now.as_millisecond()) } };
        let mut removed = 0;
        for name in [PAIRS, ADDRESSES] {
            removed += self.timed(self.coll::<Document>(name).delete_many(expired.clone())).await?.deleted_count;
        }
        Ok(removed)
    }

    async fn record_sign_out(&self, account: &Username, at: Timestamp) -> Result<(), StoreError> {
        let update = doc! { "$max": { "at_ms": at.as_millisecond() } };
        self.timed(self.coll::<Document>("sign_outs").update_one(doc! { "_id": account.as_str() }, update).upsert(true))
            .await
            .map(|_| ())
    }

    async fn sign_outs_since(&self, since: Timestamp, limit: u32) -> Result<Vec<(Username, Timestamp)>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("sign_outs")
                    .find(doc! { "at_ms": { "$gte": since.as_millisecond() } })
                    .sort(doc! { "at_ms": 1 })
                    .limit(i64::from(limit)),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                let uid = Username::parse(d.get_str("_id").map_err(decode::bad)?).map_err(decode::bad)?;
                Ok((uid, decode::ts_ms(int(d, "at_ms")?)))
            })
            .collect()
    }

    async fn purge_sign_outs(&self, before: Timestamp) -> Result<u64, StoreError> {
        let old = doc! { "at_ms": { "$lt": before.as_millisecond() } };
        Ok(self.timed(self.coll::<Document>("sign_outs").delete_many(old)).await?.deleted_count)
    }
}

impl MongoStore {
    /// Adds one to the address's window, atomically; `Err` with the refusal when full.
    async fn count_address(
        &self,
        key: &str,
        rules: &ThrottleRules,
        now_ms: i64,
    ) -> Result<Result<(), Admission>, StoreError> {
        let coll = self.coll::<Document>(ADDRESSES);
        let window_ms = rules.address_window.as_millis() as i64;
        let current = now_ms - window_ms;
        for _ in 0..ROUNDS {
            let inc = coll.update_one(
                doc! { "_id": key, "window_start_ms": { "$gt": current }, "failures": { "$lt": i64::from(rules.address_failures) } },
                doc! { "$inc": { "failures": 1_i64 } },
            );
            if self.timed(inc).await?.matched_count == 1 {
                return Ok(Ok(()));
            }
            let stored = self.timed(coll.find_one(doc! { "_id": key })).await?;
            let stored_count = stored.as_ref().map(|d| AddressCount {
                failures: int(d, "failures").unwrap_or(0).max(0) as u32,
                window_start_ms: int(d, "window_start_ms").unwrap_or(0),
            });
            let fresh = match rules.admit_address(stored_count, now_ms) {
                Err(refused) => return Ok(Err(refused)),
                // The window is current and has room: the `$inc` raced with another; again.
                Ok(_) if stored_count.is_some_and(|a| now_ms - a.window_start_ms < window_ms) => continue,
                Ok(fresh) => fresh,
            };
            // No document, or its window passed: start a new window, if nobody did meanwhile.
            let expires = mongodb::bson::DateTime::from_millis(fresh.window_start_ms + window_ms);
            let body = doc! { "failures": i64::from(fresh.failures), "window_start_ms": fresh.window_start_ms, "expires_at": expires };
            let started = match stored {
                None => self.insert_new(&coll, key, body).await?,
                Some(old) => {
                    let old_start = int(&old, "window_start_ms").unwrap_or(0);
                    let reset =
                        coll.update_one(doc! { "_id": key, "window_start_ms": old_start }, doc! { "$set": body });
                    self.timed(reset).await?.matched_count == 1
                }
            };
            if started {
                return Ok(Ok(()));
            }
        }
        Err(contended())
    }

    /// Inserts `body` as document `key`; `false` when another writer made it first.
    async fn insert_new(
        &self,
        coll: &mongodb::Collection<Document>,
        key: &str,
        mut body: Document,
    ) -> Result<bool, StoreError> {
        body.insert("_id", key);
        match self.timed(coll.insert_one(body)).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn give_back_address(&self, key: &str) -> Result<(), StoreError> {
        let coll = self.coll::<Document>(ADDRESSES);
        let back =
            coll.update_one(doc! { "_id": key, "failures": { "$gt": 0_i64 } }, doc! { "$inc": { "failures": -1_i64 } });
        self.timed(back).await.map(|_| ())
    }

    /// Reads the pair, asks `change` for its new state (`Ok(None)`: leave it), and writes
    /// it only if nobody changed it meanwhile; `Err` carries `change`'s refusal.
    async fn change_pair(
        &self,
        key: &str,
        rules: &ThrottleRules,
        change: impl Fn(Option<PairCount>) -> Result<Option<PairCount>, Admission>,
    ) -> Result<Result<(), Admission>, StoreError> {
        let coll = self.coll::<Document>(PAIRS);
        for _ in 0..ROUNDS {
            let stored = self.timed(coll.find_one(doc! { "_id": key })).await?;
            let next = match change(stored.as_ref().map(pair_of)) {
                Err(refused) => return Ok(Err(refused)),
                Ok(None) => return Ok(Ok(())),
                Ok(Some(next)) => next,
            };
            let written = match &stored {
                None => self.insert_new(&coll, key, pair_fields(&next, rules, 1)).await?,
                Some(old) => {
                    // Documents from before versions had none: they match as "absent".
                    let (filter, ver) = match int(old, "ver") {
                        Ok(ver) => (doc! { "_id": key, "ver": ver }, ver),
                        Err(_) => (doc! { "_id": key, "ver": { "$exists": false } }, 0),
                    };
                    let set = coll.update_one(filter, doc! { "$set": pair_fields(&next, rules, ver + 1) });
                    self.timed(set).await?.matched_count == 1
                }
            };
            if written {
                return Ok(Ok(()));
            }
        }
        Err(contended())
    }
}
