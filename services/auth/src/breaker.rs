//! A circuit breaker in front of the directory. After `failures_to_open` directory
//! failures in a row it opens: logins are refused at once (no connection, no waiting)
//! until `open_for` has passed. Then one login goes through as a probe: success closes
//! the breaker, failure opens it again. Wrong passwords are answers, not failures.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; others are refused until it reports (or goes missing).
    HalfOpen {
        probe_started: Instant,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// This request is the probe; its outcome decides the breaker's state.
    Probe,
    Rejected {
        retry_after: Duration,
    },
}

pub struct Breaker {
    state: Mutex<State>,
    failures_to_open: u32,
    open_for: Duration,
    /// A probe that has not reported after this long is presumed lost.
    probe_timeout: Duration,
}

impl Breaker {
    pub fn new(failures_to_open: u32, open_for: Duration, probe_timeout: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            failures_to_open: failures_to_open.max(1),
            open_for,
            probe_timeout,
        }
    }

    pub fn admit(&self, now: Instant) -> Admission {
        let mut state = self.state.lock().expect("not poisoned");
        match *state {
            State::Closed { .. } => Admission::Allowed,
            State::Open { until } if now < until => Admission::Rejected { retry_after: until - now },
            State::HalfOpen { probe_started } if now < probe_started + self.probe_timeout => {
                Admission::Rejected { retry_after: Duration::from_secs(1) }
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                *state = State::HalfOpen { probe_started: now };
                Admission::Probe
            }
        }
    }

    pub fn success(&self) {
        *self.state.lock().expect("not poisoned") = State::Closed { failures: 0 };
    }

    pub fn failure(&self, now: Instant) {
        let mut state = self.state.lock().expect("not poisoned");
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.failures_to_open => {
                State::Closed { failures: failures + 1 }
            }
            _ => State::Open { until: now + self.open_for },
        };
    }

    /// `closed`, `open` or `half_open`, for readiness and metrics.
    pub fn state_name(&self, now: Instant) -> &'static str {
        match *self.state.lock().expect("not poisoned") {
            State::Closed { .. } => "closed",
            State::Open { until } if now < until => "open",
            _ => "half_open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(3, Duration::from_secs(5), Duration::from_secs(10))
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker();
        let t = Instant::now();
        b.failure(t);
        b.failure(t);
        b.success(); // an answer in between resets the count
        b.failure(t);
        b.failure(t);
        assert_eq!(b.admit(t), Admission::Allowed);
        b.failure(t);
        assert!(matches!(b.admit(t), Admission::Rejected { retry_after } if retry_after == Duration::from_secs(5)));
        assert_eq!(b.state_name(t), "open");
    }

    #[test]
    fn one_probe_after_the_open_period_decides() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.failure(t);
        }
        let later = t + Duration::from_secs(6);
        assert_eq!(b.admit(later), Admission::Probe);
        assert!(matches!(b.admit(later), Admission::Rejected { .. }), "only one probe at a time");
        b.failure(later);
        assert!(matches!(b.admit(later), Admission::Rejected { .. }), "a failed probe reopens");
        let again = later + Duration::from_secs(6);
        assert_eq!(b.admit(again), Admission::Probe);
        b.success();
        assert_eq!(b.admit(again), Admission::Allowed);
        assert_eq!(b.state_name(again), "closed");
    }

    #[test]
    fn a_lost_probe_does_not_wedge_the_breaker() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.failure(t);
        }
        assert_eq!(b.admit(t + Duration::from_secs(6)), Admission::Probe);
        // The probe never reports; after the probe timeout another one goes.
        assert_eq!(b.admit(t + Duration::from_secs(17)), Admission::Probe);
    }
}
