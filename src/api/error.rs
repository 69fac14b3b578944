//! How errors leave the API. Rosco answers through Spring, so kiln answers in Spring's error
//! shape (`timestamp, status, error, message, path`); bakeOptions' 404 has Rosco's own shape.
//! 4xx messages tell the caller what to fix. 5xx bodies are opaque: the real error is logged
//! here, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    path: String,
    options_shape: bool,
}

impl ApiError {
    pub fn bad_request(path: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, path, message)
    }

    pub fn not_found(path: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, path, message)
    }

    pub fn unavailable(path: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, path, message)
    }

    /// Any status with kiln's error shape, its message shown whatever the status: a manifest
    /// bake's renderer or fetch failure (answered as Rosco does), axum's own rejections.
    pub fn with_status(status: StatusCode, path: &str, message: impl Into<String>) -> Self {
        Self::new(status, path, message)
    }

    /// A request that did not arrive within `kiln.http.requestTimeout` (a stalled body).
    pub fn request_timeout(path: &str) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            path,
            "the request did not arrive in time (kiln.http.requestTimeout); send it again",
        )
    }

    /// Rosco's bakeOptions 404: `{error: "bake.options.not.found", status, messages}`.
    pub fn options_not_found(path: &str, message: impl Into<String>) -> Self {
        ApiError {
            options_shape: true,
            ..Self::new(StatusCode::NOT_FOUND, path, message)
        }
    }

    /// An unexpected failure: logged in full, answered with a generic 500.
    pub fn internal(path: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(path, error = %err, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            path,
            "internal error; see kiln's log",
        )
    }

    fn new(status: StatusCode, path: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            path: path.to_string(),
            options_shape: false,
        }
    }
}

/// The answer when a handler panicked: a 500 in the usual shape; what panicked goes to kiln's
/// log only (it may hold request values).
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = crate::telemetry::panic_text(&*panic);
    ApiError::internal("", format!("a request handler panicked: {what:?}")).into_response()
}

impl From<(&str, crate::store::StoreError)> for ApiError {
    fn from((path, e): (&str, crate::store::StoreError)) -> Self {
        match e {
            crate::store::StoreError::Unavailable(_) => {
                tracing::error!(path, error = %e, "store unavailable");
                ApiError::unavailable(
                    path,
                    "the bake store is unavailable, so kiln cannot take or answer this now \
                     (running bakes go on and are recorded when it is back); retry shortly",
                )
            }
            crate::store::StoreError::Unwritable(why) => {
                tracing::error!(path, error = %why, "store cannot write");
                // The same text as `/health` answers: where and why, never a secret.
                ApiError::unavailable(
                    path,
                    format!(
                        "kiln cannot record new bakes now: {why}; running bakes go on; \
                         retry when it is fixed"
                    ),
                )
            }
            other => ApiError::internal(path, other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = if self.options_shape {
            json!({"error": "bake.options.not.found", "status": "NOT_FOUND", "messages": [self.message]})
        } else {
            json!({
                "timestamp": now_iso8601(),
                "status": self.status.as_u16(),
                "error": self.status.canonical_reason().unwrap_or(""),
                "message": self.message,
                "path": self.path,
            })
        };
        (self.status, Json(body)).into_response()
    }
}

/// The current time as Spring prints it (`2026-11-24T21:38:40.123+00:00`).
fn now_iso8601() -> String {
    jiff::Timestamp::from_millisecond(crate::bake::now_ms())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string()
}

/// Runs one store call on a blocking thread, its error answered as HTTP: the engines are
/// synchronous (SQLite, Redis), and a slow or locked store must not hold an async worker that
/// other requests need.
pub(super) async fn store_call<T: Send + 'static>(
    bakery: &crate::bakery::Bakery,
    path: &str,
    call: impl FnOnce(&dyn crate::store::BakeStore) -> crate::store::StoreResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = bakery.store().clone();
    tokio::task::spawn_blocking(move || call(store.as_ref()))
        .await
        .map_err(|e| ApiError::internal(path, e))?
        .map_err(|e| ApiError::from((path, e)))
}

/// Runs `call` on a blocking thread: for handlers whose work reaches the store (or anything else
/// synchronous) in more than one call.
pub(super) async fn blocking<T: Send + 'static>(
    path: &str,
    call: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| ApiError::internal(path, e))?
}

/// A request that cannot be baked: the requester's to fix (400), but for a source image lookup
/// that failed (503).
pub(super) fn recipe_error(path: &str, e: crate::providers::BakeError) -> ApiError {
    match e {
        crate::providers::BakeError::Lookup(_) => ApiError::unavailable(path, e.to_string()),
        _ => ApiError::bad_request(path, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_error_time_is_springs_utc_form_with_milliseconds() {
        let t = super::now_iso8601();
        assert_eq!(t.len(), "2026-11-24T21:38:40.123+00:00".len(), "{t}");
        assert!(t.ends_with("+00:00") && t.as_bytes()[10] == b'T', "{t}");
        let parsed: jiff::Timestamp = t.parse().unwrap();
        let age = jiff::Timestamp::now().duration_since(parsed);
        assert!(age.as_secs() < 60, "{t}");
    }
}
