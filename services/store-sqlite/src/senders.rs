//! Sender accounts on SQLite: `sender_accounts` (GCRA schedule, daily count,
//! quarantine) and `sender_slots` (SMTP sessions leased per OTP instance).

use std::time::Duration;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{TransactionBehavior, params};
use jiff::Timestamp;

use turnout_store::rules::{AccountState, SendPlanner, secs_to_timestamp, ts};
use turnout_store::{
    AccountLimits, AccountReport, MailOutcome, QuarantinePolicy, Reservation, SendGrant, SenderHealth, Senders,
    StoreError,
};

use crate::SqliteStore;
use crate::error::SqlResult;
use crate::outbox::write_outcomes;

#[async_trait]
impl Senders for SqliteStore {
    async fn reserve_sends(
        &self,
        holder: &str,
        accounts: &[AccountLimits],
        wanted: u32,
        horizon: Duration,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        let holder = holder.to_owned();
        let accounts = accounts.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let now_s = now.as_second();
            let today = now.strftime("%Y-%m-%d").to_string();
            let mut planner = SendPlanner::new(now, horizon);
            tx.execute("DELETE FROM sender_slots WHERE lease_until <= ?1", [now_s]).sql()?;
            for limits in &accounts {
                tx.execute("INSERT OR IGNORE INTO sender_accounts (name) VALUES (?1)", [&limits.name]).sql()?;
                let (tat, day, sent_today, quarantined_until): (f64, String, u32, i64) = tx.query_row(
                    "SELECT tat, day, sent_today, quarantined_until FROM sender_accounts WHERE name = ?1",
                    [&limits.name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                ).sql()?;
                let held_slots: u32 =
                    tx.query_row("SELECT COUNT(*) FROM sender_slots WHERE account = ?1", [&limits.name], |r| r.get(0)).sql()?;
                let sent_today = if day == today { sent_today } else { 0 };
                planner.consider(limits, AccountState { tat, sent_today, quarantined_until, held_slots });
            }
            let candidates = planner.plan(wanted);

            let mut grants = Vec::new();
            for c in candidates {
                let slots = c.free_slots.min(c.times.len() as u32);
                let mut taken = 0;
                let mut slot_no = 0;
                while taken < slots && slot_no < c.limits.max_concurrent {
                    taken += tx.execute(
                        "INSERT OR IGNORE INTO sender_slots (account, slot, holder, lease_until) VALUES (?1, ?2, ?3, ?4)",
                        params![c.limits.name, slot_no, holder, now_s + lease.as_secs() as i64],
                    ).sql()? as u32;
                    slot_no += 1;
                }
                tx.execute(
                    "UPDATE sender_accounts SET tat = ?2, day = ?3, sent_today = ?4 WHERE name = ?1",
                    params![c.limits.name, c.next, today, c.sent_today + c.times.len() as u32],
                ).sql()?;
                grants.push(SendGrant {
                    account: c.limits.name.clone(),
                    slots: taken,
                    send_at: c.times.iter().map(|f| secs_to_timestamp(*f, now)).collect(),
                    tat_after: c.next,
                });
            }
            tx.commit().sql()?;
            let next_capacity_at = if grants.is_empty() { planner.next_capacity_at(now) } else { None };
            Ok(Reservation { grants, next_capacity_at })
        })
        .await
    }

    async fn sender_health(&self) -> Result<Vec<SenderHealth>, StoreError> {
        self.run(|conn| {
            let today = Timestamp::now().strftime("%Y-%m-%d").to_string();
            let mut stmt = conn
                .prepare(
                    "SELECT name, quarantined_until, quarantine_reason, day, sent_today, sent_total, failed_total,
                        last_error, last_sent_at
                 FROM sender_accounts ORDER BY name",
                )
                .sql()?;
            let now_s = Timestamp::now().as_second();
            let rows = stmt
                .query_map([], |r| {
                    let quarantined_until: i64 = r.get(1)?;
                    let day: String = r.get(3)?;
                    Ok(SenderHealth {
                        account: r.get(0)?,
                        quarantined_until: (quarantined_until > now_s).then(|| ts(quarantined_until)),
                        quarantine_reason: r.get(2)?,
                        sent_today: if day == today { r.get(4)? } else { 0 },
                        sent_total: r.get::<_, i64>(5)?.max(0) as u64,
                        failed_total: r.get::<_, i64>(6)?.max(0) as u64,
                        last_error: r.get(7)?,
                        last_sent_at: r.get::<_, Option<i64>>(8)?.map(ts),
                    })
                })
                .sql()?;
            rows.collect::<Result<Vec<_>, _>>().sql()
        })
        .await
    }

    async fn finish_batch(
        &self,
        worker: &str,
        outcomes: &[MailOutcome],
        reports: &[AccountReport],
        policy: QuarantinePolicy,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        let outcomes = outcomes.to_vec();
        let reports = reports.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let now_s = now.as_second();
            write_outcomes(&tx, &worker, &outcomes, now)?;
            for r in &reports {
                // Unused sends go back to the schedule, but only if nobody reserved after us.
                let unused = r.unused.len() as i64;
                if unused > 0 {
                    tx.execute(
                        "UPDATE sender_accounts SET tat = MAX(?3, tat - ?4 * ?5) WHERE name = ?1 AND tat = ?2",
                        params![r.account, r.tat_after, now.as_duration().as_secs_f64(), unused, r.interval_secs],
                    )
                    .sql()?;
                    tx.execute(
                        "UPDATE sender_accounts SET sent_today = MAX(0, sent_today - ?2) WHERE name = ?1",
                        params![r.account, unused],
                    )
                    .sql()?;
                }
                tx.execute(
                    "UPDATE sender_accounts SET sent_total = sent_total + ?2, failed_total = failed_total + ?3,
                         last_error = COALESCE(?4, last_error),
                         last_sent_at = CASE WHEN ?2 > 0 THEN ?5 ELSE last_sent_at END,
                         strikes = CASE WHEN ?6 > 0 THEN strikes + ?6 WHEN ?2 > 0 THEN 0 ELSE strikes END
                     WHERE name = ?1",
                    params![r.account, r.sent, r.failed, r.last_error, now_s, r.strikes],
                )
                .sql()?;
                let strikes: u32 = tx
                    .query_row("SELECT strikes FROM sender_accounts WHERE name = ?1", [&r.account], |row| row.get(0))
                    .sql()?;
                let reason = r.quarantine.clone().or_else(|| {
                    (strikes >= policy.strike_limit).then(|| format!("{strikes} throttling answers in a row"))
                });
                if let Some(reason) = reason {
                    tx.execute(
                        "UPDATE sender_accounts SET quarantined_until = ?2, quarantine_reason = ?3, strikes = 0
                         WHERE name = ?1",
                        params![r.account, now_s + policy.period.as_secs() as i64, reason],
                    )
                    .sql()?;
                }
            }
            tx.execute("DELETE FROM sender_slots WHERE holder = ?1", [&worker]).sql()?;
            tx.commit().sql()?;
            Ok(())
        })
        .await
    }
}
