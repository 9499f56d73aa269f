//! `turnout-ballot count`: recounts a BLT file (Turnout's export, or any other tool's)
//! and prints who is elected, one name a line exactly as the file writes it, in order of
//! election (candidates elected together, most votes first); `--json` prints the whole
//! count sheet. Needs no store and no settings.

use turnout_count::{Lot, Method, blt};

pub const USAGE: &str =
    "turnout-ballot count --method irv|ers97|scottish|meek [--seats N] [--never-exclude NAME] [--json] FILE.blt";

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub method: Method,
    pub seats: Option<usize>,
    /// A candidate (by name, as the file writes it) the rule never excludes: the bye-law
    /// "RON is never excluded", as the election counted it.
    pub never_exclude: Option<String>,
    pub json: bool,
    pub file: String,
}

/// The command line after `count`.
pub fn parse(args: &[&str]) -> Result<Args, String> {
    let (mut method, mut seats, mut json, mut file, mut never_exclude) = (None, None, false, None, None);
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--method" => {
                let name = it.next().ok_or("--method needs a rule")?;
                let ranked = Method::ranked_names();
                method =
                    Some(Method::parse(name).filter(|_| ranked.contains(name)).ok_or_else(|| {
                        format!("unknown method {name:?} for a BLT file: one of {}", ranked.join(", "))
                    })?);
            }
            "--seats" => {
                let n = it.next().ok_or("--seats needs a number")?;
                seats = Some(
                    n.parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("--seats {n:?}: a whole number, 1 or more"))?,
                );
            }
            "--never-exclude" => {
                never_exclude = Some(it.next().ok_or("--never-exclude needs a candidate's name")?.to_string());
            }
            "--json" => json = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path if file.is_none() => file = Some(path.to_owned()),
            extra => return Err(format!("one file only ({extra:?} is a second)")),
        }
    }
    Ok(Args {
        method: method.ok_or("--method is required")?,
        seats,
        never_exclude,
        json,
        file: file.ok_or("which BLT file?")?,
    })
}

/// The whole command: prints the outcome and returns the exit status (0; 1 for a file
/// that can't be read or counted; 2 for a bad command line, with the usage).
pub fn main(args: &[&str]) -> i32 {
    use std::io::Write as _;
    let args = match parse(args) {
        Ok(a) => a,
        Err(why) => {
            eprintln!("turnout-ballot count: {why}\nusage: {USAGE}");
            return 2;
        }
    };
    match read(&args.file).and_then(|bytes| run(&args, &bytes)) {
        Ok(out) => {
            // A closed pipe (`| head`) is not an error of the count.
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            0
        }
        Err(why) => {
            eprintln!("turnout-ballot count: {why}");
            1
        }
    }
}

/// The file, refused past the reader's size limit before it is read whole.
fn read(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(blt::MAX_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() > blt::MAX_BYTES {
        return Err(format!("{path}: over {} MB, more than a BLT file of any election", blt::MAX_BYTES >> 20));
    }
    Ok(bytes)
}

/// The output for `bytes` (the file's content), or why it can't be counted.
pub fn run(args: &Args, bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8 text ({e})", args.file))?;
    let mut profile = blt::read(text).map_err(|e| format!("{}: {e}", args.file))?;
    if let Some(seats) = args.seats {
        if seats > profile.standing().len() {
            return Err(format!("--seats {seats}: only {} candidates stand", profile.standing().len()));
        }
        profile.seats = seats;
    }
    if let Some(name) = &args.never_exclude {
        let at = profile.candidates.iter().position(|c| c == name);
        profile.never_excluded =
            Some(at.ok_or_else(|| format!("--never-exclude {name:?}: no candidate of that name"))?);
    }
    let sheet = args.method.count(&profile, &Lot::for_file(&profile, bytes))?;
    if args.json {
        return serde_json::to_string_pretty(&sheet).map(|s| s + "\n").map_err(|e| e.to_string());
    }
    Ok(sheet.elected_names().iter().map(|n| format!("{n}\n")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "3 1\n4 1 2 0\n3 2 0\n2 3 2 0\n0\n\"Ada \"\"A\"\" Lovelace\"\n\"Bo\"\n\"Cy\"\n\"Test\"\n";

    #[test]
    fn the_winners_are_printed_as_the_file_names_them() {
        let args = parse(&["--method", "irv", "f.blt"]).unwrap();
        assert_eq!(run(&args, FILE.as_bytes()).unwrap(), "Bo\n");
        let args = parse(&["f.blt", "--method", "scottish", "--seats", "2"]).unwrap();
        assert_eq!(run(&args, FILE.as_bytes()).unwrap(), "Ada \"A\" Lovelace\nBo\n");
        let json: serde_json::Value =
            serde_json::from_str(&run(&parse(&["--method", "irv", "--json", "f"]).unwrap(), FILE.as_bytes()).unwrap())
                .unwrap();
        assert_eq!(json["elected"], serde_json::json!([1]));
        assert_eq!(json["stages"][0]["votes"], serde_json::json!([4, 3, 2]));
        // ERS97's quota is 3.00 (9 ÷ 3): Ada (4) and Bo (3) both have it at once, Ada first.
        let args = parse(&["--method", "ers97", "--seats", "2", "f"]).unwrap();
        assert_eq!(run(&args, FILE.as_bytes()).unwrap(), "Ada \"A\" Lovelace\nBo\n");
        let args = parse(&["--method", "meek", "--seats", "2", "--json", "f"]).unwrap();
        let json: serde_json::Value = serde_json::from_str(&run(&args, FILE.as_bytes()).unwrap()).unwrap();
        assert_eq!((json["method"].as_str(), json["decimals"].as_u64()), (Some("meek"), Some(6)));
        assert_eq!(json["elected"], serde_json::json!([0, 1]));
    }

    #[test]
    fn a_candidate_never_excluded_stays_in_the_count() {
        // Cy has the fewest and goes first; protected, Bo goes and Cy takes Bo's papers.
        let file = "3 1\n4 1 0\n3 2 3 0\n2 3 0\n0\n\"Ada\"\n\"Bo\"\n\"Cy\"\n\"T\"\n";
        let plain = parse(&["--method", "irv", "--json", "f"]).unwrap();
        let sheet: serde_json::Value = serde_json::from_str(&run(&plain, file.as_bytes()).unwrap()).unwrap();
        assert_eq!(sheet["stages"][1]["action"]["excluded"], serde_json::json!([2]));
        let kept = parse(&["--method", "irv", "--never-exclude", "Cy", "f"]).unwrap();
        assert_eq!(run(&kept, file.as_bytes()).unwrap(), "Cy\n");
        let nobody = parse(&["--method", "irv", "--never-exclude", "Zed", "f"]).unwrap();
        assert!(run(&nobody, file.as_bytes()).unwrap_err().contains("no candidate of that name"));
    }

    #[test]
    fn bad_command_lines_and_files_say_what_is_wrong() {
        assert!(parse(&["f.blt"]).unwrap_err().contains("--method"));
        assert!(parse(&["--method", "borda", "f"]).unwrap_err().contains("one of irv, ers97, scottish, meek"));
        assert!(parse(&["--method", "approval", "f"]).unwrap_err().contains("for a BLT file"));
        assert!(parse(&["--method", "irv", "--seats", "0", "f"]).unwrap_err().contains("1 or more"));
        assert!(parse(&["--method", "irv", "a", "b"]).unwrap_err().contains("one file only"));
        let irv2 = parse(&["--method", "irv", "--seats", "2", "f"]).unwrap();
        assert!(run(&irv2, FILE.as_bytes()).unwrap_err().contains("IRV fills one seat"));
        let args = parse(&["--method", "irv", "f"]).unwrap();
        assert!(run(&args, b"3 1\n1 9 0\n").unwrap_err().contains("line 2"));
        assert!(run(&args, &[0xff, 0xfe]).unwrap_err().contains("not UTF-8"));
    }
}
