//! Login benchmark. Starts a local stack and measures, in the same run:
//!
//! - raw slapd simple-bind throughput (ldap3, 50 connections binding in a loop, and
//!   again over as many connections as Turnout's pool), the ceiling the directory sets;
//! - Turnout sign-ins through nginx (`POST /auth/login`) at 50 concurrent with wrk
//!   (`loadtest/wrk/login.lua`): the headline, as a ratio of raw binds;
//! - the same at 50, 200 and 500 concurrent with this program's own client, where a
//!   student turned away (503) waits the `Retry-After` it was given: logins/s, p50/p99
//!   of the successes, and how many were turned away.
//!
//! Part 1 has the open election's roll give every voter's address, so a sign-in is one
//! bind. Part 2 adds an election open to everyone, where a sign-in also reads `mail`,
//! and compares that with raw bind + read. Every measure runs `--secs` (default 5) on
//! warm connections; each run is repeated `--runs` times (default 3); medians are
//! printed with every run's value. `--pool N` sets Turnout's LDAP pool (default 16);
//! `--workers N` the services' HTTP worker threads (default: one per CPU). `--log LEVEL`
//! sets the services' `TURNOUT_LOG` (default `warn`: no line per request; `info`, the
//! services' own default, logs each sign-in as in production).
//!
//! The directory gets a core of its own, as on its own host in production (`--pin 1`, the
//! default on a machine with two CPUs or more): slapd on CPU 0, and this tool with
//! everything else it starts (nginx, the services, the mail sink, wrk) on CPU 1. Raw
//! binds and sign-ins then face the same directory capacity, so their ratio is Turnout's
//! rate against what the directory itself can do, and Turnout no longer takes its CPU
//! from slapd (it has one core, shared with the load generators). `--pin 0` leaves every
//! process on every core: then the ratio also counts Turnout, nginx and wrk competing
//! with slapd for the same two cores. Uses `taskset` (util-linux).
//! Needs `wrk`.
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

/// Sign-ins through nginx from `concurrency` clients for `for_how_long`, after a warm-up
/// that opens the connections (nginx's, and the LDAP pool's), so the rate compares with
/// the raw binds over persistent connections. A client turned away (503) waits its
/// `Retry-After` before the next sign-in, as the sign-in page tells a student to.
async fn logins(stack: &Stack, concurrency: usize, for_how_long: Duration) -> anyhow::Result<LoginRun> {
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(concurrency).timeout(Duration::from_secs(30)).build()?;
    let url = format!("{}/auth/login", stack.base_url);
    let sign_in = move |n: u32| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let student = n % STUDENTS + 1;
            let t = Instant::now();
            let res = http
                .post(&url)
                .header("accept", "application/json")
                .json(&serde_json::json!({ "username": student_uid(student), "password": student_password(student) }))
                .send()
                .await?;
            let status = res.status().as_u16();
            let retry_after =
                res.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(1);
            res.bytes().await?;
            anyhow::Ok((status, t.elapsed(), retry_after))
        }
    };
    let warm: Vec<_> = futures_util::stream::iter(0..concurrency as u32 * 4)
        .map(&sign_in)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for w in warm {
        w?;
    }
    let started = Instant::now();
    let deadline = started + for_how_long;
    let mut workers = Vec::new();
    for c in 0..concurrency {
        let sign_in = sign_in.clone();
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut busy) = (Vec::new(), 0usize);
            let mut n = c as u32 * 13;
            while Instant::now() < deadline {
                match sign_in(n).await? {
                    (200, l, _) => latencies.push(l),
                    // Turned away: this student waits as told, like a person would.
                    (503, _, secs) => {
                        busy += 1;
                        let wake = (Instant::now() + Duration::from_secs(secs)).min(deadline);
                        tokio::time::sleep_until(wake.into()).await;
                    }
                    (status, _, _) => anyhow::bail!("unexpected status {status}"),
                }
                n += 7;
            }
            anyhow::Ok((latencies, busy))
        }));
    }
    let (mut ok_latencies, mut busy) = (Vec::new(), 0);
    for w in workers {
        let (l, b) = w.await??;
        ok_latencies.extend(l);
        busy += b;
    }
    let per_sec = ok_latencies.len() as f64 / started.elapsed().as_secs_f64();
    Ok(LoginRun { per_sec, summary: Summary::of(&mut ok_latencies), busy })
}

/// The same sign-ins driven by wrk (C, far lighter than this process's HTTP client), so
/// less of the machine goes to the load generator.
fn wrk_logins(stack: &Stack, concurrency: usize, for_how_long: Duration) -> anyhow::Result<turnout_loadtest::WrkRun> {
    let threads = 2;
    let lua = turnout_devstack::repo_root().join("loadtest/wrk/login.lua");
    turnout_loadtest::WrkRun::run(
        std::process::Command::new("wrk")
            .args([format!("-t{threads}"), format!("-c{concurrency}"), format!("-d{}s", for_how_long.as_secs())])
            .args(["--latency", "--timeout", "10s", "-s", &lua.display().to_string()])
            .arg(format!("{}/auth/login", stack.base_url))
            .args(["--", &STUDENTS.to_string(), &threads.to_string()]),
    )
}

/// Puts every student on the demo election's roll, with an address.
async fn roll_with_addresses(stack: &Stack) -> anyhow::Result<()> {
    use turnout_core::domain::{ElectionId, Username, VoterEmail};
    use turnout_core::store::{Roll, RollEntry, SqliteStore};
    let store = SqliteStore::open(&stack.dir.join("turnout.db"), stack.store_keys()).await?;
    let demo = ElectionId::parse("demo").map_err(|e| anyhow::anyhow!("{e}"))?;
    let entries: Vec<RollEntry> = (1..=STUDENTS)
        .map(|n| RollEntry {
            uid: Username::parse(&student_uid(n)).expect("a valid uid"),
            email: Some(VoterEmail::parse(&format!("{}@roll.turnout.test", student_uid(n))).expect("an address")),
            name: None,
            columns: Default::default(),
        })
        .collect();
    for chunk in entries.chunks(1000) {
        store.import_roll(&demo, chunk).await?;
    }
    Ok(())
}

fn print_run(run: usize, what: &str, l: &LoginRun) {
    println!(
        "run {run}: {what}: {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {} turned away (503)",
        l.per_sec,
        ms(l.summary.p50),
        ms(l.summary.p99),
        l.busy
    );
}

/// Pins every thread of process `pid` (and what it starts later) to `cpus`.
fn taskset(cpus: &str, pid: u32) -> anyhow::Result<()> {
    let out = std::process::Command::new("taskset")
        .args(["--all-tasks", "--cpu-list", "--pid", cpus, &pid.to_string()])
        .output()
        .map_err(|e| anyhow::anyhow!("running taskset (util-linux): {e}"))?;
    anyhow::ensure!(out.status.success(), "taskset {cpus} {pid}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A signal stops the stack this tool started, too.
    turnout_loadtest::until_stopped(run()).await
}

async fn run() -> anyhow::Result<()> {
    let opts = options(&["runs", "secs", "pool", "workers", "pin", "log"])?;
    turnout_devstack::process::require("/usr/bin/wrk", "wrk")?;
    let log = opts.text("log").unwrap_or("warn").to_owned();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let pin: u8 = opts.get("pin", u8::from(cpus >= 2))?;
    anyhow::ensure!(pin <= 1, "--pin takes 0 (shared cores) or 1 (slapd on a core of its own), not {pin}");
    let pinned = pin == 1;
    if pinned {
        anyhow::ensure!(cpus >= 2, "--pin 1 needs at least two CPUs (this machine has {cpus}); use --pin 0");
        // Before the stack starts, so everything it starts inherits CPU 1.
        taskset("1", std::process::id())?;
    }
    let workers: usize = opts.get("workers", 0)?;
    let pool: usize = opts.get("pool", 16)?;
    let runs: usize = opts.get("runs", 3)?;
    let secs: u64 = opts.get("secs", 5)?;
    let window = Duration::from_secs(secs);
    let dir = tempfile::tempdir()?;
    let mut stack_opts = StackOptions::in_dir(dir.path());
    stack_opts.students = STUDENTS;
    stack_opts.login_rate = 1_000_000; // measure Turnout, not nginx's per-address limit
    stack_opts.env = vec![("TURNOUT_LOG".into(), log.clone()), ("TURNOUT_LDAP_POOL_SIZE".into(), pool.to_string())];
    if workers > 0 {
        stack_opts.env.push(("TURNOUT_HTTP_WORKERS".into(), workers.to_string()));
    }
    stack_opts.demo_eligibility = Some(serde_json::json!({ "kind": "roll" }));
    let stack = tokio::task::spawn_blocking(move || Stack::start(stack_opts)).await??;
    if pinned {
        taskset("0", stack.slapd.pid())?;
    }
    roll_with_addresses(&stack).await?;
    println!(
        "login-bench: {runs} runs of {secs} s each, {STUDENTS} students, slapd 16 threads, Turnout LDAP pool {pool}, services' log level {log}{}\n\
         part 1: the open election's roll gives every voter's address, so a sign-in is one bind",
        if pinned {
            "\npinned (--pin 1): slapd alone on CPU 0; nginx, the services, the mail sink and the load generators on CPU 1"
        } else {
            "\nshared cores (--pin 0): slapd, nginx, the services and the load generators on every CPU"
        }
    );

    let (mut raw, mut raw_pool, mut raw_mail, mut ratio) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut wrk50, mut wrk50_p99) = (Vec::new(), Vec::new());
    let mut per_c: Vec<Series> = [50, 200, 500].iter().map(|c| (*c, vec![], vec![], vec![], vec![])).collect();
    for run in 1..=runs {
        let r = raw_binds(&stack.slapd.url(), 50, window, false).await?;
        println!("run {run}: raw slapd binds (50 connections): {r:.0}/s");
        let rp = raw_binds(&stack.slapd.url(), pool, window, false).await?;
        println!("run {run}: raw slapd binds ({pool} connections, Turnout's pool size): {rp:.0}/s");
        raw_pool.push(rp);
        raw.push(r);
        let rm = raw_binds(&stack.slapd.url(), 50, window, true).await?;
        println!("run {run}: raw slapd bind + mail read (50 connections): {rm:.0}/s");
        raw_mail.push(rm);
        let w = wrk_logins(&stack, 50, window)?;
        anyhow::ensure!(w.other() == 0 && w.socket_errors == 0, "sign-ins failed under wrk: {w:?}");
        println!(
            "run {run}: Turnout logins c=50 (wrk): {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, statuses {:?}",
            w.rate_2xx, w.p50_ms, w.p99_ms, w.statuses
        );
        ratio.push(w.rate_2xx / r);
        wrk50.push(w.rate_2xx);
        wrk50_p99.push(w.p99_ms);
        for (c, rates, p50s, p99s, busy) in per_c.iter_mut() {
            let l = logins(&stack, *c, window).await?;
            print_run(run, &format!("Turnout logins c={c} (Rust client)"), &l);
            rates.push(l.per_sec);
            p50s.push(ms(l.summary.p50));
            p99s.push(ms(l.summary.p99));
            busy.push(l.busy as f64);
        }
    }

    // Part 2: an election open to everyone needs the directory's address: bind + read.
    let now = jiff::Timestamp::now();
    let mut everyone = turnout_devstack::stack::demo_election(now, now + jiff::SignedDuration::from_mins(60));
    everyone["id"] = "everyone".into();
    stack.create_election(&everyone)?;
    println!("part 2: an election open to everyone is added, so a sign-in also reads the directory's address");
    let (mut dir_rates, mut dir_p99s, mut dir_ratio, mut raw2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let rm = raw_binds(&stack.slapd.url(), 50, window, true).await?;
        println!("run {run}: raw slapd bind + mail read (50 connections): {rm:.0}/s");
        raw2.push(rm);
        let w = wrk_logins(&stack, 50, window)?;
        anyhow::ensure!(w.other() == 0 && w.socket_errors == 0, "sign-ins failed under wrk: {w:?}");
        println!(
            "run {run}: Turnout logins c=50 (wrk, directory address): {:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
            w.rate_2xx, w.p50_ms, w.p99_ms
        );
        dir_rates.push(w.rate_2xx);
        dir_p99s.push(w.p99_ms);
        dir_ratio.push(w.rate_2xx / rm);
    }

    println!("\nmedians over {runs} runs:");
    println!("  raw slapd simple binds      {:.0}/s", median(&mut raw));
    println!("  raw binds, {pool} connections  {:.0}/s", median(&mut raw_pool));
    println!("  raw slapd bind + mail read  {:.0}/s", median(&mut raw_mail));
    println!("  Turnout logins c=50 (wrk)  {:.0}/s, p99 {:.1} ms", median(&mut wrk50), median(&mut wrk50_p99));
    for (c, rates, p50s, p99s, busy) in per_c.iter_mut() {
        println!(
            "  Rust client c={c:<3}          {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {:.0} turned away",
            median(rates),
            median(p50s),
            median(p99s),
            median(busy)
        );
    }
    println!(
        "  logins/s at c=50 (wrk) ÷ raw binds/s = {:.2}  (roll gives the address: one bind per sign-in)",
        median(&mut ratio)
    );
    println!(
        "  directory address: Turnout c=50 {:.0}/s (p99 {:.1} ms) ÷ raw bind + read {:.0}/s = {:.2}",
        median(&mut dir_rates),
        median(&mut dir_p99s),
        median(&mut raw2),
        median(&mut dir_ratio)
    );
    Ok(())
}
