//! What a recipe is made of and from: the context it is built in, what can go wrong, and the
//! prepared recipe itself ([`Prepared`]), which ends in the [`BuildPlan`] a builder runs.

use crate::builders::BuildPlan;
use crate::config::Settings;
use crate::services::source_images::SourceImages;
use std::path::Path;
use std::time::Duration;

/// What a recipe is built from besides the request.
pub struct RecipeContext<'a> {
    pub settings: &'a Settings,
    pub config_dir: &'a Path,
    pub region: &'a str,
    pub now_ms: i64,
    /// Where a source image given by name is looked up (network I/O: prepare on a blocking
    /// thread).
    pub images: &'a dyn SourceImages,
}

/// Why a request cannot be baked: the requester's to fix (HTTP 400), but for a failed lookup.
#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    /// No enabled provider of that name (Rosco's message, kept verbatim).
    #[error("Unknown provider type '{0}'.")]
    UnknownProvider(String),
    /// Anything else about the request; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// Looking the source image up failed (Clouddriver or EC2 unreachable or refusing): not the
    /// request's fault (HTTP 503).
    #[error("{0}")]
    Lookup(String),
}

/// A bake's identity and the inputs it was computed from (secrets excluded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub digest: String,
    pub inputs: serde_json::Value,
}

/// Packer variables, in the order they go on the command line.
pub type Vars = Vec<(String, String)>;

/// A request turned into everything needed to build its image.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub provider: &'static str,
    /// Rosco's bake key, kept for display and `DELETE`.
    pub key: String,
    pub identity: Identity,
    pub image_name: String,
    /// The image name with its suffix left open: what the identity keeps of the name.
    pub image_name_pattern: String,
    pub app_version: Option<String>,
    /// The source image: its id, and the name it was looked up by (AWS).
    pub source_image: String,
    pub source_name: Option<String>,
    /// The template's one spelling relative to configDir (`./x.json` and `a/../x.json` are
    /// `x.json`), used for `templatesNeedingRoot`, the identity and logs.
    pub template_name: String,
    /// The var file's one spelling, if the request names one.
    pub var_file_name: Option<String>,
    /// The extended attributes the request set (the names), so checks can name their field
    /// and the identity can tell request-given secrets.
    pub requested_attributes: Vec<String>,
    /// What the builder is given: template, variables, credentials.
    pub plan: BuildPlan,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
}

/// Adds a variable when it has a value; Rosco skips null and empty values but keeps `false`
/// and `0`, and trims strings.
pub(super) fn push(vars: &mut Vars, name: &str, value: Option<String>) {
    if let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        set(vars, name, v);
    }
}

/// Sets a variable, replacing an earlier value of the same name in its place.
pub(super) fn set(vars: &mut Vars, name: &str, value: String) {
    match vars.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value,
        None => vars.push((name.to_string(), value)),
    }
}
