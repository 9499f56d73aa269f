//! The election schedule and its server-side clock checks. Every service calls these with
//! the server's own `now`; a client's clock is never trusted.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    /// After close, a voter who verified their code before close may still submit this long.
    pub grace: Duration,
    /// IANA zone the election is shown in, e.g. `Europe/London`.
    pub time_zone: String,
}

/// Why the window refuses a code or a ballot now. Its words (the local time voting opens
/// or closed) are what a voter is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowRefusal {
    #[error("Voting opens at {local}.")]
    NotYetOpen { opens_at: Timestamp, local: String },
    #[error("Voting closed at {local}.")]
    Closed { closes_at: Timestamp, local: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    NotYetOpen,
    Open,
    Closed,
}

impl Schedule {
    pub fn state(&self, now: Timestamp) -> WindowState {
        if now < self.opens_at {
            WindowState::NotYetOpen
        } else if now < self.closes_at {
            WindowState::Open
        } else {
            WindowState::Closed
        }
    }

    /// Codes are requested and verified only while the window is open.
    pub fn check_open(&self, now: Timestamp) -> Result<(), WindowRefusal> {
        match self.state(now) {
            WindowState::Open => Ok(()),
            WindowState::NotYetOpen => Err(self.not_open_error()),
            WindowState::Closed => Err(self.closed_error()),
        }
    }

    /// A ballot is accepted while open, or within the grace period after close when the
    /// voter's code was verified before close.
    pub fn check_ballot(&self, now: Timestamp, verified_at: Timestamp) -> Result<(), WindowRefusal> {
        match self.state(now) {
            WindowState::Open => Ok(()),
            WindowState::NotYetOpen => Err(self.not_open_error()),
            WindowState::Closed => {
                let in_grace = verified_at < self.closes_at && now < self.closes_at + self.grace;
                if in_grace { Ok(()) } else { Err(self.closed_error()) }
            }
        }
    }

    fn not_open_error(&self) -> WindowRefusal {
        WindowRefusal::NotYetOpen { opens_at: self.opens_at, local: self.local(self.opens_at) }
    }

    fn closed_error(&self) -> WindowRefusal {
        WindowRefusal::Closed { closes_at: self.closes_at, local: self.local(self.closes_at) }
    }

    /// `2026-11-22 13:00 +01:00 (Europe/Berlin)`: the election's zone with its offset.
    pub fn local(&self, t: Timestamp) -> String {
        local_in(&self.time_zone, t)
    }

    /// Just the clock time with offset, for short status lines: `13:02 +01:00`.
    pub fn local_time(&self, t: Timestamp) -> String {
        let tz = TimeZone::get(&self.time_zone).unwrap_or(TimeZone::UTC);
        t.to_zoned(tz).strftime("%H:%M %:z").to_string()
    }
}

/// `t` in the zone `zone` with its offset and name (UTC if the zone is unknown).
pub fn local_in(zone: &str, t: Timestamp) -> String {
    match TimeZone::get(zone) {
        Ok(tz) => format!("{} ({zone})", t.to_zoned(tz).strftime("%Y-%m-%d %H:%M %:z")),
        Err(_) => format!("{} (UTC)", t.to_zoned(TimeZone::UTC).strftime("%Y-%m-%d %H:%M %:z")),
    }
}

/// Checks an IANA zone name against the host's time zone database.
pub fn valid_time_zone(name: &str) -> bool {
    TimeZone::get(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            opens_at: "2026-11-22T12:00:00Z".parse().unwrap(),
            closes_at: "2026-11-22T12:30:00Z".parse().unwrap(),
            grace: Duration::from_secs(120),
            time_zone: "Europe/Berlin".into(),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn window_is_half_open() {
        let s = schedule();
        assert_eq!(s.state(at("2026-11-22T11:59:59Z")), WindowState::NotYetOpen);
        assert_eq!(s.state(at("2026-11-22T12:00:00Z")), WindowState::Open);
        assert_eq!(s.state(at("2026-11-22T12:29:59Z")), WindowState::Open);
        assert_eq!(s.state(at("2026-11-22T12:30:00Z")), WindowState::Closed);
    }

    #[test]
    fn grace_only_for_voters_verified_before_close() {
        let s = schedule();
        let verified_before = at("2026-11-22T12:29:00Z");
        let verified_after = at("2026-11-22T12:30:30Z");
        assert!(s.check_ballot(at("2026-11-22T12:31:00Z"), verified_before).is_ok());
        assert!(
            matches!(s.check_ballot(at("2026-11-22T12:32:00Z"), verified_before), Err(WindowRefusal::Closed { .. })),
            "grace ends"
        );
        assert!(s.check_ballot(at("2026-11-22T12:31:00Z"), verified_after).is_err());
        assert!(matches!(
            s.check_ballot(at("2026-11-22T11:00:00Z"), verified_before),
            Err(WindowRefusal::NotYetOpen { .. })
        ));
        assert!(s.check_open(at("2026-11-22T12:31:00Z")).is_err(), "no new codes after close");
    }

    #[test]
    fn times_are_shown_in_the_election_zone_with_offset() {
        let s = schedule();
        assert_eq!(s.local(s.opens_at), "2026-11-22 13:00 +01:00 (Europe/Berlin)");
        assert_eq!(s.local_time(s.closes_at), "13:30 +01:00");
        assert!(s.check_open(at("2026-11-22T13:00:00Z")).unwrap_err().to_string().contains("13:30 +01:00"));
        assert!(valid_time_zone("Europe/Berlin"));
        assert!(!valid_time_zone("Mars/Olympus"));
    }
}
