//! One-time upgrades that need the server's keys (sealing ballots cast before sealing,
//! keying an audit chain written before keying). They are the operator's to run, once,
//! with the services stopped (`turnout-ballot upgrade`): never run by a service as it
//! opens the store, because everything that says "an upgrade is due" is in the database,
//! where a database-only writer could fake it to have forged ballots sealed, or an edited
//! chain keyed, with the real key. A service refuses to start while one is due.
//!
//! Each upgrade refuses what only a database edit could produce: plaintext ballots for an
//! election whose box the audit log already records (`box.*` entries, which only sealed
//! versions write), and an unkeyed chain holding entries only keyed versions write, or
//! one that already verifies with the key.

use async_trait::async_trait;

use crate::StoreError;

/// Actions only a version with sealed ballots and a keyed chain writes: an "unkeyed"
/// chain or an election's plaintext ballots beside any of them is a database edit.
pub const KEYED_ERA_ACTIONS: [&str; 3] = ["audit.chain_keyed", "box.counted", "box.sealed"];

#[async_trait]
pub trait Upgrades: Send + Sync {
    /// What is due, in words (empty when nothing is).
    async fn pending_upgrades(&self) -> Result<Vec<String>, StoreError>;

    /// Runs what is due, each step in one transaction, and says what it did. Refuses (an
    /// error naming why) what only a database edit could have produced.
    async fn run_upgrades(&self) -> Result<Vec<String>, StoreError>;
}
