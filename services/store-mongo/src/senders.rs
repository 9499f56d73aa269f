//! The sender pool in MongoDB, shared by every OTP instance: `sender_accounts`
//! `{_id: name, tat, day, sent_today, quarantined_until, quarantine_reason, strikes,
//! sent_total, failed_total, last_error, last_sent_at}` (GCRA: `tat` is the theoretical
//! time of the next send) and `sender_slots` `{_id: {a, s}, holder, lease_until}` (SMTP
//! sessions leased to an instance for one batch). Reservations and batch ends run in
//! transactions, with the same rules as the SQLite adapter.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::bson::{Bson, Document, doc};
use turnout_store::rules::{AccountState, SendPlanner, secs_to_timestamp};
use turnout_store::{
    AccountLimits, AccountReport, MailOutcome, QuarantinePolicy, Reservation, SendGrant, SenderHealth, Senders,
    StoreError,
};

use crate::MongoStore;
use crate::decode::{self, bad, int};
use crate::outbox::write_outcomes;

fn float(d: &Document, key: &str) -> f64 {
    match d.get(key) {
        Some(Bson::Double(f)) => *f,
        Some(Bson::Int32(n)) => f64::from(*n),
        Some(Bson::Int64(n)) => *n as f64,
        _ => 0.0,
    }
}

#[async_trait]
impl Senders for MongoStore {
    async fn reserve_sends(
        &self,
        holder: &str,
        accounts: &[AccountLimits],
        wanted: u32,
        horizon: Duration,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        let (holder, accounts) = (holder.to_owned(), accounts.to_vec());
        self.in_transaction(|store, session| {
            let (holder, accounts) = (holder.clone(), accounts.clone());
            Box::pin(async move {
                let senders = store.coll::<Document>("sender_accounts");
                let slots = store.coll::<Document>("sender_slots");
                let now_s = now.as_second();
                let today = now.strftime("%Y-%m-%d").to_string();
                let mut planner = SendPlanner::new(now, horizon);
                slots.delete_many(doc! { "lease_until": { "$lte": now_s } }).session(&mut *session).await?;
                for limits in &accounts {
                    let a = senders
                        .find_one_and_update(
                            doc! { "_id": &limits.name },
                            doc! { "$setOnInsert": {
                                "tat": 0.0, "day": "", "sent_today": 0_i64, "quarantined_until": 0_i64,
                                "quarantine_reason": Bson::Null, "strikes": 0_i64, "sent_total": 0_i64,
                                "failed_total": 0_i64, "last_error": Bson::Null, "last_sent_at": Bson::Null,
                            } },
                        )
                        .upsert(true)
                        .return_document(mongodb::options::ReturnDocument::After)
                        .session(&mut *session)
                        .await?
                        .unwrap_or_default();
                    let sent_today =
                        if a.get_str("day").unwrap_or("") == today { int(&a, "sent_today").unwrap_or(0) as u32 } else { 0 };
                    let held_slots =
                        slots.count_documents(doc! { "_id.a": &limits.name }).session(&mut *session).await? as u32;
                    planner.consider(
                        limits,
                        AccountState {
                            tat: float(&a, "tat"),
                            sent_today,
                            quarantined_until: int(&a, "quarantined_until").unwrap_or(0),
                            held_slots,
                        },
                    );
                }
                let candidates = planner.plan(wanted);
                let mut grants = Vec::new();
                for c in candidates {
                    let wanted_slots = c.free_slots.min(c.times.len() as u32);
                    let mut taken = 0;
                    let mut slot_no = 0;
                    while taken < wanted_slots && slot_no < c.limits.max_concurrent {
                        let id = doc! { "_id": { "a": &c.limits.name, "s": i64::from(slot_no) } };
                        let free = slots.count_documents(id.clone()).session(&mut *session).await? == 0;
                        if free {
                            let mut d = id;
                            d.extend(doc! { "holder": &holder, "lease_until": now_s + lease.as_secs() as i64 });
                            slots.insert_one(d).session(&mut *session).await?;
                            taken += 1;
                        }
                        slot_no += 1;
                    }
                    senders
                        .update_one(
                            doc! { "_id": &c.limits.name },
                            doc! { "$set": { "tat": c.next, "day": &today, "sent_today": i64::from(c.sent_today) + c.times.len() as i64 } },
                        )
                        .session(&mut *session)
                        .await?;
                    grants.push(SendGrant {
                        account: c.limits.name.clone(),
                        slots: taken,
                        send_at: c.times.iter().map(|f| secs_to_timestamp(*f, now)).collect(),
                        tat_after: c.next,
                    });
                }
                let next_capacity_at = if grants.is_empty() { planner.next_capacity_at(now) } else { None };
                Ok(Ok::<Reservation, StoreError>(Reservation { grants, next_capacity_at }))
            })
        })
        .await?
    }

    async fn sender_health(&self) -> Result<Vec<SenderHealth>, StoreError> {
        let now = Timestamp::now();
        let today = now.strftime("%Y-%m-%d").to_string();
        let cursor = self.timed(self.coll::<Document>("sender_accounts").find(doc! {}).sort(doc! { "_id": 1 })).await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                let quarantined_until = int(d, "quarantined_until").unwrap_or(0);
                Ok(SenderHealth {
                    account: d.get_str("_id").map_err(bad)?.to_owned(),
                    quarantined_until: (quarantined_until > now.as_second()).then(|| decode::ts(quarantined_until)),
                    quarantine_reason: d.get_str("quarantine_reason").ok().map(str::to_owned),
                    sent_today: if d.get_str("day").unwrap_or("") == today {
                        int(d, "sent_today").unwrap_or(0) as u32
                    } else {
                        0
                    },
                    sent_total: int(d, "sent_total").unwrap_or(0).max(0) as u64,
                    failed_total: int(d, "failed_total").unwrap_or(0).max(0) as u64,
                    last_error: d.get_str("last_error").ok().map(str::to_owned),
                    last_sent_at: int(d, "last_sent_at").ok().map(decode::ts),
                })
            })
            .collect()
    }

    /// Ends a round in one transaction: outcomes, account health, unused sends handed
    /// back, and `worker`'s session slots released.
    async fn finish_batch(
        &self,
        worker: &str,
        outcomes: &[MailOutcome],
        reports: &[AccountReport],
        policy: QuarantinePolicy,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (worker, outcomes, reports) = (worker.to_owned(), outcomes.to_vec(), reports.to_vec());
        let counted = self
            .in_transaction(|store, session| {
                let (worker, outcomes, reports) = (worker.clone(), outcomes.clone(), reports.clone());
                Box::pin(async move {
                    let counted = write_outcomes(store, session, &worker, &outcomes, now).await?;
                    let senders = store.coll::<Document>("sender_accounts");
                    let now_s = now.as_second();
                    for r in &reports {
                        let unused = r.unused.len() as i64;
                        if unused > 0 {
                            // Unused sends go back to the schedule, only if nobody reserved after us.
                            let back = (r.tat_after - unused as f64 * r.interval_secs).max(now.as_duration().as_secs_f64());
                            senders
                                .update_one(doc! { "_id": &r.account, "tat": r.tat_after }, doc! { "$set": { "tat": back } })
                                .session(&mut *session)
                                .await?;
                            let a = senders.find_one(doc! { "_id": &r.account }).session(&mut *session).await?;
                            let sent_today = a.as_ref().map(|a| int(a, "sent_today").unwrap_or(0)).unwrap_or(0);
                            senders
                                .update_one(doc! { "_id": &r.account }, doc! { "$set": { "sent_today": (sent_today - unused).max(0) } })
                                .session(&mut *session)
                                .await?;
                        }
                        let mut set = doc! {};
                        if let Some(e) = &r.last_error {
                            set.insert("last_error", e.as_str());
                        }
                        if r.sent > 0 {
                            set.insert("last_sent_at", now_s);
                        }
                        let a = senders.find_one(doc! { "_id": &r.account }).session(&mut *session).await?;
                        let strikes_before = a.as_ref().map(|a| int(a, "strikes").unwrap_or(0)).unwrap_or(0);
                        let strikes = if r.strikes > 0 {
                            strikes_before + i64::from(r.strikes)
                        } else if r.sent > 0 {
                            0
                        } else {
                            strikes_before
                        };
                        set.insert("strikes", strikes);
                        senders
                            .update_one(
                                doc! { "_id": &r.account },
                                doc! { "$set": set, "$inc": { "sent_total": i64::from(r.sent), "failed_total": i64::from(r.failed) } },
                            )
                            .session(&mut *session)
                            .await?;
                        let reason = r.quarantine.clone().or_else(|| {
                            (strikes >= i64::from(policy.strike_limit)).then(|| format!("{strikes} throttling answers in a row"))
                        });
                        if let Some(reason) = reason {
                            senders
                                .update_one(
                                    doc! { "_id": &r.account },
                                    doc! { "$set": {
                                        "quarantined_until": now_s + policy.period.as_secs() as i64,
                                        "quarantine_reason": reason, "strikes": 0_i64,
                                    } },
                                )
                                .session(&mut *session)
                                .await?;
                        }
                    }
                    store.coll::<Document>("sender_slots").delete_many(doc! { "holder": &worker }).session(&mut *session).await?;
                    Ok(Ok::<_, StoreError>(counted))
                })
            })
            .await??;
        self.count_mail(&counted, now).await
    }
}
