//! The BLT ballot format (Hill, Wichmann and Woodall, 1987), as OpenSTV, OpaVote and
//! Droop read and write it:
//!
//! ```text
//! 4 2              candidates, seats
//! -2               withdrawn candidates (optional), or Droop's [withdrawn 2]
//! 3 1 3 4 0        weight, then the ranking (1-based ids; `a=b` ranked equal; `-` skipped), 0
//! (id) 1 3 0       a ballot with an id instead of a weight (weight 1)
//! 0                the end of the ballots
//! "Adam"           one name per candidate, in id order
//! "Title"          the title, then optionally a source and a comment
//! ```
//!
//! The reader is tolerant of what real files hold: `#` and `/* */` comments, Droop's
//! `[tie …]`, `[nick …]`, `[withdrawn …]` and other `[option …]` lines, names with `""`
//! for a quote (as Scottish council files write them), a bare single-word name, an
//! unquoted title, lines padded with spaces, a byte-order mark. The writer writes only the
//! plain form, quoting every name (a quote inside doubled).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use crate::profile::{Ballot, MAX_TOTAL_WEIGHT, Profile};

/// Candidates in one file, at most.
pub const MAX_CANDIDATES: usize = 1000;
/// Ballot lines in one file, at most.
pub const MAX_BALLOT_LINES: usize = 10_000_000;
/// The largest file read (a 100,000-ballot election is about 4 MB).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BltError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A double-quoted string, quotes removed and `""` made `"`.
    Quoted(String),
    Word(String),
}

#[derive(Debug, Clone)]
struct Tok {
    line: usize,
    token: Token,
}

fn tokens(text: &str) -> Result<Vec<Tok>, BltError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut block_comments = 0usize;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let mut chars = raw.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            if c == '"' && block_comments == 0 {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    if c == '"' {
                        if chars.peek().is_some_and(|&(_, n)| n == '"') {
                            chars.next();
                            s.push('"');
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        s.push(c);
                    }
                }
                if !closed {
                    return Err(BltError { line, message: "a quoted name is not closed on its line".into() });
                }
                out.push(Tok { line, token: Token::Quoted(s) });
                continue;
            }
            if c == '#' && block_comments == 0 {
                break;
            }
            let mut end = raw.len();
            let mut comment = false;
            while let Some(&(i, c)) = chars.peek() {
                if c.is_whitespace() || (c == '"' && i > start) || (c == '#' && block_comments == 0) {
                    end = i;
                    comment = c == '#';
                    break;
                }
                chars.next();
            }
            let word = &raw[start..end];
            if word.starts_with("/*") {
                block_comments += 1;
            }
            if block_comments > 0 {
                if word.ends_with("*/") {
                    block_comments -= 1;
                }
                continue;
            }
            out.push(Tok { line, token: Token::Word(word.to_owned()) });
            if comment {
                break;
            }
        }
    }
    Ok(out)
}

struct Reader {
    toks: Vec<Tok>,
    at: usize,
}

impl Reader {
    fn line(&self) -> usize {
        self.toks.get(self.at).or(self.toks.last()).map_or(1, |t| t.line)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, BltError> {
        Err(BltError { line: self.line(), message: message.into() })
    }
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at).map(|t| &t.token)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.at).map(|t| t.token.clone());
        self.at += 1;
        t
    }
    fn word(&mut self, what: &str) -> Result<String, BltError> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            Some(Token::Quoted(_)) => {
                self.at -= 1;
                self.err(format!("expected {what}, found a quoted string"))
            }
            None => self.err(format!("the file ends where {what} should be")),
        }
    }
    fn number(&mut self, what: &str) -> Result<u64, BltError> {
        let w = self.word(what)?;
        w.parse().or_else(|_| {
            self.at -= 1;
            self.err(format!("expected {what}, found {w:?}"))
        })
    }
}

/// Reads a BLT file.
pub fn read(text: &str) -> Result<Profile, BltError> {
    if text.len() > MAX_BYTES {
        return Err(BltError { line: 1, message: format!("the file is over {} MB", MAX_BYTES >> 20) });
    }
    let mut r = Reader { toks: tokens(text)?, at: 0 };
    let n = r.number("the number of candidates")? as usize;
    if n == 0 || n > MAX_CANDIDATES {
        return r.err(format!("1 to {MAX_CANDIDATES} candidates"));
    }
    let seats_line = r.line();
    let seats = r.number("the number of seats")? as usize;
    if seats == 0 || seats > n {
        return Err(BltError { line: seats_line, message: format!("1 to {n} seats (one per candidate at most)") });
    }
    let mut withdrawn = BTreeSet::new();
    let mut tie_order = None;
    let mut nicks: HashMap<String, usize> = HashMap::new();
    let id = |raw: &str, nicks: &HashMap<String, usize>| -> Option<usize> {
        match raw.parse::<usize>() {
            Ok(i) if (1..=n).contains(&i) => Some(i - 1),
            Ok(_) => None,
            Err(_) => nicks.get(raw).copied(),
        }
    };
    // Withdrawn candidates and options, up to the first ballot.
    loop {
        match r.peek() {
            Some(Token::Word(w)) if w.starts_with('-') => {
                let line = r.line();
                let w = r.word("a withdrawn candidate")?;
                match id(&w[1..], &nicks) {
                    Some(c) => withdrawn.insert(c),
                    None => return Err(BltError { line, message: format!("{w}: not a candidate to withdraw") }),
                };
            }
            Some(Token::Word(w)) if w.starts_with('[') => {
                let opened = r.line();
                let refuse = |message: &str| Err(BltError { line: opened, message: message.into() });
                let mut words = Vec::new();
                let first = r.word("an option")?;
                let mut rest = first.trim_start_matches('[').to_owned();
                loop {
                    let done = rest.ends_with(']');
                    let w = rest.trim_end_matches(']');
                    if !w.is_empty() {
                        words.push(w.to_owned());
                    }
                    if done {
                        break;
                    }
                    rest = match r.next() {
                        Some(Token::Word(w)) => w,
                        Some(Token::Quoted(q)) => q,
                        None => return refuse("an option is not closed with ]"),
                    };
                }
                let (name, args) = words.split_first().map_or(("", &[][..]), |(a, b)| (a.as_str(), b));
                let ids = |args: &[String], nicks: &HashMap<String, usize>| -> Option<Vec<usize>> {
                    args.iter().map(|a| id(a, nicks)).collect()
                };
                match name {
                    "tie" => match ids(args, &nicks) {
                        Some(order) if order.len() == n && order.iter().collect::<BTreeSet<_>>().len() == n => {
                            tie_order = Some(order)
                        }
                        _ => return refuse("[tie …] must name every candidate once"),
                    },
                    "withdrawn" => match ids(args, &nicks) {
                        Some(cs) => withdrawn.extend(cs),
                        None => return refuse("[withdrawn …] names an unknown candidate"),
                    },
                    "nick" => {
                        if args.len() != n || args.iter().collect::<BTreeSet<_>>().len() != n {
                            return refuse("[nick …] must give every candidate a nickname of their own");
                        }
                        nicks = args.iter().enumerate().map(|(i, a)| (a.clone(), i)).collect();
                    }
                    // Counting options of other tools, and undeclared write-ins: not ours.
                    _ => {}
                }
            }
            _ => break,
        }
    }
    let mut ballots = Vec::new();
    let mut total_weight: u64 = 0;
    // Ballots given an id, by index: OpenSTV writes `(id) 1 3 2 0` (a weight of 1 after
    // the id), Droop `(id) 3 2 0`. Read as Droop does, then settled below.
    let mut with_ids = Vec::new();
    loop {
        let line = r.line();
        let has_id = matches!(r.peek(), Some(Token::Word(w)) if w.starts_with('('));
        let weight = if has_id {
            let mut w = r.word("a ballot id")?;
            while !w.ends_with(')') {
                w = match r.next() {
                    Some(Token::Word(w)) => w,
                    _ => return Err(BltError { line, message: "a ballot id is not closed with )".into() }),
                };
            }
            1
        } else {
            r.number("a ballot's weight (0 ends the ballots)")?
        };
        if weight == 0 {
            break;
        }
        if ballots.len() == MAX_BALLOT_LINES {
            return Err(BltError { line, message: format!("more than {MAX_BALLOT_LINES} ballot lines") });
        }
        total_weight = match total_weight.checked_add(weight).filter(|&t| t <= MAX_TOTAL_WEIGHT) {
            Some(t) => t,
            None => {
                return Err(BltError { line, message: format!("the weights add up to more than {MAX_TOTAL_WEIGHT}") });
            }
        };
        let mut ranks = Vec::new();
        let mut tokens_seen = 0usize;
        loop {
            let w = r.word("a preference (0 ends the ballot)")?;
            if w == "0" {
                break;
            }
            tokens_seen += 1;
            if tokens_seen > 4 * n {
                return Err(BltError { line, message: "a ballot ranks more candidates than stand".into() });
            }
            if w == "-" {
                continue;
            }
            let rank: Option<Vec<usize>> = w.split('=').map(|p| id(p, &nicks)).collect();
            match rank {
                Some(rank) if rank.len() <= n => ranks.push(rank),
                Some(_) => {
                    return Err(BltError { line, message: "an equal ranking names more candidates than stand".into() });
                }
                None => {
                    r.at -= 1;
                    return r.err(format!("{w:?} is not a candidate (1 to {n})"));
                }
            }
        }
        if has_id {
            with_ids.push(ballots.len());
        }
        ballots.push(Ballot { weight, ranks });
    }
    // Every id line starting with candidate 1 is OpenSTV's weight of 1 (a Droop file in
    // which every ballot with an id ranks candidate 1 first is read as OpenSTV's).
    if !with_ids.is_empty() && with_ids.iter().all(|&i| ballots[i].ranks.first() == Some(&vec![0])) {
        for &i in &with_ids {
            ballots[i].ranks.remove(0);
        }
    }
    let mut candidates = Vec::with_capacity(n);
    for i in 0..n {
        match r.next() {
            Some(Token::Quoted(s)) | Some(Token::Word(s)) => candidates.push(s),
            None => return r.err(format!("the file names {i} of {n} candidates")),
        }
    }
    let title = match r.next() {
        Some(Token::Quoted(s)) => s,
        Some(Token::Word(first)) => {
            // An unquoted title: the rest of its line.
            let line = r.toks[r.at - 1].line;
            let mut words = vec![first];
            while let Some(t) = r.toks.get(r.at).filter(|t| t.line == line) {
                let (Token::Word(w) | Token::Quoted(w)) = &t.token;
                words.push(w.clone());
                r.at += 1;
            }
            words.join(" ")
        }
        None => String::new(),
    };
    Ok(Profile { title, candidates, seats, withdrawn, tie_order, never_excluded: None, ballots })
}

/// Writes `profile` as a plain BLT file that every reader above accepts.
pub fn write(profile: &Profile) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", profile.candidates.len(), profile.seats);
    if !profile.withdrawn.is_empty() {
        let ids: Vec<String> = profile.withdrawn.iter().map(|c| format!("-{}", c + 1)).collect();
        let _ = writeln!(out, "{}", ids.join(" "));
    }
    // A weight of 0 would end the ballots early: such a ballot counts for nothing anyway.
    for b in profile.ballots.iter().filter(|b| b.weight > 0) {
        let _ = write!(out, "{}", b.weight);
        for rank in &b.ranks {
            let ids: Vec<String> = rank.iter().map(|c| (c + 1).to_string()).collect();
            let _ = write!(out, " {}", ids.join("="));
        }
        out.push_str(" 0\n");
    }
    out.push_str("0\n");
    for name in &profile.candidates {
        let _ = writeln!(out, "{}", quoted(name));
    }
    let _ = writeln!(out, "{}", quoted(&profile.title));
    out
}

fn quoted(s: &str) -> String {
    // A line break would end the name early for every reader: written as a space.
    let one_line: String = s.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    format!("\"{}\"", one_line.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_form_reads_with_withdrawn_candidates_and_weights() {
        let p = read("4 2\n-2\n3 1 3 4 0\n4 1 3 2 0\n0\n\"Adam\"\n\"Basil\"\n\"Charlotte\"\n\"Donald\"\n\"Title\"\n")
            .unwrap();
        assert_eq!((p.candidates.len(), p.seats, p.title.as_str()), (4, 2, "Title"));
        assert_eq!(p.withdrawn, [1].into_iter().collect());
        assert_eq!(p.ballots[0], Ballot { weight: 3, ranks: vec![vec![0], vec![2], vec![3]] });
        assert_eq!(p.candidates[2], "Charlotte");
    }

    #[test]
    fn what_other_tools_write_is_read() {
        let text = "\u{feff}3 1 # three stand\n[tie 3 2 1 ]\n[nick a b c]\n/* a comment\n spanning */\n\
                    (ballot one) a=b c 0\n2 - 2 0   \n1 3 0\n0\n\
                    \"Pat \"\"the Cat\"\" O'Brien\" Bo \"Cy\"\nWard 2 Newlands-Auldburn\n\"source\" \"comment\" trailing words";
        let p = read(text).unwrap();
        assert_eq!(p.tie_order, Some(vec![2, 1, 0]));
        assert_eq!(p.ballots[0], Ballot { weight: 1, ranks: vec![vec![0, 1], vec![2]] });
        assert_eq!(p.ballots[1], Ballot { weight: 2, ranks: vec![vec![1]] });
        assert_eq!(p.candidates, ["Pat \"the Cat\" O'Brien", "Bo", "Cy"]);
        assert_eq!(p.title, "Ward 2 Newlands-Auldburn");
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        for (text, line, says) in [
            ("", 1, "the number of candidates"),
            ("2 3\n", 1, "seats"),
            ("2 1\n1 3 0\n0\n\"a\" \"b\" \"t\"", 2, "not a candidate"),
            ("2 1\n1 1\n", 2, "the file ends"),
            ("2 1\n1 1 0\n0\n\"a\"\n", 4, "names 1 of 2"),
            ("2 1\n1 1 0\n0\n\"a\n", 4, "not closed"),
            ("2 1\n[tie 1]\n0\n\"a\" \"b\"", 2, "[tie"),
            ("3 1\n-5\n1 1 0\n0\n", 2, "not a candidate to withdraw"),
            ("2 9\n1 1 0\n", 1, "seats"),
            ("2 1\n(open 1 0\n0\n", 2, "not closed"),
            ("2 1\n999999999999 1 0\n2 2 0\n0\n", 3, "add up to more than"),
            ("2 1\n1 1 2 1 2 1 2 1 2 1 0\n", 2, "more candidates than stand"),
            ("2 1\n1 1=2=1 0\n", 2, "equal ranking names more"),
            ("2 1\n[nick a a]\n", 2, "of their own"),
        ] {
            let e = read(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn ballot_ids_are_read_as_openstv_and_droop_write_them() {
        let names = "0\n\"A\" \"B\" \"C\" \"t\"";
        // OpenSTV: a weight of 1 after the id.
        let p = read(&format!("3 1\n(a) 1 3 2 0\n(b) 1 3 0\n(c) 1 2 0\n{names}")).unwrap();
        assert_eq!(p.ballots[0].ranks, [vec![2], vec![1]]);
        assert_eq!(p.ballots[2].ranks, [vec![1]]);
        // Droop: the ranking right after the id.
        let p = read(&format!("3 1\n(a) 3 2 0\n(b b) 1 0\n{names}")).unwrap();
        assert_eq!(p.ballots[0].ranks, [vec![2], vec![1]]);
        assert_eq!(p.ballots[1].ranks, [vec![0]]);
    }

    #[test]
    fn a_comment_may_follow_a_token_without_a_space() {
        let p = read("2 1\n1 1 0# first\n0#end\n\"A\" \"B\" \"t\"").unwrap();
        assert_eq!(p.ballots.len(), 1);
        assert!(read(&"x".repeat(MAX_BYTES + 1)).unwrap_err().message.contains("over 64 MB"));
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let p = Profile {
            title: "Union \"2026\"".into(),
            candidates: vec!["Pat O'Brien".into(), "RON (Re-Open Nominations)".into(), "Ẑoë \"Z\"".into()],
            seats: 1,
            withdrawn: [2].into_iter().collect(),
            tie_order: None,
            never_excluded: None,
            ballots: vec![
                Ballot { weight: 1, ranks: vec![vec![0], vec![1]] },
                Ballot { weight: 5, ranks: vec![vec![1, 0]] },
            ],
        };
        assert_eq!(read(&write(&p)).unwrap(), p);
    }
}
