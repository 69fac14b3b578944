//! Azure (Rosco's `AzureBakeHandler`, cloud provider type `azure`): managed images through
//! Packer's `azure-arm` builder. A bake starts from a configured base image (`base_os`: a
//! marketplace image's publisher, offer and sku), from a marketplace image the request names
//! (`publisher`, `offer`, `sku`), or from a managed image (`custom_managed_image_name`); without
//! `base_os` the request's `os_type` picks the template (Linux or Windows, managed-image or
//! marketplace) and the package type, as Rosco's `findBaseImage` does.
//!
//! Credentials: the account's service principal (`azure.accounts[]`: client id and `appKey`)
//! travels as the masked variables `azure_client_id` and `azure_client_secret` (Rosco's names and
//! its masked list), so kiln hands them to Packer in its in-memory var file, never on the
//! command line. The shipped templates are HCL (`azure-*.pkr.hcl`, Rosco's names).

use super::provider::{
    BakeHandler, Provider, RunContext, Selected, entry_for, image_details, sample_bake,
    selected_templates,
};
use super::recipe::{BakeError, Prepared, RecipeContext, Vars, push};
use crate::bake::{BakeDetails, BakeRequest, present};
use crate::builders::packer::output::Outcome;
use crate::config::{AzureAccount, BaseImage, Settings};
use crate::recipe::{OsPackageName, SUFFIX};
use crate::telemetry::escaped;
use std::path::Path;

/// The Azure provider.
pub struct Azure;

/// Azure's limit on a managed image name, as Rosco cuts it.
const MAX_NAME: usize = 75;

impl Provider for Azure {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.azure.enabled
    }

    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
        super::prepare::prepare(self, req, ctx)
    }

    fn masked(&self) -> &'static [&'static str] {
        Self::MASKED
    }

    fn phase_markers(&self) -> crate::builders::packer::timeline::Markers {
        crate::builders::packer::timeline::AZURE_ARM
    }

    /// Rosco lists each base image whole: the common fields and its marketplace image.
    fn base_images(&self, settings: &Settings) -> Vec<BaseImage> {
        let images = &settings.azure.bakery_defaults.base_images;
        images
            .iter()
            .map(|b| {
                let i = &b.base_image;
                let mut image = i.base.clone();
                let marketplace = [
                    ("publisher", &i.publisher),
                    ("offer", &i.offer),
                    ("sku", &i.sku),
                    ("version", &i.version),
                ];
                image.listed = marketplace
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v.clone()?)))
                    .collect();
                image
            })
            .collect()
    }

    /// Rosco's scraped result: `ManagedImageName` names the image; its id is the shared image
    /// gallery version's when the template published one, else the managed image's
    /// (`ManagedImageId`, which is also the builder's artifact id).
    fn details(&self, run: RunContext<'_>, outcome: &Outcome) -> BakeDetails {
        let record = run.record;
        let name = outcome
            .result("ManagedImageName")
            .map(String::from)
            .unwrap_or_else(|| record.recipe.name.clone());
        let id = outcome
            .result("ManagedImageSharedImageGalleryId")
            .or_else(|| outcome.result("ManagedImageId"))
            .map(String::from)
            .or_else(|| outcome.artifacts.first().map(|(_, id)| id.clone()));
        let mut details = image_details(Self::NAME, record, &Outcome::default());
        details.image_name = Some(name.clone());
        details.ami = id.clone();
        details.regions = Some(vec![record.region.clone()]);
        if let Some(a) = details.artifact.as_mut() {
            a.name = Some(name);
            a.reference = id;
        }
        details
    }

    fn configured_templates(&self, settings: &Settings) -> Vec<(String, &'static str)> {
        let images = &settings.azure.bakery_defaults.base_images;
        selected_templates(
            self.default_template(settings),
            "azure.bakeryDefaults.templateFile",
            images.iter().map(|b| &b.base_image.base),
        )
    }

    /// A managed-image template Rosco picks by itself is checked with a request that selects
    /// it (an `os_type` and a managed image); any other with a configured base image.
    fn sample_request(&self, settings: &Settings, template: &str) -> Option<(BakeRequest, String)> {
        if let Some((os, true, _)) = UNCONFIGURED.into_iter().find(|(_, _, t)| *t == template) {
            let req = BakeRequest {
                os_type: Some(
                    if os == OsType::Linux {
                        "linux"
                    } else {
                        "windows"
                    }
                    .into(),
                ),
                custom_managed_image_name: Some("kiln-validate-base".into()),
                ..sample_bake(Self::NAME, None, template)
            };
            return Some((req, "westus".into()));
        }
        let images = &settings.azure.bakery_defaults.base_images;
        let entry = entry_for(images, |b| &b.base_image.base, template)?;
        let req = sample_bake(Self::NAME, Some(&entry.base_image.base.id), template);
        Some((req, "westus".into()))
    }

    fn stand_in_variables(&self, _settings: &Settings, _config_dir: &Path) -> Vars {
        [
            ("azure_location", "westus"),
            ("azure_resource_group", "kiln-validate"),
            (
                "azure_subscription_id",
                "00000000-0000-0000-0000-000000000000",
            ),
            ("azure_managed_image_name", "kiln-validate"),
            ("azure_image_publisher", "Canonical"),
            ("azure_image_offer", "UbuntuServer"),
            ("azure_image_sku", "18.04-LTS"),
            ("azure_custom_managed_image_name", "kiln-validate-base"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into()
    }
}

/// What selection found: the image to start from and the account to bake in.
#[derive(Debug, Clone)]
pub struct Found {
    publisher: Option<String>,
    offer: Option<String>,
    sku: Option<String>,
    managed_image: Option<String>,
    account: AzureAccount,
}

impl BakeHandler for Azure {
    type Own = Found;
    const NAME: &'static str = "azure";
    const MASKED: &'static [&'static str] = &["azure_client_id", "azure_client_secret"];

    fn select(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Selected<Found>, BakeError> {
        let d = &ctx.settings.azure.bakery_defaults;
        let os_type = os_type(req);
        let (image, mut publisher, mut offer, mut sku) = match present(&req.base_os) {
            Some(os) => {
                let entry = d
                    .base_images
                    .iter()
                    .find(|b| b.base_image.base.id == os)
                    .ok_or_else(|| {
                        BakeError::Invalid(format!("No virtualization settings found for '{os}'."))
                    })?;
                let i = &entry.base_image;
                (
                    i.base.clone(),
                    i.publisher.clone(),
                    i.offer.clone(),
                    i.sku.clone(),
                )
            }
            None => (unconfigured_image(req, os_type), None, None, None),
        };
        if present(&req.publisher).is_some() {
            (publisher, offer, sku) = (req.publisher.clone(), req.offer.clone(), req.sku.clone());
        }
        let managed_image = present(&req.custom_managed_image_name).map(String::from);
        let source_image = match &managed_image {
            Some(m) => m.clone(),
            None => {
                let missing: Vec<&str> =
                    [("publisher", &publisher), ("offer", &offer), ("sku", &sku)]
                        .into_iter()
                        .filter(|(_, v)| present(v).is_none())
                        .map(|(k, _)| k)
                        .collect();
                if !missing.is_empty() {
                    let configured: Vec<&str> = d
                        .base_images
                        .iter()
                        .map(|b| b.base_image.base.id.as_str())
                        .collect();
                    let whose = match present(&req.base_os) {
                        Some(os) => format!("base image '{os}' has no {}", missing.join(", ")),
                        None => format!("the request has no {}", missing.join(", ")),
                    };
                    return Err(BakeError::Invalid(format!(
                        "{whose}: set base_os to a configured base image ({}), or publisher, offer and sku, or custom_managed_image_name",
                        if configured.is_empty() {
                            "none configured".into()
                        } else {
                            configured.join(", ")
                        }
                    )));
                }
                [&publisher, &offer, &sku]
                    .map(|v| v.as_deref().unwrap_or_default().trim())
                    .join(":")
            }
        };
        let account = resolve_account(ctx.settings, req)?.clone();
        Ok(Selected {
            image,
            vm_type: Self::NAME.into(),
            source_image,
            source_name: None,
            own: Found {
                publisher,
                offer,
                sku,
                managed_image,
                account,
            },
        })
    }

    /// Rosco's `AzureImageNameFactory`: `base_name` (else the first package's name), the
    /// package's arch (else `all`), `base_label` (else the bake's start time) and `base_os`
    /// (else `os_type`), blank parts dropped, joined with `-`.
    fn image_name(
        &self,
        req: &BakeRequest,
        first: Option<&OsPackageName>,
        now_ms: i64,
    ) -> (String, String) {
        let name = |release: &str| {
            let base = present(&req.base_name)
                .or_else(|| first.and_then(|p| present(&p.name)))
                .unwrap_or_default();
            let arch = first.and_then(|p| present(&p.arch)).unwrap_or("all");
            let os = present(&req.base_os)
                .or(present(&req.os_type))
                .unwrap_or_default();
            let parts = [base, arch, release, os];
            let kept: Vec<&str> = parts.into_iter().filter(|p| !p.trim().is_empty()).collect();
            kept.join("-")
        };
        match present(&req.base_label) {
            Some(label) => (name(label), name(label)),
            None => (name(&now_ms.to_string()), name(SUFFIX)),
        }
    }

    /// The managed image name Packer gets must keep a character after Rosco's clean-up.
    fn check_image_name(&self, name: &str) -> Result<(), BakeError> {
        if managed_image_name(name).is_empty() {
            return Err(BakeError::Invalid(format!(
                "image name {} has no character Azure accepts (letters, digits, '_', '-', '.'): set base_name or package_name",
                escaped(name)
            )));
        }
        Ok(())
    }

    /// Rosco's `buildParameterMap`, in its order.
    fn variables(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<Found>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars {
        let Found {
            publisher,
            offer,
            sku,
            managed_image,
            account: a,
        } = &base.own;
        let mut vars = Vec::new();
        push(&mut vars, "azure_location", Some(ctx.region.to_string()));
        push(&mut vars, "azure_image_publisher", publisher.clone());
        push(&mut vars, "azure_image_offer", offer.clone());
        push(&mut vars, "azure_image_sku", sku.clone());
        push(
            &mut vars,
            "azure_custom_managed_image_name",
            managed_image.clone(),
        );
        push(&mut vars, "azure_client_id", a.client_id.clone());
        push(
            &mut vars,
            "azure_client_secret",
            a.app_key.as_ref().map(|k| k.expose().to_string()),
        );
        push(
            &mut vars,
            "azure_resource_group",
            a.packer_resource_group.clone(),
        );
        push(
            &mut vars,
            "azure_subscription_id",
            a.subscription_id.clone(),
        );
        push(&mut vars, "azure_tenant_id", a.tenant_id.clone());
        push(&mut vars, "azure_object_id", a.object_id.clone());
        let wanted = match (present(&req.build_number), present(&req.base_name)) {
            (Some(n), Some(b)) => format!("{n}-{b}"),
            _ => image_name.to_string(),
        };
        push(
            &mut vars,
            "azure_managed_image_name",
            Some(managed_image_name(&wanted)),
        );
        push(&mut vars, "appversion", app_version.map(String::from));
        vars
    }

    /// Rosco's key ends in the account, the image the request names (marketplace or managed),
    /// `base_label` and `base_name`, blank parts dropped.
    fn key_tail(&self, req: &BakeRequest, ctx: &RecipeContext, _vm_type: &str) -> Vec<String> {
        let account = resolve_account(ctx.settings, req).map(|a| a.name.clone());
        let requested = match present(&req.custom_managed_image_name) {
            Some(m) => Some(m.to_string()),
            None => present(&req.publisher).map(|p| {
                let part = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".into());
                format!("{p}:{}:{}", part(&req.offer), part(&req.sku))
            }),
        };
        [
            account.ok(),
            requested,
            req.base_label.clone(),
            req.base_name.clone(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect()
    }

    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str {
        let configured = settings.azure.bakery_defaults.template_file.as_deref();
        configured.unwrap_or("azure-linux.pkr.hcl")
    }
}

/// Rosco's `OsType` (`linux`, `windows`), when the request names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OsType {
    Linux,
    Windows,
}

/// The request's `os_type` (request parsing has refused any other value).
fn os_type(req: &BakeRequest) -> Option<OsType> {
    match present(&req.os_type)?.to_ascii_lowercase().as_str() {
        "linux" => Some(OsType::Linux),
        "windows" => Some(OsType::Windows),
        _ => None,
    }
}

/// The templates Rosco picks for a request without `base_os`: by OS type, and whether it starts
/// from a managed image.
const UNCONFIGURED: [(OsType, bool, &str); 4] = [
    (OsType::Linux, false, "azure-linux.pkr.hcl"),
    (OsType::Linux, true, "azure-linux-managed-image.pkr.hcl"),
    (OsType::Windows, false, "azure-windows.pkr.hcl"),
    (OsType::Windows, true, "azure-windows-managed-image.pkr.hcl"),
];

/// Rosco's base image for a request without `base_os`: Windows (nupkg) unless `os_type` is
/// linux (deb), from a managed image when the request names one; the request's package type
/// and template win.
fn unconfigured_image(req: &BakeRequest, os: Option<OsType>) -> BaseImage {
    let os = os.unwrap_or(OsType::Windows);
    let managed = present(&req.custom_managed_image_name).is_some();
    let (_, _, template) = UNCONFIGURED
        .into_iter()
        .find(|(o, m, _)| *o == os && *m == managed)
        .unwrap_or(UNCONFIGURED[2]);
    let kind = if os == OsType::Linux { "deb" } else { "nupkg" };
    BaseImage {
        package_type: Some(present(&req.package_type).unwrap_or(kind).to_string()),
        template_file: Some(
            present(&req.template_file_name)
                .unwrap_or(template)
                .to_string(),
        ),
        os_type: present(&req.os_type).map(String::from),
        ..BaseImage::default()
    }
}

/// Rosco's clean-up for Packer's `managed_image_name`: only letters, digits, `_`, `-` and `.`,
/// no `-` or `.` at the end, at most 75 characters.
fn managed_image_name(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    let trimmed = kept.trim_end_matches(['-', '.']);
    trimmed.chars().take(MAX_NAME).collect()
}

/// The request's `account_name` among `azure.accounts`, else the first (Rosco's rule).
fn resolve_account<'a>(
    settings: &'a Settings,
    req: &BakeRequest,
) -> Result<&'a AzureAccount, BakeError> {
    let accounts = &settings.azure.accounts;
    super::provider::resolve_account(accounts, |a| &a.name, req, "Azure", "azure.accounts")
}

#[cfg(test)]
mod tests;
