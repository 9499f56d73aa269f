//! The outbox worker. Each round:
//!
//! 1. claims a batch of due messages (leases: two instances never send the same message
//!    at once, and a crash puts the message back when its lease ends);
//! 2. fails, without sending, any whose code expired while it waited;
//! 3. reserves sends on healthy accounts from the store, which spaces them by each
//!    account's rate, keeps its daily cap and leases its session slots, for every OTP
//!    instance at once;
//! 4. sends each message at its reserved time through its account, at most `slots` at
//!    once per account (lettre's pool does not bound sessions; a semaphore does), each
//!    send inside the timeout;
//! 5. records every outcome and every account's health in one store call.
//!
//! A round that could not place all its mail (no account had capacity, or one was
//! quarantined mid-round) makes the next round read the accounts' health first: while
//! every account is quarantined or spent for the day it claims nothing, so no message is
//! shown "sending" when nothing can send it.
//!
//! Requests never wait on any of this: they enqueue and wake the worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures_util::future::join_all;
use jiff::Timestamp;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::sync::{Notify, Semaphore, watch};
use turnout_core::Settings;
use turnout_core::config::{SenderAccount, SmtpTls};
use turnout_core::domain::ElectionId;
use turnout_core::store::{
    AccountLimits, AccountReport, Election, Elections, MailOutcome, MailResult, NoticeMail, Notices, Outbox,
    OutboxMail, QuarantinePolicy, SendGrant, Senders, Store,
};

use crate::codes::CodeMaker;
use crate::metrics;
use crate::smtp_outcome::{Verdict, classify, from_lettre};

/// Notices (staff mail, `turnout_store::notices`) one round may send, and only a round
/// that found no code due: a code that arrives meanwhile waits for one send at most.
const NOTICE_BATCH: u32 = 1;
/// How far ahead one round reserves sends.
const HORIZON: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Outcomes finished within this long of each other are recorded together.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How soon to look again at accounts spent for the day (they come back at midnight UTC;
/// the run loop looks at least this often anyway).
const SPENT_RECHECK: Duration = Duration::from_secs(5);

/// Prefixes on a failed message's `last_error`, so the voter's page can say what to do.
pub const FAILED_BAD_ADDRESS: &str = "bad_address";
pub const FAILED_EXPIRED: &str = "expired";
pub const FAILED_REFUSED: &str = "refused";

struct Account {
    limits: AccountLimits,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

/// What sending asks of the store: the outbox, the notices, the sender accounts, and the
/// elections the mail is for (a code's validity). `Mailer` can call nothing else.
pub trait MailStore: Outbox + Notices + Senders + Elections + 'static {}

impl<T: Outbox + Notices + Senders + Elections + 'static + ?Sized> MailStore for T {}

pub struct Mailer<S: MailStore + ?Sized = dyn Store> {
    store: Arc<S>,
    codes: Arc<CodeMaker>,
    accounts: Vec<Account>,
    /// Rotates which account is asked first, so load spreads over the pool.
    rotation: AtomicUsize,
    worker_id: String,
    send_timeout: Duration,
    validity: Duration,
    retry_base: Duration,
    quarantine: QuarantinePolicy,
    /// Claimed messages stay ours this long: the horizon, a full send, and margin.
    lease: Duration,
    /// Most messages one round can place: what the pool sends within the horizon.
    batch_limit: u32,
    wake: Arc<Notify>,
    /// The last round could not place all its mail: check capacity before claiming.
    short_of_capacity: AtomicBool,
}

impl<S: MailStore + ?Sized> Mailer<S> {
    pub fn new(settings: &Settings, store: Arc<S>, codes: Arc<CodeMaker>, wake: Arc<Notify>) -> anyhow::Result<Self> {
        let timeout = settings.mail.send_timeout;
        let accounts = settings
            .mail
            .accounts
            .iter()
            .map(|a| {
                Ok(Account {
                    limits: AccountLimits {
                        name: a.name.clone(),
                        per_minute: a.per_minute,
                        max_concurrent: a.max_concurrent,
                        daily_cap: a.daily_cap,
                    },
                    from: a.from.parse().with_context(|| format!("sender account {}: from address", a.name))?,
                    transport: transport_for(a, timeout)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if accounts.is_empty() {
            anyhow::bail!("no sender accounts: set TURNOUT_SMTP_ACCOUNTS");
        }
        let batch_limit = accounts
            .iter()
            .map(|a| (HORIZON.as_secs_f64() / a.limits.interval_secs()).floor() as u32 + 1)
            .sum::<u32>()
            .clamp(1, 500);
        Ok(Self {
            store,
            codes,
            accounts,
            rotation: AtomicUsize::new(0),
            worker_id: format!("otp-{}", random_id()),
            send_timeout: timeout,
            validity: settings.otp.validity,
            retry_base: settings.mail.retry_base,
            quarantine: QuarantinePolicy { period: settings.mail.quarantine, strike_limit: settings.mail.strike_limit },
            lease: HORIZON + timeout + Duration::from_secs(10),
            batch_limit,
            wake,
            short_of_capacity: AtomicBool::new(false),
        })
    }

    /// The addresses codes may come from, for "check your inbox for mail from ...".
    pub fn from_addresses(&self) -> Vec<String> {
        self.accounts.iter().map(|a| a.from.email.to_string()).collect()
    }

    /// Drains the outbox until `shutdown` turns true; finishes the batch in hand first.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(event = "mailer_started", worker = %self.worker_id, accounts = self.accounts.len());
        while !*shutdown.borrow() {
            let pause = match self.drain_once().await {
                // Only a round that settled something goes straight on: one whose messages
                // all went back for want of capacity (every account quarantined, say) would
                // otherwise claim them again at once, in a loop, and show them "sending".
                Ok(Round { settled, .. }) if settled > 0 => continue,
                Ok(Round { next_capacity_at: Some(at), .. }) => {
                    let until = at.duration_since(Timestamp::now());
                    Duration::try_from(until)
                        .unwrap_or_default()
                        .clamp(Duration::from_millis(50), Duration::from_secs(5))
                }
                Ok(_) => IDLE_POLL,
                Err(e) => {
                    tracing::warn!(event = "mailer_error", error = format!("{e:#}"));
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(event = "mailer_stopped", worker = %self.worker_id);
    }

    /// One round: claim, reserve, send, record.
    pub async fn drain_once(&self) -> anyhow::Result<Round> {
        let now = Timestamp::now();
        if self.short_of_capacity.load(Ordering::Relaxed) {
            if let Some(at) = self.none_can_send_until(now).await? {
                return Ok(Round { settled: 0, next_capacity_at: Some(at) });
            }
            self.short_of_capacity.store(false, Ordering::Relaxed);
        }
        let batch =
            self.store.claim_mail(&self.worker_id, self.batch_limit, self.lease, now).await.context("claiming mail")?;
        if batch.is_empty() {
            return self.notice_round(now).await;
        }
        let elections = self.elections_of(&batch).await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut live = Vec::with_capacity(batch.len());
        for mail in &batch {
            match elections.get(&mail.election).and_then(Option::as_ref) {
                None => outcomes.push(failed(mail.id, FAILED_REFUSED, "the election no longer exists")),
                Some(e) if now > mail.issued_at + e.code_acceptance(self.validity) => {
                    outcomes.push(failed(mail.id, FAILED_EXPIRED, "the code expired before it could be delivered"))
                }
                Some(e) => live.push((mail, e)),
            }
        }

        let order = self.preference_order();
        let limits: Vec<AccountLimits> = order.iter().map(|a| a.limits.clone()).collect();
        let reservation = self
            .store
            .reserve_sends(&self.worker_id, &limits, live.len() as u32, HORIZON, self.lease, now)
            .await
            .context("reserving sends")?;
        let plan = assign(&live, &reservation.grants);
        let mut short = plan.iter().any(|step| matches!(step, Step::NoCapacity { .. }));

        let batches = grant_runs(&order, &reservation.grants);
        // Outcomes are recorded as they come, coalesced over a few milliseconds: a crash
        // then re-sends only what was in flight, not the whole round.
        let settled = AtomicUsize::new(outcomes.len());
        let pending = Mutex::new(outcomes);
        let produced = Notify::new();
        let done = AtomicBool::new(false);
        produced.notify_one();
        let sends = async {
            join_all(plan.iter().map(|step| async {
                let outcome = match step {
                    Step::Send { mail, election, grant, slot } => {
                        self.send_one(mail, election, &batches[*grant], *slot).await
                    }
                    Step::NoCapacity { mail } => MailOutcome { id: mail.id, result: MailResult::Released },
                };
                if !matches!(outcome.result, MailResult::Released) {
                    settled.fetch_add(1, Ordering::Relaxed);
                }
                pending.lock().expect("not poisoned").push(outcome);
                produced.notify_one();
            }))
            .await;
            done.store(true, Ordering::Release);
            produced.notify_one();
        };
        let flusher = async {
            loop {
                produced.notified().await;
                tokio::time::sleep(FLUSH_EVERY).await;
                let finished = done.load(Ordering::Acquire);
                let ready = std::mem::take(&mut *pending.lock().expect("not poisoned"));
                if !finished && !ready.is_empty() {
                    if let Err(e) = self.store.record_outcomes(&self.worker_id, &ready, Timestamp::now()).await {
                        tracing::warn!(event = "mailer_error", error = %e, "recording outcomes; retried at the end of the round");
                        pending.lock().expect("not poisoned").extend(ready);
                    }
                } else {
                    pending.lock().expect("not poisoned").extend(ready);
                }
                if finished {
                    break;
                }
            }
        };
        tokio::join!(sends, flusher);
        let outcomes = pending.into_inner().expect("not poisoned");

        let reports = reports_of(batches);
        short |= reports.iter().any(|r| r.quarantine.is_some());
        if short {
            self.short_of_capacity.store(true, Ordering::Relaxed);
        }
        self.store
            .finish_batch(&self.worker_id, &outcomes, &reports, self.quarantine, Timestamp::now())
            .await
            .context("recording the batch")?;
        Ok(Round { settled: settled.into_inner(), next_capacity_at: reservation.next_capacity_at })
    }

    /// A round with no code due: the oldest due notice, on the pool's spare capacity.
    async fn notice_round(&self, now: Timestamp) -> anyhow::Result<Round> {
        let notices = self
            .store
            .claim_notices(&self.worker_id, NOTICE_BATCH, self.lease, now)
            .await
            .context("claiming notices")?;
        if notices.is_empty() {
            return Ok(Round::default());
        }
        let order = self.preference_order();
        let limits: Vec<AccountLimits> = order.iter().map(|a| a.limits.clone()).collect();
        let reservation = self
            .store
            .reserve_sends(&self.worker_id, &limits, notices.len() as u32, HORIZON, self.lease, now)
            .await
            .context("reserving sends")?;
        let batches = grant_runs(&order, &reservation.grants);
        let places = place(notices.iter().map(|n| n.last_account.as_deref()), &reservation.grants);
        let mut outcomes = Vec::with_capacity(notices.len());
        for (notice, place) in notices.iter().zip(places) {
            let outcome = match place {
                Some((grant, slot)) => {
                    let letter = Letter {
                        id: notice.id,
                        kind: "notice",
                        attempts: notice.attempts,
                        queued_at: notice.queued_at,
                    };
                    self.send_letter(&letter, |from| compose_notice(notice, from), &batches[grant], slot).await
                }
                None => MailOutcome { id: notice.id, result: MailResult::Released },
            };
            outcomes.push(outcome);
        }
        let settled = outcomes.iter().filter(|o| !matches!(o.result, MailResult::Released)).count();
        let reports = reports_of(batches);
        if settled < outcomes.len() || reports.iter().any(|r| r.quarantine.is_some()) {
            self.short_of_capacity.store(true, Ordering::Relaxed);
        }
        self.store
            .record_notice_outcomes(&self.worker_id, &outcomes, Timestamp::now())
            .await
            .context("recording notices")?;
        self.store
            .finish_batch(&self.worker_id, &[], &reports, self.quarantine, Timestamp::now())
            .await
            .context("recording the accounts")?;
        Ok(Round { settled, next_capacity_at: reservation.next_capacity_at })
    }

    /// When none of this worker's accounts can send (each quarantined, or at its daily
    /// cap): the earliest moment one may again. `None` while one can.
    async fn none_can_send_until(&self, now: Timestamp) -> anyhow::Result<Option<Timestamp>> {
        let health = self.store.sender_health().await.context("reading the accounts' health")?;
        let mut earliest = now + SPENT_RECHECK;
        for account in &self.accounts {
            let state = health.iter().find(|h| h.account == account.limits.name);
            let quarantined = state.and_then(|h| h.quarantined_until).filter(|until| *until > now);
            let spent = state.is_some_and(|h| h.sent_today >= account.limits.daily_cap);
            match quarantined {
                Some(until) => earliest = earliest.min(until),
                None if !spent => return Ok(None),
                None => {}
            }
        }
        Ok(Some(earliest))
    }

    async fn elections_of(&self, batch: &[OutboxMail]) -> anyhow::Result<HashMap<ElectionId, Option<Election>>> {
        let mut elections = HashMap::new();
        for mail in batch {
            if !elections.contains_key(&mail.election) {
                let election = self.store.election(&mail.election).await.context("loading the election")?;
                elections.insert(mail.election.clone(), election);
            }
        }
        Ok(elections)
    }

    fn preference_order(&self) -> Vec<&Account> {
        let start = self.rotation.fetch_add(1, Ordering::Relaxed);
        let n = self.accounts.len();
        (0..n).map(|i| &self.accounts[(start + i) % n]).collect()
    }

    async fn send_one(&self, mail: &OutboxMail, election: &Election, run: &GrantRun<'_>, slot: usize) -> MailOutcome {
        let letter = Letter { id: mail.id, kind: "code", attempts: mail.attempts, queued_at: mail.queued_at };
        self.send_letter(&letter, |from| self.compose(mail, election, from), run, slot).await
    }

    /// Sends one message (a code or a notice) at its reserved time through its account,
    /// and turns what the server said into the message's outcome and the account's report.
    async fn send_letter(
        &self,
        mail: &Letter,
        compose: impl FnOnce(&Mailbox) -> anyhow::Result<Message>,
        run: &GrantRun<'_>,
        slot: usize,
    ) -> MailOutcome {
        let at = run.grant.send_at[slot];
        if let Ok(wait) = Duration::try_from(at.duration_since(Timestamp::now())) {
            tokio::time::sleep(wait).await;
        }
        let _permit = run.permits.acquire().await.expect("never closed");
        // The account was quarantined while this message waited: leave it for another.
        if run.stopped.load(Ordering::Acquire) {
            return MailOutcome { id: mail.id, result: MailResult::Released };
        }
        run.used.lock().expect("not poisoned")[slot] = true;
        let account = &run.account.limits.name;
        let message = match compose(&run.account.from) {
            Ok(m) => m,
            Err(e) => return failed(mail.id, FAILED_REFUSED, &format!("{e:#}")),
        };
        let started = std::time::Instant::now();
        let attempt = match tokio::time::timeout(self.send_timeout, run.account.transport.send(message)).await {
            Ok(result) => from_lettre(result.map(|_| ())),
            Err(_) => crate::smtp_outcome::Attempt::Timeout,
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        let verdict = classify(&attempt);
        let mut report = run.report.lock().expect("not poisoned");
        let result = match verdict {
            Verdict::Sent => {
                report.sent += 1;
                metrics::mail_sent(account);
                if mail.kind == "code" {
                    // The delivery-time histogram is the codes' (what the voter waits for).
                    metrics::queued_to_sent(account, (Timestamp::now() - mail.queued_at).get_seconds().max(0) as f64);
                }
                tracing::info!(event = "mail_sent", kind = mail.kind, account, latency_ms, attempt = mail.attempts + 1);
                MailResult::Sent { account: account.clone(), from: run.account.from.email.to_string() }
            }
            Verdict::Retry { reason } => {
                report.last_error = Some(reason.clone());
                self.deferred(mail, account, reason, false)
            }
            Verdict::RetryWithStrike { reason } => {
                report.strikes += 1;
                report.last_error = Some(reason.clone());
                self.deferred(mail, account, reason, false)
            }
            Verdict::QuarantineAccount { reason } => {
                run.stopped.store(true, Ordering::Release);
                report.failed += 1;
                report.quarantine = Some(reason.clone());
                report.last_error = Some(reason.clone());
                metrics::account_quarantined(account);
                tracing::warn!(
                    event = "account_quarantined",
                    account,
                    reason,
                    period_s = self.quarantine.period.as_secs()
                );
                // Not this message's fault: straight to another account.
                self.deferred(mail, account, reason, true)
            }
            Verdict::BadRecipient { reason } => {
                report.failed += 1;
                metrics::mail_failed(account, "bad_address");
                tracing::warn!(event = "mail_failed", account, reason);
                MailResult::Failed { account: account.clone(), error: format!("{FAILED_BAD_ADDRESS}: {reason}") }
            }
            Verdict::FailMessage { reason } => {
                report.failed += 1;
                metrics::mail_failed(account, "refused");
                tracing::warn!(event = "mail_failed", account, reason);
                MailResult::Failed { account: account.clone(), error: format!("{FAILED_REFUSED}: {reason}") }
            }
        };
        MailOutcome { id: mail.id, result }
    }

    fn deferred(&self, mail: &Letter, account: &str, error: String, at_once: bool) -> MailResult {
        let backoff = if at_once {
            Duration::ZERO
        } else {
            (self.retry_base * 2u32.pow(mail.attempts.min(6))).min(Duration::from_secs(120))
        };
        metrics::mail_deferred(account);
        tracing::info!(event = "mail_deferred", account, error, retry_in_s = backoff.as_secs());
        MailResult::Deferred { account: account.to_owned(), error, retry_at: Timestamp::now() + backoff }
    }

    fn compose(&self, mail: &OutboxMail, election: &Election, from: &Mailbox) -> anyhow::Result<Message> {
        let code = self.codes.code(&mail.election, &mail.voter, mail.generation, mail.issued_at);
        let valid_until = election.schedule.local(mail.issued_at + election.code_acceptance(self.validity));
        let body = format!(
            "Your code to vote in \"{title}\" is:\n\n    {code}\n\n\
             It works until {valid_until}. If you asked for a code more than once, this is the same code.\n\n\
             If you did not ask for this code, you can ignore this email.\n\n-- Turnout, for the election office\n",
            title = election.title,
        );
        let to: Mailbox = mail.to.as_str().parse().context("recipient address")?;
        Message::builder()
            .from(from.clone())
            .to(to)
            .subject(format!("Your voting code for {}", election.title))
            .body(body)
            .context("building the message")
    }
}

/// A notice as it was queued: its own subject and plain-text body.
fn compose_notice(notice: &NoticeMail, from: &Mailbox) -> anyhow::Result<Message> {
    let to: Mailbox = notice.to.as_str().parse().context("recipient address")?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(notice.subject.clone())
        .body(notice.body.clone())
        .context("building the message")
}

/// What `send_letter` needs of a code's or a notice's outbox row.
struct Letter {
    id: uuid::Uuid,
    /// `code` or `notice`, for the log.
    kind: &'static str,
    attempts: u32,
    queued_at: Timestamp,
}

/// Each granted account's share of a round, ready to send.
fn grant_runs<'a>(order: &[&'a Account], grants: &[SendGrant]) -> Vec<GrantRun<'a>> {
    grants
        .iter()
        .map(|g| {
            let account = *order.iter().find(|a| a.limits.name == g.account).expect("granted accounts are ours");
            GrantRun {
                grant: g.clone(),
                account,
                permits: Semaphore::new(g.slots.max(1) as usize),
                stopped: AtomicBool::new(false),
                report: Mutex::new(AccountReport::for_grant(g, &account.limits)),
                used: Mutex::new(vec![false; g.send_at.len()]),
            }
        })
        .collect()
}

/// What each account did with its grant, its unused sends given back.
fn reports_of(runs: Vec<GrantRun<'_>>) -> Vec<AccountReport> {
    runs.into_iter()
        .map(|run| {
            let used = run.used.into_inner().expect("no panics while holding the lock");
            let mut report = run.report.into_inner().expect("no panics while holding the lock");
            report.unused = run.grant.send_at.iter().zip(used).filter(|(_, u)| !u).map(|(t, _)| *t).collect();
            report
        })
        .collect()
}

/// What one round did.
#[derive(Debug, Default)]
pub struct Round {
    /// Messages that left the round sent, deferred or failed; the rest went back
    /// unsent, for want of capacity.
    pub settled: usize,
    /// Set when no account had capacity: sleep until then.
    pub next_capacity_at: Option<Timestamp>,
}

/// One account's share of a round.
struct GrantRun<'a> {
    grant: SendGrant,
    account: &'a Account,
    permits: Semaphore,
    /// Set when the account is quarantined mid-round: its remaining sends are released.
    stopped: AtomicBool,
    report: Mutex<AccountReport>,
    used: Mutex<Vec<bool>>,
}

enum Step<'a> {
    Send { mail: &'a OutboxMail, election: &'a Election, grant: usize, slot: usize },
    NoCapacity { mail: &'a OutboxMail },
}

/// Places each message on a granted send, preferring an account other than the one its
/// last try failed on.
fn assign<'a>(live: &[(&'a OutboxMail, &'a Election)], grants: &[SendGrant]) -> Vec<Step<'a>> {
    let places = place(live.iter().map(|(mail, _)| mail.last_account.as_deref()), grants);
    live.iter()
        .zip(places)
        .map(|((mail, election), place)| match place {
            Some((grant, slot)) => Step::Send { mail, election, grant, slot },
            None => Step::NoCapacity { mail },
        })
        .collect()
}

/// For each message (by the account its last try used), a granted (account, slot), or
/// none when the grants are used up.
fn place<'a>(
    last_accounts: impl Iterator<Item = Option<&'a str>>,
    grants: &[SendGrant],
) -> Vec<Option<(usize, usize)>> {
    let mut next_slot = vec![0usize; grants.len()];
    last_accounts
        .map(|last| {
            let preferred = (0..grants.len())
                .filter(|g| next_slot[*g] < grants[*g].send_at.len())
                .min_by_key(|g| (last == Some(grants[*g].account.as_str()), next_slot[*g]));
            preferred.map(|g| {
                let slot = next_slot[g];
                next_slot[g] += 1;
                (g, slot)
            })
        })
        .collect()
}

fn failed(id: uuid::Uuid, kind: &str, reason: &str) -> MailOutcome {
    tracing::warn!(event = "mail_failed", reason = %format!("{kind}: {reason}"));
    MailOutcome { id, result: MailResult::Failed { account: String::new(), error: format!("{kind}: {reason}") } }
}

fn transport_for(account: &SenderAccount, timeout: Duration) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let tls = match account.tls {
        SmtpTls::None => Tls::None,
        mode => {
            let mut params = TlsParameters::builder(account.host.clone());
            if let Some(path) = &account.ca_cert {
                let pem =
                    std::fs::read(path).with_context(|| format!("sender account {}: reading {path}", account.name))?;
                params =
                    params.add_root_certificate(Certificate::from_pem(&pem).context("parsing the CA certificate")?);
            }
            let params = params.build_rustls().context("TLS parameters")?;
            if mode == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&account.host)
        .port(account.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&account.username, &account.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
    }
    Ok(builder.build())
}

fn random_id() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS random source");
    turnout_core::keys::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_avoid_the_account_that_just_failed() {
        let grant = |name: &str, n: usize| SendGrant {
            account: name.into(),
            slots: 1,
            send_at: vec![Timestamp::now(); n],
            tat_after: 0.0,
        };
        let grants = vec![grant("a", 2), grant("b", 2)];
        let mk = |last: Option<&str>| OutboxMail {
            id: uuid::Uuid::new_v4(),
            election: ElectionId::parse("demo").unwrap(),
            voter: turnout_core::domain::Username::parse("student00001").unwrap(),
            to: turnout_core::domain::VoterEmail::parse("s@x.test").unwrap(),
            generation: 1,
            issued_at: Timestamp::now(),
            attempts: 1,
            last_account: last.map(str::to_owned),
            queued_at: Timestamp::now(),
        };
        let mails = [mk(Some("a")), mk(Some("a")), mk(Some("b")), mk(None), mk(None)];
        let election = test_election();
        let live: Vec<_> = mails.iter().map(|m| (m, &election)).collect();
        let plan = assign(&live, &grants);
        let accounts: Vec<Option<&str>> = plan
            .iter()
            .map(|s| match s {
                Step::Send { grant, .. } => Some(grants[*grant].account.as_str()),
                Step::NoCapacity { .. } => None,
            })
            .collect();
        assert_eq!(accounts, [Some("b"), Some("b"), Some("a"), Some("a"), None]);
    }

    fn test_election() -> Election {
        Election {
            id: ElectionId::parse("demo").unwrap(),
            title: "t".into(),
            schedule: turnout_core::schedule::Schedule {
                opens_at: Timestamp::now(),
                closes_at: Timestamp::now(),
                grace: Duration::ZERO,
                time_zone: "UTC".into(),
            },
            contests: vec![],
            otp_extra: Duration::ZERO,
            eligibility: Default::default(),
            quorum_pct: 0.0,
            otp_validity: None,
            shuffle_candidates: false,
            nominations: None,
        }
    }
}
