//! A MongoDB store on a database of its own for one test, from `TURNOUT_TEST_MONGODB_URI`
//! (`scripts/test.sh` starts a SecantusDB server for it; set it to a MongoDB replica set
//! to test against MongoDB itself). Without the variable: a SKIP line and `None`.
//!
//! The tests of one binary take turns on the server (a test holds its turn until it
//! ends): SecantusDB is a Python server, and two 1,000-transaction bursts at once would
//! test its speed, not Turnout's rules.

use std::sync::{Arc, LazyLock};

use turnout_store_mongo::{MongoSettings, MongoStore, uri_with_database};

pub const VAR: &str = "TURNOUT_TEST_MONGODB_URI";

static TURN: LazyLock<Arc<tokio::sync::Mutex<()>>> = LazyLock::new(Default::default);

/// A test's store, and its turn on the server.
pub struct Fresh {
    store: Arc<MongoStore>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for Fresh {
    type Target = Arc<MongoStore>;
    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

pub async fn fresh(test: &str) -> Option<Fresh> {
    let Ok(base) = std::env::var(VAR) else {
        println!(
            "SKIP {test}: set {VAR} to a MongoDB replica set (or run scripts/test.sh) to test the MongoDB adapter"
        );
        return None;
    };
    let mut name = [0u8; 6];
    getrandom::fill(&mut name).unwrap();
    let db: String = format!("turnout_test_{}", name.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let uri = uri_with_database(&base, &db).expect("a mongodb:// URI");
    // SecantusDB is a Python server, far slower than mongod: about 15 ms a transaction,
    // so the last of 2,000 concurrent casts waits ~30 s for its turn on a fresh server.
    // These tests check the rules, not latency: each operation gets 5 minutes here
    // rather than the production 5 s.
    let mut settings = MongoSettings::new(uri);
    settings.op_timeout = std::time::Duration::from_secs(300);
    // Few connections: the Python server does better serving 8 at once than 64.
    (settings.min_pool_size, settings.max_pool_size, settings.max_connecting) = (0, 8, 4);
    let turn = TURN.clone().lock_owned().await;
    let store = Arc::new(
        MongoStore::open(&settings, turnout_store::StoreKeys::for_tests()).await.expect("the MongoDB adapter opens"),
    );
    Some(Fresh { store, _turn: turn })
}

pub async fn drop_db(store: &MongoStore) {
    store.database().drop().await.unwrap();
}
