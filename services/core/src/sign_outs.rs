//! Sign-out that every service honours within a second. Session tokens are checked
//! without a store lookup, so a copied cookie would outlive a sign-out until it expires;
//! instead, signing out records "this account signed out at T" in the store, and each
//! service keeps the recent records in memory, read again every 250 ms. A session
//! signed in at or before its account's last sign-out is refused.
//!
//! Signing out ends every session of the account (on every device), which is what a
//! voter on a shared computer expects. The map holds one entry per account that signed
//! out within the session lifetime (older entries cannot match a live session and are
//! dropped), so its size is bounded by the directory, not by what anyone sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use jiff::Timestamp;

use crate::domain::Username;
use crate::session::Session;
use crate::store::{SignIn, StoreError};

/// How often each service reads new sign-outs.
const REFRESH: Duration = Duration::from_millis(250);
/// Each read starts this far before the newest sign-out seen: a sign-out committed late
/// by another process (its clock, its transaction, up to the store's 5 s deadline and
/// then some) is still picked up. 30 s of sign-outs is a few hundred rows at most.
const OVERLAP_MS: i64 = 30_000;
/// Rows per read; a read that fills it continues at once.
const PAGE: u32 = 5_000;

#[derive(Default)]
struct State {
    /// Account -> its last sign-out, unix ms.
    by_account: HashMap<Username, i64>,
    /// The newest sign-out read so far.
    newest_ms: i64,
}

pub struct SignOuts {
    state: Mutex<State>,
    /// Sessions older than this are expired anyway: their sign-outs need not be kept.
    session_ttl: Duration,
}

impl SignOuts {
    pub fn new(session_ttl: Duration) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(State::default()), session_ttl })
    }

    /// Whether `session` was ended by a sign-out of its account.
    pub fn ended(&self, session: &Session) -> bool {
        let state = self.state.lock().expect("not poisoned");
        state.by_account.get(&session.sub).is_some_and(|at| session.signed_in_ms <= *at)
    }

    /// The moment to record for signing `session` out at `now`: never before the session
    /// began, so a clock behind the one that signed it in still ends it.
    pub fn moment(session: &Session, now: Timestamp) -> Timestamp {
        let at = now.as_millisecond().max(session.signed_in_ms);
        Timestamp::from_millisecond(at).unwrap_or(now)
    }

    /// Records a sign-out seen here (the service that handled it refuses at once).
    pub fn note(&self, account: &Username, at: Timestamp) {
        let mut state = self.state.lock().expect("not poisoned");
        let at = at.as_millisecond();
        let entry = state.by_account.entry(account.clone()).or_insert(at);
        *entry = (*entry).max(at);
    }

    /// Reads the sign-outs recorded since the last read and forgets expired ones.
    pub async fn refresh(&self, store: &dyn SignIn, now: Timestamp) -> Result<(), StoreError> {
        let mut since_ms = self.state.lock().expect("not poisoned").newest_ms - OVERLAP_MS;
        loop {
            let since = Timestamp::from_millisecond(since_ms.max(0)).unwrap_or(Timestamp::UNIX_EPOCH);
            let page = store.sign_outs_since(since, PAGE).await?;
            let full = page.len() == PAGE as usize;
            for (account, at) in &page {
                self.note(account, *at);
            }
            let newest = page.iter().map(|(_, at)| at.as_millisecond()).max();
            {
                let mut state = self.state.lock().expect("not poisoned");
                // Never past this process's own clock: one writer whose clock runs ahead
                // must not make the next reads skip everyone else's sign-outs.
                if let Some(newest) = newest {
                    state.newest_ms = state.newest_ms.max(newest.min(now.as_millisecond()));
                }
                let oldest_live = now.as_millisecond() - self.session_ttl.as_millis() as i64;
                state.by_account.retain(|_, at| *at >= oldest_live);
            }
            match newest {
                // A page of rows all at one instant would repeat forever: move past it.
                Some(newest) if full => since_ms = if newest > since_ms { newest } else { since_ms + 1 },
                _ => return Ok(()),
            }
        }
    }

    /// Refreshes every 250 ms for as long as anything holds this `SignOuts` (the server's
    /// app data); the task ends with it.
    pub fn keep_fresh(self: &Arc<Self>, store: Arc<dyn SignIn>) {
        let this: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(sign_outs) = this.upgrade() else { return };
                if let Err(e) = sign_outs.refresh(store.as_ref(), Timestamp::now()).await {
                    tracing::warn!(event = "sign_out_refresh_failed", error = %e);
                }
            }
        });
    }

    /// How many accounts are held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.state.lock().expect("not poisoned").by_account.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::VoterEmail;

    fn session(user: &str, at: Timestamp) -> Session {
        Session::new(
            Username::parse(user).unwrap(),
            VoterEmail::parse("v@u.test").unwrap(),
            vec![],
            at,
            Duration::from_secs(3600),
        )
    }

    #[test]
    fn a_sign_out_ends_earlier_sessions_of_that_account_only() {
        let t0 = Timestamp::now();
        let s = SignOuts::new(Duration::from_secs(3600));
        let before = session("student00001", t0);
        s.note(&Username::parse("student00001").unwrap(), t0 + Duration::from_millis(1));
        assert!(s.ended(&before));
        assert!(!s.ended(&session("student00002", t0)), "another account");
        assert!(!s.ended(&session("student00001", t0 + Duration::from_millis(2))), "signed in again after");
        // A clock behind the one that signed the session in still ends it.
        let later = session("student00003", t0 + Duration::from_secs(5));
        s.note(&later.sub, SignOuts::moment(&later, t0));
        assert!(s.ended(&later));
        // A verified session is the same sign-in: it ends too.
        let verified =
            before.verified_for(&crate::domain::ElectionId::parse("demo").unwrap(), t0, Duration::from_secs(60));
        assert!(s.ended(&verified));
    }
}
