//! A short-lived cache of elections for the hot voter paths (the ballot page, casting,
//! code requests), so a rush of voters does not reload the same election thousands of
//! times a second.
//!
//! Staleness is bounded and safe:
//! - an entry lives at most `ttl` (a second by default), so a moved window shows up within
//!   it; casting does not depend on it anyway, because the store checks the window again
//!   as it records the ballot;
//! - contests and candidates are locked once voting opens, so an entry loaded after the
//!   opening is exact for them; an entry loaded before the opening is dropped at the
//!   opening, so a last-second candidate decision is never missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::{Election, Elections, election_or_404};
use crate::error::ApiError;

/// Elections kept at most; past it the cache starts over (there are few elections).
const MAX_ENTRIES: usize = 1024;

struct Entry {
    loaded: Instant,
    loaded_at: Timestamp,
    election: Arc<Election>,
}

pub struct ElectionCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl ElectionCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The election named in a URL (or the usual unknown-election error), from the cache
    /// when a fresh entry is there.
    pub async fn get(&self, store: &dyn Elections, raw: &str) -> Result<Arc<Election>, ApiError> {
        let now = Timestamp::now();
        if let Some(hit) = self.fresh(raw, now) {
            return Ok(hit);
        }
        let election = Arc::new(election_or_404(store, raw).await?);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(raw.to_owned(), Entry { loaded: Instant::now(), loaded_at: now, election: election.clone() });
        Ok(election)
    }

    fn fresh(&self, raw: &str, now: Timestamp) -> Option<Arc<Election>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(raw)?;
        let opens = entry.election.schedule.opens_at;
        let opened_since = entry.loaded_at < opens && now >= opens;
        (entry.loaded.elapsed() < self.ttl && !opened_since).then(|| entry.election.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn election(opens_at: Timestamp) -> Arc<Election> {
        Arc::new(Election {
            id: crate::domain::ElectionId::parse("demo").unwrap(),
            title: "Demo".into(),
            schedule: crate::schedule::Schedule {
                opens_at,
                closes_at: opens_at + Duration::from_secs(3600),
                grace: Duration::ZERO,
                time_zone: "UTC".into(),
            },
            contests: Vec::new(),
            otp_extra: Duration::ZERO,
            eligibility: crate::store::Eligibility::default(),
            quorum_pct: 0.0,
            otp_validity: None,
            shuffle_candidates: false,
            nominations: None,
        })
    }

    fn cache_with(ttl: Duration, loaded_at: Timestamp, opens_at: Timestamp) -> ElectionCache {
        let cache = ElectionCache::new(ttl);
        let entry = Entry { loaded: Instant::now(), loaded_at, election: election(opens_at) };
        cache.entries.lock().unwrap().insert("demo".into(), entry);
        cache
    }

    #[test]
    fn an_entry_loaded_before_the_opening_is_dropped_at_the_opening() {
        let now = Timestamp::now();
        let cache = cache_with(Duration::from_secs(60), now, now + Duration::from_secs(1));
        assert!(cache.fresh("demo", now).is_some(), "fresh before the opening");
        assert!(cache.fresh("demo", now + Duration::from_secs(2)).is_none(), "kept across the opening");
    }

    #[test]
    fn an_entry_expires_after_its_ttl() {
        let now = Timestamp::now();
        let cache = cache_with(Duration::from_millis(30), now, now - Duration::from_secs(60));
        assert!(cache.fresh("demo", now).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.fresh("demo", now).is_none(), "served past its ttl");
    }
}
