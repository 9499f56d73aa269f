//! A real OpenLDAP `slapd` in a temp dir on a loopback port, seeded with generated
//! students (uid `student00001`.., password `vote-00001`.., a `mail` attribute), a
//! student without mail, one whose uid is stored in mixed case, and a service account
//! for search-then-bind.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use sha1::{Digest, Sha1};

use crate::process::{Supervised, free_port, require};

pub const BASE_DN: &str = "dc=turnout,dc=test";
pub const PEOPLE_DN: &str = "ou=people,dc=turnout,dc=test";
pub const BIND_TEMPLATE: &str = "uid={username},ou=people,dc=turnout,dc=test";
pub const SERVICE_DN: &str = "cn=turnout,ou=services,dc=turnout,dc=test";
pub const SERVICE_PASSWORD: &str = "service-secret";
pub const MAIL_DOMAIN: &str = "students.turnout.test";
/// An account whose uid the directory stores in mixed case (its mail is lower case).
pub const MIXED_CASE_UID: &str = "Mixed.Case";
pub const MIXED_CASE_PASSWORD: &str = "vote-mixed";
pub const GROUPS_DN: &str = "ou=groups,dc=turnout,dc=test";
pub const ADMIN_GROUP: &str = "cn=admins,ou=groups,dc=turnout,dc=test";
pub const OFFICER_GROUP: &str = "cn=officers,ou=groups,dc=turnout,dc=test";
/// Students 2, 12, 22, ... are physics students: in this group, with departmentNumber PHYS.
pub const PHYSICS_GROUP: &str = "cn=physics,ou=groups,dc=turnout,dc=test";

pub fn is_physics(n: u32) -> bool {
    n % 10 == 2
}

pub fn student_uid(n: u32) -> String {
    format!("student{n:05}")
}
pub fn student_password(n: u32) -> String {
    format!("vote-{n:05}")
}
pub fn student_email(n: u32) -> String {
    format!("{}@{MAIL_DOMAIN}", student_uid(n))
}

/// `{SSHA}` as slapd checks it: base64(sha1(password + salt) + salt).
fn ssha(password: &str) -> String {
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).expect("OS random source");
    let mut h = Sha1::new();
    h.update(password.as_bytes());
    h.update(salt);
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(&salt);
    format!("{{SSHA}}{}", base64::engine::general_purpose::STANDARD.encode(raw))
}

fn seed_ldif(students: u32) -> String {
    let mut out = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: turnout\no: Turnout Test University\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=services,{BASE_DN}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: turnout\nuserPassword: {}\n\n\
         dn: uid=nomail,{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: nomail\ncn: No Mail\nsn: Mail\nuserPassword: {}\n\n\
         dn: uid={MIXED_CASE_UID},{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: {MIXED_CASE_UID}\ncn: Mixed Case\nsn: Case\nmail: mixed.case@{MAIL_DOMAIN}\nuserPassword: {}\n\n\
         dn: uid=admin1,{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: admin1\ncn: Admin One\nsn: One\nmail: admin1@staff.turnout.test\nuserPassword: {}\n\n\
         dn: uid=officer1,{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: officer1\ncn: Officer One\nsn: One\nmail: officer1@staff.turnout.test\nuserPassword: {}\n\n\
         dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {ADMIN_GROUP}\nobjectClass: groupOfNames\ncn: admins\nmember: uid=admin1,{PEOPLE_DN}\n\n\
         dn: {OFFICER_GROUP}\nobjectClass: groupOfNames\ncn: officers\nmember: uid=officer1,{PEOPLE_DN}\n\n",
        ssha(SERVICE_PASSWORD),
        ssha("vote-nomail"),
        ssha(MIXED_CASE_PASSWORD),
        ssha("vote-admin1"),
        ssha("vote-officer1"),
    );
    let physics: Vec<String> = (1..=students)
        .filter(|n| is_physics(*n))
        .map(|n| format!("member: uid={},{PEOPLE_DN}", student_uid(n)))
        .collect();
    if !physics.is_empty() {
        let _ = write!(out, "dn: {PHYSICS_GROUP}\nobjectClass: groupOfNames\ncn: physics\n{}\n\n", physics.join("\n"));
    }
    for n in 1..=students {
        let _ = write!(
            out,
            "dn: uid={uid},{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Student {n:05}\nsn: {n:05}\n\
             mail: {mail}\ndepartmentNumber: {dept}\nuserPassword: {pw}\n\n",
            dept = if is_physics(n) { "PHYS" } else { "GEN" },
            uid = student_uid(n),
            mail = student_email(n),
            pw = ssha(&student_password(n)),
        );
    }
    out
}

/// Certificate files for a directory that offers StartTLS.
pub struct DirectoryTls<'a> {
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// Who may read what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every signed-in account reads everything (but passwords).
    Open,
    /// As on a locked-down campus: only the service account reads `ou=groups`; to
    /// anyone else the groups do not exist.
    Campus,
}

fn config(dir: &Path, tls: Option<&DirectoryTls<'_>>, access: Access) -> String {
    let d = dir.display();
    let tls = tls
        .map(|t| {
            format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            )
        })
        .unwrap_or_default();
    format!(
        "{tls}include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/nis.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         pidfile {d}/slapd.pid\n\
         argsfile {d}/slapd.args\n\
         threads 16\n\
         database mdb\n\
         maxsize 268435456\n\
         suffix \"{BASE_DN}\"\n\
         rootdn \"cn=admin,{BASE_DN}\"\n\
         directory {d}/data\n\
         index objectClass eq\n\
         index uid eq\n\
         index member,uniqueMember,memberUid eq\n\
         access to attrs=userPassword by anonymous auth by self write by * none\n\
         {groups_acl}\
         access to * by users read by * none\n\
         database monitor\n\
         access to * by * read\n",
        groups_acl = match access {
            Access::Open => String::new(),
            Access::Campus =>
                format!("access to dn.subtree=\"{GROUPS_DN}\" by dn.exact=\"{SERVICE_DN}\" read by * none\n"),
        },
    )
}

pub struct Slapd {
    pub port: u16,
    pub dir: PathBuf,
    process: Supervised,
}

impl Slapd {
    /// slapd's process id (to pin it to a CPU, say).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Seeds `students` entries with `slapadd` (offline, fast) and starts slapd.
    pub fn start(dir: &Path, students: u32) -> anyhow::Result<Self> {
        Self::launch(dir, students, None, Access::Open)
    }

    /// A directory that offers StartTLS with this certificate.
    pub fn start_tls(dir: &Path, students: u32, tls: &DirectoryTls<'_>) -> anyhow::Result<Self> {
        Self::launch(dir, students, Some(tls), Access::Open)
    }

    /// A directory with `access` rules.
    pub fn start_with(dir: &Path, students: u32, access: Access) -> anyhow::Result<Self> {
        Self::launch(dir, students, None, access)
    }

    fn launch(dir: &Path, students: u32, tls: Option<&DirectoryTls<'_>>, access: Access) -> anyhow::Result<Self> {
        require("/usr/sbin/slapd", "slapd ldap-utils")?;
        let dir = dir.join("slapd");
        std::fs::create_dir_all(dir.join("data"))?;
        std::fs::write(dir.join("slapd.conf"), config(&dir, tls, access))?;
        std::fs::write(dir.join("seed.ldif"), seed_ldif(students))?;
        let out = Command::new("/usr/sbin/slapadd")
            .args(["-q", "-f"])
            .arg(dir.join("slapd.conf"))
            .arg("-l")
            .arg(dir.join("seed.ldif"))
            .output()
            .context("running slapadd")?;
        if !out.status.success() {
            anyhow::bail!("slapadd failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        // A port can be taken between `free_port` and slapd's bind (by another test
        // process, say); slapd then exits, and it tries again on another port.
        const TRIES: u32 = 3;
        for attempt in 1..=TRIES {
            let port = free_port();
            let mut process = Self::spawn(&dir, port)?;
            match process.wait_listening(port, &dir.join("slapd.log"), Duration::from_secs(15)) {
                Ok(()) => return Ok(Self { port, dir, process }),
                Err(e) if attempt == TRIES || !process.has_exited() => return Err(e),
                Err(e) => eprintln!("slapd did not get port {port}, trying another: {e:#}"),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn spawn(dir: &Path, port: u16) -> anyhow::Result<Supervised> {
        let mut cmd = Command::new("/usr/sbin/slapd");
        cmd.arg("-f").arg(dir.join("slapd.conf")).arg("-h").arg(format!("ldap://127.0.0.1:{port}/")).args(["-d", "0"]);
        Supervised::spawn("slapd", cmd, &dir.join("slapd.log"))
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Stops the directory (to test an outage); `restart` brings it back on the same port.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Hangs slapd with its sockets open (SIGSTOP): it accepts connections and answers
    /// nothing. Returns once every one of its threads has stopped, so no request sent
    /// afterwards can still be answered.
    pub fn hang(&self) -> anyhow::Result<()> {
        self.process.signal(libc::SIGSTOP);
        self.process.wait_stopped(Duration::from_secs(5))
    }

    /// Resumes a hung slapd (SIGCONT).
    pub fn resume(&self) {
        self.process.signal(libc::SIGCONT);
    }

    /// Connections slapd has established on its port right now (from `ss`).
    pub fn established_connections(&self) -> usize {
        let out = std::process::Command::new("ss")
            .args(["-Htn", "state", "established", &format!("( sport = :{} )", self.port)])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).lines().filter(|l| !l.trim().is_empty()).count()).unwrap_or(0)
    }

    /// Operations slapd has completed so far, from its monitor backend: `(binds,
    /// searches)`. Reading them is itself an anonymous bind and a search, so compare
    /// differences against a baseline taken the same way.
    pub fn operations(&self) -> anyhow::Result<(u64, u64)> {
        let out = Command::new("/usr/bin/ldapsearch")
            .args(["-x", "-LLL", "-H", &self.url(), "-b", "cn=Operations,cn=Monitor", "-s", "one"])
            .args(["(|(cn=Bind)(cn=Search))", "monitorOpCompleted"])
            .output()
            .context("running ldapsearch")?;
        if !out.status.success() {
            anyhow::bail!("ldapsearch on cn=Monitor failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let (mut binds, mut searches) = (None, None);
        let mut current = "";
        for line in text.lines() {
            if let Some(dn) = line.strip_prefix("dn: ") {
                current = if dn.starts_with("cn=Bind,") { "bind" } else { "search" };
            } else if let Some(n) = line.strip_prefix("monitorOpCompleted: ") {
                let n: u64 = n.trim().parse()?;
                if current == "bind" { binds = Some(n) } else { searches = Some(n) }
            }
        }
        Ok((binds.context("no bind counter")?, searches.context("no search counter")?))
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.stop();
        self.process = Self::spawn(&self.dir, self.port)?;
        self.process.wait_listening(self.port, &self.dir.join("slapd.log"), Duration::from_secs(15))
    }
}
