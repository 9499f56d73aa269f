//! The audit chain and its anchored head.

use std::sync::Arc;

use jiff::Timestamp;

use super::{audit, demo_election};
use crate::{AuditHead, AuditVerification, Store};

pub async fn the_audit_chain_verifies(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    assert_eq!(
        store.verify_audit(None).await.unwrap(),
        AuditVerification { entries: 0, head: None, broken_at: None, problem: None }
    );
    assert_eq!(store.audit_head().await.unwrap(), None);
    for i in 0..5 {
        let mut a = audit("extend", &e);
        a.detail = serde_json::json!({ "n": i });
        store.append_audit(&a, Timestamp::now()).await.unwrap();
    }
    let v = store.verify_audit(None).await.unwrap();
    assert_eq!((v.entries, v.broken_at), (5, None));
    let head = store.audit_head().await.unwrap().expect("a head");
    assert_eq!(v.head.as_ref(), Some(&head));
    assert_eq!(head.seq, 5);
    let page = store.list_audit(2, 2).await.unwrap();
    assert_eq!(page.iter().map(|a| a.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(page[0].detail["n"], 2);
    assert_eq!(store.list_audit(4, 1).await.unwrap()[0].hash, head.hash);
}

/// A head noted outside the database (the dashboard, the log, the officers' mail) pins
/// the chain: it verifies while the chain still reaches it, whatever came after, and a
/// head the chain no longer reaches, or reaches with another hash, is a break.
pub async fn the_chain_must_reach_an_anchored_head(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    for _ in 0..3 {
        store.append_audit(&audit("extend", &e), Timestamp::now()).await.unwrap();
    }
    let anchored = store.audit_head().await.unwrap().unwrap();
    store.append_audit(&audit("close", &e), Timestamp::now()).await.unwrap();
    let v = store.verify_audit(Some(&anchored)).await.unwrap();
    assert_eq!((v.entries, v.broken_at), (4, None), "{v:?}");

    let beyond = AuditHead { seq: 9, hash: anchored.hash.clone() };
    let v = store.verify_audit(Some(&beyond)).await.unwrap();
    assert_eq!(v.broken_at, Some(5), "{v:?}");
    assert!(v.problem.unwrap().contains("anchored head is entry 9"));

    let rewritten = AuditHead { seq: anchored.seq, hash: "0".repeat(64) };
    let v = store.verify_audit(Some(&rewritten)).await.unwrap();
    assert_eq!(v.broken_at, Some(3), "{v:?}");
    assert!(v.problem.unwrap().contains("not the anchored one"));
}
