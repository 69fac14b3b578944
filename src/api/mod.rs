//! The HTTP API: Rosco's v1 bake endpoints, bakeOptions, status, health and metrics ([`v1`],
//! [`options`], [`status`]), and kiln's own richer view of bakes ([`kiln`]). Handlers translate
//! between HTTP and the [`Bakery`]; they hold no logic of their own.

mod admin;
mod create;
mod error;
mod kiln;
mod list;
mod manifest;
pub mod openapi;
mod options;
pub mod server;
mod status;
mod v1;
mod web;

pub use error::ApiError;

use crate::bakery::Bakery;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
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

/// The routes, written once: this expands to [`routes`] (the router) and [`ROUTES`] (each path
/// with its methods), so the OpenAPI document's test ([`openapi`]) checks the same list the
/// router serves and the two cannot drift. `any` answers every method and is described as GET.
macro_rules! api_routes {
    ($($path:literal => { $($method:ident: $handler:expr),+ $(,)? }),+ $(,)?) => {
        fn routes() -> Router<Bakery> {
            Router::new()
                $(.route($path, {
                    let route = MethodRouter::new();
                    $(let route = on(route, stringify!($method), $handler);)+
                    route
                }))+
        }

        /// Every route the API serves: its path (axum's and OpenAPI's `{name}` syntax alike) and
        /// its methods, lower case.
        pub const ROUTES: &[(&str, &[&str])] = &[$(($path, &[$(stringify!($method)),+])),+];
    };
}

/// Adds `handler` for `method` (a name from [`api_routes!`]) to a route.
fn on<H, T>(route: MethodRouter<Bakery>, method: &str, handler: H) -> MethodRouter<Bakery>
where
    H: axum::handler::Handler<T, Bakery>,
    T: 'static,
{
    match method {
        "get" => route.get(handler),
        "post" => route.post(handler),
        "delete" => route.delete(handler),
        // What `axum::routing::any` is: the handler for every method, so never a 405.
        "any" => route.fallback(handler),
        other => unreachable!("api_routes! names an unknown method {other}"),
    }
}

api_routes! {
    "/" => { get: web::index },
    "/ui/{asset}" => { get: web::asset },
    "/openapi.json" => { get: openapi::document },
    "/api/v1/{region}/bake" => { post: v1::create, delete: v1::delete },
    "/api/v1/{region}/status/{id}" => { get: v1::status },
    "/api/v1/{region}/bake/{id}" => { get: v1::details },
    "/api/v1/{region}/logs/{id}" => { get: v1::logs },
    "/api/v1/{region}/logs/image/{image}" => { get: v1::logs_by_image },
    "/api/v1/{region}/cancel/{id}" => { get: v1::cancel },
    "/api/v1/bakes/delete-requests" => { post: v1::delete_requests },
    "/bakeOptions" => { get: options::all },
    "/bakeOptions/{provider}" => { get: options::one },
    "/bakeOptions/{provider}/baseImages/{id}" => { get: options::base_image },
    "/status/instance" => { any: status::instance },
    "/status/all" => { any: status::all },
    "/health" => { get: status::health },
    // Gate asks every service which plugins it runs; kiln runs none.
    "/installedPlugins" => { get: || async { axum::Json(serde_json::json!([])) } },
    "/metrics" => { get: status::metrics },
    "/api/kiln/v1/{region}/bakes" => { post: kiln::create },
    "/api/kiln/v1/reload" => { post: admin::reload },
    "/api/kiln/v1/gc" => { post: kiln::gc },
    "/api/kiln/v1/bakes" => { get: list::list },
    "/api/kiln/v1/bakes/{id}" => { get: kiln::bake },
    "/api/kiln/v1/bakes/{id}/logs/stream" => { get: kiln::stream_logs },
}

/// Routes outside [`api_routes!`] because they carry layers of their own (the manifest bake's
/// time limit), listed here for the OpenAPI document's test.
pub const SEPARATE_ROUTES: &[(&str, &[&str])] = &[("/api/v2/manifest/bake/{type}", &["post"])];

/// What every route gets: request metrics, the body limit, a time limit (a client that stalls
/// in its body gets 408, `kiln.http.requestTimeout`), the stop signal, and a 500 (not a
/// dropped connection) when a handler panics; the server keeps serving either way.
fn with_layers(routes: Router<Bakery>, bakery: Bakery, stopping: CancellationToken) -> Router {
    let request_timeout = bakery.settings().request_timeout();
    // A manifest bake runs its renderer while the request is open: its own limit is the bake's
    // (`kiln.manifests.timeout`) on top of the request's.
    let bake_limit = crate::manifest::Config::from_settings(&bakery.settings()).timeout;
    let manifests = Router::new()
        .route(SEPARATE_ROUTES[0].0, axum::routing::post(manifest::bake))
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
        .layer(middleware::from_fn(shape_errors))
        .layer(middleware::from_fn_with_state(
            bakery.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::Extension(Stopping(stopping)))
        .layer(CatchPanicLayer::custom(error::panicked))
        .with_state(bakery)
}

/// Every client error leaves in kiln's error shape: the timeout layer's bare 408 says which limit
/// fired, and axum's plain-text rejections (a query or path that does not parse, a body over
/// the limit) keep their text, which names the part, as the message.
async fn shape_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    if status == StatusCode::REQUEST_TIMEOUT {
        return axum::response::IntoResponse::into_response(ApiError::request_timeout(&path));
    }
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !status.is_client_error() || !plain {
        return response;
    }
    // Rejection texts are one short line; anything longer is cut, never buffered whole.
    const MAX_REJECTION: usize = 4096;
    let text = axum::body::to_bytes(response.into_body(), MAX_REJECTION)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| status.canonical_reason().unwrap_or("").to_string());
    axum::response::IntoResponse::into_response(ApiError::with_status(status, &path, text))
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
        let routes = routes().route("/test/panic", axum::routing::get(panics));
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

    #[tokio::test]
    async fn axums_plain_text_rejections_leave_in_kilns_error_shape() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::config::Settings::default();
        settings.kiln.data_dir = Some(dir.path().to_path_buf());
        let store = std::sync::Arc::new(crate::store::SqliteStore::open_in_memory().unwrap());
        let bakery = Bakery::new(settings, store, dir.path().join("kiln"));
        let app = router(bakery, CancellationToken::new());
        let get = |path: &str| axum::http::Request::get(path).body(Body::empty()).unwrap();
        let r = app
            .oneshot(get("/api/kiln/v1/bakes/x/logs/stream?from=-1"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], 400);
        assert!(body["message"].as_str().unwrap().contains("from"), "{body}");
    }
}
