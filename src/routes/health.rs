//! Liveness, readiness and metrics, on the admin listener, without authentication.

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::{Schema, Shared};
use crate::store::migrate;

/// Mounts `/healthz`, `/readyz` and `/metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// Prometheus text format.
async fn metrics(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(shared.metrics.render())
}

/// How long readiness waits for the storage to answer.
const STORAGE_PING: std::time::Duration = std::time::Duration::from_secs(3);

/// An error and its causes, in one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The process is up and serving HTTP.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when not draining, the store answers, and its schema is the one this binary uses.
/// Re-reads the schema version, so a `mediagate migrate` run elsewhere is noticed here.
async fn readyz(shared: web::Data<Shared>) -> HttpResponse {
    if shared.draining.load(Ordering::Acquire) {
        return HttpResponse::ServiceUnavailable().json(json!({"status": "draining"}));
    }
    if let Err(e) = shared.store.ping().await {
        return HttpResponse::ServiceUnavailable()
            .json(json!({"status": "store_unavailable", "store": shared.store.kind(), "error": e.to_string()}));
    }
    // The bytes too: a bucket that cannot be reached fails readiness, though decisions still
    // answer from the store (nginx then fails to fetch, and answers 503).
    match tokio::time::timeout(STORAGE_PING, shared.storage.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return HttpResponse::ServiceUnavailable().json(
                json!({"status": "storage_unavailable", "storage": shared.storage.describe(), "error": error_chain(&e)}),
            );
        }
        Err(_) => {
            return HttpResponse::ServiceUnavailable().json(
                json!({"status": "storage_unavailable", "storage": shared.storage.describe(), "error": "no answer in time"}),
            );
        }
    }
    let schema = match shared.reconcile_schema().await {
        Ok(s) => s,
        Err(e) => {
            return HttpResponse::ServiceUnavailable()
                .json(json!({"status": "store_unavailable", "error": e.to_string()}));
        }
    };
    match schema {
        Schema::Current => HttpResponse::Ok().json(json!({
            "status": "ready", "store": shared.store.kind(), "schema": migrate::CURRENT
        })),
        Schema::Old => HttpResponse::ServiceUnavailable().json(json!({
            "status": "schema_old", "message": "run `mediagate migrate`", "needs": migrate::CURRENT
        })),
        Schema::TooNew | Schema::Unknown => HttpResponse::ServiceUnavailable().json(json!({
            "status": "schema_too_new", "message": "the store was migrated by a newer mediagate", "supports": migrate::CURRENT
        })),
    }
}
