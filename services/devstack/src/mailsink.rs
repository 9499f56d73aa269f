//! The local mail sink (`scripts/mailsink.py`, real SMTP with AUTH via aiosmtpd) and a
//! client for its HTTP API: read the newest message to an address, count messages.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

use crate::process::{Supervised, free_port, require, wait_for_port};

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

pub struct MailSink {
    pub smtp_port: u16,
    pub http_port: u16,
    _process: Supervised,
    http: reqwest::Client,
}

impl MailSink {
    pub fn start(dir: &Path, repo_root: &Path) -> anyhow::Result<Self> {
        Self::start_with_delay(dir, repo_root, 0.0)
    }

    /// `delay_secs` makes the sink slow to accept each message (a throttled provider).
    pub fn start_with_delay(dir: &Path, repo_root: &Path, delay_secs: f64) -> anyhow::Result<Self> {
        require("/usr/bin/python3", "python3")?;
        let probe = Command::new("/usr/bin/python3").args(["-c", "import aiosmtpd"]).output()?;
        if !probe.status.success() {
            anyhow::bail!("aiosmtpd is missing: install it with `apt-get install -y python3-aiosmtpd`");
        }
        let (smtp_port, http_port) = (free_port(), free_port());
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(repo_root.join("scripts/mailsink.py"))
            .args(["--smtp-port", &smtp_port.to_string(), "--http-port", &http_port.to_string()])
            .args(["--user", SINK_USER, "--password", SINK_PASSWORD, "--delay", &delay_secs.to_string()]);
        let log = dir.join("mailsink.log");
        let mut process = Supervised::spawn("mailsink", cmd, &log)?;
        for port in [smtp_port, http_port] {
            if let Err(e) = wait_for_port(port, Duration::from_secs(15)) {
                process.check_running(&log)?;
                return Err(e);
            }
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        Ok(Self { smtp_port, http_port, _process: process, http })
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `TURNOUT_SMTP_ACCOUNTS` for `accounts` sender accounts on this sink.
    pub fn accounts_json(&self, accounts: u32) -> String {
        let list: Vec<serde_json::Value> = (1..=accounts)
            .map(|i| {
                serde_json::json!({
                    "name": format!("elections-{i}"),
                    "host": "127.0.0.1",
                    "port": self.smtp_port,
                    "username": SINK_USER,
                    "password": SINK_PASSWORD,
                    "from": format!("elections-{i}@turnout.test"),
                    "per_minute": 600,
                    "max_concurrent": 4,
                })
            })
            .collect();
        serde_json::Value::Array(list).to_string()
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
