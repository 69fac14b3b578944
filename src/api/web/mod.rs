//! The web page at `/`: plain HTML, CSS and JavaScript written by hand, embedded in the binary
//! (`include_str!`), so `cargo build` alone makes it and it works offline — no framework, no npm,
//! no CDN. The page talks only to kiln's own API.
//!
//! Request data is attacker-controlled (a package name, a log line): the script builds every
//! node with `textContent`, never `innerHTML`, and every response here carries a strict
//! Content-Security-Policy (scripts and styles only from this origin, nothing inline, no
//! framing), so even a missed escape cannot run script.

use super::ApiError;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

/// Scripts, styles and connections from kiln itself only; nothing inline, no plugins, no frames.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("index.html");

/// The page's assets by name, with their media types.
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("app.css"),
    ),
];

fn page(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        // Assets are small and change with kiln's version: always revalidate.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

/// `GET /`.
pub async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

/// `GET /ui/{asset}`: one of the page's embedded files; 404 for any other name.
pub async fn asset(Path(name): Path<String>, uri: Uri) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, kind, body)| page(kind, body))
        .ok_or_else(|| ApiError::not_found(uri.path(), "no such asset of the web page"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets_and_nothing_inline() {
        for (name, _, _) in ASSETS {
            assert!(INDEX.contains(&format!("/ui/{name}")), "{name}");
        }
        let lower = INDEX.to_ascii_lowercase();
        assert!(!lower.contains("<script>") && !lower.contains(" style="));
        assert!(!lower.contains("http://") && !lower.contains("https://"));
        assert!(!lower.contains("onclick") && !lower.contains("onload"));
    }

    #[test]
    fn the_script_never_writes_html_from_strings() {
        let js = ASSETS[0].2;
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(sink), "app.js uses {sink}");
        }
    }
}
