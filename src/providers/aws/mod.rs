//! AWS (Rosco's `AWSBakeHandler`): the base image and virtualization settings for a region, the
//! `aws_*` Packer variables with Rosco's names and conditions, and credentials for Packer's
//! environment. Credentials never go on Packer's command line, where any local user could read
//! them; Rosco-style templates whose `aws_access_key`/`aws_secret_key` stay empty fall back to
//! Packer's default chain, which reads that environment.

mod source;

use super::provider::{
    BakeHandler, HookError, Provider, RunContext, Selected, entry_for, selected_templates,
};
use super::recipe::{BakeError, Prepared, RecipeContext, Vars, push};
use crate::bake::{BakeRecord, BakeRequest, present};
use crate::builders::Builder;
use crate::config::{AwsVirtualizationSettings, BaseImage, Settings};
use crate::services::source_images::NameQuery;
use futures_util::future::BoxFuture;
use std::path::Path;

/// The AWS provider: AMIs through Packer's amazon builders.
pub struct Aws;

impl Provider for Aws {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.aws.enabled
    }

    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
        super::prepare::prepare(self, req, ctx)
    }

    /// ebs-direct bakes: the package artifacts staged as for the qemu provider (the builder
    /// copies them into the image's chroot).
    fn before_run<'a>(
        &'a self,
        run: RunContext<'a>,
        prepared: &'a mut Prepared,
    ) -> BoxFuture<'a, Result<Vec<String>, HookError>> {
        Box::pin(async move {
            if prepared.plan.builder != Builder::EbsDirect {
                return Ok(Vec::new());
            }
            let req = serde_json::from_value(run.record.request.clone()).unwrap_or_default();
            super::qemu::stage::prepare_run(run.data_dir, &run.record.id, prepared, &req)
                .await
                .map_err(Into::into)
        })
    }

    /// ebs-direct bakes: the staged artifacts go, and a work folder whose builder was killed
    /// (SIGKILL after the grace) is released: its mount, loop device and chroot processes.
    fn cleanup(&self, data_dir: &Path, record: &BakeRecord) {
        if record.recipe.builder.as_deref() == Some(Builder::EbsDirect.name()) {
            let _ = std::fs::remove_dir_all(crate::images::staging_dir(data_dir, &record.id));
            crate::builders::ebs_direct::release_ended(data_dir, &record.id);
        }
    }

    fn phase_markers(&self) -> crate::builders::packer::timeline::Markers {
        crate::builders::packer::timeline::AMAZON
    }

    fn base_images(&self, settings: &Settings) -> Vec<BaseImage> {
        let images = &settings.aws.bakery_defaults.base_images;
        images.iter().map(|b| b.base_image.clone()).collect()
    }

    /// Bound to the source image id it resolved to (`inputs.source_image`).
    fn stored_request(&self, record: &BakeRecord) -> BakeRequest {
        let mut req: BakeRequest =
            serde_json::from_value(record.request.clone()).unwrap_or_default();
        if let Some(id) = record.inputs["source_image"]
            .as_str()
            .filter(|id| source::is_image_id(id))
        {
            req.base_ami = Some(id.to_string());
        }
        req
    }

    fn configured_templates(&self, settings: &Settings) -> Vec<(String, &'static str)> {
        let images = &settings.aws.bakery_defaults.base_images;
        selected_templates(
            self.default_template(settings),
            "aws.bakeryDefaults.templateFile",
            images.iter().map(|b| &b.base_image),
        )
    }

    /// Bakes a base image that selects `template` (else the first base image) in its first
    /// region, from a stand-in source image id (a bake would look a name up first).
    fn sample_request(&self, settings: &Settings, template: &str) -> Option<(BakeRequest, String)> {
        let images = &settings.aws.bakery_defaults.base_images;
        let image = entry_for(images, |b| &b.base_image, template)?;
        let vs = image.virtualization_settings.first()?;
        let req = BakeRequest {
            vm_type: vs.virtualization_type.clone(),
            base_ami: Some("ami-00000000".into()),
            ..super::provider::sample_bake(Self::NAME, Some(&image.base_image.id), template)
        };
        Some((req, vs.region.clone()))
    }

    fn stand_in_variables(&self, settings: &Settings, config_dir: &std::path::Path) -> Vars {
        let d = &settings.aws.bakery_defaults;
        let mut v: Vars = [
            ("aws_region", "us-east-1"),
            ("aws_instance_type", "t3.micro"),
            ("aws_source_ami", "ami-00000000"),
            ("aws_target_ami", "kiln-validate"),
            ("aws_ssh_username", "ubuntu"),
            ("package_type", "deb"),
            ("packages", "kiln-validate"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        v.push(("configDir".into(), config_dir.display().to_string()));
        for (k, val) in [
            ("aws_subnet_id", &d.aws_subnet_id),
            ("aws_vpc_id", &d.aws_vpc_id),
            ("aws_ec2_endpoint", &d.aws_ec2_endpoint),
        ] {
            if let Some(val) = val {
                v.push((k.to_string(), val.clone()));
            }
        }
        v
    }
}

impl BakeHandler for Aws {
    /// The virtualization settings of the base image for the bake's region and vm type.
    type Own = AwsVirtualizationSettings;
    const NAME: &'static str = "aws";

    fn select(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
    ) -> Result<Selected<Self::Own>, BakeError> {
        select(req, ctx)
    }

    fn check_image_name(&self, name: &str) -> Result<(), BakeError> {
        crate::recipe::check_aws_image_name(name).map_err(BakeError::Invalid)
    }

    fn variables(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<Self::Own>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars {
        variables(req, ctx, base, image_name, app_version)
    }

    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str {
        let configured = settings.aws.bakery_defaults.template_file.as_deref();
        configured.unwrap_or("aws-ebs.json")
    }

    fn credentials(&self, settings: &Settings) -> Vars {
        credentials_env(settings)
    }
}

/// Finds the base image and its settings for the request's region and vm type, and the source
/// image's id (looking a name up through the context's `images`; see [`source`]).
fn select(
    req: &BakeRequest,
    ctx: &RecipeContext,
) -> Result<Selected<AwsVirtualizationSettings>, BakeError> {
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
    Ok(Selected {
        image: entry.base_image.clone(),
        vm_type,
        source_image: source_ami,
        source_name,
        own: settings.clone(),
    })
}

/// Rosco's `aws_*` variables, in Rosco's order and with its conditions.
fn variables(
    req: &BakeRequest,
    ctx: &RecipeContext,
    base: &Selected<AwsVirtualizationSettings>,
    image_name: &str,
    app_version: Option<&str>,
) -> Vars {
    let d = &ctx.settings.aws.bakery_defaults;
    let s = &base.own;
    let mut vars = Vec::new();
    push(&mut vars, "aws_region", Some(ctx.region.to_string()));
    push(&mut vars, "aws_instance_type", s.instance_type.clone());
    // Always an id: a name was looked up before Packer runs, as Rosco does.
    push(&mut vars, "aws_source_ami", Some(base.source_image.clone()));
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
fn credentials_env(settings: &Settings) -> Vars {
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
mod tests;
