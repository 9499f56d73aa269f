//! The receipt check's proof after close + grace: the path from a receipt to the
//! receipts root (`turnout_core::receipts_root`), the root written to the audit log and
//! shown with the results, so a voter can check the box everyone recounts holds their
//! ballot. The tree of each closed election is built once (its box is final) and kept for
//! the checks that follow; a few elections' trees at most.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::Mutex;
use turnout_core::console::results_from;
use turnout_core::domain::{ElectionId, Receipt};
use turnout_core::receipts_root::{ReceiptProof, ReceiptTree};
use turnout_core::store::{BallotBox, Election, StoreError};

/// Closed elections whose trees are kept at once (each is 32 bytes a receipt a level).
const KEPT: usize = 8;

#[derive(Default)]
pub struct ReceiptProofs {
    trees: Mutex<HashMap<ElectionId, Arc<ReceiptTree>>>,
}

impl ReceiptProofs {
    /// The receipt's proof, once the election's results are out; `None` before then or
    /// for a receipt not in the box.
    pub async fn proof(
        &self,
        store: &(impl BallotBox + ?Sized),
        election: &Election,
        receipt: &Receipt,
        now: Timestamp,
    ) -> Result<Option<ReceiptProof>, StoreError> {
        if now < results_from(election) {
            return Ok(None);
        }
        let tree = {
            // Held while a tree is built, so a burst of checks builds it once.
            let mut trees = self.trees.lock().await;
            match trees.get(&election.id) {
                Some(tree) => tree.clone(),
                None => {
                    let contents = store.box_contents(&election.id).await?;
                    let tree = Arc::new(ReceiptTree::new(&contents.receipts));
                    if trees.len() >= KEPT {
                        let evict = trees.keys().next().cloned();
                        evict.map(|k| trees.remove(&k));
                    }
                    trees.insert(election.id.clone(), tree.clone());
                    tree
                }
            }
        };
        Ok(tree.proof(receipt))
    }
}
