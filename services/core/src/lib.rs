//! Turnout's shared library: what every service needs and nothing HTTP-specific.
//!
//! Layout:
//! - `config`: typed settings from `TURNOUT_*` variables;
//! - `console`: the officers' and admins' moves (extend, close, widen, dashboard);
//! - `results`: each contest counted by its rule after close, with its sheet and export;
//! - `merkle`: the RFC 6962 Merkle tree (root, audit path, its check) the published roots use;
//! - `box_export`: the whole box as one canonical file, its ballots root, and its reader
//!   (what `turnout-ballot verify-box` checks and recounts);
//! - `receipts_root`: the receipts root published at close, and a receipt's proof in it;
//! - `anchor`: the audit head (and, at close, the box's roots) mailed to the officers at
//!   opening, each window change and the seal, as notices below codes;
//! - `box_record`: what the audit log records about a box (running counts while open, the
//!   roots at close + grace) and the check of a box against it (`verify-box --election`);
//! - `telemetry`: JSON logs via `tracing`;
//! - `error`: the one error body, its stable code table, and the store's and domain's
//!   refusals turned into it;
//! - `domain`, `schedule`: re-exported from `turnout_domain` (parsed values such as
//!   `Username`, `ElectionId`, `Receipt`; the election window and its checks);
//! - `session`: the signed session token the services share;
//! - `sign_outs`: the accounts that signed out lately, so every service ends their sessions;
//! - `store`: the port (`turnout_store`, re-exported), `open` for the adapter the settings
//!   choose (cargo features `sqlite`, default, and `mongodb`), the election cache;
//! - `metrics`: Prometheus registry and the bounded label sets;
//! - `keys`: per-purpose keys derived from the root secret;
//! - `http` (feature `http`): actix-web glue for the service crates.

pub mod anchor;
pub mod box_export;
pub mod box_record;
pub mod config;
pub mod console;
pub mod error;
pub mod keys;
pub mod merkle;
pub mod metrics;
pub mod receipts_root;
pub mod results;
pub mod session;
pub mod sign_outs;
pub mod store;
pub mod telemetry;

#[cfg(feature = "http")]
pub mod http;

pub use turnout_domain as domain;
pub use turnout_domain::schedule;

pub use config::Settings;
pub use error::{ApiError, ErrorCode};
