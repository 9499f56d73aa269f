//! The directory, protected. Logins borrow a connection from a bounded pool (deadpool)
//! instead of opening their own, wait for one only briefly, and run every operation under
//! a timeout; a circuit breaker stops all traffic to a directory that keeps failing. So
//! 500 students pressing "sign in" at once put at most `pool_size` connections on slapd,
//! and a dead or hung directory costs each login milliseconds, not a timeout.
//!
//! Every value that goes into a DN or a filter is escaped; an empty password never
//! reaches the network (it would be an anonymous bind that "succeeds").

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, Pool, PoolError, RecycleError, RecycleResult, Timeouts};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, dn_escape, ldap_escape};
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use turnout_core::config::{BindStrategy, LdapSettings, ServiceAccount};
use turnout_core::domain::{Username, VoterEmail};

use crate::breaker::{Admission, Breaker};
use crate::shares::{Lease, Sharded};

/// LDAP result code for a wrong DN or password.
const INVALID_CREDENTIALS: u32 = 49;

#[derive(Debug, Clone)]
pub struct DirectoryUser {
    pub username: Username,
    pub dn: String,
    /// The directory's address: read only when the login asked for it (or when the
    /// user search returned it anyway).
    pub email: Option<VoterEmail>,
    /// Normalised DNs of the groups the user belongs to (when asked for).
    pub groups: Vec<String>,
    /// The eligibility filters (of those asked) the user's entry matches.
    pub matched_filters: Vec<String>,
}

/// What a login needs to know beyond "is the password right".
#[derive(Debug, Clone, Default)]
pub struct LoginChecks {
    /// Normalised DNs of the groups whose membership matters (roles, eligibility).
    pub groups: Vec<String>,
    pub filters: Vec<String>,
    /// Whether to read the entry's mail attribute after the bind. A login whose address
    /// is already known (from the voter roll) skips it: one directory operation instead
    /// of two, which is what lets sign-ins use most of the directory's bind capacity.
    pub read_mail: bool,
}

/// Group member lists, refreshed at most once a minute: a login checks membership in
/// memory instead of searching the directory each time. A change to a group takes
/// effect within `GROUP_TTL`.
const GROUP_TTL: Duration = Duration::from_secs(60);
/// Member lists cached at most (beyond it a list is read per sign-in, not kept).
const MAX_GROUPS: usize = 256;

#[derive(Default)]
struct GroupCache {
    groups: std::sync::Mutex<std::collections::HashMap<String, (Instant, std::collections::HashSet<String>)>>,
}

impl GroupCache {
    /// Whether any of `names` is a member, or `None` when the cached list is missing or
    /// stale. Looked up in place: a group of thousands is never copied per login.
    fn lists(&self, group: &str, names: &[&str], now: Instant) -> Option<bool> {
        let groups = self.groups.lock().expect("not poisoned");
        let (at, members) = groups.get(group)?;
        (now.duration_since(*at) < GROUP_TTL).then(|| names.iter().any(|n| members.contains(*n)))
    }

    /// Whether the group's list is cached and fresh.
    fn fresh(&self, group: &str, now: Instant) -> bool {
        let groups = self.groups.lock().expect("not poisoned");
        groups.get(group).is_some_and(|(at, _)| now.duration_since(*at) < GROUP_TTL)
    }

    fn store(&self, group: String, members: std::collections::HashSet<String>, now: Instant) {
        let mut groups = self.groups.lock().expect("not poisoned");
        // Groups come from the configuration and the elections' eligibility: few. The
        // bound only matters if elections with new groups keep coming for months.
        if groups.len() >= MAX_GROUPS && !groups.contains_key(&group) {
            groups.retain(|_, (at, _)| now.duration_since(*at) < GROUP_TTL);
        }
        if groups.len() < MAX_GROUPS || groups.contains_key(&group) {
            groups.insert(group, (now, members));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Wrong password, unknown user, or a value that can't be a user: all look the same.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Every connection is in use: the directory is at the load we allow it.
    #[error("all directory connections are busy")]
    Busy,
    /// The password is right but the entry has no account name Turnout can use (no
    /// value of `TURNOUT_LDAP_UID_ATTR` that is a username).
    #[error("the directory entry has no usable account name")]
    NoAccountName,
    /// The directory answered but would not let Turnout read what eligibility or roles
    /// need (an ACL): not an outage (the breaker stays closed), but no guess either.
    #[error("the directory refused to let Turnout read {what} (result code {rc})")]
    ReadRefused { what: String, rc: u32 },
    /// The directory is down, hung or failing, or the breaker is open.
    #[error("directory unavailable: {reason}")]
    Unavailable { reason: String, retry_after: Duration },
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

#[derive(Clone)]
pub struct Manager {
    settings: LdapSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// For the service pool: bind each new connection as this account, once.
    bind_as: Option<ServiceAccount>,
}

impl managed::Manager for Manager {
    type Type = Ldap;
    type Error = ConnectError;

    async fn create(&self) -> Result<Ldap, ConnectError> {
        let mut conn_settings = LdapConnSettings::new()
            .set_conn_timeout(self.settings.connect_timeout)
            .set_starttls(self.settings.starttls);
        if let Some(tls) = &self.tls {
            conn_settings = conn_settings.set_config(tls.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(conn_settings, &self.settings.url)
            .await
            .map_err(|e| ConnectError(format!("connect: {e}")))?;
        ldap3::drive!(conn);
        let mut ldap = ldap;
        if let Some(account) = &self.bind_as {
            let bound = ldap
                .with_timeout(self.settings.op_timeout)
                .simple_bind(&account.dn, account.password.expose_secret())
                .await
                .map_err(|e| ConnectError(format!("service account bind: {e}")))?;
            if bound.rc != 0 {
                return Err(ConnectError(format!("the service account was refused (result code {})", bound.rc)));
            }
        }
        Ok(ldap)
    }

    /// A connection the server closed (or that broke) is dropped, not reused.
    async fn recycle(&self, ldap: &mut Ldap, _: &Metrics) -> RecycleResult<ConnectError> {
        if ldap.is_closed() { Err(RecycleError::message("connection closed")) } else { Ok(()) }
    }
}

pub struct Directory {
    settings: LdapSettings,
    groups: GroupCache,
    /// One share per HTTP worker thread (see `shares`).
    pool: Sharded<Manager>,
    /// Connections bound as the service account, for group and filter reads (and only
    /// when one is configured). Small and separate, so a sign-in's password check never
    /// waits behind them, and the account binds once per connection, not per read.
    service: Option<Sharded<Manager>>,
    breaker: Breaker,
    /// Logins allowed to wait for a connection at once; beyond it, 503 without waiting.
    max_waiting: usize,
}

fn tls_config(settings: &LdapSettings) -> anyhow::Result<Option<Arc<rustls::ClientConfig>>> {
    let Some(path) = &settings.ca_cert else { return Ok(None) };
    let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("reading TURNOUT_LDAP_CA_CERT {path}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

impl Directory {
    /// `workers`: the HTTP worker threads that will each claim a share of the pool.
    pub fn new(settings: LdapSettings, workers: usize) -> anyhow::Result<Self> {
        let manager = Manager { settings: settings.clone(), tls: tls_config(&settings)?, bind_as: None };
        let sharded = |manager: Manager, total: usize, create: Duration| {
            Sharded::new(total, workers, |size| {
                Pool::builder(manager.clone())
                    .max_size(size)
                    .timeouts(Timeouts {
                        wait: Some(settings.pool_wait),
                        create: Some(create),
                        recycle: Some(Duration::from_secs(1)),
                    })
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
            })
        };
        let pool = sharded(manager.clone(), settings.pool_size, settings.connect_timeout)?;
        let service = match &settings.service_account {
            Some(account) => {
                let manager = Manager { bind_as: Some(account.clone()), ..manager };
                // Creating one connects and binds.
                Some(sharded(manager, settings.service_pool_size, settings.connect_timeout + settings.op_timeout)?)
            }
            None => None,
        };
        let breaker = Breaker::new(settings.breaker_failures, settings.breaker_open, settings.op_timeout * 3);
        Ok(Self { max_waiting: settings.max_waiting, settings, groups: GroupCache::default(), pool, service, breaker })
    }

    /// Checks credentials and reads what the login needs, on a pooled connection.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn authenticate(
        &self,
        username: &Username,
        password: &SecretString,
        checks: &LoginChecks,
    ) -> Result<DirectoryUser, DirectoryError> {
        if password.expose_secret().trim().is_empty() {
            return Err(DirectoryError::InvalidCredentials);
        }
        let mut conn = self.connection().await?;
        // One deadline over the whole conversation, beside the per-operation timeouts.
        let budget = self.settings.op_timeout * 4;
        let outcome = match tokio::time::timeout(budget, self.check(&mut conn, username, password, checks)).await {
            Ok(result) => result,
            Err(_) => Err(unavailable("the directory did not answer in time".into())),
        };
        match outcome {
            Err(DirectoryError::Unavailable { reason, .. }) => {
                // The connection may still hold a late answer: never reuse it.
                drop(conn.detach());
                let now = Instant::now();
                self.breaker.failure(now);
                tracing::warn!(event = "directory_failure", reason, breaker = self.breaker.state_name(now));
                Err(DirectoryError::Unavailable { reason, retry_after: self.settings.breaker_open })
            }
            answer => {
                self.breaker.success();
                answer
            }
        }
    }

    /// Gives the calling thread (an HTTP worker, as it starts) its own share of the pools.
    pub fn claim_share(&self) {
        self.pool.claim();
        if let Some(service) = &self.service {
            service.claim();
        }
    }

    /// A pooled connection, or a fast refusal: breaker open, too many waiting, none free.
    async fn connection(&self) -> Result<Lease<Manager>, DirectoryError> {
        if let Admission::Rejected { retry_after } = self.breaker.admit(Instant::now()) {
            return Err(DirectoryError::Unavailable { reason: "circuit breaker open".into(), retry_after });
        }
        if self.pool.usage().waiting >= self.max_waiting {
            return Err(DirectoryError::Busy);
        }
        match self.pool.get().await {
            Ok(conn) => Ok(conn),
            Err(PoolError::Timeout(managed::TimeoutType::Wait)) => Err(DirectoryError::Busy),
            Err(e) => {
                self.breaker.failure(Instant::now());
                Err(DirectoryError::Unavailable { reason: e.to_string(), retry_after: self.settings.breaker_open })
            }
        }
    }

    async fn check(
        &self,
        ldap: &mut Ldap,
        username: &Username,
        password: &SecretString,
        checks: &LoginChecks,
    ) -> Result<DirectoryUser, DirectoryError> {
        let op = self.settings.op_timeout;
        let mail_attr = self.settings.mail_attr.as_str();
        let (dn, email) = match &self.settings.bind {
            BindStrategy::DnTemplate(template) => {
                let dn = template.replace("{username}", &dn_escape(username.as_str()));
                bind(ldap, op, &dn, password.expose_secret()).await?;
                let email = if checks.read_mail { read_mail(ldap, op, &dn, mail_attr).await? } else { None };
                (dn, email)
            }
            BindStrategy::SearchThenBind { base, filter } => {
                // As the service account, or anonymously without one (an empty simple bind).
                let (service_dn, service_password) = match &self.settings.service_account {
                    Some(a) => (a.dn.as_str(), a.password.expose_secret()),
                    None => ("", ""),
                };
                bind(ldap, op, service_dn, service_password).await.map_err(|e| match e {
                    DirectoryError::InvalidCredentials => unavailable("the service account was refused".into()),
                    other => other,
                })?;
                let filter = filter.replace("{username}", &ldap_escape(username.as_str()));
                let found = find_user(ldap, op, base, &filter, mail_attr, &self.settings.uid_attr).await?;
                bind(ldap, op, &found.dn, password.expose_secret()).await?;
                // The identity is the entry's, whatever matched the filter.
                let uid = found.uid.ok_or(DirectoryError::NoAccountName)?;
                return self.finish(ldap, found.dn, uid, found.email, checks).await;
            }
        };
        // The template put the typed name in the DN and the directory matched it under
        // the attribute's matching rule (caseIgnoreMatch): its folded form is the entry's.
        self.finish(ldap, dn, username.clone(), email, checks).await
    }

    /// Group and filter reads, once the password is known to be right.
    async fn finish(
        &self,
        ldap: &mut Ldap,
        dn: String,
        username: Username,
        email: Option<VoterEmail>,
        checks: &LoginChecks,
    ) -> Result<DirectoryUser, DirectoryError> {
        let now = Instant::now();
        let needs_read = !checks.filters.is_empty() || checks.groups.iter().any(|g| !self.groups.fresh(g, now));
        let mut service = match &self.service {
            Some(pool) if needs_read => Some(self.service_connection(pool).await?),
            _ => None,
        };
        let as_service = service.is_some();
        let reader: &mut Ldap = match service.as_mut() {
            Some(conn) => conn,
            None => ldap,
        };
        let read = self.reads(reader, as_service, now, &dn, &username, checks).await;
        if let (Err(DirectoryError::Unavailable { .. }), Some(conn)) = (&read, service) {
            // It may still hold a late answer: never reuse it.
            drop(conn.detach());
        }
        let (groups, matched_filters) = read?;
        Ok(DirectoryUser { username, dn, email, groups, matched_filters })
    }

    /// The groups (of those asked) that list the user and the filters their entry
    /// matches, read on `reader`: a service connection, or the user's own.
    async fn reads(
        &self,
        reader: &mut Ldap,
        as_service: bool,
        now: Instant,
        dn: &str,
        username: &Username,
        checks: &LoginChecks,
    ) -> Result<(Vec<String>, Vec<String>), DirectoryError> {
        let groups = self.groups_of(reader, as_service, now, dn, username, &checks.groups).await?;
        let mut matched_filters = Vec::new();
        for filter in &checks.filters {
            if matches_filter(reader, self.settings.op_timeout, dn, filter).await? {
                matched_filters.push(filter.clone());
            }
        }
        Ok((groups, matched_filters))
    }

    /// A connection bound as the service account: busy or failing like the main pool.
    async fn service_connection(&self, pool: &Sharded<Manager>) -> Result<Lease<Manager>, DirectoryError> {
        match pool.get().await {
            Ok(conn) => Ok(conn),
            Err(PoolError::Timeout(managed::TimeoutType::Wait)) => Err(DirectoryError::Busy),
            Err(e) => {
                self.breaker.failure(Instant::now());
                Err(DirectoryError::Unavailable { reason: e.to_string(), retry_after: self.settings.breaker_open })
            }
        }
    }

    /// Which of `wanted` groups list the user (by DN or uid), from the cache or a read of
    /// each stale group's member attributes.
    async fn groups_of(
        &self,
        ldap: &mut Ldap,
        as_service: bool,
        // The instant the caller decided which groups need reading: the same one here,
        // so a list that goes stale in between is still served from the cache.
        now: Instant,
        dn: &str,
        username: &Username,
        wanted: &[String],
    ) -> Result<Vec<String>, DirectoryError> {
        let me = normalize_dn(dn);
        let uid = username.as_str().to_lowercase();
        let mut member_of = Vec::new();
        for group in wanted {
            let listed = match self.groups.lists(group, &[&me, &uid], now) {
                Some(listed) => listed,
                None => {
                    let members = self.read_members(ldap, as_service, group).await?;
                    let listed = members.contains(&me) || members.contains(&uid);
                    self.groups.store(group.clone(), members, now);
                    listed
                }
            };
            if listed {
                member_of.push(group.clone());
            }
        }
        Ok(member_of)
    }

    /// A group's members. Only the service account's "no such object" means the group
    /// is missing (it can read every group); under a user's bind the same answer may just
    /// hide a group from that user, so it, and any refusal, is an error for this sign-in,
    /// never cached as an empty group for everyone.
    async fn read_members(
        &self,
        ldap: &mut Ldap,
        as_service: bool,
        group: &str,
    ) -> Result<std::collections::HashSet<String>, DirectoryError> {
        const NO_SUCH_OBJECT: u32 = 32;
        let attrs = vec!["member", "uniqueMember", "memberUid"];
        let result =
            ldap.with_timeout(self.settings.op_timeout).search(group, Scope::Base, "(objectClass=*)", attrs).await;
        let entries = match result.and_then(|r| r.success()) {
            Ok((entries, _)) => entries,
            Err(ldap3::LdapError::LdapResult { result }) if as_service && result.rc == NO_SUCH_OBJECT => {
                tracing::warn!(event = "group_missing", rc = result.rc, group);
                Vec::new()
            }
            Err(ldap3::LdapError::LdapResult { result }) => {
                tracing::warn!(event = "group_unreadable", rc = result.rc, group, as_service);
                return Err(DirectoryError::ReadRefused { what: format!("group {group}"), rc: result.rc });
            }
            Err(e) => return Err(unavailable(format!("reading group {group}: {e}"))),
        };
        let mut members = std::collections::HashSet::new();
        for entry in entries {
            for (attr, values) in SearchEntry::construct(entry).attrs {
                for v in values {
                    members.insert(if attr.eq_ignore_ascii_case("memberUid") {
                        v.to_lowercase()
                    } else {
                        normalize_dn(&v)
                    });
                }
            }
        }
        Ok(members)
    }

    /// The pool's and breaker's state now, from memory (for metrics).
    pub fn gauges(&self) -> PoolGauges {
        let usage = self.pool.usage();
        PoolGauges {
            max: usage.max,
            open: usage.open,
            idle: usage.idle,
            waiting: usage.waiting,
            breaker: self.breaker.state_name(Instant::now()),
        }
    }

    /// Directory status for readiness: breaker, pool, and one cheap round trip.
    pub async fn status(&self) -> Result<serde_json::Value, String> {
        let now = Instant::now();
        let usage = self.pool.usage();
        let detail = json!({
            "breaker": self.breaker.state_name(now),
            "pool": { "max": usage.max, "open": usage.open, "idle": usage.idle, "waiting": usage.waiting, "shares": self.pool.shares() },
        });
        if self.breaker.state_name(now) == "open" {
            return Err(format!("directory unavailable, circuit breaker open ({detail})"));
        }
        let mut conn = self.connection().await.map_err(|e| format!("{e} ({detail})"))?;
        // Any LDAP answer (even "no access") proves the directory is serving.
        let probe =
            conn.with_timeout(self.settings.op_timeout).search("", Scope::Base, "(objectClass=*)", vec!["1.1"]).await;
        match probe {
            Ok(_) => Ok(detail),
            Err(e) => {
                drop(conn.detach());
                Err(format!("directory not answering: {e} ({detail})"))
            }
        }
    }
}

pub struct PoolGauges {
    pub max: usize,
    pub open: usize,
    pub idle: usize,
    pub waiting: usize,
    pub breaker: &'static str,
}

fn unavailable(reason: String) -> DirectoryError {
    DirectoryError::Unavailable { reason, retry_after: Duration::from_secs(5) }
}

/// Lower case, no spaces around separators: DNs compared as the directory would.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.trim().replace(" = ", "=").replace("= ", "=").replace(" =", "="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

async fn bind(ldap: &mut Ldap, op: Duration, dn: &str, password: &str) -> Result<(), DirectoryError> {
    let result =
        ldap.with_timeout(op).simple_bind(dn, password).await.map_err(|e| unavailable(format!("bind: {e}")))?;
    match result.rc {
        0 => Ok(()),
        INVALID_CREDENTIALS => Err(DirectoryError::InvalidCredentials),
        // 32 no such object, 34 invalid DN syntax: the username can't be an account.
        32 | 34 => Err(DirectoryError::InvalidCredentials),
        rc => Err(unavailable(format!("bind refused with result code {rc}"))),
    }
}

async fn read_mail(
    ldap: &mut Ldap,
    op: Duration,
    dn: &str,
    mail_attr: &str,
) -> Result<Option<VoterEmail>, DirectoryError> {
    let (entries, _) = ldap
        .with_timeout(op)
        .search(dn, Scope::Base, "(objectClass=*)", vec![mail_attr])
        .await
        .and_then(|r| r.success())
        .map_err(|e| unavailable(format!("reading the entry: {e}")))?;
    Ok(entries.into_iter().next().and_then(|e| first_mail(SearchEntry::construct(e), mail_attr)))
}

async fn matches_filter(ldap: &mut Ldap, op: Duration, dn: &str, filter: &str) -> Result<bool, DirectoryError> {
    let result = ldap.with_timeout(op).search(dn, Scope::Base, filter, vec!["1.1"]).await;
    match result.and_then(|r| r.success()) {
        Ok((entries, _)) => Ok(!entries.is_empty()),
        // A refusal (no access to the entry, an unwilling server) is not "no match".
        Err(ldap3::LdapError::LdapResult { result }) => {
            tracing::warn!(event = "eligibility_filter_error", rc = result.rc, filter);
            Err(DirectoryError::ReadRefused { what: "your entry for an eligibility rule".into(), rc: result.rc })
        }
        // One the client cannot even send (saved before elections were checked): the
        // same, never a directory outage.
        Err(ldap3::LdapError::FilterParsing) => {
            tracing::warn!(event = "eligibility_filter_unparsable", filter);
            Ok(false)
        }
        Err(e) => Err(unavailable(format!("checking eligibility: {e}"))),
    }
}

/// The one entry a user search found.
struct FoundUser {
    dn: String,
    /// The entry's canonical account name, if it has a usable one.
    uid: Option<Username>,
    email: Option<VoterEmail>,
}

async fn find_user(
    ldap: &mut Ldap,
    op: Duration,
    base: &str,
    filter: &str,
    mail_attr: &str,
    uid_attr: &str,
) -> Result<FoundUser, DirectoryError> {
    let (entries, _) = ldap
        .with_timeout(op)
        .search(base, Scope::Subtree, filter, vec![mail_attr, uid_attr])
        .await
        .and_then(|r| r.success())
        .map_err(|e| unavailable(format!("searching for the user: {e}")))?;
    // Zero or several matches: not one account, so not a login.
    if entries.len() != 1 {
        return Err(DirectoryError::InvalidCredentials);
    }
    let entry = SearchEntry::construct(entries.into_iter().next().expect("one entry"));
    let uid = canonical_uid(&entry, uid_attr);
    Ok(FoundUser { dn: entry.dn.clone(), uid, email: first_mail(entry, mail_attr) })
}

/// The entry's account name, chosen from the entry alone, never from what was typed, so
/// every spelling that finds the entry gives the same voter: the uid in the entry's own
/// DN when its first RDN names the attribute, else the smallest of its values (`uid` is
/// multi-valued in inetOrgPerson), folded as `Username` folds.
fn canonical_uid(entry: &SearchEntry, uid_attr: &str) -> Option<Username> {
    let values: Vec<Username> = entry
        .attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(uid_attr))
        .flat_map(|(_, values)| values.iter().filter_map(|v| Username::parse(v).ok()))
        .collect();
    let rdn = entry.dn.split(',').next().and_then(|rdn| rdn.split_once('=')).and_then(|(attr, value)| {
        attr.trim().eq_ignore_ascii_case(uid_attr).then(|| Username::parse(value).ok()).flatten()
    });
    match rdn {
        Some(in_dn) if values.contains(&in_dn) => Some(in_dn),
        _ => values.into_iter().min(),
    }
}

fn first_mail(entry: SearchEntry, mail_attr: &str) -> Option<VoterEmail> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(mail_attr))
        .and_then(|(_, values)| values.iter().find_map(|v| VoterEmail::parse(v).ok()))
}

#[cfg(test)]
mod tests {
    use super::normalize_dn;

    fn entry(dn: &str, uids: &[&str]) -> ldap3::SearchEntry {
        ldap3::SearchEntry {
            dn: dn.into(),
            attrs: [("uid".to_owned(), uids.iter().map(|u| u.to_string()).collect())].into(),
            bin_attrs: Default::default(),
        }
    }

    #[test]
    fn the_identity_comes_from_the_entry_not_the_typed_name() {
        let cases = [
            ("uid=Jane.Doe,ou=people,dc=u", vec!["Jane.Doe"], Some("jane.doe"), "mixed case stored"),
            ("uid=jdoe,ou=people,dc=u", vec!["john.doe", "jdoe"], Some("jdoe"), "the DN's uid among several"),
            ("cn=John Doe,ou=Sci,ou=people,dc=u", vec!["john.doe", "JDoe"], Some("jdoe"), "cn DN: smallest"),
            ("cn=John Doe,ou=people,dc=u", vec!["bad value!", "Doe1"], Some("doe1"), "unusable values skipped"),
            ("cn=John Doe,ou=people,dc=u", vec![], None, "no uid at all"),
        ];
        for (dn, uids, want, case) in cases {
            let got = super::canonical_uid(&entry(dn, &uids), "uid");
            assert_eq!(got.as_ref().map(|u| u.as_str()), want, "{case}");
        }
    }

    #[test]
    fn dns_compare_case_and_space_insensitively() {
        assert_eq!(normalize_dn("CN=Admins, ou=Groups,dc=Turnout,dc=test"), "cn=admins,ou=groups,dc=turnout,dc=test");
    }
}
