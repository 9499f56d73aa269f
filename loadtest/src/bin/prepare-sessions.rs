//! Prepares N verified voter sessions through the real flow (LDAP sign-in, code request,
//! the code read from the mail sink, verify) and writes `uid<TAB>cookie` lines that
//! `ab-sessions`, the wrk scripts and the drill can use. Shows a progress bar.
//!
//! `prepare-sessions --url http://127.0.0.1:8080 --sink http://127.0.0.1:PORT --count 20000
//!  [--from 1] [--election demo] [--uid 'student{n}'] [--password 'vote-{n}']
//!  [--email '{uid}@students.turnout.test'] [--digits 5] [--concurrency 64] [--out sessions.tsv]`
//!
//! The target must let this many sign-ins through from one address (the local stack:
//! `TURNOUT_DEV_LOGIN_RATE`) and its sender pool sets the pace (`TURNOUT_DEV_POOL`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;
use turnout_loadtest::flow::{CodeBook, Progress, Target};
use turnout_loadtest::options;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options(&[
        "url",
        "sink",
        "count",
        "from",
        "election",
        "uid",
        "password",
        "email",
        "digits",
        "concurrency",
        "out",
        "code-timeout-secs",
    ])?;
    let url = o.text("url").unwrap_or("http://127.0.0.1:8080").trim_end_matches('/').to_owned();
    let sink = o.text("sink").ok_or_else(|| anyhow::anyhow!("give --sink (the mail sink's HTTP API URL)"))?;
    let (count, from): (u32, u32) = (o.get("count", 1000)?, o.get("from", 1)?);
    let concurrency = o.get("concurrency", 64usize)?;
    let timeout = Duration::from_secs(o.get("code-timeout-secs", 600)?);
    let out_path = o.text("out").unwrap_or("sessions.tsv").to_owned();
    let http = Target::client(concurrency)?;
    let target = Arc::new(Target::from_options(&url, &o, http.clone())?);
    let book = CodeBook::start(sink.trim_end_matches('/').to_owned(), http);
    let progress = Arc::new(Progress::new("sessions", u64::from(count)));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&out_path)?);
    let mut results = futures_util::stream::iter(from..from + count)
        .map(|n| {
            let (target, book) = (target.clone(), book.clone());
            async move {
                let v = target.voter(n);
                let a = target
                    .call(Method::POST, "/auth/login", None, Some(json!({"username": v.uid, "password": v.password})))
                    .await?;
                let session = a.cookie.filter(|_| a.status == 200).ok_or(format!("{}: login {}", v.uid, a.status))?;
                let mark = book.mark(&v.email);
                let a = target.call(Method::POST, "/e/{e}/otp/request", Some(&session), None).await?;
                if a.status != 202 {
                    return Err(format!("{}: code request {} {}", v.uid, a.status, a.code()));
                }
                let (code, _) = book.wait(&v.email, mark, timeout).await.ok_or(format!("{}: no code", v.uid))?;
                let a =
                    target.call(Method::POST, "/e/{e}/otp/verify", Some(&session), Some(json!({"code": code}))).await?;
                let why = format!("{}: verify {} {}", v.uid, a.status, a.code());
                let verified = a.cookie.filter(|_| a.status == 200).ok_or(why)?;
                Ok::<_, String>((v.uid, verified))
            }
        })
        .buffer_unordered(concurrency);
    while let Some(r) = results.next().await {
        match r {
            Ok((uid, cookie)) => writeln!(out, "{uid}\t{cookie}")?,
            Err(e) => {
                if failed.fetch_add(1, Ordering::Relaxed) < 10 {
                    eprintln!("\n{e}");
                }
            }
        }
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress.show(d, &format!("failed {}", failed.load(Ordering::Relaxed)));
    }
    out.flush()?;
    let failed = failed.load(Ordering::Relaxed);
    println!("{} verified sessions written to {out_path} ({failed} failed)", u64::from(count) - failed);
    anyhow::ensure!(failed == 0, "{failed} voters could not be prepared");
    Ok(())
}
