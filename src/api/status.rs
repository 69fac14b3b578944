//! `/status/*`, `/health` and `/metrics`.

use crate::bake::BakeStatus;
use crate::bakery::Bakery;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
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
pub async fn instance(State(bakery): State<Bakery>) -> Json<Value> {
    Json(instance_status(&bakery))
}

/// Every instance's unfinished bakes. One node knows only itself.
pub async fn all(State(bakery): State<Bakery>) -> Json<Value> {
    let me = bakery.instance_id().to_string();
    Json(json!({"instance": me.clone(), "instances": {me: instance_status(&bakery)}}))
}

/// `{"status":"UP"}` when the store answers; 503 with the reason otherwise.
pub async fn health(State(bakery): State<Bakery>) -> impl IntoResponse {
    match bakery.store().ping() {
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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
