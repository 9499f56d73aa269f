//! Crash safety of the outbox: kill -9 the code service mid-drain, start it again.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use turnout_devstack::slapd::student_email;

use crate::helpers::TestStack;

pub async fn killing_the_otp_service_mid_drain_loses_no_mail(s: &mut TestStack) {
    // 300 voters ask for codes; the pool (3 accounts x 600/min) needs ~10 s to send them.
    let voters = 101..=400u32;
    let mut clients = Vec::new();
    for n in voters.clone() {
        let c = s.client();
        assert_eq!(s.login(&c, n).await.status(), StatusCode::OK);
        clients.push(c);
    }
    let before = s.stack.sink.count().await.unwrap();
    let requests = clients.iter().map(|c| s.request_code(c, "demo"));
    for res in futures_util::future::join_all(requests).await {
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }

    // Kill it while it is sending, then bring it back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.stack.sink.count().await.unwrap() < before + 60 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stack.kill_service("otp");
    let at_kill = s.stack.sink.count().await.unwrap() - before;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.stack.restart_service("otp").unwrap();

    // Every voter gets their code; count duplicates (a send in flight at the kill).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut missing = voters.clone().count();
    while missing > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        missing = 0;
        for n in voters.clone() {
            if s.stack.sink.latest(&student_email(n)).await.unwrap().is_none() {
                missing += 1;
            }
        }
    }
    assert_eq!(missing, 0, "codes lost in the crash");
    let mut duplicates = 0;
    for n in voters.clone() {
        if s.stack.sink.all_to(&student_email(n)).await.unwrap().len() > 1 {
            duplicates += 1;
        }
    }
    println!("otp killed after {at_kill} of 300 sent; after restart all 300 delivered, {duplicates} duplicates");
    // Only a message inside an SMTP conversation at the kill can go twice: at most the
    // pool's concurrent sessions (3 accounts x 4).
    assert!(duplicates <= 12, "{duplicates} duplicates");
}
