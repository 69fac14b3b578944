//! `GET /openapi.json`: the OpenAPI 3.1 description of every route.
//!
//! The document (`openapi.json`) is written by hand rather than derived (utoipa): most handlers
//! answer `serde_json::Value` views and Rosco's shapes, which a derive cannot see, so the
//! annotations would be as long as the document and pull in a proc-macro tree. It is kept true
//! two ways: the test below checks it describes exactly the router's routes ([`super::ROUTES`],
//! [`super::SEPARATE_ROUTES`]),
//! and `tests/e2e/openapi.rs` runs schemathesis against a live kiln with it.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, embedded in the binary.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// `(path, method)` for every operation, as the document names them.
    fn described() -> BTreeSet<(String, String)> {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().expect("a path item");
                item.keys()
                    .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
                    .map(|m| (path.clone(), m.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn the_document_describes_exactly_the_routes_the_router_serves() {
        let served: BTreeSet<(String, String)> = crate::api::ROUTES
            .iter()
            .chain(crate::api::SEPARATE_ROUTES)
            .flat_map(|(path, methods)| {
                // `any` answers every method; the document describes it as GET.
                methods.iter().map(|m| {
                    let m = if *m == "any" { "get" } else { m };
                    (path.to_string(), m.to_string())
                })
            })
            .collect();
        let described = described();
        let undescribed: Vec<_> = served.difference(&described).collect();
        let stale: Vec<_> = described.difference(&served).collect();
        assert!(
            undescribed.is_empty(),
            "routes missing from src/api/openapi/openapi.json: {undescribed:?}"
        );
        assert!(
            stale.is_empty(),
            "openapi.json describes routes the router does not serve: {stale:?}"
        );
    }

    #[test]
    fn every_operation_has_an_id_responses_and_its_path_parameters() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        let mut ids = BTreeSet::new();
        for (path, method) in described() {
            let op = &doc["paths"][&path][&method];
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}"));
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(params, in_path, "{method} {path}");
        }
    }
}
