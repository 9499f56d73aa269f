//! The local stack, for the start script and the tests: a real slapd seeded with
//! students, the SMTP mail sink, the three services as separate processes sharing one
//! SQLite file, and nginx in front, all on free loopback ports in one directory.
//!
//! Layout:
//! - `process`: children that stop when dropped, free ports, prerequisite checks;
//! - `slapd`: the seeded directory;
//! - `mailsink`: the sink and its HTTP client;
//! - `nginx`: the rendered config and the server;
//! - `tls`: a private CA and a `localhost` certificate for the HTTPS tests;
//! - `stack`: everything together, plus the demo election.

pub mod mailsink;
pub mod nginx;
pub mod process;
pub mod slapd;
pub mod stack;
pub mod tls;

pub use mailsink::{AccountRecord, MailSink, SinkAccount, SinkMessage, TurnoutAccount, unix_now};
pub use slapd::Slapd;
pub use stack::{Stack, StackOptions};

use std::path::PathBuf;

/// The repository root (where `scripts/`, `nginx/` and `frontend/` live).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.join("../..").canonicalize().unwrap_or(here)
}
