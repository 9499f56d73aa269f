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
