//! Turnout's shared library: what every service needs and nothing HTTP-specific.
//!
//! Layout:
//! - `config`: typed settings from `TURNOUT_*` variables;
//! - `console`: the officers' and admins' moves (extend, close, widen, results, dashboard);
//! - `telemetry`: JSON logs via `tracing`;
//! - `error`: the one error body and its stable code table;
//! - `domain`: parsed values (`Username`, `OtpCode`, `ElectionId`, `Receipt`, ...);
//! - `session`: the signed session token the services share;
//! - `sign_outs`: the accounts that signed out lately, so every service ends their sessions;
//! - `schedule`: the election window and its server-side checks;
//! - `store`: the Store port, its SQLite and MongoDB adapters, and the rules both share;
//! - `metrics`: Prometheus registry and the bounded label sets;
//! - `keys`: per-purpose keys derived from the root secret;
//! - `http` (feature `http`): actix-web glue for the service crates.

pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod schedule;
pub mod session;
pub mod sign_outs;
pub mod store;
pub mod telemetry;

#[cfg(feature = "http")]
pub mod http;

pub use config::Settings;
pub use error::{ApiError, ErrorCode};
