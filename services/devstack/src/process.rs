//! Child processes that stop when their handle is dropped: SIGTERM, a short wait, then
//! SIGKILL. A test that panics or a Ctrl-C'd start script leaves nothing running.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

pub struct Supervised {
    pub name: String,
    child: Child,
}

impl Supervised {
    /// The process id (to sample its memory, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(Self { name: name.to_owned(), child })
    }

    /// Fails with the log's tail if the process has already exited.
    pub fn check_running(&mut self, log: &Path) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
            anyhow::bail!("{} exited ({status}); last log lines:\n{}", self.name, tail.join("\n"));
        }
        Ok(())
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until this process, not some other one, listens on `port`. Fails at once,
    /// with the log's tail, if it exits first (say, because the port was taken), and
    /// after `timeout` otherwise, saying whether another process holds the port.
    pub fn wait_listening(&mut self, port: u16, log: &Path, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if listens_on(self.pid(), port) {
                return Ok(());
            }
            self.check_running(log)?;
            if Instant::now() >= deadline {
                let other = if listening_inodes(port).is_empty() { "" } else { " (another process holds the port)" };
                anyhow::bail!("{} is not listening on 127.0.0.1:{port} after {timeout:?}{other}", self.name);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until every thread of the process is stopped (after SIGSTOP): a signal is
    /// only queued when `kill` returns, and a running thread stops a moment later.
    pub fn wait_stopped(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let all_stopped = || {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else { return false };
            tasks.flatten().all(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                // The state follows the parenthesised name, which may itself hold spaces.
                let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
                matches!(state, Some("T" | "t"))
            })
        };
        while !all_stopped() {
            if Instant::now() >= deadline {
                anyhow::bail!("{} did not stop within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Sends a signal (e.g. `libc::SIGKILL` to simulate a crash).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free loopback port (bound and released; fine for tests and local runs). A port is
/// handed out once per process: tests running side by side never get the same one, and
/// a port freed by a stopped server (which `restart` will want back) is not given away.
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::{LazyLock, Mutex};
    static HANDED_OUT: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(Default::default);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Keep each rejected listener open until the end, so the kernel offers another port.
    let mut held = Vec::new();
    for _ in 0..64 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("a bound address").port();
        if handed_out.insert(port) {
            return port;
        }
        held.push(listener);
    }
    panic!("no loopback port this process has not handed out already, after 64 tries")
}

/// Whether process `pid` itself holds a listening TCP socket on `port` (any address):
/// the socket's inode from `/proc/net/tcp{,6}` among the process's open files.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let listening = listening_inodes(port);
    if listening.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .is_some_and(|i| listening.iter().any(|l| l == i))
        })
    })
}

/// Inodes of the sockets listening on TCP `port`, from `/proc/net/tcp` and `tcp6`.
fn listening_inodes(port: u16) -> Vec<String> {
    const LISTEN: &str = "0A";
    let port = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [_, local, _, state, _, _, _, _, _, inode, ..] = fields[..]
                && state == LISTEN
                && local.ends_with(&port)
            {
                inodes.push(inode.to_owned());
            }
        }
    }
    inodes
}

/// Resolves when this process is asked to stop: Ctrl-C (SIGINT), SIGTERM (`kill`, a
/// service manager, a CI timeout) or SIGHUP (its terminal closed). The caller then drops
/// its stack, so slapd, nginx, the services and the mail sink stop with it instead of
/// running on, orphaned. Gives the signal's name.
pub async fn stop_requested() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
        _ = hangup.recv() => "SIGHUP",
    })
}

/// Fails with an install hint when a required program is missing.
pub fn require(program: &str, package: &str) -> anyhow::Result<()> {
    if Path::new(program).exists() {
        Ok(())
    } else {
        anyhow::bail!("{program} is missing: install it with `apt-get install -y {package}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child process listening on a free port, once it listens.
    fn listening_child(dir: &Path) -> (Supervised, u16) {
        let port = free_port();
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg("-c").arg(format!(
            "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', {port}))\ns.listen()\ntime.sleep(30)"
        ));
        let log = dir.join("log");
        let mut process = Supervised::spawn("listener", cmd, &log).unwrap();
        process.wait_listening(port, &log, Duration::from_secs(10)).unwrap();
        (process, port)
    }

    #[test]
    fn a_port_is_handed_out_once_per_process() {
        // The kernel offers the same free port again soon enough (7 repeats in 500 here).
        let ports: Vec<u16> = (0..500).map(|_| free_port()).collect();
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
    }

    #[test]
    fn waiting_for_a_port_another_process_holds_fails_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = other.local_addr().unwrap().port();
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("30");
        let mut process = Supervised::spawn("sleeper", cmd, &dir.path().join("log")).unwrap();
        let err = process.wait_listening(port, &dir.path().join("log"), Duration::from_millis(300)).unwrap_err();
        assert!(err.to_string().contains("another process holds the port"), "{err}");
        assert!(!listens_on(process.pid(), port));
    }

    #[test]
    fn waiting_for_the_process_own_listener_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let (process, port) = listening_child(dir.path());
        assert!(listens_on(process.pid(), port));
        assert!(!listens_on(std::process::id(), port), "the test process holds no such socket");
    }

    #[test]
    fn a_process_that_exits_fails_the_wait_at_once_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo cannot bind >&2; exit 3"]);
        let mut process = Supervised::spawn("quitter", cmd, &log).unwrap();
        let started = Instant::now();
        let err = process.wait_listening(free_port(), &log, Duration::from_secs(20)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("cannot bind"), "{err}");
        assert!(process.has_exited());
    }

    #[test]
    fn wait_stopped_returns_once_every_thread_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (process, _) = listening_child(dir.path());
        assert!(process.wait_stopped(Duration::from_millis(100)).is_err(), "a running process is not stopped");
        process.signal(libc::SIGSTOP);
        process.wait_stopped(Duration::from_secs(5)).unwrap();
        process.signal(libc::SIGCONT);
    }
}
