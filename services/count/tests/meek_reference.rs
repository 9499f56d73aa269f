//! Meek STV against OpenSTV 1.7's MeekSTV on the reference profiles (tests/reference/meek):
//! the candidates elected, in order of election, and everyone's votes and the votes no
//! longer counting (non-transferable and residual together, as OpenSTV reports them) at
//! the end of the count, to the last of the 6 decimal places.

mod reference;

#[test]
fn every_reference_count_is_reproduced_to_the_last_decimal() {
    let checked = reference::check_all("meek", turnout_count::Method::Meek);
    assert!(checked >= 40, "the corpus is missing: {checked} cases");
}
