//! Voter-roll import benchmark: uploads a 100,000-row CSV through nginx to the console,
//! follows the import's progress, and samples the ballot service's resident memory the
//! whole time. Then imports the same file again (it must change nothing).
//!
//! Prints rows/s for both runs and the ballot process's RSS before, at peak and the
//! increase. The target: an increase under 100 MB.
//! Usage: `cargo run --release -p turnout-loadtest --bin roll-import-bench [-- --rows N]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use turnout_devstack::{Stack, StackOptions};

/// Resident set size of `pid` in bytes, from /proc.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn import(http: &reqwest::Client, base: &str, token: &str, csv: &Arc<Vec<u8>>) -> anyhow::Result<(Value, f64)> {
    let started = Instant::now();
    let res = http
        .post(format!("{base}/admin/elections/roll-bench/roll"))
        .header("x-csrf-token", token)
        .header("content-type", "text/csv")
        .body(csv.as_ref().clone())
        .send()
        .await?;
    anyhow::ensure!(res.status() == 202, "upload answered {}: {}", res.status(), res.text().await?);
    let started_body: Value = res.json().await?;
    let url = format!("{base}{}", started_body["progress_url"].as_str().unwrap_or_default());
    let mut last_print = Instant::now();
    loop {
        let body: Value = http.get(&url).send().await?.json().await?;
        if body["import"]["state"] != "running" {
            return Ok((body, started.elapsed().as_secs_f64()));
        }
        if last_print.elapsed() > Duration::from_secs(1) {
            println!("  … {}% ({} rows)", body["percent"], body["import"]["rows_done"]);
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A signal stops the stack this tool started, too.
    turnout_loadtest::until_stopped(run()).await
}

async fn run() -> anyhow::Result<()> {
    let rows: u32 = turnout_loadtest::options(&["rows"])?.get("rows", 100_000)?;
    let dir = tempfile::tempdir()?;
    let mut opts = StackOptions::in_dir(dir.path());
    opts.students = 10;
    opts.env = vec![("TURNOUT_LOG".into(), "warn".into())];
    let stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await??;
    let now = jiff::Timestamp::now();
    let mut e = turnout_devstack::stack::demo_election(
        now + jiff::SignedDuration::from_mins(60),
        now + jiff::SignedDuration::from_mins(90),
    );
    e["id"] = json!("roll-bench");
    e["eligibility"] = json!({ "kind": "roll" });
    stack.create_election(&e)?;

    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT, "application/json".parse()?);
    let http = reqwest::Client::builder().cookie_store(true).default_headers(headers).build()?;
    let res = http
        .post(format!("{}/auth/login", stack.base_url))
        .json(&json!({ "username": "admin1", "password": "vote-admin1" }))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "admin sign-in answered {}", res.status());
    let index: Value = http.get(format!("{}/admin", stack.base_url)).send().await?.json().await?;
    let token = index["csrf_token"].as_str().unwrap_or_default().to_owned();

    let mut csv = String::from("uid,email,name\n");
    for n in 0..rows {
        csv.push_str(&format!("voter{n:06},voter{n:06}@students.turnout.test,Voter Number {n}\n"));
    }
    let csv = Arc::new(csv.into_bytes());
    let pid = stack.service_pid("ballot").ok_or_else(|| anyhow::anyhow!("no ballot process"))?;
    println!(
        "roll-import-bench: {rows} rows, {:.1} MB of CSV, through nginx to the ballot service (pid {pid})",
        mb(csv.len() as u64)
    );

    let baseline = rss(pid);
    let peak = Arc::new(AtomicU64::new(baseline));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let (first, t1) = import(&http, &stack.base_url, &token, &csv).await?;
    let (second, t2) = import(&http, &stack.base_url, &token, &csv).await?;
    stop.store(true, Ordering::Relaxed);
    sampler.join().ok();
    let peak = peak.load(Ordering::Relaxed);

    let f = &first["import"];
    let s = &second["import"];
    println!(
        "first import:  {} in {t1:.2} s ({:.0} rows/s): {} added, {} rejected",
        f["state"],
        rows as f64 / t1,
        f["added"],
        f["rejected"]
    );
    println!(
        "second import: {} in {t2:.2} s ({:.0} rows/s): {} added, {} updated, {} unchanged",
        s["state"],
        rows as f64 / t2,
        s["added"],
        s["updated"],
        s["unchanged"]
    );
    println!(
        "ballot RSS: {:.1} MB before, {:.1} MB peak, increase {:.1} MB (target < 100 MB)",
        mb(baseline),
        mb(peak),
        mb(peak.saturating_sub(baseline))
    );
    anyhow::ensure!(f["state"] == "done" && s["state"] == "done", "an import did not finish");
    anyhow::ensure!(s["unchanged"].as_u64() == Some(rows as u64), "the second import changed something");
    Ok(())
}
