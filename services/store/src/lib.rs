//! The Store port: the domain operations every service needs, each atomic in its
//! adapter's native way. One role trait per aggregate; `Store` is all of them, for the
//! places that need a whole store. Services never see SQL or BSON.
//!
//! Layout (each aggregate file holds its values, its errors and its trait):
//! - `elections`: definitions, validation, the console's changes (`Elections`);
//! - `contests`: each contest's kind, seats, counting rule, RON and constituency, and a
//!   voter's vote in it;
//! - `roll`: the voter roll (`Roll`);
//! - `sign_in`: the throttle's rule and sign-outs (`SignIn`);
//! - `ballot_box`: casting, receipts, turnout, the tally (`BallotBox`);
//! - `codes`: one-time code state (`Codes`);
//! - `outbox`: the mail outbox (`Outbox`);
//! - `nominations`: students' nominations, their versions, proposers and the admin's
//!   decision; candidates' photos (`Nominations`);
//! - `notices`: staff mail that is not a code, queued once per key (`Notices`);
//! - `staff`: the address each admin and officer last signed in with (`StaffContacts`);
//! - `senders`: the sender-account pool (`Senders`);
//! - `audit`: the keyed hash-chained audit log and its head (`Audit`);
//! - `imports`: resumable roll imports (`Imports`);
//! - `upgrades`: the one-time upgrades that need the keys, the operator's to run
//!   (`Upgrades`);
//! - `activity`: the dashboard's counts, service status, ping (`ActivityLog`);
//! - `error`: `StoreError` and `InvalidField`, which every aggregate shares;
//! - `rules`: what both adapters compute the same way (times, the outbox cut, send plan);
//! - `seal`: the keys only the server holds: ballots sealed at rest, the audit chain's
//!   keyed hash (`StoreKeys`);
//! - `conformance` (feature `conformance`): the suite every adapter runs.
//!
//! Adapters: `turnout-store-sqlite` (default) and `turnout-store-mongo`; core's
//! `store::open` picks one from the settings.

pub mod activity;
pub mod audit;
pub mod ballot_box;
pub mod codes;
pub mod contests;
pub mod elections;
pub mod error;
pub mod imports;
pub mod nominations;
pub mod notices;
pub mod outbox;
pub mod roll;
pub mod rules;
pub mod seal;
pub mod senders;
pub mod sign_in;
pub mod staff;
pub mod upgrades;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use activity::*;
pub use audit::*;
pub use ballot_box::*;
pub use codes::*;
pub use contests::*;
pub use elections::*;
pub use error::*;
pub use imports::*;
pub use nominations::*;
pub use notices::*;
pub use outbox::*;
pub use roll::*;
pub use seal::{SealError, StoreKeys};
pub use senders::*;
pub use sign_in::{Admission, AttemptOutcome, SignIn, SignInKeys, ThrottleRules, ThrottledBy};
pub use staff::*;
pub use upgrades::{KEYED_ERA_ACTIONS, Upgrades};

/// Most lines a page of any console list holds.
pub const MAX_PAGE: u32 = 500;

/// A whole store: every role. Services name the roles they use; `Arc<dyn Store>` is for
/// the places that hand a store on (opening, the application builders).
pub trait Store:
    Elections
    + Roll
    + SignIn
    + BallotBox
    + Codes
    + Outbox
    + Notices
    + Nominations
    + Senders
    + StaffContacts
    + Audit
    + Imports
    + ActivityLog
    + Upgrades
    + 'static
{
}

impl<T> Store for T where
    T: Elections
        + Roll
        + SignIn
        + BallotBox
        + Codes
        + Outbox
        + Notices
        + Nominations
        + Senders
        + StaffContacts
        + Audit
        + Imports
        + ActivityLog
        + Upgrades
        + 'static
{
}
