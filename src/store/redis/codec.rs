//! A [`BakeRecord`] as a Redis hash: one field per column, JSON for the structured ones, and no
//! field at all for an absent optional value. Phases and causes are stored by their wire names,
//! which the Lua scripts compare against.

use crate::bake::{BakeRecord, Cause, Phase};
use crate::store::{StoreError, StoreResult};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// The hash fields of a record, in `HSET` order.
pub(super) fn encode(r: &BakeRecord) -> StoreResult<Vec<(&'static str, String)>> {
    let mut f = vec![
        ("id", r.id.clone()),
        ("key", r.key.clone()),
        ("identity", r.identity.clone()),
        ("region", r.region.clone()),
        ("provider", r.provider.clone()),
        ("phase", r.phase.as_str().to_string()),
        ("request", to_json(&r.id, "request", &r.request)?),
        ("recipe", to_json(&r.id, "recipe", &r.recipe)?),
        ("inputs", to_json(&r.id, "inputs", &r.inputs)?),
        ("created_ms", r.created_ms.to_string()),
        ("updated_ms", r.updated_ms.to_string()),
        ("instance_id", r.instance_id.clone()),
    ];
    if let Some(c) = r.cause {
        f.push(("cause", c.as_str().to_string()));
    }
    if let Some(s) = r.started_ms {
        f.push(("started_ms", s.to_string()));
    }
    if let Some(d) = &r.details {
        f.push(("details", to_json(&r.id, "details", d)?));
    }
    if let Some(e) = &r.error {
        f.push(("error", e.clone()));
    }
    if let Some(x) = &r.execution_id {
        f.push(("execution_id", x.clone()));
    }
    if !r.report.is_empty() {
        f.push(("report", to_json(&r.id, "report", &r.report)?));
    }
    Ok(f)
}

/// A flat `HGETALL` reply (`field, value, field, value, …`) as a map.
pub(super) fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

/// A stored hash back as a record; `None` for an empty hash (no such bake).
pub(super) fn decode(mut h: HashMap<String, String>) -> StoreResult<Option<BakeRecord>> {
    if h.is_empty() {
        return Ok(None);
    }
    let id = h
        .remove("id")
        .ok_or_else(|| corrupt("?", "id", "missing"))?;
    let mut take = |field: &str| {
        h.remove(field)
            .ok_or_else(|| corrupt(&id, field, "missing"))
    };
    let (key, identity, region, provider) = (
        take("key")?,
        take("identity")?,
        take("region")?,
        take("provider")?,
    );
    let (phase, request, recipe, inputs) = (
        take("phase")?,
        take("request")?,
        take("recipe")?,
        take("inputs")?,
    );
    let (created, updated, instance_id) = (
        take("created_ms")?,
        take("updated_ms")?,
        take("instance_id")?,
    );
    let phase = phase
        .parse::<Phase>()
        .map_err(|e| corrupt(&id, "phase", e))?;
    let cause = h
        .remove("cause")
        .map(|c| serde_json::from_value::<Cause>(serde_json::Value::String(c)))
        .transpose()
        .map_err(|e| corrupt(&id, "cause", e))?;
    let details = match h.remove("details") {
        Some(text) => Some(from_json(&id, "details", &text)?),
        None => None,
    };
    let started_ms = match h.remove("started_ms") {
        Some(s) => Some(int(&id, "started_ms", &s)?),
        None => None,
    };
    let report = match h.remove("report") {
        Some(text) => from_json(&id, "report", &text)?,
        None => Default::default(),
    };
    Ok(Some(BakeRecord {
        report,
        request: from_json(&id, "request", &request)?,
        recipe: from_json(&id, "recipe", &recipe)?,
        inputs: from_json(&id, "inputs", &inputs)?,
        created_ms: int(&id, "created_ms", &created)?,
        updated_ms: int(&id, "updated_ms", &updated)?,
        started_ms,
        phase,
        cause,
        details,
        error: h.remove("error"),
        execution_id: h.remove("execution_id"),
        key,
        identity,
        region,
        provider,
        instance_id,
        id,
    }))
}

pub(super) fn to_json<T: Serialize>(id: &str, field: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| corrupt(id, field, e))
}

fn from_json<T: DeserializeOwned>(id: &str, field: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(id, field, e))
}

fn int(id: &str, field: &str, text: &str) -> StoreResult<i64> {
    text.parse().map_err(|e| corrupt(id, field, e))
}

pub(super) fn corrupt(id: &str, field: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("bake {id}, field {field}: {e}"))
}
