//! Alibaba Cloud (Rosco's `AliCloudBakeHandler`): ECS images through Packer's `alicloud-ecs`
//! builder. The base image is found by `base_os` and region; the request's `base_ami` replaces
//! the configured `sourceImage`. Rosco passes the access keys as `alicloud_access_key` and
//! `alicloud_secret_key` variables; kiln puts them in Packer's environment instead
//! (`ALICLOUD_ACCESS_KEY`, `ALICLOUD_SECRET_KEY`), which the builder reads when the template's
//! keys are empty, as Rosco's shipped templates leave them.

use super::provider::{BakeHandler, Provider, RunContext, Selected, selected_templates};
use super::recipe::{BakeError, Prepared, RecipeContext, Vars, push};
use super::regional::{self, NameRule};
use crate::bake::{BakeDetails, BakeRequest};
use crate::builders::packer::output::Outcome;
use crate::config::{AlicloudVirtualizationSettings, BaseImage, Settings};

/// The Alibaba Cloud provider.
pub struct Alicloud;

/// ECS's image-name rule (Packer 1.6.6 checks the same before it starts an instance): 2 to 128
/// characters, a letter first, then letters, digits and `. _ : -`; never `http://`.
const NAME_RULE: NameRule = NameRule {
    cloud: "Alibaba Cloud",
    min: 2,
    max: 128,
    first: |c| c.is_alphabetic(),
    rest: |c| c.is_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'),
    described: "2 to 128 characters: a letter, then letters, digits and . _ : -",
};

impl Provider for Alicloud {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.alicloud.enabled
    }

    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
        super::prepare::prepare(self, req, ctx)
    }

    fn base_images(&self, settings: &Settings) -> Vec<BaseImage> {
        let images = &settings.alicloud.bakery_defaults.base_images;
        images.iter().map(|b| b.base_image.clone()).collect()
    }

    fn details(&self, run: RunContext<'_>, outcome: &Outcome) -> BakeDetails {
        regional::details(Self::NAME, run, outcome)
    }

    fn configured_templates(&self, settings: &Settings) -> Vec<(String, &'static str)> {
        let images = &settings.alicloud.bakery_defaults.base_images;
        selected_templates(
            self.default_template(settings),
            "alicloud.bakeryDefaults.templateFile",
            images.iter().map(|b| &b.base_image),
        )
    }

    fn sample_request(&self, settings: &Settings, template: &str) -> Option<(BakeRequest, String)> {
        let images = &settings.alicloud.bakery_defaults.base_images;
        regional::sample_request(Self::NAME, images, |v| &v.region, template)
    }
}

impl BakeHandler for Alicloud {
    type Own = AlicloudVirtualizationSettings;
    const NAME: &'static str = "alicloud";

    fn select(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
    ) -> Result<Selected<Self::Own>, BakeError> {
        let d = &ctx.settings.alicloud.bakery_defaults;
        let (image, settings) =
            regional::find(&d.base_images, req, ctx.region, |v| &v.region, ".")?;
        let source =
            regional::source_image(req, &settings.source_image, "sourceImage", "alicloud")?;
        Ok(Selected {
            image: image.clone(),
            vm_type: Self::NAME.into(),
            source_image: source,
            source_name: None,
            own: settings.clone(),
        })
    }

    fn check_image_name(&self, name: &str) -> Result<(), BakeError> {
        if name.starts_with("http://") || name.starts_with("https://") {
            return Err(BakeError::Invalid(format!(
                "image name '{name}' is not a valid Alibaba Cloud image name: it may not start with http:// or https://; set ami_name or ami_suffix to fix it"
            )));
        }
        NAME_RULE.check(name)
    }

    /// Rosco's `alicloud_*` variables and conditions (the keys excepted: see the module).
    fn variables(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<Self::Own>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars {
        let d = &ctx.settings.alicloud.bakery_defaults;
        let s = &base.own;
        let mut vars = Vec::new();
        push(&mut vars, "alicloud_region", Some(ctx.region.to_string()));
        push(&mut vars, "alicloud_instance_type", s.instance_type.clone());
        push(
            &mut vars,
            "alicloud_source_image",
            Some(base.source_image.clone()),
        );
        push(
            &mut vars,
            "alicloud_target_image",
            Some(image_name.to_string()),
        );
        push(&mut vars, "alicloud_ssh_username", s.ssh_user_name.clone());
        push(
            &mut vars,
            "alicloud_vswitch_id",
            d.alicloud_v_switch_id.clone(),
        );
        push(&mut vars, "alicloud_vpc_id", d.alicloud_vpc_id.clone());
        push(&mut vars, "build_info_url", req.build_info_url.clone());
        push(&mut vars, "appversion", app_version.map(String::from));
        vars
    }

    /// Rosco's key ends in the region.
    fn key_tail(&self, _req: &BakeRequest, ctx: &RecipeContext, _vm_type: &str) -> Vec<String> {
        vec![ctx.region.to_string()]
    }

    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str {
        let configured = settings.alicloud.bakery_defaults.template_file.as_deref();
        configured.unwrap_or("alicloud.json")
    }

    /// Both keys or none, as Rosco's condition; none leaves the builder to its own chain
    /// (`ALICLOUD_*` in kiln's environment, an ECS RAM role).
    fn credentials(&self, settings: &Settings) -> Vars {
        let d = &settings.alicloud.bakery_defaults;
        match (&d.alicloud_access_key, &d.alicloud_secret_key) {
            (Some(access), Some(secret)) if !access.trim().is_empty() && !secret.is_empty() => {
                vec![
                    ("ALICLOUD_ACCESS_KEY".into(), access.trim().to_string()),
                    (
                        "ALICLOUD_SECRET_KEY".into(),
                        secret.expose().trim().to_string(),
                    ),
                ]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
