//! Everything together, as a deployment would run it: three service processes sharing
//! one SQLite file, nginx in front, slapd and the mail sink behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::mailsink::{MailSink, SinkAccount, TurnoutAccount};
use crate::nginx::{Nginx, Upstreams};
use crate::process::{Supervised, free_port};
use crate::slapd::{BIND_TEMPLATE, Slapd};

pub struct StackOptions {
    pub students: u32,
    /// nginx's port; a free one when `None`.
    pub port: Option<u16>,
    /// Where logs, the database and configs go.
    pub dir: PathBuf,
    /// Extra `TURNOUT_*` settings for every service (e.g. a short OTP step in tests).
    pub env: Vec<(String, String)>,
    /// Minutes the demo election stays open from now.
    pub demo_minutes: i64,
    /// The sender pool: what the sink enforces and what Turnout is told. `None`: three
    /// generous accounts.
    pub mail_pool: Option<(Vec<SinkAccount>, Vec<TurnoutAccount>)>,
    /// nginx's sign-in limit per client address (per second).
    pub login_rate: u32,
    /// Also serve HTTPS (certificate from a private CA made on the spot): on this port, or
    /// a free one when `Some(None)`.
    pub tls: Option<Option<u16>>,
    /// Who may vote in the demo election (an `eligibility` object); everyone when `None`.
    pub demo_eligibility: Option<serde_json::Value>,
    /// Also create the `union` election (`union_election`): ranked, multi-seat, approval
    /// and constituency contests, open as long as the demo one.
    pub union_election: bool,
    /// Also create the `byelection` (`by_election`): taking nominations now, for an hour,
    /// with voting an hour after that.
    pub by_election: bool,
}

impl StackOptions {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            students: 50,
            port: None,
            dir: dir.to_path_buf(),
            env: Vec::new(),
            demo_minutes: 120,
            mail_pool: None,
            login_rate: 50,
            tls: None,
            demo_eligibility: None,
            union_election: false,
            by_election: false,
        }
    }
}

pub struct Stack {
    pub dir: PathBuf,
    pub base_url: String,
    pub nginx_port: u16,
    /// `https://127.0.0.1:PORT` and the CA certificate that signed its certificate, when
    /// the stack serves HTTPS too.
    pub https: Option<(String, PathBuf)>,
    pub slapd: Slapd,
    pub sink: MailSink,
    pub env: Vec<(String, String)>,
    pub bin_dir: PathBuf,
    /// The services' session keys and lifetime, for minting sessions as auth would.
    session_keys: turnout_core::session::SessionKeys,
    session_ttl: Duration,
    /// The store's keys, as the services derive them (tests that open the store or play
    /// the insider need them).
    store_keys: turnout_core::store::StoreKeys,
    // Stopped in reverse order of start by Drop: nginx first, slapd last.
    _nginx: Nginx,
    pub services: Vec<(String, u16, Supervised)>,
}

/// The directory holding the built service binaries (next to, or above, this executable).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .skip(1)
        .find(|d| {
            d.join("turnout-auth").exists() && d.join("turnout-otp").exists() && d.join("turnout-ballot").exists()
        })
        .map(Path::to_path_buf)
        .context("the service binaries are not built: run `cargo build --workspace --bins` first")
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("OS random source");
    turnout_core::keys::hex(&buf)
}

impl Stack {
    pub fn start(opts: StackOptions) -> anyhow::Result<Self> {
        let root = crate::repo_root();
        std::fs::create_dir_all(&opts.dir)?;
        let dir = opts.dir.canonicalize()?;
        let bin_dir = bin_dir()?;
        let slapd = Slapd::start(&dir, opts.students).context("starting slapd")?;
        let sink = match &opts.mail_pool {
            None => MailSink::start(&dir, &root),
            Some((sink_accounts, _)) => MailSink::start_with(&dir, &root, sink_accounts),
        }
        .context("starting the mail sink")?;
        let accounts = match &opts.mail_pool {
            None => sink.accounts_json(3),
            Some((_, turnout_accounts)) => sink.turnout_accounts_json(turnout_accounts),
        };

        let mut env: Vec<(String, String)> = vec![
            ("TURNOUT_SECRET".into(), random_hex(32)),
            ("TURNOUT_DATABASE".into(), dir.join("turnout.db").display().to_string()),
            ("TURNOUT_LDAP_URL".into(), slapd.url()),
            ("TURNOUT_LDAP_BIND_DN_TEMPLATE".into(), BIND_TEMPLATE.into()),
            ("TURNOUT_LDAP_GROUP_BASE".into(), crate::slapd::GROUPS_DN.into()),
            ("TURNOUT_LDAP_ADMIN_GROUP".into(), crate::slapd::ADMIN_GROUP.into()),
            ("TURNOUT_LDAP_OFFICER_GROUP".into(), crate::slapd::OFFICER_GROUP.into()),
            ("TURNOUT_SMTP_ACCOUNTS".into(), accounts),
            ("TURNOUT_LOG".into(), "info".into()),
        ];
        env.extend(opts.env.iter().cloned());
        let settings = {
            let lookup: std::collections::HashMap<String, String> = env.iter().cloned().collect();
            turnout_core::Settings::from_lookup(|k| lookup.get(k).cloned())?
        };

        // The demo election, through the same command an operator would use.
        let now = jiff::Timestamp::now();
        let mut demo = demo_election(
            now - jiff::SignedDuration::from_mins(1),
            now + jiff::SignedDuration::from_mins(opts.demo_minutes),
        );
        if let Some(eligibility) = &opts.demo_eligibility {
            demo["eligibility"] = eligibility.clone();
        }
        let demo_file = dir.join("demo-election.json");
        std::fs::write(&demo_file, demo.to_string())?;
        run_cli(&bin_dir, &env, &["create-election", &demo_file.display().to_string()])?;
        if opts.union_election {
            let union = union_election(
                now - jiff::SignedDuration::from_mins(1),
                now + jiff::SignedDuration::from_mins(opts.demo_minutes),
            );
            let union_file = dir.join("union-election.json");
            std::fs::write(&union_file, union.to_string())?;
            run_cli(&bin_dir, &env, &["create-election", &union_file.display().to_string()])?;
        }
        if opts.by_election {
            let by = by_election(now);
            let by_file = dir.join("by-election.json");
            std::fs::write(&by_file, by.to_string())?;
            run_cli(&bin_dir, &env, &["create-election", &by_file.display().to_string()])?;
        }

        let mut services = Vec::new();
        for name in ["auth", "otp", "ballot"] {
            let port = free_port();
            let mut cmd = Command::new(bin_dir.join(format!("turnout-{name}")));
            cmd.envs(env.iter().cloned()).env("TURNOUT_PORT", port.to_string());
            let log = dir.join(format!("{name}.log"));
            let mut process = Supervised::spawn(name, cmd, &log)?;
            process.wait_listening(port, &log, Duration::from_secs(20))?;
            services.push((name.to_owned(), port, process));
        }
        let port_of = |n: &str| services.iter().filter(|s| s.0 == n).map(|s| s.1).collect::<Vec<_>>();
        let tls = match opts.tls {
            None => None,
            Some(port) => {
                let tls_dir = dir.join("tls");
                std::fs::create_dir_all(&tls_dir)?;
                let ca = crate::tls::private_ca(&tls_dir).context("making the local certificate")?;
                Some((port.unwrap_or_else(free_port), ca))
            }
        };
        let upstreams = Upstreams {
            auth: port_of("auth"),
            otp: port_of("otp"),
            ballot: port_of("ballot"),
            login_rate: opts.login_rate,
            tls: tls.as_ref().map(|(port, ca)| (*port, ca.cert.clone(), ca.key.clone())),
        };
        let nginx_port = opts.port.unwrap_or_else(free_port);
        let nginx = Nginx::start(&dir, &root, nginx_port, &upstreams).context("starting nginx")?;
        Ok(Self {
            base_url: format!("http://127.0.0.1:{nginx_port}"),
            nginx_port,
            https: tls.map(|(port, ca)| (format!("https://127.0.0.1:{port}"), ca.ca)),
            dir,
            slapd,
            sink,
            env,
            bin_dir,
            session_keys: turnout_core::session::SessionKeys::from_settings(&settings),
            store_keys: turnout_core::store::store_keys(&settings),
            session_ttl: settings.session_ttl,
            _nginx: nginx,
            services,
        })
    }

    /// The process id of the first instance of service `name`.
    pub fn service_pid(&self, name: &str) -> Option<u32> {
        self.services.iter().find(|(n, _, _)| n == name).map(|(_, _, p)| p.pid())
    }

    /// Kills a service with SIGKILL (a crash: no cleanup, no finished batch).
    pub fn kill_service(&mut self, name: &str) {
        for (n, _, process) in &mut self.services {
            if n == name {
                process.signal(libc::SIGKILL);
                process.stop();
            }
        }
    }

    /// Starts a killed service again on its old port, with the same settings.
    pub fn restart_service(&mut self, name: &str) -> anyhow::Result<()> {
        let (env, bin_dir, dir) = (self.env.clone(), self.bin_dir.clone(), self.dir.clone());
        for (n, port, process) in &mut self.services {
            if n == name {
                let mut cmd = Command::new(bin_dir.join(format!("turnout-{name}")));
                cmd.envs(env.iter().cloned()).env("TURNOUT_PORT", port.to_string());
                let log = dir.join(format!("{name}.log"));
                *process = Supervised::spawn(name, cmd, &log)?;
                process.wait_listening(*port, &log, Duration::from_secs(20))?;
            }
        }
        Ok(())
    }

    /// Creates another election with `turnout-ballot create-election`, and waits the
    /// second after which sign-ins see it.
    pub fn create_election(&self, election: &serde_json::Value) -> anyhow::Result<()> {
        let file = self.dir.join(format!("election-{}.json", random_hex(4)));
        std::fs::write(&file, election.to_string())?;
        run_cli(&self.bin_dir, &self.env, &["create-election", &file.display().to_string()])?;
        std::thread::sleep(Duration::from_millis(1100));
        Ok(())
    }

    /// The store's keys, derived from the stack's secret as every service derives them.
    pub fn store_keys(&self) -> turnout_core::store::StoreKeys {
        self.store_keys.clone()
    }

    /// A signed-in session cookie for `username`, minted with the stack's secret exactly
    /// as the auth service would (for load tools that skip the directory).
    pub fn session_cookie(&self, username: &str, email: &str) -> anyhow::Result<String> {
        self.mint(username, email, false)
    }

    /// A session already verified for the demo election (as after a correct code), for
    /// load tools that measure casting alone.
    pub fn verified_session_cookie(&self, username: &str, email: &str) -> anyhow::Result<String> {
        self.mint(username, email, true)
    }

    /// A session verified for `election` whose sign-in found the voter in the contests
    /// `constituencies` of it (as the auth service decides from the directory).
    pub fn verified_session_cookie_in(
        &self,
        election: &str,
        constituencies: &[&str],
        username: &str,
        email: &str,
    ) -> anyhow::Result<String> {
        let id = turnout_core::domain::ElectionId::parse(election).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut found = Vec::new();
        for c in constituencies {
            found.push((id.clone(), turnout_core::domain::ContestId::parse(c).map_err(|e| anyhow::anyhow!("{e}"))?));
        }
        self.mint_for(&id, found, username, email, true)
    }

    fn mint(&self, username: &str, email: &str, verified: bool) -> anyhow::Result<String> {
        let demo = turnout_core::domain::ElectionId::parse("demo").map_err(|e| anyhow::anyhow!("{e}"))?;
        self.mint_for(&demo, Vec::new(), username, email, verified)
    }

    fn mint_for(
        &self,
        demo: &turnout_core::domain::ElectionId,
        constituencies: Vec<(turnout_core::domain::ElectionId, turnout_core::domain::ContestId)>,
        username: &str,
        email: &str,
        verified: bool,
    ) -> anyhow::Result<String> {
        let now = jiff::Timestamp::now();
        let session = turnout_core::session::Session::new(
            turnout_core::domain::Username::parse(username).map_err(|e| anyhow::anyhow!("{e}"))?,
            turnout_core::domain::VoterEmail::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?,
            Vec::new(),
            now,
            self.session_ttl,
        )
        .with_eligible(vec![demo.clone()])
        .with_constituencies(constituencies);
        let session = if verified { session.verified_for(demo, now, self.session_ttl) } else { session };
        let token = self.session_keys.sign(&session);
        Ok(format!("{}={token}", turnout_core::session::COOKIE_NAME))
    }

    /// Every line the services logged so far.
    pub fn service_logs(&self) -> String {
        ["auth", "otp", "ballot"]
            .iter()
            .map(|n| std::fs::read_to_string(self.dir.join(format!("{n}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn run_cli(bin_dir: &Path, env: &[(String, String)], args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(bin_dir.join("turnout-ballot")).args(args).envs(env.iter().cloned()).output()?;
    if !out.status.success() {
        anyhow::bail!("turnout-ballot {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

pub fn demo_election(opens: jiff::Timestamp, closes: jiff::Timestamp) -> serde_json::Value {
    serde_json::json!({
        "id": "demo",
        "title": "Student Union Election 2026 (demo)",
        "opens_at": opens.to_string(),
        "closes_at": closes.to_string(),
        "time_zone": "Europe/London",
        "grace_secs": 120,
        "contests": [
            {"id": "president", "title": "President", "candidates": [
                {"id": "amara-okafor", "name": "Amara Okafor", "statement": "Longer library hours and cheaper food.", "status": "approved"},
                {"id": "ben-carter", "name": "Ben Carter", "statement": "A union that answers its email.", "status": "approved"},
                {"id": "chen-wei", "name": "Chen Wei", "statement": "Mental health support first.", "status": "approved"},
                {"id": "dana-pending", "name": "Dana (nomination pending)", "statement": "", "status": "pending"}
            ]},
            {"id": "treasurer", "title": "Treasurer", "candidates": [
                {"id": "eli-novak", "name": "Eli Novak", "statement": "Publish every budget line.", "status": "approved"},
                {"id": "fatima-haddad", "name": "Fatima Haddad", "statement": "Fund the societies fairly.", "status": "approved"}
            ]}
        ]
    })
}

/// A by-election that takes nominations: students stand for welfare officer (needing two
/// proposers; each student may second two nominations per contest) or the physics
/// representative (physics students only) from a minute ago for an hour; voting opens an
/// hour after nominations close, for an hour. Its candidates come only from nominations
/// (RON stands in each contest).
pub fn by_election(now: jiff::Timestamp) -> serde_json::Value {
    let h = jiff::SignedDuration::from_hours;
    serde_json::json!({
        "id": "byelection",
        "title": "Spring By-election 2027",
        "opens_at": (now + h(2)).to_string(),
        "closes_at": (now + h(3)).to_string(),
        "time_zone": "Europe/London",
        "grace_secs": 60,
        "nominations": {
            "opens_at": (now - jiff::SignedDuration::from_mins(1)).to_string(),
            "closes_at": (now + h(1)).to_string(),
            "proposers": 2,
            "max_seconds": 2,
        },
        "contests": [
            {"id": "welfare", "title": "Welfare Officer", "rules": {"ron": true}, "candidates": []},
            {"id": "physics-rep", "title": "Physics Faculty Representative",
             "rules": {"ron": true, "voters": {"kind": "ldap_group", "group_dn": crate::slapd::PHYSICS_GROUP}},
             "candidates": []}
        ]
    })
}

/// An election as a UK student union runs it: the president by instant-runoff with RON
/// (eight options), a council of three by ERS97 STV with RON, a representative for each
/// faculty (physics by the directory's group, everyone else by an LDAP filter), and an
/// approval referendum; each voter sees the candidates in an order of their own.
pub fn union_election(opens: jiff::Timestamp, closes: jiff::Timestamp) -> serde_json::Value {
    let people = |names: &[&str]| -> Vec<serde_json::Value> {
        names
            .iter()
            .map(|n| {
                let id = n.to_lowercase().replace([' ', '\''], "-");
                serde_json::json!({"id": id, "name": n, "statement": format!("{n} for a better union."), "status": "approved"})
            })
            .collect()
    };
    serde_json::json!({
        "id": "union",
        "title": "Union Council Elections 2026",
        "opens_at": opens.to_string(),
        "closes_at": closes.to_string(),
        "time_zone": "Europe/London",
        "grace_secs": 10,
        "shuffle_candidates": true,
        "contests": [
            {"id": "president", "title": "President",
             "rules": {"kind": "ranked", "ron": true},
             "candidates": people(&["Pat O'Brien", "Sam Reyes", "Kim Tanaka", "Alex Novak", "Jo Mensah", "Lee Park", "Ria Shah"])},
            {"id": "council", "title": "Union Council (3 seats)",
             "rules": {"kind": "ranked", "seats": 3, "rule": "ers97", "ron": true},
             "candidates": people(&["Ola Berg", "Ines Costa", "Tom Hale", "Yu Lin", "Max Weber"])},
            {"id": "physics-rep", "title": "Physics Faculty Representative",
             "rules": {"voters": {"kind": "ldap_group", "group_dn": crate::slapd::PHYSICS_GROUP}},
             "candidates": people(&["Nia Evans", "Raj Patel"])},
            {"id": "general-rep", "title": "General Faculty Representative",
             "rules": {"voters": {"kind": "ldap_filter", "filter": "(departmentNumber=GEN)"}},
             "candidates": people(&["Eva Horvat", "Dan Cohen"])},
            {"id": "societies", "title": "Which societies should get new funding?",
             "rules": {"kind": "approval", "seats": 2},
             "candidates": people(&["Chess Club", "Film Society", "Hiking Club", "Robotics Society"])}
        ]
    })
}
