//! The provider-independent half of a recipe (Rosco's `produceBakeRecipe`): packages and their
//! CI artifacts, the image name and appversion, the repository, extended attributes, the
//! template and var file inside `configDir`, and the bake identity.

use super::{aws, identity::Identity, paths::resolve_in_config_dir, qemu};
use crate::bake::{BakeRequest, present};
use crate::config::{Settings, parse_duration};
use crate::recipe::{self, OsPackageName, PackageType};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a recipe is built from besides the request.
pub struct RecipeContext<'a> {
    pub settings: &'a Settings,
    pub config_dir: &'a Path,
    pub region: &'a str,
    pub now_ms: i64,
}

/// Why a request cannot be baked. Every variant is the requester's to fix (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    /// No enabled provider of that name (Rosco's message, kept verbatim).
    #[error("Unknown provider type '{0}'.")]
    UnknownProvider(String),
    /// Anything else about the request; the message says what to change.
    #[error("{0}")]
    Invalid(String),
}

/// Packer variables, in the order they go on the command line.
type Vars = Vec<(String, String)>;

/// Extended attributes kiln reads itself; they are not passed to Packer.
pub const KILN_ATTRIBUTES: [&str; 3] = ["kiln_timeout", "kiln_idle_timeout", qemu::BOOT_TEST];

/// A request turned into everything needed to run Packer.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub provider: String,
    /// Rosco's bake key, kept for display and `DELETE`.
    pub key: String,
    pub identity: Identity,
    pub image_name: String,
    pub app_version: Option<String>,
    pub template_name: String,
    pub template_path: PathBuf,
    pub var_file: Option<PathBuf>,
    /// Variables that may be shown: they go on Packer's command line.
    pub variables: Vec<(String, String)>,
    /// Variables named in `maskedPackerParameters`: handed over in a private var file.
    pub secret_variables: Vec<(String, String)>,
    /// Environment for Packer (credentials).
    pub env: Vec<(String, String)>,
    pub run_as_root: bool,
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
            "request_id '{id}' is not usable as a bake id: use letters, digits, '.', '_', '-' and '+' (or leave it out)"
        )));
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

    let requested = req.packages();
    let mut artifacts = req.package_artifacts.clone().unwrap_or_default();
    let mut staged = Vec::new();
    if local.is_some() {
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
            recipe::packages_parameter(kind, &resolved.install),
        ),
    };
    common_variables(&mut vars, req, ctx, &base.image, kind, packages);
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
    let template_path = resolve_in_config_dir(ctx.config_dir, &template_name, "template")
        .map_err(BakeError::Invalid)?;
    let var_file = present(&req.var_file_name)
        .map(|n| resolve_in_config_dir(ctx.config_dir, n, "var file"))
        .transpose()
        .map_err(BakeError::Invalid)?;

    let (timeout, idle_timeout) = limits(req, &base.image, ctx.settings)?;
    let key = rosco_key(req, &provider, ctx.region, &base.vm_type);
    let mut prepared = Prepared {
        provider,
        key,
        identity: Identity::default(),
        image_name,
        app_version,
        run_as_root: ctx
            .settings
            .templates_needing_root()
            .contains(&template_name),
        template_name,
        template_path,
        var_file,
        variables,
        secret_variables,
        env: match &local {
            Some(_) => Vec::new(),
            None => aws::credentials_env(ctx.settings),
        },
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

fn split_secrets(vars: Vars, masked: &[String]) -> (Vars, Vars) {
    vars.into_iter().partition(|(k, _)| !masked.contains(k))
}

/// The total and no-output limits: a bake's extended attribute beats its base image's setting,
/// which beats the bakery's.
fn limits(
    req: &BakeRequest,
    image: &crate::config::BaseImage,
    settings: &Settings,
) -> Result<(Option<Duration>, Option<Duration>), BakeError> {
    let attrs = req.extended_attributes();
    let attr = |name: &str| -> Result<Option<Duration>, BakeError> {
        attrs
            .get(name)
            .map(|t| {
                parse_duration(t)
                    .map_err(|e| BakeError::Invalid(format!("extended attribute '{name}': {e}")))
            })
            .transpose()
    };
    let total = attr("kiln_timeout")?
        .or(image.timeout.map(|d| d.0))
        .or(settings.job_timeout());
    let idle = attr("kiln_idle_timeout")?
        .or(image.idle_timeout.map(|d| d.0))
        .or(settings.idle_timeout());
    Ok((
        total.filter(|d| !d.is_zero()),
        idle.filter(|d| !d.is_zero()),
    ))
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
