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
    let mut all_ok = true;
    for check in &checks.0 {
        let outcome = tokio::time::timeout(Duration::from_secs(2), check.check()).await;
        let entry = match outcome {
            Ok(Ok(detail)) => json!({ "ok": true, "detail": detail }),
            Ok(Err(reason)) => {
                all_ok = false;
                json!({ "ok": false, "error": reason })
            }
            Err(_) => {
                all_ok = false;
                json!({ "ok": false, "error": "check timed out after 2s" })
            }
        };
        report.insert(check.name().to_owned(), entry);
    }
    let body = json!({ "status": if all_ok { "ready" } else { "not_ready" }, "checks": report });
    if all_ok { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(crate::metrics::render())
}

pub fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}
