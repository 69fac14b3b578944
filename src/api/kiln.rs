//! kiln's own view of a bake, next to Rosco's v1 shapes: its phase (with `queued` and the queue
//! position), why it ended, its identity and the inputs behind it, and a live log stream.

use super::create::{RebakeQuery, create_bake, reuse_reason};
use super::{ApiError, Stopping};
use crate::bake::BakeRecord;
use crate::bakery::Bakery;
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;

/// The full view of one bake.
pub fn bake_view(bakery: &Bakery, r: &BakeRecord) -> Value {
    json!({
        "id": r.id,
        "phase": r.phase,
        "queue_position": bakery.queue_position(&r.id),
        "cause": r.cause,
        "error": r.error,
        "region": r.region,
        "provider": r.provider,
        "rosco_key": r.key,
        "identity": r.identity,
        "inputs": r.inputs,
        "recipe": r.recipe,
        "request": r.request,
        "created_ms": r.created_ms,
        "started_ms": r.started_ms,
        "updated_ms": r.updated_ms,
        "details": r.details,
        "image": local_image(bakery, r),
        "timeline": bakery.timeline(r),
        "diagnosis": r.report.diagnosis,
    })
}

/// `POST /api/kiln/v1/gc` — runs retention now (`kiln gc`): settled bake records past
/// `kiln.retention`, local run dirs, staging and qemu images. Answers what it freed.
pub async fn gc(State(bakery): State<Bakery>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let path = uri.path();
    let report = tokio::task::spawn_blocking(move || bakery.gc())
        .await
        .map_err(|e| ApiError::internal(path, e))?
        .map_err(|e| ApiError::from((path, e)))?;
    Ok(Json(json!(report)))
}

/// The provider's own view of the bake's image (qemu: the image on this machine: path, size,
/// sha256, kernel and initrd, the boot check's result and the command that boots it).
fn local_image(bakery: &Bakery, r: &BakeRecord) -> Option<Value> {
    crate::providers::registry::find(&r.provider)?.image(&bakery.data_dir(), r)
}

/// `POST /api/kiln/v1/{region}/bakes[?rebake=1]` — a bake request as in v1, answered with
/// kiln's view of the bake and, when an existing bake answered it, why.
pub async fn create(
    State(bakery): State<Bakery>,
    Path(region): Path<String>,
    Query(q): Query<RebakeQuery>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let path = uri.path();
    let created = create_bake(bakery.clone(), region, q, headers, path.to_string(), body).await?;
    let reason = created.reused.then(|| reuse_reason(&created.record));
    let view =
        super::error::blocking(path, move || Ok(bake_view(&bakery, &created.record))).await?;
    Ok(Json(json!({
        "reused": created.reused,
        "reason": reason,
        "bake": view,
    })))
}

/// `GET /api/kiln/v1/bakes/{id}`.
pub async fn bake(
    State(bakery): State<Bakery>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let path = uri.path().to_string();
    // The view may read the provider's files (a local image's `image.json`) besides the store.
    super::error::blocking(&path.clone(), move || {
        let record = bakery
            .store()
            .get(&id)
            .map_err(|e| ApiError::from((path.as_str(), e)))?
            .ok_or_else(|| ApiError::not_found(&path, format!("no bake with id '{id}'")))?;
        Ok(Json(bake_view(&bakery, &record)))
    })
    .await
}

#[derive(Deserialize)]
pub struct StreamQuery {
    from: Option<usize>,
}

/// `GET /api/kiln/v1/bakes/{id}/logs/stream?from=N` — Server-Sent Events: the log from byte `N`
/// (or the `Last-Event-ID`), then new text as it arrives; each event's id is the offset after
/// it, so a client can resume. The stream ends when the bake has ended and all is sent (an
/// `end` event), or when kiln stops (a `stopping` event: resume from the last id later).
pub async fn stream_logs(
    State(bakery): State<Bakery>,
    Extension(Stopping(stopping)): Extension<Stopping>,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let path = uri.path();
    let known = {
        let id = id.clone();
        super::error::store_call(&bakery, path, move |s| s.phase(&id)).await?
    };
    if known.is_none() {
        return Err(ApiError::not_found(path, format!("no bake with id '{id}'")));
    }
    let resume = headers
        .get("Last-Event-ID")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.parse().ok());
    let offset = q.from.or(resume).unwrap_or(0);
    let events = stream::unfold(
        (bakery, id, offset, false, stopping),
        |(bakery, id, offset, done, stopping)| async move {
            if done {
                return None;
            }
            loop {
                if stopping.is_cancelled() {
                    return Some((Ok(stopping_event()), (bakery, id, offset, true, stopping)));
                }
                // The phase, not the whole record, and on a blocking thread.
                let (finished, text) = {
                    let (store, id) = (bakery.store().clone(), id.clone());
                    // A bake whose task still runs here is still writing its log, whatever its
                    // phase says (a cancel reads CANCELED at once; Packer's last lines follow).
                    let writing = bakery.runs_here(&id);
                    tokio::task::spawn_blocking(move || {
                        let finished = !writing
                            && store
                                .phase(&id)
                                .ok()
                                .flatten()
                                .is_none_or(|p| p.is_finished());
                        (
                            finished,
                            store.read_log_from(&id, offset).unwrap_or_default(),
                        )
                    })
                    .await
                    .unwrap_or((true, String::new()))
                };
                if !text.is_empty() {
                    let next = offset + text.len();
                    let event = Event::default().id(next.to_string()).data(text);
                    return Some((Ok(event), (bakery, id, next, false, stopping)));
                }
                if finished {
                    let event = Event::default().event("end").data("bake finished");
                    return Some((Ok(event), (bakery, id, offset, true, stopping)));
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stopping.cancelled() => {}
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The last event of a stream cut short by kiln stopping.
fn stopping_event() -> Event {
    Event::default()
        .event("stopping")
        .data("kiln is stopping; the bake goes on: resume from the last event id")
}
