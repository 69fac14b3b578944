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
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Manifest bakes running at once in this process (`kiln.manifests.maxConcurrent`, read at the
/// first bake): each holds a renderer process and a work dir, so a flood of requests waits here
/// (within the route's time limit) instead of starting hundreds of renderers.
static RUNNING: OnceLock<Arc<Semaphore>> = OnceLock::new();

pub async fn bake(
    State(bakery): State<Bakery>,
    Path(kind): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Result<Json<manifest::request::Artifact>, ApiError> {
    let path = uri.path().to_string();
    let cfg = manifest::Config::from_settings(&bakery.settings());
    let slots = RUNNING.get_or_init(|| Arc::new(Semaphore::new(cfg.max_concurrent)));
    let _slot = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::internal(&path, e))?;
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use base64::Engine;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    fn app(dir: &std::path::Path) -> (axum::Router, crate::bakery::Bakery) {
        let mut settings = crate::config::Settings::default();
        settings.kiln.data_dir = Some(dir.to_path_buf());
        let store = std::sync::Arc::new(crate::store::SqliteStore::open_in_memory().unwrap());
        let bakery = crate::bakery::Bakery::new(settings, store, dir.join("kiln"));
        let router = super::super::router(bakery.clone(), Default::default());
        (router, bakery)
    }

    async fn post(app: &axum::Router, path: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[tokio::test]
    async fn a_cloud_foundry_bake_is_answered_with_roscos_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let (app, bakery) = app(dir.path());
        let body = json!({
            "templateRenderer": "CF", "outputName": "m", "outputArtifactName": "m",
            "manifestTemplate": {"type": "embedded/base64", "reference": b64("app: ((name))\n")},
            "varsArtifacts": [{"type": "embedded/base64", "reference": b64("name: shop\n")}]
        });
        let (status, a) = post(&app, "/api/v2/manifest/bake/cf", body).await;
        assert_eq!(status, StatusCode::OK, "{a}");
        assert_eq!(
            a,
            json!({"type": "embedded/base64", "customKind": false, "name": "m",
                   "reference": b64("app: shop\n"), "metadata": {}})
        );
        let text = bakery.metrics().render(0, 0);
        assert!(
            text.contains("kiln_manifest_bakes_total{renderer=\"cf\",outcome=\"success\"} 1"),
            "{text}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).unwrap().collect();
        assert!(left.is_empty(), "work dirs left: {left:?}");
    }

    #[tokio::test]
    async fn refusals_and_failures_are_answered_in_springs_shape_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (app, bakery) = app(dir.path());
        let (status, e) = post(&app, "/api/v2/manifest/bake/packer", json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e["message"],
            "Cannot bake manifest with template renderer type: packer"
        );
        assert_eq!(e["path"], "/api/v2/manifest/bake/packer");
        assert_eq!(e["error"], "Bad Request");

        // No helm3 on this PATH (Rosco's default executable): a 500 that says what to set.
        let body = json!({"outputName": "w", "inputArtifacts": [
            {"type": "embedded/base64", "reference": b64("not really a chart")}]});
        let (status, e) = post(&app, "/api/v2/manifest/bake/HELM3", body).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.starts_with("Bake failed: the executable 'helm3' was not found")
                && message.ends_with("(set helm.v3ExecutablePath)"),
            "{message}"
        );
        let text = bakery.metrics().render(0, 0);
        for line in [
            "kiln_manifest_bakes_total{renderer=\"unknown\",outcome=\"invalid\"} 1",
            "kiln_manifest_bakes_total{renderer=\"helm3\",outcome=\"render_failed\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from {text}");
        }
    }
}
