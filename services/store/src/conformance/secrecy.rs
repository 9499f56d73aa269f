//! Fixtures for the insider tests each adapter runs against its own storage (the raw
//! file, the WAL, every collection and the oplog): ballots whose choices are strings that
//! appear nowhere else, so finding one in storage means a choice was stored in the clear,
//! and the measure of how well an order pairs voters with ballots.

use std::sync::Arc;

use turnout_domain::{ElectionId, Receipt, Username};

use super::{ballot, cid, kid, voter};
use crate::{BoxContents, Choices, SealError, Store, Vote};

/// How many ballots the insider tests cast, one after another.
pub const SECRET_BALLOTS: u32 = 50;

/// Ballot `n`'s choices: a ranking of three ids, every id unique to this ballot and found
/// nowhere else (the store keeps what it is given; the service is what checks ids against
/// the election's candidates).
pub fn secret_choices(n: u32) -> Choices {
    [(kid("pres"), Vote::Marks(markers(n).iter().map(|m| cid(m)).collect()))].into_iter().collect()
}

/// Every string that would betray ballot `n`'s choices if storage held it in the clear.
pub fn markers(n: u32) -> Vec<String> {
    vec![format!("zqx{n:02}first"), format!("zqx{n:02}second"), format!("zqx{n:02}third")]
}

/// Casts the secret ballots one after another (the order an insider would try to
/// recover), as voters `student00000`..; returns each voter and their receipt.
pub async fn cast_secret_ballots(store: &Arc<dyn Store>, election: &ElectionId) -> Vec<(Username, Receipt)> {
    let mut cast = Vec::new();
    for n in 0..SECRET_BALLOTS {
        let receipt = store.cast_ballot(ballot(election, &voter(n), secret_choices(n))).await.unwrap();
        cast.push((voter(n), receipt));
    }
    cast
}

/// How many positions of `voters` (an order storage offers for participation) line up
/// with their own receipt in `receipts` (an order it offers for ballots), reading both
/// forwards and one reversed. For a random order the expectation is 1; the orders casting
/// would give line up all 50.
pub fn paired_by_order(cast: &[(Username, Receipt)], voters: &[String], receipts: &[String]) -> usize {
    let receipt_of = |v: &str| cast.iter().find(|(u, _)| u.as_str() == v).map(|(_, r)| r.as_str().to_owned());
    let forward = voters.iter().zip(receipts).filter(|(v, r)| receipt_of(v).as_deref() == Some(r.as_str())).count();
    let reversed =
        voters.iter().zip(receipts.iter().rev()).filter(|(v, r)| receipt_of(v).as_deref() == Some(r.as_str())).count();
    forward.max(reversed)
}

/// Most positions a random order lines up by chance in these tests: P(more than 8 of 50)
/// is about 1 in a million.
pub const CHANCE_PAIRS: usize = 8;

/// The hash an insider without the key can compute: plain SHA-256 over the fields, as the
/// chain was before it was keyed.
pub use crate::audit::unkeyed_hash as unkeyed_audit_hash;

/// The box holds exactly these unopened ballots (each failing its tag), and counts only
/// the others.
pub fn assert_unopened(contents: &BoxContents, tampered: &[&Receipt], participation: u64) {
    assert!(!contents.intact());
    let mut got: Vec<(String, SealError)> =
        contents.unopened.iter().map(|(r, e)| (r.as_str().to_owned(), e.clone())).collect();
    got.sort();
    let mut want: Vec<(String, SealError)> = tampered.iter().map(|r| (r.as_str().to_owned(), SealError::Tag)).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(contents.ballots.len() + tampered.len(), contents.receipts.len(), "a tampered ballot is counted");
    assert_eq!(contents.participation, participation);
}
