//! Turning a bake request into a Packer recipe, one cloud at a time. A provider picks the base
//! image and the template and produces the Packer variables; what is common to every provider
//! (packages, repository, extended attributes, the template's location, the bake identity) lives
//! in [`common`]. Providers: `aws` (an AMI) and `qemu` (a qcow2 image on this machine, region
//! `local`).

mod aws;
mod checks;
mod common;
mod identity;
mod limits;
mod paths;
pub mod qemu;
pub mod source;

pub use checks::{KILN_PREFIXES, OPERATOR_VARIABLES};
pub use common::{BakeError, Builder, Prepared, RecipeContext, prepare};
pub use identity::Identity;
pub use identity::sha256_hex as identity_digest;
pub use paths::{ConfigFile, normal_name, resolve_in_config_dir};
