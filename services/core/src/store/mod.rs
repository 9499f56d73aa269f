//! The store as services see it: the port (`turnout_store`, re-exported here whole), the
//! adapter the settings choose (`open`), and what the HTTP edge needs on top of it (the
//! unknown-election answer, the hot-path election cache). Adapters are cargo features:
//! `sqlite` (default, `turnout_store_sqlite`) and `mongodb` (`turnout_store_mongo`,
//! as `store::mongo`), so a service built without MongoDB compiles no MongoDB driver.
//!
//! Layout: `mod.rs` (this: re-exports, `open`, `election_or_404`); `cache` (`ElectionCache`).

mod cache;

use std::sync::Arc;

pub use turnout_store::*;
#[cfg(feature = "mongodb")]
pub use turnout_store_mongo as mongo;
#[cfg(feature = "sqlite")]
pub use turnout_store_sqlite::SqliteStore;

pub use cache::ElectionCache;

use crate::config::StoreChoice;
use crate::domain::ElectionId;
use crate::error::{ApiError, ErrorCode};

/// The store the settings choose (`TURNOUT_STORE`), opened and ready: SQLite by default,
/// MongoDB when asked for. A store this binary was built without is refused by name, and
/// so is one that needs a one-time upgrade (`Upgrades`): the operator runs
/// `turnout-ballot upgrade` first.
pub async fn open(settings: &crate::Settings) -> Result<Arc<dyn Store>, StoreError> {
    let store = open_for_tools(settings).await?;
    let due = store.pending_upgrades().await?;
    if !due.is_empty() {
        return Err(StoreError::Other(anyhow::anyhow!(
            "the store needs a one-time upgrade ({}): stop every service and run `turnout-ballot upgrade` once",
            due.join("; ")
        )));
    }
    Ok(store)
}

/// The store opened whether or not an upgrade is due: for the commands that run it or
/// check the store (`upgrade`, `verify-audit`, `verify-box --election`).
pub async fn open_for_tools(settings: &crate::Settings) -> Result<Arc<dyn Store>, StoreError> {
    let keys = store_keys(settings);
    match &settings.store {
        StoreChoice::Sqlite => open_sqlite(settings, keys).await,
        StoreChoice::MongoDb { uri, min_pool, max_pool, op_timeout } => {
            open_mongodb(uri, *min_pool, *max_pool, *op_timeout, keys).await
        }
    }
}

/// The store's keys, derived from the root secret: the ballot seal and the audit chain's
/// hash. Every service derives the same ones; none is ever written to the database.
pub fn store_keys(settings: &crate::Settings) -> StoreKeys {
    StoreKeys::new(settings.derive_key("ballot-seal-v1", &[]), settings.derive_key("audit-chain-v1", &[]))
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(settings: &crate::Settings, keys: StoreKeys) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqliteStore::open(&settings.database, keys).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_: &crate::Settings, _: StoreKeys) -> Result<Arc<dyn Store>, StoreError> {
    Err(not_built_in("sqlite"))
}

#[cfg(feature = "mongodb")]
async fn open_mongodb(
    uri: &secrecy::SecretString,
    min_pool: u32,
    max_pool: u32,
    op_timeout: std::time::Duration,
    keys: StoreKeys,
) -> Result<Arc<dyn Store>, StoreError> {
    use secrecy::ExposeSecret;
    let mut m = mongo::MongoSettings::new(uri.expose_secret());
    (m.min_pool_size, m.max_pool_size, m.op_timeout) = (min_pool, max_pool, op_timeout);
    Ok(Arc::new(mongo::MongoStore::open(&m, keys).await?))
}

#[cfg(not(feature = "mongodb"))]
async fn open_mongodb(
    _: &secrecy::SecretString,
    _: u32,
    _: u32,
    _: std::time::Duration,
    _: StoreKeys,
) -> Result<Arc<dyn Store>, StoreError> {
    Err(not_built_in("mongodb"))
}

#[cfg(not(all(feature = "sqlite", feature = "mongodb")))]
fn not_built_in(store: &str) -> StoreError {
    StoreError::Other(anyhow::anyhow!(
        "TURNOUT_STORE={store}, but this binary was built without that store: build it with `--features {store}`"
    ))
}

/// The election named in a URL, or the one "unknown election" error (also for ids that
/// can't be election ids, so probing reveals nothing).
pub async fn election_or_404(store: &dyn Elections, raw: &str) -> Result<Election, ApiError> {
    let unknown = || ApiError::new(ErrorCode::UnknownElection, format!("There is no election called {raw:?}."));
    let id = ElectionId::parse(raw).map_err(|_| unknown())?;
    store.election(&id).await?.ok_or_else(unknown)
}

#[cfg(all(test, not(feature = "mongodb")))]
mod tests {
    #[tokio::test]
    async fn a_store_left_out_of_the_build_is_refused_by_name() {
        let mut settings = crate::Settings::for_tests(&[]);
        settings.store = crate::config::StoreChoice::MongoDb {
            uri: "mongodb://127.0.0.1:1/turnout".to_owned().into(),
            min_pool: 0,
            max_pool: 1,
            op_timeout: std::time::Duration::from_secs(1),
        };
        let err = super::open(&settings).await.err().expect("refused");
        assert!(err.to_string().contains("built without that store"), "{err}");
    }
}
