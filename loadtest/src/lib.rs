//! Shared pieces of the load tools: latency summaries and concurrent request runners.

pub mod chart;
pub mod flow;

use std::time::Duration;

use anyhow::Context;

/// Runs a load tool's body until it finishes or the process is asked to stop (Ctrl-C,
/// SIGTERM, SIGHUP). On a signal the body is dropped at its next await point, and with it
/// the stack it started: slapd, nginx, the services and the mail sink stop too, instead
/// of running on after the tool has gone. (A body inside a blocking call, such as a
/// running wrk, is dropped when that call returns.)
pub async fn until_stopped<F>(body: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut task = tokio::spawn(body);
    tokio::select! {
        done = &mut task => match done {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(e).context("the load tool's task"),
        },
        signal = turnout_devstack::process::stop_requested() => {
            let signal = signal.context("listening for signals")?;
            eprintln!("{signal}: stopping the stack ...");
            task.abort();
            // Wait until the body, and the stack it owns, has been dropped.
            let _ = task.await;
            anyhow::bail!("stopped by {signal}")
        }
    }
}

/// Latency percentiles over a set of samples.
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort();
        let at = |q: f64| {
            if samples.is_empty() {
                Duration::ZERO
            } else {
                samples[((samples.len() as f64 - 1.0) * q).round() as usize]
            }
        };
        Self { count: samples.len(), p50: at(0.50), p95: at(0.95), p99: at(0.99), max: at(1.0) }
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of a few runs' results.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() { 0.0 } else { values[values.len() / 2] }
}

/// `--name value` options, each allowed name given once; unknown names are an error that
/// lists the known ones.
pub struct Options(std::collections::HashMap<String, String>);

/// The command line's options; `--help` (or `-h`) prints the usage and exits.
pub fn options(known: &[&str]) -> anyhow::Result<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        let tool = std::env::args()
            .next()
            .and_then(|p| std::path::Path::new(&p).file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tool".into());
        println!("{}", usage(&tool, known));
        std::process::exit(0);
    }
    options_from(args, known)
}

/// What `--help` prints.
pub fn usage(tool: &str, known: &[&str]) -> String {
    let listed = known.iter().map(|k| format!("[--{k} VALUE]")).collect::<Vec<_>>().join(" ");
    format!(
        "usage: {tool} {listed}\n\
         Each option and its default are described at the top of loadtest/src/bin/{tool}.rs;\n\
         BENCHMARKS.md shows the runs behind its numbers."
    )
}

pub fn options_from(args: impl IntoIterator<Item = String>, known: &[&str]) -> anyhow::Result<Options> {
    let listed = || known.iter().map(|k| format!("--{k}")).collect::<Vec<_>>().join(" ");
    let mut map = std::collections::HashMap::new();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let name = flag.strip_prefix("--").filter(|n| known.contains(n));
        let Some(name) = name else { anyhow::bail!("unknown option {flag}; options: {}", listed()) };
        let value = args.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        map.insert(name.to_owned(), value);
    }
    Ok(Options(map))
}

impl Options {
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| anyhow::anyhow!("--{name} {v}: {e}")),
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// One wrk run's numbers, parsed from its output (with `--latency` and one of the
/// `loadtest/wrk` scripts, which print the status counts).
#[derive(Debug, Default)]
pub struct WrkRun {
    pub rate_2xx: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub statuses: std::collections::BTreeMap<u16, u64>,
    pub socket_errors: u64,
}

impl WrkRun {
    pub fn run(cmd: &mut std::process::Command) -> anyhow::Result<Self> {
        let out = cmd.output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut run = WrkRun::default();
        for line in text.lines().map(str::trim) {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("50%"), Some(v)) => run.p50_ms = wrk_ms(v)?,
                (Some("99%"), Some(v)) => run.p99_ms = wrk_ms(v)?,
                (Some("rate_2xx:"), Some(v)) => run.rate_2xx = v.trim_end_matches("/s").parse()?,
                (Some("statuses:"), _) => {
                    for pair in line["statuses:".len()..].split_whitespace() {
                        let (code, n) = pair.split_once('=').ok_or_else(|| anyhow::anyhow!("bad pair {pair}"))?;
                        run.statuses.insert(code.parse()?, n.parse()?);
                    }
                }
                (Some("Socket"), Some("errors:")) => {
                    run.socket_errors =
                        line.split(',').filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok()).sum();
                }
                _ => {}
            }
        }
        anyhow::ensure!(run.p50_ms > 0.0, "no latency distribution in wrk's output:\n{text}");
        Ok(run)
    }

    pub fn status(&self, code: u16) -> u64 {
        self.statuses.get(&code).copied().unwrap_or(0)
    }

    /// Answers other than 200, 201 and 409.
    pub fn other(&self) -> u64 {
        self.statuses.iter().filter(|(c, _)| !matches!(c, 200 | 201 | 409)).map(|(_, n)| n).sum()
    }
}

fn wrk_ms(v: &str) -> anyhow::Result<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(|| anyhow::anyhow!("no unit in {v}"))?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse()?;
    Ok(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        other => anyhow::bail!("unknown unit {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_parse_known_names_and_refuse_the_rest() {
        let help = usage("login-bench", &["runs", "pin"]);
        assert!(help.starts_with("usage: login-bench [--runs VALUE] [--pin VALUE]\n"), "{help}");
        assert!(help.contains("loadtest/src/bin/login-bench.rs"), "{help}");
        let o = options_from(args(&["--runs", "5"]), &["runs", "secs"]).unwrap();
        assert_eq!(o.get("runs", 3).unwrap(), 5);
        assert_eq!(o.get("secs", 7).unwrap(), 7);
        let unknown = options_from(args(&["--rnus", "5"]), &["runs"]).err().unwrap().to_string();
        assert!(unknown.contains("--rnus") && unknown.contains("--runs"), "{unknown}");
        assert!(options_from(args(&["--runs"]), &["runs"]).is_err(), "a missing value");
        let bad = options_from(args(&["--runs", "x"]), &["runs"]).unwrap();
        assert!(bad.get::<u32>("runs", 3).is_err(), "a bad number");
    }

    #[test]
    fn wrk_output_is_read_with_units_and_statuses() {
        let out = "  Latency Distribution\n     50%    1.20ms\n     99%  250.00us\nstatuses: 201=10 409=2\nrate_2xx: 123.5/s\n  Socket errors: connect 1, read 2, write 0, timeout 3\n";
        let run = WrkRun::parse(out).unwrap();
        assert_eq!((run.p50_ms, run.p99_ms, run.rate_2xx), (1.2, 0.25, 123.5));
        assert_eq!((run.status(201), run.status(409), run.other(), run.socket_errors), (10, 2, 0, 6));
        assert!(WrkRun::parse("no latency here").is_err());
    }
}
