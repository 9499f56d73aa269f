//! Rules and conversions both store adapters apply the same way, so they cannot drift:
//! stored times, the outbox page cut, the delivery percentiles officers
//! see, and the sender reservation plan (`SendPlanner`). The sign-in throttle's rule is
//! in `sign_in`. Adapters call these; services never need them.

use std::time::Duration;

use jiff::Timestamp;

use crate::AccountLimits;

/// A stored unix second (an out-of-range one, from a hand-edited store, reads as 1970).
pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn ts_ms(millis: i64) -> Timestamp {
    Timestamp::from_millisecond(millis).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// How a fetch of up to `limit + 1` rows (newest first) becomes a page of the outbox list.
#[derive(Debug, PartialEq, Eq)]
pub enum OutboxCut {
    /// The first `rows` rows are the page; `next_before` continues after them.
    Page { rows: usize, next_before: Option<i64> },
    /// The page would be nothing but rows sharing `seq`, with more of them beyond it:
    /// read the whole group (its size is bounded by the processes writing at once).
    Group { seq: i64 },
}

/// Cuts a page so that rows sharing a sequence number never straddle two pages (for
/// MongoDB; SQLite's row ids are unique). MongoDB's are made per process (a millisecond
/// and a counter), so two processes can give the same one, and a cursor that split them
/// would skip a row.
/// `seqs` are the fetched rows' sequence numbers, descending, at most `limit + 1`.
pub fn cut_outbox_page(seqs: &[i64], limit: usize) -> OutboxCut {
    let limit = limit.max(1);
    if seqs.len() <= limit {
        return OutboxCut::Page { rows: seqs.len(), next_before: None };
    }
    let last = seqs[limit - 1];
    if seqs[limit] != last {
        return OutboxCut::Page { rows: limit, next_before: Some(last) };
    }
    // The group `last` goes on past the page: it moves to the next page whole.
    match seqs.iter().position(|s| *s == last) {
        Some(0) | None => OutboxCut::Group { seq: last },
        Some(first) => OutboxCut::Page { rows: first, next_before: Some(last + 1) },
    }
}

/// p50 and p95 of queue-to-sent seconds (nearest rank) from a histogram: (seconds, how
/// many messages) in ascending seconds, as the stores group them. `None` without samples.
/// The histogram has one row per distinct whole second, so it stays small however many
/// messages went out, and the percentiles are exact.
pub fn delivery_percentiles(histogram: &[(i64, u64)]) -> (Option<i64>, Option<i64>) {
    let n: u64 = histogram.iter().map(|(_, count)| count).sum();
    let at = |q: f64| {
        let rank = ((n - 1) as f64 * q).round() as u64;
        let mut seen = 0;
        histogram.iter().find(|(_, count)| {
            seen += count;
            rank < seen
        })
    };
    if n == 0 { (None, None) } else { (at(0.5).map(|h| h.0), at(0.95).map(|h| h.0)) }
}

/// One account as a reservation found it in the store (either adapter).
pub struct AccountState {
    /// GCRA: the theoretical time of the account's next send (unix seconds).
    pub tat: f64,
    /// Sends counted today (already 0 when the stored day is not today).
    pub sent_today: u32,
    pub quarantined_until: i64,
    /// SMTP sessions other instances hold now.
    pub held_slots: u32,
}

/// An account that can send in this reservation, and the start times planned on it.
pub struct SendCandidate<'a> {
    pub limits: &'a AccountLimits,
    pub next: f64,
    pub daily_left: u32,
    pub sent_today: u32,
    pub free_slots: u32,
    pub times: Vec<f64>,
}

/// The reservation rules both adapters share: which accounts can send, and on which
/// each send goes. The adapters read and write the accounts and slots around it.
pub struct SendPlanner<'a> {
    now_f: f64,
    now_s: i64,
    horizon: Duration,
    candidates: Vec<SendCandidate<'a>>,
    /// When nothing can be granted: the earliest moment some account can send.
    next_capacity: Option<f64>,
}

impl<'a> SendPlanner<'a> {
    pub fn new(now: Timestamp, horizon: Duration) -> Self {
        Self {
            now_f: now.as_duration().as_secs_f64(),
            now_s: now.as_second(),
            horizon,
            candidates: Vec::new(),
            next_capacity: None,
        }
    }

    fn capacity_at(&mut self, at: f64) {
        self.next_capacity = Some(self.next_capacity.map_or(at, |n| n.min(at)));
    }

    /// Quarantined, out of today's cap, or with every session held: not a candidate.
    pub fn consider(&mut self, limits: &'a AccountLimits, state: AccountState) {
        if state.quarantined_until > self.now_s {
            self.capacity_at(state.quarantined_until as f64);
            return;
        }
        let daily_left = limits.daily_cap.saturating_sub(state.sent_today);
        let free_slots = limits.max_concurrent.saturating_sub(state.held_slots);
        if daily_left == 0 {
            return;
        }
        if free_slots == 0 {
            self.capacity_at(self.now_f + 1.0);
            return;
        }
        let next = state.tat.max(self.now_f);
        self.candidates.push(SendCandidate {
            limits,
            next,
            daily_left,
            sent_today: state.sent_today,
            free_slots,
            times: Vec::new(),
        });
    }

    /// Earliest start first: each send goes to the account that can start it soonest,
    /// so a few messages go out at once on several accounts rather than queueing on one,
    /// and a burst fills every account's horizon evenly. Returns the accounts that got
    /// sends (the others only move the next-capacity time).
    pub fn plan(&mut self, wanted: u32) -> Vec<SendCandidate<'a>> {
        let horizon_end = self.now_f + self.horizon.as_secs_f64();
        for _ in 0..wanted {
            let best = self
                .candidates
                .iter_mut()
                .filter(|c| c.next <= horizon_end && (c.times.len() as u32) < c.daily_left)
                .min_by(|a, b| a.next.total_cmp(&b.next));
            let Some(c) = best else { break };
            c.times.push(c.next);
            c.next += c.limits.interval_secs();
        }
        let (planned, idle): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.candidates).into_iter().partition(|c| !c.times.is_empty());
        for c in idle {
            self.capacity_at(c.next - self.horizon.as_secs_f64());
        }
        planned
    }

    /// When nothing was granted: the earliest moment an account will have capacity.
    pub fn next_capacity_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.next_capacity.map(|f| secs_to_timestamp(f.max(self.now_f), now))
    }
}

pub fn secs_to_timestamp(f: f64, fallback: Timestamp) -> Timestamp {
    Timestamp::from_duration(jiff::SignedDuration::from_secs_f64(f)).unwrap_or(fallback)
}

/// The constituency rule at the moment of casting, as both adapters apply it inside the
/// cast's transaction: every contest the ballot names must be in the election, and one
/// with a constituency must be the voter's (a roll column read from the roll now, a
/// directory group or filter as the voter's sign-in found it). Returns the restricted
/// contests this voter belongs to, whose turnout the cast counts.
pub fn constituencies_at_cast(
    contests: &[(turnout_domain::ContestId, crate::Constituency)],
    cast: &crate::CastBallot,
    roll_columns: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<Vec<turnout_domain::ContestId>, crate::ChoiceError> {
    use crate::Constituency;
    let belongs = |constituency: &Constituency, id: &turnout_domain::ContestId| match constituency {
        Constituency::Everyone => true,
        Constituency::RollColumn { .. } => roll_columns.is_some_and(|c| constituency.admits_roll_row(c)),
        Constituency::LdapGroup { .. } | Constituency::LdapFilter { .. } => cast.constituencies.contains(id),
    };
    for named in cast.choices.keys() {
        let Some((id, constituency)) = contests.iter().find(|(id, _)| id == named) else {
            return Err(crate::ChoiceError::UnknownContest(named.to_string()));
        };
        if !belongs(constituency, id) {
            return Err(crate::ChoiceError::NotInConstituency(id.clone()));
        }
    }
    Ok(contests.iter().filter(|(id, c)| !c.is_everyone() && belongs(c, id)).map(|(id, _)| id.clone()).collect())
}

/// Does any of these contests read the roll's columns at casting?
pub fn reads_roll_columns(contests: &[(turnout_domain::ContestId, crate::Constituency)]) -> bool {
    contests.iter().any(|(_, c)| matches!(c, crate::Constituency::RollColumn { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_pages_never_split_rows_that_share_a_sequence_number() {
        // Unique numbers: a full page, and the next one starts below its last row.
        assert_eq!(cut_outbox_page(&[9, 8, 7], 2), OutboxCut::Page { rows: 2, next_before: Some(8) });
        assert_eq!(cut_outbox_page(&[9, 8], 2), OutboxCut::Page { rows: 2, next_before: None });
        assert_eq!(cut_outbox_page(&[], 2), OutboxCut::Page { rows: 0, next_before: None });
        // Two rows numbered 7 across the boundary: both go to the next page, which is
        // asked for "before 8".
        assert_eq!(cut_outbox_page(&[9, 8, 7, 7], 3), OutboxCut::Page { rows: 2, next_before: Some(8) });
        // A tie that ends exactly at the boundary is not split.
        assert_eq!(cut_outbox_page(&[9, 7, 7, 6], 3), OutboxCut::Page { rows: 3, next_before: Some(7) });
        // A group filling the whole page (and beyond) is read whole.
        assert_eq!(cut_outbox_page(&[7, 7, 7], 2), OutboxCut::Group { seq: 7 });
        assert_eq!(cut_outbox_page(&[7, 7], 1), OutboxCut::Group { seq: 7 });
    }

    /// Pages through numbers with ties the way the console does, and sees each row once.
    #[test]
    fn following_the_cursor_shows_every_row_once() {
        let all: Vec<i64> = vec![20, 19, 19, 18, 17, 17, 17, 16, 15, 15, 14, 14, 14, 14, 13, 12, 12];
        for limit in 1..=6 {
            let mut seen = Vec::new();
            let mut before = i64::MAX;
            for _ in 0..100 {
                let fetched: Vec<i64> = all.iter().copied().filter(|s| *s < before).take(limit + 1).collect();
                let (page, next) = match cut_outbox_page(&fetched, limit) {
                    OutboxCut::Page { rows, next_before } => (fetched[..rows].to_vec(), next_before),
                    OutboxCut::Group { seq } => (all.iter().copied().filter(|s| *s == seq).collect(), Some(seq)),
                };
                seen.extend(page);
                match next {
                    Some(n) => before = n,
                    None => break,
                }
            }
            assert_eq!(seen, all, "limit {limit}");
        }
    }

    #[test]
    fn delivery_percentiles_use_the_nearest_rank() {
        assert_eq!(delivery_percentiles(&[]), (None, None));
        assert_eq!(delivery_percentiles(&[(3, 0)]), (None, None));
        let one_each: Vec<(i64, u64)> = (1..=100).map(|s| (s, 1)).collect();
        assert_eq!(delivery_percentiles(&one_each), (Some(51), Some(95)));
        // 12 at 2 s, 6 at 5 s, 2 at 30 s: ranks 0-11, 12-17, 18-19.
        assert_eq!(delivery_percentiles(&[(2, 12), (5, 6), (30, 2)]), (Some(2), Some(30)));
        assert_eq!(delivery_percentiles(&[(7, 1)]), (Some(7), Some(7)));
    }
}
