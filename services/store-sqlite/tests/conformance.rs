//! The port's conformance suite (`turnout_store::conformance`) on SQLite: every rule, each
//! on a fresh database file of its own.

use std::sync::Arc;

use turnout_store::conformance::Harness;
use turnout_store::{Store, StoreKeys};
use turnout_store_sqlite::SqliteStore;

/// A fresh store in its own temp dir, removed with the harness.
struct Fresh {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Harness for Fresh {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn finish(self) {}
}

async fn fresh(_test: &'static str) -> Option<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("turnout.db"), StoreKeys::for_tests()).await.unwrap();
    Some(Fresh { store: Arc::new(store), _dir: dir })
}

turnout_store::conformance_tests!(fresh);
