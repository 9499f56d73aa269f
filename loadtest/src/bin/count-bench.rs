//! `count-bench`: how long a count takes. 100,000 ranked ballots over 15 candidates (each
//! voter ranks 1 to 15 of them, first preferences skewed as real ones are), counted for
//! 5 seats by each STV rule (Scottish, ERS97, Meek) and for one seat by IRV; prints the
//! median of `--runs` runs. The profile is made from a fixed seed, so every run counts
//! the same ballots.

use std::time::{Duration, Instant};

use turnout_count::{Ballot, Lot, Method, Profile};

fn main() -> anyhow::Result<()> {
    let mut runs = 3usize;
    let mut ballots = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0).unwrap_or(3),
            "--ballots" => ballots = args.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0).unwrap_or(ballots),
            other => anyhow::bail!("unknown option {other}: count-bench [--runs N] [--ballots N]"),
        }
    }
    let profile = profile(ballots, 15, 5);
    println!("count-bench: {ballots} ballots, 15 candidates, 5 seats (IRV: 1), median of {runs} runs");
    let lot = Lot::Seed(b"count-bench".to_vec());
    for method in [Method::Scottish, Method::Ers97, Method::Meek, Method::Irv] {
        let mut p = profile.clone();
        if method == Method::Irv {
            p.seats = 1;
        }
        let mut times = Vec::new();
        let mut stages = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let sheet = method.count(&p, &lot).map_err(anyhow::Error::msg)?;
            times.push(started.elapsed());
            stages = sheet.stages.len();
        }
        times.sort();
        let median: Duration = times[times.len() / 2];
        println!(
            "  {:<9} {:>8.1} ms  ({stages} stages)",
            format!("{method:?}").to_lowercase(),
            median.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// A deterministic profile: xorshift64, first preferences weighted towards low numbers.
fn profile(ballots: usize, candidates: usize, seats: usize) -> Profile {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::with_capacity(ballots);
    for _ in 0..ballots {
        let mut order: Vec<usize> = (0..candidates).collect();
        // Skew: a candidate's key is random, smaller for lower numbers.
        let mut keys: Vec<(u64, usize)> = order.iter().map(|&c| ((next() % 1000) * (c as u64 + 3), c)).collect();
        keys.sort();
        order = keys.into_iter().map(|(_, c)| c).collect();
        let ranked = 1 + (next() as usize % candidates);
        out.push(Ballot { weight: 1, ranks: order[..ranked].iter().map(|&c| vec![c]).collect() });
    }
    Profile {
        title: "count-bench".into(),
        candidates: (1..=candidates).map(|c| format!("Candidate {c}")).collect(),
        seats,
        withdrawn: Default::default(),
        tie_order: None,
        never_excluded: None,
        ballots: out,
    }
}
