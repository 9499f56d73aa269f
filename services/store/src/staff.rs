//! Staff contacts: the address each admin and officer last signed in with, so notices
//! (the audit chain's head) can reach the officers. Roles come from the directory or the
//! role lists at sign-in; the store only remembers what the last sign-in said.

use async_trait::async_trait;
use jiff::Timestamp;

use turnout_domain::{Username, VoterEmail};

use crate::StoreError;

/// Most contacts `staff_contacts` returns: staff are a handful of people, and a store
/// someone filled with rows must not turn one notice into thousands of mails.
pub const MAX_STAFF_CONTACTS: u32 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffContact {
    pub username: Username,
    pub email: VoterEmail,
    pub admin: bool,
    pub officer: bool,
    pub seen_at: Timestamp,
}

#[async_trait]
pub trait StaffContacts: Send + Sync {
    /// Records (or replaces) the account's contact as its latest sign-in saw it. A
    /// sign-in without either role removes the account: it no longer gets staff mail.
    async fn record_staff_contact(&self, contact: &StaffContact) -> Result<(), StoreError>;

    /// Officers seen at or after `since`, most recently seen first, at most
    /// `MAX_STAFF_CONTACTS`.
    async fn officer_contacts(&self, since: Timestamp) -> Result<Vec<StaffContact>, StoreError>;
}
