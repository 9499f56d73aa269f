//! `ab` for Turnout: Apache Bench's options and summary, but each request carries the next
//! session from a sessions file (ab itself sends one fixed cookie, so it can only ever
//! cast one ballot). Keep-alive like `ab -k`.
//!
//! `ab-sessions -n 4000 -c 100 [-m POST] [-b BODY] -s sessions.tsv URL`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use turnout_loadtest::ms;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut n, mut c, mut method, mut body, mut sessions, mut url) =
        (1usize, 1usize, "GET".to_owned(), None, None, None);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| anyhow::anyhow!("{a} needs a value"));
        match a.as_str() {
            "-n" => n = val()?.parse()?,
            "-c" => c = val()?.parse()?,
            "-m" => method = val()?,
            "-b" => body = Some(val()?),
            "-s" => sessions = Some(val()?),
            "-k" => {}
            u if !u.starts_with('-') => url = Some(u.to_owned()),
            other => {
                anyhow::bail!("unknown option {other}; usage: ab-sessions -n N -c C [-m POST] [-b BODY] -s FILE URL")
            }
        }
    }
    let url = url.ok_or_else(|| anyhow::anyhow!("give the URL"))?;
    let file = sessions.ok_or_else(|| anyhow::anyhow!("give -s SESSIONS_FILE (from prepare-sessions)"))?;
    let cookies: Vec<String> =
        std::fs::read_to_string(&file)?.lines().filter_map(|l| l.split_once('\t').map(|(_, c)| c.to_owned())).collect();
    anyhow::ensure!(!cookies.is_empty(), "no sessions in {file}");
    if cookies.len() < n {
        eprintln!("note: {} sessions for {n} requests: sessions repeat (a repeated ballot answers 409)", cookies.len());
    }
    let method: reqwest::Method = method.parse()?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(c).timeout(Duration::from_secs(30)).build()?;
    let started = Instant::now();
    let results: Vec<Result<(u16, Duration), String>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let mut req = http
                .request(method.clone(), &url)
                .header("cookie", &cookies[i % cookies.len()])
                .header("accept", "application/json");
            if let Some(b) = &body {
                req = req.header("content-type", "application/json").body(b.clone());
            }
            async move {
                let t = Instant::now();
                let res = req.send().await.map_err(|e| e.to_string())?;
                let status = res.status().as_u16();
                res.bytes().await.map_err(|e| e.to_string())?;
                Ok((status, t.elapsed()))
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let taken = started.elapsed().as_secs_f64();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for r in results {
        match r {
            Ok((s, l)) => {
                *statuses.entry(s).or_default() += 1;
                latencies.push(l);
            }
            Err(_) => failed += 1,
        }
    }
    let non2xx: u64 = statuses.iter().filter(|(s, _)| !(200..300).contains(*s)).map(|(_, n)| n).sum();
    let ok2xx: u64 = statuses.iter().filter(|(s, _)| (200..300).contains(*s)).map(|(_, n)| n).sum();
    println!("Server URL:             {url}");
    println!("Concurrency Level:      {c}");
    println!("Time taken for tests:   {taken:.3} seconds");
    println!("Complete requests:      {}", n - failed);
    println!("Failed requests:        {failed}");
    println!("Non-2xx responses:      {non2xx}");
    println!("Requests per second:    {:.2} [#/sec] (mean)", n as f64 / taken);
    println!("2xx per second:         {:.2} [#/sec] (mean)", ok2xx as f64 / taken);
    println!("Time per request:       {:.3} [ms] (mean)", taken * 1000.0 * c as f64 / n as f64);
    println!(
        "Status codes:           {}",
        statuses.iter().map(|(s, n)| format!("{s}={n}")).collect::<Vec<_>>().join(" ")
    );
    println!("Percentage of the requests served within a certain time (ms)");
    latencies.sort();
    for pct in [50, 66, 75, 80, 90, 95, 98, 99, 100] {
        let idx = ((latencies.len() as f64 - 1.0) * f64::from(pct) / 100.0).round() as usize;
        let v = latencies.get(idx).copied().unwrap_or_default();
        println!("  {pct:>3}%  {:>7.1}", ms(v));
    }
    println!("2XX_COUNT {ok2xx}");
    Ok(())
}
