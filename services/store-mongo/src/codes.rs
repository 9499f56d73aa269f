//! One-time codes in MongoDB: `otp_codes` `{_id: {e, v}, generation, issued_at, attempts,
//! consumed, sends, last_request_at, voids, locked_until}` (the code itself is never
//! stored: it is derived from the secret, the generation and `issued_at`) and the code
//! mail in `outbox` `{_id: uuid, e, v, recipient, generation, issued_at, state, attempts,
//! next_attempt_at, created_at, updated_at, order, ...}`. Same rules as the SQLite adapter.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use mongodb::bson::{Bson, Document, doc};
use turnout_domain::{ElectionId, Username, VoterEmail};
use turnout_store::{
    Activity, AttemptError, AuditEntry, Codes, IssueError, LockPolicy, MailState, MailStatus, OtpAttempt, OtpIssue,
    OtpPolicy, OtpStatus, StoreError,
};

use crate::MongoStore;
use crate::audit::append_audit_in;
use crate::decode::{self, int};
use crate::outbox::outbox_seq;

fn code_id(election: &ElectionId, voter: &Username) -> Document {
    doc! { "_id": { "e": election.as_str(), "v": voter.as_str() } }
}

#[async_trait]
impl Codes for MongoStore {
    async fn issue_otp(
        &self,
        election: &ElectionId,
        voter: &Username,
        to: &VoterEmail,
        policy: OtpPolicy,
        now: Timestamp,
    ) -> Result<OtpIssue, IssueError> {
        let outcome = self
            .in_transaction(|store, session| {
                let (election, voter, to) = (election.clone(), voter.clone(), to.clone());
                Box::pin(async move {
                    let codes = store.coll::<Document>("otp_codes");
                    let id = code_id(&election, &voter);
                    let now_s = now.as_second();
                    let current = codes.find_one(id.clone()).session(&mut *session).await?;
                    let (generation, issued_at, resent) = match current {
                        None => {
                            let mut d = id.clone();
                            d.extend(doc! {
                                "generation": 1_i64, "issued_at": now_s, "attempts": 0_i64, "consumed": false,
                                "sends": 1_i64, "last_request_at": now_s, "voids": 0_i64, "locked_until": 0_i64,
                            });
                            codes.insert_one(d).session(&mut *session).await?;
                            (1, now_s, false)
                        }
                        Some(c) => {
                            let field = |k: &str| int(&c, k).unwrap_or(0);
                            let locked_until = field("locked_until");
                            if locked_until > now_s {
                                return Ok(Err(IssueError::Locked { until: decode::ts(locked_until) }));
                            }
                            let ready_at = field("last_request_at") + policy.cooldown.as_secs() as i64;
                            if now_s < ready_at {
                                return Ok(Err(IssueError::Cooldown { retry_after_secs: (ready_at - now_s) as u64 }));
                            }
                            if field("sends") >= i64::from(policy.max_sends) {
                                return Ok(Err(IssueError::SendLimit));
                            }
                            let (generation, issued_at) = (field("generation") as u32, field("issued_at"));
                            // Re-send the same code while it stays usable for at least half
                            // its validity; otherwise a new generation (a new code).
                            let half_left = issued_at + (policy.validity.as_secs() as i64) / 2 > now_s;
                            let usable = !c.get_bool("consumed").unwrap_or(false)
                                && field("attempts") < i64::from(policy.max_attempts);
                            if half_left && usable {
                                codes
                                    .update_one(id, doc! { "$inc": { "sends": 1_i64 }, "$set": { "last_request_at": now_s } })
                                    .session(&mut *session)
                                    .await?;
                                (generation, issued_at, true)
                            } else {
                                codes
                                    .update_one(
                                        id,
                                        doc! {
                                            "$inc": { "generation": 1_i64, "sends": 1_i64 },
                                            "$set": { "issued_at": now_s, "attempts": 0_i64, "consumed": false, "last_request_at": now_s },
                                        },
                                    )
                                    .session(&mut *session)
                                    .await?;
                                (generation + 1, now_s, false)
                            }
                        }
                    };
                    let mail_id = uuid::Uuid::new_v4();
                    store
                        .coll::<Document>("outbox")
                        .insert_one(doc! {
                            "_id": mail_id.to_string(), "e": election.as_str(), "v": voter.as_str(),
                            "recipient": to.as_str(), "generation": i64::from(generation), "issued_at": issued_at,
                            "state": "queued", "attempts": 0_i64, "account": Bson::Null, "sender": Bson::Null,
                            "lease_owner": Bson::Null, "lease_until": Bson::Null, "next_attempt_at": now_s,
                            "created_at": now_s, "updated_at": now_s, "sent_at": Bson::Null, "last_error": Bson::Null,
                            // Orders a voter's mails queued in the same second (ObjectIds
                            // from one process only grow).
                            "order": mongodb::bson::oid::ObjectId::new(),
                            "seq": outbox_seq(Timestamp::now().as_millisecond()),
                        })
                        .session(&mut *session)
                        .await?;
                    Ok(Ok(OtpIssue { generation, issued_at: decode::ts(issued_at), resent, mail_id }))
                })
            })
            .await;
        let issue = outcome.map_err(IssueError::Store)??;
        self.bump_activity(election.as_str(), Activity::CodeRequested, 1, now.as_second().div_euclid(60)).await?;
        Ok(issue)
    }

    async fn begin_otp_attempt(
        &self,
        election: &ElectionId,
        voter: &Username,
        max_attempts: u32,
        now: Timestamp,
    ) -> Result<OtpAttempt, AttemptError> {
        let codes = self.coll::<Document>("otp_codes");
        let id = code_id(election, voter);
        let current = self.timed(codes.find_one(id.clone())).await?;
        let Some(current) = current else { return Err(AttemptError::NoActiveCode) };
        let locked_until = int(&current, "locked_until").unwrap_or(0);
        if locked_until > now.as_second() {
            return Err(AttemptError::Locked { until: decode::ts(locked_until) });
        }
        // Counted only while the code is unused and under the limit, in one atomic update.
        let mut filter = id;
        filter.extend(doc! { "consumed": false, "attempts": { "$lt": i64::from(max_attempts) } });
        let counted = self
            .timed(
                codes
                    .find_one_and_update(filter, doc! { "$inc": { "attempts": 1_i64 } })
                    .return_document(mongodb::options::ReturnDocument::After),
            )
            .await?;
        match counted {
            Some(d) => Ok(OtpAttempt {
                generation: int(&d, "generation")? as u32,
                issued_at: decode::ts(int(&d, "issued_at")?),
                attempts_used: int(&d, "attempts")? as u32,
            }),
            None if !current.get_bool("consumed").unwrap_or(false) => Err(AttemptError::TooManyAttempts),
            None => Err(AttemptError::NoActiveCode),
        }
    }

    async fn consume_otp(&self, election: &ElectionId, voter: &Username, generation: u32) -> Result<(), StoreError> {
        let mut filter = code_id(election, voter);
        filter.extend(doc! { "generation": i64::from(generation), "consumed": false });
        let done = self
            .timed(self.coll::<Document>("otp_codes").update_one(filter, doc! { "$set": { "consumed": true } }))
            .await?;
        if done.modified_count > 0 {
            let minute = Timestamp::now().as_second().div_euclid(60);
            self.bump_activity(election.as_str(), Activity::CodeVerified, 1, minute).await?;
        }
        Ok(())
    }

    async fn record_otp_void(
        &self,
        election: &ElectionId,
        voter: &Username,
        policy: LockPolicy,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let codes = self.coll::<Document>("otp_codes");
        let id = code_id(election, voter);
        let after = self
            .timed(
                codes
                    .find_one_and_update(id.clone(), doc! { "$inc": { "voids": 1_i64 } })
                    .return_document(mongodb::options::ReturnDocument::After),
            )
            .await?;
        match after {
            Some(d) if int(&d, "voids")? >= i64::from(policy.after_voids) => {
                let until = now.as_second() + policy.period.as_secs() as i64;
                self.timed(codes.update_one(id, doc! { "$set": { "locked_until": until, "voids": 0_i64 } })).await?;
                Ok(Some(decode::ts(until)))
            }
            _ => Ok(None),
        }
    }

    async fn otp_status(&self, election: &ElectionId, voter: &Username) -> Result<Option<OtpStatus>, StoreError> {
        let Some(code) = self.timed(self.coll::<Document>("otp_codes").find_one(code_id(election, voter))).await?
        else {
            return Ok(None);
        };
        let mail = self
            .timed(
                self.coll::<Document>("outbox")
                    .find_one(doc! { "e": election.as_str(), "v": voter.as_str() })
                    .sort(doc! { "created_at": -1, "order": -1 }),
            )
            .await?;
        let mail = mail
            .map(|m| -> Result<MailStatus, StoreError> {
                Ok(MailStatus {
                    state: MailState::parse(m.get_str("state").map_err(decode::bad)?).unwrap_or(MailState::Queued),
                    queued_at: decode::ts(int(&m, "created_at")?),
                    sent_at: int(&m, "sent_at").ok().map(decode::ts),
                    from: m.get_str("sender").ok().map(str::to_owned),
                    attempts: int(&m, "attempts")? as u32,
                    last_error: m.get_str("last_error").ok().map(str::to_owned),
                    next_attempt_at: decode::ts(int(&m, "next_attempt_at")?),
                })
            })
            .transpose()?;
        let locked_until = int(&code, "locked_until").unwrap_or(0);
        Ok(Some(OtpStatus {
            mail,
            last_request_at: decode::ts(int(&code, "last_request_at")?),
            sends: int(&code, "sends")? as u32,
            locked_until: (locked_until > Timestamp::now().as_second()).then(|| decode::ts(locked_until)),
        }))
    }

    async fn set_otp_extra(
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
}
