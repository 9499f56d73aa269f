//! A full disk under the database: votes fail with a clear 503 (nothing half-stored, the
//! file stays intact), and voting recovers by itself once space returns. The database
//! lives on a small tmpfs mounted for the test (needs root, as in CI).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use turnout_core::domain::{ElectionId, Receipt};
use turnout_core::store::{BallotBox, SqliteStore};
use turnout_devstack::{Stack, StackOptions};

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(at).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mount(at.to_path_buf()))
}

/// Writes zeros to `file` until the filesystem refuses.
fn fill(file: &Path) {
    let mut f = std::fs::File::create(file).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() && f.flush().is_ok() {}
    let _ = f.sync_all();
}

pub async fn a_full_disk_refuses_votes_cleanly_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let Some(mount) = mount_tmpfs(&db_dir, "16m") else {
        // Only root can mount; CI runs as root, so there this is a real failure.
        assert!(!is_root(), "mounting a tmpfs failed although running as root");
        println!("SKIP a_full_disk_refuses_votes_cleanly_and_recovers: mounting a tmpfs needs root");
        return;
    };
    let db = db_dir.join("turnout.db");
    let mut opts = StackOptions::in_dir(&dir.path().join("stack"));
    opts.students = 10;
    opts.env = vec![("TURNOUT_DATABASE".into(), db.display().to_string())];
    let stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await.unwrap().expect("the stack starts");
    let http = reqwest::Client::new();
    let vote = |n: u32| {
        let cookie = stack
            .verified_session_cookie(&format!("disk{n:04}"), &format!("disk{n:04}@students.turnout.test"))
            .unwrap();
        let (http, url) = (http.clone(), format!("{}/e/demo/ballot", stack.base_url));
        async move {
            let res = http
                .post(url)
                .header("cookie", cookie)
                .header("accept", "application/json")
                .json(&json!({"choices": {"president": "amara-okafor"}}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let retry_after = res.headers().get("retry-after").is_some();
            (status, retry_after, res.json::<Value>().await.unwrap())
        }
    };
    let mut receipts = Vec::new();
    let (status, _, body) = vote(0).await;
    assert_eq!(status, 201, "{body}");
    receipts.push(body["receipt"].as_str().unwrap().to_owned());

    // Fill the disk, then vote until the store runs out of room.
    fill(&db_dir.join("filler"));
    let mut refused = None;
    for n in 1..=2000 {
        let (status, retry_after, body) = vote(n).await;
        match status {
            201 => receipts.push(body["receipt"].as_str().unwrap().to_owned()),
            503 => {
                assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
                assert!(body["error"]["request_id"].is_string(), "{body}");
                assert!(retry_after, "a full disk answers with Retry-After");
                refused = Some(n);
                break;
            }
            other => panic!("voter {n}: unexpected {other} {body}"),
        }
    }
    let refused = refused.expect("a full disk refused a vote");
    let live = http.get(format!("{}/health/live", stack.base_url)).send().await.unwrap();
    assert_eq!(live.status(), 200, "liveness does not depend on the disk");

    // Space returns: the same voter votes, with no restart.
    std::fs::remove_file(db_dir.join("filler")).unwrap();
    let (status, _, body) = vote(refused).await;
    assert_eq!(status, 201, "after space returned: {body}");
    receipts.push(body["receipt"].as_str().unwrap().to_owned());
    println!(
        "disk full after {} ballots; voter {refused} refused with 503, then stored once space returned",
        receipts.len() - 1
    );

    // Nothing corrupted, nothing half-stored, every acknowledged vote is in the box.
    let check = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            let conn = deadpool_sqlite::rusqlite::Connection::open(db).unwrap();
            conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).unwrap()
        })
        .await
        .unwrap()
    };
    assert_eq!(check, "ok");
    let store = SqliteStore::open(&db, stack.store_keys()).await.unwrap();
    let demo = ElectionId::parse("demo").unwrap();
    let turnout = store.turnout(&demo).await.unwrap();
    assert_eq!(turnout.participation, turnout.ballots);
    assert_eq!(turnout.ballots, receipts.len() as u64);
    for r in &receipts {
        assert!(store.receipt_in_box(&demo, &Receipt::parse(r).unwrap()).await.unwrap());
    }
    drop(store);
    drop(stack);
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(mount);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
