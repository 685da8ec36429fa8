//! The admin HTTP server: `GET /metrics`, `GET /healthz` and `GET /readyz`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics;

#[derive(Clone)]
struct AdminState {
    registry: Registry,
    health: Health,
}

/// The admin routes: `/metrics` (Prometheus text), `/healthz` (200 `ok` while the process runs)
/// and `/readyz` (200 or 503 with `{"ready":bool,"checks":{"name":bool,...}}`).
pub fn router(registry: Registry, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AdminState { registry, health })
}

/// Serves [`router`] on `listener` until `shutdown` is cancelled, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin server listening");
    }
    axum::serve(listener, router(registry, health))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn metrics_handler(State(state): State<AdminState>) -> impl IntoResponse {
    let body = metrics::encode(&state.registry);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body)
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let report = state.health.report();
    let ready = !report.is_empty() && report.iter().all(|(_, ok)| *ok);
    let checks: serde_json::Map<String, serde_json::Value> = report
        .into_iter()
        .map(|(name, ok)| (name, ok.into()))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": ready, "checks": checks })),
    )
}
