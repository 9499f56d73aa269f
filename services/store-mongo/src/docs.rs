//! The documents the MongoDB adapter writes and the filters and updates it sends, built
//! by pure functions so they can be unit-tested without a server.
//!
//! Layout, one collection per SQLite table of the same meaning:
//! - `elections`: `{_id: id, title, opens_at, closes_at (unix s), time_zone, grace_secs,
//!   eligibility, quorum_pct, otp_validity_secs, otp_extra_secs, shuffle_candidates,
//!   created_at, contests: [{id, title, rules, candidates: [{id, name, statement, status,
//!   reason}]}]}`: an election is read whole, so its contests live inside it;
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
//!   `sign_in`), TTL on `expires_at`.

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};
use turnout_domain::{ElectionId, Receipt, Username};
use turnout_store::{ContestRules, Eligibility, NewElection, RollEntry};

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
        "contests": contests,
    })
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
}
