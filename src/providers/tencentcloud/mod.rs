//! Tencent Cloud (Rosco's `TencentCloudBakeHandler`): CVM images through Packer's
//! `tencentcloud-cvm` builder. The base image is found by `base_os` and region; the request's
//! `base_ami` replaces the configured `sourceImageId`. Rosco passes `secretId`/`secretKey` as
//! the `tencentcloud_secret_id`/`tencentcloud_secret_key` variables; kiln puts them in Packer's
//! environment instead (`TENCENTCLOUD_SECRET_ID`, `TENCENTCLOUD_SECRET_KEY`), which Rosco's
//! shipped template reads as those variables' defaults.

use super::provider::{BakeHandler, Provider, RunContext, Selected, selected_templates};
use super::recipe::{BakeError, Prepared, RecipeContext, Vars, push};
use super::regional::{self, NameRule};
use crate::bake::{BakeDetails, BakeRequest};
use crate::builders::packer::output::Outcome;
use crate::config::{BaseImage, Settings, TencentcloudVirtualizationSettings};

/// The Tencent Cloud provider.
pub struct Tencentcloud;

/// CVM's image-name rule as Packer 1.6.6's `tencentcloud-cvm` checks it: at most 60
/// characters; kiln also refuses whitespace, which the console refuses.
const NAME_RULE: NameRule = NameRule {
    cloud: "Tencent Cloud",
    min: 1,
    max: 60,
    first: |c| !c.is_whitespace(),
    rest: |c| !c.is_whitespace(),
    described: "1 to 60 characters, no spaces",
};

impl Provider for Tencentcloud {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.tencentcloud.enabled
    }

    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
        super::prepare::prepare(self, req, ctx)
    }

    fn base_images(&self, settings: &Settings) -> Vec<BaseImage> {
        let images = &settings.tencentcloud.bakery_defaults.base_images;
        images.iter().map(|b| b.base_image.clone()).collect()
    }

    fn details(&self, run: RunContext<'_>, outcome: &Outcome) -> BakeDetails {
        regional::details(Self::NAME, run, outcome)
    }

    fn configured_templates(&self, settings: &Settings) -> Vec<(String, &'static str)> {
        let images = &settings.tencentcloud.bakery_defaults.base_images;
        selected_templates(
            self.default_template(settings),
            "tencentcloud.bakeryDefaults.templateFile",
            images.iter().map(|b| &b.base_image),
        )
    }

    fn sample_request(&self, settings: &Settings, template: &str) -> Option<(BakeRequest, String)> {
        let images = &settings.tencentcloud.bakery_defaults.base_images;
        regional::sample_request(Self::NAME, images, |v| &v.region, template)
    }
}

impl BakeHandler for Tencentcloud {
    type Own = TencentcloudVirtualizationSettings;
    const NAME: &'static str = "tencentcloud";

    fn select(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
    ) -> Result<Selected<Self::Own>, BakeError> {
        let d = &ctx.settings.tencentcloud.bakery_defaults;
        // Rosco's second message has no period here.
        let (image, settings) = regional::find(&d.base_images, req, ctx.region, |v| &v.region, "")?;
        let source = regional::source_image(
            req,
            &settings.source_image_id,
            "sourceImageId",
            "tencentcloud",
        )?;
        Ok(Selected {
            image: image.clone(),
            vm_type: Self::NAME.into(),
            source_image: source,
            source_name: None,
            own: settings.clone(),
        })
    }

    fn check_image_name(&self, name: &str) -> Result<(), BakeError> {
        NAME_RULE.check(name)
    }

    /// Rosco's `tencentcloud_*` variables and conditions (the keys excepted: see the module).
    /// Rosco passes no `build_info_url` for Tencent Cloud; neither does kiln.
    fn variables(
        &self,
        _req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<Self::Own>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars {
        let d = &ctx.settings.tencentcloud.bakery_defaults;
        let s = &base.own;
        let mut vars = Vec::new();
        push(
            &mut vars,
            "tencentcloud_region",
            Some(ctx.region.to_string()),
        );
        push(&mut vars, "tencentcloud_zone", s.zone.clone());
        push(
            &mut vars,
            "tencentcloud_instance_type",
            s.instance_type.clone(),
        );
        push(
            &mut vars,
            "tencentcloud_source_image_id",
            Some(base.source_image.clone()),
        );
        push(
            &mut vars,
            "tencentcloud_target_image",
            Some(image_name.to_string()),
        );
        push(
            &mut vars,
            "tencentcloud_ssh_username",
            s.ssh_user_name.clone(),
        );
        push(&mut vars, "tencentcloud_subnet_id", d.subnet_id.clone());
        push(&mut vars, "tencentcloud_vpc_id", d.vpc_id.clone());
        push(
            &mut vars,
            "tencentcloud_associate_public_ip_address",
            d.associate_public_ip_address.map(|b| b.to_string()),
        );
        push(&mut vars, "appversion", app_version.map(String::from));
        vars
    }

    /// Rosco's key ends in the region.
    fn key_tail(&self, _req: &BakeRequest, ctx: &RecipeContext, _vm_type: &str) -> Vec<String> {
        vec![ctx.region.to_string()]
    }

    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str {
        let configured = settings
            .tencentcloud
            .bakery_defaults
            .template_file
            .as_deref();
        configured.unwrap_or("tencentcloud.json")
    }

    /// Both or none, as Rosco's condition (none: the builder's own `TENCENTCLOUD_*` from kiln's
    /// environment).
    fn credentials(&self, settings: &Settings) -> Vars {
        let d = &settings.tencentcloud.bakery_defaults;
        match (&d.secret_id, &d.secret_key) {
            (Some(id), Some(key)) if !id.trim().is_empty() && !key.is_empty() => vec![
                ("TENCENTCLOUD_SECRET_ID".into(), id.trim().to_string()),
                (
                    "TENCENTCLOUD_SECRET_KEY".into(),
                    key.expose().trim().to_string(),
                ),
            ],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
