//! The login rules, free of HTTP: throttle per username, check the directory, decide
//! eligibility per election and roles, issue the session. Every failure that could tell
//! an attacker whether an account exists takes at least the same minimum time and says
//! the same thing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use turnout_core::config::{LoginSettings, RoleLists};
use turnout_core::domain::{ElectionId, Username};
use turnout_core::session::{Role, Session};
use turnout_core::store::{ElectionSummary, Eligibility, LoginThrottle, SignInFacts, Store};
use turnout_core::{ApiError, ErrorCode, Settings};

use crate::directory::{Directory, DirectoryError, DirectoryUser, LoginChecks, normalize_dn};

/// The most elections one login looks at (pages of 100).
const MAX_ELECTIONS: usize = 1000;
const ELECTIONS_TTL: Duration = Duration::from_secs(1);

pub struct Login {
    pub directory: Directory,
    store: Arc<dyn Store>,
    throttle: LoginSettings,
    roles: RoleLists,
    admin_group: Option<String>,
    officer_group: Option<String>,
    session_ttl: Duration,
    elections: std::sync::Mutex<Option<(Instant, Vec<ElectionSummary>)>>,
    /// Sign-ins since the dashboard counter was last flushed to the store: a store write
    /// per sign-in would cost more than the sign-in itself.
    signed_in: std::sync::atomic::AtomicU64,
}

/// The refusal for a username still waiting out its failures, if it is.
fn throttled(throttle: &LoginThrottle, now: Timestamp) -> Option<ApiError> {
    let until = throttle.next_allowed_at?;
    let secs = (until.duration_since(now).as_millis().max(1) as u64).div_ceil(1000);
    tracing::info!(event = "login", outcome = "throttled");
    Some(
        ApiError::new(
            ErrorCode::LoginThrottled,
            format!("Too many failed sign-ins for this username. Try again in {secs} seconds."),
        )
        .retry_after(secs),
    )
}

fn invalid_credentials() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "Wrong username or password.")
}

/// The throttle key: a hash, since any string can be submitted as a username.
fn throttle_key(raw_username: &str) -> String {
    let name: String = raw_username.trim().to_lowercase().chars().take(256).collect();
    turnout_core::keys::hex(&turnout_core::keys::derive_with(b"login-throttle", "username", &[name.as_bytes()]))
}

impl Login {
    pub fn new(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        Ok(Self {
            directory: Directory::new(settings.ldap.clone(), settings.http_worker_count())?,
            store,
            throttle: settings.login.clone(),
            roles: settings.roles.clone(),
            admin_group: settings.ldap.admin_group.as_deref().map(normalize_dn),
            officer_group: settings.ldap.officer_group.as_deref().map(normalize_dn),
            session_ttl: settings.session_ttl,
            elections: std::sync::Mutex::new(None),
            signed_in: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub async fn login(&self, raw_username: &str, password: &SecretString) -> Result<Session, ApiError> {
        let started = Instant::now();
        let outcome = self.attempt(raw_username, password).await;
        crate::metrics::login(outcome.as_ref().map_or_else(|e| e.code.as_str(), |_| "ok"));
        if let Err(e) = &outcome
            && matches!(e.code, ErrorCode::InvalidCredentials | ErrorCode::LoginThrottled)
        {
            // Same floor for every kind of wrong: unknown user, wrong password, bad input.
            tokio::time::sleep_until((started + self.throttle.failure_floor).into()).await;
        }
        outcome
    }

    async fn attempt(&self, raw_username: &str, password: &SecretString) -> Result<Session, ApiError> {
        let now = Timestamp::now();
        let key = throttle_key(raw_username);
        // Checked before any network call: an empty password is an anonymous bind.
        let username = match Username::parse(raw_username) {
            Ok(u) if !password.expose_secret().trim().is_empty() => u,
            _ => {
                let throttle = self.store.login_throttle(&key, now).await?;
                return Err(match throttled(&throttle, now) {
                    Some(refusal) => refusal,
                    None => self.failed(&key, "malformed", now).await,
                });
            }
        };
        let elections = self.open_elections(now).await?;
        // The roll is read before the directory (with the throttle, in one store read):
        // when it gives this voter's address for every open election, the directory is
        // asked for the password check only.
        let roll_elections: Vec<ElectionId> =
            elections.iter().filter(|e| e.eligibility == Eligibility::Roll).map(|e| e.id.clone()).collect();
        let SignInFacts { throttle, on_roll } = self.store.sign_in_facts(&key, &username, &roll_elections, now).await?;
        if let Some(refusal) = throttled(&throttle, now) {
            return Err(refusal);
        }
        let roll_gives_address = !on_roll.is_empty()
            && on_roll.iter().all(|(_, email)| email.is_some())
            && roll_elections.len() == elections.len();
        let mut groups: Vec<String> = self.admin_group.iter().chain(self.officer_group.iter()).cloned().collect();
        for e in &elections {
            if let Eligibility::LdapGroup { group_dn } = &e.eligibility {
                groups.push(normalize_dn(group_dn));
            }
        }
        groups.sort();
        groups.dedup();
        let checks = LoginChecks {
            groups,
            filters: elections
                .iter()
                .filter_map(|e| match &e.eligibility {
                    Eligibility::LdapFilter { filter } => Some(filter.clone()),
                    _ => None,
                })
                .collect(),
            read_mail: !roll_gives_address,
        };
        let user = match self.directory.authenticate(&username, password, &checks).await {
            Ok(user) => user,
            Err(DirectoryError::InvalidCredentials) => return Err(self.failed(&key, "invalid_credentials", now).await),
            Err(DirectoryError::Busy) => {
                tracing::info!(event = "login", outcome = "directory_busy");
                return Err(ApiError::new(
                    ErrorCode::DirectoryUnavailable,
                    "Many students are signing in right now. Please try again in a few seconds.",
                )
                .retry_after(2));
            }
            Err(DirectoryError::Unavailable { retry_after, .. }) => {
                tracing::info!(event = "login", outcome = "directory_unavailable");
                let secs = retry_after.as_secs().max(1);
                return Err(ApiError::new(
                    ErrorCode::DirectoryUnavailable,
                    format!("The university directory is not answering right now. Please try again in {secs} seconds."),
                )
                .retry_after(secs));
            }
        };
        if throttle.failures > 0 {
            self.store.login_succeeded(&key).await?;
        }
        let roles = self.roles_of(&user);
        let eligible = eligible_for(&user, &elections, &on_roll);
        if eligible.is_empty() && roles.is_empty() {
            tracing::info!(event = "login", outcome = "not_eligible");
            return Err(ApiError::new(
                ErrorCode::NotEligible,
                "You are not on the voter list of any open election. If you think this is wrong, contact the election office.",
            ));
        }
        // The directory's address, else the roll's (the OTP service still prefers the
        // roll's address for that roll's election).
        let Some(email) = user.email.clone().or_else(|| on_roll.iter().find_map(|(_, email)| email.clone())) else {
            tracing::info!(event = "login", outcome = "no_email");
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "Your directory entry has no email address, so no code can be sent. Contact the election office.",
            ));
        };
        tracing::info!(event = "login", outcome = "ok", eligible = eligible.len(), roles = roles.len());
        self.signed_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Session::new(user.username, email, roles, now, self.session_ttl).with_eligible(eligible))
    }

    /// Every second, adds the sign-ins counted since the last flush to the dashboard's
    /// per-minute activity; every few seconds, reports the directory's state. Runs until
    /// the process stops; a store hiccup only delays the counts.
    pub async fn report(self: std::sync::Arc<Self>) {
        use std::sync::atomic::Ordering;
        use turnout_core::store::{ALL_ELECTIONS, Activity, ActivityCount};
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        loop {
            tick.tick().await;
            ticks += 1;
            let n = self.signed_in.swap(0, Ordering::Relaxed);
            if n > 0 {
                let count = ActivityCount {
                    election: ALL_ELECTIONS.into(),
                    kind: Activity::Login,
                    minute: Timestamp::now().as_second().div_euclid(60),
                    n,
                };
                if let Err(e) = self.store.record_activity(&[count]).await {
                    self.signed_in.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(event = "activity_flush_failed", error = %e);
                }
            }
            if ticks % 5 == 1 {
                let (ok, detail) = match self.directory.status().await {
                    Ok(detail) => (true, detail),
                    Err(problem) => (false, serde_json::json!({ "problem": problem })),
                };
                let detail = serde_json::json!({ "ldap": detail });
                if let Err(e) = self.store.report_status("auth", ok, &detail, Timestamp::now()).await {
                    tracing::warn!(event = "status_report_failed", error = %e);
                }
            }
        }
    }

    async fn failed(&self, key: &str, outcome: &str, now: Timestamp) -> ApiError {
        tracing::info!(event = "login", outcome);
        if let Err(e) = self.store.login_failed(key, self.throttle.free_failures, self.throttle.max_delay, now).await {
            tracing::warn!(event = "login_throttle_error", error = %e);
        }
        invalid_credentials()
    }

    /// Elections that are open or still to come, cached for a second: a burst of logins
    /// reads the list once, and a new or changed election shows within a second.
    async fn open_elections(&self, now: Timestamp) -> Result<Vec<ElectionSummary>, ApiError> {
        if let Some((at, list)) = self.elections.lock().expect("not poisoned").as_ref()
            && at.elapsed() < ELECTIONS_TTL
        {
            return Ok(list
                .iter()
                .filter(|e| e.closes_at + Duration::from_secs(e.grace_secs) > now)
                .cloned()
                .collect());
        }
        let list = self.read_open_elections(now).await?;
        *self.elections.lock().expect("not poisoned") = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    async fn read_open_elections(&self, now: Timestamp) -> Result<Vec<ElectionSummary>, ApiError> {
        let mut all = Vec::new();
        let mut after: Option<ElectionId> = None;
        loop {
            let page = self.store.list_elections(after.as_ref(), 100).await?;
            let full = page.len() == 100;
            after = page.last().map(|e| e.id.clone());
            all.extend(page.into_iter().filter(|e| e.closes_at + Duration::from_secs(e.grace_secs) > now));
            if !full || all.len() >= MAX_ELECTIONS {
                return Ok(all);
            }
        }
    }

    fn roles_of(&self, user: &DirectoryUser) -> Vec<Role> {
        let uid = user.username.as_str();
        let in_group = |group: &Option<String>| group.as_ref().is_some_and(|g| user.groups.contains(g));
        let mut roles = Vec::new();
        if self.roles.admins.iter().any(|a| a == uid) || in_group(&self.admin_group) {
            roles.push(Role::Admin);
        }
        if self.roles.officers.iter().any(|o| o == uid) || in_group(&self.officer_group) {
            roles.push(Role::Officer);
        }
        roles
    }
}

/// The open elections this user may vote in: the roll from the store, groups and
/// filters from the directory.
fn eligible_for(
    user: &DirectoryUser,
    elections: &[ElectionSummary],
    on_roll: &[(ElectionId, Option<turnout_core::domain::VoterEmail>)],
) -> Vec<ElectionId> {
    elections
        .iter()
        .filter(|e| match &e.eligibility {
            Eligibility::Everyone => true,
            Eligibility::Roll => on_roll.iter().any(|(id, _)| id == &e.id),
            Eligibility::LdapGroup { group_dn } => user.groups.contains(&normalize_dn(group_dn)),
            Eligibility::LdapFilter { filter } => user.matched_filters.contains(filter),
        })
        .map(|e| e.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::throttle_key;

    #[test]
    fn throttle_keys_ignore_case_and_spaces_and_are_bounded() {
        assert_eq!(throttle_key(" Student00001 "), throttle_key("student00001"));
        assert_ne!(throttle_key("student00001"), throttle_key("student00002"));
        assert_eq!(throttle_key(&"x".repeat(100_000)).len(), 64);
    }
}
