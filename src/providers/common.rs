//! The provider-independent half of a recipe (Rosco's `produceBakeRecipe`): packages and their
//! CI artifacts, the image name and appversion, the repository, extended attributes, the
//! template and var file inside `configDir`, and the bake identity.

use super::source::SourceImages;
use super::{aws, checks, identity::Identity, limits::limits, paths::resolve_in_config_dir, qemu};
use crate::bake::{BakeRequest, input, present};
use crate::config::Settings;
use crate::recipe::{self, OsPackageName, PackageType};
use crate::telemetry::escaped;
use std::path::{Path, PathBuf};
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

/// Packer variables, in the order they go on the command line.
type Vars = Vec<(String, String)>;

/// Extended attributes kiln reads itself; they are not passed to Packer.
pub const KILN_ATTRIBUTES: [&str; 4] = [
    "kiln_timeout",
    "kiln_idle_timeout",
    qemu::BOOT_TEST,
    BUILDER_ATTRIBUTE,
];

/// The extended attribute that picks a bake's builder (`packer` or `ebs-direct`).
pub const BUILDER_ATTRIBUTE: &str = "kiln_builder";

/// What builds the image: Packer with a template (the default), or kiln's ebs-direct builder
/// (AWS: the root snapshot written from kiln's host through the EBS direct APIs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Builder {
    #[default]
    Packer,
    EbsDirect,
}

impl Builder {
    pub fn as_str(self) -> &'static str {
        match self {
            Builder::Packer => "packer",
            Builder::EbsDirect => "ebs-direct",
        }
    }

    fn parse(value: &str, field: &str) -> Result<Builder, BakeError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "packer" => Ok(Builder::Packer),
            "ebs-direct" => Ok(Builder::EbsDirect),
            _ => Err(BakeError::Invalid(format!(
                "{field} {} is not a builder: use packer or ebs-direct",
                escaped(value)
            ))),
        }
    }
}

/// The bake's builder: the request's `kiln_builder`, else the base image's `builder`, else
/// Packer; and what the ebs-direct builder cannot honour, refused before anything runs.
fn builder(
    req: &BakeRequest,
    provider: &str,
    image: &crate::config::BaseImage,
    kind: PackageType,
) -> Result<Builder, BakeError> {
    let attributes = req.extended_attributes();
    let (builder, field) = match attributes.get(BUILDER_ATTRIBUTE) {
        Some(v) => (
            Builder::parse(v, "extended attribute kiln_builder")?,
            "extended attribute kiln_builder",
        ),
        None => (
            Builder::parse(image.builder.as_deref().unwrap_or(""), "baseImage.builder")?,
            "the base image's builder",
        ),
    };
    if builder == Builder::EbsDirect {
        let refuse = |why: &str| {
            Err(BakeError::Invalid(format!(
                "{field} is ebs-direct, which {why}"
            )))
        };
        if provider != "aws" {
            return refuse("builds AWS images only: leave kiln_builder out for this provider");
        }
        if present(&req.template_file_name).is_some() {
            return refuse(
                "runs no Packer template: leave template_file_name out, or bake with packer",
            );
        }
        if kind == PackageType::Nupkg
            || image
                .os_type
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case("windows"))
        {
            return refuse(
                "installs deb and rpm packages on Linux only: bake Windows images with packer",
            );
        }
    }
    Ok(builder)
}

/// A request turned into everything needed to run Packer.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub provider: String,
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
    pub template_path: PathBuf,
    /// The var file's one spelling and path, if the request names one.
    pub var_file_name: Option<String>,
    pub var_file: Option<PathBuf>,
    /// Variables that may be shown: they go on Packer's command line.
    pub variables: Vec<(String, String)>,
    /// Variables named in `maskedPackerParameters`: handed over in a private var file.
    pub secret_variables: Vec<(String, String)>,
    /// The extended attributes the request set (the names), so checks can name their field
    /// and the identity can tell request-given secrets.
    pub requested_attributes: Vec<String>,
    /// Environment for Packer (credentials).
    pub env: Vec<(String, String)>,
    pub run_as_root: bool,
    pub builder: Builder,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
}

impl Prepared {
    /// Every secret value in this recipe, for redaction.
    pub fn secret_values(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .secret_variables
            .iter()
            .map(|(_, v)| v.clone())
            .collect();
        v.extend(self.env.iter().map(|(_, v)| v.clone()));
        v
    }
}

/// Builds the recipe for a request.
pub fn prepare(req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
    let provider = present(&req.cloud_provider_type)
        .unwrap_or(ctx.settings.default_provider())
        .to_string();
    let qemu_enabled = provider == "qemu" && ctx.settings.qemu.enabled;
    let aws_enabled = provider == "aws" && ctx.settings.aws.enabled;
    if !aws_enabled && !qemu_enabled {
        return Err(BakeError::UnknownProvider(provider));
    }
    // The request id becomes the bake id and names the bake's run directory.
    if let Some(id) = present(&req.request_id).filter(|id| !crate::images::safe_name(id)) {
        return Err(BakeError::Invalid(format!(
            "request_id {} is not usable as a bake id: use letters, digits, '.', '_', '-' and '+' (or leave it out)",
            escaped(id)
        )));
    }
    // The region comes from the URL path, not the body: the same rules as every request value.
    input::check_value("region (in the URL path)", ctx.region)
        .map_err(|e| BakeError::Invalid(e.to_string()))?;
    let attributes = req.extended_attributes();
    checks::check_attribute_names(attributes.keys().map(String::as_str))?;
    for token in req.packages() {
        recipe::check_package_token(token)
            .map_err(|e| BakeError::Invalid(format!("package: {e}")))?;
    }
    // The qemu provider: a local base image instead of an AMI (see `qemu`).
    let local = qemu_enabled.then(|| qemu::select(req, ctx)).transpose()?;
    let base = match &local {
        Some(l) => l.base.clone(),
        None => aws::select(req, ctx)?,
    };
    let kind: PackageType = base
        .image
        .package_type
        .as_deref()
        .unwrap_or("deb")
        .parse()
        .map_err(|e| BakeError::Invalid(format!("base image '{}': {e}", base.image.id)))?;
    let builder = builder(req, &provider, &base.image, kind)?;
    // Artifacts kiln copies into the image itself: the qemu VM's, and the ebs-direct chroot's.
    let stages_artifacts = local.is_some() || builder == Builder::EbsDirect;

    let requested = req.packages();
    let mut artifacts = req.package_artifacts.clone().unwrap_or_default();
    let mut staged = Vec::new();
    if stages_artifacts {
        artifacts = qemu::with_digests(kind, &artifacts)?;
        staged = qemu::staged_artifacts(kind, &artifacts)?;
    }
    let resolved = recipe::resolve_packages(kind, &requested, &artifacts)
        .map_err(|e| BakeError::Invalid(e.to_string()))?;
    let naming: Vec<OsPackageName> = resolved
        .install
        .iter()
        .chain(resolved.from_artifacts.iter())
        .cloned()
        .collect();
    let first = naming
        .iter()
        .find(|p| p.name.as_deref().is_some_and(|n| !n.is_empty()));
    let image_name = recipe::image_name(req, first, ctx.now_ms);
    let image_name_pattern = recipe::image_name_pattern(req, first);
    match &local {
        Some(_) => qemu::check_image_name(&image_name)?,
        None => recipe::check_aws_image_name(&image_name).map_err(BakeError::Invalid)?,
    }
    let app_version = recipe::app_version(req, first, kind);

    let (mut vars, packages) = match &local {
        Some(l) => (
            qemu::variables(ctx, req, &l.image, &image_name, app_version.as_deref()),
            qemu::packages_variable(kind, &resolved.install, &staged),
        ),
        None => (
            aws::variables(req, ctx, &base, &image_name, app_version.as_deref()),
            if stages_artifacts {
                qemu::packages_variable(kind, &resolved.install, &staged)
            } else {
                recipe::packages_parameter(kind, &resolved.install)
            },
        ),
    };
    common_variables(&mut vars, req, ctx, &base.image, kind, packages);
    // Belt and braces: every final value, derived ones included, once more.
    let requested_attributes: Vec<String> = requested_variable_names(&attributes);
    let kiln_made: Vec<String> = staged.iter().map(|s| s.guest_path()).collect();
    checks::check_variables(&vars, &requested_attributes, &kiln_made)?;
    let (variables, secret_variables) = split_secrets(vars, &ctx.settings.masked_parameters());

    let template_name = present(&req.template_file_name)
        .or(base.image.template_file.as_deref())
        .or(match &local {
            Some(_) => ctx
                .settings
                .qemu
                .template_file
                .as_deref()
                .or(Some("qemu.json")),
            None => ctx.settings.aws.bakery_defaults.template_file.as_deref(),
        })
        .unwrap_or("aws-ebs.json")
        .to_string();
    let template = resolve_in_config_dir(ctx.config_dir, &template_name, "template")
        .map_err(BakeError::Invalid)?;
    let var_file = present(&req.var_file_name)
        .map(|n| resolve_in_config_dir(ctx.config_dir, n, "var file"))
        .transpose()
        .map_err(BakeError::Invalid)?;
    let env = match &local {
        Some(_) => Vec::new(),
        None => aws::credentials_env(ctx.settings),
    };
    checks::check_command_line(
        &variables,
        &env,
        checks::inherited_env_bytes(),
        checks::arg_max(),
        &requested_attributes,
    )?;

    let (timeout, idle_timeout) = limits(req, &base.image, ctx.settings)?;
    let key = rosco_key(req, &provider, ctx.region, &base.vm_type);
    let mut prepared = Prepared {
        provider,
        key,
        identity: Identity::default(),
        image_name,
        image_name_pattern,
        app_version,
        source_image: base.source_ami.clone(),
        source_name: base.source_name.clone(),
        run_as_root: ctx
            .settings
            .templates_needing_root()
            .iter()
            .any(|t| super::paths::normal_name(t).as_deref() == Some(template.name.as_str())),
        template_name: template.name,
        template_path: template.path,
        var_file_name: var_file.as_ref().map(|f| f.name.clone()),
        var_file: var_file.map(|f| f.path),
        variables,
        secret_variables,
        requested_attributes,
        env,
        builder,
        timeout,
        idle_timeout,
    };
    prepared.identity = Identity::of(&prepared, req, ctx, &base, &artifacts);
    Ok(prepared)
}

/// Rosco's common variables, then the extended attributes, which override anything before.
fn common_variables(
    vars: &mut Vec<(String, String)>,
    req: &BakeRequest,
    ctx: &RecipeContext,
    image: &crate::config::BaseImage,
    kind: PackageType,
    packages: String,
) {
    let repository = image
        .custom_repository
        .clone()
        .filter(|r| !r.is_empty())
        .or(match kind {
            PackageType::Deb => ctx.settings.debian_repository.clone(),
            PackageType::Rpm => ctx.settings.yum_repository.clone(),
            PackageType::Nupkg => ctx.settings.chocolatey_repository.clone(),
        });
    push(vars, "repository", repository);
    push(vars, "package_type", Some(kind.as_str().to_string()));
    push(vars, "packages", Some(packages));
    push(vars, "build_host", req.build_host.clone());
    if req.upgrade == Some(true) {
        push(vars, "upgrade", Some("true".into()));
    }
    push(
        vars,
        "configDir",
        Some(ctx.config_dir.display().to_string()),
    );
    for (k, v) in req.extended_attributes() {
        if KILN_ATTRIBUTES.contains(&k.as_str()) {
            continue;
        }
        if k == "copy_to" || k == "share_with" {
            let items = v.split(',').map(str::trim).filter(|s| !s.is_empty());
            for (i, item) in items.enumerate() {
                set(vars, &format!("{k}_{}", i + 1), item.to_string());
            }
        } else {
            set(vars, &k, v);
        }
    }
}

/// Adds a variable when it has a value; Rosco skips null and empty values but keeps `false`
/// and `0`, and trims strings.
pub(super) fn push(vars: &mut Vec<(String, String)>, name: &str, value: Option<String>) {
    if let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        set(vars, name, v);
    }
}

fn set(vars: &mut Vec<(String, String)>, name: &str, value: String) {
    match vars.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value,
        None => vars.push((name.to_string(), value)),
    }
}

/// The variables the request's extended attributes set (`copy_to` and `share_with` set
/// `copy_to_N`/`share_with_N`; kiln's own attributes set none).
fn requested_variable_names(
    attributes: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in attributes {
        if KILN_ATTRIBUTES.contains(&k.as_str()) {
            continue;
        }
        if k == "copy_to" || k == "share_with" {
            let n = v.split(',').filter(|s| !s.trim().is_empty()).count();
            out.extend((1..=n).map(|i| format!("{k}_{i}")));
        } else {
            out.push(k.clone());
        }
    }
    out
}

fn split_secrets(vars: Vars, masked: &[String]) -> (Vars, Vars) {
    vars.into_iter().partition(|(k, _)| !masked.contains(k))
}

/// Rosco's bake key (`bake:aws:<os>:…:<region>:<vm>:enhancedNW…`), kept for `DELETE` and display.
fn rosco_key(req: &BakeRequest, provider: &str, region: &str, vm_type: &str) -> String {
    let mut parts: Vec<String> = vec!["bake".into(), provider.into()];
    for f in [
        &req.base_os,
        &req.base_ami,
        &req.ami_name,
        &req.template_file_name,
        &req.var_file_name,
    ] {
        if let Some(v) = present(f) {
            parts.push(v.into());
        }
    }
    parts.push(req.packages().join("|"));
    if let Some(arts) = req.package_artifacts.as_ref().filter(|a| !a.is_empty()) {
        let refs: Vec<&str> = arts
            .iter()
            .map(|a| a.reference.as_deref().unwrap_or(""))
            .collect();
        parts.push(refs.join("|"));
    }
    let nw = if req.enhanced_networking == Some(true) {
        "enhancedNWEnabled"
    } else {
        "enhancedNWDisabled"
    };
    parts.extend([region.to_string(), vm_type.to_string(), nw.to_string()]);
    parts.join(":")
}

#[cfg(test)]
#[path = "prepare_tests.rs"]
mod tests;
