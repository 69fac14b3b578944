//! Huawei Cloud (Rosco's `HuaweiCloudBakeHandler`): ECS images through the `huaweicloud-ecs`
//! builder. The base image is found by `base_os` and region; the request's `base_ami` replaces
//! the configured `sourceImageId`. Rosco passes the password as the masked variable
//! `huaweicloud_password`; kiln puts it in Packer's environment (`HUAWEICLOUD_PASSWORD`), which
//! Rosco's shipped template reads as that variable's default.
//!
//! Packer 1.6.6 has no `huaweicloud-ecs` builder: it lives in Huawei's Packer plugin. Before a
//! bake starts, [`plugin::probe`] asks the installed Packer whether it knows the builder, and a
//! bake it cannot run fails at once with a message naming the plugin.

mod plugin;

use super::provider::{BakeHandler, HookError, Provider, RunContext, Selected, selected_templates};
use super::recipe::{BakeError, Prepared, RecipeContext, Vars, push};
use super::regional::{self, NameRule};
use crate::bake::{BakeDetails, BakeRequest};
use crate::builders::packer::output::Outcome;
use crate::config::{BaseImage, HuaweicloudVirtualizationSettings, Settings};
use futures_util::future::BoxFuture;

/// The Huawei Cloud provider.
pub struct Huaweicloud;

/// IMS's image-name rule: 1 to 128 characters; letters, digits, spaces and `_ - .`; no space
/// at either end.
const NAME_RULE: NameRule = NameRule {
    cloud: "Huawei Cloud",
    min: 1,
    max: 128,
    first: |c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'),
    rest: |c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '),
    described: "1 to 128 characters: letters, digits, spaces and _ - . but no space at either end",
};

impl Provider for Huaweicloud {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.huaweicloud.enabled
    }

    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
        super::prepare::prepare(self, req, ctx)
    }

    fn base_images(&self, settings: &Settings) -> Vec<BaseImage> {
        let images = &settings.huaweicloud.bakery_defaults.base_images;
        images.iter().map(|b| b.base_image.clone()).collect()
    }

    /// Refuses to start a bake the installed Packer cannot run (no `huaweicloud-ecs` builder).
    fn before_run<'a>(
        &'a self,
        run: RunContext<'a>,
        _prepared: &'a mut Prepared,
    ) -> BoxFuture<'a, Result<Vec<String>, HookError>> {
        Box::pin(async move {
            plugin::probe(run.packer).await?;
            Ok(Vec::new())
        })
    }

    fn details(&self, run: RunContext<'_>, outcome: &Outcome) -> BakeDetails {
        regional::details(Self::NAME, run, outcome)
    }

    fn configured_templates(&self, settings: &Settings) -> Vec<(String, &'static str)> {
        let images = &settings.huaweicloud.bakery_defaults.base_images;
        selected_templates(
            self.default_template(settings),
            "huaweicloud.bakeryDefaults.templateFile",
            images.iter().map(|b| &b.base_image),
        )
    }

    fn sample_request(&self, settings: &Settings, template: &str) -> Option<(BakeRequest, String)> {
        let images = &settings.huaweicloud.bakery_defaults.base_images;
        regional::sample_request(Self::NAME, images, |v| &v.region, template)
    }
}

impl BakeHandler for Huaweicloud {
    type Own = HuaweicloudVirtualizationSettings;
    const NAME: &'static str = "huaweicloud";

    fn select(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
    ) -> Result<Selected<Self::Own>, BakeError> {
        let d = &ctx.settings.huaweicloud.bakery_defaults;
        let (image, settings) =
            regional::find(&d.base_images, req, ctx.region, |v| &v.region, ".")?;
        let source = regional::source_image(
            req,
            &settings.source_image_id,
            "sourceImageId",
            "huaweicloud",
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
        if name.ends_with(' ') {
            return Err(BakeError::Invalid(format!(
                "image name '{name}' is not a valid Huawei Cloud image name: it may not end with a space; set ami_name or ami_suffix to fix it"
            )));
        }
        NAME_RULE.check(name)
    }

    /// Rosco's `huaweicloud_*` variables and conditions (the password excepted: see the module).
    fn variables(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<Self::Own>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars {
        let d = &ctx.settings.huaweicloud.bakery_defaults;
        let s = &base.own;
        let mut vars = Vec::new();
        push(
            &mut vars,
            "huaweicloud_region",
            Some(ctx.region.to_string()),
        );
        push(
            &mut vars,
            "huaweicloud_image_name",
            Some(image_name.to_string()),
        );
        push(&mut vars, "huaweicloud_eip_type", s.eip_type.clone());
        push(
            &mut vars,
            "huaweicloud_ssh_username",
            s.ssh_user_name.clone(),
        );
        push(
            &mut vars,
            "huaweicloud_instance_type",
            s.instance_type.clone(),
        );
        push(
            &mut vars,
            "huaweicloud_source_image_id",
            Some(base.source_image.clone()),
        );
        push(&mut vars, "huaweicloud_auth_url", d.auth_url.clone());
        push(&mut vars, "huaweicloud_username", d.username.clone());
        push(
            &mut vars,
            "huaweicloud_project_name",
            d.project_name.clone(),
        );
        push(&mut vars, "huaweicloud_domain_name", d.domain_name.clone());
        push(
            &mut vars,
            "huaweicloud_insecure",
            d.insecure.map(|b| b.to_string()),
        );
        push(&mut vars, "huaweicloud_vpc_id", d.vpc_id.clone());
        push(&mut vars, "huaweicloud_subnet_id", d.subnet_id.clone());
        push(
            &mut vars,
            "huaweicloud_security_group",
            d.security_group.clone(),
        );
        push(
            &mut vars,
            "huaweicloud_eip_bandwidth_size",
            d.eip_bandwidth_size
                .filter(|n| *n > 0)
                .map(|n| n.to_string()),
        );
        push(&mut vars, "build_info_url", req.build_info_url.clone());
        push(&mut vars, "appversion", app_version.map(String::from));
        vars
    }

    /// Rosco's key ends in the region.
    fn key_tail(&self, _req: &BakeRequest, ctx: &RecipeContext, _vm_type: &str) -> Vec<String> {
        vec![ctx.region.to_string()]
    }

    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str {
        let configured = settings
            .huaweicloud
            .bakery_defaults
            .template_file
            .as_deref();
        configured.unwrap_or("huaweicloud.json")
    }

    fn credentials(&self, settings: &Settings) -> Vars {
        let d = &settings.huaweicloud.bakery_defaults;
        match &d.password {
            Some(p) if !p.is_empty() => {
                vec![("HUAWEICLOUD_PASSWORD".into(), p.expose().trim().to_string())]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
