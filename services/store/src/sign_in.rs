//! Sign-in: the throttle's rule, shared by both adapters (what one attempt does to the two
//! counters it passes, decided from their stored state alone), and the sign-outs every
//! service reads to end a signed-out account's sessions.
//!
//! - **Per (username, address)**: `free_failures` attempts that did not succeed are
//!   free; from then on each one waits twice as long as the last (1 s, 2 s, 4 s, … up to
//!   `max_delay`). Keyed by the address too, so failures from anywhere else never make a
//!   voter wait: nobody can lock a student out from their own laptop.
//! - **Per address** (password spraying across usernames): at most `address_failures`
//!   failed attempts in a fixed window of `address_window`. Sized for a campus NAT: see
//!   `LoginSettings`.
//!
//! An attempt is counted *before* the directory is asked, in the same atomic step as the
//! check (so 50 parallel guesses get `free_failures` directory checks, not 50); a right
//! password, or an attempt the directory could not answer, gives its count back.
//! A pair's failures are forgotten `decay` after its last one; rows older than that are
//! purged.

use std::time::Duration;

use jiff::Timestamp;

use async_trait::async_trait;

use crate::StoreError;
use crate::rules::ts_ms;
use turnout_domain::Username;

/// The two counters one sign-in attempt passes. Both are keyed hashes: any string can be
/// submitted as a username, and an address is personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInKeys {
    pub pair: String,
    pub address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRules {
    pub free_failures: u32,
    pub max_delay: Duration,
    pub address_failures: u32,
    pub address_window: Duration,
    /// How long after a pair's last failure its count is forgotten.
    pub decay: Duration,
}

/// Which counter refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottledBy {
    /// Too many failures for this username from this address.
    Account,
    /// Too many failures from this address, across usernames.
    Address,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; ask the directory, then settle the attempt.
    Allowed,
    Throttled {
        until: Timestamp,
        by: ThrottledBy,
    },
}

/// How a counted attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The right password: the pair is cleared and the address gets its count back.
    Succeeded,
    /// The directory could not answer (busy, down): not the voter's failure.
    NotCounted,
}

/// A (username, address) counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairCount {
    pub failures: u32,
    pub next_allowed_ms: i64,
    pub last_ms: i64,
}

/// An address counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressCount {
    pub failures: u32,
    pub window_start_ms: i64,
}

/// The wait after `failures` uncleared attempts: none while fewer than `free`, then
/// 1 s, 2 s, 4 s, … up to `max_delay`.
pub fn delay_ms(failures: u32, free: u32, max_delay: Duration) -> i64 {
    if failures < free {
        0
    } else {
        ((1u64 << (failures - free).min(20)) * 1000).min(max_delay.as_millis() as u64) as i64
    }
}

impl ThrottleRules {
    /// The pair as it stands at `now_ms`: forgotten once it decayed and its wait is over.
    pub fn pair_now(&self, stored: Option<PairCount>, now_ms: i64) -> PairCount {
        match stored {
            Some(p) if now_ms - p.last_ms < self.decay.as_millis() as i64 || p.next_allowed_ms > now_ms => p,
            _ => PairCount::default(),
        }
    }

    /// The address as it stands at `now_ms` (a new window once the last one passed).
    pub fn address_now(&self, stored: Option<AddressCount>, now_ms: i64) -> AddressCount {
        match stored {
            Some(a) if now_ms - a.window_start_ms < self.address_window.as_millis() as i64 => a,
            _ => AddressCount { failures: 0, window_start_ms: now_ms },
        }
    }

    /// One attempt: refused with the moment it may come back, or the counters with the
    /// attempt counted, to be written in the same atomic step as the read.
    pub fn admit(
        &self,
        pair: Option<PairCount>,
        address: Option<AddressCount>,
        now_ms: i64,
    ) -> Result<(PairCount, AddressCount), Admission> {
        let pair = self.admit_pair(pair, now_ms)?;
        Ok((pair, self.admit_address(address, now_ms)?))
    }

    /// The pair's half of `admit`: refused while it waits, else counted.
    pub fn admit_pair(&self, stored: Option<PairCount>, now_ms: i64) -> Result<PairCount, Admission> {
        let pair = self.pair_now(stored, now_ms);
        if pair.next_allowed_ms > now_ms {
            return Err(Admission::Throttled { until: ts_ms(pair.next_allowed_ms), by: ThrottledBy::Account });
        }
        let failures = pair.failures + 1;
        let delay = delay_ms(failures, self.free_failures, self.max_delay);
        Ok(PairCount { failures, next_allowed_ms: if delay > 0 { now_ms + delay } else { 0 }, last_ms: now_ms })
    }

    /// The address's half of `admit`: refused once its window is full, else counted.
    pub fn admit_address(&self, stored: Option<AddressCount>, now_ms: i64) -> Result<AddressCount, Admission> {
        let address = self.address_now(stored, now_ms);
        if address.failures >= self.address_failures {
            let until = address.window_start_ms + self.address_window.as_millis() as i64;
            return Err(Admission::Throttled { until: ts_ms(until), by: ThrottledBy::Address });
        }
        Ok(AddressCount { failures: address.failures + 1, window_start_ms: address.window_start_ms })
    }

    /// A counted attempt the directory could not answer: the pair's count given back.
    pub fn give_back(&self, pair: PairCount, now_ms: i64) -> PairCount {
        let failures = pair.failures.saturating_sub(1);
        let delay = delay_ms(failures, self.free_failures, self.max_delay);
        PairCount { failures, next_allowed_ms: if delay > 0 { now_ms + delay } else { 0 }, last_ms: pair.last_ms }
    }
}

/// Sign-in throttling (rules above) and sign-outs, shared by every auth instance.
#[async_trait]
pub trait SignIn: Send + Sync {
    /// Checks and counts one attempt in one atomic step: refused while its pair waits or
    /// its address is over the limit, else counted as a failure until settled.
    async fn sign_in_attempt(
        &self,
        keys: &SignInKeys,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<Admission, StoreError>;

    /// A counted attempt that was not a wrong password: a success clears its pair, and
    /// either outcome gives the address its count back. (A wrong password needs no call.)
    async fn sign_in_settled(
        &self,
        keys: &SignInKeys,
        outcome: AttemptOutcome,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deletes up to `limit` throttle rows that have nothing left to hold back at
    /// `now`; returns how many.
    async fn purge_sign_in_throttles(
        &self,
        rules: &ThrottleRules,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Records that `account` signed out at `at` (a later sign-out replaces an earlier).
    async fn record_sign_out(&self, account: &Username, at: Timestamp) -> Result<(), StoreError>;

    /// Sign-outs at or after `since`, oldest first, at most `limit`.
    async fn sign_outs_since(&self, since: Timestamp, limit: u32) -> Result<Vec<(Username, Timestamp)>, StoreError>;

    /// Forgets sign-outs before `before` (no session that old is still valid).
    async fn purge_sign_outs(&self, before: Timestamp) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ThrottleRules {
        ThrottleRules {
            free_failures: 3,
            max_delay: Duration::from_secs(300),
            address_failures: 5,
            address_window: Duration::from_secs(600),
            decay: Duration::from_secs(900),
        }
    }

    #[test]
    fn the_free_failures_pass_then_each_waits_twice_as_long() {
        let r = rules();
        let (mut pair, mut addr) = (None, None);
        let mut now = 1_000_000;
        for n in 1..=3 {
            let (p, a) = r.admit(pair, addr, now).unwrap_or_else(|e| panic!("attempt {n}: {e:?}"));
            (pair, addr) = (Some(p), Some(a));
        }
        assert_eq!(pair.unwrap().next_allowed_ms - now, 1000, "after 3 free failures: 1 s");
        assert!(matches!(r.admit(pair, addr, now), Err(Admission::Throttled { by: ThrottledBy::Account, .. })));
        now += 1000;
        let (p, _) = r.admit(pair, addr, now).unwrap();
        assert_eq!(p.next_allowed_ms - now, 2000, "then 2 s");
        assert_eq!(delay_ms(40, 3, Duration::from_secs(300)), 300_000, "capped");
    }

    #[test]
    fn failures_decay_and_a_new_window_forgives_the_address() {
        let r = rules();
        let stale = PairCount { failures: 9, next_allowed_ms: 1_600_000, last_ms: 1_000_000 };
        assert!(r.admit(Some(stale), None, 1_500_000).is_err(), "still waiting");
        let later = 1_000_000 + 900_000;
        let (p, _) = r.admit(Some(stale), None, later).unwrap();
        assert_eq!(p.failures, 1, "forgotten after the decay");

        let full = AddressCount { failures: 5, window_start_ms: 0 };
        assert!(matches!(
            r.admit(None, Some(full), 599_999),
            Err(Admission::Throttled { by: ThrottledBy::Address, .. })
        ));
        assert_eq!(
            r.admit(None, Some(full), 600_000).unwrap().1,
            AddressCount { failures: 1, window_start_ms: 600_000 }
        );
    }

    #[test]
    fn an_unanswered_attempt_is_given_back() {
        let r = rules();
        let p = PairCount { failures: 3, next_allowed_ms: 5_000, last_ms: 4_000 };
        assert_eq!(r.give_back(p, 4_000), PairCount { failures: 2, next_allowed_ms: 0, last_ms: 4_000 });
    }
}
