use anyhow::Context;
use turnout_ballot::{Application, recount, seed, verify_box};
use turnout_core::Settings;

const USAGE: &str = "usage: turnout-ballot            serve the ballot service
       turnout-ballot create-election FILE.json
       turnout-ballot upgrade                 the one-time upgrades that need the secret (sealing
                                              ballots cast before sealing, keying the audit log),
                                              with the services stopped
       turnout-ballot verify-audit [--head SEQ:HASH]
                                              check the audit log's keyed hash chain, and that it
                                              still reaches an anchored head (exit 1 if not)
       turnout-ballot count --method irv|ers97|scottish|meek [--seats N] [--json] FILE.blt
                                              recount a BLT file: who is elected, one a line
       turnout-ballot verify-box EXPORT [--root HEX]
                                              check a box export against its ballots root (and
                                              the published one), then recount every contest
       turnout-ballot verify-box --election ID [--head SEQ:HASH]
                                              check the live box with this server's key: every
                                              seal, the counts and roots the audit log recorded";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("count") {
        // A recount reads a file: no settings, no store.
        let rest: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        std::process::exit(recount::main(&rest));
    }
    if args.first().map(String::as_str) == Some("verify-box") && args.get(1).map(String::as_str) != Some("--election") {
        // Like a recount: a file and, optionally, the published root; no settings, no store.
        let rest: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        std::process::exit(verify_box::main(&rest));
    }
    let settings = Settings::from_env()?;
    let tool = matches!(args.first().map(String::as_str), Some("upgrade" | "verify-audit" | "verify-box"));
    let store = if tool {
        turnout_core::store::open_for_tools(&settings).await
    } else {
        turnout_core::store::open(&settings).await
    }
    .context("opening the store")?;
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => {
            let _logs = turnout_core::telemetry::init("ballot");
            let app = Application::build(&settings, store).await?;
            tracing::info!(event = "listening", port = app.port());
            app.run_until_stopped().await.context("ballot server")
        }
        ["verify-audit", rest @ ..] => {
            let anchor = head_arg(rest);
            let v = store.verify_audit(anchor.as_ref()).await.context("reading the audit log")?;
            match (v.broken_at, v.problem) {
                (None, _) => {
                    let head = v.head.map(|h| h.to_string()).unwrap_or_else(|| "none (empty)".into());
                    println!("audit log intact: {} entries, none edited or removed; head {head}", v.entries);
                    if let Some(anchor) = anchor {
                        println!("it reaches the anchored head {anchor}");
                    }
                    Ok(())
                }
                (Some(seq), problem) => {
                    eprintln!(
                        "AUDIT LOG BROKEN at entry {seq}: {} ({} entries before it verify)",
                        problem.unwrap_or_default(),
                        v.entries
                    );
                    std::process::exit(1)
                }
            }
        }
        ["verify-box", "--election", election, rest @ ..] => {
            let anchor = head_arg(rest);
            match verify_box::live(store.as_ref(), election, anchor.as_ref(), jiff::Timestamp::now()).await {
                Ok(report) => {
                    print!("{report}");
                    Ok(())
                }
                Err(why) => {
                    eprintln!("turnout-ballot verify-box: {why}");
                    std::process::exit(1)
                }
            }
        }
        ["upgrade"] => {
            let due = store.pending_upgrades().await.context("reading the store")?;
            if due.is_empty() {
                println!("nothing to upgrade");
                return Ok(());
            }
            for line in &due {
                println!("due: {line}");
            }
            match store.run_upgrades().await {
                Ok(report) => {
                    for line in report {
                        println!("done: {line}");
                    }
                    println!("upgraded; check it with `turnout-ballot verify-audit` and start the services");
                    Ok(())
                }
                Err(e) => {
                    eprintln!("turnout-ballot upgrade: {e}");
                    std::process::exit(1)
                }
            }
        }
        ["create-election", file] => {
            let json = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
            let e = seed::create_election(store.as_ref(), &json, &format!("cli:{actor}")).await?;
            println!("created election {} ({}): /e/{}/ballot", e.id, e.title, e.id);
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}

/// `[--head SEQ:HASH]` after a command; exits 2 on anything else.
fn head_arg(rest: &[&str]) -> Option<turnout_core::store::AuditHead> {
    match rest {
        [] => None,
        ["--head", head] => Some(head.parse().unwrap_or_else(|e| {
            eprintln!("--head: {e}");
            std::process::exit(2)
        })),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}
