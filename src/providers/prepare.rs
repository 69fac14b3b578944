//! The steps of a recipe every provider shares (Rosco's `produceBakeRecipe`): the request's
//! checks, packages and their CI artifacts, the image name and appversion, the repository,
//! extended attributes, the template and var file inside `configDir`, the limits and the bake
//! identity, around the provider's own rules ([`BakeHandler`]).

use super::provider::BakeHandler;
use super::recipe::{BakeError, Identity, Prepared, RecipeContext, Vars, push, set};
use super::{checks, limits::limits, paths::resolve_in_config_dir};
use crate::bake::{BakeRequest, input, present};
use crate::builders::{BuildPlan, Builder};
use crate::recipe::{self, OsPackageName, PackageType};
use crate::telemetry::escaped;

/// Extended attributes kiln reads itself, for every provider; they are not passed to Packer.
pub const KILN_ATTRIBUTES: [&str; 3] = ["kiln_timeout", "kiln_idle_timeout", BUILDER_ATTRIBUTE];

/// The extended attribute that picks a bake's builder (`packer` or `ebs-direct`).
pub const BUILDER_ATTRIBUTE: &str = "kiln_builder";

fn parse_builder(value: &str, field: &str) -> Result<Builder, BakeError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "packer" => Ok(Builder::Packer),
        "ebs-direct" => Ok(Builder::EbsDirect),
        _ => Err(BakeError::Invalid(format!(
            "{field} {} is not a builder: use packer or ebs-direct",
            escaped(value)
        ))),
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
            parse_builder(v, "extended attribute kiln_builder")?,
            "extended attribute kiln_builder",
        ),
        None => (
            parse_builder(image.builder.as_deref().unwrap_or(""), "baseImage.builder")?,
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

/// Builds the recipe for a request with one provider's rules: the steps every provider shares
/// (checks, packages, image name, common variables, template, limits, identity) around the
/// handler's own.
pub fn prepare<H: BakeHandler>(
    handler: &H,
    req: &BakeRequest,
    ctx: &RecipeContext,
) -> Result<Prepared, BakeError> {
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
    let base = handler.select(req, ctx)?;
    let kind: PackageType = base
        .image
        .package_type
        .as_deref()
        .unwrap_or("deb")
        .parse()
        .map_err(|e| BakeError::Invalid(format!("base image '{}': {e}", base.image.id)))?;

    let builder = builder(req, H::NAME, &base.image, kind)?;
    // ebs-direct copies the package artifacts into the image itself, as the qemu provider does.
    let requested = req.packages();
    let given = req.package_artifacts.clone().unwrap_or_default();
    let artifacts = match builder {
        Builder::EbsDirect => super::staged::with_digests(kind, &given)?,
        Builder::Packer => handler.artifacts(kind, &given)?,
    };
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
    let (image_name, image_name_pattern) = handler.image_name(req, first, ctx.now_ms);
    handler.check_image_name(&image_name)?;
    let app_version = handler.app_version(req, first, kind, ctx.now_ms);

    let mut vars = handler.variables(req, ctx, &base, &image_name, app_version.as_deref());
    let (packages, kiln_made) = match builder {
        Builder::EbsDirect => {
            let staged = super::staged::staged_artifacts(kind, &artifacts)?;
            let made = staged
                .iter()
                .map(super::staged::StagedArtifact::guest_path)
                .collect();
            (
                super::staged::packages_variable(kind, &resolved.install, &staged),
                made,
            )
        }
        Builder::Packer => handler.packages(kind, &resolved.install, &artifacts)?,
    };
    let own = |k: &str| KILN_ATTRIBUTES.contains(&k) || H::OWN_ATTRIBUTES.contains(&k);
    common_variables(&mut vars, req, ctx, &base.image, kind, packages, &own);
    // Belt and braces: every final value, derived ones included, once more.
    let requested_attributes: Vec<String> = requested_variable_names(&attributes, &own);
    checks::check_variables(&vars, &requested_attributes, &kiln_made)?;
    let mut masked = ctx.settings.masked_parameters();
    masked.extend(H::MASKED.iter().map(|m| m.to_string()));
    let (variables, secret_variables) = split_secrets(vars, &masked);

    let template_name = present(&req.template_file_name)
        .or(base.image.template_file.as_deref())
        .unwrap_or(handler.default_template(ctx.settings))
        .to_string();
    let template = resolve_in_config_dir(ctx.config_dir, &template_name, "template")
        .map_err(BakeError::Invalid)?;
    let var_file = present(&req.var_file_name)
        .map(|n| resolve_in_config_dir(ctx.config_dir, n, "var file"))
        .transpose()
        .map_err(BakeError::Invalid)?;
    let env = handler.credentials_for(&base, ctx.settings);
    checks::check_command_line(
        &variables,
        &env,
        checks::inherited_env_bytes(),
        checks::arg_max(),
        &requested_attributes,
    )?;

    let (timeout, idle_timeout) = limits(req, &base.image, ctx.settings)?;
    let key = rosco_key(req, H::NAME, handler.key_tail(req, ctx, &base.vm_type));
    let run_as_root = ctx
        .settings
        .templates_needing_root()
        .iter()
        .any(|t| super::paths::normal_name(t).as_deref() == Some(template.name.as_str()));
    let mut prepared = Prepared {
        provider: H::NAME,
        key,
        identity: Identity::default(),
        image_name,
        image_name_pattern,
        app_version,
        source_image: base.source_image.clone(),
        source_name: base.source_name.clone(),
        template_name: template.name,
        var_file_name: var_file.as_ref().map(|f| f.name.clone()),
        requested_attributes,
        plan: BuildPlan {
            builder,
            template: template.path,
            var_file: var_file.map(|f| f.path),
            variables,
            secret_variables,
            env,
            run_as_root,
            run: None,
        },
        timeout,
        idle_timeout,
    };
    prepared.identity = Identity::of(&prepared, req, ctx, &base, &artifacts);
    Ok(prepared)
}

/// Rosco's common variables, then the extended attributes, which override anything before.
fn common_variables(
    vars: &mut Vars,
    req: &BakeRequest,
    ctx: &RecipeContext,
    image: &crate::config::BaseImage,
    kind: PackageType,
    packages: String,
    own: &dyn Fn(&str) -> bool,
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
        if own(&k) {
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

/// The variables the request's extended attributes set (`copy_to` and `share_with` set
/// `copy_to_N`/`share_with_N`; kiln's own attributes set none).
fn requested_variable_names(
    attributes: &std::collections::BTreeMap<String, String>,
    own: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in attributes {
        if own(k) {
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

/// Rosco's bake key (`bake:aws:<os>:…:<region>:<vm>:enhancedNW…`; the provider says how it ends),
/// kept for `DELETE` and display.
fn rosco_key(req: &BakeRequest, provider: &str, tail: Vec<String>) -> String {
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
    parts.extend(tail);
    parts.join(":")
}

#[cfg(test)]
mod tests;
