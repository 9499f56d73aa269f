//! nginx in front of the services, from `nginx/turnout.conf.template`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::{Supervised, require};

pub struct Upstreams {
    pub auth: Vec<u16>,
    pub otp: Vec<u16>,
    pub ballot: Vec<u16>,
    /// Sign-ins per second per client address at `/auth/login` (burst: 4x).
    pub login_rate: u32,
    /// An HTTPS listener too: (port, certificate, key) PEM paths.
    pub tls: Option<(u16, std::path::PathBuf, std::path::PathBuf)>,
}

/// Fills in the template's @NAME@ placeholders.
pub fn render(template: &str, listen: u16, run_dir: &Path, static_root: &Path, upstreams: &Upstreams) -> String {
    let servers = |ports: &[u16]| {
        ports.iter().map(|p| format!("        server 127.0.0.1:{p} max_fails=0;")).collect::<Vec<_>>().join("\n")
    };
    template
        .replace("@LISTEN@", &format!("127.0.0.1:{listen}"))
        .replace("@RUN_DIR@", &run_dir.display().to_string())
        .replace("@STATIC_ROOT@", &static_root.display().to_string())
        .replace("@AUTH_SERVERS@", &servers(&upstreams.auth))
        .replace("@OTP_SERVERS@", &servers(&upstreams.otp))
        .replace("@BALLOT_SERVERS@", &servers(&upstreams.ballot))
        .replace("@LOGIN_RATE@", &upstreams.login_rate.to_string())
        .replace("@LOGIN_BURST@", &(upstreams.login_rate * 4).to_string())
        .replace("@TLS@", &tls_lines(upstreams.tls.as_ref()))
}

fn tls_lines(tls: Option<&(u16, std::path::PathBuf, std::path::PathBuf)>) -> String {
    match tls {
        None => String::new(),
        Some((port, cert, key)) => format!(
            "        listen 127.0.0.1:{port} ssl;\n        ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_protocols TLSv1.2 TLSv1.3;",
            cert.display(),
            key.display()
        ),
    }
}

pub struct Nginx {
    pub port: u16,
    _process: Supervised,
}

impl Nginx {
    pub fn start(run_dir: &Path, repo_root: &Path, port: u16, upstreams: &Upstreams) -> anyhow::Result<Self> {
        require("/usr/sbin/nginx", "nginx-light")?;
        let dir = run_dir.join("nginx");
        std::fs::create_dir_all(&dir)?;
        let template = std::fs::read_to_string(repo_root.join("nginx/turnout.conf.template"))?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, render(&template, port, &dir, &repo_root.join("frontend/static"), upstreams))?;
        let check = Command::new("/usr/sbin/nginx")
            .arg("-t")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .output()?;
        if !check.status.success() {
            anyhow::bail!("nginx rejected its config: {}", String::from_utf8_lossy(&check.stderr));
        }
        let mut cmd = Command::new("/usr/sbin/nginx");
        cmd.arg("-p").arg(&dir).arg("-c").arg(&conf).arg("-e").arg(dir.join("nginx-error.log"));
        let log = dir.join("nginx-stdout.log");
        let mut process = Supervised::spawn("nginx", cmd, &log)?;
        process.wait_listening(port, &log, Duration::from_secs(10))?;
        Ok(Self { port, _process: process })
    }
}
