//! The auth service against a real slapd, booted in-process on port 0.

mod campus;
mod directory;
mod eligibility;
mod helpers;
mod identity;
mod login;
mod throttle;
