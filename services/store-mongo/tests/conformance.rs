//! The Store port's conformance suite (`turnout_store::conformance`) against MongoDB: every
//! rule on a database of its own, dropped once the rule passed. Runs when
//! `TURNOUT_TEST_MONGODB_URI` is set (`scripts/test.sh` starts a SecantusDB server for
//! it); otherwise each test prints a SKIP line naming the variable.

use std::sync::Arc;

use turnout_store::Store;
use turnout_store::conformance::Harness;

#[path = "support/mongo.rs"]
mod support;

/// One rule's store, with its turn on the server; `finish` drops its database.
struct Mongo(support::Fresh);

impl Harness for Mongo {
    fn store(&self) -> Arc<dyn Store> {
        let store: Arc<turnout_store_mongo::MongoStore> = Arc::clone(&self.0);
        store
    }

    async fn finish(self) {
        support::drop_db(&self.0).await;
    }
}

async fn fresh(test: &'static str) -> Option<Mongo> {
    support::fresh(test).await.map(Mongo)
}

turnout_store::conformance_tests!(fresh);
