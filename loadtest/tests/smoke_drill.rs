//! CI's smoke drill: 300 voters through the whole flow against a local stack whose mail
//! sink throttles every sender account (3 accounts x 200/min, so codes queue during the
//! opening spike). Fails on any lost vote, any undelivered code or any 5xx.

use std::process::Command;

#[test]
fn a_300_voter_drill_loses_no_vote_and_delivers_every_code() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["--voters", "300", "--window-secs", "60", "--accounts", "3", "--per-minute", "200"])
        .args(["--return-secs", "5", "--out"])
        .arg(out.path())
        .output()
        .expect("the drill runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "drill failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap()).unwrap();
    let checks = &report["checks"];
    assert_eq!(checks["lost_votes"], 0, "{checks}");
    assert_eq!(checks["undelivered_codes"], 0, "{checks}");
    assert_eq!(checks["server_errors"], 0, "{checks}");
    assert_eq!(checks["store"]["ballots"], checks["voted"], "stored ballots differ from 201 answers: {checks}");
    assert_eq!(checks["store"]["participation"], checks["store"]["ballots"]);
    // The sink's throttle was felt (codes queued behind the pool) and still every code came.
    assert_eq!(report["stages"]["code_delivery"]["count"], 300);
    assert!(report["stages"]["code_delivery"]["max_ms"].as_f64().unwrap() > 1000.0, "the sink did not throttle");
    assert!(checks["voted"].as_u64().unwrap() >= 290, "{}", report["outcomes"]);
    assert!(std::fs::metadata(out.path().join("drill.png")).unwrap().len() > 1000);
}
