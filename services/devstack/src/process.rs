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

/// A free loopback port (bound and released; fine for tests and local runs).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    anyhow::bail!("nothing listening on 127.0.0.1:{port} after {timeout:?}")
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
