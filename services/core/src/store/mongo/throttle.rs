//! The sign-in throttle in MongoDB (rules in `store::throttle`):
//! `login_failures` `{_id: pair key, failures, next_allowed_ms, last_ms, expires_at}` and
//! `login_address_failures` `{_id: address key, failures, window_start_ms, expires_at}`.
//! Each attempt reads and writes both documents in one transaction, so two parallel
//! attempts conflict and one runs again: the check and the count are one step. A TTL
//! index on `expires_at` removes rows with nothing left to hold back.

use mongodb::bson::{Document, doc};

use super::MongoStore;
use super::decode::int;
use crate::store::StoreError;
use crate::store::throttle::{AddressCount, Admission, AttemptOutcome, PairCount, SignInKeys, ThrottleRules};

const PAIRS: &str = "login_failures";
const ADDRESSES: &str = "login_address_failures";

fn pair_of(d: &Document) -> PairCount {
    let field = |k: &str| int(d, k).unwrap_or(0);
    PairCount {
        failures: field("failures").max(0) as u32,
        next_allowed_ms: field("next_allowed_ms"),
        last_ms: field("last_ms"),
    }
}

fn address_of(d: &Document) -> AddressCount {
    let field = |k: &str| int(d, k).unwrap_or(0);
    AddressCount { failures: field("failures").max(0) as u32, window_start_ms: field("window_start_ms") }
}

fn pair_doc(key: &str, p: &PairCount, rules: &ThrottleRules) -> Document {
    let expires = (p.last_ms + rules.decay.as_millis() as i64).max(p.next_allowed_ms);
    doc! {
        "_id": key, "failures": i64::from(p.failures), "next_allowed_ms": p.next_allowed_ms, "last_ms": p.last_ms,
        "expires_at": mongodb::bson::DateTime::from_millis(expires),
    }
}

fn address_doc(key: &str, a: &AddressCount, rules: &ThrottleRules) -> Document {
    let expires = a.window_start_ms + rules.address_window.as_millis() as i64;
    doc! {
        "_id": key, "failures": i64::from(a.failures), "window_start_ms": a.window_start_ms,
        "expires_at": mongodb::bson::DateTime::from_millis(expires),
    }
}

impl MongoStore {
    pub async fn sign_in_attempt(
        &self,
        keys: &SignInKeys,
        rules: &ThrottleRules,
        now: jiff::Timestamp,
    ) -> Result<Admission, StoreError> {
        let now_ms = now.as_millisecond();
        let outcome = self
            .in_transaction(|store, session| {
                let (keys, rules) = (keys.clone(), *rules);
                Box::pin(async move {
                    let pairs = store.coll::<Document>(PAIRS);
                    let addresses = store.coll::<Document>(ADDRESSES);
                    let pair = pairs.find_one(doc! { "_id": &keys.pair }).session(&mut *session).await?;
                    let address = addresses.find_one(doc! { "_id": &keys.address }).session(&mut *session).await?;
                    match rules.admit(pair.as_ref().map(pair_of), address.as_ref().map(address_of), now_ms) {
                        Err(refused) => Ok(Err(refused)),
                        Ok((pair, address)) => {
                            pairs
                                .replace_one(doc! { "_id": &keys.pair }, pair_doc(&keys.pair, &pair, &rules))
                                .upsert(true)
                                .session(&mut *session)
                                .await?;
                            addresses
                                .replace_one(
                                    doc! { "_id": &keys.address },
                                    address_doc(&keys.address, &address, &rules),
                                )
                                .upsert(true)
                                .session(&mut *session)
                                .await?;
                            Ok(Ok(()))
                        }
                    }
                })
            })
            .await?;
        Ok(match outcome {
            Ok(()) => Admission::Allowed,
            Err(refused) => refused,
        })
    }

    pub async fn sign_in_settled(
        &self,
        keys: &SignInKeys,
        outcome: AttemptOutcome,
        rules: &ThrottleRules,
        now: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let now_ms = now.as_millisecond();
        self.in_transaction(|store, session| {
            let (keys, rules) = (keys.clone(), *rules);
            Box::pin(async move {
                let pairs = store.coll::<Document>(PAIRS);
                match outcome {
                    AttemptOutcome::Succeeded => {
                        pairs.delete_one(doc! { "_id": &keys.pair }).session(&mut *session).await?;
                    }
                    AttemptOutcome::NotCounted => {
                        if let Some(d) = pairs.find_one(doc! { "_id": &keys.pair }).session(&mut *session).await? {
                            let back = rules.give_back(pair_of(&d), now_ms);
                            pairs
                                .replace_one(doc! { "_id": &keys.pair }, pair_doc(&keys.pair, &back, &rules))
                                .session(&mut *session)
                                .await?;
                        }
                    }
                }
                store
                    .coll::<Document>(ADDRESSES)
                    .update_one(
                        doc! { "_id": &keys.address, "failures": { "$gt": 0_i64 } },
                        doc! { "$inc": { "failures": -1_i64 } },
                    )
                    .session(&mut *session)
                    .await?;
                Ok(Ok::<(), std::convert::Infallible>(()))
            })
        })
        .await?
        .unwrap_or_else(|never| match never {});
        Ok(())
    }

    /// The TTL index removes these within a minute of expiry; this does it now.
    pub async fn purge_sign_in_throttles(&self, now: jiff::Timestamp) -> Result<u64, StoreError> {
        let expired = doc! { "expires_at": { "$lte": mongodb::bson::DateTime::from_millis(now.as_millisecond()) } };
        let mut removed = 0;
        for name in [PAIRS, ADDRESSES] {
            removed += self.timed(self.coll::<Document>(name).delete_many(expired.clone())).await?.deleted_count;
        }
        Ok(removed)
    }
}
