//! The outbox worker: claims due messages in batches (leases, so several OTP instances
//! never send the same message at once and a crash mid-send loses nothing), derives each
//! code, sends it with lettre through a sender account, and records the outcomes in one
//! batched store call. Requests never wait for SMTP; they only enqueue and wake us.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::future::join_all;
use jiff::Timestamp;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::sync::{Notify, Semaphore, watch};
use turnout_core::Settings;
use turnout_core::config::{SenderAccount, SmtpTls};
use turnout_core::store::{Election, MailOutcome, MailResult, OutboxMail, Store};

use crate::codes::CodeMaker;

const BATCH: u32 = 32;
/// A claimed message comes back to the queue if not finished within this time.
const LEASE: Duration = Duration::from_secs(60);
const IDLE_POLL: Duration = Duration::from_millis(250);
/// After this many tries a message is failed and the voter told.
const MAX_ATTEMPTS: u32 = 8;

struct Sender {
    account: SenderAccount,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// lettre's pool size does not bound concurrent sessions; this does.
    permits: Semaphore,
}

pub struct Mailer {
    store: Arc<dyn Store>,
    codes: Arc<CodeMaker>,
    senders: Vec<Sender>,
    next_sender: AtomicUsize,
    worker_id: String,
    send_timeout: Duration,
    validity: Duration,
    wake: Arc<Notify>,
}

impl Mailer {
    pub fn new(
        settings: &Settings,
        store: Arc<dyn Store>,
        codes: Arc<CodeMaker>,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let senders = settings
            .mail
            .accounts
            .iter()
            .map(|account| {
                let transport = transport_for(account, settings.mail.send_timeout)?;
                Ok(Sender {
                    account: account.clone(),
                    transport,
                    permits: Semaphore::new(account.max_concurrent as usize),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if senders.is_empty() {
            anyhow::bail!("no sender accounts: set TURNOUT_SMTP_ACCOUNTS");
        }
        Ok(Self {
            store,
            codes,
            senders,
            next_sender: AtomicUsize::new(0),
            worker_id: format!("otp-{}", uuid_like()),
            send_timeout: settings.mail.send_timeout,
            validity: settings.otp.validity,
            wake,
        })
    }

    /// The addresses codes may come from, for "check your inbox for mail from ...".
    pub fn from_addresses(&self) -> Vec<String> {
        self.senders.iter().map(|s| s.account.from.clone()).collect()
    }

    /// Drains the outbox until `shutdown` turns true; finishes the batch in hand first.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(event = "mailer_started", worker = %self.worker_id, senders = self.senders.len());
        while !*shutdown.borrow() {
            match self.drain_once().await {
                Ok(0) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(event = "mailer_error", error = format!("{e:#}"));
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        tracing::info!(event = "mailer_stopped", worker = %self.worker_id);
    }

    /// Claims one batch, sends it, records the outcomes. Returns how many were claimed.
    pub async fn drain_once(&self) -> anyhow::Result<usize> {
        let batch =
            self.store.claim_mail(&self.worker_id, BATCH, LEASE, Timestamp::now()).await.context("claiming mail")?;
        if batch.is_empty() {
            return Ok(0);
        }
        // One read per election in the batch, not one per message.
        let mut elections = HashMap::new();
        for mail in &batch {
            if !elections.contains_key(&mail.election) {
                let election = self.store.election(&mail.election).await.context("loading the election")?;
                elections.insert(mail.election.clone(), election);
            }
        }
        let outcomes = join_all(
            batch.iter().map(|mail| self.deliver(mail, elections.get(&mail.election).and_then(Option::as_ref))),
        )
        .await;
        self.store
            .finish_mail(&self.worker_id, &outcomes, Timestamp::now())
            .await
            .context("recording mail outcomes")?;
        Ok(batch.len())
    }

    async fn deliver(&self, mail: &OutboxMail, election: Option<&Election>) -> MailOutcome {
        let index = self.next_sender.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        let sender = &self.senders[index];
        let account = sender.account.name.clone();
        let result = match self.compose(mail, election, &sender.account) {
            Err(e) => MailResult::Failed { account, error: format!("{e:#}") },
            Ok(message) => {
                let _permit = sender.permits.acquire().await.expect("semaphore never closed");
                let started = std::time::Instant::now();
                let sent = tokio::time::timeout(self.send_timeout, sender.transport.send(message)).await;
                let latency_ms = started.elapsed().as_millis() as u64;
                match sent {
                    Ok(Ok(_)) => {
                        tracing::info!(event = "mail_sent", account, latency_ms, attempt = mail.attempts);
                        MailResult::Sent { account, from: sender.account.from.clone() }
                    }
                    Ok(Err(e)) if e.is_permanent() => {
                        tracing::warn!(event = "mail_failed", account, error = %e);
                        MailResult::Failed { account, error: e.to_string() }
                    }
                    Ok(Err(e)) => self.retry_later(mail, account, e.to_string()),
                    Err(_) => {
                        self.retry_later(mail, account, format!("no answer within {}s", self.send_timeout.as_secs()))
                    }
                }
            }
        };
        MailOutcome { id: mail.id, result }
    }

    fn retry_later(&self, mail: &OutboxMail, account: String, error: String) -> MailResult {
        if mail.attempts >= MAX_ATTEMPTS {
            tracing::warn!(event = "mail_failed", account, error, attempts = mail.attempts);
            return MailResult::Failed { account, error: format!("gave up after {} tries: {error}", mail.attempts) };
        }
        let backoff = Duration::from_secs((5u64 << mail.attempts.min(5)).min(120));
        tracing::info!(event = "mail_deferred", account, error, retry_in_s = backoff.as_secs());
        MailResult::Deferred { account, error, retry_at: Timestamp::now() + backoff }
    }

    fn compose(
        &self,
        mail: &OutboxMail,
        election: Option<&Election>,
        account: &SenderAccount,
    ) -> anyhow::Result<Message> {
        let election = election.context("the election no longer exists")?;
        let code = self.codes.code(&mail.election, &mail.voter, mail.generation, mail.issued_at);
        let valid_until = election.schedule.local(mail.issued_at + self.validity);
        let body = format!(
            "Your code to vote in \"{title}\" is:\n\n    {code}\n\n\
             It works until {valid_until}. If you asked for a code more than once, this is the same code.\n\n\
             If you did not ask for this code, you can ignore this email.\n\n-- Turnout, for the election office\n",
            title = election.title,
        );
        let from: Mailbox = account.from.parse().context("sender address")?;
        let to: Mailbox = mail.to.as_str().parse().context("recipient address")?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(format!("Your voting code for {}", election.title))
            .body(body)
            .context("building the message")
    }
}

fn transport_for(account: &SenderAccount, timeout: Duration) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    if account.tls != SmtpTls::None {
        anyhow::bail!(
            "sender account {}: TLS modes are not built into this version; use a local relay or tls = \"none\" on loopback",
            account.name
        );
    }
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&account.host)
        .port(account.port)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&account.username, &account.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
    }
    Ok(builder.build())
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
