//! Documents back into domain values; a field that does not decode is reported as an
//! error (the data was edited by hand), never a panic.

use std::collections::BTreeMap;
use std::time::Duration;

use mongodb::bson::{Bson, Document};
use turnout_domain::schedule::Schedule;
use turnout_domain::{CandidateId, ContestId, ElectionId, Receipt, Username, VoterEmail};
use turnout_store::{
    Candidate, CandidateStatus, Choices, Constituency, Contest, ContestRules, Election, ElectionSummary, Eligibility,
    Nomination, NominationContent, NominationId, NominationPeriod, NominationStatus, NominationVersion, PhotoHash,
    Second, StoreError,
};

pub fn bad(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("mongodb: a stored document does not decode: {e}"))
}

/// Integers may come back as Int32 or Int64 (or a double written by another tool).
pub fn int(d: &Document, key: &str) -> Result<i64, StoreError> {
    match d.get(key) {
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        Some(Bson::Int64(n)) => Ok(*n),
        Some(Bson::Double(f)) if f.fract() == 0.0 => Ok(*f as i64),
        other => Err(bad(format!("{key} is {other:?}"))),
    }
}

pub(crate) use turnout_store::rules::{ts, ts_ms};

pub fn schedule(d: &Document) -> Result<Schedule, StoreError> {
    Ok(Schedule {
        opens_at: ts(int(d, "opens_at")?),
        closes_at: ts(int(d, "closes_at")?),
        grace: Duration::from_secs(int(d, "grace_secs")?.max(0) as u64),
        time_zone: d.get_str("time_zone").map_err(bad)?.to_owned(),
    })
}

fn eligibility(d: &Document) -> Result<Eligibility, StoreError> {
    match d.get("eligibility") {
        Some(b) => mongodb::bson::from_bson(b.clone()).map_err(bad),
        None => Ok(Eligibility::Everyone),
    }
}

pub fn summary(d: &Document) -> Result<ElectionSummary, StoreError> {
    let s = schedule(d)?;
    Ok(ElectionSummary {
        id: ElectionId::parse(d.get_str("_id").map_err(bad)?).map_err(bad)?,
        title: d.get_str("title").map_err(bad)?.to_owned(),
        opens_at: s.opens_at,
        closes_at: s.closes_at,
        time_zone: s.time_zone,
        grace_secs: s.grace.as_secs(),
        eligibility: eligibility(d)?,
        constituencies: constituencies(d)?.into_iter().filter(|(_, c)| !c.is_everyone()).collect(),
        nominations: nomination_period(d)?,
    })
}

pub fn candidate(k: &Document) -> Result<Candidate, StoreError> {
    Ok(Candidate {
        id: CandidateId::parse(k.get_str("id").map_err(bad)?).map_err(bad)?,
        name: k.get_str("name").map_err(bad)?.to_owned(),
        statement: k.get_str("statement").map_err(bad)?.to_owned(),
        status: CandidateStatus::parse(k.get_str("status").map_err(bad)?).unwrap_or(CandidateStatus::Pending),
        photo: photo(k)?,
    })
}

pub fn election(d: &Document) -> Result<Election, StoreError> {
    let mut contests = Vec::new();
    for c in d.get_array("contests").map_err(bad)? {
        let c = c.as_document().ok_or_else(|| bad("a contest is not a document"))?;
        let mut candidates = Vec::new();
        for k in c.get_array("candidates").map_err(bad)? {
            let k = k.as_document().ok_or_else(|| bad("a candidate is not a document"))?;
            candidates.push(candidate(k)?);
        }
        contests.push(Contest {
            id: ContestId::parse(c.get_str("id").map_err(bad)?).map_err(bad)?,
            title: c.get_str("title").map_err(bad)?.to_owned(),
            rules: rules(c)?,
            candidates,
        });
    }
    let validity = int(d, "otp_validity_secs")?;
    Ok(Election {
        id: ElectionId::parse(d.get_str("_id").map_err(bad)?).map_err(bad)?,
        title: d.get_str("title").map_err(bad)?.to_owned(),
        schedule: schedule(d)?,
        contests,
        otp_extra: Duration::from_secs(int(d, "otp_extra_secs")?.max(0) as u64),
        eligibility: eligibility(d)?,
        quorum_pct: d.get_f64("quorum_pct").map_err(bad)?,
        otp_validity: (validity > 0).then(|| Duration::from_secs(validity as u64)),
        shuffle_candidates: d.get_bool("shuffle_candidates").unwrap_or(false),
        nominations: nomination_period(d)?,
    })
}

/// An election's nomination period (absent or null: it takes no nominations).
pub fn nomination_period(d: &Document) -> Result<Option<NominationPeriod>, StoreError> {
    match d.get("nominations") {
        Some(Bson::Null) | None => Ok(None),
        Some(b) => Ok(Some(mongodb::bson::from_bson(b.clone()).map_err(bad)?)),
    }
}

/// A count or version stored as an integer, back into the port's `u32`.
fn count(d: &Document, key: &str) -> Result<u32, StoreError> {
    u32::try_from(int(d, key)?).map_err(bad)
}

fn photo(d: &Document) -> Result<Option<PhotoHash>, StoreError> {
    match d.get("photo") {
        Some(Bson::Null) | None => Ok(None),
        Some(Bson::String(h)) => Ok(Some(PhotoHash::parse(h).map_err(bad)?)),
        Some(other) => Err(bad(format!("photo is {other:?}"))),
    }
}

fn content(d: &Document) -> Result<NominationContent, StoreError> {
    Ok(NominationContent {
        name: d.get_str("name").map_err(bad)?.to_owned(),
        manifesto: d.get_str("manifesto").map_err(bad)?.to_owned(),
        photo: photo(d)?,
    })
}

/// A `nominations` document (see `docs::nomination`). Its seconds come back oldest
/// first, ties by seconder, as SQLite orders them.
pub fn nomination(d: &Document) -> Result<Nomination, StoreError> {
    let mut seconds = Vec::new();
    for s in d.get_array("seconds").map_err(bad)? {
        let s = s.as_document().ok_or_else(|| bad("a second is not a document"))?;
        seconds
            .push(Second { by: Username::parse(s.get_str("by").map_err(bad)?).map_err(bad)?, at: ts(int(s, "at")?) });
    }
    seconds.sort_by(|a, b| (a.at, a.by.as_str()).cmp(&(b.at, b.by.as_str())));
    let status = d.get_str("status").map_err(bad)?;
    Ok(Nomination {
        id: NominationId::parse(d.get_str("_id").map_err(bad)?).map_err(bad)?,
        election: ElectionId::parse(d.get_str("election").map_err(bad)?).map_err(bad)?,
        contest: ContestId::parse(d.get_str("contest").map_err(bad)?).map_err(bad)?,
        nominee: Username::parse(d.get_str("nominee").map_err(bad)?).map_err(bad)?,
        email: VoterEmail::parse(d.get_str("email").map_err(bad)?).map_err(bad)?,
        version: count(d, "version")?,
        content: content(d)?,
        status: NominationStatus::parse(status).ok_or_else(|| bad(format!("status is {status:?}")))?,
        reason: d.get_str("reason").ok().map(str::to_owned),
        decided_version: match d.get("decided_version") {
            Some(Bson::Null) | None => None,
            Some(_) => Some(count(d, "decided_version")?),
        },
        seconds,
        submitted_at: ts(int(d, "submitted_at")?),
        updated_at: ts(int(d, "updated_at")?),
    })
}

/// A `nomination_versions` document (see `docs::nomination_version`).
pub fn nomination_version(d: &Document) -> Result<NominationVersion, StoreError> {
    let id = d.get_document("_id").map_err(bad)?;
    Ok(NominationVersion { version: count(id, "v")?, content: content(d)?, at: ts(int(d, "at")?) })
}

/// A contest's rules (a contest stored before kinds existed has none: one-seat plurality).
pub fn rules(contest: &Document) -> Result<ContestRules, StoreError> {
    match contest.get("rules") {
        Some(b) => mongodb::bson::from_bson(b.clone()).map_err(bad),
        None => Ok(ContestRules::default()),
    }
}

/// Each contest's constituency, from an election document (or its projection).
pub fn constituencies(d: &Document) -> Result<Vec<(ContestId, Constituency)>, StoreError> {
    let mut out = Vec::new();
    for c in d.get_array("contests").map_err(bad)? {
        let c = c.as_document().ok_or_else(|| bad("a contest is not a document"))?;
        out.push((ContestId::parse(c.get_str("id").map_err(bad)?).map_err(bad)?, rules(c)?.voters));
    }
    Ok(out)
}

/// A ballot's receipt as stored and its sealed choices. Whatever an edit left there is
/// passed on as it is (it does not open, and is reported with the row), never an error
/// that would fail the whole box.
pub fn sealed_ballot(d: &Document) -> (String, &[u8]) {
    let receipt = match d.get_document("_id").map(|id| id.get("r")) {
        Ok(Some(Bson::String(r))) => r.clone(),
        Ok(Some(other)) => other.to_string(),
        _ => format!("{:?}", d.get("_id")),
    };
    (receipt, d.get_binary_generic("s").map(Vec::as_slice).unwrap_or_default())
}

/// A participation's voter as stored and its tag, if it has one (passed on as they are,
/// like `sealed_ballot`).
pub fn participation_row(d: &Document) -> (String, Option<&[u8]>) {
    let voter = match d.get_document("_id").map(|id| id.get("v")) {
        Ok(Some(Bson::String(v))) => v.clone(),
        Ok(Some(other)) => other.to_string(),
        _ => format!("{:?}", d.get("_id")),
    };
    (voter, d.get_binary_generic("t").ok().map(Vec::as_slice))
}

/// A ballot cast before sealing: its receipt and plaintext choices (read only by the
/// migration that seals it).
pub fn plaintext_ballot(d: &Document) -> Result<(ElectionId, Receipt, Choices), StoreError> {
    let id = d.get_document("_id").map_err(bad)?;
    let election = ElectionId::parse(id.get_str("e").map_err(bad)?).map_err(bad)?;
    let receipt = Receipt::parse(id.get_str("r").map_err(bad)?).map_err(bad)?;
    let choices =
        mongodb::bson::from_bson(d.get("choices").cloned().unwrap_or(Bson::Document(Document::new()))).map_err(bad)?;
    Ok((election, receipt, choices))
}

/// A roll entry's named columns.
pub fn columns(d: &Document) -> Result<BTreeMap<String, String>, StoreError> {
    match d.get("columns") {
        Some(b) => mongodb::bson::from_bson(b.clone()).map_err(bad),
        None => Ok(BTreeMap::new()),
    }
}
