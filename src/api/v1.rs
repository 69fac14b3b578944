//! Rosco's v1 bake endpoints: same paths, methods, JSON fields, status codes and messages.

use super::ApiError;
use super::create::{RebakeQuery, create_bake, reuse_reason};
use super::error::{blocking, recipe_error};
use crate::bake::{BakeRequest, BakeStatus};
use crate::bakery::{Bakery, CancelError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /api/v1/{region}/bake?rebake=0|1` — only the exact string `1` means rebake.
pub async fn create(
    State(bakery): State<Bakery>,
    Path(region): Path<String>,
    Query(q): Query<RebakeQuery>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<(HeaderMap, Json<BakeStatus>), ApiError> {
    let created = create_bake(bakery, region, q, headers, uri.path().to_string(), body).await?;
    let mut out = HeaderMap::new();
    if created.reused
        && let Ok(v) = reuse_reason(&created.record).parse()
    {
        out.insert("X-Kiln-Reused", v);
    }
    let status = BakeStatus::of(&created.record.id, created.record.phase);
    Ok((out, Json(status)))
}

/// `GET /api/v1/{region}/status/{id}` — the region is ignored, as in Rosco.
pub async fn status(
    State(bakery): State<Bakery>,
    Path((_region, id)): Path<(String, String)>,
    uri: Uri,
) -> Result<Json<BakeStatus>, ApiError> {
    let path = uri.path();
    // The phase alone: a poll should not decode the whole record.
    let phase = {
        let id = id.clone();
        super::error::store_call(&bakery, path, move |s| s.phase(&id)).await?
    };
    match phase {
        Some(phase) => Ok(Json(BakeStatus::of(&id, phase))),
        None => Err(ApiError::bad_request(
            path,
            format!("Unable to retrieve status for '{id}'."),
        )),
    }
}

/// `GET /api/v1/{region}/bake/{id}` — for a multi-region bake, the path's region's image.
pub async fn details(
    State(bakery): State<Bakery>,
    Path((region, id)): Path<(String, String)>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let path = uri.path();
    let missing =
        || ApiError::bad_request(path, format!("Unable to retrieve bake details for '{id}'."));
    let details = {
        let id = id.clone();
        super::error::store_call(&bakery, path, move |s| s.details(&id)).await?
    }
    .ok_or_else(missing)?;
    let Some(view) = details.for_region(&region) else {
        let regions = details.regions.unwrap_or_default().join(", ");
        return Err(ApiError::bad_request(
            path,
            format!(
                "Bake '{id}' produced no image in region '{region}'; its regions are: {regions}."
            ),
        ));
    };
    Ok(Json(serde_json::to_value(view).unwrap_or(Value::Null)))
}

/// `GET /api/v1/{region}/logs/{id}` — everything logged so far, also while the bake runs.
pub async fn logs(
    State(bakery): State<Bakery>,
    Path((_region, id)): Path<(String, String)>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    logs_of(&bakery, &id, uri.path()).await
}

/// `GET /api/v1/{region}/logs/image/{image}`.
pub async fn logs_by_image(
    State(bakery): State<Bakery>,
    Path((region, image)): Path<(String, String)>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let path = uri.path();
    let id = super::error::store_call(&bakery, path, move |s| s.bake_for_image(&region, &image))
        .await?
        .ok_or_else(|| ApiError::not_found(path, "Logs not found."))?;
    logs_of(&bakery, &id, path).await
}

async fn logs_of(bakery: &Bakery, id: &str, path: &str) -> Result<Json<Value>, ApiError> {
    let log = {
        let id = id.to_string();
        super::error::store_call(bakery, path, move |s| s.read_log(&id)).await?
    };
    if log.is_empty() {
        return Err(ApiError::not_found(path, "Logs not found."));
    }
    Ok(Json(json!({ "logsContent": log })))
}

/// `DELETE /api/v1/{region}/bake` — forgets the request's bake so the next one bakes again,
/// and (unlike Rosco) stops it if it still runs.
pub async fn delete(
    State(bakery): State<Bakery>,
    Path(region): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Result<String, ApiError> {
    let path = uri.path().to_string();
    let req = BakeRequest::from_json(&body).map_err(|e| ApiError::bad_request(&path, e.0))?;
    // Blocking: a source image given by name is looked up, and the store is called.
    blocking(&path.clone(), move || {
        let path = path.as_str();
        let prepared = bakery
            .prepare(&region, &req)
            .map_err(|e| recipe_error(path, e))?;
        let store = bakery.store();
        let found = store
            .get_by_identity(&prepared.identity.digest)
            .map_err(|e| ApiError::from((path, e)))?;
        let Some(record) = found else {
            return Err(ApiError::bad_request(
                path,
                format!("Unable to locate bake with key '{}'.", prepared.key),
            ));
        };
        if !record.phase.is_finished() {
            let _ = bakery.cancel(&record.id);
        }
        store
            .unbind(&record.id)
            .map_err(|e| ApiError::from((path, e)))?;
        // A settled bake's local files (a qemu image, staging) are kiln's: they go with the
        // bake. An AMI or any other cloud image is the user's and stays.
        bakery.remove_local_image(&record.id);
        Ok(format!(
            "Deleted bake '{}' with id '{}'.",
            record.key, record.id
        ))
    })
    .await
}

/// `GET /api/v1/{region}/cancel/{id}` (a GET, as in Rosco). A finished bake is left as it is.
pub async fn cancel(
    State(bakery): State<Bakery>,
    Path((_region, id)): Path<(String, String)>,
    uri: Uri,
) -> Result<String, ApiError> {
    let path = uri.path().to_string();
    blocking(&path.clone(), move || match bakery.cancel(&id) {
        Ok(_) => Ok(format!("Canceled bake '{id}'.")),
        Err(CancelError::NotIncomplete(_)) => Err(ApiError::bad_request(
            &path,
            format!("Unable to locate incomplete bake with id '{id}'."),
        )),
        Err(CancelError::Store(e)) => Err((path.as_str(), e).into()),
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRequests {
    #[serde(default)]
    pipeline_execution_ids: Vec<String>,
}

/// `POST /api/v1/bakes/delete-requests` — drops every bake of these pipeline executions,
/// stopping those still running.
pub async fn delete_requests(
    State(bakery): State<Bakery>,
    uri: Uri,
    body: Bytes,
) -> Result<(), ApiError> {
    let path = uri.path();
    let req: DeleteRequests = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(path, format!("malformed delete request: {e}")))?;
    let ids: Vec<String> = req
        .pipeline_execution_ids
        .iter()
        .map(|e| e.split(':').next().unwrap_or(e).to_string())
        .collect();
    let at = path.to_string();
    blocking(path, move || {
        let path = at.as_str();
        let unfinished = bakery
            .store()
            .unfinished()
            .map_err(|e| ApiError::from((path, e)))?;
        for r in unfinished
            .iter()
            .filter(|r| r.execution_id.as_ref().is_some_and(|e| ids.contains(e)))
        {
            let _ = bakery.cancel(&r.id);
        }
        bakery
            .store()
            .delete_by_executions(&ids)
            .map(drop)
            .map_err(|e| ApiError::from((path, e)))
    })
    .await
}
