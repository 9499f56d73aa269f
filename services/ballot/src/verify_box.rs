//! `turnout-ballot verify-box`: checks a box export (`turnout_core::box_export`) offline
//! and recounts it. It recomputes the ballots root over the file's ballot lines, compares
//! it and the number of ballots with the header, and with the root published at close
//! when `--root` gives it, then counts every contest with `results::count_contest`, the
//! function the results page counts with, and prints who is elected. Needs no store and
//! no settings: anyone holding the file and the published root can run it.

use turnout_core::box_export::{self, MAX_BYTES};
use turnout_core::domain::hex;
use turnout_core::merkle::{self, Hash};
use turnout_core::results::{ContestResult, count_contest};

pub const USAGE: &str = "turnout-ballot verify-box EXPORT [--root HEX]";

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub file: String,
    /// The ballots root as published at close (audit log, results page, officers' mail).
    pub root: Option<Hash>,
}

/// The command line after `verify-box`.
pub fn parse(args: &[&str]) -> Result<Args, String> {
    let (mut file, mut root) = (None, None);
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--root" => {
                let hex = it.next().ok_or("--root needs the published root")?;
                root = Some(
                    merkle::hash_from_hex(hex)
                        .ok_or_else(|| format!("--root {hex:?}: the root is 64 hex digits, as published"))?,
                );
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path if file.is_none() => file = Some(path.to_owned()),
            extra => return Err(format!("one file only ({extra:?} is a second)")),
        }
    }
    Ok(Args { file: file.ok_or("which box export?")?, root })
}

/// The whole command: prints the check and the recount, and returns the exit status (0
/// when everything matches; 1 for a file that can't be read, differs from its header or
/// the published root, or can't be counted; 2 for a bad command line, with the usage).
pub fn main(args: &[&str]) -> i32 {
    use std::io::Write as _;
    let args = match parse(args) {
        Ok(a) => a,
        Err(why) => {
            eprintln!("turnout-ballot verify-box: {why}\nusage: {USAGE}");
            return 2;
        }
    };
    match read(&args.file).and_then(|bytes| run(&args, &bytes)) {
        Ok(out) => {
            // A closed pipe (`| head`) is not an error of the check.
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            0
        }
        Err(why) => {
            eprintln!("turnout-ballot verify-box: {why}");
            1
        }
    }
}

/// The file, refused past the reader's size limit before it is read whole.
fn read(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() > MAX_BYTES {
        return Err(format!("{path}: over {} GiB, more than the box of any election", MAX_BYTES >> 30));
    }
    Ok(bytes)
}

/// The report for `bytes` (the file's content), or everything that does not match.
pub fn run(args: &Args, bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8 text ({e})", args.file))?;
    let parsed = box_export::read_box_export(text).map_err(|e| format!("{}: {e}", args.file))?;
    let problems = parsed.problems(args.root.as_ref());
    if !problems.is_empty() {
        let list: String = problems.iter().map(|p| format!("\n  - {p}")).collect();
        return Err(format!("{}: THE BOX DOES NOT MATCH:{list}", args.file));
    }
    let mut out = format!(
        "box {} ({}): {} ballots, ballots root {}\n",
        parsed.election,
        parsed.title,
        parsed.ballots.len(),
        hex(&parsed.root)
    );
    out.push_str(match args.root {
        Some(_) => "the root matches the header and the published root\n",
        None => "the root matches the header (give --root to check it against the published one)\n",
    });
    for contest in &parsed.contests {
        let result = count_contest(&parsed.election, &parsed.title, contest, &parsed.ballots)
            .map_err(|e| format!("{}: contest {}: the count could not run: {e}", args.file, contest.id))?;
        out.push_str(&contest_line(&result));
    }
    Ok(out)
}

/// One contest's outcome: its rule and seats, then who is elected in order of election,
/// the seats left unfilled, and the seed of any tie drawn by lot (the SHA-256 of the
/// contest's own export, as the results page shows it).
fn contest_line(r: &ContestResult) -> String {
    let names: Vec<String> = r.elected.iter().map(|o| printable(&o.name)).collect();
    let mut line = format!(
        "{} ({}, {} seat{}, {} voted, {} abstained, {} blank): ",
        r.id,
        r.method,
        r.seats,
        if r.seats == 1 { "" } else { "s" },
        r.voted,
        r.abstained,
        r.blank
    );
    line.push_str(&if names.is_empty() {
        "nobody elected".to_owned()
    } else {
        format!("elected {}", names.join("; "))
    });
    match (r.ron_elected, r.unfilled) {
        (true, n) => line.push_str(&format!("; Re-Open Nominations won, {n} unfilled")),
        (false, 0) => {}
        (false, n) => line.push_str(&format!("; {n} unfilled")),
    }
    if r.sheet.stages.iter().flat_map(|s| &s.ties).any(|t| t.contains("lot")) {
        line.push_str(&format!("; a tie drawn by lot, seed {}", r.export_sha256));
    }
    line.push('\n');
    line
}

/// A name as one line of the report: the header is not under the root, so a line break
/// or another control character in it must not forge a line of its own.
fn printable(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_takes_a_file_and_a_published_root() {
        let root = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";
        assert_eq!(parse(&["box.jsonl"]).unwrap(), Args { file: "box.jsonl".into(), root: None });
        let args = parse(&["--root", &root.to_uppercase(), "box.jsonl"]).unwrap();
        assert_eq!(args.root.map(|r| hex(&r)).as_deref(), Some(root));
        assert!(parse(&[]).unwrap_err().contains("which box export"));
        assert!(parse(&["box", "--root"]).unwrap_err().contains("--root needs"));
        assert!(parse(&["box", "--root", "abc"]).unwrap_err().contains("64 hex digits"));
        assert!(parse(&["a", "b"]).unwrap_err().contains("one file only"));
        assert!(parse(&["a", "--json"]).unwrap_err().contains("unknown option --json"));
    }

    #[test]
    fn a_file_that_is_no_box_says_so() {
        let args = parse(&["f"]).unwrap();
        assert!(run(&args, &[0xff]).unwrap_err().contains("not UTF-8"));
        assert!(run(&args, b"3 1\n1 2 0\n").unwrap_err().contains("f: line 1: not a box export"));
    }

    #[test]
    fn a_name_cannot_forge_a_line_of_the_report() {
        assert_eq!(printable("Ada\nrep (plurality): elected Mallory"), "Ada\u{fffd}rep (plurality): elected Mallory");
        assert_eq!(printable("Zoë O'Brien, Jr."), "Zoë O'Brien, Jr.");
    }
}
