//! Probes. Liveness answers from memory and never touches a dependency, so a slow store
//! or directory can't get a healthy process restarted. Readiness checks each dependency
//! with a short timeout and says which one is failing.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

/// One dependency a service needs to serve traffic.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    /// A critical check failing makes the service not ready (503, taken out of rotation).
    /// A non-critical one is reported, and turns the status to `degraded` with a 200: e.g.
    /// slow mail, which requests are still right to queue behind.
    fn critical(&self) -> bool {
        true
    }
    /// `Ok(detail)` when usable; `Err(reason)` otherwise.
    async fn check(&self) -> Result<Value, String>;
}

pub struct StoreCheck(pub Arc<dyn crate::store::Store>);

#[async_trait::async_trait]
impl ReadinessCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "store"
    }
    async fn check(&self) -> Result<Value, String> {
        self.0.ping().await.map(|_| json!("ok")).map_err(|e| e.to_string())
    }
}

/// The checks this service runs for `/health/ready`.
pub struct Readiness(pub Vec<Box<dyn ReadinessCheck>>);

impl Readiness {
    pub fn with_store(store: Arc<dyn crate::store::Store>) -> Self {
        Self(vec![Box::new(StoreCheck(store))])
    }
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

async fn ready(checks: web::Data<Readiness>) -> HttpResponse {
    let mut report = Map::new();
    let (mut all_ok, mut degraded) = (true, false);
    for check in &checks.0 {
        let outcome = tokio::time::timeout(Duration::from_secs(2), check.check()).await;
        let failure = match outcome {
            Ok(Ok(detail)) => {
                report.insert(check.name().to_owned(), json!({ "ok": true, "detail": detail }));
                continue;
            }
            Ok(Err(reason)) => reason,
            Err(_) => "check timed out after 2s".to_owned(),
        };
        if check.critical() {
            all_ok = false;
        } else {
            degraded = true;
        }
        let entry = json!({ "ok": false, "critical": check.critical(), "error": failure });
        report.insert(check.name().to_owned(), entry);
    }
    let status = match (all_ok, degraded) {
        (false, _) => "not_ready",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    let body = json!({ "status": status, "checks": report });
    if all_ok { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(crate::metrics::render_fresh().await)
}

pub fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}
