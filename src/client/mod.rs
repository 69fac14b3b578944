//! kiln's command-line client of a running kiln: `kiln bakes list`.
//!
//! (Issue 17's `kiln bake` and `kiln bakes show|logs|cancel` bring a fuller client here, with
//! one `Server` helper; `list` is written against a plain `get` function so it moves onto that
//! helper unchanged.)

pub mod bakes;
pub mod list;

use anyhow::Context;
use serde_json::Value;
use std::time::Duration;

/// GETs `base` + `path`: the status and the JSON body (text as a JSON string when it is not
/// JSON). An HTTP error status is an answer, not a failure.
pub fn get_json(base: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // kiln is usually on this host: an HTTP(S)_PROXY in the environment is not for it.
        .proxy(None)
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut answer = agent
        .get(format!("{base}{path}"))
        .call()
        .with_context(|| format!("cannot reach kiln at {base}; is `kiln serve` running?"))?;
    let status = answer.status().as_u16();
    let text = answer
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_string()?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}
