//! One-time codes on SQLite: `otp_codes`, one row per voter and election (never the
//! code itself), with the outbox row of each issue in the same transaction.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;
use uuid::Uuid;

use turnout_domain::{ElectionId, Username, VoterEmail};
use turnout_store::rules::ts;
use turnout_store::{
    Activity, AttemptError, AuditEntry, Codes, IssueError, LockPolicy, MailState, MailStatus, OtpAttempt, OtpIssue,
    OtpPolicy, OtpStatus, StoreError,
};

use crate::SqliteStore;
use crate::activity::bump_activity;
use crate::audit::append_audit_in;
use crate::error::SqlResult;

#[async_trait]
impl Codes for SqliteStore {
    #[tracing::instrument(skip_all, fields(election = %election))]
    async fn issue_otp(
        &self,
        election: &ElectionId,
        voter: &Username,
        to: &VoterEmail,
        policy: OtpPolicy,
        now: Timestamp,
    ) -> Result<OtpIssue, IssueError> {
        let (election, voter, to) = (election.clone(), voter.clone(), to.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let now_s = now.as_second();
            let current = tx
                .query_row(
                    "SELECT generation, issued_at, attempts, consumed, sends, last_request_at, locked_until
                     FROM otp_codes WHERE election_id = ?1 AND voter = ?2",
                    params![election.as_str(), voter.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, u32>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, u32>(2)?,
                            r.get::<_, bool>(3)?,
                            r.get::<_, u32>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    },
                )
                .optional()
                .sql()?;
            let (generation, issued_at, resent) = match current {
                None => {
                    tx.execute(
                        "INSERT INTO otp_codes (election_id, voter, generation, issued_at, sends, last_request_at)
                         VALUES (?1, ?2, 1, ?3, 1, ?3)",
                        params![election.as_str(), voter.as_str(), now_s],
                    )
                    .sql()?;
                    (1, now_s, false)
                }
                Some((generation, issued_at, attempts, consumed, sends, last_request_at, locked_until)) => {
                    if locked_until > now_s {
                        return Err(IssueError::Locked { until: ts(locked_until) });
                    }
                    let ready_at = last_request_at + policy.cooldown.as_secs() as i64;
                    if now_s < ready_at {
                        return Err(IssueError::Cooldown { retry_after_secs: (ready_at - now_s) as u64 });
                    }
                    if sends >= policy.max_sends {
                        return Err(IssueError::SendLimit);
                    }
                    // Re-send the same code while it stays usable for at least half its
                    // validity; otherwise start a new generation (a new code).
                    let half_left = issued_at + (policy.validity.as_secs() as i64) / 2 > now_s;
                    let usable = !consumed && attempts < policy.max_attempts;
                    if half_left && usable {
                        tx.execute(
                            "UPDATE otp_codes SET sends = sends + 1, last_request_at = ?3
                             WHERE election_id = ?1 AND voter = ?2",
                            params![election.as_str(), voter.as_str(), now_s],
                        )
                        .sql()?;
                        (generation, issued_at, true)
                    } else {
                        tx.execute(
                            "UPDATE otp_codes SET generation = generation + 1, issued_at = ?3, attempts = 0,
                                 consumed = 0, sends = sends + 1, last_request_at = ?3
                             WHERE election_id = ?1 AND voter = ?2",
                            params![election.as_str(), voter.as_str(), now_s],
                        )
                        .sql()?;
                        (generation + 1, now_s, false)
                    }
                }
            };
            let mail_id = Uuid::new_v4();
            tx.execute(
                "INSERT INTO outbox (id, election_id, voter, recipient, generation, issued_at, state,
                                     next_attempt_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?7)",
                params![
                    mail_id.to_string(),
                    election.as_str(),
                    voter.as_str(),
                    to.as_str(),
                    generation,
                    issued_at,
                    now_s
                ],
            )
            .sql()?;
            bump_activity(&tx, election.as_str(), Activity::CodeRequested, 1, now).sql()?;
            tx.commit().sql()?;
            Ok(OtpIssue { generation, issued_at: ts(issued_at), resent, mail_id })
        })
        .await
    }

    async fn begin_otp_attempt(
        &self,
        election: &ElectionId,
        voter: &Username,
        max_attempts: u32,
        now: Timestamp,
    ) -> Result<OtpAttempt, AttemptError> {
        let (election, voter) = (election.clone(), voter.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let locked_until: Option<i64> = tx
                .query_row(
                    "SELECT locked_until FROM otp_codes WHERE election_id = ?1 AND voter = ?2",
                    params![election.as_str(), voter.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .sql()?;
            if let Some(until) = locked_until.filter(|u| *u > now.as_second()) {
                return Err(AttemptError::Locked { until: ts(until) });
            }
            let counted = tx
                .query_row(
                    "UPDATE otp_codes SET attempts = attempts + 1
                     WHERE election_id = ?1 AND voter = ?2 AND consumed = 0 AND attempts < ?3
                     RETURNING generation, issued_at, attempts",
                    params![election.as_str(), voter.as_str(), max_attempts],
                    |r| Ok(OtpAttempt { generation: r.get(0)?, issued_at: ts(r.get(1)?), attempts_used: r.get(2)? }),
                )
                .optional()
                .sql()?;
            if let Some(attempt) = counted {
                tx.commit().sql()?;
                return Ok(attempt);
            }
            let state = tx
                .query_row(
                    "SELECT consumed FROM otp_codes WHERE election_id = ?1 AND voter = ?2",
                    params![election.as_str(), voter.as_str()],
                    |r| r.get::<_, bool>(0),
                )
                .optional()
                .sql()?;
            match state {
                Some(false) => Err(AttemptError::TooManyAttempts),
                _ => Err(AttemptError::NoActiveCode),
            }
        })
        .await
    }

    async fn consume_otp(&self, election: &ElectionId, voter: &Username, generation: u32) -> Result<(), StoreError> {
        let (election, voter) = (election.clone(), voter.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let consumed = tx
                .execute(
                    "UPDATE otp_codes SET consumed = 1
                 WHERE election_id = ?1 AND voter = ?2 AND generation = ?3 AND consumed = 0",
                    params![election.as_str(), voter.as_str(), generation],
                )
                .sql()?;
            if consumed > 0 {
                bump_activity(&tx, election.as_str(), Activity::CodeVerified, 1, Timestamp::now()).sql()?;
            }
            tx.commit().sql()?;
            Ok(())
        })
        .await
    }

    async fn record_otp_void(
        &self,
        election: &ElectionId,
        voter: &Username,
        policy: LockPolicy,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let (election, voter) = (election.clone(), voter.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let voids: Option<u32> = tx
                .query_row(
                    "UPDATE otp_codes SET voids = voids + 1 WHERE election_id = ?1 AND voter = ?2 RETURNING voids",
                    params![election.as_str(), voter.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .sql()?;
            let locked = match voids {
                Some(v) if v >= policy.after_voids => {
                    let until = now.as_second() + policy.period.as_secs() as i64;
                    tx.execute(
                        "UPDATE otp_codes SET locked_until = ?3, voids = 0 WHERE election_id = ?1 AND voter = ?2",
                        params![election.as_str(), voter.as_str(), until],
                    )
                    .sql()?;
                    Some(ts(until))
                }
                _ => None,
            };
            tx.commit().sql()?;
            Ok(locked)
        })
        .await
    }

    async fn otp_status(&self, election: &ElectionId, voter: &Username) -> Result<Option<OtpStatus>, StoreError> {
        let (election, voter) = (election.clone(), voter.clone());
        self.read_here(move |conn| {
            let tx = conn.unchecked_transaction().sql()?;
            let code = tx
                .query_row(
                    "SELECT last_request_at, sends, locked_until FROM otp_codes WHERE election_id = ?1 AND voter = ?2",
                    params![election.as_str(), voter.as_str()],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u32>(1)?, r.get::<_, i64>(2)?)),
                )
                .optional()
                .sql()?;
            let Some((last_request_at, sends, locked_until)) = code else {
                return Ok(None);
            };
            let mail = tx
                .query_row(
                    "SELECT state, created_at, sent_at, sender, attempts, last_error, next_attempt_at FROM outbox
                     WHERE election_id = ?1 AND voter = ?2 ORDER BY created_at DESC, rowid DESC LIMIT 1",
                    params![election.as_str(), voter.as_str()],
                    |r| {
                        let state: String = r.get(0)?;
                        Ok(MailStatus {
                            state: MailState::parse(&state).unwrap_or(MailState::Queued),
                            queued_at: ts(r.get(1)?),
                            sent_at: r.get::<_, Option<i64>>(2)?.map(ts),
                            from: r.get(3)?,
                            attempts: r.get(4)?,
                            last_error: r.get(5)?,
                            next_attempt_at: ts(r.get(6)?),
                        })
                    },
                )
                .optional()
                .sql()?;
            Ok(Some(OtpStatus {
                mail,
                last_request_at: ts(last_request_at),
                sends,
                locked_until: (locked_until > Timestamp::now().as_second()).then(|| ts(locked_until)),
            }))
        })
    }

    async fn set_otp_extra(
        &self,
        election: &ElectionId,
        extra: Duration,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let election = election.clone();
        let audit = audit.clone();
        let keys = self.keys.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let changed = tx
                .execute(
                    "UPDATE elections SET otp_extra_secs = ?2 WHERE id = ?1",
                    params![election.as_str(), extra.as_secs() as i64],
                )
                .sql()?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!("no election {election}")));
            }
            append_audit_in(&tx, &keys, &audit, now)?;
            tx.commit().sql()?;
            Ok(())
        })
        .await
    }
}
