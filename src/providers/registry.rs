//! Every provider kiln has, in one place. A new cloud is one module and one line here.

use super::aws::Aws;
use super::docker::Docker;
use super::gce::Gce;
use super::provider::Provider;
use super::qemu::Qemu;
use super::recipe::{BakeError, Prepared, RecipeContext};
use crate::bake::{BakeRequest, present};
use crate::config::Settings;

static PROVIDERS: [&dyn Provider; 4] = [&Aws, &Gce, &Docker, &Qemu];

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

/// The recipe for a request, by the provider it names (else the bakery's default).
pub fn prepare(req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
    let name = present(&req.cloud_provider_type).unwrap_or(ctx.settings.default_provider());
    let provider = find(name)
        .filter(|p| p.enabled(ctx.settings))
        .ok_or_else(|| BakeError::UnknownProvider(name.to_string()))?;
    provider.prepare(req, ctx)
}
