use std::sync::Arc;

use anyhow::Context;
use turnout_core::Settings;
use turnout_core::store::SqliteStore;
use turnout_otp::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    turnout_core::telemetry::init("otp");
    let settings = Settings::from_env()?;
    let store = SqliteStore::open(&settings.database).await.context("opening the store")?;
    let app = Application::build(&settings, Arc::new(store))?;
    tracing::info!(event = "listening", port = app.port());
    app.run_until_stopped().await.context("otp server")
}
