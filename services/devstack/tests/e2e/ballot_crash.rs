//! Crash safety of the ballot box under load: 10,000 voters cast ballots through nginx
//! while the ballot service is killed with SIGKILL three times at random moments and
//! started again. A voter whose answer was lost (connection reset, 502/503) retries, as a
//! browser user would, until they get 201 or 409.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use turnout_core::domain::{ElectionId, Receipt};

use crate::helpers::TestStack;

const VOTERS: u32 = 10_000;

#[derive(Default)]
struct Outcomes {
    /// voter -> receipt, for every 201.
    receipts: HashMap<u32, String>,
    /// Voters answered 409 (already voted): an earlier, unanswered try was stored.
    already: Vec<u32>,
    /// Tries whose answer was lost to a crash (retried).
    lost_answers: u64,
}

pub async fn killing_the_ballot_service_under_load_loses_no_acknowledged_vote(s: &mut TestStack) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).pool_max_idle_per_host(64).build().unwrap();
    let cookies: Vec<String> = (0..VOTERS)
        .map(|n| {
            let uid = format!("crash{n:05}");
            s.stack.verified_session_cookie(&uid, &format!("{uid}@students.turnout.test")).unwrap()
        })
        .collect();
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let url = s.url("/e/demo/ballot");
    let body = serde_json::json!({"choices": {"president": "chen-wei", "treasurer": "fatima-haddad"}});

    let load = futures_util::stream::iter(cookies.into_iter().enumerate())
        .map(|(n, cookie)| {
            let (http, url, body, outcomes) = (http.clone(), url.clone(), body.clone(), outcomes.clone());
            async move {
                for _ in 0..200 {
                    let res = http
                        .post(&url)
                        .header("cookie", &cookie)
                        .header("accept", "application/json")
                        .json(&body)
                        .send()
                        .await;
                    let status = res.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
                    match status {
                        201 => {
                            let v: serde_json::Value = res.unwrap().json().await.unwrap();
                            let receipt = v["receipt"].as_str().unwrap().to_owned();
                            outcomes.lock().unwrap().receipts.insert(n as u32, receipt);
                            return;
                        }
                        409 => {
                            outcomes.lock().unwrap().already.push(n as u32);
                            return;
                        }
                        0 | 502 | 503 | 504 => {
                            outcomes.lock().unwrap().lost_answers += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        other => panic!("voter {n}: unexpected {other}"),
                    }
                }
                panic!("voter {n} never got an answer");
            }
        })
        .buffer_unordered(50)
        .collect::<Vec<()>>();

    let store = s.store().await;
    let demo = ElectionId::parse("demo").unwrap();
    let before = store.turnout(&demo).await.unwrap();
    let killer = async {
        // Three kills at pseudo-random moments while the load runs.
        let mut seed: u64 = 0x2026_1122;
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            tokio::time::sleep(Duration::from_millis(300 + seed % 700)).await;
            s.stack.kill_service("ballot");
            tokio::time::sleep(Duration::from_millis(200)).await;
            s.stack.restart_service("ballot").unwrap();
        }
    };
    // The load owns everything it uses, so the killer may hold the stack mutably.
    let ((), _) = tokio::join!(killer, load);

    let o = std::mem::take(&mut *outcomes.lock().unwrap());
    let turnout = store.turnout(&demo).await.unwrap();
    println!(
        "ballot service killed 3 times under load: {} x 201, {} x 409 after a lost answer, {} answers lost and retried; box {turnout:?}",
        o.receipts.len(),
        o.already.len(),
        o.lost_answers
    );
    assert!(o.lost_answers > 0, "the kills did not hit the load");
    assert_eq!(o.receipts.len() + o.already.len(), VOTERS as usize, "every voter got an answer");
    // Every acknowledged vote is in the box.
    for receipt in o.receipts.values() {
        assert!(store.receipt_in_box(&demo, &Receipt::parse(receipt).unwrap()).await.unwrap(), "lost {receipt}");
    }
    // One ballot per voter: each voter of this scenario has exactly one participation and
    // one ballot (a 409 means an earlier, unanswered try of theirs was stored).
    assert_eq!(turnout.participation, turnout.ballots, "participation != ballots");
    assert_eq!(turnout.participation - before.participation, u64::from(VOTERS));
    assert_eq!(turnout.ballots - before.ballots, u64::from(VOTERS));
}
