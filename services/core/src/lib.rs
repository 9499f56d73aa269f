//! Turnout's shared library: what every service needs and nothing HTTP-specific.
//!
//! Layout:
//! - `config`: typed settings from `TURNOUT_*` variables;
//! - `console`: the officers' and admins' moves (extend, close, widen, results, dashboard);
//! - `telemetry`: JSON logs via `tracing`;
//! - `error`: the one error body and its stable code table;
//! - `domain`: parsed values (`Username`, `OtpCode`, `ElectionId`, `Receipt`, ...);
//! - `session`: the signed session token the services share;
//! - `schedule`: the election window and its server-side checks;
//! - `store`: the Store port and its SQLite adapter;
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
pub mod store;
pub mod telemetry;

#[cfg(feature = "http")]
pub mod http;

pub use config::Settings;
pub use error::{ApiError, ErrorCode};
