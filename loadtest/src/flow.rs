//! One voter's way through Turnout over HTTP, as a browser-less student would do it:
//! sign in, ask for a code, read it from the mail sink, confirm it, vote, check the
//! receipt. Used by the drill and by `prepare-sessions`; works against any Turnout URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Notify;

/// Where the voters go and how they are named.
#[derive(Clone)]
pub struct Target {
    pub base: String,
    pub election: String,
    pub http: reqwest::Client,
    /// `{n}` is replaced by the voter number, zero-padded to `digits`; `{uid}` in `email`
    /// by the username.
    pub uid: String,
    pub password: String,
    pub email: String,
    pub digits: usize,
}

#[derive(Clone)]
pub struct Voter {
    pub n: u32,
    pub uid: String,
    pub password: String,
    pub email: String,
}

impl Target {
    pub fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?)
    }

    /// A target described by the `--election/--uid/--password/--email/--digits` options,
    /// with the local stack's naming as the defaults.
    pub fn from_options(base: &str, o: &crate::Options, http: reqwest::Client) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').into(),
            election: o.text("election").unwrap_or("demo").into(),
            http,
            uid: o.text("uid").unwrap_or("student{n}").into(),
            password: o.text("password").unwrap_or("vote-{n}").into(),
            email: o.text("email").unwrap_or("{uid}@students.turnout.test").into(),
            digits: o.get("digits", 5)?,
        })
    }

    pub fn voter(&self, n: u32) -> Voter {
        let num = format!("{n:0width$}", width = self.digits);
        let uid = self.uid.replace("{n}", &num);
        Voter {
            n,
            password: self.password.replace("{n}", &num),
            email: self.email.replace("{uid}", &uid).replace("{n}", &num),
            uid,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.replace("{e}", &self.election))
    }

    /// One JSON call; the answer's status, body and new session cookie (if any).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<Answer, String> {
        let mut req = self.http.request(method, self.url(path)).header("accept", "application/json");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| format!("transport: {e}"))?;
        let status = res.status().as_u16();
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .find(|c| c.contains('=') && !c.ends_with('='));
        let body = res.json::<serde_json::Value>().await.unwrap_or(serde_json::Value::Null);
        Ok(Answer { status, body, cookie })
    }
}

pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    pub cookie: Option<String>,
}

impl Answer {
    pub fn code(&self) -> String {
        self.body["error"]["code"].as_str().unwrap_or("").to_owned()
    }
}

#[derive(Deserialize)]
struct SinkRow {
    seq: u64,
    to: Vec<String>,
    body: String,
}

/// Codes seen at the mail sink, by address, filled by one poller for every voter.
#[derive(Clone)]
pub struct CodeBook {
    inner: Arc<Mutex<Book>>,
    arrived: Arc<Notify>,
}

#[derive(Default)]
struct Book {
    /// address -> (sequence number, code, when the poller saw it)
    codes: HashMap<String, Vec<(u64, String, Instant)>>,
    last_seq: u64,
}

impl CodeBook {
    /// Starts polling `sink` (the mail sink's HTTP API) every 50 ms until dropped tasks end.
    pub fn start(sink: String, http: reqwest::Client) -> Self {
        let book = Self { inner: Arc::new(Mutex::new(Book::default())), arrived: Arc::new(Notify::new()) };
        let poller = book.clone();
        tokio::spawn(async move {
            loop {
                let seq = poller.inner.lock().unwrap_or_else(|p| p.into_inner()).last_seq;
                let url = format!("{sink}/messages/since?seq={seq}&limit=5000");
                let rows: Vec<SinkRow> = match http.get(&url).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
                let full = rows.len() == 5000;
                if !rows.is_empty() {
                    let now = Instant::now();
                    let mut b = poller.inner.lock().unwrap_or_else(|p| p.into_inner());
                    for row in rows {
                        b.last_seq = b.last_seq.max(row.seq);
                        let code = row
                            .body
                            .lines()
                            .map(str::trim)
                            .find(|l| l.len() == 6 && l.bytes().all(|c| c.is_ascii_digit()));
                        if let Some(code) = code {
                            for to in row.to {
                                b.codes.entry(to.to_lowercase()).or_default().push((row.seq, code.to_owned(), now));
                            }
                        }
                    }
                    drop(b);
                    poller.arrived.notify_waiters();
                }
                if Arc::strong_count(&poller.inner) == 1 {
                    return;
                }
                if !full {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        book
    }

    /// The newest sequence number seen for `address` (0 if none): take it before asking
    /// for a code, then wait for anything newer.
    pub fn mark(&self, address: &str) -> u64 {
        let b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        b.codes.get(&address.to_lowercase()).and_then(|v| v.last()).map_or(0, |c| c.0)
    }

    /// The first code to `address` after `mark`, and when the poller saw it.
    pub async fn wait(&self, address: &str, mark: u64, timeout: Duration) -> Option<(String, Instant)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let address = address.to_lowercase();
        loop {
            let notified = self.arrived.notified();
            {
                let b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((_, code, at)) = b.codes.get(&address).and_then(|v| v.iter().find(|c| c.0 > mark)) {
                    return Some((code.clone(), *at));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

/// A code that is certainly wrong: the right one with its last digit changed.
pub fn mistype(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == '9' { '0' } else { char::from(*last as u8 + 1) };
    }
    chars.into_iter().collect()
}

/// A deterministic generator (xorshift), so a drill's voters behave the same on a rerun.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A plain terminal progress bar on stderr, redrawn at most every 200 ms.
pub struct Progress {
    label: String,
    total: u64,
    started: Instant,
    last: Mutex<Instant>,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        let now = Instant::now();
        Self { label: label.into(), total, started: now, last: Mutex::new(now - Duration::from_secs(1)) }
    }

    pub fn show(&self, done: u64, extra: &str) {
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let every = if tty { Duration::from_millis(200) } else { Duration::from_secs(10) };
        if last.elapsed() < every && done < self.total {
            return;
        }
        *last = Instant::now();
        let frac = if self.total == 0 { 1.0 } else { done as f64 / self.total as f64 };
        let width = 30;
        let filled = (frac * width as f64) as usize;
        let secs = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-3);
        let eta = if rate > 0.0 { (self.total - done.min(self.total)) as f64 / rate } else { 0.0 };
        eprint!(
            "{}{} [{}{}] {done}/{} {:.0}/s eta {:.0}s {extra}   {}",
            if tty { "\r" } else { "" },
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.total,
            rate,
            eta,
            if tty { "" } else { "\n" },
        );
        if tty && done >= self.total {
            eprintln!();
        }
    }
}
