//! The election drill: N simulated voters through the whole flow, arriving on a curve
//! (a spike at opening, a steady stream, a rush before closing). Each signs in, asks for
//! a code, waits for it at the mail sink, confirms it (some mistype it first, some ask
//! again too soon, some come back later), votes and checks the receipt.
//!
//! Reports per stage p50/p95/p99, code delivery latency, outcomes by reason and turnout
//! over time; writes `report.json` and `drill.png` (turnout and latency over time) to
//! `--out`. Exits 1 on any lost vote, undelivered code or 5xx.
//!
//! Local (default): starts slapd with N students, the sink throttled to the pool's rate,
//! the services and nginx, and an election open for exactly `--window-secs`.
//! Remote: `--url https://staging.example.edu --sink http://sink:8025 --election ID
//! --uid 'student{n}' --password 'vote-{n}' --email '{uid}@students.example.edu'`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use turnout_core::store::Store;
use turnout_devstack::{SinkAccount, Stack, StackOptions, TurnoutAccount};
use turnout_loadtest::chart::{Panel, Series, write_png};
use turnout_loadtest::flow::{CodeBook, Progress, Rng, Target, Voter, mistype};
use turnout_loadtest::{Summary, ms, options};

const STAGES: [&str; 7] = ["login", "otp_request", "resend", "code_delivery", "verify", "vote", "receipt"];

#[derive(Clone, Debug)]
struct Plan {
    voters: u32,
    window: f64,
    spike_frac: f64,
    rush_frac: f64,
    rush_end: f64,
    typo_frac: f64,
    resend_frac: f64,
    return_frac: f64,
    return_secs: f64,
    code_timeout: Duration,
    seed: u64,
}

impl Plan {
    /// Seconds after opening at which each voter arrives.
    fn arrivals(&self) -> Vec<f64> {
        let mut rng = Rng::new(self.seed);
        let w = self.window;
        let mut times: Vec<f64> = (0..self.voters)
            .map(|_| {
                let u = rng.next_f64();
                let r = rng.next_f64();
                if u < self.spike_frac {
                    r * w * 0.05
                } else if u < self.spike_frac + self.rush_frac {
                    w * (self.rush_end - 0.1) + r * w * 0.1
                } else {
                    r * w * self.rush_end
                }
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times
    }
}

#[derive(Default)]
struct Record {
    stages: Vec<(&'static str, Duration, u16)>,
    outcome: String,
    voted_at: Option<f64>,
    delivered_at: Option<f64>,
}

struct Drill {
    target: Target,
    book: CodeBook,
    plan: Plan,
    ballot: Vec<(String, Vec<String>)>,
    started: Instant,
}

impl Drill {
    async fn voter(&self, v: Voter, rng: &mut Rng) -> Record {
        let mut rec = Record::default();
        let outcome = self.walk(&v, rng, &mut rec).await;
        rec.outcome = match outcome {
            Ok(()) => "voted".into(),
            Err(why) => why,
        };
        rec
    }

    async fn step(
        &self,
        rec: &mut Record,
        stage: &'static str,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<turnout_loadtest::flow::Answer, String> {
        let t = Instant::now();
        let answer = self.target.call(method, path, cookie, body).await.map_err(|e| format!("{stage}: {e}"))?;
        rec.stages.push((stage, t.elapsed(), answer.status));
        Ok(answer)
    }

    async fn walk(&self, v: &Voter, rng: &mut Rng, rec: &mut Record) -> Result<(), String> {
        let p = &self.plan;
        let login = json!({"username": v.uid, "password": v.password});
        let a = self.step(rec, "login", Method::POST, "/auth/login", None, Some(login)).await?;
        let session = match (a.status, a.cookie) {
            (200, Some(c)) => c,
            (s, _) => return Err(format!("login {s} {}", a_code(&a.body))),
        };
        let mark = self.book.mark(&v.email);
        let asked = Instant::now();
        let a = self.step(rec, "otp_request", Method::POST, "/e/{e}/otp/request", Some(&session), None).await?;
        if a.status != 202 {
            return Err(format!("otp_request {} {}", a.status, a.code()));
        }
        if rng.next_f64() < p.resend_frac {
            // Asks again at once: the cooldown refuses it and nothing more is sent.
            self.step(rec, "resend", Method::POST, "/e/{e}/otp/request", Some(&session), None).await?;
        }
        let Some((code, seen)) = self.book.wait(&v.email, mark, p.code_timeout).await else {
            return Err("code_not_delivered".into());
        };
        rec.stages.push(("code_delivery", seen.duration_since(asked), 0));
        rec.delivered_at = Some(self.started.elapsed().as_secs_f64());
        if rng.next_f64() < p.return_frac {
            tokio::time::sleep(Duration::from_secs_f64(p.return_secs)).await;
        }
        if rng.next_f64() < p.typo_frac {
            let wrong = json!({"code": mistype(&code)});
            let a = self.step(rec, "verify", Method::POST, "/e/{e}/otp/verify", Some(&session), Some(wrong)).await?;
            if a.status != 401 {
                return Err(format!("verify {} {}", a.status, a.code()));
            }
        }
        let right = json!({"code": code});
        let a = self.step(rec, "verify", Method::POST, "/e/{e}/otp/verify", Some(&session), Some(right)).await?;
        let verified = match (a.status, a.cookie.clone()) {
            (200, Some(c)) => c,
            (s, _) => return Err(format!("verify {s} {}", a.code())),
        };
        let choices: serde_json::Map<String, serde_json::Value> = self
            .ballot
            .iter()
            .filter(|(_, cands)| !cands.is_empty())
            .map(|(contest, cands)| {
                let pick = &cands[(rng.next_f64() * cands.len() as f64) as usize % cands.len()];
                (contest.clone(), json!(pick))
            })
            .collect();
        let body = json!({"choices": choices});
        let a = self.step(rec, "vote", Method::POST, "/e/{e}/ballot", Some(&verified), Some(body)).await?;
        if a.status != 201 {
            return Err(format!("vote {} {}", a.status, a.code()));
        }
        rec.voted_at = Some(self.started.elapsed().as_secs_f64());
        let receipt = a.body["receipt"].as_str().unwrap_or_default().to_owned();
        let check = format!("/e/{{e}}/receipt?receipt={receipt}");
        let a = self.step(rec, "receipt", Method::GET, &check, None, None).await?;
        if a.status != 200 || a.body["in_ballot_box"] != json!(true) {
            return Err("lost_vote".into());
        }
        Ok(())
    }
}

fn a_code(body: &serde_json::Value) -> String {
    body["error"]["code"].as_str().unwrap_or("").to_owned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A signal stops the stack this tool started, too.
    turnout_loadtest::until_stopped(run()).await
}

async fn run() -> anyhow::Result<()> {
    let o = options(&[
        "voters",
        "window-secs",
        "spike",
        "rush",
        "rush-end",
        "typo",
        "resend",
        "return",
        "return-secs",
        "code-timeout-secs",
        "seed",
        "accounts",
        "per-minute",
        "out",
        "url",
        "sink",
        "election",
        "uid",
        "password",
        "email",
        "digits",
        "concurrency",
    ])?;
    let plan = Plan {
        voters: o.get("voters", 300)?,
        window: o.get("window-secs", 120.0)?,
        spike_frac: o.get("spike", 0.3)?,
        rush_frac: o.get("rush", 0.2)?,
        rush_end: o.get("rush-end", 0.9)?,
        typo_frac: o.get("typo", 0.05)?,
        resend_frac: o.get("resend", 0.05)?,
        return_frac: o.get("return", 0.03)?,
        return_secs: o.get("return-secs", 20.0)?,
        code_timeout: Duration::from_secs(o.get("code-timeout-secs", 600)?),
        seed: o.get("seed", 2026)?,
    };
    anyhow::ensure!(plan.spike_frac + plan.rush_frac <= 1.0, "--spike + --rush must be at most 1");
    anyhow::ensure!((0.1..=1.0).contains(&plan.rush_end), "--rush-end is a fraction of the window (0.1-1)");
    let out = std::path::PathBuf::from(o.text("out").unwrap_or("drill-report"));
    std::fs::create_dir_all(&out)?;
    let http = Target::client(o.get("concurrency", 512)?)?;

    // Where to drill: a local stack (default) or any Turnout URL.
    let _local: Option<Stack>;
    let (target, sink, store) = match o.text("url") {
        Some(url) => {
            let sink =
                o.text("sink").ok_or_else(|| anyhow::anyhow!("--url needs --sink (the mail sink's HTTP API)"))?;
            let target = Target::from_options(url, &o, http.clone())?;
            _local = None;
            (target, sink.trim_end_matches('/').to_owned(), None)
        }
        None => {
            let (accounts, per_minute) = (o.get("accounts", 5u32)?, o.get("per-minute", 30u32)?);
            eprintln!(
                "drill: starting a local stack ({} students, {accounts} sender accounts x {per_minute}/min enforced by the sink) ...",
                plan.voters
            );
            let voters = plan.voters;
            let stack_dir = out.join("stack");
            let stack =
                tokio::task::spawn_blocking(move || local_stack(&stack_dir, voters, accounts, per_minute)).await??;
            let now = jiff::Timestamp::now();
            let mut election = turnout_devstack::stack::demo_election(
                now - jiff::SignedDuration::from_secs(2),
                now + jiff::SignedDuration::from_secs_f64(plan.window + 1.5),
            );
            election["id"] = json!("drill");
            election["title"] = json!("Election drill");
            stack.create_election(&election)?;
            let store: Arc<dyn Store> = Arc::new(
                turnout_core::store::SqliteStore::open(&stack.dir.join("turnout.db"), stack.store_keys()).await?,
            );
            let local = turnout_loadtest::options_from(["--election".to_owned(), "drill".to_owned()], &["election"])?;
            let target = Target::from_options(&stack.base_url, &local, http.clone())?;
            let sink = stack.sink.api_url();
            _local = Some(stack);
            (target, sink, Some(store))
        }
    };

    let page = target.call(Method::GET, "/e/{e}/ballot", None, None).await.map_err(|e| anyhow::anyhow!(e))?;
    anyhow::ensure!(page.status == 200, "the ballot page answered {}: is --election right?", page.status);
    let ballot: Vec<(String, Vec<String>)> = page.body["contests"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let cands = c["candidates"]
                        .as_array()
                        .map_or(vec![], |v| v.iter().filter_map(|k| k["id"].as_str().map(str::to_owned)).collect());
                    (c["id"].as_str().unwrap_or_default().to_owned(), cands)
                })
                .collect()
        })
        .unwrap_or_default();

    let book = CodeBook::start(sink, http.clone());
    let arrivals = plan.arrivals();
    println!(
        "drill: {} voters over {:.0} s against {} (election {}); spike {:.0}%, rush {:.0}% ending at {:.0}% of the window",
        plan.voters,
        plan.window,
        target.base,
        target.election,
        plan.spike_frac * 100.0,
        plan.rush_frac * 100.0,
        plan.rush_end * 100.0
    );
    let drill = Arc::new(Drill { target, book, plan: plan.clone(), ballot, started: Instant::now() });
    let records: Arc<Mutex<Vec<Record>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, at) in arrivals.iter().enumerate() {
        let (drill, records) = (drill.clone(), records.clone());
        let at = *at;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((drill.started + Duration::from_secs_f64(at)).into()).await;
            let mut rng = Rng::new(plan.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let voter = drill.target.voter(i as u32 + 1);
            let rec = drill.voter(voter, &mut rng).await;
            records.lock().unwrap_or_else(|p| p.into_inner()).push(rec);
        }));
    }
    let progress = Progress::new("voters", u64::from(plan.voters));
    loop {
        let (done, voted) = {
            let r = records.lock().unwrap_or_else(|p| p.into_inner());
            (r.len() as u64, r.iter().filter(|r| r.voted_at.is_some()).count())
        };
        progress.show(done, &format!("voted {voted}"));
        if done >= u64::from(plan.voters) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = drill.started.elapsed().as_secs_f64();
    let records = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
    let stored = match &store {
        Some(s) => {
            let id = turnout_core::domain::ElectionId::parse("drill").map_err(|e| anyhow::anyhow!("{e}"))?;
            Some(s.turnout(&id).await?)
        }
        None => None,
    };
    let report = report(&plan, &drill.target, &records, elapsed, stored.as_ref());
    std::fs::write(out.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    chart(&out.join("drill.png"), &records, plan.window.max(elapsed))?;
    print_summary(&report);
    println!("report: {} and {}", out.join("report.json").display(), out.join("drill.png").display());
    let failed = report["checks"]["failed"].as_bool().unwrap_or(true);
    // An error, not `process::exit`: returning drops the local stack, so it stops too.
    anyhow::ensure!(!failed, "drill FAILED: {}", report["checks"]);
    Ok(())
}

/// The stack's logs and database stay in `dir` (under `--out`) for a look afterwards.
fn local_stack(dir: &std::path::Path, voters: u32, accounts: u32, per_minute: u32) -> anyhow::Result<Stack> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let mut opts = StackOptions::in_dir(dir);
    opts.students = voters.max(10);
    opts.login_rate = 100_000;
    opts.env = vec![("TURNOUT_LOG".into(), "warn".into())];
    let names: Vec<String> = (1..=accounts).map(|i| format!("elections-{i}")).collect();
    opts.mail_pool = Some((
        names
            .iter()
            .map(|n| SinkAccount { name: n.clone(), rate: Some(per_minute), ..SinkAccount::default() })
            .collect(),
        names
            .iter()
            .map(|n| TurnoutAccount { name: n.clone(), per_minute, max_concurrent: 2, daily_cap: 1_000_000 })
            .collect(),
    ));
    Stack::start(opts)
}

fn report(
    plan: &Plan,
    target: &Target,
    records: &[Record],
    elapsed: f64,
    stored: Option<&turnout_core::store::Turnout>,
) -> serde_json::Value {
    let mut stages = serde_json::Map::new();
    for stage in STAGES {
        let mut lat: Vec<Duration> =
            records.iter().flat_map(|r| r.stages.iter()).filter(|s| s.0 == stage).map(|s| s.1).collect();
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        for s in records.iter().flat_map(|r| r.stages.iter()).filter(|s| s.0 == stage && s.2 != 0) {
            *statuses.entry(s.2.to_string()).or_default() += 1;
        }
        let s = Summary::of(&mut lat);
        stages.insert(
            stage.into(),
            json!({"count": s.count, "p50_ms": ms(s.p50), "p95_ms": ms(s.p95), "p99_ms": ms(s.p99), "max_ms": ms(s.max), "statuses": statuses}),
        );
    }
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for r in records {
        *outcomes.entry(r.outcome.clone()).or_default() += 1;
    }
    let server_errors: u64 = records.iter().flat_map(|r| r.stages.iter()).filter(|s| s.2 >= 500).count() as u64;
    let voted = records.iter().filter(|r| r.voted_at.is_some()).count() as u64;
    let lost = outcomes.get("lost_vote").copied().unwrap_or(0);
    let undelivered = outcomes.get("code_not_delivered").copied().unwrap_or(0);
    let transport = records.iter().filter(|r| r.outcome.contains("transport")).count() as u64;
    let store_ok = stored.is_none_or(|t| t.ballots == voted && t.participation == t.ballots);
    let failed = lost > 0 || undelivered > 0 || server_errors > 0 || transport > 0 || !store_ok;
    let bucket = (plan.window.max(elapsed) / 60.0).max(1.0);
    let buckets = (elapsed / bucket).ceil() as usize + 1;
    let mut over_time = Vec::new();
    for b in 0..buckets {
        let end = (b + 1) as f64 * bucket;
        let cast = records.iter().filter(|r| r.voted_at.is_some_and(|t| t < end)).count();
        over_time.push(json!({"t_secs": end, "ballots": cast}));
    }
    json!({
        "target": target.base,
        "election": target.election,
        "plan": {
            "voters": plan.voters, "window_secs": plan.window, "spike_frac": plan.spike_frac,
            "rush_frac": plan.rush_frac, "rush_end": plan.rush_end, "typo_frac": plan.typo_frac,
            "resend_frac": plan.resend_frac, "return_frac": plan.return_frac, "return_secs": plan.return_secs,
            "seed": plan.seed,
        },
        "elapsed_secs": elapsed,
        "stages": stages,
        "outcomes": outcomes,
        "turnout_over_time": over_time,
        "checks": {
            "voted": voted,
            "server_errors": server_errors,
            "transport_errors": transport,
            "lost_votes": lost,
            "undelivered_codes": undelivered,
            "store": stored.map(|t| json!({"ballots": t.ballots, "participation": t.participation})),
            "store_matches": store_ok,
            "failed": failed,
        },
    })
}

fn print_summary(r: &serde_json::Value) {
    println!("\nstage           count     p50 ms    p95 ms    p99 ms    max ms   statuses");
    for stage in STAGES {
        let s = &r["stages"][stage];
        if s["count"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        let f = |k: &str| s[k].as_f64().unwrap_or(0.0);
        println!(
            "{stage:<14} {:>6} {:>10.1} {:>9.1} {:>9.1} {:>9.1}   {}",
            s["count"],
            f("p50_ms"),
            f("p95_ms"),
            f("p99_ms"),
            f("max_ms"),
            s["statuses"]
        );
    }
    println!("outcomes: {}", r["outcomes"]);
    println!("checks:   {}", r["checks"]);
    println!("elapsed:  {:.1} s", r["elapsed_secs"].as_f64().unwrap_or(0.0));
}

fn chart(path: &std::path::Path, records: &[Record], span: f64) -> anyhow::Result<()> {
    let bucket = (span / 60.0).max(1.0);
    let n = (span / bucket).ceil() as usize + 1;
    let mut cast = vec![0.0; n];
    let mut delivered = vec![0.0; n];
    let mut vote_lat: HashMap<usize, Vec<Duration>> = HashMap::new();
    let mut code_lat: HashMap<usize, Vec<Duration>> = HashMap::new();
    for r in records {
        if let Some(t) = r.voted_at {
            let b = ((t / bucket) as usize).min(n - 1);
            cast[b] += 1.0;
            if let Some(v) = r.stages.iter().find(|s| s.0 == "vote") {
                vote_lat.entry(b).or_default().push(v.1);
            }
        }
        if let Some(t) = r.delivered_at {
            let b = ((t / bucket) as usize).min(n - 1);
            delivered[b] += 1.0;
            if let Some(c) = r.stages.iter().find(|s| s.0 == "code_delivery") {
                code_lat.entry(b).or_default().push(c.1);
            }
        }
    }
    let cumulative = |v: &[f64]| -> Vec<(f64, f64)> {
        let mut sum = 0.0;
        v.iter()
            .enumerate()
            .map(|(i, x)| {
                sum += x;
                ((i + 1) as f64 * bucket, sum)
            })
            .collect()
    };
    let p95 = |m: &mut HashMap<usize, Vec<Duration>>, secs: bool| -> Vec<(f64, f64)> {
        (0..n)
            .filter_map(|b| {
                let v = m.get_mut(&b)?;
                let s = Summary::of(v);
                Some(((b + 1) as f64 * bucket, if secs { s.p95.as_secs_f64() } else { ms(s.p95) }))
            })
            .collect()
    };
    let panels = [
        Panel {
            title: "TURNOUT",
            y_label: "VOTERS",
            series: vec![
                Series { name: "CODES DELIVERED", color: [230, 140, 20], points: cumulative(&delivered) },
                Series { name: "BALLOTS CAST", color: [20, 90, 200], points: cumulative(&cast) },
            ],
        },
        Panel {
            title: "CODE DELIVERY P95",
            y_label: "SECONDS",
            series: vec![Series { name: "REQUEST TO INBOX", color: [200, 40, 40], points: p95(&mut code_lat, true) }],
        },
        Panel {
            title: "VOTE P95",
            y_label: "MS",
            series: vec![Series { name: "POST BALLOT", color: [30, 150, 60], points: p95(&mut vote_lat, false) }],
        },
    ];
    write_png(path, "SECONDS SINCE OPENING", n as f64 * bucket, &panels)
}
