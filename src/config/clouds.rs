//! The settings of the clouds beside AWS, in Rosco's shape: `google.*` (with the deprecated
//! `google.gce.bakeryDefaults` Rosco still merges in) and `docker.*`.

use super::BaseImage;
use super::model::{lenient_string, lenient_string_req};
use serde::Deserialize;

/// `google`: Rosco's `RoscoGoogleConfiguration`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GoogleSettings {
    pub enabled: bool,
    pub bakery_defaults: GceBakeryDefaults,
    /// The deprecated `google.gce.bakeryDefaults`, merged under `google.bakeryDefaults`.
    pub gce: Option<GceLegacy>,
    pub accounts: Vec<GoogleAccount>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GceLegacy {
    pub bakery_defaults: GceBakeryDefaults,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GceBakeryDefaults {
    #[serde(deserialize_with = "lenient_string")]
    pub zone: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub network: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub network_project_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub subnetwork: Option<String>,
    pub use_internal_ip: Option<bool>,
    #[serde(deserialize_with = "lenient_string")]
    pub template_file: Option<String>,
    pub base_images: Vec<GceBaseImage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GceBaseImage {
    pub base_image: BaseImage,
    pub virtualization_settings: GceVirtualizationSettings,
}

/// Either `sourceImage` or `sourceImageFamily`; the image wins when both are set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GceVirtualizationSettings {
    #[serde(deserialize_with = "lenient_string")]
    pub source_image: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub source_image_family: Option<String>,
}

/// `google.accounts[]`: the project a bake runs in and its service account's key file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GoogleAccount {
    #[serde(deserialize_with = "lenient_string_req")]
    pub name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub project: Option<String>,
    /// The service account's JSON key (a path: Packer reads the file; it never enters kiln).
    #[serde(deserialize_with = "lenient_string")]
    pub json_path: Option<String>,
}

impl GoogleSettings {
    /// Rosco's `getBakeryDefaults`: `google.bakeryDefaults` over the deprecated
    /// `google.gce.bakeryDefaults`, field by field; base images of both, current ones first.
    pub fn defaults(&self) -> GceBakeryDefaults {
        let Some(old) = self.gce.as_ref().map(|g| &g.bakery_defaults) else {
            return self.bakery_defaults.clone();
        };
        let new = &self.bakery_defaults;
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        GceBakeryDefaults {
            zone: pick(&new.zone, &old.zone),
            network: pick(&new.network, &old.network),
            network_project_id: pick(&new.network_project_id, &old.network_project_id),
            subnetwork: pick(&new.subnetwork, &old.subnetwork),
            use_internal_ip: new.use_internal_ip.or(old.use_internal_ip),
            template_file: pick(&new.template_file, &old.template_file),
            base_images: new
                .base_images
                .iter()
                .chain(&old.base_images)
                .cloned()
                .collect(),
        }
    }
}

/// `docker`: Rosco's `RoscoDockerConfiguration`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerSettings {
    pub enabled: bool,
    pub bakery_defaults: DockerBakeryDefaults,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerBakeryDefaults {
    /// Where baked images are pushed (`<targetRepository>/<image>:<tag>`).
    #[serde(deserialize_with = "lenient_string")]
    pub target_repository: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub template_file: Option<String>,
    pub base_images: Vec<DockerBaseImage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerBaseImage {
    pub base_image: BaseImage,
    pub virtualization_settings: DockerVirtualizationSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DockerVirtualizationSettings {
    #[serde(deserialize_with = "lenient_string")]
    pub source_image: Option<String>,
}
