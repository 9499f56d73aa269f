//! Real-browser tests: a local stack, then `frontend/tests/browser/turnout.test.mjs` in
//! Debian's chromium (headless, through playwright-core). Screenshots of every step land
//! in `target/browser-screenshots/`.
//!
//! Needs `chromium` and `nodejs` (Debian) and `npm ci` in `frontend/tests/browser`
//! (`scripts/test.sh` does that).

use std::process::Command;
use std::time::Instant;

use turnout_devstack::process::require;
use turnout_devstack::{Stack, StackOptions, repo_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn students_and_officers_use_the_site_in_a_real_browser() {
    require("/usr/bin/chromium", "chromium").unwrap();
    require("/usr/bin/node", "nodejs").unwrap();
    let tests = repo_root().join("frontend/tests/browser");
    assert!(
        tests.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} first (scripts/test.sh does)",
        tests.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StackOptions::in_dir(dir.path());
    opts.students = 20;
    opts.union_election = true;
    opts.by_election = true;
    let stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await.unwrap().expect("the stack starts");
    let shots = repo_root().join("target/browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);

    let started = Instant::now();
    let url = stack.base_url.clone();
    let sink = stack.sink.api_url();
    let shots_dir = shots.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/node")
            .args(["--test", "turnout.test.mjs"])
            .current_dir(&tests)
            .env("TURNOUT_URL", url)
            .env("TURNOUT_SINK", sink)
            .env("TURNOUT_SCREENSHOTS", shots_dir)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}\nbrowser tests took {:?}; screenshots in {}", started.elapsed(), shots.display());
    assert!(out.status.success(), "browser tests failed:\n{report}");
    let count = std::fs::read_dir(&shots).unwrap().count();
    assert!(count >= 15, "expected a screenshot per step, found {count}");
}
