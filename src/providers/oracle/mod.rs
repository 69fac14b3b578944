//! Oracle Cloud (Rosco's `OCIBakeHandler`): custom images through Packer's `oracle-oci` builder.
//! The base image is found by `base_os` alone (one settings block per image); the account by the
//! request's `account_name` (else the first of `oracle.accounts`), and with it the region, the
//! tenancy, user, fingerprint and API key file. Rosco passes the key's passphrase as the
//! `oracle_pass_phrase` variable; kiln puts it in Packer's environment (`OCI_KEY_PASSPHRASE`),
//! which kiln's shipped `oci.json` reads as that variable's default.

use super::provider::{BakeHandler, Provider, Selected, selected_templates};
use super::recipe::{BakeError, Prepared, RecipeContext, Vars, push};
use super::regional::NameRule;
use crate::bake::{BakeRequest, present};
use crate::config::{BaseImage, OracleAccount, OracleVirtualizationSettings, Settings};

/// The Oracle Cloud provider.
pub struct Oracle;

/// The environment variable the passphrase travels in.
pub const PASS_PHRASE_ENV: &str = "OCI_KEY_PASSPHRASE";

/// OCI's display-name rule: 1 to 255 characters (kiln refuses control characters everywhere).
const NAME_RULE: NameRule = NameRule {
    cloud: "Oracle Cloud",
    min: 1,
    max: 255,
    first: |c| !c.is_whitespace(),
    rest: |c| !c.is_control(),
    described: "1 to 255 characters",
};

/// What Oracle's `select` finds: the image's settings and the account it bakes in.
#[derive(Debug, Clone)]
pub struct OracleBake {
    pub settings: OracleVirtualizationSettings,
    pub account: OracleAccount,
}

impl Provider for Oracle {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.oracle.enabled
    }

    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
        super::prepare::prepare(self, req, ctx)
    }

    fn base_images(&self, settings: &Settings) -> Vec<BaseImage> {
        let images = &settings.oracle.bakery_defaults.base_images;
        images.iter().map(|b| b.base_image.clone()).collect()
    }

    fn configured_templates(&self, settings: &Settings) -> Vec<(String, &'static str)> {
        let images = &settings.oracle.bakery_defaults.base_images;
        selected_templates(
            self.default_template(settings),
            "oracle.bakeryDefaults.templateFile",
            images.iter().map(|b| &b.base_image),
        )
    }

    /// In the first account's region (the region an Oracle bake runs in is its account's).
    fn sample_request(&self, settings: &Settings, template: &str) -> Option<(BakeRequest, String)> {
        let images = &settings.oracle.bakery_defaults.base_images;
        let entry = super::provider::entry_for(images, |b| &b.base_image, template)?;
        let region = settings.oracle.accounts.first()?.region.clone()?;
        let req = super::provider::sample_bake(Self::NAME, Some(&entry.base_image.id), template);
        Some((req, region))
    }
}

impl BakeHandler for Oracle {
    type Own = OracleBake;
    const NAME: &'static str = "oracle";

    fn select(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
    ) -> Result<Selected<Self::Own>, BakeError> {
        let os = present(&req.base_os).unwrap_or_default();
        let d = &ctx.settings.oracle.bakery_defaults;
        // Rosco's message (its Java prints the placeholder itself; kiln the value).
        let image = d
            .base_images
            .iter()
            .find(|b| b.base_image.id == os)
            .ok_or_else(|| {
                BakeError::Invalid(format!("No virtualization settings found for '{os}'."))
            })?;
        let account = resolve_account(req, ctx.settings)?;
        let source = present(&image.virtualization_settings.base_image_id)
            .ok_or_else(|| {
                BakeError::Invalid(format!(
                    "base image '{os}' has no virtualizationSettings.baseImageId in oracle.bakeryDefaults.baseImages"
                ))
            })?
            .to_string();
        Ok(Selected {
            image: image.base_image.clone(),
            vm_type: Self::NAME.into(),
            source_image: source,
            source_name: None,
            own: OracleBake {
                settings: image.virtualization_settings.clone(),
                account: account.clone(),
            },
        })
    }

    fn check_image_name(&self, name: &str) -> Result<(), BakeError> {
        NAME_RULE.check(name)
    }

    /// Rosco's `oracle_*` variables (the passphrase excepted: see the module).
    fn variables(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<Self::Own>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars {
        let d = &ctx.settings.oracle.bakery_defaults;
        let a = &base.own.account;
        let s = &base.own.settings;
        let mut vars = Vec::new();
        push(&mut vars, "oracle_compartment_id", a.compartment_id.clone());
        push(&mut vars, "oracle_tenancy_id", a.tenancy_id.clone());
        push(&mut vars, "oracle_user_id", a.user_id.clone());
        push(&mut vars, "oracle_fingerprint", a.fingerprint.clone());
        push(
            &mut vars,
            "oracle_ssh_private_key_file_path",
            a.ssh_private_key_file_path.clone(),
        );
        push(&mut vars, "oracle_region", a.region.clone());
        push(
            &mut vars,
            "oracle_availability_domain",
            d.availability_domain.clone(),
        );
        push(&mut vars, "oracle_instance_shape", d.instance_shape.clone());
        push(&mut vars, "oracle_subnet_id", d.subnet_id.clone());
        push(
            &mut vars,
            "oracle_base_image_id",
            Some(base.source_image.clone()),
        );
        push(&mut vars, "oracle_ssh_user_name", s.ssh_user_name.clone());
        push(&mut vars, "oracle_image_name", Some(image_name.to_string()));
        push(&mut vars, "build_info_url", req.build_info_url.clone());
        push(&mut vars, "appversion", app_version.map(String::from));
        vars
    }

    /// Rosco's key ends in the account's name.
    fn key_tail(&self, req: &BakeRequest, ctx: &RecipeContext, _vm_type: &str) -> Vec<String> {
        let name = resolve_account(req, ctx.settings).map(|a| a.name.clone());
        vec![name.unwrap_or_default()]
    }

    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str {
        let configured = settings.oracle.bakery_defaults.template_file.as_deref();
        configured.unwrap_or("oci.json")
    }

    /// The selected account's key passphrase, when it has one.
    fn credentials_for(&self, base: &Selected<Self::Own>, _settings: &Settings) -> Vars {
        match &base.own.account.private_key_passphrase {
            Some(p) if !p.is_empty() => {
                vec![(PASS_PHRASE_ENV.into(), p.expose().trim().to_string())]
            }
            _ => Vec::new(),
        }
    }
}

/// The request's `account_name` among `oracle.accounts`, else the first (Rosco's rule).
fn resolve_account<'a>(
    req: &BakeRequest,
    settings: &'a Settings,
) -> Result<&'a OracleAccount, BakeError> {
    let accounts = &settings.oracle.accounts;
    super::provider::resolve_account(accounts, |a| &a.name, req, "Oracle", "oracle.accounts")
}

#[cfg(test)]
mod tests;
