//! The create both bake endpoints share (Rosco's v1 and kiln's own): the body, the
//! execution-id header, the rebake flag, and why an existing bake answered.

use super::ApiError;
use super::error::recipe_error;
use crate::bake::{BakeRecord, BakeRequest};
use crate::bakery::{Bakery, CreateError, Created};
use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::Deserialize;

#[derive(Clone, Deserialize)]
pub struct RebakeQuery {
    pub rebake: Option<String>,
}

/// The create shared by the v1 and kiln endpoints: body, execution-id header, rebake flag. It
/// runs on a blocking thread: a source image given by name is looked up first (network I/O with
/// retries), and no async worker may wait on that.
pub async fn create_bake(
    bakery: Bakery,
    region: String,
    q: RebakeQuery,
    headers: HeaderMap,
    path: String,
    body: Bytes,
) -> Result<Created, ApiError> {
    let at = path.clone();
    tokio::task::spawn_blocking(move || {
        create_blocking(&bakery, &region, &q, &headers, &path, &body)
    })
    .await
    .map_err(|e| ApiError::internal(&at, e))?
}

fn create_blocking(
    bakery: &Bakery,
    region: &str,
    q: &RebakeQuery,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
) -> Result<Created, ApiError> {
    let req = BakeRequest::from_json(body).map_err(|e| ApiError::bad_request(path, e.0))?;
    let header = headers
        .get("X-SPINNAKER-EXECUTION-ID")
        .and_then(|h| h.to_str().ok())
        .map(String::from);
    if let Some(h) = &header {
        crate::bake::input::check_value("header X-SPINNAKER-EXECUTION-ID", h)
            .map_err(|e| ApiError::bad_request(path, e.to_string()))?;
    }
    let rebake = q.rebake.as_deref() == Some("1");
    bakery
        .create(region, req, rebake, header)
        .map_err(|e| match e {
            CreateError::Invalid(e) => recipe_error(path, e),
            CreateError::Store(e) => (path, e).into(),
        })
}

/// Why an existing bake answered a request.
pub fn reuse_reason(r: &BakeRecord) -> String {
    format!(
        "same identity ({}) as bake {}, created at {} ms since the epoch and {}",
        // A stored identity is a hex digest; `get` keeps an odd one from panicking here.
        r.identity.get(..12).unwrap_or(&r.identity),
        r.id,
        r.created_ms,
        r.phase
    )
}
