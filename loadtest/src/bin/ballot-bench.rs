//! Ballot throughput through nginx, side by side with the same load on `/health/live`.
//!
//! Starts a local stack, writes verified sessions for distinct voters, then per run:
//! `wrk -c100` (keepalive) on `/health/live`, then on `POST /e/demo/ballot` with a fresh
//! session per request (`loadtest/wrk/vote.lua`). With `--ballot union` it casts in the
//! union election instead: three contests, a ranked president (eight options, four
//! ranked), an approval question (two approved) and a faculty rep (a plurality contest
//! with an LDAP constituency, which the store checks in the cast's transaction). After each ballot run it checks the
//! store: ballots == participation == the 2xx answers wrk saw. Prints every run and the
//! medians, and the ballots/health ratio. Needs `wrk` (Debian package `wrk`).
//!
//! `cargo run --release -p turnout-loadtest --bin ballot-bench -- [--runs 3] [--secs 5]
//! [--concurrency 100] [--threads 2] [--ballot demo|union]`

use std::io::Write;
use std::process::Command;

use turnout_core::store::BallotBox;
use turnout_devstack::{Stack, StackOptions};
use turnout_loadtest::{WrkRun, median, options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A signal stops the stack this tool started, too.
    turnout_loadtest::until_stopped(run()).await
}

async fn run() -> anyhow::Result<()> {
    let o = options(&["runs", "secs", "concurrency", "threads", "sessions", "profile", "ballot"])?;
    let kind = Ballot::parse(o.text("ballot").unwrap_or("demo"))?;
    let runs = o.get("runs", 3)?;
    let secs = o.get("secs", 5)?;
    let concurrency = o.get("concurrency", 100)?;
    let threads = o.get("threads", 2)?;
    let per_run = o.get("sessions", 120_000)?;
    turnout_devstack::process::require("/usr/bin/wrk", "wrk")?;

    let dir = tempfile::tempdir()?;
    let mut opts = StackOptions::in_dir(dir.path());
    opts.students = 10;
    opts.union_election = kind == Ballot::Union;
    opts.env = vec![("TURNOUT_LOG".into(), "warn".into())];
    let stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await??;
    let store = turnout_core::store::SqliteStore::open(&stack.dir.join("turnout.db"), stack.store_keys()).await?;
    let demo = turnout_core::domain::ElectionId::parse(kind.election()).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "ballot-bench: {runs} runs of {secs} s, wrk -t{threads} -c{concurrency} (keepalive) through nginx, {} cores, {} ballot",
        std::thread::available_parallelism()?,
        kind.election(),
    );

    let (mut health, mut ballots, mut p99s, mut ratios) = (vec![], vec![], vec![], vec![]);
    for run in 1..=runs {
        let file = sessions(&stack, kind, &format!("r{run}"), per_run)?;

        let h = WrkRun::run(
            Command::new("wrk")
                .args(wrk_args(threads, concurrency, secs))
                .args(["-s", &lua("status.lua")])
                .arg(format!("{}/health/live", stack.base_url)),
        )?;
        let before = store.turnout(&demo).await?;
        let b = vote(&stack, kind, &file, threads, concurrency, secs)?;
        let after = store.turnout(&demo).await?;
        let stored = after.ballots - before.ballots;
        let ok = b.status(201);
        // wrk stops at the deadline without reading the answers still in flight (at most
        // one per connection): those ballots are stored but not counted as 2xx.
        let answered_all_stored = ok <= stored && stored <= ok + concurrency as u64;
        let verdict = if answered_all_stored && after.ballots == after.participation && b.other() == 0 {
            "ok"
        } else {
            "MISMATCH"
        };
        println!(
            "run {run}: health {:.0} req/s (p99 {:.1} ms) | ballots {:.0}/s (p50 {:.1} ms, p99 {:.1} ms), {ok} x 201, {} x 409, {} other, {} socket errors | stored {stored}, participation == ballots: {} -> {verdict}",
            h.rate_2xx,
            h.p99_ms,
            b.rate_2xx,
            b.p50_ms,
            b.p99_ms,
            b.status(409),
            b.other(),
            b.socket_errors,
            after.ballots == after.participation,
        );
        anyhow::ensure!(verdict == "ok", "run {run}: the ballot box does not match the answers");
        ratios.push(b.rate_2xx / h.rate_2xx);
        health.push(h.rate_2xx);
        ballots.push(b.rate_2xx);
        p99s.push(b.p99_ms);
    }
    if let Some(out) = o.text("profile") {
        profile(&stack, kind, std::path::Path::new(out), threads, concurrency, secs, per_run)?;
    }
    println!("\nmedians over {runs} runs:");
    println!("  /health/live through nginx   {:.0} req/s", median(&mut health));
    println!("  ballots through nginx        {:.0} /s, p99 {:.1} ms", median(&mut ballots), median(&mut p99s));
    println!("  ballots / health (same run)  {:.2}", median(&mut ratios));
    Ok(())
}

/// Which ballot the runs cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ballot {
    /// The demo election: two single-choice contests.
    Demo,
    /// The union election: ranked, approval and a constituency's plurality contest.
    Union,
}

impl Ballot {
    fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw {
            "demo" => Ok(Ballot::Demo),
            "union" => Ok(Ballot::Union),
            other => anyhow::bail!("--ballot is demo or union, not {other:?}"),
        }
    }

    fn election(self) -> &'static str {
        match self {
            Ballot::Demo => "demo",
            Ballot::Union => "union",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Ballot::Demo => r#"{"choices":{"president":"ben-carter","treasurer":"eli-novak"}}"#,
            Ballot::Union => {
                r#"{"choices":{"president":["sam-reyes","ron","kim-tanaka","lee-park"],"societies":["chess-club","film-society"],"general-rep":"dan-cohen"}}"#
            }
        }
    }
}

/// One wrk run casting ballots with the sessions in `file`.
fn vote(
    stack: &Stack,
    kind: Ballot,
    file: &std::path::Path,
    threads: usize,
    concurrency: usize,
    secs: usize,
) -> anyhow::Result<WrkRun> {
    WrkRun::run(
        Command::new("wrk")
            .args(wrk_args(threads, concurrency, secs))
            .args(["-s", &lua("vote.lua")])
            .arg(format!("{}/e/{}/ballot", stack.base_url, kind.election()))
            .args(["--", &file.display().to_string(), &threads.to_string(), kind.body()]),
    )
}

fn wrk_args(threads: usize, concurrency: usize, secs: usize) -> Vec<String> {
    vec![
        format!("-t{threads}"),
        format!("-c{concurrency}"),
        format!("-d{secs}s"),
        "--latency".into(),
        "--timeout".into(),
        "10s".into(),
    ]
}

fn lua(name: &str) -> String {
    turnout_devstack::repo_root().join("loadtest/wrk").join(name).display().to_string()
}

/// Verified sessions for `count` distinct voters named `{prefix}v000000`...
fn sessions(stack: &Stack, kind: Ballot, prefix: &str, count: usize) -> anyhow::Result<std::path::PathBuf> {
    let file = stack.dir.join(format!("sessions-{prefix}.tsv"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
    for n in 0..count {
        let uid = format!("{prefix}v{n:06}");
        let email = format!("{uid}@students.turnout.test");
        let cookie = match kind {
            Ballot::Demo => stack.verified_session_cookie(&uid, &email)?,
            Ballot::Union => stack.verified_session_cookie_in("union", &["general-rep"], &uid, &email)?,
        };
        writeln!(out, "{uid}\t{cookie}")?;
    }
    out.flush()?;
    Ok(file)
}

/// One more ballot run under `perf record -a -g`: prints the CPU split by process and the
/// ballot service's hottest functions; the raw profile stays in `out` for flamegraphs.
fn profile(
    stack: &Stack,
    kind: Ballot,
    out: &std::path::Path,
    threads: usize,
    concurrency: usize,
    secs: usize,
    per_run: usize,
) -> anyhow::Result<()> {
    turnout_devstack::process::require("/usr/bin/perf", "linux-perf")?;
    std::fs::create_dir_all(out)?;
    let data = out.join("perf.data");
    let file = sessions(stack, kind, "prof", per_run)?;
    let mut perf = Command::new("perf")
        .args(["record", "-a", "-g", "-F", "499", "-o", &data.display().to_string(), "--", "sleep"])
        .arg((secs + 1).to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(std::time::Duration::from_millis(500));
    let b = vote(stack, kind, &file, threads, concurrency, secs)?;
    perf.wait()?;
    println!(
        "\nprofile run (perf record -a): ballots {:.0}/s, p99 {:.1} ms; raw data {}",
        b.rate_2xx,
        b.p99_ms,
        data.display()
    );
    let report = |args: &[&str]| -> anyhow::Result<String> {
        let o =
            Command::new("perf").args(["report", "-i", &data.display().to_string(), "--stdio"]).args(args).output()?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let by_process = report(&["--sort", "comm", "--no-children", "--percent-limit", "1"])?;
    let pid = stack.service_pid("ballot").ok_or_else(|| anyhow::anyhow!("no ballot service"))?.to_string();
    let hot = report(&["--pid", &pid, "--no-children", "--sort", "sym", "--percent-limit", "1", "-g", "none"])?;
    std::fs::write(out.join("by-process.txt"), &by_process)?;
    std::fs::write(out.join("ballot-symbols.txt"), &hot)?;
    println!("CPU by process (all cores):");
    for line in by_process.lines().filter(|l| l.contains('%') && !l.starts_with('#')).take(12) {
        println!("  {}", line.trim());
    }
    println!("ballot service, hottest symbols:");
    for line in hot.lines().filter(|l| l.contains('%') && !l.starts_with('#')).take(15) {
        println!("  {}", line.trim());
    }
    Ok(())
}
