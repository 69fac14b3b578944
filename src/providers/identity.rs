//! The bake identity: a digest of everything that changes the image. Rosco's key is built from
//! a few request fields and misses extended attributes, `upgrade`, the template's content and
//! the resolved source image, so different bakes were answered with one image. kiln's identity
//! covers the provider, region, base image and the source image's id (a name is looked up
//! first: a new base AMI is a new bake), vm type, the full variable set (secret
//! values and the image name's suffix, `ami_suffix` or the clock, left out), the template, var file and the scripts the template names,
//! by content, and the CI artifacts by reference and digest.

use super::provider::Selected;
use super::recipe::{Identity, Prepared, RecipeContext};
use crate::bake::{Artifact, BakeRequest};
use crate::digest::sha256_hex;
use serde_json::{Map, Value, json};
use std::path::Path;

impl Identity {
    pub(super) fn of<T>(
        p: &Prepared,
        req: &BakeRequest,
        ctx: &RecipeContext,
        base: &Selected<T>,
        artifacts: &[Artifact],
    ) -> Identity {
        let mut variables = Map::new();
        for (k, v) in &p.plan.variables {
            // The image name's suffix (`ami_suffix`, fresh on every pipeline run, else the
            // clock) and where configDir happens to live change nothing in the image (the files
            // in it count by content), so a re-run pipeline and instances with different data
            // dirs agree.
            let v = if v.contains(&p.image_name) {
                v.replace(&p.image_name, &p.image_name_pattern)
            } else if k == "configDir" {
                "{configDir}".to_string()
            } else {
                v.clone()
            };
            // A value made from the bake's start time (Docker's default tag and appversion)
            // changes nothing in the image either.
            let v = if v == ctx.now_ms.to_string() {
                "{now}".to_string()
            } else {
                v
            };
            variables.insert(k.clone(), Value::String(v));
        }
        // A secret value cannot enter the identity (the digest and inputs are shown, and a
        // digest of a weak secret can be guessed). The operator's secrets (config) are like
        // credentials: they authenticate, they don't shape the image. A secret the request
        // gives may shape it, and two requests differing only there must never be "the
        // same": such a bake gets a unique identity and is never reused.
        let mut unique = None;
        for (k, _) in &p.plan.secret_variables {
            let requested = p.requested_attributes.iter().any(|a| a == k);
            let shown = if requested {
                unique.get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
                "<secret from the request: never reused>"
            } else {
                "<secret>"
            };
            variables.insert(k.clone(), Value::String(shown.into()));
        }
        let template_text = std::fs::read(&p.plan.template).unwrap_or_default();
        let mut inputs = json!({
            "provider": p.provider,
            "region": ctx.region,
            "base_os": base.image.id,
            "image_name": p.image_name_pattern,
            "source_image": base.source_image,
            "vm_type": base.vm_type,
            "enhanced_networking": req.enhanced_networking == Some(true),
            "variables": variables,
            "template": {"name": p.template_name, "sha256": sha256_hex(&template_text)},
            "var_file": p.plan.var_file.as_ref().map(|f| json!({"name": p.var_file_name, "sha256": file_digest(f)})),
            "scripts": referenced_files(ctx.config_dir, &template_text, &p.plan.template),
            "packages": req.packages(),
            "artifacts": artifacts.iter().map(artifact_input).collect::<Vec<_>>(),
            "run_as_root": p.plan.run_as_root,
        });
        // Only a builder other than Packer enters the inputs: the identities of Packer bakes
        // stay what they were before builders existed, so their images keep being reused.
        if let (crate::builders::Builder::EbsDirect, Some(map)) =
            (p.plan.builder, inputs.as_object_mut())
        {
            map.insert(
                "builder".into(),
                Value::String(p.plan.builder.name().into()),
            );
        }
        if let (Some(u), Some(map)) = (unique, inputs.as_object_mut()) {
            map.insert("unique".into(), Value::String(u));
        }
        let digest = sha256_hex(&serde_json::to_vec(&inputs).unwrap_or_default());
        Identity { digest, inputs }
    }
}

fn artifact_input(a: &Artifact) -> Value {
    let digest = a
        .metadata
        .as_ref()
        .and_then(|m| m.get("sha256").or_else(|| m.get("digest")))
        .cloned();
    json!({"reference": a.reference, "name": a.name, "version": a.version, "digest": digest})
}

/// Files of `configDir` (top level and one level down) whose name appears in the template: the
/// scripts and files it uploads. Their content is part of the identity.
fn referenced_files(
    config_dir: &Path,
    template: &[u8],
    template_path: &Path,
) -> Map<String, Value> {
    let text = String::from_utf8_lossy(template);
    let mut out = Map::new();
    let mut visit = |dir: &Path, prefix: &str| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut subdirs = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if path.is_dir() {
                subdirs.push((path, format!("{name}/")));
            } else if path != template_path && text.contains(&name) {
                out.insert(name, Value::String(file_digest(&path).unwrap_or_default()));
            }
        }
        subdirs
    };
    for (dir, prefix) in visit(config_dir, "") {
        visit(&dir, &prefix);
    }
    out
}

fn file_digest(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| sha256_hex(&b))
}
