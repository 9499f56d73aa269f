//! The audit chain.

use std::sync::Arc;

use jiff::Timestamp;

use super::{audit, demo_election};
use crate::{AuditVerification, Store};

pub async fn the_audit_chain_verifies(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    assert_eq!(store.verify_audit().await.unwrap(), AuditVerification { entries: 0, broken_at: None, problem: None });
    for i in 0..5 {
        let mut a = audit("extend", &e);
        a.detail = serde_json::json!({ "n": i });
        store.append_audit(&a, Timestamp::now()).await.unwrap();
    }
    let v = store.verify_audit().await.unwrap();
    assert_eq!((v.entries, v.broken_at), (5, None));
    let page = store.list_audit(2, 2).await.unwrap();
    assert_eq!(page.iter().map(|a| a.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(page[0].detail["n"], 2);
}
