//! Typed configuration from `TURNOUT_*` environment variables, shared by every service.
//!
//! Each service reads the whole `Settings` and uses its part; defaults suit the local
//! stack, and the only required value is `TURNOUT_SECRET`. Secrets are `SecretString`,
//! so neither `Debug` nor a log line can print them. Every problem is reported at once,
//! naming the variable, so an operator fixes the file in one go.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `TURNOUT_STORE`: `sqlite` (the default, the file `TURNOUT_DATABASE`) or `mongodb`
/// (`TURNOUT_MONGODB_URI`, a replica set; transactions need one).
#[derive(Debug, Clone)]
pub enum StoreChoice {
    Sqlite,
    MongoDb {
        /// May carry a password: never printed.
        uri: SecretString,
        min_pool: u32,
        max_pool: u32,
        op_timeout: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// Root secret: session tokens and OTP keys are derived from it (never used directly).
    pub secret: SecretString,
    pub database: PathBuf,
    /// Which store adapter: the embedded SQLite file (`database`) or MongoDB.
    pub store: StoreChoice,
    /// Where roll uploads wait until imported (default: `imports/` beside the database).
    pub import_dir: PathBuf,
    /// How long a roll import's run holds it without committing a chunk before another
    /// process (a restarted one, another replica) may take it over.
    pub import_lease: Duration,
    /// How often, at most, the ballot service writes an open box's running counts to the
    /// audit log (`TURNOUT_BOX_COUNT_INTERVAL_SECS`, default 60).
    pub box_count_interval: Duration,
    /// Who besides the officers gets each audit-head notice (opening, window changes,
    /// close): `TURNOUT_AUDIT_ANCHOR_EMAIL`, comma-separated, at most 20 addresses.
    pub anchor_emails: Vec<crate::domain::VoterEmail>,
    pub session_ttl: Duration,
    /// Mark cookies `Secure` (set when served over TLS).
    pub cookie_secure: bool,
    /// Largest request body any endpoint reads, in bytes.
    pub body_limit: usize,
    /// HTTP worker threads (`TURNOUT_HTTP_WORKERS`); `None`: one per CPU core.
    pub http_workers: Option<usize>,
    pub otp: OtpSettings,
    pub ldap: LdapSettings,
    pub roles: RoleLists,
    pub login: LoginSettings,
    pub mail: MailSettings,
}

#[derive(Debug, Clone)]
pub struct OtpSettings {
    /// TOTP step: long (minutes) so a re-sent code is the same, still-valid code.
    pub step: Duration,
    /// How long after issue a code verifies; a late email still works inside it.
    pub validity: Duration,
    pub resend_cooldown: Duration,
    /// Most codes one voter may have mailed per election.
    pub max_sends: u32,
    /// Wrong tries before the current code is void.
    pub max_attempts: u32,
    /// Voided codes (per voter and election) that lock the voter out for `lock_period`.
    pub lock_after_voids: u32,
    pub lock_period: Duration,
}

#[derive(Debug, Clone)]
pub struct LdapSettings {
    /// `ldap://` or `ldaps://`.
    pub url: String,
    /// Upgrade `ldap://` connections with StartTLS.
    pub starttls: bool,
    /// PEM file of a private CA for ldaps/StartTLS (else the system's roots).
    pub ca_cert: Option<String>,
    pub bind: BindStrategy,
    /// Reads groups, eligibility filters and (with search-then-bind) users. Campus
    /// directories often let only such an account read `ou=groups`.
    pub service_account: Option<ServiceAccount>,
    /// Connections bound as the service account (beside `pool_size`), each bound once.
    pub service_pool_size: usize,
    pub mail_attr: String,
    /// The attribute holding the account name (`TURNOUT_LDAP_UID_ATTR`): with
    /// search-then-bind, the voter's identity is read from it, not taken from what was typed.
    pub uid_attr: String,
    pub connect_timeout: Duration,
    pub op_timeout: Duration,
    /// Most connections Turnout holds to the directory (size it to slapd's threads).
    pub pool_size: usize,
    /// How long a login waits for a free connection before a 503.
    pub pool_wait: Duration,
    /// Logins allowed to wait at once; beyond it, 503 at once (the queue is bounded).
    pub max_waiting: usize,
    /// Directory failures in a row that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe login is let through.
    pub breaker_open: Duration,
    /// Where to look for groups (roles, group eligibility).
    pub group_base: String,
    pub admin_group: Option<String>,
    pub officer_group: Option<String>,
}

/// Who gets the console roles without a directory group, as canonical usernames: the
/// list `Admin1, OFFICER1` names the accounts `admin1` and `officer1` however they sign in.
#[derive(Debug, Clone, Default)]
pub struct RoleLists {
    pub admins: Vec<crate::domain::Username>,
    pub officers: Vec<crate::domain::Username>,
}

#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// Failures for one username from one address before each further one waits
    /// (doubling each time).
    pub free_failures: u32,
    pub max_delay: Duration,
    /// Failed sign-ins one address may have in `address_window`, across usernames
    /// (password spraying). Default 600 per 10 minutes, sized for a campus NAT: 5,000
    /// students behind one address all signing in within ten minutes, one in ten
    /// mistyping once, make 500.
    pub address_failures: u32,
    pub address_window: Duration,
    /// A (username, address) pair's failures are forgotten this long after its last one.
    pub failure_decay: Duration,
    /// Peers whose `X-Real-IP` / `X-Forwarded-For` name the client (nginx); any other
    /// peer is the client itself, whatever headers it sends.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Every failed login takes at least this long, so timing can't tell a wrong
    /// password from an unknown or malformed username.
    pub failure_floor: Duration,
}

#[derive(Debug, Clone)]
pub enum BindStrategy {
    /// Bind straight as `uid={username},ou=people,...` (the value is DN-escaped).
    DnTemplate(String),
    /// Find the user's DN with a filter (as the service account, if there is one, else
    /// anonymously), then bind as it.
    SearchThenBind { base: String, filter: String },
}

/// The directory account Turnout reads with (`TURNOUT_LDAP_SERVICE_DN` / `_PASSWORD`).
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub dn: String,
    pub password: SecretString,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub accounts: Vec<SenderAccount>,
    /// Upper bound on one SMTP conversation; a stuck server never holds a worker longer.
    pub send_timeout: Duration,
    /// How long a blocked or over-quota account rests before it is tried again.
    pub quarantine: Duration,
    /// Throttling answers (`421`) in a row that quarantine an account.
    pub strike_limit: u32,
    /// The oldest waiting code email past which readiness reports the outbox as lagging.
    pub lag_alert: Duration,
    /// First retry delay after a transient failure; doubles per try, at most 2 minutes.
    pub retry_base: Duration,
}

/// One mailbox Turnout may send codes from.
#[derive(Debug, Clone, Deserialize)]
pub struct SenderAccount {
    pub name: String,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM file of a private CA that signed the server's certificate (else web roots).
    #[serde(default)]
    pub ca_cert: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    pub from: String,
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    #[serde(default = "default_concurrency")]
    pub max_concurrent: u32,
    #[serde(default = "default_daily_cap")]
    pub daily_cap: u32,
}

fn default_per_minute() -> u32 {
    60
}
fn default_concurrency() -> u32 {
    2
}
fn default_daily_cap() -> u32 {
    2000
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a sink on loopback.
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587); refused without it.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

/// Reads variables through `lookup` and collects every problem.
struct Reader<F> {
    lookup: F,
    problems: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    fn string(&self, name: &str, default: &str) -> String {
        (self.lookup)(name).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
    }

    /// A comma-separated list of networks (`10.0.0.0/8`) or single addresses.
    fn networks(&mut self, name: &str, default: &str) -> Vec<ipnet::IpNet> {
        let raw = self.string(name, default);
        let mut out = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.parse::<ipnet::IpNet>().or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)) {
                Ok(net) => out.push(net),
                Err(_) => {
                    self.problems.push(format!("{name}: {item:?} is not an address or a network like 10.0.0.0/8"))
                }
            }
        }
        out
    }

    fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    fn parsed<T: std::str::FromStr>(&mut self, name: &str, default: T) -> T
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => default,
            Some(raw) => raw.trim().parse().unwrap_or_else(|e| {
                self.problems.push(format!("{name}={raw:?}: {e}"));
                default
            }),
        }
    }

    fn secs(&mut self, name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> Duration {
        let v = self.parsed(name, default);
        if !range.contains(&v) {
            self.problems.push(format!("{name}={v}: must be between {} and {} seconds", range.start(), range.end()));
        }
        Duration::from_secs(v)
    }

    fn millis(&mut self, name: &str, default: u64) -> Duration {
        Duration::from_millis(self.parsed(name, default))
    }
}

/// `localhost` or a loopback address: plain SMTP never leaves the host.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `.env.example`'s value, refused by name so a copied example never goes live.
const PLACEHOLDER_SECRET: &str = "change-me-to-the-output-of-openssl-rand-hex-32";
/// A secret for tests and tools (random, and public: never for a deployment).
pub const TEST_SECRET: &str = "6817abb4bd6e8311f6990dafccb29b305a064a853adadd86abfcb7b46c1b4837";

/// The root secret must be at least 32 random bytes, written as hex (`openssl rand -hex
/// 32`) or base64 (`openssl rand -base64 32`). Refused: the example's placeholder, other
/// text, too few bytes, and bytes with little variety (one character repeated, a short
/// pattern repeated): 32 random bytes have about 30 distinct values, almost never < 16.
/// The check says why without echoing the value.
fn check_secret(raw: &str) -> Result<(), String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    const HOW: &str = "generate one with `openssl rand -hex 32`";
    if raw.is_empty() {
        return Err(format!("required: at least 32 random bytes as hex or base64 ({HOW})"));
    }
    if raw == PLACEHOLDER_SECRET || raw.to_ascii_lowercase().contains("change-me") {
        return Err(format!("still the placeholder from .env.example; {HOW}"));
    }
    let is_hex = raw.len().is_multiple_of(2) && raw.bytes().all(|b| b.is_ascii_hexdigit());
    let bytes = if is_hex {
        (0..raw.len()).step_by(2).map(|i| u8::from_str_radix(&raw[i..i + 2], 16).expect("hex digits")).collect()
    } else {
        // Random base64 of this length has capitals and small letters (all-lower or
        // all-upper happens about once in 10^10); words and passphrases mostly do not.
        let mixed = raw.bytes().any(|b| b.is_ascii_uppercase()) && raw.bytes().any(|b| b.is_ascii_lowercase());
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(raw).ok());
        match decoded {
            Some(bytes) if mixed => bytes,
            _ => return Err(format!("not random bytes written as hex or base64; {HOW}")),
        }
    };
    if bytes.len() < 32 {
        return Err(format!("{} bytes; at least 32 are needed ({HOW})", bytes.len()));
    }
    // Random bytes vary, and so do the steps between them (a counting sequence does not).
    let distinct = bytes.iter().collect::<std::collections::HashSet<_>>().len();
    let steps = bytes.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect::<std::collections::HashSet<_>>().len();
    if distinct < 16 || steps < 16 {
        return Err(format!("too little variety to be random (repeated characters or a pattern); {HOW}"));
    }
    Ok(())
}

impl Settings {
    /// The process's settings. The public test secret is refused here (tests build
    /// settings through `from_lookup`).
    pub fn from_env() -> Result<Self, ConfigError> {
        if std::env::var("TURNOUT_SECRET").is_ok_and(|s| s.trim() == TEST_SECRET) {
            return Err(ConfigError(vec![
                "TURNOUT_SECRET: the test secret from Turnout's source; generate one with `openssl rand -hex 32`"
                    .into(),
            ]));
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut r = Reader { lookup, problems: Vec::new() };

        let secret = r.optional("TURNOUT_SECRET").unwrap_or_default();
        if let Err(why) = check_secret(secret.trim()) {
            r.problems.push(format!("TURNOUT_SECRET: {why}"));
        }

        let otp = OtpSettings {
            step: r.secs("TURNOUT_OTP_STEP_SECS", 300, 1..=3600),
            validity: r.secs("TURNOUT_OTP_VALIDITY_SECS", 900, 1..=86_400),
            resend_cooldown: r.secs("TURNOUT_OTP_RESEND_COOLDOWN_SECS", 60, 0..=3600),
            max_sends: r.parsed("TURNOUT_OTP_MAX_SENDS", 5),
            max_attempts: r.parsed("TURNOUT_OTP_MAX_ATTEMPTS", 5),
            lock_after_voids: r.parsed("TURNOUT_OTP_LOCK_AFTER_VOIDS", 3),
            lock_period: r.secs("TURNOUT_OTP_LOCK_SECS", 900, 0..=86_400),
        };

        let bind = match (r.optional("TURNOUT_LDAP_BIND_DN_TEMPLATE"), r.optional("TURNOUT_LDAP_SEARCH_BASE")) {
            (Some(_), Some(_)) => {
                r.problems.push("set TURNOUT_LDAP_BIND_DN_TEMPLATE or TURNOUT_LDAP_SEARCH_BASE, not both".into());
                BindStrategy::DnTemplate(String::new())
            }
            (None, Some(base)) => BindStrategy::SearchThenBind {
                base,
                filter: r.string("TURNOUT_LDAP_SEARCH_FILTER", "(&(objectClass=inetOrgPerson)(uid={username}))"),
            },
            (template, None) => {
                let template = template.unwrap_or_else(|| "uid={username},ou=people,dc=turnout,dc=test".into());
                if !template.contains("{username}") {
                    r.problems.push("TURNOUT_LDAP_BIND_DN_TEMPLATE must contain {username}".into());
                }
                BindStrategy::DnTemplate(template)
            }
        };
        if let BindStrategy::SearchThenBind { filter, .. } = &bind
            && !filter.contains("{username}")
        {
            r.problems.push("TURNOUT_LDAP_SEARCH_FILTER must contain {username}".into());
        }
        let service_account = match (r.optional("TURNOUT_LDAP_SERVICE_DN"), r.optional("TURNOUT_LDAP_SERVICE_PASSWORD"))
        {
            (Some(dn), Some(password)) => Some(ServiceAccount { dn, password: SecretString::from(password) }),
            (None, None) => None,
            _ => {
                r.problems
                    .push("set both TURNOUT_LDAP_SERVICE_DN and TURNOUT_LDAP_SERVICE_PASSWORD, or neither".into());
                None
            }
        };
        let ldap = LdapSettings {
            url: r.string("TURNOUT_LDAP_URL", "ldap://127.0.0.1:389"),
            starttls: r.parsed("TURNOUT_LDAP_STARTTLS", false),
            ca_cert: r.optional("TURNOUT_LDAP_CA_CERT"),
            bind,
            service_account,
            service_pool_size: r.parsed("TURNOUT_LDAP_SERVICE_POOL_SIZE", 8),
            mail_attr: r.string("TURNOUT_LDAP_MAIL_ATTR", "mail"),
            uid_attr: r.string("TURNOUT_LDAP_UID_ATTR", "uid"),
            connect_timeout: r.millis("TURNOUT_LDAP_CONNECT_TIMEOUT_MS", 2000),
            op_timeout: r.millis("TURNOUT_LDAP_TIMEOUT_MS", 3000),
            pool_size: r.parsed("TURNOUT_LDAP_POOL_SIZE", 16),
            pool_wait: r.millis("TURNOUT_LDAP_POOL_WAIT_MS", 1000),
            max_waiting: r.parsed("TURNOUT_LDAP_MAX_WAITING", 256),
            breaker_failures: r.parsed("TURNOUT_LDAP_BREAKER_FAILURES", 5),
            breaker_open: r.secs("TURNOUT_LDAP_BREAKER_OPEN_SECS", 5, 1..=300),
            group_base: r.string("TURNOUT_LDAP_GROUP_BASE", "dc=turnout,dc=test"),
            admin_group: r.optional("TURNOUT_LDAP_ADMIN_GROUP"),
            officer_group: r.optional("TURNOUT_LDAP_OFFICER_GROUP"),
        };
        if ldap.service_pool_size == 0 || ldap.service_pool_size > 64 {
            r.problems.push("TURNOUT_LDAP_SERVICE_POOL_SIZE: between 1 and 64".into());
        }
        if ldap.pool_size == 0 || ldap.pool_size > 1024 {
            r.problems.push("TURNOUT_LDAP_POOL_SIZE: between 1 and 1024".into());
        }
        let mut list = |name: &str| -> Vec<crate::domain::Username> {
            let raw = r.optional(name).unwrap_or_default();
            let mut names = Vec::new();
            for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match crate::domain::Username::parse(item) {
                    Ok(u) => names.push(u),
                    Err(e) => r.problems.push(format!("{name}: {item:?} is not a username ({e})")),
                }
            }
            names
        };
        let roles = RoleLists { admins: list("TURNOUT_ADMINS"), officers: list("TURNOUT_OFFICERS") };
        let mut anchor_emails = Vec::new();
        let raw = r.string("TURNOUT_AUDIT_ANCHOR_EMAIL", "");
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match crate::domain::VoterEmail::parse(item) {
                Ok(e) if !anchor_emails.contains(&e) => anchor_emails.push(e),
                Ok(_) => {}
                Err(_) => r.problems.push(format!("TURNOUT_AUDIT_ANCHOR_EMAIL: {item:?} is not an email address")),
            }
        }
        if anchor_emails.len() > 20 {
            r.problems.push("TURNOUT_AUDIT_ANCHOR_EMAIL: at most 20 addresses".into());
        }
        let login = LoginSettings {
            free_failures: r.parsed("TURNOUT_LOGIN_FREE_FAILURES", 3),
            max_delay: r.secs("TURNOUT_LOGIN_MAX_DELAY_SECS", 300, 1..=86_400),
            failure_floor: r.millis("TURNOUT_LOGIN_FAILURE_FLOOR_MS", 120),
            address_failures: r.parsed("TURNOUT_LOGIN_ADDRESS_FAILURES", 600),
            address_window: r.secs("TURNOUT_LOGIN_ADDRESS_WINDOW_SECS", 600, 1..=86_400),
            failure_decay: r.secs("TURNOUT_LOGIN_FAILURE_DECAY_SECS", 900, 1..=86_400),
            trusted_proxies: r.networks("TURNOUT_TRUSTED_PROXIES", "127.0.0.1/32,::1/128"),
        };
        if login.address_failures == 0 {
            r.problems.push("TURNOUT_LOGIN_ADDRESS_FAILURES: at least 1".into());
        }

        let accounts = match r.optional("TURNOUT_SMTP_ACCOUNTS") {
            None => Vec::new(),
            Some(raw) => serde_json::from_str::<Vec<SenderAccount>>(&raw).unwrap_or_else(|e| {
                // The raw JSON holds passwords: report the position, not the text.
                r.problems.push(format!("TURNOUT_SMTP_ACCOUNTS: not a JSON list of sender accounts ({e})"));
                Vec::new()
            }),
        };
        for a in &accounts {
            if a.per_minute == 0 || a.max_concurrent == 0 {
                r.problems.push(format!("sender account {}: per_minute and max_concurrent must be > 0", a.name));
            }
        }
        // Plain SMTP sends codes and the account's password in clear: only to a sink on
        // this host, or to hosts named in TURNOUT_MAIL_PLAINTEXT_HOSTS (the compose
        // file's Mailpit on its private network).
        let plaintext_ok: Vec<String> = r
            .string("TURNOUT_MAIL_PLAINTEXT_HOSTS", "")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        for a in &accounts {
            if a.tls == SmtpTls::None
                && !is_loopback_host(&a.host)
                && !plaintext_ok.contains(&a.host.to_ascii_lowercase())
            {
                r.problems.push(format!(
                    "sender account {}: \"tls\":\"none\" (the default) sends codes and the password in clear to {}; \
                     use \"starttls\" or \"tls\", or list the host in TURNOUT_MAIL_PLAINTEXT_HOSTS",
                    a.name, a.host
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for a in &accounts {
            if !names.insert(a.name.as_str()) {
                r.problems.push(format!("sender account names must be unique: {} appears twice", a.name));
            }
        }
        let mail = MailSettings {
            accounts,
            send_timeout: r.secs("TURNOUT_MAIL_SEND_TIMEOUT_SECS", 15, 1..=20),
            quarantine: r.secs("TURNOUT_MAIL_QUARANTINE_SECS", 900, 1..=86_400),
            strike_limit: r.parsed("TURNOUT_MAIL_STRIKE_LIMIT", 3),
            retry_base: r.secs("TURNOUT_MAIL_RETRY_BASE_SECS", 5, 1..=300),
            lag_alert: r.secs("TURNOUT_MAIL_LAG_ALERT_SECS", 120, 1..=3600),
        };

        let database = PathBuf::from(r.string("TURNOUT_DATABASE", "turnout.db"));
        let store = match r.string("TURNOUT_STORE", "sqlite").trim() {
            "sqlite" => StoreChoice::Sqlite,
            "mongodb" => {
                let uri = r.optional("TURNOUT_MONGODB_URI").unwrap_or_default();
                if uri.starts_with("mongodb+srv://") {
                    r.problems.push(
                        "TURNOUT_MONGODB_URI: mongodb+srv:// needs DNS SRV lookups, which this build leaves out; list the hosts in a mongodb:// URI".into(),
                    );
                } else if !uri.starts_with("mongodb://") {
                    r.problems.push("TURNOUT_MONGODB_URI: required with TURNOUT_STORE=mongodb, a mongodb://host:port/db?replicaSet=... URI".into());
                }
                let min_pool = r.parsed("TURNOUT_MONGODB_MIN_POOL", 8u32);
                let max_pool = r.parsed("TURNOUT_MONGODB_MAX_POOL", 64u32);
                if max_pool == 0 || min_pool > max_pool || max_pool > 1000 {
                    r.problems
                        .push("TURNOUT_MONGODB_MIN_POOL / _MAX_POOL: 0 <= min <= max, max between 1 and 1000".into());
                }
                let timeout_ms = r.parsed("TURNOUT_MONGODB_TIMEOUT_MS", 5000u64);
                if !(100..=120_000).contains(&timeout_ms) {
                    r.problems.push(format!("TURNOUT_MONGODB_TIMEOUT_MS={timeout_ms}: between 100 and 120000"));
                }
                let op_timeout = Duration::from_millis(timeout_ms);
                StoreChoice::MongoDb { uri: SecretString::from(uri), min_pool, max_pool, op_timeout }
            }
            other => {
                r.problems.push(format!("TURNOUT_STORE={other}: sqlite or mongodb"));
                StoreChoice::Sqlite
            }
        };
        let http_workers = match r.optional("TURNOUT_HTTP_WORKERS") {
            None => None,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => Some(n),
                _ => {
                    r.problems.push(format!("TURNOUT_HTTP_WORKERS={raw:?}: a number of threads from 1 to 256"));
                    None
                }
            },
        };
        let default_imports = database.parent().unwrap_or(std::path::Path::new(".")).join("imports");
        let import_dir = PathBuf::from(r.string("TURNOUT_IMPORT_DIR", &default_imports.display().to_string()));
        let settings = Settings {
            host: r.string("TURNOUT_HOST", "127.0.0.1"),
            port: r.parsed("TURNOUT_PORT", 8080),
            secret: SecretString::from(secret),
            database,
            store,
            import_dir,
            import_lease: r.secs("TURNOUT_IMPORT_LEASE_SECS", 30, 2..=600),
            box_count_interval: r.secs("TURNOUT_BOX_COUNT_INTERVAL_SECS", 60, 1..=3600),
            anchor_emails,
            session_ttl: r.secs("TURNOUT_SESSION_TTL_SECS", 3600, 60..=86_400),
            cookie_secure: r.parsed("TURNOUT_COOKIE_SECURE", false),
            body_limit: r.parsed("TURNOUT_BODY_LIMIT_BYTES", 16 * 1024),
            http_workers,
            otp,
            ldap,
            roles,
            login,
            mail,
        };
        if r.problems.is_empty() { Ok(settings) } else { Err(ConfigError(r.problems)) }
    }

    /// Settings for tests and tools: defaults plus the given overrides.
    pub fn for_tests(overrides: &[(&str, &str)]) -> Self {
        let mut vars: std::collections::HashMap<String, String> =
            [("TURNOUT_SECRET", TEST_SECRET)].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        vars.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::from_lookup(|k| vars.get(k).cloned()).expect("test settings are valid")
    }

    /// How many HTTP worker threads a service runs: `TURNOUT_HTTP_WORKERS`, else one per
    /// CPU (actix's own default).
    pub fn http_worker_count(&self) -> usize {
        self.http_workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    }

    /// A key for one purpose, derived from the root secret (which never leaves here).
    pub fn derive_key(&self, label: &str, parts: &[&[u8]]) -> [u8; 32] {
        crate::keys::derive_with(self.root_secret(), label, parts)
    }

    /// Exposes the root secret to the key-derivation code only.
    pub(crate) fn root_secret(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn secret_is_required_and_never_debug_printed() {
        let err = Settings::from_lookup(vars(&[])).unwrap_err();
        assert!(err.to_string().contains("TURNOUT_SECRET"));

        let s = Settings::for_tests(&[]);
        assert!(!format!("{s:?}").contains(TEST_SECRET));
    }

    #[test]
    fn only_a_random_secret_of_32_bytes_or_more_is_accepted() {
        let accepted = [
            (TEST_SECRET, "hex, 32 bytes"),
            ("boM6CYWHp8GUtmgqQgMn8vMZshBRq9zbPMah45e9Wlbo", "base64, 33 bytes"),
            ("HK2NoajY1OAnFnP7YqqrYDJR-nSQNZzx-G8EMeKyyj0", "base64url without padding"),
        ];
        for (secret, case) in accepted {
            assert_eq!(check_secret(secret), Ok(()), "{case}");
        }
        let refused = [
            ("", "required"),
            ("change-me-to-the-output-of-openssl-rand-hex-32", "placeholder"),
            (&"a".repeat(64), "variety"),
            ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "variety"),
            ("0123456789abcdef0123456789abcdef", "16 bytes"),
            ("test-secret-test-secret-test-secret-0123", "not random bytes"),
            ("correcthorsebatterystaplecorrecthorsebatterystaple", "not random bytes"),
            ("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "pattern"),
            ("this is a long passphrase with spaces in it, 2026!", "not random bytes"),
        ];
        for (secret, why) in refused {
            let err = check_secret(secret).unwrap_err();
            assert!(err.contains(why), "{secret:?}: {err}");
            assert!(secret.is_empty() || !err.contains(secret), "the error echoes the secret: {err}");
        }
        let err = Settings::from_lookup(vars(&[("TURNOUT_SECRET", &"7".repeat(64))])).unwrap_err().to_string();
        assert!(err.contains("TURNOUT_SECRET") && !err.contains(&"7".repeat(64)), "{err}");
    }

    #[test]
    fn plain_smtp_is_refused_beyond_this_host_unless_named() {
        let account =
            |host: &str, tls: &str| format!(r#"[{{"name":"e1","host":"{host}","port":25,"from":"e1@u.test"{tls}}}]"#);
        for (host, tls, ok) in [
            ("127.0.0.1", "", true),
            ("localhost", r#","tls":"none""#, true),
            ("::1", "", true),
            ("smtp.uni.example", "", false),
            ("smtp.uni.example", r#","tls":"none""#, false),
            ("smtp.uni.example", r#","tls":"starttls""#, true),
            ("mailpit", "", false),
        ] {
            let accounts = account(host, tls);
            let got =
                Settings::from_lookup(vars(&[("TURNOUT_SECRET", TEST_SECRET), ("TURNOUT_SMTP_ACCOUNTS", &accounts)]));
            assert_eq!(got.is_ok(), ok, "{host} {tls}: {:?}", got.err().map(|e| e.to_string()));
        }
        let named = Settings::from_lookup(vars(&[
            ("TURNOUT_SECRET", TEST_SECRET),
            ("TURNOUT_SMTP_ACCOUNTS", &account("mailpit", "")),
            ("TURNOUT_MAIL_PLAINTEXT_HOSTS", "Mailpit"),
        ]));
        assert!(named.is_ok(), "a named sink host");
    }

    #[test]
    fn every_problem_is_reported_with_its_variable() {
        let err = Settings::from_lookup(vars(&[
            ("TURNOUT_SECRET", "short"),
            ("TURNOUT_PORT", "eighty"),
            ("TURNOUT_OTP_VALIDITY_SECS", "0"),
            ("TURNOUT_SMTP_ACCOUNTS", "[{\"name\":1, \"password\":\"hunter2\"}]"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        for var in ["TURNOUT_SECRET", "TURNOUT_PORT", "TURNOUT_OTP_VALIDITY_SECS", "TURNOUT_SMTP_ACCOUNTS"] {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
        assert!(!text.contains("hunter2"), "a password leaked into the error: {text}");
    }

    #[test]
    fn http_workers_default_to_one_per_core_and_bad_counts_are_reported() {
        let secret = ("TURNOUT_SECRET", TEST_SECRET);
        let default = Settings::from_lookup(vars(&[secret])).unwrap();
        assert_eq!(default.http_workers, None);
        assert_eq!(default.http_worker_count(), std::thread::available_parallelism().unwrap().get());
        let one = Settings::from_lookup(vars(&[secret, ("TURNOUT_HTTP_WORKERS", "1")])).unwrap();
        assert_eq!(one.http_worker_count(), 1);
        for bad in ["0", "-2", "many", "257"] {
            let err = Settings::from_lookup(vars(&[secret, ("TURNOUT_HTTP_WORKERS", bad)])).unwrap_err();
            assert!(err.to_string().contains("TURNOUT_HTTP_WORKERS"), "{bad}: {err}");
        }
    }

    #[test]
    fn several_sender_accounts_and_search_bind() {
        let s = Settings::for_tests(&[
            (
                "TURNOUT_SMTP_ACCOUNTS",
                r#"[{"name":"e1","host":"127.0.0.1","port":2525,"from":"e1@u.test","password":"p"},
                    {"name":"e2","host":"127.0.0.1","port":2526,"from":"e2@u.test","per_minute":30}]"#,
            ),
            ("TURNOUT_LDAP_SEARCH_BASE", "ou=people,dc=u,dc=test"),
        ]);
        assert_eq!(s.mail.accounts.len(), 2);
        assert_eq!(s.mail.accounts[1].per_minute, 30);
        assert!(matches!(s.ldap.bind, BindStrategy::SearchThenBind { .. }));
    }

    #[test]
    fn the_store_is_sqlite_unless_mongodb_is_asked_for_with_a_usable_uri() {
        let secret = ("TURNOUT_SECRET", TEST_SECRET);
        let s = Settings::from_lookup(vars(&[secret])).unwrap();
        assert!(matches!(s.store, StoreChoice::Sqlite));

        let uri = "mongodb://turnout:hunter2@mongo:27017/turnout?replicaSet=rs0";
        let s =
            Settings::from_lookup(vars(&[secret, ("TURNOUT_STORE", "mongodb"), ("TURNOUT_MONGODB_URI", uri)])).unwrap();
        let StoreChoice::MongoDb { uri: got, min_pool, max_pool, op_timeout } = &s.store else {
            panic!("{:?}", s.store)
        };
        assert_eq!((got.expose_secret(), *min_pool, *max_pool, *op_timeout), (uri, 8, 64, Duration::from_secs(5)));
        assert!(!format!("{s:?}").contains("hunter2"), "the URI's password is printed");

        for (vars_, problem) in [
            (vec![secret, ("TURNOUT_STORE", "mongodb")], "TURNOUT_MONGODB_URI: required"),
            (vec![secret, ("TURNOUT_STORE", "mongodb"), ("TURNOUT_MONGODB_URI", "mongodb+srv://x")], "mongodb+srv"),
            (vec![secret, ("TURNOUT_STORE", "postgres")], "TURNOUT_STORE=postgres"),
            (
                vec![
                    secret,
                    ("TURNOUT_STORE", "mongodb"),
                    ("TURNOUT_MONGODB_URI", uri),
                    ("TURNOUT_MONGODB_TIMEOUT_MS", "5"),
                ],
                "TURNOUT_MONGODB_TIMEOUT_MS=5",
            ),
        ] {
            let err = Settings::from_lookup(vars(&vars_)).unwrap_err().to_string();
            assert!(err.contains(problem), "{err}");
        }
    }
}
