//! A load tool that is asked to stop takes its stack down with it: SIGTERM to the drill
//! while it runs leaves no slapd, nginx, service or mail sink behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The processes whose parent is `pid` (from /proc, as `ps` would see them).
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let comm = head.split_once('(').map_or("", |(_, c)| c).to_owned();
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            found.push((child, comm));
        }
    }
    found
}

/// Still running: present and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"))
        .unwrap_or(false)
}

#[test]
fn sigterm_to_the_drill_stops_its_whole_stack() {
    let out = tempfile::tempdir().unwrap();
    let mut drill = Command::new(env!("CARGO_BIN_EXE_drill"))
        .args(["--voters", "40", "--window-secs", "600", "--accounts", "1", "--per-minute", "600", "--out"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(out.path().join("stderr.txt")).unwrap())
        .spawn()
        .unwrap();
    // The drill prints its plan once the stack is up and the ballot page answers.
    let mut lines = BufReader::new(drill.stdout.take().unwrap()).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|l| l.starts_with("drill: 40 voters"));
    assert!(started, "the drill never started: {:?}", drill.wait_with_output());

    let stack = children_of(drill.id());
    let names: Vec<&str> = stack.iter().map(|(_, comm)| comm.as_str()).collect();
    for expected in ["slapd", "nginx", "turnout-auth", "turnout-otp", "turnout-ballot", "python3"] {
        assert!(names.iter().any(|n| n.starts_with(expected)), "no {expected} among {names:?}");
    }
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    unsafe { libc::kill(drill.id() as i32, libc::SIGTERM) };

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = drill.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the drill did not stop within 60 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let left: Vec<_> = stack.iter().filter(|(pid, _)| alive(*pid)).collect();
    for (pid, _) in &left {
        // SAFETY: as above; these are the drill's orphans, cleaned up before failing.
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "still running after the drill stopped: {left:?}");
    let stderr = std::fs::read_to_string(out.path().join("stderr.txt")).unwrap();
    assert!(!status.success(), "a stopped drill is not a passed drill");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
}
