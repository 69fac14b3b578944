//! Docker (Rosco's `DockerBakeHandler`): a container image baked from a source image with
//! Packer's docker builder, tagged `<targetRepository>/<image>:<tag>` and pushed. The image is
//! named `[organization/]` plus `ami_name` or the first package's name (Rosco's
//! `DockerImageNameFactory`); the tag is the extended attribute `docker_target_image_tag`, else
//! the request's `commit_hash`, else the bake's start time.

use super::provider::{
    BakeHandler, Provider, Selected, entry_for, image_details, selected_templates,
};
use super::recipe::{BakeError, Prepared, RecipeContext, Vars, push};
use crate::bake::{BakeDetails, BakeRequest, present};
use crate::builders::packer::output::Outcome;
use crate::config::{BaseImage, Settings};
use crate::providers::RunContext;
use crate::recipe::{OsPackageName, PackageType};
use std::path::Path;

/// The Docker provider.
pub struct Docker;

/// The extended attribute that names the tag.
const TAG_ATTRIBUTE: &str = "docker_target_image_tag";

impl Provider for Docker {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.docker.enabled
    }

    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
        super::prepare::prepare(self, req, ctx)
    }

    fn phase_markers(&self) -> crate::builders::packer::timeline::Markers {
        crate::builders::packer::timeline::DOCKER
    }

    fn base_images(&self, settings: &Settings) -> Vec<BaseImage> {
        let images = &settings.docker.bakery_defaults.base_images;
        images.iter().map(|b| b.base_image.clone()).collect()
    }

    /// Rosco's: the image name is the pushed `repository/image:tag` the docker-tag
    /// post-processor printed (`Repository: …`), also the artifact's reference; no `ami`.
    fn details(&self, run: RunContext<'_>, outcome: &Outcome) -> BakeDetails {
        let record = run.record;
        let pushed = outcome.result("Repository").map(String::from);
        let mut details = image_details(Self::NAME, record, &Outcome::default());
        details.ami = None;
        details.image_name = pushed.clone().or(Some(record.recipe.name.clone()));
        details.regions = Some(vec![record.region.clone()]);
        if let Some(a) = details.artifact.as_mut() {
            a.name = Some(record.recipe.name.clone());
            a.reference = details.image_name.clone();
        }
        details
    }

    fn configured_templates(&self, settings: &Settings) -> Vec<(String, &'static str)> {
        let images = &settings.docker.bakery_defaults.base_images;
        selected_templates(
            self.default_template(settings),
            "docker.bakeryDefaults.templateFile",
            images.iter().map(|b| &b.base_image),
        )
    }

    fn sample_request(&self, settings: &Settings, template: &str) -> Option<(BakeRequest, String)> {
        let images = &settings.docker.bakery_defaults.base_images;
        let image = entry_for(images, |b| &b.base_image, template)?;
        let req = BakeRequest {
            commit_hash: Some("validate".into()),
            ..super::provider::sample_bake(Self::NAME, Some(&image.base_image.id), template)
        };
        Some((req, "global".into()))
    }

    fn stand_in_variables(&self, _settings: &Settings, _config_dir: &Path) -> Vars {
        [
            ("docker_source_image", "debian:bookworm"),
            ("docker_target_image", "kiln-validate"),
            ("docker_target_image_tag", "validate"),
            ("docker_target_repository", "registry.example"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into()
    }
}

impl BakeHandler for Docker {
    /// The source image.
    type Own = String;
    const NAME: &'static str = "docker";

    fn select(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
    ) -> Result<Selected<String>, BakeError> {
        let os = present(&req.base_os).unwrap_or_default();
        let images = &ctx.settings.docker.bakery_defaults.base_images;
        let Some(entry) = images.iter().find(|b| b.base_image.id == os) else {
            return Err(BakeError::Invalid(format!(
                "No virtualization settings found for '{os}'."
            )));
        };
        let source = present(&req.base_ami)
            .or(present(&entry.virtualization_settings.source_image))
            .ok_or_else(|| BakeError::Invalid(format!("No source image found for '{os}'.")))?
            .to_string();
        Ok(Selected {
            image: entry.base_image.clone(),
            vm_type: "docker".into(),
            source_image: source.clone(),
            source_name: None,
            own: source,
        })
    }

    fn image_name(
        &self,
        req: &BakeRequest,
        first: Option<&OsPackageName>,
        _now_ms: i64,
    ) -> (String, String) {
        let base = present(&req.ami_name)
            .or_else(|| first.and_then(|p| present(&p.name)))
            .unwrap_or_default();
        let parts = [present(&req.organization).unwrap_or_default(), base];
        let kept: Vec<&str> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let name = kept.join("/");
        (name.clone(), name)
    }

    /// A Docker repository path: lowercase components of letters and digits, joined by single
    /// `.`, `_`, `__` or `-` separators, split by `/`.
    fn check_image_name(&self, name: &str) -> Result<(), BakeError> {
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && !c.contains("..")
        };
        if name.len() <= 255 && name.split('/').all(component_ok) {
            return Ok(());
        }
        Err(BakeError::Invalid(format!(
            "image name '{name}' is not a Docker repository name (lowercase letters, digits, '.', '_', '-', parts joined by '/'): set ami_name (and organization) to one"
        )))
    }

    /// Rosco's, else the bake's start time.
    fn app_version(
        &self,
        req: &BakeRequest,
        first: Option<&OsPackageName>,
        kind: PackageType,
        now_ms: i64,
    ) -> Option<String> {
        crate::recipe::app_version(req, first, kind).or_else(|| Some(now_ms.to_string()))
    }

    fn variables(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<String>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars {
        let tag = tag_from_request(req).unwrap_or_else(|| ctx.now_ms.to_string());
        let d = &ctx.settings.docker.bakery_defaults;
        let mut vars = Vec::new();
        push(&mut vars, "docker_source_image", Some(base.own.clone()));
        push(
            &mut vars,
            "docker_target_image",
            Some(image_name.to_string()),
        );
        push(&mut vars, TAG_ATTRIBUTE, Some(tag));
        push(
            &mut vars,
            "docker_target_repository",
            d.target_repository.clone(),
        );
        push(&mut vars, "build_info_url", req.build_info_url.clone());
        push(&mut vars, "appversion", app_version.map(String::from));
        vars
    }

    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str {
        let d = &settings.docker.bakery_defaults;
        d.template_file.as_deref().unwrap_or("docker.json")
    }
}

/// The tag the request names: `docker_target_image_tag`, else `commit_hash`.
fn tag_from_request(req: &BakeRequest) -> Option<String> {
    req.extended_attributes()
        .get(TAG_ATTRIBUTE)
        .filter(|t| !t.trim().is_empty())
        .cloned()
        .or_else(|| present(&req.commit_hash).map(String::from))
}

#[cfg(test)]
mod tests;
