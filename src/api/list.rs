//! `GET /api/kiln/v1/bakes?state=&package=&region=&provider=&limit=&cursor=`: kiln's bakes,
//! newest first, a page at a time (see [`crate::store::listing`] for the order and the cursor).

use super::ApiError;
use crate::bake::Phase;
use crate::bakery::Bakery;
use crate::store::listing::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::store::{BakeFilter, Cursor};
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};

/// The longest `package`, `region` or `provider` a listing takes.
const MAX_TEXT: usize = 128;

/// What a listing asks for, read from the query string.
#[derive(Debug, PartialEq)]
pub struct ListQuery {
    pub filter: BakeFilter,
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// The query parameters a listing takes, for the error that names an unknown one.
pub const PARAMETERS: [&str; 6] = ["state", "package", "region", "provider", "limit", "cursor"];

impl ListQuery {
    /// Reads the query string. An empty value counts as absent (what an HTML form sends for an
    /// empty field). Errors name the parameter and say what it takes.
    pub fn parse(query: Option<&str>) -> Result<ListQuery, String> {
        let mut q = ListQuery {
            filter: BakeFilter::default(),
            after: None,
            limit: DEFAULT_LIMIT,
        };
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !PARAMETERS.contains(&name.as_ref()) {
                return Err(format!(
                    "unknown query parameter '{}'; a listing takes {}",
                    name.escape_debug(),
                    PARAMETERS.join(", ")
                ));
            }
            if seen.contains(&name.to_string()) {
                return Err(format!(
                    "query parameter '{name}' is given twice; give it once"
                ));
            }
            seen.push(name.to_string());
            if value.is_empty() {
                continue;
            }
            match name.as_ref() {
                "state" => q.filter.phase = Some(phase(&value)?),
                "package" => q.filter.package = Some(text("package", &value)?),
                "region" => q.filter.region = Some(text("region", &value)?),
                "provider" => q.filter.provider = Some(text("provider", &value)?),
                "limit" => q.limit = limit(&value)?,
                _ => {
                    q.after = Some(Cursor::decode(&value).ok_or_else(|| {
                        "query parameter 'cursor' is not a cursor kiln gave out; pass a \
                         next_cursor from an earlier page unchanged, or leave it out for the \
                         newest bakes"
                            .to_string()
                    })?);
                }
            }
        }
        Ok(q)
    }
}

fn phase(value: &str) -> Result<Phase, String> {
    Phase::ALL
        .into_iter()
        .find(|p| p.as_str() == value)
        .ok_or_else(|| {
            let names: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
            format!(
                "query parameter 'state' must be one of {}, not '{}'",
                names.join(", "),
                value.escape_debug()
            )
        })
}

fn text(name: &str, value: &str) -> Result<String, String> {
    if value.len() > MAX_TEXT || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "query parameter '{name}' must be one word of at most {MAX_TEXT} bytes, without \
             spaces or control characters"
        ));
    }
    Ok(value.to_string())
}

fn limit(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        // Capped rather than refused: a client asking for "all" gets the largest page.
        Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
        _ => Err(format!(
            "query parameter 'limit' must be a whole number from 1 to {MAX_LIMIT} (larger ones \
             are capped to {MAX_LIMIT}), not '{}'",
            value.escape_debug()
        )),
    }
}

/// `GET /api/kiln/v1/bakes`: `{"bakes": [<bake view>…], "next_cursor": "…" | null}`.
pub async fn list(State(bakery): State<Bakery>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let path = uri.path();
    let q = ListQuery::parse(uri.query()).map_err(|e| ApiError::bad_request(path, e))?;
    let view_of = bakery.clone();
    let (bakes, next) = super::error::store_call(&bakery, path, move |s| {
        let page = s.list(&q.filter, q.after.as_ref(), q.limit)?;
        // The views read local image files (qemu): on this blocking thread too.
        let bakes: Vec<Value> = page
            .bakes
            .iter()
            .map(|r| super::kiln::bake_view(&view_of, r))
            .collect();
        Ok((bakes, page.next.map(|c| c.encode())))
    })
    .await?;
    Ok(Json(json!({"bakes": bakes, "next_cursor": next})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reads_every_parameter_and_empty_ones_count_as_absent() {
        let cursor = Cursor {
            created_ms: 5,
            id: "b".to_string(),
        };
        let text = format!(
            "state=running&package=nginx&region=us-east-1&provider=aws&limit=7&cursor={}",
            cursor.encode()
        );
        let q = ListQuery::parse(Some(&text)).unwrap();
        assert_eq!(
            q,
            ListQuery {
                filter: BakeFilter {
                    phase: Some(Phase::Running),
                    package: Some("nginx".to_string()),
                    region: Some("us-east-1".to_string()),
                    provider: Some("aws".to_string()),
                },
                after: Some(cursor),
                limit: 7,
            }
        );
        let empty = ListQuery::parse(Some("state=&package=&cursor=&limit=")).unwrap();
        assert_eq!(empty, ListQuery::parse(None).unwrap());
        assert_eq!(empty.limit, DEFAULT_LIMIT);
        assert_eq!(
            ListQuery::parse(Some("limit=100000")).unwrap().limit,
            MAX_LIMIT
        );
    }

    #[test]
    fn a_bad_parameter_is_refused_naming_it() {
        for (query, names) in [
            ("state=done", "'state'"),
            ("limit=0", "'limit'"),
            ("limit=-1", "'limit'"),
            ("limit=ten", "'limit'"),
            ("cursor=zz", "'cursor'"),
            ("package=a%20b", "'package'"),
            ("region=a%0Ab", "'region'"),
            ("provider=", ""),
            ("stat=running", "'stat'"),
            ("state=queued&state=running", "'state'"),
        ] {
            let got = ListQuery::parse(Some(query));
            if names.is_empty() {
                assert!(got.is_ok(), "{query}: {got:?}");
            } else {
                let err = got.unwrap_err();
                assert!(err.contains(names), "{query}: {err}");
            }
        }
        let long = format!("region={}", "r".repeat(MAX_TEXT + 1));
        assert!(
            ListQuery::parse(Some(&long))
                .unwrap_err()
                .contains("'region'")
        );
    }
}
