//! Turnout's ballot service: elections, the ballot, casting, receipts.
//!
//! Layout:
//! - `voting`: the rules for casting (verified, window, each contest's rules, one ballot);
//! - `ballot_form`: the ballot as a page and a form (contests a voter sees, option order,
//!   rank numbers read back as votes, mistakes in words, the review step's wording);
//! - `routes`: the election list, `/e/{election}/ballot` and its review, receipts;
//! - `receipt_proofs`: after close, each receipt's path to the published receipts root;
//! - `console`: the admin and officer console (pages and JSON);
//! - `nominations`: students nominate themselves, proposers second, admins decide, and the
//!   public candidates page; `photo`: a candidate's photo decoded, resized and re-encoded;
//! - `eligibility`: eligibility filters parsed as the directory client will parse them;
//! - `roll_import`: voter roll CSV imports in resumable chunks;
//! - `seed`: the `create-election` command; `recount`: the `count` command (a BLT file);
//!   `verify_box`: the `verify-box` command (a box export checked against its roots and
//!   recounted);
//! - `box_watch`: the box's running counts and, at close + grace, its roots, written to
//!   the audit log; the chain's head written to the service log as it moves;
//! - `metrics`: ballots cast, each election's window state.

mod ballot_form;
pub mod box_watch;
mod console;
mod eligibility;
mod metrics;
mod nominations;
mod photo;
mod receipt_proofs;
pub mod recount;
pub mod roll_import;
mod routes;
pub mod seed;
pub mod verify_box;
mod voting;

use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web;
use turnout_core::Settings;
use turnout_core::http::serve;
use turnout_core::store::{ElectionCache, Store};

/// How long the voter paths reuse a loaded election (see `ElectionCache`).
const ELECTION_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Application {
    port: u16,
    server: Server,
    importer: roll_import::Importer,
    watch: box_watch::BoxWatch,
}

impl Application {
    /// Builds the server and resumes roll imports a stopped process left (once their lease
    /// has passed; `run_until_stopped` keeps sweeping for more). Call from inside a Tokio
    /// runtime.
    pub async fn build(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let store_data = web::Data::new(store.clone());
        let importer = roll_import::Importer::new(store.clone(), settings.import_dir.clone(), settings.import_lease)?;
        importer.resume_abandoned().await?;
        let sweeper = importer.clone();
        let watch =
            box_watch::BoxWatch::new(store.clone(), settings.box_count_interval, settings.anchor_emails.clone());
        let importer = web::Data::new(importer);
        let elections = web::Data::new(ElectionCache::new(ELECTION_CACHE_TTL));
        let order = web::Data::new(ballot_form::CandidateOrder::from_settings(settings));
        let proofs = web::Data::new(receipt_proofs::ReceiptProofs::default());
        metrics::register(store.clone());
        let (port, server) = serve(settings, store, move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(store_data.clone())
                .app_data(importer.clone())
                .app_data(elections.clone())
                .app_data(order.clone())
                .app_data(proofs.clone())
                .configure(console::routes)
                .configure(nominations::routes)
                .route("/", web::get().to(routes::home))
                .route("/openapi.json", web::get().to(routes::openapi))
                .route("/e/{election}/ballot", web::get().to(routes::ballot))
                .route("/e/{election}/ballot", web::post().to(routes::cast))
                .route("/e/{election}/ballot/review", web::post().to(routes::review))
                .route("/e/{election}/receipt", web::get().to(routes::receipt));
        })?;
        Ok(Self { port, server, importer: sweeper, watch })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = tokio::spawn(self.importer.sweep());
        let watch = tokio::spawn(self.watch.run());
        let result = self.server.await;
        sweeper.abort();
        watch.abort();
        result
    }
}
