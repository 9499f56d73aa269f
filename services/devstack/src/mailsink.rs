//! The local mail sink (`scripts/mailsink.py`, real SMTP with AUTH via aiosmtpd) and a
//! client for its HTTP API: read the newest message to an address, count messages.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

use crate::process::{Supervised, free_port, require};

pub const SINK_USER: &str = "turnout";
pub const SINK_PASSWORD: &str = "sink-secret";

#[derive(Debug, Clone, Deserialize)]
pub struct SinkMessage {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub received_at: f64,
    pub auth_user: Option<String>,
}

impl SinkMessage {
    /// The 6-digit code in a Turnout code email.
    pub fn code(&self) -> Option<String> {
        self.body
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
    }
}

/// One sender account as the sink sees it: its AUTH login and the limits it enforces.
#[derive(Debug, Clone, Default)]
pub struct SinkAccount {
    pub name: String,
    pub rate: Option<u32>,
    pub concurrency: Option<u32>,
    pub daily: Option<u32>,
    pub delay_secs: Option<f64>,
}

impl SinkAccount {
    pub fn unlimited(name: &str) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    fn spec(&self) -> String {
        let mut spec = format!("{}:{SINK_PASSWORD}", self.name);
        for (key, value) in [("rate", self.rate), ("concurrency", self.concurrency), ("daily", self.daily)] {
            if let Some(v) = value {
                spec.push_str(&format!(":{key}={v}"));
            }
        }
        if let Some(d) = self.delay_secs {
            spec.push_str(&format!(":delay={d}"));
        }
        spec
    }
}

/// What the sink recorded for one account.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountRecord {
    pub name: String,
    pub blocked: bool,
    pub peak_concurrency: u32,
    pub accepted: Vec<f64>,
    pub refused: std::collections::HashMap<String, u64>,
}

impl AccountRecord {
    /// The most messages accepted in any 60-second window.
    pub fn max_per_minute(&self) -> usize {
        let mut times = self.accepted.clone();
        times.sort_by(f64::total_cmp);
        (0..times.len()).map(|i| times[i..].iter().take_while(|t| **t < times[i] + 60.0).count()).max().unwrap_or(0)
    }
}

/// How Turnout should use one sink account (`TURNOUT_SMTP_ACCOUNTS`).
#[derive(Debug, Clone)]
pub struct TurnoutAccount {
    pub name: String,
    pub per_minute: u32,
    pub max_concurrent: u32,
    pub daily_cap: u32,
}

pub struct MailSink {
    pub smtp_port: u16,
    pub http_port: u16,
    _process: Supervised,
    http: reqwest::Client,
}

impl MailSink {
    /// A sink with three unlimited accounts (`elections-1..3`) and the `turnout` login.
    pub fn start(dir: &Path, repo_root: &Path) -> anyhow::Result<Self> {
        let accounts: Vec<SinkAccount> = (1..=3).map(|i| SinkAccount::unlimited(&format!("elections-{i}"))).collect();
        Self::start_with(dir, repo_root, &accounts)
    }

    /// A sink enforcing each account's limits, like a throttling provider.
    pub fn start_with(dir: &Path, repo_root: &Path, accounts: &[SinkAccount]) -> anyhow::Result<Self> {
        Self::launch(dir, repo_root, accounts, None)
    }

    /// A sink that offers STARTTLS with this certificate and key and refuses mail without it.
    pub fn start_tls(
        dir: &Path,
        repo_root: &Path,
        accounts: &[SinkAccount],
        cert: &Path,
        key: &Path,
    ) -> anyhow::Result<Self> {
        Self::launch(dir, repo_root, accounts, Some((cert, key)))
    }

    fn launch(
        dir: &Path,
        repo_root: &Path,
        accounts: &[SinkAccount],
        tls: Option<(&Path, &Path)>,
    ) -> anyhow::Result<Self> {
        require("/usr/bin/python3", "python3")?;
        let probe = Command::new("/usr/bin/python3").args(["-c", "import aiosmtpd"]).output()?;
        if !probe.status.success() {
            anyhow::bail!("aiosmtpd is missing: install it with `apt-get install -y python3-aiosmtpd`");
        }
        let (smtp_port, http_port) = (free_port(), free_port());
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(repo_root.join("scripts/mailsink.py"))
            .args(["--smtp-port", &smtp_port.to_string(), "--http-port", &http_port.to_string()])
            .args(["--user", SINK_USER, "--password", SINK_PASSWORD]);
        for account in accounts {
            cmd.arg("--account").arg(account.spec());
        }
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let log = dir.join("mailsink.log");
        let mut process = Supervised::spawn("mailsink", cmd, &log)?;
        for port in [smtp_port, http_port] {
            process.wait_listening(port, &log, Duration::from_secs(15))?;
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        Ok(Self { smtp_port, http_port, _process: process, http })
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `TURNOUT_SMTP_ACCOUNTS` for `n` generous accounts `elections-1..n` on this sink.
    pub fn accounts_json(&self, n: u32) -> String {
        let accounts: Vec<TurnoutAccount> = (1..=n)
            .map(|i| TurnoutAccount {
                name: format!("elections-{i}"),
                per_minute: 600,
                max_concurrent: 4,
                daily_cap: 100_000,
            })
            .collect();
        self.turnout_accounts_json(&accounts)
    }

    /// `TURNOUT_SMTP_ACCOUNTS` for these accounts (each logs in as its own name).
    pub fn turnout_accounts_json(&self, accounts: &[TurnoutAccount]) -> String {
        let list: Vec<serde_json::Value> = accounts
            .iter()
            .map(|a| {
                serde_json::json!({
                    "name": a.name,
                    "host": "127.0.0.1",
                    "port": self.smtp_port,
                    "username": a.name,
                    "password": SINK_PASSWORD,
                    "from": format!("{}@turnout.test", a.name),
                    "per_minute": a.per_minute,
                    "max_concurrent": a.max_concurrent,
                    "daily_cap": a.daily_cap,
                })
            })
            .collect();
        serde_json::Value::Array(list).to_string()
    }

    pub async fn accounts(&self) -> anyhow::Result<Vec<AccountRecord>> {
        Ok(self.http.get(format!("{}/accounts", self.api_url())).send().await?.error_for_status()?.json().await?)
    }

    /// `block`, `unblock`, or `delay` (with `?seconds=S` in `action`).
    pub async fn control(&self, account: &str, action: &str) -> anyhow::Result<()> {
        self.http.post(format!("{}/accounts/{account}/{action}", self.api_url())).send().await?.error_for_status()?;
        Ok(())
    }

    pub async fn latest(&self, to: &str) -> anyhow::Result<Option<SinkMessage>> {
        let res = self.http.get(format!("{}/messages/latest", self.api_url())).query(&[("to", to)]).send().await?;
        if res.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(res.error_for_status()?.json().await?))
    }

    pub async fn all_to(&self, to: &str) -> anyhow::Result<Vec<SinkMessage>> {
        let res =
            self.http.get(format!("{}/messages", self.api_url())).query(&[("to", to), ("limit", "500")]).send().await?;
        Ok(res.error_for_status()?.json().await?)
    }

    pub async fn count(&self) -> anyhow::Result<u64> {
        #[derive(Deserialize)]
        struct Count {
            count: u64,
        }
        let c: Count = self
            .http
            .get(format!("{}/messages/count", self.api_url()))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(c.count)
    }

    /// Waits for a message to `to` newer than `after` (unix seconds).
    pub async fn wait_for(&self, to: &str, after: f64, timeout: Duration) -> anyhow::Result<SinkMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.latest(to).await.context("asking the mail sink")?
                && m.received_at >= after
            {
                return Ok(m);
            }
            if Instant::now() > deadline {
                anyhow::bail!("no mail to {to} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
