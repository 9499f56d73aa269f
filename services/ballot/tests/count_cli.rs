//! `turnout-ballot count` as a person runs it: a published ward count recounted from its
//! BLT file, with no settings and no store.

use std::path::Path;
use std::process::Command;

fn count(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_turnout-ballot"))
        .arg("count")
        .args(args)
        .env_clear()
        .output()
        .expect("the binary runs")
}

#[test]
fn a_published_ward_is_recounted_from_its_blt_file() {
    let linn = Path::new(env!("CARGO_MANIFEST_DIR")).join("../count/tests/reference/scottish/Linn-2007.blt");
    let out = count(&["--method", "scottish", linn.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The four Droop's reference report elects, in order of election; the last two are
    // elected together at the end (rule 52), the one with more votes first.
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "David Ritchie\nSadie Docherty\nJohn McKenzie\nMargot Clark\n");

    let out = count(&["--method", "scottish", "--json", linn.to_str().unwrap()]);
    let sheet: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sheet["quota"], 191_400_000, "1914 in 10^-5 of a vote");
    assert_eq!(sheet["decimals"], 5);
}

#[test]
fn the_student_union_and_meek_rules_count_a_file_too() {
    // The Green Party of the US's 2005 profile (from Droop's tests): ERS97 and Meek elect
    // Kristen Olsen where Scottish STV elects Tom Sevigny, as OpenSTV does under each.
    let sc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../count/tests/reference/scottish/SC.blt");
    let sc = sc.to_str().unwrap();
    for method in ["ers97", "meek"] {
        let out = count(&["--method", method, sc]);
        assert!(out.status.success(), "{method}: {}", String::from_utf8_lossy(&out.stderr));
        let names = "Rebecca Rotzler\nPat LaMarche\nSteve Kramer\nKristen Olsen\n";
        assert_eq!(String::from_utf8(out.stdout).unwrap(), names, "{method}");
    }
    let scottish = String::from_utf8(count(&["--method", "scottish", sc]).stdout).unwrap();
    assert!(scottish.contains("Tom Sevigny\n") && !scottish.contains("Kristen Olsen"), "{scottish}");

    let out = count(&["--method", "ers97", "--json", sc]);
    let sheet: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((sheet["method"].as_str(), sheet["decimals"].as_u64()), (Some("ers97"), Some(2)));
    assert_eq!(sheet["quota"], 1880, "94 ÷ 5 = 18.80");
    assert_eq!(sheet["stages"][1]["action"]["kind"], "surplus");
    let out = count(&["--method", "meek", "--seats", "1", "--json", sc]);
    let sheet: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((sheet["seats"].as_u64(), sheet["elected"].as_array().map(Vec::len)), (Some(1), Some(1)));
    assert!(sheet["stages"].as_array().unwrap().iter().all(|s| s["quota"].is_i64()), "Meek's quota at every stage");
}

#[test]
fn a_bad_file_exits_1_and_a_bad_command_line_2_each_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.blt");
    std::fs::write(&bad, "3 1\n1 7 0\n0\n").unwrap();
    let out = count(&["--method", "irv", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 2") && err.contains("not a candidate") && !err.contains("usage"), "{err}");
    for missing in ["/nonexistent.blt", dir.path().to_str().unwrap()] {
        let out = count(&["--method", "irv", missing]);
        assert_eq!(out.status.code(), Some(1), "{missing}");
        assert!(String::from_utf8(out.stderr).unwrap().contains(missing));
    }
    let huge = dir.path().join("huge.blt");
    std::fs::File::create(&huge).unwrap().set_len(65 * 1024 * 1024).unwrap();
    let out = count(&["--method", "irv", huge.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("over 64 MB"));
    let out = count(&["--method", "borda", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("usage"));
}
