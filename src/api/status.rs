//! `/status/*`, `/health` and `/metrics`.

use super::ApiError;
use super::error::blocking;
use crate::bake::BakeStatus;
use crate::bakery::Bakery;
use crate::store::StoreError;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

fn instance_status(bakery: &Bakery) -> Value {
    let bakes: Vec<BakeStatus> = bakery
        .active_ids()
        .iter()
        .filter_map(|id| bakery.store().get(id).ok().flatten())
        .filter(|r| !r.phase.is_finished())
        .map(|r| BakeStatus::of(&r.id, r.phase))
        .collect();
    let status = if bakes.is_empty() { "IDLE" } else { "RUNNING" };
    json!({"status": status, "bakes": bakes})
}

/// This instance's unfinished bakes (Halyard and Rosco's shape).
pub async fn instance(State(bakery): State<Bakery>, uri: Uri) -> Result<Json<Value>, ApiError> {
    blocking(uri.path(), move || Ok(Json(instance_status(&bakery)))).await
}

/// Every live instance's unfinished bakes. One node knows only itself; on a shared store
/// (Redis) every instance with a live heartbeat is listed with the unfinished bakes it owns.
/// If the store cannot tell, this instance answers for itself.
pub async fn all(State(bakery): State<Bakery>, uri: Uri) -> Result<Json<Value>, ApiError> {
    blocking(uri.path(), move || Ok(Json(all_status(&bakery)))).await
}

fn all_status(bakery: &Bakery) -> Value {
    let me = bakery.instance_id().to_string();
    let mut instances = serde_json::Map::new();
    instances.insert(me.clone(), instance_status(bakery));
    if bakery.store().is_shared() {
        match (bakery.store().instances(), bakery.store().unfinished()) {
            (Ok(live), Ok(unfinished)) => {
                for peer in live.into_iter().filter(|i| i.id != me) {
                    let bakes: Vec<BakeStatus> = unfinished
                        .iter()
                        .filter(|r| r.instance_id == peer.id)
                        .map(|r| BakeStatus::of(&r.id, r.phase))
                        .collect();
                    let status = if bakes.is_empty() { "IDLE" } else { "RUNNING" };
                    instances.insert(peer.id, json!({"status": status, "bakes": bakes}));
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "/status/all lists only this instance: the store did not answer");
            }
        }
    }
    json!({"instance": me, "instances": instances})
}

/// `{"status":"UP"}` when the store can write and read back (a real, briefly cached round
/// trip: a full or read-only data dir or a damaged database reads DOWN); 503 with the reason in
/// Spring Boot's shape (`{"status":"DOWN","details":{"store":"…"}}`) otherwise.
pub async fn health(State(bakery): State<Bakery>) -> impl IntoResponse {
    let store = bakery.store().clone();
    let probed = tokio::task::spawn_blocking(move || store.probe())
        .await
        .unwrap_or_else(|e| Err(StoreError::Unavailable(format!("the probe failed: {e}"))));
    match probed {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "UP"}))),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "DOWN", "details": {"store": e.to_string()}})),
        ),
    }
}

pub async fn metrics(State(bakery): State<Bakery>) -> impl IntoResponse {
    let body = bakery
        .metrics()
        .render(bakery.active_ids().len(), bakery.queued_count());
    (
        [(header::CONTENT_TYPE, crate::bakery::METRICS_CONTENT_TYPE)],
        body,
    )
}
