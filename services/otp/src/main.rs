use anyhow::Context;
use turnout_core::Settings;
use turnout_core::domain::ElectionId;
use turnout_otp::{Application, admin};

const USAGE: &str = "usage: turnout-otp                                   serve the code service and its mail worker
       turnout-otp widen-acceptance ELECTION MINUTES REASON
                                                     let codes verify MINUTES past their validity (audited)
       turnout-otp senders                           show each sender account's health";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings::from_env()?;
    let store = turnout_core::store::open(&settings).await.context("opening the store")?;
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => {
            let _logs = turnout_core::telemetry::init("otp");
            let app = Application::build(&settings, store)?;
            tracing::info!(event = "listening", port = app.port());
            app.run_until_stopped().await.context("otp server")
        }
        ["widen-acceptance", election, minutes, reason @ ..] => {
            let election = ElectionId::parse(election).map_err(|e| anyhow::anyhow!("{e}"))?;
            let minutes: u32 = minutes.parse().context("MINUTES must be a whole number")?;
            let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
            admin::widen_acceptance(store.as_ref(), &election, minutes, &reason.join(" "), &actor).await?;
            println!("codes for {election} now verify {minutes} minutes past their validity (audited)");
            Ok(())
        }
        ["senders"] => {
            print!("{}", admin::describe(&store.sender_health().await?));
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}
