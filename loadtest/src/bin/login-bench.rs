//! Login benchmark. Starts a local stack and measures, in the same run:
//!
//! - raw slapd simple-bind throughput (ldap3, 50 connections binding in a loop), the
//!   ceiling the directory itself sets;
//! - Turnout sign-ins through nginx (`POST /auth/login`) at 50, 200 and 500 concurrent
//!   clients: logins/s, p50/p99, and how many were turned away with 503 (pool full).
//!
//! The headline is Turnout's rate at 50 concurrent as a ratio of raw binds. Each run is
//! repeated `--runs` times (default 3); medians are printed with every run's value.
//! Usage: `cargo run --release -p turnout-loadtest --bin login-bench`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use turnout_devstack::slapd::{BIND_TEMPLATE, student_password, student_uid};
use turnout_devstack::{Stack, StackOptions};
use turnout_loadtest::{Summary, median, ms, options};

const STUDENTS: u32 = 2000;

/// Per concurrency level: rates, p50s, p99s and turned-away counts, one per run.
type Series = (usize, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

/// Raw directory throughput over `connections` persistent connections: simple binds, and
/// with `read_mail` also the base read of the entry's mail that a Turnout login makes.
async fn raw_binds(url: &str, connections: usize, for_how_long: Duration, read_mail: bool) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + for_how_long;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (url, done) = (url.to_owned(), done.clone());
        tasks.push(tokio::spawn(async move {
            let (conn, mut ldap) = ldap3::LdapConnAsync::new(&url).await?;
            ldap3::drive!(conn);
            let mut n = c as u32;
            while Instant::now() < deadline {
                let student = n % STUDENTS + 1;
                let dn = BIND_TEMPLATE.replace("{username}", &student_uid(student));
                ldap.simple_bind(&dn, &student_password(student)).await?.success()?;
                if read_mail {
                    ldap.search(&dn, ldap3::Scope::Base, "(objectClass=*)", vec!["mail"]).await?.success()?;
                }
                done.fetch_add(1, Ordering::Relaxed);
                n += 7;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / for_how_long.as_secs_f64())
}

struct LoginRun {
    per_sec: f64,
    summary: Summary,
    busy: usize,
}

async fn logins(stack: &Stack, concurrency: usize, total: u32) -> anyhow::Result<LoginRun> {
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(concurrency).timeout(Duration::from_secs(30)).build()?;
    let url = format!("{}/auth/login", stack.base_url);
    let started = Instant::now();
    let results: Vec<anyhow::Result<(u16, Duration)>> = futures_util::stream::iter(0..total)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let n = i % STUDENTS + 1;
                let t = Instant::now();
                let res = http
                    .post(&url)
                    .header("accept", "application/json")
                    .json(&serde_json::json!({ "username": student_uid(n), "password": student_password(n) }))
                    .send()
                    .await?;
                Ok((res.status().as_u16(), t.elapsed()))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut ok_latencies = Vec::new();
    let mut busy = 0;
    for r in results {
        match r? {
            (200, l) => ok_latencies.push(l),
            (503, _) => busy += 1,
            (status, _) => anyhow::bail!("unexpected status {status}"),
        }
    }
    let per_sec = ok_latencies.len() as f64 / elapsed.as_secs_f64();
    Ok(LoginRun { per_sec, summary: Summary::of(&mut ok_latencies), busy })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = options(&["runs"])?.get("runs", 3)?;
    let dir = tempfile::tempdir()?;
    let mut opts = StackOptions::in_dir(dir.path());
    opts.students = STUDENTS;
    opts.login_rate = 1_000_000; // measure Turnout, not nginx's per-address limit
    opts.env = vec![("TURNOUT_LOG".into(), "warn".into())];
    let stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await??;
    println!("login-bench: {runs} runs, {STUDENTS} students, slapd 16 threads, Turnout LDAP pool 16");

    let (mut raw, mut raw_mail, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_c: Vec<Series> = [50, 200, 500].iter().map(|c| (*c, vec![], vec![], vec![], vec![])).collect();
    for run in 1..=runs {
        let r = raw_binds(&stack.slapd.url(), 50, Duration::from_secs(5), false).await?;
        println!("run {run}: raw slapd binds (50 connections): {r:.0}/s");
        raw.push(r);
        let rm = raw_binds(&stack.slapd.url(), 50, Duration::from_secs(5), true).await?;
        println!("run {run}: raw slapd bind + mail read (50 connections): {rm:.0}/s");
        raw_mail.push(rm);
        for (c, rates, p50s, p99s, busy) in per_c.iter_mut() {
            let l = logins(&stack, *c, 3000).await?;
            println!(
                "run {run}: Turnout logins c={c}: {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {} of 3000 turned away (503)",
                l.per_sec,
                ms(l.summary.p50),
                ms(l.summary.p99),
                l.busy
            );
            if *c == 50 {
                ratio.push(l.per_sec / r);
            }
            rates.push(l.per_sec);
            p50s.push(ms(l.summary.p50));
            p99s.push(ms(l.summary.p99));
            busy.push(l.busy as f64);
        }
    }
    println!("\nmedians over {runs} runs:");
    println!("  raw slapd simple binds      {:.0}/s", median(&mut raw));
    println!("  raw slapd bind + mail read  {:.0}/s", median(&mut raw_mail));
    for (c, rates, p50s, p99s, busy) in per_c.iter_mut() {
        println!(
            "  Turnout logins c={c:<3}       {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {:.0} turned away",
            median(rates),
            median(p50s),
            median(p99s),
            median(busy)
        );
    }
    println!("  logins/s at c=50 ÷ raw binds/s = {:.2}", median(&mut ratio));
    Ok(())
}
