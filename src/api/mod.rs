//! The HTTP API: Rosco's v1 bake endpoints, bakeOptions, status, health and metrics ([`v1`],
//! [`options`], [`status`]), and kiln's own richer view of bakes ([`kiln`]). Handlers translate
//! between HTTP and the [`Bakery`]; they hold no logic of their own.

mod admin;
mod error;
mod kiln;
mod options;
mod status;
mod v1;

pub use error::ApiError;

use crate::bakery::Bakery;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, post};

/// Request bodies over this size are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(bakery: Bakery) -> Router {
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
        .layer(middleware::from_fn_with_state(
            bakery.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(bakery)
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
