//! AWS (Rosco's `AWSBakeHandler`): the base image and virtualization settings for a region, the
//! `aws_*` Packer variables with Rosco's names and conditions, and credentials for Packer's
//! environment. Credentials never go on Packer's command line, where any local user could read
//! them; Rosco-style templates whose `aws_access_key`/`aws_secret_key` stay empty fall back to
//! Packer's default chain, which reads that environment.

use super::common::{BakeError, RecipeContext, push};
use super::source::{self, NameQuery};
use crate::bake::{BakeRequest, present};
use crate::config::{AwsVirtualizationSettings, BaseImage, Settings};

/// The base image and settings a request bakes from.
#[derive(Debug, Clone)]
pub struct Base {
    pub image: BaseImage,
    pub settings: AwsVirtualizationSettings,
    pub vm_type: String,
    /// The source image's id (`ami-…`; for qemu, the base disk and its fingerprint).
    pub source_ami: String,
    /// The name it was looked up by, when the configured or requested source was a name.
    pub source_name: Option<String>,
}

/// Finds the base image and its settings for the request's region and vm type, and the source
/// image's id (looking a name up through the context's `images`; see [`super::source`]).
pub fn select(req: &BakeRequest, ctx: &RecipeContext) -> Result<Base, BakeError> {
    let defaults = &ctx.settings.aws.bakery_defaults;
    let vm_type = present(&req.vm_type)
        .or(defaults.default_virtualization_type.as_deref())
        .unwrap_or("hvm")
        .to_ascii_lowercase();
    if vm_type != "hvm" && vm_type != "pv" {
        return Err(BakeError::Invalid(format!(
            "vm_type '{vm_type}' is not a virtualization type (expected hvm or pv)"
        )));
    }
    let os = present(&req.base_os).unwrap_or_default();
    let Some(entry) = defaults.base_images.iter().find(|b| b.base_image.id == os) else {
        return Err(BakeError::Invalid(format!(
            "No virtualization settings found for '{os}'."
        )));
    };
    let Some(settings) = entry.virtualization_settings.iter().find(|v| {
        v.region == ctx.region
            && v.virtualization_type
                .as_deref()
                .unwrap_or("hvm")
                .eq_ignore_ascii_case(&vm_type)
    }) else {
        return Err(BakeError::Invalid(format!(
            "No virtualization settings found for region '{}', operating system '{os}', and vm type '{vm_type}'.",
            ctx.region
        )));
    };
    let label = present(&req.base_label).unwrap_or("release");
    let account = present(&req.account_name)
        .or(ctx.settings.default_account())
        .map(str::to_string);
    let no_base = || {
        BakeError::Invalid(format!(
            "No base image found for os '{os}', vm type '{vm_type}', region '{}', label: '{}', account: '{}'",
            ctx.region,
            present(&req.base_label).unwrap_or("null"),
            account.as_deref().unwrap_or("null"),
        ))
    };
    // Rosco's order: the request's base_ami, the setting's sourceAmi, the dynamic key.
    let given = present(&req.base_ami)
        .or(settings
            .source_ami
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty()))
        .map(str::to_string)
        .or_else(|| source::dynamic_base(ctx.settings, os, &vm_type, label, ctx.region))
        .ok_or_else(no_base)?;
    let (source_ami, source_name) = if source::is_image_id(&given) {
        (given, None)
    } else {
        let query = NameQuery {
            name: given.clone(),
            region: ctx.region.to_string(),
            account: account.clone(),
            owners: vec![
                settings
                    .source_ami_owner
                    .clone()
                    .filter(|o| !o.trim().is_empty())
                    .unwrap_or_else(|| "self".into()),
            ],
        };
        let found = ctx
            .images
            .find(&query)
            .map_err(|e| BakeError::Lookup(e.to_string()))?;
        // An answer that is not an image id (a misbehaving service) counts as no match.
        let id = source::pick(&found, &vm_type, settings.most_recent)
            .filter(|id| source::is_image_id(id))
            .ok_or_else(no_base)?;
        (id, Some(given))
    };
    Ok(Base {
        image: entry.base_image.clone(),
        settings: settings.clone(),
        vm_type,
        source_ami,
        source_name,
    })
}

/// Rosco's `aws_*` variables, in Rosco's order and with its conditions.
pub fn variables(
    req: &BakeRequest,
    ctx: &RecipeContext,
    base: &Base,
    image_name: &str,
    app_version: Option<&str>,
) -> Vec<(String, String)> {
    let d = &ctx.settings.aws.bakery_defaults;
    let s = &base.settings;
    let mut vars = Vec::new();
    push(&mut vars, "aws_region", Some(ctx.region.to_string()));
    push(&mut vars, "aws_instance_type", s.instance_type.clone());
    // Always an id: a name was looked up before Packer runs, as Rosco does.
    push(&mut vars, "aws_source_ami", Some(base.source_ami.clone()));
    push(&mut vars, "aws_target_ami", Some(image_name.to_string()));
    push(&mut vars, "aws_ssh_username", s.ssh_user_name.clone());
    push(&mut vars, "aws_winrm_username", s.win_rm_user_name.clone());
    push(&mut vars, "aws_spot_price", s.spot_price.clone());
    if s.spot_price.as_deref() == Some("auto") {
        push(
            &mut vars,
            "aws_spot_price_auto_product",
            s.spot_price_auto_product.clone(),
        );
    }
    push(&mut vars, "aws_subnet_id", d.aws_subnet_id.clone());
    push(&mut vars, "aws_vpc_id", d.aws_vpc_id.clone());
    push(
        &mut vars,
        "aws_associate_public_ip_address",
        d.aws_associate_public_ip_address.map(|b| b.to_string()),
    );
    if req.enhanced_networking == Some(true) {
        push(&mut vars, "aws_ena_support", Some("true".into()));
    }
    push(&mut vars, "aws_ec2_endpoint", d.aws_ec2_endpoint.clone());
    if d.aws_skip_validation {
        push(&mut vars, "aws_skip_validation", Some("true".into()));
    }
    push(&mut vars, "build_info_url", req.build_info_url.clone());
    push(&mut vars, "appversion", app_version.map(String::from));
    vars
}

/// Credentials for Packer's environment, when the bakery has explicit keys; otherwise nothing,
/// and Packer uses its default chain (environment, shared config, instance profile / IAM role).
pub fn credentials_env(settings: &Settings) -> Vec<(String, String)> {
    let d = &settings.aws.bakery_defaults;
    match (&d.aws_access_key, &d.aws_secret_key) {
        (Some(access), Some(secret)) if !access.trim().is_empty() && !secret.is_empty() => vec![
            ("AWS_ACCESS_KEY_ID".into(), access.trim().to_string()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                secret.expose().trim().to_string(),
            ),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[path = "aws_tests.rs"]
mod tests;
