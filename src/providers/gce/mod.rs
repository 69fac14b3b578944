//! Google Compute Engine (Rosco's `GCEBakeHandler`, cloud provider type `gce`): a base image is a
//! source image or an image family, the bake runs in a Google account's project, and the result
//! is an image name, which Spinnaker references by its compute API URL.
//!
//! Credentials: the account's `jsonPath` (a service account key file Packer reads; its content
//! never passes through kiln), else Packer's default chain (the VM's service account).

use super::provider::{
    BakeHandler, HookError, Provider, RunContext, Selected, entry_for, image_details,
    selected_templates,
};
use super::recipe::{BakeError, Prepared, RecipeContext, Vars, push};
use crate::bake::{BakeDetails, BakeRecord, BakeRequest, present};
use crate::builders::packer::output::Outcome;
use crate::config::{BaseImage, GceVirtualizationSettings, GoogleAccount, Settings};
use crate::images::{safe_name, staging_dir};
use crate::recipe::{OsPackageName, SUFFIX};
use futures_util::future::BoxFuture;
use std::path::Path;

/// GCE's limit on an image name.
const MAX_NAME: usize = 63;

/// The Google provider.
pub struct Gce;

impl Provider for Gce {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.google.enabled
    }

    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
        super::prepare::prepare(self, req, ctx)
    }

    fn phase_markers(&self) -> crate::builders::packer::timeline::Markers {
        crate::builders::packer::timeline::GOOGLECOMPUTE
    }

    fn base_images(&self, settings: &Settings) -> Vec<BaseImage> {
        let images = settings.google.defaults().base_images;
        images.into_iter().map(|b| b.base_image).collect()
    }

    /// Rosco's `artifactFile` (the request's package artifacts as JSON, which the template
    /// uploads to `/tmp/artifacts.json`) and `manifestFile` (the manifest post-processor's
    /// output), in the bake's staging folder.
    fn before_run<'a>(
        &'a self,
        run: RunContext<'a>,
        prepared: &'a mut Prepared,
    ) -> BoxFuture<'a, Result<Vec<String>, HookError>> {
        Box::pin(async move {
            let id = &run.record.id;
            if !safe_name(id) {
                return Err(format!("bake id '{id}' cannot name a directory").into());
            }
            let stage = staging_dir(run.data_dir, id);
            tokio::fs::create_dir_all(&stage).await?;
            let artifacts = &run.record.request["package_artifacts"];
            let artifacts = if artifacts.is_array() {
                artifacts.clone()
            } else {
                serde_json::Value::Array(Vec::new())
            };
            let file = stage.join("artifacts.json");
            tokio::fs::write(&file, serde_json::to_vec(&artifacts)?).await?;
            let plan = &mut prepared.plan;
            plan.set_variable("artifactFile", file.display().to_string());
            let manifest = stage.join("manifest.json");
            plan.set_variable("manifestFile", manifest.display().to_string());
            Ok(Vec::new())
        })
    }

    fn cleanup(&self, data_dir: &Path, record: &BakeRecord) {
        if safe_name(&record.id) {
            let _ = std::fs::remove_dir_all(staging_dir(data_dir, &record.id));
        }
    }

    /// The image name the builder reported (its artifact id, else Rosco's scraped line), and
    /// its compute API URL as the artifact's reference; no `ami`.
    fn details(&self, run: RunContext<'_>, outcome: &Outcome) -> BakeDetails {
        let record = run.record;
        let name = outcome
            .artifacts
            .first()
            .map(|(_, id)| id.clone())
            .or_else(|| outcome.result("A disk image was created").map(String::from))
            .unwrap_or_else(|| record.recipe.name.clone());
        let project = record
            .recipe
            .variables
            .get("gce_project_id")
            .cloned()
            .unwrap_or_default();
        let mut details = image_details(Self::NAME, record, &Outcome::default());
        details.ami = None;
        details.image_name = Some(name.clone());
        details.regions = Some(vec![record.region.clone()]);
        if let Some(a) = details.artifact.as_mut() {
            a.name = Some(record.recipe.name.clone());
            a.reference = Some(format!(
                "https://compute.googleapis.com/compute/v1/projects/{project}/global/images/{name}"
            ));
        }
        details
    }

    fn configured_templates(&self, settings: &Settings) -> Vec<(String, &'static str)> {
        let d = settings.google.defaults();
        selected_templates(
            self.default_template(settings),
            "google.bakeryDefaults.templateFile",
            d.base_images.iter().map(|b| &b.base_image),
        )
    }

    fn sample_request(&self, settings: &Settings, template: &str) -> Option<(BakeRequest, String)> {
        let d = settings.google.defaults();
        let image = entry_for(&d.base_images, |b| &b.base_image, template)?;
        let req = super::provider::sample_bake(Self::NAME, Some(&image.base_image.id), template);
        Some((req, "global".into()))
    }

    fn run_variables(&self) -> &'static [&'static str] {
        &["artifactFile", "manifestFile"]
    }

    fn stand_in_variables(&self, _settings: &Settings, _config_dir: &Path) -> Vars {
        [
            ("gce_project_id", "kiln-validate"),
            ("gce_zone", "us-central1-f"),
            ("gce_network", "default"),
            ("gce_source_image_family", "debian-12"),
            ("gce_target_image", "kiln-validate"),
            ("artifactFile", "/dev/null"),
            ("manifestFile", "/dev/null"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into()
    }
}

/// What selection found: the source settings and the account.
#[derive(Debug, Clone)]
pub struct Found {
    settings: GceVirtualizationSettings,
    account: GoogleAccount,
}

impl BakeHandler for Gce {
    type Own = Found;
    const NAME: &'static str = "gce";

    fn select(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Selected<Found>, BakeError> {
        let d = ctx.settings.google.defaults();
        let os = present(&req.base_os).unwrap_or_default();
        let Some(entry) = d.base_images.iter().find(|b| b.base_image.id == os) else {
            return Err(BakeError::Invalid(format!(
                "No virtualization settings found for '{os}'."
            )));
        };
        let mut settings = entry.virtualization_settings.clone();
        if let Some(image) = present(&req.base_ami) {
            settings.source_image = Some(image.to_string());
        }
        let source = present(&settings.source_image)
            .map(|s| s.to_string())
            .or_else(|| present(&settings.source_image_family).map(|f| format!("family/{f}")))
            .ok_or_else(|| {
                BakeError::Invalid(format!(
                    "No source image or source image family found for '{os}'."
                ))
            })?;
        let account = resolve_account(ctx.settings, req)?;
        Ok(Selected {
            image: entry.base_image.clone(),
            vm_type: "gce".into(),
            source_image: source,
            source_name: None,
            own: Found { settings, account },
        })
    }

    /// GCE's rule (`[a-z]([-a-z0-9]{0,61}[a-z0-9])?`) applied to Rosco's name: lowercase, other
    /// characters (dots, underscores) as `-`, at most 63 characters. The name the builder
    /// reports is what the bake answers with.
    fn image_name(
        &self,
        req: &BakeRequest,
        first: Option<&OsPackageName>,
        now_ms: i64,
    ) -> (String, String) {
        let name = gce_name(&crate::recipe::image_name(req, first, now_ms));
        let pattern = crate::recipe::image_name_pattern(req, first)
            .split(SUFFIX)
            .map(gce_chars)
            .collect::<Vec<_>>()
            .join(SUFFIX);
        (name, pattern)
    }

    fn check_image_name(&self, name: &str) -> Result<(), BakeError> {
        let ok = name.len() <= MAX_NAME
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            return Ok(());
        }
        Err(BakeError::Invalid(format!(
            "image name '{name}' is not a GCE image name (a lowercase letter, then lowercase letters, digits and '-', at most 63): set ami_name to one"
        )))
    }

    fn variables(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<Found>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars {
        let d = ctx.settings.google.defaults();
        let Found { settings, account } = &base.own;
        let mut vars = Vec::new();
        push(&mut vars, "gce_project_id", account.project.clone());
        push(&mut vars, "gce_zone", d.zone.clone());
        push(&mut vars, "gce_network", d.network.clone());
        push(&mut vars, "gce_target_image", Some(image_name.to_string()));
        match (
            present(&settings.source_image),
            &settings.source_image_family,
        ) {
            (Some(image), _) => push(&mut vars, "gce_source_image", Some(image.into())),
            (None, family) => push(&mut vars, "gce_source_image_family", family.clone()),
        }
        push(&mut vars, "gce_account_file", account.json_path.clone());
        push(
            &mut vars,
            "gce_network_project_id",
            d.network_project_id.clone(),
        );
        push(&mut vars, "gce_subnetwork", d.subnetwork.clone());
        push(
            &mut vars,
            "gce_use_internal_ip",
            d.use_internal_ip.map(|b| b.to_string()),
        );
        push(&mut vars, "build_info_url", req.build_info_url.clone());
        push(&mut vars, "appversion", app_version.map(String::from));
        vars
    }

    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str {
        // Borrowed from settings: the current key, else the deprecated one, else kiln's file.
        let g = &settings.google;
        g.bakery_defaults
            .template_file
            .as_deref()
            .or(g
                .gce
                .as_ref()
                .and_then(|o| o.bakery_defaults.template_file.as_deref()))
            .unwrap_or("gce.json")
    }
}

/// The request's `account_name` among `google.accounts`, else the first (Rosco's rule).
fn resolve_account(settings: &Settings, req: &BakeRequest) -> Result<GoogleAccount, BakeError> {
    let accounts = &settings.google.accounts;
    super::provider::resolve_account(accounts, |a| &a.name, req, "Google", "google.accounts")
        .cloned()
}

/// Lowercase; anything but letters, digits and `-` becomes `-`.
fn gce_chars(s: &str) -> String {
    s.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A GCE image name from Rosco's: [`gce_chars`], at most 63 characters, no `-` at the end.
fn gce_name(s: &str) -> String {
    let mut name: String = gce_chars(s).chars().take(MAX_NAME).collect();
    while name.ends_with('-') {
        name.pop();
    }
    name
}

#[cfg(test)]
mod tests;
