//! The pure parts of a bake recipe, following Rosco's behaviour: package types and names
//! ([`PackageType`], [`OsPackageName`], the Packer `packages` variable), CI artifacts as
//! packages ([`resolve_packages`]), the appversion tag ([`app_version`]) and the image name
//! ([`image_name`], [`check_aws_image_name`]). Nothing here does I/O or reads the clock.

mod appversion;
mod artifacts;
mod image_name;
mod package;

pub use appversion::app_version;
pub use artifacts::{ArtifactConflict, Resolved, artifact_package, resolve_packages};
pub use image_name::{SUFFIX, check_aws_image_name, image_name, image_name_pattern};
pub use package::{
    OsPackageName, PackageType, PackageTypeError, check_package_token, packages_parameter,
};
