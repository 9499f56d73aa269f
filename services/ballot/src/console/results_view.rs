//! The results page's count sheets: each contest's stages as a table (votes per option
//! per stage, what each stage did and why) and a bar chart of the first and last stage,
//! all from the count's `Sheet` with its own arithmetic's decimals.

use turnout_core::results::{ContestResult, Results};
use turnout_count::{Action, State};

pub struct StageHead {
    pub number: usize,
    pub what: String,
}

pub struct SheetRow {
    pub name: String,
    pub cells: Vec<String>,
    /// "Elected at stage 2", "Excluded at stage 3", "Withdrawn", or nothing.
    pub outcome: String,
    pub elected: bool,
}

pub struct Bar {
    pub name: String,
    pub first: String,
    pub last: String,
    /// `<meter>` values: whole units of the sheet, with the largest as the maximum.
    pub first_value: i64,
    pub last_value: i64,
}

pub struct ContestSheet {
    pub id: String,
    pub title: String,
    pub method: &'static str,
    pub seats: u32,
    pub quota: Option<String>,
    pub voted: u64,
    pub abstained: u64,
    pub blank: u64,
    pub elected: Vec<String>,
    pub unfilled: u32,
    pub ron_elected: bool,
    pub stages: Vec<StageHead>,
    pub rows: Vec<SheetRow>,
    pub non_transferable: Vec<String>,
    pub residual: Vec<String>,
    pub ties: Vec<String>,
    pub bars: Vec<Bar>,
    pub bar_max: i64,
    pub export_sha256: String,
    pub export_name: String,
    pub recount: Option<String>,
}

pub fn sheets(r: &Results) -> Vec<ContestSheet> {
    r.contests.iter().map(sheet).collect()
}

fn sheet(c: &ContestResult) -> ContestSheet {
    let s = &c.sheet;
    let name = |i: usize| c.options.get(i).map_or_else(|| s.candidates[i].clone(), |o| o.name.clone());
    let names = |list: &[usize]| list.iter().map(|&i| name(i)).collect::<Vec<_>>().join(", ");
    let stages = s
        .stages
        .iter()
        .map(|st| StageHead {
            number: st.number,
            what: match &st.action {
                Action::FirstCount => "First preferences".to_owned(),
                Action::Surplus { from, surplus } => {
                    format!("Surplus of {} ({}) passed on", name(*from), s.show(*surplus))
                }
                Action::Exclusion { excluded } => format!("{} excluded, papers passed on", names(excluded)),
                Action::Iterate { iterations, surplus } => {
                    format!("Keep values recomputed ({iterations} iterations; surplus left {})", s.show(*surplus))
                }
                Action::ElectRemaining => "As many left as seats: all elected".to_owned(),
            } + &if st.elected.is_empty() { String::new() } else { format!("; elected: {}", names(&st.elected)) },
        })
        .collect();
    let rows = (0..s.candidates.len())
        .map(|i| {
            let elected_at = s.stages.iter().find(|st| st.elected.contains(&i)).map(|st| st.number);
            let excluded_at = s
                .stages
                .iter()
                .find(|st| matches!(&st.action, Action::Exclusion { excluded } if excluded.contains(&i)))
                .map(|st| st.number);
            let withdrawn = s.stages.first().is_some_and(|st| st.states[i] == State::Withdrawn);
            SheetRow {
                name: name(i),
                cells: s.stages.iter().map(|st| s.show(st.votes[i])).collect(),
                outcome: match (elected_at, excluded_at, withdrawn) {
                    (Some(n), _, _) => format!("Elected at stage {n}"),
                    (_, Some(n), _) => format!("Excluded at stage {n}"),
                    (_, _, true) => "Withdrawn".to_owned(),
                    _ => String::new(),
                },
                elected: elected_at.is_some(),
            }
        })
        .collect();
    let first = s.stages.first();
    let last = s.stages.last();
    let unit = 10i64.pow(s.decimals);
    let whole = |v: i64| v / unit;
    let bars: Vec<Bar> = (0..s.candidates.len())
        .map(|i| {
            let (f, l) = (first.map_or(0, |st| st.votes[i]), last.map_or(0, |st| st.votes[i]));
            Bar { name: name(i), first: s.show(f), last: s.show(l), first_value: whole(f), last_value: whole(l) }
        })
        .collect();
    ContestSheet {
        id: c.id.to_string(),
        title: c.title.clone(),
        method: c.method,
        seats: c.seats,
        quota: s.quota.map(|q| s.show(q)),
        voted: c.voted,
        abstained: c.abstained,
        blank: c.blank,
        elected: c.elected.iter().map(|o| o.name.clone()).collect(),
        unfilled: c.unfilled,
        ron_elected: c.ron_elected,
        stages,
        rows,
        non_transferable: s.stages.iter().map(|st| s.show(st.non_transferable)).collect(),
        residual: s.stages.iter().map(|st| s.show(st.residual)).collect(),
        ties: s.stages.iter().flat_map(|st| st.ties.iter().map(move |t| format!("Stage {}: {t}", st.number))).collect(),
        bar_max: bars.iter().map(|b| b.first_value.max(b.last_value)).max().unwrap_or(0).max(1),
        bars,
        export_sha256: c.export_sha256.clone(),
        export_name: c.export.file_name.clone(),
        recount: c.recount.clone(),
    }
}
