//! Rosco's v2 manifest bakery: `POST /api/v2/manifest/bake/{type}`. The bake (fetches and a
//! renderer process) runs on a blocking thread; the answer is Rosco's Artifact, or its error
//! with the reason in `message`.

use super::ApiError;
use crate::bakery::Bakery;
use crate::manifest::{self, BakeError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};

pub async fn bake(
    State(bakery): State<Bakery>,
    Path(kind): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Result<Json<manifest::request::Artifact>, ApiError> {
    let path = uri.path().to_string();
    let cfg = manifest::Config::from_settings(&bakery.settings());
    let baked = tokio::task::spawn_blocking(move || manifest::bake(&cfg, &kind, &body))
        .await
        .map_err(|e| ApiError::internal(&path, e))?;
    let renderer = baked
        .renderer
        .map_or("unknown", manifest::request::Renderer::label);
    let outcome = baked
        .result
        .as_ref()
        .map_or_else(BakeError::outcome, |_| "success");
    bakery.metrics().manifest_bake(renderer, outcome);
    baked.result.map(Json).map_err(|e| match e {
        BakeError::Invalid(m) => ApiError::bad_request(&path, m),
        BakeError::Upstream(status, m) => ApiError::with_status(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            &path,
            m,
        ),
        BakeError::Fetch(m) | BakeError::Render(m) => {
            ApiError::with_status(StatusCode::INTERNAL_SERVER_ERROR, &path, m)
        }
    })
}
