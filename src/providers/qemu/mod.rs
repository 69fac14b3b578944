//! The `qemu` provider (region `local`): a qcow2 image baked on this machine with Packer's qemu
//! builder from a local base image ([`crate::images`]), provisioned by the same
//! `install_packages.sh` as AWS.
//!
//! Package artifacts whose `reference` is a `file://` path or an `http(s)://` URL of a
//! `.deb`/`.rpm` are uploaded into the VM (`/tmp/kiln-artifacts/`) and installed by path
//! (`apt-get install /tmp/kiln-artifacts/x.deb`, `dnf install /tmp/…/x.rpm`): the package
//! manager resolves their dependencies from the image's repositories, and neither a Packages
//! index (dpkg-scanpackages) nor repository metadata (createrepo) is needed. A requested
//! package an artifact provides is installed from that file; the other artifacts follow.
//!
//! Paths that kiln controls (disk, kernel, key, output) cannot be overridden by extended
//! attributes, and names that become file names must be plain: a request must not make kiln
//! read or write an arbitrary file.

mod finish;
pub(in crate::providers) mod stage;

use super::provider::{BakeHandler, HookError, Provider, RunContext, Selected};
use super::recipe::{BakeError, Prepared, RecipeContext, Vars, push};
use crate::bake::{Artifact, BakeDetails, BakeRecord, BakeRequest, present};
use crate::builders::packer::output::Outcome;
use crate::config::{BaseImage, Settings};
use crate::images::{LocalBaseImage, find_base_image, safe_name};
use crate::recipe::{OsPackageName, PackageType};
use futures_util::future::BoxFuture;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

pub use super::staged::{
    Source, StagedArtifact, packages_variable, staged_artifacts, with_digests,
};

fn invalid(message: String) -> BakeError {
    BakeError::Invalid(message)
}

/// The only region of the provider: this machine.
pub const REGION: &str = "local";
/// kiln's extended attribute that boots the baked image and checks it.
pub const BOOT_TEST: &str = "boot_test";

/// The qemu provider: a qcow2 image on this machine.
pub struct Qemu;

impl Provider for Qemu {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn enabled(&self, settings: &Settings) -> bool {
        settings.qemu.enabled
    }

    fn prepare(&self, req: &BakeRequest, ctx: &RecipeContext) -> Result<Prepared, BakeError> {
        super::prepare::prepare(self, req, ctx)
    }

    fn phase_markers(&self) -> crate::builders::packer::timeline::Markers {
        crate::builders::packer::timeline::QEMU
    }

    /// Configured base images, then those `kiln base-image build` left in the data dir.
    fn base_images(&self, settings: &Settings) -> Vec<BaseImage> {
        let images = crate::images::base_images(settings);
        images.iter().map(LocalBaseImage::base_image).collect()
    }

    fn before_run<'a>(
        &'a self,
        run: RunContext<'a>,
        prepared: &'a mut Prepared,
    ) -> BoxFuture<'a, Result<Vec<String>, HookError>> {
        Box::pin(async move {
            let req = serde_json::from_value(run.record.request.clone()).unwrap_or_default();
            stage::prepare_run(run.data_dir, &run.record.id, prepared, &req)
                .await
                .map_err(Into::into)
        })
    }

    fn after_run<'a>(
        &'a self,
        run: RunContext<'a>,
        say: &'a mut (dyn FnMut(&str) + Send),
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            finish::finish(run.data_dir, run.record, say, cancel)
                .await
                .map(drop)
        })
    }

    fn details(&self, run: RunContext<'_>, _outcome: &Outcome) -> BakeDetails {
        finish::bake_details(run.data_dir, run.record)
    }

    /// The image on this machine: path, size, sha256, kernel and initrd, the boot check's
    /// result and the command that boots it (`images/<id>/image.json`).
    fn image(&self, data_dir: &Path, record: &BakeRecord) -> Option<serde_json::Value> {
        let info = crate::images::read_image_info(data_dir, &record.id)?;
        serde_json::to_value(info).ok()
    }
}

impl BakeHandler for Qemu {
    type Own = LocalBaseImage;
    const NAME: &'static str = "qemu";
    const OWN_ATTRIBUTES: &'static [&'static str] = &[BOOT_TEST];

    fn select(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
    ) -> Result<Selected<Self::Own>, BakeError> {
        select(req, ctx)
    }

    fn check_image_name(&self, name: &str) -> Result<(), BakeError> {
        check_image_name(name)
    }

    fn artifacts(
        &self,
        kind: PackageType,
        artifacts: &[Artifact],
    ) -> Result<Vec<Artifact>, BakeError> {
        with_digests(kind, artifacts)
    }

    fn packages(
        &self,
        kind: PackageType,
        install: &[OsPackageName],
        artifacts: &[Artifact],
    ) -> Result<(String, Vec<String>), BakeError> {
        let staged = staged_artifacts(kind, artifacts)?;
        let made = staged.iter().map(StagedArtifact::guest_path).collect();
        Ok((packages_variable(kind, install, &staged), made))
    }

    fn variables(
        &self,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<Self::Own>,
        image_name: &str,
        app_version: Option<&str>,
    ) -> Vars {
        variables(ctx, req, &base.own, image_name, app_version)
    }

    fn default_template<'a>(&self, settings: &'a Settings) -> &'a str {
        settings
            .qemu
            .template_file
            .as_deref()
            .unwrap_or("qemu.json")
    }
}

/// Finds the base image and checks what the qemu provider needs of the request.
fn select(req: &BakeRequest, ctx: &RecipeContext) -> Result<Selected<LocalBaseImage>, BakeError> {
    if ctx.region != REGION {
        return Err(invalid(format!(
            "the qemu provider bakes on this machine: use region '{REGION}', not '{}'",
            ctx.region
        )));
    }
    boot_test_requested(req)?;
    let os = present(&req.base_os).unwrap_or_default();
    let Some(image) = find_base_image(ctx.settings, os) else {
        let ids: Vec<String> = crate::images::base_images(ctx.settings)
            .into_iter()
            .map(|b| b.id)
            .collect();
        return Err(invalid(format!(
            "no qemu base image '{os}'; available: [{}] (`kiln base-image build <suite>` makes one)",
            ids.join(", ")
        )));
    };
    let missing = image.missing_files();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "qemu base image '{os}' is incomplete: missing {}",
            missing.join(", ")
        )));
    }
    Ok(Selected {
        image: image.base_image(),
        vm_type: "qemu".into(),
        source_image: format!("{}@{}", image.disk.display(), image.fingerprint),
        source_name: None,
        own: image,
    })
}

/// Whether the request asks for the boot check (`boot_test`: true/false, yes/no, 1/0).
pub fn boot_test_requested(req: &BakeRequest) -> Result<bool, BakeError> {
    match req
        .extended_attributes()
        .get(BOOT_TEST)
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => Ok(false),
        Some(v) if ["true", "yes", "1"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["false", "no", "0", ""].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(invalid(format!(
            "extended attribute '{BOOT_TEST}' is '{v}'; use true or false"
        ))),
    }
}

/// The image name becomes `<name>.qcow2`.
pub fn check_image_name(name: &str) -> Result<(), BakeError> {
    if safe_name(name) {
        return Ok(());
    }
    Err(invalid(format!(
        "image name '{name}' becomes a file name: use letters, digits, '.', '_', '-' and '+' (set ami_name or ami_suffix)"
    )))
}

/// The qemu template's variables (besides the common ones and the per-run output paths).
fn variables(
    ctx: &RecipeContext,
    req: &BakeRequest,
    image: &LocalBaseImage,
    image_name: &str,
    app_version: Option<&str>,
) -> Vars {
    let path = |p: &PathBuf| Some(p.display().to_string());
    let mut vars = Vec::new();
    push(&mut vars, "qemu_source_disk", path(&image.disk));
    push(&mut vars, "qemu_kernel", path(&image.kernel));
    push(&mut vars, "qemu_initrd", path(&image.initrd));
    push(&mut vars, "qemu_append", Some(image.append.clone()));
    let accelerator = ctx.settings.qemu.accelerator.as_str();
    push(&mut vars, "qemu_accelerator", Some(accelerator.into()));
    push(
        &mut vars,
        "qemu_ssh_username",
        Some(image.ssh_user_name.clone()),
    );
    push(&mut vars, "qemu_ssh_private_key_file", path(&image.ssh_key));
    let shutdown = if image.ssh_user_name == "root" {
        "poweroff"
    } else {
        "sudo -n poweroff"
    };
    push(&mut vars, "qemu_shutdown_command", Some(shutdown.into()));
    push(
        &mut vars,
        "qemu_vm_name",
        Some(format!("{image_name}.qcow2")),
    );
    push(&mut vars, "build_info_url", req.build_info_url.clone());
    push(&mut vars, "appversion", app_version.map(String::from));
    vars
}

/// The names of every package the bake installs, for the boot check.
pub fn installed_names(kind: PackageType, req: &BakeRequest) -> Vec<String> {
    let artifacts = req.package_artifacts.clone().unwrap_or_default();
    let staged = staged_artifacts(kind, &artifacts).unwrap_or_default();
    let requested = req.packages().into_iter().map(|t| kind.parse(t));
    let mut names: Vec<String> = Vec::new();
    for name in requested
        .chain(staged.into_iter().map(|s| s.package))
        .filter_map(|p| p.name)
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests;
