//! The directory under pressure and in trouble: a bounded pool, a breaker, timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use turnout_devstack::slapd::{student_password, student_uid};

use crate::helpers::{as_refs, directory, spawn_app, template_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_logins_never_hold_more_than_the_pool_on_slapd() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Arc::new(directory(dir.path()));
    let mut settings = template_settings(&slapd);
    settings.push(("TURNOUT_LDAP_POOL_SIZE", "16".into()));
    // Four workers, so the pool is four shares of 4: together still at most 16.
    settings.push(("TURNOUT_HTTP_WORKERS", "4".into()));
    let app = spawn_app(&as_refs(&settings)).await;

    // Sample slapd's established connections all through the run (each `ss` takes a
    // few ms; the whole burst now takes well under a second).
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (slapd, stop, peak) = (slapd.clone(), stop.clone(), peak.clone());
        std::thread::spawn(move || {
            let mut samples = 0;
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(slapd.established_connections(), Ordering::Relaxed);
                samples += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            samples
        })
    };

    let logins = (0..500u32).map(|i| {
        let n = i % 20 + 1;
        let app = &app;
        async move {
            // Each from its own address: 25 sign-ins in flight for one account from one
            // address would meet the throttle (in-flight attempts count until settled).
            let address = format!("10.0.{}.{}", i / 250, i % 250 + 1);
            let res = app.login_from(&address, &student_uid(n), &student_password(n)).await;
            (res.status().as_u16(), res.headers().contains_key("retry-after"))
        }
    });
    let answers = futures_util::future::join_all(logins).await;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();

    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let busy = answers.iter().filter(|(s, retry)| *s == 503 && *retry).count();
    println!(
        "500 logins: {ok} ok, {busy} 503+Retry-After; slapd peak connections {} over {samples} samples",
        peak.load(Ordering::Relaxed)
    );
    assert_eq!(ok + busy, 500, "every answer is 200 or 503 with Retry-After: {answers:?}");
    assert!(ok > 0);
    assert!(samples >= 3, "the sampler ran ({samples} samples)");
    assert!(peak.load(Ordering::Relaxed) <= 16, "slapd held {} connections", peak.load(Ordering::Relaxed));
    // The directory answers normally afterwards.
    assert_eq!(app.login(&student_uid(3), &student_password(3)).await.status(), StatusCode::OK);
    let ready: Value = app.http.get(format!("{}/health/ready", app.url)).send().await.unwrap().json().await.unwrap();
    let pool = &ready["checks"]["ldap"]["detail"]["pool"];
    assert_eq!((pool["max"].as_u64(), pool["shares"].as_u64()), (Some(16), Some(4)), "{ready}");
    assert!(pool["open"].as_u64().unwrap() <= 16, "{ready}");
}

fn fast_breaker(settings: &mut Vec<(&'static str, String)>) {
    settings.extend([
        ("TURNOUT_LDAP_BREAKER_FAILURES", "3".to_owned()),
        ("TURNOUT_LDAP_BREAKER_OPEN_SECS", "2".to_owned()),
        ("TURNOUT_LDAP_TIMEOUT_MS", "500".to_owned()),
        ("TURNOUT_LDAP_CONNECT_TIMEOUT_MS", "500".to_owned()),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_directory_opens_the_breaker_and_logins_recover_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut slapd = directory(dir.path());
    let mut settings = template_settings(&slapd);
    fast_breaker(&mut settings);
    let app = spawn_app(&as_refs(&settings)).await;
    assert_eq!(app.login(&student_uid(1), &student_password(1)).await.status(), StatusCode::OK);

    slapd.stop();
    for _ in 0..3 {
        assert_eq!(app.login(&student_uid(1), &student_password(1)).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    // Open: refused at once, with when to retry.
    for _ in 0..10 {
        let started = Instant::now();
        let res = app.login(&student_uid(1), &student_password(1)).await;
        let took = started.elapsed();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().contains_key("retry-after"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "directory_unavailable");
        assert!(body["error"]["message"].as_str().unwrap().contains("directory is not answering"));
        assert!(took < Duration::from_millis(100), "open breaker took {took:?}");
    }
    let ready = app.http.get(format!("{}/health/ready", app.url)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["ldap"]["ok"], false, "{ready}");
    assert!(ready["checks"]["ldap"]["error"].as_str().unwrap().contains("breaker open"), "{ready}");
    assert_eq!(app.http.get(format!("{}/health/live", app.url)).send().await.unwrap().status(), StatusCode::OK);

    slapd.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(app.login(&student_uid(1), &student_password(1)).await.status(), StatusCode::OK, "probe closes it");
    assert_eq!(app.login(&student_uid(2), &student_password(2)).await.status(), StatusCode::OK);
    let ready: Value = app.http.get(format!("{}/health/ready", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["ldap"]["detail"]["breaker"], "closed", "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_directory_times_out_and_opens_the_breaker() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let mut settings = template_settings(&slapd);
    fast_breaker(&mut settings);
    let app = spawn_app(&as_refs(&settings)).await;
    assert_eq!(app.login(&student_uid(1), &student_password(1)).await.status(), StatusCode::OK);

    // Accepts connections, never answers.
    slapd.hang().expect("slapd stops");
    for _ in 0..3 {
        let started = Instant::now();
        let res = app.login(&student_uid(1), &student_password(1)).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < Duration::from_secs(3), "the operation timeout fired");
    }
    let started = Instant::now();
    let res = app.login(&student_uid(1), &student_password(1)).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_millis(100), "breaker open: {:?}", started.elapsed());
    slapd.resume();
}

/// ldap3 runs a connection's reader on the thread that opened it. The status reporter
/// serves no sign-ins, so a connection it opened and left in the pool would make every
/// sign-in that later used it wake the reporter's thread twice per operation. It closes
/// what it opened; a worker (a thread that claimed a share) keeps what it opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_reporter_leaves_no_connection_of_its_own_in_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let settings = turnout_core::Settings::for_tests(&as_refs(&template_settings(&slapd)));
    let directory = Arc::new(turnout_auth::Directory::new(settings.ldap.clone(), 2).unwrap());

    // This thread claimed no share, like the reporter.
    directory.status().await.expect("the directory answers");
    assert_eq!(directory.gauges().open, 0, "the reporter's connection was closed, not pooled");
    let deadline = Instant::now() + Duration::from_secs(5);
    while slapd.established_connections() > 0 {
        assert!(Instant::now() < deadline, "slapd still holds the reporter's connection");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A worker thread claims its share; what it opens stays for its sign-ins. The thread
    // keeps its runtime (and so the connection's reader) running until told to stop.
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = directory.clone();
    let thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            worker.claim_share();
            worker.status().await.expect("the directory answers");
            opened_tx.send(()).unwrap();
            let _ = stop_rx.await;
        })
    });
    opened_rx.recv().unwrap();
    assert_eq!(directory.gauges().open, 1, "the worker's connection stays in its share");

    // The reporter borrowing that idle connection does not close it either.
    directory.status().await.expect("the directory answers");
    assert_eq!(directory.gauges().open, 1);
    assert_eq!(slapd.established_connections(), 1);
    stop_tx.send(()).unwrap();
    thread.join().unwrap();
}
