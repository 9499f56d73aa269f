//! ERS97 against OpenSTV 1.7's ERS97STV on the reference profiles (tests/reference/ers97):
//! the candidates elected, in order of election, and everyone's votes, the quota and the
//! votes no longer counting (non-transferable and residual together, as OpenSTV reports
//! them) at the end of the count, to the last of the 2 decimal places.

mod reference;

#[test]
fn every_reference_count_is_reproduced_to_the_last_decimal() {
    let checked = reference::check_all("ers97", turnout_count::Method::Ers97);
    assert!(checked >= 40, "the corpus is missing: {checked} cases");
}
