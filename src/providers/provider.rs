//! What a provider is. Two traits, because a provider has two faces:
//!
//! - [`BakeHandler`] (Rosco's `CloudProviderBakeHandler`): the recipe rules of one cloud —
//!   base-image selection, the image-name rule, its variables, credentials and default
//!   template. Pure functions of the request and the config (but for a source image looked up
//!   by name), statically typed: what `select` found ([`Selected::own`]) is the provider's own
//!   type. [`super::prepare::prepare`] runs every handler through the same steps.
//! - [`Provider`]: what the rest of kiln sees (object-safe, registered in
//!   [`super::registry`]): the recipe, `/bakeOptions`, the hooks around a run (staging before,
//!   finishing after), the artifact shape of `GET bake` and a provider's own view of its image.
//!
//! Nothing outside `providers` asks which provider a bake has: it asks the provider.

use super::recipe::{BakeError, Prepared, RecipeContext, Vars};
use crate::bake::{Artifact, BakeDetails, BakeRecord, BakeRequest};
use crate::builders::packer::output::Outcome;
use crate::config::{BaseImage, Settings};
use crate::recipe::{OsPackageName, PackageType};
use futures_util::future::BoxFuture;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// The base image a request bakes from, as the provider selected it.
#[derive(Debug, Clone)]
pub struct Selected<T> {
    /// The configured base image (id, package type, template, repository, limits).
    pub image: BaseImage,
    /// The virtualization type (`hvm`, `pv`; a provider without one names itself).
    pub vm_type: String,
    /// The source image's id (`ami-…`; for qemu, the base disk and its fingerprint).
    pub source_image: String,
    /// The name it was looked up by, when the configured or requested source was a name.
    pub source_name: Option<String>,
    /// What only this provider reads again (AWS: the virtualization settings).
    pub own: T,
}

/// The recipe rules of one provider.
pub trait BakeHandler: Sync {
    /// What `select` finds besides the common [`Selected`] fields.
    type Own;

    /// Rosco's `cloudProviderType`.
    const NAME: &'static str;

    /// Extended attributes this provider reads itself (not passed to Packer).
    const OWN_ATTRIBUTES: &'static [&'static str] = &[];

    /// Variables this provider always masks (Rosco's `getMaskedPackerParameters`), besides the
    /// bakery's `maskedPackerParameters`: handed to the builder in memory only.
    const MASKED: &'static [&'static str] = &[];

    /// The base image and source image for the request (may look a source name up: blocking).
    fn select(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
    ) -> Result<Selected<Self::Own>, BakeError>;

    /// The image name, and the same with its per-run part left open (what the identity keeps):
    /// Rosco's `ImageNameFactory` unless the provider names images its own way.
    fn image_name(
        &self,
        req: &BakeRequest,
        first: Option<&OsPackageName>,
        now_ms: i64,
    ) -> (String, String) {
        (
            crate::recipe::image_name(req, first, now_ms),
            crate::recipe::image_name_pattern(req, first),
        )
    }

    /// Whether the provider can make an image of that name.
    fn check_image_name(&self, name: &str) -> Result<(), BakeError>;

    /// The appversion (Rosco's, unless the provider has a fallback of its own).
    fn app_version(
        &self,
        req: &BakeRequest,
        first: Option<&OsPackageName>,
        kind: PackageType,
        _now_ms: i64,
    ) -> Option<String> {
        crate::recipe::app_version(req, first, kind)
    }

    /// The request's package artifacts as the identity sees them (a provider that reads
    /// artifacts itself adds their digests).
    fn artifacts(
        &self,
        _kind: PackageType,
        artifacts: &[Artifact],
    ) -> Result<Vec<Artifact>, BakeError> {
        Ok(artifacts.to_vec())
    }

    /// The `packages` variable, and the values in it kiln made itself (exempt from the checks
    /// of request values).
    fn packages(
        &self,
        kind: PackageType,
        install: &[OsPackageName],
        _artifacts: &[Artifact],
    ) -> Result<(String, Vec<String>), BakeError> {
        Ok((crate::recipe::packages_parameter(kind, install), Vec::new()))
    }

    /// The provider's own Packer variables, in Rosco's order.
    fn variables(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<Self::Own>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars;

    /// The template when neither the request nor the base image names one.
    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str;

    /// Credentials for the builder's environment (never its command line).
    fn credentials(&self, _settings: &Settings) -> Vars {
        Vec::new()
    }

    /// Credentials for the bake `base` selected (a provider whose credentials depend on the
    /// request's account); the bakery's [`BakeHandler::credentials`] unless overridden.
    fn credentials_for(&self, _base: &Selected<Self::Own>, settings: &Settings) -> Vars {
        self.credentials(settings)
    }

    /// The end of Rosco's bake key (its `produceProviderSpecificBakeKeyComponent` and what
    /// follows): AWS's region, vm type and enhanced networking unless the provider says
    /// otherwise.
    fn key_tail(&self, req: &BakeRequest, ctx: &RecipeContext, vm_type: &str) -> Vec<String> {
        let nw = if req.enhanced_networking == Some(true) {
            "enhancedNWEnabled"
        } else {
            "enhancedNWDisabled"
        };
        vec![ctx.region.to_string(), vm_type.to_string(), nw.to_string()]
    }
}

/// Where a run's hooks work.
pub struct RunContext<'a> {
    pub data_dir: &'a Path,
    /// The Packer executable (`kiln.packerPath`).
    pub packer: &'a Path,
    pub record: &'a BakeRecord,
}

/// A hook's failure: the bake fails with this error (its chain is shown).
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// One provider, as the rest of kiln uses it.
pub trait Provider: Send + Sync {
    /// Rosco's `cloudProviderType` (`aws`, `qemu`, …).
    fn name(&self) -> &'static str;

    fn enabled(&self, settings: &Settings) -> bool;

    /// The provider's own masked variables ([`BakeHandler::MASKED`]).
    fn masked(&self) -> &'static [&'static str] {
        &[]
    }

    /// The recipe for a request (blocking: see [`BakeHandler::select`]).
    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError>;

    /// The base images `/bakeOptions/<provider>` lists.
    fn base_images(&self, settings: &Settings) -> Vec<BaseImage>;

    /// Before the build starts, once the bake's id is known: staging, per-run variables.
    /// Returns lines for the bake's log.
    fn before_run<'a>(
        &'a self,
        _run: RunContext<'a>,
        _prepared: &'a mut Prepared,
    ) -> BoxFuture<'a, Result<Vec<String>, HookError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// After the build succeeded: checks and bookkeeping of the made image. An error fails the
    /// bake with its message.
    fn after_run<'a>(
        &'a self,
        _run: RunContext<'a>,
        _say: &'a mut (dyn FnMut(&str) + Send),
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Which lines of the builder's output start which phase of the bake's timeline.
    fn phase_markers(&self) -> crate::builders::packer::timeline::Markers {
        &[]
    }

    /// After the bake ended, however it ended: remove what `before_run` made for the run.
    fn cleanup(&self, _data_dir: &Path, _record: &BakeRecord) {}

    /// Rosco's `Bake` for a successful run.
    fn details(&self, run: RunContext<'_>, outcome: &Outcome) -> BakeDetails {
        image_details(self.name(), run.record, outcome)
    }

    /// A stored bake's request, to prepare it again after a restart: bound to what was
    /// resolved when the bake was created, so preparing it again looks nothing up.
    fn stored_request(&self, record: &BakeRecord) -> BakeRequest {
        serde_json::from_value(record.request.clone()).unwrap_or_default()
    }

    /// The provider's own view of a bake's image (kiln's bake view), if it keeps one.
    fn image(&self, _data_dir: &Path, _record: &BakeRecord) -> Option<serde_json::Value> {
        None
    }

    /// For `kiln config validate`: the templates this provider's config selects, each with the
    /// key that selects it.
    fn configured_templates(&self, _settings: &Settings) -> Vec<(String, &'static str)> {
        Vec::new()
    }

    /// For `kiln config validate`: a request that bakes `template` from this provider's
    /// configured base images, and its region; it must look nothing up.
    fn sample_request(
        &self,
        _settings: &Settings,
        _template: &str,
    ) -> Option<(BakeRequest, String)> {
        None
    }

    /// Variables `before_run` adds once the bake's id is known (not in the recipe).
    fn run_variables(&self) -> &'static [&'static str] {
        &[]
    }

    /// For `kiln config validate`: representative variables when the config has nothing to
    /// bake.
    fn stand_in_variables(&self, _settings: &Settings, _config_dir: &Path) -> Vars {
        Vec::new()
    }
}

/// For `kiln config validate`: the default template (with the key that sets it), then each
/// base image's own.
pub(super) fn selected_templates<'a>(
    default: &str,
    key: &'static str,
    images: impl IntoIterator<Item = &'a BaseImage>,
) -> Vec<(String, &'static str)> {
    let mut out = vec![(default.to_string(), key)];
    for image in images {
        if let Some(t) = &image.template_file {
            out.push((t.clone(), "a base image's templateFile"));
        }
    }
    out
}

/// Rosco's account rule: the request's `account_name` among `accounts` (`key` in the config),
/// else the first; Rosco's message when none matches, and the names that would.
pub(super) fn resolve_account<'a, A>(
    accounts: &'a [A],
    name_of: fn(&A) -> &str,
    req: &BakeRequest,
    cloud: &str,
    key: &str,
) -> Result<&'a A, BakeError> {
    let wanted = crate::bake::present(&req.account_name);
    let found = match wanted {
        Some(name) => accounts.iter().find(|a| name_of(a) == name),
        None => accounts.first(),
    };
    found.ok_or_else(|| {
        let names: Vec<&str> = accounts.iter().map(name_of).collect();
        BakeError::Invalid(format!(
            "Could not resolve {cloud} account: (account_name={}). Set account_name to one of {key} ({}).",
            wanted.unwrap_or("null"),
            if names.is_empty() { "none configured".to_string() } else { names.join(", ") }
        ))
    })
}

/// For `kiln config validate`: the request of a bake of base image `os` (if any) with
/// `template`, for a provider's [`Provider::sample_request`] to complete.
pub(super) fn sample_bake(provider: &str, os: Option<&str>, template: &str) -> BakeRequest {
    BakeRequest {
        package_name: Some("kiln-validate".into()),
        base_os: os.map(String::from),
        template_file_name: Some(template.to_string()),
        cloud_provider_type: Some(provider.to_string()),
        ..Default::default()
    }
}

/// For `kiln config validate`: the entry whose base image selects `template`, else the first.
pub(super) fn entry_for<'a, T>(
    entries: &'a [T],
    image: impl Fn(&T) -> &BaseImage,
    template: &str,
) -> Option<&'a T> {
    entries
        .iter()
        .find(|e| image(e).template_file.as_deref() == Some(template))
        .or(entries.first())
}

/// Rosco's `Bake` for a cloud image: the image id per region from the builder's artifact lines,
/// decorated as a Spinnaker artifact `<provider>/image` (with the request's build info).
pub fn image_details(provider: &str, record: &BakeRecord, outcome: &Outcome) -> BakeDetails {
    let image_name = outcome
        .image_name
        .clone()
        .unwrap_or_else(|| record.recipe.name.clone());
    let request: BakeRequest = serde_json::from_value(record.request.clone()).unwrap_or_default();
    let kind = format!("{provider}/image");
    let artifact = |location: &str, reference: &str| Artifact {
        kind: Some(kind.clone()),
        name: Some(image_name.clone()),
        location: Some(location.to_string()),
        reference: Some(reference.to_string()),
        uuid: Some(record.id.clone()),
        ..Artifact::default()
    };
    let artifacts: Vec<Artifact> = outcome
        .artifacts
        .iter()
        .map(|(region, id)| {
            let region = if region.is_empty() {
                &record.region
            } else {
                region
            };
            artifact(region, id)
        })
        .collect();
    let own = artifacts
        .iter()
        .find(|a| a.location.as_deref() == Some(record.region.as_str()))
        .or(artifacts.first())
        .cloned();
    let mut decorated = own
        .clone()
        .unwrap_or_else(|| artifact(&record.region, &image_name));
    decorated.metadata = Some(build_info(&request));
    BakeDetails {
        id: record.id.clone(),
        ami: own.as_ref().and_then(|a| a.reference.clone()),
        image_name: Some(image_name),
        regions: (!artifacts.is_empty()).then(|| {
            artifacts
                .iter()
                .filter_map(|a| a.location.clone())
                .collect()
        }),
        artifact: Some(decorated),
        artifacts: (artifacts.len() > 1).then_some(artifacts),
        base_ami: None,
    }
}

/// The artifact metadata Rosco adds: the CI build's URL and number.
pub fn build_info(request: &BakeRequest) -> serde_json::Map<String, serde_json::Value> {
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "build_info_url".into(),
        request.build_info_url.clone().into(),
    );
    metadata.insert("build_number".into(), request.build_number.clone().into());
    metadata
}

/// A finished bake of `provider` named `name`, as the store would hand it to `details` (for
/// tests).
#[cfg(test)]
pub(crate) fn test_record_named(
    provider: &str,
    region: &str,
    name: &str,
    request: serde_json::Value,
) -> BakeRecord {
    BakeRecord {
        id: "b1".into(),
        key: String::new(),
        identity: String::new(),
        region: region.into(),
        provider: provider.into(),
        phase: crate::bake::Phase::Succeeded,
        cause: None,
        request,
        recipe: crate::bake::Recipe {
            name: name.into(),
            ..Default::default()
        },
        inputs: serde_json::Value::Null,
        created_ms: 0,
        updated_ms: 0,
        started_ms: None,
        details: None,
        error: None,
        execution_id: None,
        instance_id: String::new(),
        report: Default::default(),
    }
}

/// A finished bake of `prepared` (for tests).
#[cfg(test)]
pub(crate) fn test_record(
    prepared: &super::recipe::Prepared,
    region: &str,
    request: serde_json::Value,
) -> BakeRecord {
    let mut record = test_record_named(prepared.provider, region, &prepared.image_name, request);
    record.key = prepared.key.clone();
    record.identity = prepared.identity.digest.clone();
    record.inputs = prepared.identity.inputs.clone();
    record.recipe.variables = prepared.plan.variables.iter().cloned().collect();
    record
}

/// Where a test's run hooks work.
#[cfg(test)]
pub(crate) fn test_run<'a>(record: &'a BakeRecord) -> RunContext<'a> {
    RunContext {
        data_dir: Path::new("/nonexistent"),
        packer: Path::new("packer"),
        record,
    }
}
