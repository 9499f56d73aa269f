//! `turnout-dev`: the whole stack on this machine, until Ctrl-C or SIGTERM.

use turnout_devstack::slapd::{student_email, student_password, student_uid};
use turnout_devstack::{Stack, StackOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::path::PathBuf::from(std::env::var("TURNOUT_DEV_DIR").unwrap_or_else(|_| ".turnout/dev".into()));
    let mut opts = StackOptions::in_dir(&dir);
    opts.students = env_or("TURNOUT_DEV_STUDENTS", 5000);
    opts.port = Some(u16::try_from(env_or("TURNOUT_DEV_PORT", 8080))?);
    opts.demo_minutes = env_or("TURNOUT_DEV_MINUTES", 120) as i64;
    // The union election beside the demo one: ranked, multi-seat, approval, faculty reps.
    opts.union_election = true;
    opts.by_election = true;
    // HTTPS beside HTTP, with a certificate from a private CA made for this run (0: off).
    let tls_port = env_or("TURNOUT_DEV_TLS_PORT", 8443);
    opts.tls = (tls_port != 0).then(|| Some(u16::try_from(tls_port).unwrap_or(8443)));
    // Load testing from one address: raise nginx's per-address sign-in limit, and size
    // the sender pool the sink enforces (ACCOUNTS:PER_MINUTE).
    opts.login_rate = env_or("TURNOUT_DEV_LOGIN_RATE", opts.login_rate);
    if let Ok(pool) = std::env::var("TURNOUT_DEV_POOL") {
        let (accounts, per_minute) = pool
            .split_once(':')
            .and_then(|(a, r)| Some((a.parse::<u32>().ok()?, r.parse::<u32>().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("TURNOUT_DEV_POOL is ACCOUNTS:PER_MINUTE, e.g. 10:6000"))?;
        let names: Vec<String> = (1..=accounts).map(|i| format!("elections-{i}")).collect();
        opts.mail_pool = Some((
            names
                .iter()
                .map(|n| turnout_devstack::SinkAccount {
                    name: n.clone(),
                    rate: Some(per_minute),
                    ..Default::default()
                })
                .collect(),
            names
                .iter()
                .map(|n| turnout_devstack::TurnoutAccount {
                    name: n.clone(),
                    per_minute,
                    max_concurrent: 4,
                    daily_cap: 10_000_000,
                })
                .collect(),
        ));
    }
    if opts.dir.exists() {
        // A fresh directory and database on every start.
        std::fs::remove_dir_all(&opts.dir)?;
    }
    let opts_students = opts.students;
    println!("Starting Turnout: slapd with {} students, mail sink, auth/otp/ballot, nginx ...", opts.students);
    let stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await??;
    let url = &stack.base_url;
    println!(
        "\nTurnout is running.\n\n  Open        {url}/{}\n  Demo ballot {url}/e/demo/ballot\n  Sign in as  {} / {}   (any student00001..{:05}, password vote-NNNNN)\n  Mail sink   {}/   (every code email lands here)\n  Read a code curl -s '{}/messages/latest?to={}'\n  Logs        {}/{{auth,otp,ballot}}.log\n\nPress Ctrl-C (or send SIGTERM) to stop everything.",
        stack
            .https
            .as_ref()
            .map(|(https, ca)| format!("   or {https}/ (certificate signed by the local CA {})", ca.display()))
            .unwrap_or_default(),
        student_uid(1),
        student_password(1),
        opts_students,
        stack.sink.api_url(),
        stack.sink.api_url(),
        student_email(1),
        stack.dir.display(),
    );
    let signal = turnout_devstack::process::stop_requested().await?;
    println!("\n{signal}: stopping ...");
    drop(stack);
    println!("Stopped.");
    Ok(())
}

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
