//! Hostile and awkward input through nginx: every answer is a 4xx with a reason (never a
//! 5xx), slow senders are cut off, and the services are alive afterwards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestStack;

async fn post_raw(s: &TestStack, client: &reqwest::Client, path: &str, body: Vec<u8>) -> (u16, Value) {
    let res = client
        .post(s.url(path))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn hostile_input_gets_a_4xx_and_slow_senders_are_cut_off(s: &TestStack) {
    let voter = s.verified_voter(353, "demo").await;

    // Deeply nested JSON (inside the body limit): refused, not a stack overflow.
    let depth = 5000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
    let (status, body) = post_raw(s, &voter, "/e/demo/ballot", nested).await;
    assert!((400..500).contains(&status), "nested JSON: {status} {body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    let nested_object = format!("{}{}", "{\"a\":".repeat(3000), "}".repeat(3000)).into_bytes();
    let (status, _) = post_raw(s, &voter, "/e/demo/ballot", nested_object).await;
    assert!((400..500).contains(&status), "nested object: {status}");

    // Large (past the service's 16 KiB limit, under nginx's 1 MiB): 413 from the service.
    let big = format!("{{\"choices\":{{\"president\":\"{}\"}}}}", "x".repeat(200_000)).into_bytes();
    let (status, body) = post_raw(s, &voter, "/e/demo/ballot", big).await;
    assert_eq!(status, 413, "{body}");

    // Invalid UTF-8 in a JSON body and in a form body.
    let (status, body) =
        post_raw(s, &voter, "/e/demo/ballot", b"{\"choices\":{\"president\":\"\xff\xfe\"}}".to_vec()).await;
    assert!((400..500).contains(&status), "invalid UTF-8: {status} {body}");
    let res = voter
        .post(s.url("/e/demo/ballot"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"president=%ff%fe&treasurer=\xff".to_vec())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "invalid UTF-8 form: {}", res.status());

    // Duplicate fields: refused, never "last one wins" silently.
    let dup = br#"{"choices":{"president":"ben-carter"},"choices":{"president":"chen-wei"}}"#.to_vec();
    let (status, body) = post_raw(s, &voter, "/e/demo/ballot", dup).await;
    assert!((400..500).contains(&status), "duplicate field: {status} {body}");
    let dup_login = br#"{"username":"student00001","username":"admin1","password":"vote-00001"}"#.to_vec();
    let (status, body) = post_raw(s, &s.client(), "/auth/login", dup_login).await;
    assert!((400..500).contains(&status), "duplicate login field: {status} {body}");

    // Huge headers: nginx refuses them with a 4xx.
    let res = s.client().get(s.url("/e/demo/ballot")).header("x-filler", "a".repeat(64 * 1024)).send().await;
    match res {
        Ok(res) => assert!(res.status().is_client_error(), "huge header: {}", res.status()),
        Err(e) => panic!("huge header: the connection failed instead of a 4xx: {e}"),
    }
    let many = (0..200).fold(s.client().get(s.url("/")), |r, i| r.header(format!("x-h{i}"), "v".repeat(200)));
    let res = many.send().await.unwrap();
    assert!(res.status().is_client_error() || res.status() == StatusCode::OK, "many headers: {}", res.status());

    // Slowloris: headers trickled in (and a body that never finishes) are cut off by
    // nginx's 10 s timeouts, while everyone else is served.
    let port = s.stack.nginx_port;
    let slow_headers = tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let started = Instant::now();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        // One header byte a second, never the blank line.
        let mut closed_at = None;
        for _ in 0..20 {
            std::thread::sleep(Duration::from_secs(1));
            if c.write_all(b"X").is_err() {
                closed_at = Some(started.elapsed());
                break;
            }
        }
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        (closed_at.unwrap_or(started.elapsed()), String::from_utf8_lossy(&buf).into_owned())
    });
    let slow_body = tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let started = Instant::now();
        c.write_all(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
            .unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        (started.elapsed(), String::from_utf8_lossy(&buf).into_owned())
    });
    // Meanwhile the site answers normally.
    for _ in 0..5 {
        let res = s.client().get(s.url("/health/live")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (took, answer) = slow_headers.await.unwrap();
    assert!(took < Duration::from_secs(15), "slow headers held the connection for {took:?}");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408") || answer.starts_with("HTTP/1.1 400"), "{answer}");
    let (took, answer) = slow_body.await.unwrap();
    assert!(took < Duration::from_secs(15), "a never-finished body held the connection for {took:?}");
    assert!(!answer.contains("HTTP/1.1 5"), "slow body answered a 5xx: {answer}");

    // Nobody crashed.
    for service in ["auth", "otp", "ballot"] {
        let port = s.stack.services.iter().find(|(n, _, _)| n == service).unwrap().1;
        let live = reqwest::get(format!("http://127.0.0.1:{port}/health/live")).await.unwrap();
        assert_eq!(live.status(), StatusCode::OK, "{service} died");
    }
}
