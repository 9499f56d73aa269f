use anyhow::Context;
use turnout_auth::Application;
use turnout_core::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _logs = turnout_core::telemetry::init("auth");
    let settings = Settings::from_env()?;
    let store = turnout_core::store::open(&settings).await.context("opening the store")?;
    let app = Application::build(&settings, store)?;
    tracing::info!(event = "listening", port = app.port());
    app.run_until_stopped().await.context("auth server")
}
