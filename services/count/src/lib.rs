//! Turnout's count: pure functions from a ballot profile to a count sheet, with no I/O,
//! no store and no web framework, used by the results page, the exports and the
//! `turnout-ballot count` command. Each rule's arithmetic is exact or fixed point as the
//! rule prescribes (whole votes, or whole 10⁻², 10⁻⁵ or 10⁻⁶ of a vote), never floating point.
//!
//! Layout:
//! - `profile`: candidates, seats and ballots (rankings with equal ranks), as counted;
//! - `blt`: the BLT file format, read tolerantly and written plainly;
//! - `irv`: instant-runoff, one seat;
//! - `scottish`: Scottish STV (weighted inclusive Gregory, 5 decimal places);
//! - `ers97`: the Electoral Reform Society's 1997 STV rules (last batch, 2 decimal places);
//! - `meek`: Meek STV as OpenSTV and OpaVote count it (keep values, 6 decimal places);
//! - `choices`: plurality and approval contests, the most-voted filling the seats;
//! - `sheet`: what a count did, stage by stage;
//! - `lot`: ties drawn by lot, from an order or a published seed;
//! - `papers`: the papers as a count moves them, and the shared tie-break.
//!
//! Where tools differ, what this count decided: `docs/counting-rules.md`.

pub mod blt;
pub mod choices;
pub mod ers97;
pub mod irv;
pub mod lot;
pub mod meek;
mod papers;
pub mod profile;
pub mod scottish;
pub mod sheet;

pub use lot::Lot;
pub use profile::{Ballot, Profile};
pub use sheet::{Action, Sheet, Stage, State};

/// The counting rules by the names the command line and the console use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Choose up to `seats`; the most-voted win.
    Plurality,
    /// Choose any number; the most-approved win.
    Approval,
    Irv,
    Scottish,
    Ers97,
    Meek,
}

impl Method {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "plurality" => Some(Method::Plurality),
            "approval" => Some(Method::Approval),
            "irv" => Some(Method::Irv),
            "scottish" => Some(Method::Scottish),
            "ers97" => Some(Method::Ers97),
            "meek" => Some(Method::Meek),
            _ => None,
        }
    }

    /// The rules that count rankings (what a BLT file holds).
    pub fn ranked_names() -> &'static [&'static str] {
        &["irv", "ers97", "scottish", "meek"]
    }

    /// Counts `profile` under this rule. IRV fills one seat only.
    pub fn count(self, profile: &Profile, lot: &Lot) -> Result<Sheet, String> {
        profile.check()?;
        match self {
            Method::Irv if profile.seats != 1 => Err(format!(
                "IRV fills one seat; this count has {} (count it for one with --seats 1, or use an STV rule)",
                profile.seats
            )),
            Method::Irv => Ok(irv::count(profile, lot)),
            Method::Scottish => Ok(scottish::count(profile, lot)),
            Method::Ers97 => Ok(ers97::count(profile, lot)),
            Method::Meek => Ok(meek::count(profile, lot)),
            Method::Plurality => Ok(choices::count(profile, lot, "plurality")),
            Method::Approval => Ok(choices::count(profile, lot, "approval")),
        }
    }
}
