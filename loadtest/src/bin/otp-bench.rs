//! Code delivery benchmark. Starts a local stack (slapd, the throttling sink, services,
//! nginx) and measures, through nginx:
//!
//! 1. code-request throughput: distinct voters asking for a code (requests/s, p50/p99);
//! 2. delivery throughput as a ratio of the sender pool's configured capacity;
//! 3. queue-to-sent latency (request → message at the provider) when under capacity.
//!
//! Each measurement is repeated `--runs` times (default 3) and the median printed, with
//! every run's value. Usage: `cargo run --release -p turnout-loadtest --bin otp-bench`.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use turnout_devstack::{SinkAccount, Stack, StackOptions, TurnoutAccount, unix_now};
use turnout_loadtest::{Summary, median, ms, options};

struct Args {
    runs: usize,
    requests: u32,
    concurrency: usize,
    accounts: u32,
    per_minute: u32,
    burst: u32,
}

fn args() -> anyhow::Result<Args> {
    let o = options(&["runs", "requests", "concurrency", "accounts", "per-minute", "burst"])?;
    Ok(Args {
        runs: o.get("runs", 3)?,
        requests: o.get("requests", 3000)?,
        concurrency: o.get("concurrency", 64)?,
        accounts: o.get("accounts", 5)?,
        per_minute: o.get("per-minute", 120)?,
        burst: o.get("burst", 600)?,
    })
}

fn start(accounts: u32, per_minute: u32, sink_rate: Option<u32>) -> anyhow::Result<(Stack, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut opts = StackOptions::in_dir(dir.path());
    opts.students = 10;
    opts.env = vec![("TURNOUT_LOG".into(), "warn".into())];
    let names: Vec<String> = (1..=accounts).map(|i| format!("elections-{i}")).collect();
    opts.mail_pool = Some((
        names.iter().map(|n| SinkAccount { name: n.clone(), rate: sink_rate, ..SinkAccount::default() }).collect(),
        names
            .iter()
            .map(|n| TurnoutAccount { name: n.clone(), per_minute, max_concurrent: 4, daily_cap: 1_000_000 })
            .collect(),
    ));
    Ok((Stack::start(opts)?, dir))
}

/// Asks for a code for voters `range` with `concurrency` in flight; returns latencies and
/// the send time of each voter's request.
async fn request_codes(
    stack: &Stack,
    range: std::ops::Range<u32>,
    concurrency: usize,
    pace: Option<Duration>,
) -> anyhow::Result<(Vec<Duration>, Vec<(u32, f64)>, Duration)> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let url = format!("{}/e/demo/otp/request", stack.base_url);
    let cookies: Vec<(u32, String)> = range
        .map(|n| Ok((n, stack.session_cookie(&format!("voter{n:06}"), &format!("voter{n:06}@students.turnout.test"))?)))
        .collect::<anyhow::Result<_>>()?;
    let started = Instant::now();
    let results: Vec<anyhow::Result<(Duration, (u32, f64))>> =
        futures_util::stream::iter(cookies.into_iter().enumerate())
            .map(|(i, (n, cookie))| {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    if let Some(gap) = pace {
                        tokio::time::sleep_until((started + gap * i as u32).into()).await;
                    }
                    let sent_at = unix_now();
                    let t = Instant::now();
                    let res =
                        http.post(&url).header("cookie", cookie).header("accept", "application/json").send().await?;
                    let latency = t.elapsed();
                    anyhow::ensure!(res.status().as_u16() == 202, "voter {n}: {}", res.status());
                    Ok((latency, (n, sent_at)))
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    let mut sent = Vec::new();
    for r in results {
        let (l, s) = r?;
        latencies.push(l);
        sent.push(s);
    }
    Ok((latencies, sent, elapsed))
}

async fn wait_delivered(stack: &Stack, n: u64, timeout: Duration) -> anyhow::Result<f64> {
    let deadline = Instant::now() + timeout;
    loop {
        if stack.sink.count().await? >= n {
            return Ok(unix_now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {n} delivered in {timeout:?}",
            stack.sink.count().await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A signal stops the stack this tool started, too.
    turnout_loadtest::until_stopped(run()).await
}

async fn run() -> anyhow::Result<()> {
    let a = args()?;
    let capacity_per_sec = f64::from(a.accounts * a.per_minute) / 60.0;
    println!(
        "otp-bench: {} runs; pool {} accounts x {}/min = {:.1} msgs/s",
        a.runs, a.accounts, a.per_minute, capacity_per_sec
    );

    let (mut rps, mut p50, mut p99, mut ratios, mut q50, mut q95) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for run in 1..=a.runs {
        // 1. Request throughput: a generous pool so the queue drains beside the load.
        let (stack, _dir) = tokio::task::spawn_blocking(|| start(3, 60_000, None)).await??;
        let (mut lat, _, elapsed) = request_codes(&stack, 0..a.requests, a.concurrency, None).await?;
        let s = Summary::of(&mut lat);
        let r = f64::from(a.requests) / elapsed.as_secs_f64();
        println!(
            "run {run}: code requests  {} at c={}: {r:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            a.requests,
            a.concurrency,
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        );
        rps.push(r);
        p50.push(ms(s.p50));
        p99.push(ms(s.p99));
        drop(stack);

        // 2. Delivery at capacity: a burst far above the pool's rate, enforced by the sink.
        let (stack, _dir) =
            tokio::task::spawn_blocking(move || start(a.accounts, a.per_minute, Some(a.per_minute))).await??;
        let t0 = unix_now();
        request_codes(&stack, 0..a.burst, a.concurrency, None).await?;
        let expect = f64::from(a.burst) / capacity_per_sec;
        let done = wait_delivered(&stack, u64::from(a.burst), Duration::from_secs_f64(expect * 2.0 + 30.0)).await?;
        let ratio = f64::from(a.burst) / (done - t0) / capacity_per_sec;
        let refused: u64 = stack.sink.accounts().await?.iter().map(|r| r.refused.values().sum::<u64>()).sum();
        println!(
            "run {run}: delivery       {} codes in {:.1} s = {ratio:.3} of capacity ({refused} refusals by the provider)",
            a.burst,
            done - t0
        );
        ratios.push(ratio);

        // 3. Queue-to-sent latency at half capacity, same stack (the burst has drained).
        let n = (capacity_per_sec * 20.0) as u32 / 2; // 20 s at half the rate
        let pace = Duration::from_secs_f64(2.0 / capacity_per_sec);
        let (_, sent, _) = request_codes(&stack, 100_000..100_000 + n, a.concurrency, Some(pace)).await?;
        wait_delivered(&stack, u64::from(a.burst + n), Duration::from_secs(120)).await?;
        let mut waits = Vec::new();
        for (voter, sent_at) in sent {
            let mail = stack.sink.latest(&format!("voter{voter:06}@students.turnout.test")).await?;
            let mail = mail.ok_or_else(|| anyhow::anyhow!("voter {voter} got no mail"))?;
            waits.push(Duration::from_secs_f64((mail.received_at - sent_at).max(0.0)));
        }
        let w = Summary::of(&mut waits);
        println!(
            "run {run}: queue-to-sent  {n} codes at half capacity: p50 {:.0} ms, p95 {:.0} ms",
            ms(w.p50),
            ms(w.p95)
        );
        q50.push(ms(w.p50));
        q95.push(ms(w.p95));
    }
    println!("\nmedians over {} runs:", a.runs);
    println!(
        "  code requests through nginx   {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms",
        median(&mut rps),
        median(&mut p50),
        median(&mut p99)
    );
    println!("  delivery / pool capacity      {:.3}", median(&mut ratios));
    println!("  queue-to-sent (half capacity) p50 {:.0} ms, p95 {:.0} ms", median(&mut q50), median(&mut q95));
    Ok(())
}
