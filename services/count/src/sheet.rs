//! The count sheet: what a count did, stage by stage, for the results page, the exports
//! and the command line. Votes are whole numbers of `10^-decimals` of a vote, exactly as
//! the rule computed them (a rule's arithmetic is fixed point, never floating point).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Continuing,
    Elected,
    Excluded,
    Withdrawn,
}

/// What one stage did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// First preferences counted.
    FirstCount,
    /// An elected candidate's surplus passed on.
    Surplus { from: usize, surplus: i64 },
    /// Candidates excluded and their papers passed on.
    Exclusion { excluded: Vec<usize> },
    /// Meek: every elected candidate's keep value recomputed and the papers counted again,
    /// `iterations` times; `surplus` is what the elected still hold over the quota.
    Iterate { iterations: usize, surplus: i64 },
    /// As many candidates remain as seats: all of them are elected.
    ElectRemaining,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub number: usize,
    pub action: Action,
    /// Each candidate's votes at the end of the stage.
    pub votes: Vec<i64>,
    pub states: Vec<State>,
    /// Elected at this stage, in order.
    pub elected: Vec<usize>,
    /// The quota at the end of the stage (ERS97 lowers it until someone is elected; Meek
    /// recomputes it every iteration); none for IRV and the choose-up-to contests.
    pub quota: Option<i64>,
    /// Votes on papers with no further preference, so far.
    pub non_transferable: i64,
    /// Fractions lost to the rule's rounding, so far.
    pub residual: i64,
    /// How this stage's ties were broken.
    pub ties: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sheet {
    pub method: &'static str,
    pub title: String,
    pub seats: usize,
    pub candidates: Vec<String>,
    pub decimals: u32,
    /// Papers with at least one preference.
    pub valid_papers: u64,
    /// The quota at the end of the count.
    pub quota: Option<i64>,
    pub stages: Vec<Stage>,
    /// In the order they were elected.
    pub elected: Vec<usize>,
}

impl Sheet {
    /// `value` (in this sheet's units) as a decimal: `2008.75096`.
    pub fn show(&self, value: i64) -> String {
        show(value, self.decimals)
    }

    /// The elected candidates' names, in order of election.
    pub fn elected_names(&self) -> Vec<&str> {
        self.elected.iter().map(|&c| self.candidates[c].as_str()).collect()
    }
}

pub fn show(value: i64, decimals: u32) -> String {
    if decimals == 0 {
        return value.to_string();
    }
    let scale = 10i64.pow(decimals);
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    let s = scale.unsigned_abs();
    format!("{sign}{}.{:0width$}", v / s, v % s, width = decimals as usize)
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_show_with_their_decimals() {
        assert_eq!(super::show(200_875_096, 5), "2008.75096");
        assert_eq!(super::show(7, 5), "0.00007");
        assert_eq!(super::show(-150, 2), "-1.50");
        assert_eq!(super::show(42, 0), "42");
    }
}
