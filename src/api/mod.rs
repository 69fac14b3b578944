//! The HTTP API: Rosco's v1 bake endpoints, bakeOptions, status, health and metrics ([`v1`],
//! [`options`], [`status`]), and kiln's own richer view of bakes ([`kiln`]). Handlers translate
//! between HTTP and the [`Bakery`]; they hold no logic of their own.

mod admin;
mod create;
mod error;
mod kiln;
mod manifest;
mod options;
pub mod server;
mod status;
mod v1;

pub use error::ApiError;

use crate::bakery::Bakery;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, post};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

/// Request bodies over this size are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Cancelled when kiln stops serving: live log streams end on it (handlers read it as an
/// extension).
#[derive(Clone, Default)]
pub struct Stopping(pub CancellationToken);

/// The whole API; `stopping` ends long-lived responses when the server stops.
pub fn router(bakery: Bakery, stopping: CancellationToken) -> Router {
    with_layers(routes(), bakery, stopping)
}

fn routes() -> Router<Bakery> {
    Router::new()
        .route("/api/v1/{region}/bake", post(v1::create).delete(v1::delete))
        .route("/api/v1/{region}/status/{id}", get(v1::status))
        .route("/api/v1/{region}/bake/{id}", get(v1::details))
        .route("/api/v1/{region}/logs/{id}", get(v1::logs))
        .route(
            "/api/v1/{region}/logs/image/{image}",
            get(v1::logs_by_image),
        )
        .route("/api/v1/{region}/cancel/{id}", get(v1::cancel))
        .route("/api/v1/bakes/delete-requests", post(v1::delete_requests))
        .route("/bakeOptions", get(options::all))
        .route("/bakeOptions/{provider}", get(options::one))
        .route(
            "/bakeOptions/{provider}/baseImages/{id}",
            get(options::base_image),
        )
        .route("/status/instance", any(status::instance))
        .route("/status/all", any(status::all))
        .route("/health", get(status::health))
        // Gate asks every service which plugins it runs; kiln runs none.
        .route(
            "/installedPlugins",
            get(|| async { axum::Json(serde_json::json!([])) }),
        )
        .route("/metrics", get(status::metrics))
        .route("/api/kiln/v1/{region}/bakes", post(kiln::create))
        .route("/api/kiln/v1/reload", post(admin::reload))
        .route("/api/kiln/v1/bakes/{id}", get(kiln::bake))
        .route(
            "/api/kiln/v1/bakes/{id}/logs/stream",
            get(kiln::stream_logs),
        )
}

/// What every route gets: request metrics, the body limit, a time limit (a client that stalls
/// in its body gets 408, `kiln.http.requestTimeout`), the stop signal, and a 500 (not a
/// dropped connection) when a handler panics; the server keeps serving either way.
fn with_layers(routes: Router<Bakery>, bakery: Bakery, stopping: CancellationToken) -> Router {
    let request_timeout = bakery.settings().request_timeout();
    // A manifest bake runs its renderer while the request is open: its own limit is the bake's
    // (`kiln.manifests.timeout`) on top of the request's.
    let bake_limit = crate::manifest::Config::from_settings(&bakery.settings()).timeout;
    let manifests = Router::new()
        .route("/api/v2/manifest/bake/{type}", post(manifest::bake))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout + bake_limit,
        ));
    routes
        // Inside the metrics layer, so a 408 is counted; answered in kiln's error shape.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .merge(manifests)
        .layer(middleware::from_fn(shape_timeouts))
        .layer(middleware::from_fn_with_state(
            bakery.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::Extension(Stopping(stopping)))
        .layer(CatchPanicLayer::custom(error::panicked))
        .with_state(bakery)
}

/// The timeout layer's bare 408 becomes kiln's error shape, saying which limit fired.
async fn shape_timeouts(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        return axum::response::IntoResponse::into_response(ApiError::request_timeout(&path));
    }
    response
}

/// Counts requests by matched route (never the raw path, which would be unbounded).
async fn count_requests(State(bakery): State<Bakery>, req: Request, next: Next) -> Response {
    // A clone of the matched path is a reference count, not a copy of the string.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    bakery.metrics().http(route, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_router_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::config::Settings::default();
        settings.kiln.data_dir = Some(dir.path().to_path_buf());
        let store = std::sync::Arc::new(crate::store::SqliteStore::open_in_memory().unwrap());
        let bakery = Bakery::new(settings, store, dir.path().join("kiln"));
        async fn panics() -> &'static str {
            panic!("test: a handler panics with\na second line")
        }
        let routes = routes().route("/test/panic", get(panics));
        let app = with_layers(routes, bakery, CancellationToken::new());
        let get = |path: &str| axum::http::Request::get(path).body(Body::empty()).unwrap();
        let r = app.clone().oneshot(get("/test/panic")).await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["message"], "internal error; see kiln's log");
        assert!(!body.to_string().contains("second line"), "{body}");
        let r = app.oneshot(get("/health")).await.unwrap();
        assert_ne!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
