//! Turning a bake request into a recipe, one provider at a time, and what each provider does
//! around a run. A provider ([`Provider`], registered in [`registry`]) picks the base image,
//! produces its variables and credentials, names its default template and image-name rule,
//! lists its base images for `/bakeOptions`, stages and finishes its runs and shapes its result.
//! What every provider shares (packages, repository, extended attributes, the template's
//! location, limits, the bake identity) is [`prepare`]. Providers: `aws` (an AMI), `qemu`
//! (a qcow2 image on this machine, region `local`), `gce`, `azure`, `docker`, and `alicloud`, `tencentcloud`,
//! `huaweicloud`, `oracle` (what those clouds share is `regional`).
//!
//! Invariant: every final Packer variable has passed [`checks`]; nothing outside this module
//! branches on a provider's name.

mod alicloud;
mod aws;
mod azure;
mod checks;
mod docker;
mod gce;
mod huaweicloud;
mod identity;
mod limits;
mod oracle;
mod paths;
mod prepare;
mod provider;
mod qemu;
mod recipe;
mod regional;
pub mod registry;
#[cfg(test)]
mod spec_support;
mod staged;
mod tencentcloud;

pub use checks::{KILN_PREFIXES, OPERATOR_VARIABLES};
pub use paths::{ConfigFile, normal_name, resolve_in_config_dir};
pub use provider::{HookError, Provider, RunContext, image_details};
pub use recipe::{BakeError, Identity, Prepared, RecipeContext, Vars};
pub use registry::prepare;
