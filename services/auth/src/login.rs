//! The login rules, free of HTTP: throttle per (username, address) and per address (the
//! rule is `turnout_store::sign_in`), check the directory, decide eligibility per
//! election and roles, issue the session for the directory's account (never for the
//! string typed). Every failure that could tell an attacker whether an account exists
//! takes at least the same minimum time and says the same thing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use turnout_core::config::{LoginSettings, RoleLists};
use turnout_core::domain::{ContestId, ElectionId, Username};
use turnout_core::session::{Role, Session};
use turnout_core::store::{
    ActivityLog, Admission, AttemptOutcome, Constituency, ElectionSummary, Elections, Eligibility, Roll, SignIn,
    SignInKeys, StaffContact, StaffContacts, Store, ThrottleRules, ThrottledBy,
};
use turnout_core::{ApiError, ErrorCode, Settings};

use crate::device::DeviceKeys;
use crate::directory::{Directory, DirectoryError, DirectoryUser, LoginChecks, normalize_dn};

/// What signing in asks of the store: the throttle and sign-outs, the elections and their
/// rolls (eligibility), the dashboard's counts, and staff's addresses (for the officers'
/// notices). `Login` can call nothing else.
pub trait LoginStore: SignIn + Elections + Roll + ActivityLog + StaffContacts + 'static {}

impl<T: SignIn + Elections + Roll + ActivityLog + StaffContacts + 'static + ?Sized> LoginStore for T {}

/// Throttle rows deleted per purge transaction.
const PURGE_BATCH: u32 = 1000;
/// The most elections one login looks at (pages of 100).
const MAX_ELECTIONS: usize = 1000;
const ELECTIONS_TTL: Duration = Duration::from_secs(1);

pub struct Login<S: LoginStore + ?Sized = dyn Store> {
    pub directory: Directory,
    /// Device cookies (see `device`): a known browser is throttled on its own.
    pub devices: DeviceKeys,
    store: Arc<S>,
    throttle: LoginSettings,
    rules: ThrottleRules,
    /// Keys the throttle's row ids: a username and an address are both personal data.
    throttle_key: [u8; 32],
    roles: RoleLists,
    admin_group: Option<String>,
    officer_group: Option<String>,
    session_ttl: Duration,
    elections: std::sync::Mutex<Option<(Instant, Vec<ElectionSummary>)>>,
    /// Sign-ins since the dashboard counter was last flushed to the store: a store write
    /// per sign-in would cost more than the sign-in itself.
    signed_in: std::sync::atomic::AtomicU64,
}

/// The refusal for an attempt the throttle holds back.
fn throttled(until: Timestamp, by: ThrottledBy, now: Timestamp) -> ApiError {
    let secs = (until.duration_since(now).as_millis().max(1) as u64).div_ceil(1000);
    tracing::info!(event = "login", outcome = "throttled", by = ?by);
    let message = match by {
        ThrottledBy::Account => {
            format!("Too many failed sign-ins for this username from your network. Try again in {secs} seconds.")
        }
        ThrottledBy::Address => {
            format!("Too many failed sign-ins from your network. Try again in {secs} seconds.")
        }
    };
    ApiError::new(ErrorCode::LoginThrottled, message).retry_after(secs)
}

fn invalid_credentials() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "Wrong username or password.")
}

/// Where an attempt comes from, as the throttle counts it.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    /// The client's network address.
    Address(IpAddr),
    /// A browser whose device cookie names the account being signed in to.
    Device(&'a str),
}

/// The throttle's row ids for one attempt: keyed hashes of (typed name folded as
/// `Username` folds, origin) and of the origin. The name is cut to 256 characters,
/// since any string can be submitted.
fn sign_in_keys(key: &[u8; 32], raw_username: &str, origin: Origin<'_>) -> SignInKeys {
    let name: String = raw_username.trim().to_ascii_lowercase().chars().take(256).collect();
    let (kind, from) = match origin {
        Origin::Address(client) => ("address", network_of(client)),
        Origin::Device(id) => ("device", id.to_owned()),
    };
    let hash =
        |label: &str, parts: &[&[u8]]| turnout_core::keys::hex(&turnout_core::keys::derive_with(key, label, parts));
    SignInKeys {
        pair: hash("pair", &[kind.as_bytes(), name.as_bytes(), from.as_bytes()]),
        address: hash(kind, &[from.as_bytes()]),
    }
}

/// A counted attempt whose check has not ended. If the request is dropped meanwhile (the
/// client went away: actix drops the handler), the attempt is given back in the
/// background: nobody learnt its answer, and it must not hold a voter back.
struct Unsettled<S: SignIn + 'static + ?Sized> {
    store: Arc<S>,
    keys: Option<SignInKeys>,
    rules: ThrottleRules,
}

impl<S: SignIn + 'static + ?Sized> Drop for Unsettled<S> {
    fn drop(&mut self) {
        let Some(keys) = self.keys.take() else { return };
        let (store, rules) = (self.store.clone(), self.rules);
        tokio::spawn(async move {
            if let Err(e) = store.sign_in_settled(&keys, AttemptOutcome::NotCounted, &rules, Timestamp::now()).await {
                tracing::warn!(event = "login_throttle_error", error = %e);
            }
        });
    }
}

/// The address as the throttle counts it: IPv4 as is (an IPv4-mapped IPv6 address is
/// its IPv4 address), IPv6 by its /64, the block one host or home network gets, so
/// changing the last 64 bits does not buy an attacker a new counter.
fn network_of(client: IpAddr) -> String {
    match client.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

impl<S: LoginStore + ?Sized> Login<S> {
    pub fn new(settings: &Settings, store: Arc<S>) -> anyhow::Result<Self> {
        Ok(Self {
            directory: Directory::new(settings.ldap.clone(), settings.http_worker_count())?,
            devices: DeviceKeys::from_settings(settings),
            store,
            throttle: settings.login.clone(),
            rules: ThrottleRules {
                free_failures: settings.login.free_failures,
                max_delay: settings.login.max_delay,
                address_failures: settings.login.address_failures,
                address_window: settings.login.address_window,
                decay: settings.login.failure_decay,
            },
            throttle_key: settings.derive_key("login-throttle", &[]),
            roles: settings.roles.clone(),
            admin_group: settings.ldap.admin_group.as_deref().map(normalize_dn),
            officer_group: settings.ldap.officer_group.as_deref().map(normalize_dn),
            session_ttl: settings.session_ttl,
            elections: std::sync::Mutex::new(None),
            signed_in: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// One sign-in from `client` (the address nginx saw), with the browser's device
    /// cookie if it sent one.
    pub async fn login(
        &self,
        raw_username: &str,
        password: &SecretString,
        client: IpAddr,
        device_cookie: Option<&str>,
    ) -> Result<Session, ApiError> {
        let started = Instant::now();
        let outcome = self.attempt(raw_username, password, client, device_cookie).await;
        crate::metrics::login(outcome.as_ref().map_or_else(|e| e.code.as_str(), |_| "ok"));
        if let Err(e) = &outcome
            && matches!(e.code, ErrorCode::InvalidCredentials | ErrorCode::LoginThrottled)
        {
            // Same floor for every kind of wrong: unknown user, wrong password, bad input.
            tokio::time::sleep_until((started + self.throttle.failure_floor).into()).await;
        }
        outcome
    }

    /// Counts the attempt before anything else (atomically with the check), then settles
    /// it by how the check ended: a wrong password stays counted.
    async fn attempt(
        &self,
        raw_username: &str,
        password: &SecretString,
        client: IpAddr,
        device_cookie: Option<&str>,
    ) -> Result<Session, ApiError> {
        let now = Timestamp::now();
        // A browser that signed in as this very account before is counted on its own.
        let device = device_cookie
            .zip(Username::parse(raw_username).ok())
            .and_then(|(cookie, account)| self.devices.device_of(cookie, &account, now));
        let origin = match &device {
            Some(id) => Origin::Device(id),
            None => Origin::Address(client),
        };
        let keys = sign_in_keys(&self.throttle_key, raw_username, origin);
        if let Admission::Throttled { until, by } = self.store.sign_in_attempt(&keys, &self.rules, now).await? {
            return Err(throttled(until, by, now));
        }
        let mut pending = Unsettled { store: self.store.clone(), keys: Some(keys), rules: self.rules };
        let outcome = self.check(raw_username, password, now).await;
        let keys = pending.keys.take().expect("settled once");
        let settled = match &outcome {
            Err(e) if e.code == ErrorCode::InvalidCredentials => None,
            // The directory or the store could not answer: not the voter's failure.
            Err(e) if e.status() >= 500 => Some(AttemptOutcome::NotCounted),
            // The password was right (whether or not a session follows).
            _ => Some(AttemptOutcome::Succeeded),
        };
        if let Some(settled) = settled
            && let Err(e) = self.store.sign_in_settled(&keys, settled, &self.rules, Timestamp::now()).await
        {
            tracing::warn!(event = "login_throttle_error", error = %e);
        }
        outcome
    }

    async fn check(&self, raw_username: &str, password: &SecretString, now: Timestamp) -> Result<Session, ApiError> {
        // Checked before any network call: an empty password is an anonymous bind.
        let username = match Username::parse(raw_username) {
            Ok(u) if !password.expose_secret().trim().is_empty() => u,
            _ => {
                tracing::info!(event = "login", outcome = "malformed");
                return Err(invalid_credentials());
            }
        };
        // Only elections this session can reach: one opening after it expires is decided
        // at a later sign-in, so a problem with its group (say) cannot hold up today's.
        // An election taking nominations is in reach while its nomination period is:
        // standing and seconding need the same eligibility as voting.
        let reach = now + self.session_ttl;
        let in_reach = |e: &ElectionSummary| {
            e.opens_at <= reach || e.nominations.as_ref().is_some_and(|p| p.opens_at <= reach && now < p.closes_at)
        };
        let elections: Vec<ElectionSummary> = self.open_elections(now).await?.into_iter().filter(in_reach).collect();
        // The roll is read before the directory (with the throttle, in one store read):
        // when it gives this voter's address for every open election, the directory is
        // asked for the password check only.
        let roll_elections: Vec<ElectionId> =
            elections.iter().filter(|e| e.eligibility == Eligibility::Roll).map(|e| e.id.clone()).collect();
        let on_roll = if roll_elections.is_empty() {
            Vec::new()
        } else {
            self.store.roll_memberships(&username, &roll_elections).await?
        };
        let roll_gives_address = !on_roll.is_empty()
            && on_roll.iter().all(|(_, email)| email.is_some())
            && roll_elections.len() == elections.len();
        let mut groups: Vec<String> = self.admin_group.iter().chain(self.officer_group.iter()).cloned().collect();
        let mut filters = Vec::new();
        for e in &elections {
            match &e.eligibility {
                Eligibility::LdapGroup { group_dn } => groups.push(normalize_dn(group_dn)),
                Eligibility::LdapFilter { filter } => filters.push(filter.clone()),
                _ => {}
            }
            for (_, voters) in &e.constituencies {
                match voters {
                    Constituency::LdapGroup { group_dn } => groups.push(normalize_dn(group_dn)),
                    Constituency::LdapFilter { filter } => filters.push(filter.clone()),
                    _ => {}
                }
            }
        }
        groups.sort();
        groups.dedup();
        filters.sort();
        filters.dedup();
        let checks = LoginChecks { groups, filters, read_mail: !roll_gives_address };
        let user = match self.directory.authenticate(&username, password, &checks).await {
            Ok(user) => user,
            Err(DirectoryError::InvalidCredentials) => {
                tracing::info!(event = "login", outcome = "invalid_credentials");
                return Err(invalid_credentials());
            }
            Err(DirectoryError::NoAccountName) => {
                tracing::warn!(event = "login", outcome = "no_account_name");
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "Your directory entry has no account name Turnout can use. Contact the election office.",
                ));
            }
            Err(DirectoryError::ReadRefused { .. }) => {
                tracing::info!(event = "login", outcome = "directory_read_refused");
                return Err(ApiError::new(
                    ErrorCode::DirectoryUnavailable,
                    "The university directory would not tell Turnout which elections you may vote in. \
                     Please try again in a minute; if it keeps happening, contact the election office.",
                )
                .retry_after(30));
            }
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
        // The directory's name for the account can differ from what was typed (a search
        // filter that also matches, say, the mail address): the roll is then read again
        // under the account's own name, the one every store key uses.
        let on_roll = if user.username != username && !roll_elections.is_empty() {
            self.store.roll_memberships(&user.username, &roll_elections).await?
        } else {
            on_roll
        };
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
        let constituencies = self.constituencies_of(&user, &elections, &eligible).await?;
        tracing::info!(event = "login", outcome = "ok", eligible = eligible.len(), roles = roles.len());
        if !roles.is_empty() {
            // Staff only (voters' sign-ins write nothing more): where officers' notices go.
            let contact = StaffContact {
                username: user.username.clone(),
                email: email.clone(),
                admin: roles.contains(&Role::Admin),
                officer: roles.contains(&Role::Officer),
                seen_at: now,
            };
            if let Err(e) = self.store.record_staff_contact(&contact).await {
                tracing::warn!(event = "staff_contact_failed", error = %e);
            }
        }
        self.signed_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Session::new(user.username, email, roles, now, self.session_ttl)
            .with_eligible(eligible)
            .with_constituencies(constituencies))
    }

    /// Records the account's sign-out, which every service reads within a second.
    pub async fn sign_out(&self, account: &Username, now: Timestamp) -> Result<(), ApiError> {
        self.store.record_sign_out(account, now).await?;
        tracing::info!(event = "signed_out");
        Ok(())
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
            if ticks.is_multiple_of(60) {
                // Old throttle rows go in small batches, so a purge never holds the writer long.
                let now = Timestamp::now();
                // Batch after batch until the old rows are gone (each batch holds the
                // writer briefly; a flood of made-up names must not outgrow the purge).
                let mut purged = 0;
                for _ in 0..1000 {
                    match self.store.purge_sign_in_throttles(&self.rules, now, PURGE_BATCH).await {
                        Ok(n) => {
                            purged += n;
                            if n < u64::from(PURGE_BATCH) {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(event = "login_throttle_purge_failed", error = %e);
                            break;
                        }
                    }
                    tokio::task::yield_now().await;
                }
                if purged > 0 {
                    tracing::info!(event = "login_throttle_purged", rows = purged);
                }
                // No session signed in before this is still valid.
                if let Err(e) = self.store.purge_sign_outs(now - self.session_ttl).await {
                    tracing::warn!(event = "sign_out_purge_failed", error = %e);
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

    /// The constituency contests of the eligible elections this user is in: a roll column
    /// from the store (read only when such a contest is open), a group or filter from the
    /// directory's answer.
    async fn constituencies_of(
        &self,
        user: &DirectoryUser,
        elections: &[ElectionSummary],
        eligible: &[ElectionId],
    ) -> Result<Vec<(ElectionId, ContestId)>, ApiError> {
        let open: Vec<&ElectionSummary> =
            elections.iter().filter(|e| eligible.contains(&e.id) && !e.constituencies.is_empty()).collect();
        let by_column: Vec<ElectionId> = open
            .iter()
            .filter(|e| e.constituencies.iter().any(|(_, c)| matches!(c, Constituency::RollColumn { .. })))
            .map(|e| e.id.clone())
            .collect();
        let columns =
            if by_column.is_empty() { Vec::new() } else { self.store.roll_columns(&user.username, &by_column).await? };
        let mut found = Vec::new();
        for e in open {
            let row = columns.iter().find(|(id, _)| id == &e.id).map(|(_, c)| c);
            for (contest, voters) in &e.constituencies {
                let belongs = match voters {
                    Constituency::Everyone => false,
                    Constituency::RollColumn { .. } => row.is_some_and(|c| voters.admits_roll_row(c)),
                    Constituency::LdapGroup { group_dn } => user.groups.contains(&normalize_dn(group_dn)),
                    Constituency::LdapFilter { filter } => user.matched_filters.contains(filter),
                };
                if belongs {
                    found.push((e.id.clone(), contest.clone()));
                }
            }
        }
        Ok(found)
    }

    fn roles_of(&self, user: &DirectoryUser) -> Vec<Role> {
        let uid = &user.username;
        let in_group = |group: &Option<String>| group.as_ref().is_some_and(|g| user.groups.contains(g));
        let mut roles = Vec::new();
        if self.roles.admins.contains(uid) || in_group(&self.admin_group) {
            roles.push(Role::Admin);
        }
        if self.roles.officers.contains(uid) || in_group(&self.officer_group) {
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
    use super::{Origin, sign_in_keys};

    #[test]
    fn throttle_keys_fold_like_usernames_separate_origins_and_are_bounded() {
        let k = [7u8; 32];
        let (a, b) = (Origin::Address("203.0.113.1".parse().unwrap()), Origin::Address("203.0.113.2".parse().unwrap()));
        let device = Origin::Device("0123abcd");
        assert_ne!(sign_in_keys(&k, "student00001", a).pair, sign_in_keys(&k, "student00001", device).pair);
        assert_ne!(sign_in_keys(&k, "student00001", a).address, sign_in_keys(&k, "student00001", device).address);
        assert_eq!(sign_in_keys(&k, " Student00001 ", a), sign_in_keys(&k, "student00001", a));
        assert_ne!(sign_in_keys(&k, "student00001", a).pair, sign_in_keys(&k, "student00002", a).pair);
        assert_ne!(sign_in_keys(&k, "student00001", a).pair, sign_in_keys(&k, "student00001", b).pair);
        assert_eq!(sign_in_keys(&k, "student00001", a).address, sign_in_keys(&k, "student00002", a).address);
        assert_ne!(sign_in_keys(&k, "student00001", a), sign_in_keys(&[8u8; 32], "student00001", a), "keyed");
        assert_eq!(sign_in_keys(&k, &"x".repeat(100_000), a).pair.len(), 64);
    }

    #[test]
    fn an_address_is_counted_as_its_ipv4_or_its_ipv6_slash_64() {
        use std::net::IpAddr;
        let net = |raw: &str| super::network_of(raw.parse::<IpAddr>().unwrap());
        assert_eq!(net("203.0.113.9"), "203.0.113.9");
        assert_eq!(net("::ffff:203.0.113.9"), "203.0.113.9", "mapped is the same host");
        assert_eq!(net("2001:db8:1:2:aaaa::1"), net("2001:db8:1:2:ffff:1:2:3"), "one /64");
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
    }
}
