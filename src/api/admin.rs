//! `POST /api/kiln/v1/reload`: reload the config file kiln was started with (what
//! `kiln deploy apply` calls). 200 with the changed key paths, or 400 with the reason while the
//! old config stays active. The request carries nothing: the server only re-reads its own file.

use super::ApiError;
use crate::admin::{Reloaded, Reloader};
use crate::bakery::Bakery;
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::Uri;
use std::sync::Arc;

pub async fn reload(
    State(bakery): State<Bakery>,
    reloader: Option<Extension<Arc<Reloader>>>,
    uri: Uri,
) -> Result<Json<Reloaded>, ApiError> {
    let Some(Extension(reloader)) = reloader else {
        return Err(ApiError::unavailable(
            uri.path(),
            "this kiln has no config file to reload",
        ));
    };
    let done = tokio::task::spawn_blocking(move || reloader.reload(&bakery))
        .await
        .map_err(|e| ApiError::internal(uri.path(), e))?;
    match done {
        Ok(done) => {
            for w in &done.warnings {
                tracing::warn!("{w}");
            }
            tracing::info!(changed = ?done.changed, restart_needed = ?done.restart_needed, "reload: {}", done.message);
            Ok(Json(done))
        }
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::warn!("reload refused, the old config stays active: {reason}");
            Err(ApiError::bad_request(uri.path(), reason))
        }
    }
}
