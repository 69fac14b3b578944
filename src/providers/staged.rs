//! Package artifacts kiln copies into the image itself: uploaded into the qemu provider's build
//! VM, copied into the ebs-direct builder's chroot. Which of a request's artifacts qualify
//! (`file://` and `http(s)://` files of the base's package type), their digests (part of the
//! bake identity), and the `packages` variable that installs them by path.

use super::recipe::BakeError;
use crate::bake::{Artifact, present};
use crate::images::{GUEST_ARTIFACTS_DIR, safe_name};
use crate::recipe::{OsPackageName, PackageType, packages_parameter};
use std::path::PathBuf;

/// Where a staged artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Url(String),
}

/// A package artifact kiln uploads into the build VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedArtifact {
    pub reference: String,
    pub source: Source,
    /// Its file name in the staging dir and in the VM.
    pub file_name: String,
    pub package: OsPackageName,
    /// The digest the request gave (`metadata.sha256`), checked after download.
    pub sha256: Option<String>,
}

impl StagedArtifact {
    pub fn guest_path(&self) -> String {
        format!("{GUEST_ARTIFACTS_DIR}/{}", self.file_name)
    }
}

/// The request's artifacts that kiln uploads: `file://` and `http(s)://` references to files
/// of the base image's package type. A `file://` artifact must exist now (a 400 otherwise).
pub fn staged_artifacts(
    kind: PackageType,
    artifacts: &[Artifact],
) -> Result<Vec<StagedArtifact>, BakeError> {
    let mut out: Vec<StagedArtifact> = Vec::new();
    for a in artifacts {
        let Some(reference) = present(&a.reference) else {
            continue;
        };
        let source = if let Some(path) = file_path(reference) {
            Source::File(path)
        } else if reference.starts_with("http://") || reference.starts_with("https://") {
            Source::Url(reference.to_string())
        } else {
            continue;
        };
        let raw_name = reference.split(['?', '#']).next().unwrap_or(reference);
        let file_name = percent_decode(raw_name.rsplit('/').next().unwrap_or_default());
        if !file_name.ends_with(kind.file_extension()) {
            continue;
        }
        if !safe_name(&file_name) {
            return Err(invalid(format!(
                "package artifact '{reference}': its file name must be plain (letters, digits, '.', '_', '-', '+')"
            )));
        }
        if let Source::File(path) = &source {
            check_local_file(reference, path, kind)?;
        }
        if out.iter().any(|o| o.file_name == file_name) {
            return Err(invalid(format!(
                "two package artifacts are named '{file_name}'; keep one of them"
            )));
        }
        let sha256 = a
            .metadata
            .as_ref()
            .and_then(|m| m.get("sha256"))
            .and_then(|v| v.as_str())
            .map(|s| s.to_ascii_lowercase());
        out.push(StagedArtifact {
            reference: reference.to_string(),
            source,
            package: kind.parse(&file_name),
            file_name,
            sha256,
        });
    }
    Ok(out)
}

/// The artifacts with `metadata.sha256` filled in from each `file://` artifact's content, so
/// the bake identity changes when the file does; a given digest must match the file.
pub fn with_digests(kind: PackageType, artifacts: &[Artifact]) -> Result<Vec<Artifact>, BakeError> {
    let staged = staged_artifacts(kind, artifacts)?;
    let mut out = artifacts.to_vec();
    for a in out.iter_mut() {
        let Some(s) = staged
            .iter()
            .find(|s| Some(s.reference.as_str()) == present(&a.reference))
        else {
            continue;
        };
        let Source::File(path) = &s.source else {
            continue;
        };
        let digest = crate::digest::sha256_file(path)
            .map_err(|e| invalid(format!("package artifact '{}': {e}", s.reference)))?;
        if s.sha256.as_ref().is_some_and(|want| *want != digest) {
            return Err(invalid(format!(
                "package artifact '{}': the file's sha256 is {digest}, not the metadata.sha256 given",
                s.reference
            )));
        }
        a.metadata
            .get_or_insert_with(Default::default)
            .insert("sha256".into(), digest.into());
    }
    Ok(out)
}

/// The `packages` variable: requested packages in order, each one an artifact provides as that
/// file's path in the VM, then the remaining artifacts.
pub fn packages_variable(
    kind: PackageType,
    install: &[OsPackageName],
    staged: &[StagedArtifact],
) -> String {
    let mut used = vec![false; staged.len()];
    let mut tokens = Vec::new();
    for p in install {
        let from = staged
            .iter()
            .position(|s| s.package.name.is_some() && s.package.name == p.name);
        match from {
            Some(i) => {
                used[i] = true;
                tokens.push(staged[i].guest_path());
            }
            None => tokens.push(packages_parameter(kind, std::slice::from_ref(p))),
        }
    }
    for (s, _) in staged.iter().zip(&used).filter(|(_, u)| !**u) {
        tokens.push(s.guest_path());
    }
    tokens.retain(|t| !t.is_empty());
    tokens.join(" ")
}

fn check_local_file(
    reference: &str,
    path: &std::path::Path,
    kind: PackageType,
) -> Result<(), BakeError> {
    let real = path.canonicalize().map_err(|e| {
        invalid(format!(
            "package artifact '{reference}': {} cannot be read: {e}",
            path.display()
        ))
    })?;
    // A symlink named x.deb must not smuggle another file (a key, a password file) into an image.
    let real_name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !real.is_file() || !real_name.ends_with(kind.file_extension()) {
        return Err(invalid(format!(
            "package artifact '{reference}' must be a {} file",
            kind.file_extension()
        )));
    }
    Ok(())
}

/// `file:///x/y.deb` or `file:/x/y.deb` → `/x/y.deb`.
pub(super) fn file_path(reference: &str) -> Option<PathBuf> {
    let rest = reference
        .strip_prefix("file://")
        .or_else(|| reference.strip_prefix("file:"))?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    rest.starts_with('/')
        .then(|| PathBuf::from(percent_decode(rest)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn invalid(message: String) -> BakeError {
    BakeError::Invalid(message)
}
