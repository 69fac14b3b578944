//! Every provider kiln has, in one place. A new cloud is one module and one line here.

use super::alicloud::Alicloud;
use super::aws::Aws;
use super::azure::Azure;
use super::docker::Docker;
use super::gce::Gce;
use super::huaweicloud::Huaweicloud;
use super::oracle::Oracle;
use super::provider::Provider;
use super::qemu::Qemu;
use super::recipe::{BakeError, Prepared, RecipeContext};
use super::tencentcloud::Tencentcloud;
use crate::bake::{BakeRequest, present};
use crate::config::Settings;

static PROVIDERS: [&dyn Provider; 9] = [
    &Aws,
    &Gce,
    &Azure,
    &Docker,
    &Qemu,
    &Alicloud,
    &Tencentcloud,
    &Huaweicloud,
    &Oracle,
];

/// Every provider, enabled or not, in `/bakeOptions` order.
pub fn all() -> &'static [&'static dyn Provider] {
    &PROVIDERS
}

/// The provider of that name (Rosco's `cloudProviderType`), enabled or not.
pub fn find(name: &str) -> Option<&'static dyn Provider> {
    PROVIDERS.iter().copied().find(|p| p.name() == name)
}

/// The enabled providers.
pub fn enabled(settings: &Settings) -> impl Iterator<Item = &'static dyn Provider> + '_ {
    PROVIDERS.iter().copied().filter(|p| p.enabled(settings))
}

/// Every variable kiln masks: the bakery's `maskedPackerParameters` and each provider's own
/// (kept out of argv, the store and the log whichever provider a request names).
pub fn masked_parameters(settings: &Settings) -> Vec<String> {
    let mut masked = settings.masked_parameters();
    for name in PROVIDERS.iter().flat_map(|p| p.masked()) {
        if !masked.iter().any(|m| m == name) {
            masked.push(name.to_string());
        }
    }
    masked
}

/// The recipe for a request, by the provider it names (else the bakery's default).
pub fn prepare(req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
    let name = present(&req.cloud_provider_type).unwrap_or(ctx.settings.default_provider());
    let provider = find(name)
        .filter(|p| p.enabled(ctx.settings))
        .ok_or_else(|| BakeError::UnknownProvider(name.to_string()))?;
    provider.prepare(req, ctx)
}
