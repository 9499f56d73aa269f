//! The documents the MongoDB adapter writes and the filters and updates it sends, built
//! by pure functions so they can be unit-tested without a server.
//!
//! Layout, one collection per SQLite table of the same meaning:
//! - `elections`: `{_id: id, title, opens_at, closes_at (unix s), time_zone, grace_secs,
//!   eligibility, quorum_pct, otp_validity_secs, otp_extra_secs, shuffle_candidates,
//!   created_at, nominations (the period, or null), contests: [{id, title, rules,
//!   candidates: [{id, name, statement, status, reason, photo}]}]}`: an election is read
//!   whole, so its contests live inside it;
//! - `participation`: `{_id: {e, v}, t}`: who voted and the row's tag, nothing else; the
//!   `_id` is the one-ballot rule (a second insert fails with 11000);
//! - `sealed_ballots`: `{_id: {e, r}, s: sealed choices}`: no voter, no time, and nothing
//!   readable without the server's key (`turnout_store::seal`). The `_id` is the
//!   (election, receipt) pair on purpose: a default ObjectId `_id` embeds its creation
//!   second and a counter, which would order ballots by time and line them up with
//!   participation; and the collection is clustered by it, so its natural order is the
//!   receipts' too;
//! - `voter_roll`: `{_id: {e, u}, email, name, columns}`, with an index on `_id.u`;
//! - `contest_turnout`: `{_id: {e, c}, n}`: per contest with a constituency, how many of
//!   its voters cast a ballot;
//! - `login_failures` and `login_address_failures`: the sign-in throttle (see
//!   `sign_in`), TTL on `expires_at`;
//! - `nominations`: `{_id: id, election, contest, nominee, email, version, name,
//!   manifesto, photo, status, reason, decided_version, submitted_at, updated_at, live,
//!   seconds: [{by, at}]}`: the current version, its seconds inside it; `live` (not
//!   withdrawn) carries the partial unique index of one live nomination per nominee and
//!   contest; `nomination_versions`: `{_id: {n, v}, name, manifesto, photo, at}`; `photos`:
//!   `{_id: hash, bytes, stored_at}`; `nomination_contests` `{_id: {e, c}}` and
//!   `nomination_seconders` `{_id: {e, c, by}}`: counters every submission (seconding)
//!   writes, so two racing for a contest's (a student's) last place conflict (see
//!   `nominations`).

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};
use turnout_domain::{ContestId, ElectionId, Receipt, Username};
use turnout_store::{
    CandidateStatus, ContestRules, Eligibility, NewElection, NewNomination, Nomination, NominationContent,
    NominationId, NominationPeriod, NominationStatus, PhotoHash, RollEntry,
};

pub fn election(e: &NewElection, now_s: i64) -> Result<Document, mongodb::bson::ser::Error> {
    let contests: Vec<Document> = e
        .contests
        .iter()
        .map(|c| {
            let candidates: Vec<Document> = c
                .candidates
                .iter()
                .map(|k| {
                    doc! {
                        "id": k.id.as_str(),
                        "name": &k.name,
                        "statement": &k.statement,
                        "status": k.status.as_str(),
                        "reason": Bson::Null,
                    }
                })
                .collect();
            Ok(doc! { "id": c.id.as_str(), "title": &c.title, "rules": rules(&c.rules)?, "candidates": candidates })
        })
        .collect::<Result<_, mongodb::bson::ser::Error>>()?;
    Ok(doc! {
        "_id": e.id.as_str(),
        "title": &e.title,
        "opens_at": e.opens_at.as_second(),
        "closes_at": e.closes_at.as_second(),
        "time_zone": &e.time_zone,
        "grace_secs": e.grace_secs as i64,
        "eligibility": eligibility(&e.eligibility)?,
        "quorum_pct": e.quorum_pct,
        "otp_validity_secs": e.otp_validity_secs as i64,
        "otp_extra_secs": 0_i64,
        "shuffle_candidates": e.shuffle_candidates,
        "created_at": now_s,
        "nominations": nomination_period(e.nominations.as_ref())?,
        "contests": contests,
    })
}

/// An election's nomination period as stored (its serde form: RFC 3339 times, so the
/// instant is kept to the nanosecond as in SQLite's JSON), or null: none.
pub fn nomination_period(p: Option<&NominationPeriod>) -> Result<Bson, mongodb::bson::ser::Error> {
    p.map_or(Ok(Bson::Null), mongodb::bson::to_bson)
}

/// A new nomination as `submit` inserts it: version 1, pending, live, no seconds.
pub fn nomination(n: &NewNomination, now_s: i64) -> Document {
    let mut d = doc! {
        "_id": n.id.as_str(),
        "election": n.election.as_str(),
        "contest": n.contest.as_str(),
        "nominee": n.nominee.as_str(),
        "email": n.email.as_str(),
        "version": 1_i64,
    };
    d.extend(nomination_content(&n.content));
    d.extend(doc! {
        "status": NominationStatus::Pending.as_str(),
        "live": true,
        "reason": Bson::Null,
        "decided_version": Bson::Null,
        "submitted_at": now_s,
        "updated_at": now_s,
        "seconds": [],
    });
    d
}

/// What a nominee wrote, as the nomination and each of its versions hold it.
pub fn nomination_content(c: &NominationContent) -> Document {
    doc! { "name": &c.name, "manifesto": &c.manifesto, "photo": c.photo.as_ref().map(PhotoHash::as_str) }
}

pub fn nomination_version(id: &NominationId, version: u32, c: &NominationContent, now_s: i64) -> Document {
    let mut d = doc! { "_id": { "n": id.as_str(), "v": i64::from(version) } };
    d.extend(nomination_content(c));
    d.insert("at", now_s);
    d
}

/// A photo as first stored (`$setOnInsert`: a hash already held keeps its document).
pub fn photo(bytes: &[u8], now_s: i64) -> Document {
    doc! { "bytes": Binary { subtype: BinarySubtype::Generic, bytes: bytes.to_vec() }, "stored_at": now_s }
}

/// The review queue's filter: the election's nominations (with `status` when given)
/// after the (contest, id) pair, for keyset paging sorted by `{contest: 1, _id: 1}`.
pub fn nominations_page(
    election: &ElectionId,
    status: Option<NominationStatus>,
    after: Option<(&ContestId, &NominationId)>,
) -> Document {
    let mut d = doc! { "election": election.as_str() };
    if let Some(s) = status {
        d.insert("status", s.as_str());
    }
    if let Some((c, id)) = after {
        d.insert(
            "$or",
            vec![
                doc! { "contest": { "$gt": c.as_str() } },
                doc! { "contest": c.as_str(), "_id": { "$gt": id.as_str() } },
            ],
        );
    }
    d
}

/// An approved nomination as its candidate on the ballot (`n-…`), the fields
/// `decode::candidate` reads: the name, the manifesto as the statement, the photo.
pub fn nominated_candidate(n: &Nomination) -> Document {
    doc! {
        "id": n.candidate_id().as_str(),
        "name": &n.content.name,
        "statement": &n.content.manifesto,
        "status": CandidateStatus::Approved.as_str(),
        "reason": Bson::Null,
        "photo": n.content.photo.as_ref().map(PhotoHash::as_str),
    }
}

pub fn eligibility(e: &Eligibility) -> Result<Bson, mongodb::bson::ser::Error> {
    mongodb::bson::to_bson(e)
}

pub fn rules(r: &ContestRules) -> Result<Bson, mongodb::bson::ser::Error> {
    mongodb::bson::to_bson(r)
}

/// Elections by id after `after`, for paging.
pub fn elections_after(after: Option<&ElectionId>) -> Document {
    match after {
        Some(id) => doc! { "_id": { "$gt": id.as_str() } },
        None => doc! {},
    }
}

pub fn participation(election: &ElectionId, voter: &Username) -> Document {
    doc! { "_id": { "e": election.as_str(), "v": voter.as_str() } }
}

/// A participation as the cast writes it: the key and its tag
/// (`StoreKeys::participation_tag`), so a row added in the database is found.
pub fn tagged_participation(election: &ElectionId, voter: &Username, tag: Vec<u8>) -> Document {
    let mut d = participation(election, voter);
    d.insert("t", Binary { subtype: BinarySubtype::Generic, bytes: tag });
    d
}

/// The ballot box: a clustered collection (see `MongoStore::create_ballot_box`).
pub const SEALED_BALLOTS: &str = "sealed_ballots";

/// A ballot: the box it goes in, its receipt and its sealed choices (`turnout_store::seal`);
/// nothing about the voter, nothing readable without the server's key.
pub fn ballot(election: &ElectionId, receipt: &Receipt, sealed: Vec<u8>) -> Document {
    doc! {
        "_id": { "e": election.as_str(), "r": receipt.as_str() },
        "s": Binary { subtype: BinarySubtype::Generic, bytes: sealed },
    }
}

pub fn ballot_id(election: &ElectionId, receipt: &Receipt) -> Document {
    doc! { "_id": { "e": election.as_str(), "r": receipt.as_str() } }
}

/// Every document of one election in a collection keyed `{_id: {e, ...}}`.
pub fn of_election(election: &ElectionId) -> Document {
    doc! { "_id.e": election.as_str() }
}

pub fn roll_id(election: &ElectionId, uid: &Username) -> Document {
    doc! { "_id": { "e": election.as_str(), "u": uid.as_str() } }
}

/// The fields of a roll entry that an import sets (and compares to count "unchanged").
pub fn roll_fields(entry: &RollEntry) -> Document {
    doc! {
        "email": entry.email.as_ref().map(|m| m.as_str()),
        "name": entry.name.as_deref(),
        "columns": entry.columns.iter().map(|(k, v)| (k.clone(), Bson::from(v.as_str()))).collect::<Document>(),
    }
}

/// A user's roll entries among `elections`.
pub fn roll_of(uid: &Username, elections: &[ElectionId]) -> Document {
    let ids: Vec<&str> = elections.iter().map(ElectionId::as_str).collect();
    doc! { "_id.u": uid.as_str(), "_id.e": { "$in": ids } }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{Bson, doc};
    use turnout_domain::{CandidateId, ContestId, ElectionId, Receipt, Username, VoterEmail};
    use turnout_store::{Choices, Eligibility, RollEntry, Vote};

    use super::{ballot, elections_after, eligibility, participation, roll_fields, roll_of};

    fn id(raw: &str) -> ElectionId {
        ElectionId::parse(raw).unwrap()
    }

    #[test]
    fn a_ballot_document_holds_the_box_the_receipt_and_the_sealed_choices_only() {
        let mut choices = Choices::new();
        choices.insert(ContestId::parse("pres").unwrap(), Vote::one(CandidateId::parse("ada").unwrap()));
        let receipt = Receipt::generate();
        let keys = turnout_store::StoreKeys::for_tests();
        let sealed = keys.seal(&id("council"), &receipt, &choices);
        let d = ballot(&id("council"), &receipt, sealed.clone());
        let fields: Vec<&String> = d.keys().collect();
        assert_eq!(fields, ["_id", "s"], "review for voter linkage: {d}");
        assert_eq!(d.get_document("_id").unwrap(), &doc! { "e": "council", "r": receipt.as_str() });
        assert_eq!(d.get_binary_generic("s").unwrap(), &sealed);
        assert!(!d.to_string().contains("ada"), "a choice in the clear: {d}");
    }

    #[test]
    fn participation_is_keyed_by_election_and_voter_only() {
        let d = participation(&id("council"), &Username::parse("student00001").unwrap());
        assert_eq!(d, doc! { "_id": { "e": "council", "v": "student00001" } });
    }

    #[test]
    fn roll_lookups_filter_on_the_uid_and_the_wanted_elections() {
        let d = roll_of(&Username::parse("student00001").unwrap(), &[id("a"), id("b")]);
        assert_eq!(d, doc! { "_id.u": "student00001", "_id.e": { "$in": ["a", "b"] } });
        let entry = RollEntry {
            uid: Username::parse("student00001").unwrap(),
            email: Some(VoterEmail::parse("s1@roll.example").unwrap()),
            name: None,
            columns: [("faculty".to_owned(), "Science".to_owned())].into(),
        };
        assert_eq!(
            roll_fields(&entry),
            doc! { "email": "s1@roll.example", "name": Bson::Null, "columns": { "faculty": "Science" } }
        );
    }

    #[test]
    fn paging_starts_after_the_last_id() {
        assert_eq!(elections_after(None), doc! {});
        assert_eq!(elections_after(Some(&id("b"))), doc! { "_id": { "$gt": "b" } });
    }

    #[test]
    fn eligibility_is_stored_as_its_tagged_form() {
        let e = Eligibility::LdapGroup { group_dn: "cn=x".into() };
        assert_eq!(eligibility(&e).unwrap(), Bson::Document(doc! { "kind": "ldap_group", "group_dn": "cn=x" }));
    }

    fn new_nomination() -> turnout_store::NewNomination {
        turnout_store::NewNomination {
            id: turnout_store::NominationId::random(),
            election: id("union"),
            contest: ContestId::parse("pres").unwrap(),
            nominee: Username::parse("student00001").unwrap(),
            email: VoterEmail::parse("s1@roll.example").unwrap(),
            content: turnout_store::NominationContent {
                name: "Ada".into(),
                manifesto: "Vote for me.".into(),
                photo: Some(turnout_store::PhotoHash::of(b"photo")),
            },
        }
    }

    #[test]
    fn an_elections_nomination_period_is_written_as_decode_reads_it() {
        let e = |nominations: serde_json::Value| -> turnout_store::NewElection {
            serde_json::from_value(serde_json::json!({
                "id": "union", "title": "Union", "time_zone": "Europe/London",
                "opens_at": "2026-03-02T09:00:00Z", "closes_at": "2026-03-03T09:00:00Z",
                "nominations": nominations,
                "contests": [{ "id": "pres", "title": "President", "candidates": [] }],
            }))
            .unwrap()
        };
        let with = e(serde_json::json!({
            "opens_at": "2026-02-01T09:00:00.123456789Z", "closes_at": "2026-02-10T17:00:00Z",
            "proposers": 2, "max_seconds": 3,
        }));
        let d = super::election(&with, 100).unwrap();
        let back = crate::decode::election(&d).unwrap();
        assert_eq!(back.nominations, with.nominations, "to the nanosecond: {d}");
        assert!(back.nominations.is_some());
        let without = e(serde_json::Value::Null);
        let d = super::election(&without, 100).unwrap();
        assert_eq!(d.get("nominations"), Some(&Bson::Null));
        assert_eq!(crate::decode::election(&d).unwrap().nominations, None);
    }

    #[test]
    fn a_nomination_document_decodes_to_what_was_submitted() {
        let new = new_nomination();
        let mut d = super::nomination(&new, 100);
        assert_eq!(d.get_bool("live"), Ok(true), "a new nomination is live: the one-live index covers it");
        let n = crate::decode::nomination(&d).unwrap();
        assert_eq!((n.id.clone(), n.version, n.status), (new.id.clone(), 1, turnout_store::NominationStatus::Pending));
        assert_eq!((n.nominee, n.email, n.content), (new.nominee.clone(), new.email.clone(), new.content.clone()));
        assert_eq!((n.reason, n.decided_version, n.submitted_at.as_second()), (None, None, 100));
        assert!(n.seconds.is_empty());
        // Seconds come back oldest first, ties by seconder, whatever order they were pushed in.
        let pushed = [("student00003", 7_i64), ("student00002", 7), ("student00004", 5)];
        d.insert("seconds", pushed.iter().map(|(by, at)| doc! { "by": by, "at": at }).collect::<Vec<_>>());
        let by: Vec<String> = crate::decode::nomination(&d).unwrap().seconds.iter().map(|s| s.by.to_string()).collect();
        assert_eq!(by, ["student00004", "student00002", "student00003"]);
        let v = crate::decode::nomination_version(&super::nomination_version(&new.id, 3, &new.content, 200)).unwrap();
        assert_eq!((v.version, v.content, v.at.as_second()), (3, new.content, 200));
    }

    #[test]
    fn an_approved_nomination_stands_as_its_candidate() {
        let new = new_nomination();
        let n = crate::decode::nomination(&super::nomination(&new, 100)).unwrap();
        let k = crate::decode::candidate(&super::nominated_candidate(&n)).unwrap();
        assert_eq!(k.id, new.id.candidate_id());
        assert_eq!(k.status, turnout_store::CandidateStatus::Approved);
        assert_eq!((k.name, k.statement, k.photo), (new.content.name, new.content.manifesto, new.content.photo));
    }

    #[test]
    fn the_review_queue_pages_after_the_contest_and_id() {
        let nid = turnout_store::NominationId::random();
        let pres = ContestId::parse("pres").unwrap();
        assert_eq!(super::nominations_page(&id("u"), None, None), doc! { "election": "u" });
        assert_eq!(
            super::nominations_page(&id("u"), Some(turnout_store::NominationStatus::Pending), Some((&pres, &nid))),
            doc! { "election": "u", "status": "pending", "$or": [
                { "contest": { "$gt": "pres" } }, { "contest": "pres", "_id": { "$gt": nid.as_str() } },
            ] }
        );
    }
}
