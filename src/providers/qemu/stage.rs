//! Getting a qemu bake ready to run, once its id is known: a fresh staging dir, the package
//! artifacts copied or downloaded into it (each checked against the digest its bake identity
//! was computed with), and the per-bake Packer variables (`qemu_output_directory`,
//! `qemu_staging_dir`) added to the recipe.

use super::{Source, StagedArtifact, staged_artifacts};
use crate::bake::BakeRequest;
use crate::digest::sha256_file;
use crate::images::{image_dir, safe_name, staging_dir};
use crate::providers::recipe::Prepared;
use crate::recipe::PackageType;
use std::path::{Path, PathBuf};

/// Why a qemu bake could not be made ready; the bake fails with this message and its cause.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("bake id '{0}' cannot name a directory")]
    BadId(String),
    #[error("cannot prepare {path}", path = path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("package artifact '{reference}': {message}")]
    Artifact { reference: String, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
    move |source| StageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Prepares the staging dir of bake `id` and adds the per-run variables to its recipe; returns
/// lines for the bake's log.
pub(in crate::providers) async fn prepare_run(
    data_dir: &Path,
    id: &str,
    prepared: &mut Prepared,
    req: &BakeRequest,
) -> Result<Vec<String>, StageError> {
    if !safe_name(id) {
        return Err(StageError::BadId(id.to_string()));
    }
    let stage = staging_dir(data_dir, id);
    let output = image_dir(data_dir, id);
    // A run of this bake that died before (kiln restarted and re-queued it) starts over.
    for dir in [&stage, &output] {
        if dir.exists() {
            tokio::fs::remove_dir_all(dir).await.map_err(io(dir))?;
        }
    }
    let artifacts_dir = stage.join("kiln-artifacts");
    for dir in [&artifacts_dir, &stage.join("boot")] {
        tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
    }
    if let Some(parent) = output.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io(parent))?;
    }

    let kind: PackageType = (prepared.plan.variable("package_type"))
        .and_then(|k| k.parse().ok())
        .unwrap_or(PackageType::Deb);
    let artifacts = req.package_artifacts.clone().unwrap_or_default();
    let staged = staged_artifacts(kind, &artifacts).map_err(|e| StageError::Artifact {
        reference: "(request)".into(),
        message: e.to_string(),
    })?;
    let mut notes = Vec::new();
    for a in &staged {
        let target = artifacts_dir.join(&a.file_name);
        fetch(a, &target).await?;
        let digest = sha256_file(&target).map_err(io(&target))?;
        let expected = a
            .sha256
            .clone()
            .or_else(|| identity_digest(prepared, &a.reference));
        if let Some(want) = expected.filter(|w| *w != digest) {
            return Err(StageError::Artifact {
                reference: a.reference.clone(),
                message: format!(
                    "its content changed since the bake was requested (sha256 {digest}, expected {want}); bake again"
                ),
            });
        }
        notes.push(format!(
            "kiln: staged {} for the VM ({}, sha256 {})",
            a.reference,
            a.guest_path(),
            &digest[..12]
        ));
    }

    let plan = &mut prepared.plan;
    plan.set_variable("qemu_output_directory", output.display().to_string());
    plan.set_variable("qemu_staging_dir", stage.display().to_string());
    Ok(notes)
}

/// Copies a `file://` artifact or downloads an `http(s)://` one (curl: redirects followed,
/// HTTP errors fail, at most 15 minutes).
async fn fetch(a: &StagedArtifact, target: &Path) -> Result<(), StageError> {
    let failed = |message: String| StageError::Artifact {
        reference: a.reference.clone(),
        message,
    };
    match &a.source {
        Source::File(path) => tokio::fs::copy(path, target)
            .await
            .map(drop)
            .map_err(|e| failed(format!("cannot copy {}: {e}", path.display()))),
        Source::Url(url) => {
            let out = tokio::process::Command::new("curl")
                .args(["-fsSL", "--proto", "=http,https", "--max-time", "900", "-o"])
                .arg(target)
                .arg(url)
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| failed(format!("cannot run curl to download it: {e}")))?;
            if out.status.success() {
                return Ok(());
            }
            Err(failed(format!(
                "download failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

/// The digest of an artifact in the bake's identity inputs (filled in for `file://` artifacts
/// when the bake was requested).
fn identity_digest(p: &Prepared, reference: &str) -> Option<String> {
    p.identity.inputs["artifacts"]
        .as_array()?
        .iter()
        .find(|a| a["reference"].as_str() == Some(reference))
        .and_then(|a| a["digest"].as_str())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Chain;

    #[test]
    fn a_staging_failure_names_its_path_and_cause_once() {
        let e = io(Path::new("/data/images/x"))(std::io::Error::other("disk on fire"));
        assert_eq!(e.to_string(), "cannot prepare /data/images/x");
        assert_eq!(
            Chain(&e).to_string(),
            "cannot prepare /data/images/x: disk on fire"
        );
    }
}
