//! Rosco's `KustomizeTemplateUtils`: `kustomize build <dir>`, and, for an artifact that is a
//! single kustomization file (a github/file-style artifact), the files it refers to, fetched
//! next to it as Rosco's `KustomizationFileReader` does. No I/O.

use serde_norway::Value;

/// `kustomize build <dir>` with the v3 or v4 executable.
pub fn argv(exe: &str, dir: &str) -> Vec<String> {
    vec![exe.to_string(), "build".into(), dir.to_string()]
}

/// The files and folders a kustomization names, by the keys Rosco's reader follows:
/// `resources`, `bases`, `crds`, `components`, `patchesStrategicMerge`, `patches[].path`,
/// `patchesJson6902[].path`, `configurations`, `generators`, `transformers`, and the
/// `files`/`envs`/`env` of config map and secret generators (`key=path` gives the path).
/// Entries with a scheme (remote bases) are left to kustomize.
pub fn referenced(kustomization: &[u8]) -> Result<Vec<String>, String> {
    let doc: Value = serde_norway::from_slice(kustomization)
        .map_err(|e| format!("not a kustomization (YAML): {e}"))?;
    let mut out: Vec<String> = Vec::new();
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_sequence)
            .map(|s| {
                s.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for key in [
        "resources",
        "bases",
        "crds",
        "components",
        "patchesStrategicMerge",
        "configurations",
        "generators",
        "transformers",
    ] {
        out.extend(strings(doc.get(key)));
    }
    for key in ["patches", "patchesJson6902"] {
        if let Some(items) = doc.get(key).and_then(Value::as_sequence) {
            out.extend(
                items
                    .iter()
                    .filter_map(|p| p.get("path")?.as_str().map(String::from)),
            );
        }
    }
    for key in ["configMapGenerator", "secretGenerator"] {
        for generator in doc
            .get(key)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            for file in strings(generator.get("files"))
                .into_iter()
                .chain(strings(generator.get("envs")))
            {
                out.push(
                    file.rsplit_once('=')
                        .map_or(file.clone(), |(_, p)| p.to_string()),
                );
            }
            if let Some(env) = generator.get("env").and_then(Value::as_str) {
                out.push(env.to_string());
            }
        }
    }
    out.retain(|p| !p.contains("://") && !p.is_empty());
    out.dedup();
    Ok(out)
}

/// Rosco's `isFolder`: an entry without an extension is a folder holding a kustomization.
pub fn is_folder(entry: &str) -> bool {
    let last = entry.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    !last.contains('.') || last == "." || last == ".."
}

/// The kustomization file names kustomize looks for in a folder.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_a_kustomization_names_are_found() {
        let k = br#"
resources: [deployment.yaml, ../base, "https://github.com/x/y//z"]
patchesStrategicMerge: [patch.yaml]
patches:
- path: p2.yaml
configMapGenerator:
- name: c
  files: [app.properties, key=other.txt]
  env: vars.env
"#;
        assert_eq!(
            referenced(k).unwrap(),
            vec![
                "deployment.yaml",
                "../base",
                "patch.yaml",
                "p2.yaml",
                "app.properties",
                "other.txt",
                "vars.env"
            ]
        );
        assert!(
            is_folder("../base") && is_folder("overlays/prod") && !is_folder("deployment.yaml")
        );
        assert_eq!(
            argv("kustomize4", "/w/k"),
            vec!["kustomize4", "build", "/w/k"]
        );
    }
}
