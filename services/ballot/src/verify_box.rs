//! `turnout-ballot verify-box`: checks a box export (`turnout_core::box_export`) offline
//! and recounts it. It recomputes the ballots root over the file's ballot lines, compares
//! it and the number of ballots with the header, and with the root published at close
//! when `--root` gives it, then counts every contest with `results::count_contest`, the
//! function the results page counts with, and prints who is elected. Needs no store and
//! no settings: anyone holding the file and the published root can run it.

use sha2::Digest as _;
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
        "box {} ({}): {} ballots, ballots root {}, file SHA-256 {}\n",
        parsed.election,
        printable(&parsed.title),
        parsed.ballots.len(),
        hex(&parsed.root),
        hex(&sha2::Sha256::digest(bytes))
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

/// `verify-box --election ID`: the live box, read with this server's key. Every seal must
/// open, participation must equal ballots, the counts must not have fallen below a count
/// the audit log recorded, and once sealed the box must still have the recorded roots;
/// the audit chain itself must verify (up to `anchor`, when given), since the records are
/// in it. After close + grace the box is exported and recounted exactly as
/// `verify-box EXPORT --root` would; before it, nothing about the choices is printed.
pub async fn live(
    store: &dyn turnout_core::store::Store,
    election: &str,
    anchor: Option<&turnout_core::store::AuditHead>,
    now: jiff::Timestamp,
) -> Result<String, String> {
    use turnout_core::box_record;
    let id = turnout_core::domain::ElectionId::parse(election).map_err(|e| format!("--election: {e}"))?;
    let store_error = |e: turnout_core::store::StoreError| format!("reading the store: {e}");
    let election = store.election(&id).await.map_err(store_error)?.ok_or(format!("there is no election {id}"))?;
    // The log before the box: a count the box watch writes in between is then never
    // higher than the box read after it (no false "ballots were removed").
    let audit = store.verify_audit(anchor).await.map_err(store_error)?;
    let recorded = box_record::recorded(store, &id).await.map_err(store_error)?;
    let contents = store.box_contents(&id).await.map_err(store_error)?;
    let mut problems = box_record::check_box(&election, &contents, &recorded);
    if let (Some(seq), Some(why)) = (audit.broken_at, &audit.problem) {
        problems.push(format!("the audit log, which holds the box's records, is broken at entry {seq}: {why}"));
    }
    if !problems.is_empty() {
        let list: String = problems.iter().map(|p| format!("\n  - {p}")).collect();
        return Err(format!("box {id}: THE BOX DOES NOT MATCH:{list}"));
    }
    let seal = box_record::BoxSeal::of(&election, &contents);
    let mut out = format!(
        "box {id} ({}): {} ballots, every seal opens, participation {} = ballots\nreceipts root {}\nballots root {}\nbox export SHA-256 {}\n",
        election.title, seal.ballots, contents.participation, seal.receipts_root, seal.ballots_root, seal.export_sha256
    );
    out.push_str(&match (&recorded.seal, recorded.most) {
        (Some(_), _) => "the roots match those written to the audit log at close + grace\n".to_owned(),
        (None, Some(most)) => {
            format!("not sealed yet; the audit log last counted {} ballots, and none are missing\n", most.ballots)
        }
        (None, None) => "not sealed yet; the audit log has counted no ballots yet\n".to_owned(),
    });
    if now < turnout_core::console::results_from(&election) {
        out.push_str("results are sealed until close + grace: no recount is shown\n");
        return Ok(out);
    }
    let export = turnout_core::box_export::box_export(&election, &contents.ballots);
    let args = Args {
        file: export.file_name.clone(),
        root: recorded.seal.as_ref().and_then(|s| merkle::hash_from_hex(&s.ballots_root)),
    };
    out.push_str(&run(&args, export.body.as_bytes())?);
    Ok(out)
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
