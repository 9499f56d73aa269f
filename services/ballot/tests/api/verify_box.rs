//! The box export of ballots cast through the API, and `turnout-ballot verify-box` run on
//! it as a person runs it (no settings, no store): the untouched file recounts to what the
//! results count, and each way of tampering with it is named, with exit status 1.

use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use turnout_core::box_export::box_export;
use turnout_core::domain::{ElectionId, Receipt};
use turnout_core::receipts_root::{receipt_proof, receipts_root, verify_receipt_proof};
use turnout_core::results::count_contest;

use crate::helpers::spawn_app;

fn verify_box(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_turnout-ballot"))
        .arg("verify-box")
        .args(args)
        .env_clear()
        .output()
        .expect("the binary runs");
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[tokio::test]
async fn verify_box_recounts_a_cast_box_and_names_each_kind_of_tampering() {
    // Arrange: the union election, seven ballots cast through the API (one blank).
    let app = spawn_app().await;
    app.union("union", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let ballots = [
        json!({"president": ["ron", "sam-reyes"], "council": ["yu-lin", "tom-hale"], "societies": ["chess-club"]}),
        json!({"president": ["ron"], "council": ["yu-lin", "ola-berg"], "societies": ["film-society", "chess-club"]}),
        json!({"president": ["kim-tanaka"], "council": ["tom-hale", "yu-lin"], "societies": "abstain"}),
        json!({"president": ["sam-reyes", "ron"], "council": ["ines-costa"], "physics-rep": "nia-evans"}),
        json!({"president": ["kim-tanaka"], "council": ["tom-hale", "yu-lin"], "societies": "abstain"}),
        json!({"council": ["ola-berg", "ines-costa"], "societies": ["robotics-society", "chess-club"]}),
        json!({}),
    ];
    let mut receipts = Vec::new();
    for (n, choices) in ballots.iter().enumerate() {
        let voter = app.voter_in(n as u32 + 1, "union", &["physics-rep"], true);
        let res = voter.post(format!("{}/e/union/ballot", app.url)).json(&json!({ "choices": choices })).send().await;
        let res = res.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "ballot {n}");
        let body: Value = res.json().await.unwrap();
        receipts.push(Receipt::parse(body["receipt"].as_str().unwrap()).unwrap());
    }
    let id = ElectionId::parse("union").unwrap();
    let election = app.store.election(&id).await.unwrap().unwrap();
    let contents = app.store.box_contents(&id).await.unwrap();
    let export = box_export(&election, &contents.ballots);
    assert_eq!(export.ballots, 7);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path.display().to_string()
    };
    let file = write(&export.file_name, &export.body);
    let root = export.root_hex.as_str();

    // Act and assert: the file as exported verifies, against the published root too.
    let (code, out, err) = verify_box(&[&file, "--root", root]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("7 ballots, ballots root {root}")), "{out}");
    assert!(out.contains("matches the header and the published root"), "{out}");
    // Each contest recounted as the results count it from the store's ballots.
    let mut lots = 0;
    for contest in &election.contests {
        let want = count_contest(&election.id, &election.title, contest, &contents.ballots).unwrap();
        let line = out.lines().find(|l| l.starts_with(&format!("{} (", contest.id))).unwrap_or_else(|| panic!("{out}"));
        let names: Vec<&str> = want.elected.iter().map(|o| o.name.as_str()).collect();
        let elected =
            if names.is_empty() { "nobody elected".to_owned() } else { format!("elected {}", names.join("; ")) };
        assert!(line.contains(&format!("({}, ", want.method)) && line.contains(&elected), "{line} / {elected}");
        assert_eq!(line.contains("Re-Open Nominations won"), want.ron_elected, "{line}");
        // A tie drawn by lot is drawn again from the same seed: the contest export's hash.
        let by_lot = want.sheet.stages.iter().flat_map(|s| &s.ties).any(|t| t.contains("lot"));
        lots += usize::from(by_lot);
        assert_eq!(line.contains(&format!("a tie drawn by lot, seed {}", want.export_sha256)), by_lot, "{line}");
    }
    assert!(lots > 0, "Film Society and Robotics Society tie for the second society seat: {out}");
    assert!(out.contains("president (irv, 1 seat, 5 voted, 0 abstained, 2 blank)"), "{out}");
    assert!(out.contains("societies (approval, 2 seats, 3 voted, 2 abstained, 2 blank): elected Chess Club"), "{out}");
    let (code, out, _) = verify_box(&[&file]);
    assert_eq!(code, Some(0));
    assert!(out.contains("give --root to check it against the published one"), "{out}");

    // Each kind of tampering, with what the verifier must say.
    let lines: Vec<&str> = export.body.lines().collect();
    let body = |lines: &[String]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let at = edited.iter().rposition(|l| l.contains("\"kim-tanaka\"")).unwrap();
    edited[at] = edited[at].replace("\"kim-tanaka\"", "\"sam-reyes\"");
    let mut added: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    added.insert(3, added[3].clone());
    let mut removed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    removed.remove(2);
    let mut reordered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    reordered[1..].reverse();
    let mut header: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    header[0] = header[0].replace(root, &"0".repeat(64));
    let cases: [(&str, String, &[&str], &[&str]); 5] = [
        ("a ballot edited", body(&edited), &[], &["not the header's root", "edited, added or removed"]),
        ("a ballot added", body(&added), &[], &["the header says 7 ballots but the file holds 8"]),
        ("a ballot removed", body(&removed), &[], &["the header says 7 ballots but the file holds 6"]),
        ("the lines reordered", body(&reordered), &[], &["line 3: sorts before line 2", "out of order"]),
        ("the header's root edited", body(&header), &["--root", root], &["the header's root", "was changed"]),
    ];
    for (what, tampered, extra, want) in cases {
        let path = write("tampered.jsonl", &tampered);
        let mut args = vec![path.as_str()];
        args.extend_from_slice(extra);
        let (code, out, err) = verify_box(&args);
        assert_eq!(code, Some(1), "{what}: {out}{err}");
        assert!(out.is_empty(), "{what}: nothing recounted from a box that does not match: {out}");
        for w in want {
            assert!(err.contains(w), "{what}: {err}");
        }
    }
    // A ballot edited and the header's root made anew to match: only the published root tells.
    let forged = box_export(&election, &{
        let mut b = contents.ballots.clone();
        b.pop();
        b
    });
    let path = write("forged.jsonl", &forged.body);
    assert_eq!(verify_box(&[&path]).0, Some(0), "self-consistent");
    let (code, _, err) = verify_box(&[&path, "--root", root]);
    assert_eq!(code, Some(1));
    assert!(err.contains(&format!("is not the published root {root}")), "{err}");
    // A bad command line: the usage, status 2.
    for bad in [&[][..], &[file.as_str(), "--root", "xyz"][..], &[file.as_str(), "--recount"][..]] {
        let (code, _, err) = verify_box(bad);
        assert_eq!(code, Some(2), "{bad:?}");
        assert!(err.contains("usage: turnout-ballot verify-box EXPORT [--root HEX]"), "{err}");
    }
    let (code, _, err) = verify_box(&["/nonexistent-box.jsonl"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("/nonexistent-box.jsonl"), "{err}");

    // The receipts root: one receipt per ballot, each with a proof to the published root.
    assert_eq!(receipts.len() as u64, export.ballots, "the two roots are over as many leaves");
    let receipts_hex = turnout_core::domain::hex(&receipts_root(&receipts));
    for r in &receipts {
        let proof = receipt_proof(&receipts, r).unwrap();
        assert!(verify_receipt_proof(r, &proof, &receipts_hex), "{}", r.as_str());
    }
    assert_eq!(receipt_proof(&receipts, &Receipt::generate()), None);
}
