//! Rosco's v2 manifest bakery (`POST /api/v2/manifest/bake/{type}`): Helm 2 and 3, Helmfile and
//! Kustomize charts rendered by their own executables, and Cloud Foundry manifests resolved by
//! kiln itself. A bake is synchronous, as Rosco's: fetch the input artifacts into a private
//! work dir ([`fetch`], [`archive`]), run the renderer ([`run`]: argv, no shell, a time limit,
//! capped output) with the command line Rosco builds ([`render`]), and answer the output as an
//! `embedded/base64` artifact. The work dir is removed when the bake ends, whatever happened.
//!
//! [`request`] holds the request shapes and Rosco's rules (no I/O); this module ties them to
//! files and processes. Blocking: [`bake`] runs on a blocking thread.

pub mod archive;
pub mod fetch;
pub mod render;
pub mod request;
pub mod run;

use crate::config::Settings;
use crate::runner::redact::Redactor;
use fetch::{FetchError, Fetcher};
use render::helm::{self as helm_render, Executables};
use request::{Artifact, BakeRequest, Renderer, Spec};
use run::{Bounds, RunError};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// The settings a manifest bake reads, resolved with Rosco's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub executables: Executables,
    pub timeout: Duration,
    pub max_artifact_bytes: u64,
    pub max_output_bytes: u64,
    pub allow_file_urls: bool,
    pub max_concurrent: usize,
    pub clouddriver: Option<String>,
    pub data_dir: PathBuf,
}

impl Config {
    pub fn from_settings(s: &Settings) -> Config {
        let or =
            |v: &Option<String>, d: &str| v.clone().filter(|v| !v.is_empty()).unwrap_or(d.into());
        let m = &s.kiln.manifests;
        Config {
            executables: Executables {
                helm3: or(&s.helm.v3_executable_path, "helm3"),
                helm2: or(&s.helm.v2_executable_path, "helm"),
                helmfile: or(&s.helmfile.executable_path, "helmfile"),
                kustomize3: or(&s.kustomize.v3_executable_path, "kustomize"),
                kustomize4: or(&s.kustomize.v4_executable_path, "kustomize4"),
                overrides_file_threshold: s.helm.overrides_file_threshold.unwrap_or(0),
            },
            timeout: m
                .timeout
                .map(|d| d.0)
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(120)),
            max_artifact_bytes: m.max_artifact_bytes.filter(|n| *n > 0).unwrap_or(64 << 20),
            max_output_bytes: m.max_output_bytes.filter(|n| *n > 0).unwrap_or(16 << 20),
            allow_file_urls: m.allow_file_urls,
            max_concurrent: m.max_concurrent.filter(|n| *n > 0).unwrap_or(4),
            clouddriver: s.clouddriver_base_url(),
            data_dir: s.data_dir(),
        }
    }
}

/// Why a bake did not produce a manifest, and how the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BakeError {
    /// The request is wrong: a 400 naming the field.
    #[error("{0}")]
    Invalid(String),
    /// An artifact's source answered this status (Rosco passes Clouddriver's 404 on).
    #[error("{1}")]
    Upstream(u16, String),
    /// Fetching failed: a 500 with the reason, as Rosco's.
    #[error("{0}")]
    Fetch(String),
    /// The renderer failed: a 500 with its error, as Rosco's `Bake failed: …`.
    #[error("{0}")]
    Render(String),
}

impl BakeError {
    /// The `outcome` label of `kiln_manifest_bakes_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            BakeError::Invalid(_) => "invalid",
            BakeError::Upstream(..) | BakeError::Fetch(_) => "fetch_failed",
            BakeError::Render(_) => "render_failed",
        }
    }
}

/// One bake's result, for the answer, the metrics and the log line.
pub struct Baked {
    pub renderer: Option<Renderer>,
    pub result: Result<Artifact, BakeError>,
}

/// Bakes the request `body` sent to `/api/v2/manifest/bake/{path_type}`; logs one line.
pub fn bake(cfg: &Config, path_type: &str, body: &[u8]) -> Baked {
    let started = Instant::now();
    let (renderer, result, output) = match request::renderer_of_path(path_type) {
        Err(e) => (None, Err(BakeError::Invalid(e.0)), None),
        Ok(path_renderer) => match BakeRequest::from_json(path_renderer, body) {
            Err(e) => (Some(path_renderer), Err(BakeError::Invalid(e.0)), None),
            Ok(req) => {
                let redactor = redactor(&req);
                let result = bake_checked(cfg, &req).map_err(|e| redact(&redactor, e));
                let name = req.output_artifact_name.clone();
                (Some(req.renderer), result, name)
            }
        },
    };
    let ms = started.elapsed().as_millis() as u64;
    let label = renderer.map_or("unknown", Renderer::label);
    match &result {
        Ok(a) => tracing::info!(
            renderer = label,
            outcome = "success",
            output = %crate::telemetry::escaped(output.as_deref().unwrap_or("")),
            bytes = a.reference.as_ref().map_or(0, |r| r.len() / 4 * 3),
            ms,
            "manifest bake"
        ),
        Err(e) => tracing::warn!(
            renderer = label,
            outcome = e.outcome(),
            error = %crate::telemetry::escaped(&e.to_string()),
            ms,
            "manifest bake"
        ),
    }
    Baked { renderer, result }
}

/// Secrets a bake's errors might echo: the user-info of artifact URLs.
fn redactor(req: &BakeRequest) -> Redactor {
    let secrets = req.artifacts().into_iter().filter_map(|a| {
        let r = a.reference.as_deref()?;
        let (_, rest) = r.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        let (userinfo, _) = authority.rsplit_once('@')?;
        Some(userinfo.to_string())
    });
    Redactor::new(secrets)
}

fn redact(r: &Redactor, e: BakeError) -> BakeError {
    let f = |t: String| r.redact(&t).into_owned();
    match e {
        BakeError::Invalid(t) => BakeError::Invalid(f(t)),
        BakeError::Upstream(s, t) => BakeError::Upstream(s, f(t)),
        BakeError::Fetch(t) => BakeError::Fetch(f(t)),
        BakeError::Render(t) => BakeError::Render(f(t)),
    }
}

/// A fetch error in Rosco's words (`Failed to fetch helm template: …`).
fn fetch_error(prefix: &str, e: FetchError) -> BakeError {
    match e {
        FetchError::Invalid(t) => BakeError::Invalid(t),
        FetchError::Status(s, t) => BakeError::Upstream(s, format!("{prefix}: {t}")),
        FetchError::Failed(t) => BakeError::Fetch(format!("{prefix}: {t}")),
    }
}

fn render_error(e: RunError, key: &str) -> BakeError {
    let hint = match &e {
        RunError::NotFound(..) => format!(" (set {key})"),
        _ => String::new(),
    };
    BakeError::Render(format!("Bake failed: {e}{hint}"))
}

/// The work dir's path of an entry inside a fetched tree, refusing one that leaves it.
fn inside(root: &Path, rel: Option<&str>) -> Result<PathBuf, BakeError> {
    let mut out = root.to_path_buf();
    for c in Path::new(rel.unwrap_or("")).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => {
                return Err(BakeError::Invalid(
                    "a path must stay inside the artifact".into(),
                ));
            }
        }
    }
    // A symlink in the tree may only point inside (archive checks); canonicalize to be sure.
    if let (Ok(real), Ok(real_root)) = (out.canonicalize(), root.canonicalize())
        && !real.starts_with(&real_root)
    {
        return Err(BakeError::Invalid(
            "a path must stay inside the artifact".into(),
        ));
    }
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), BakeError> {
    std::fs::write(path, bytes)
        .map_err(|e| BakeError::Fetch(format!("writing {}: {e}", path.display())))
}

fn bake_checked(cfg: &Config, req: &BakeRequest) -> Result<Artifact, BakeError> {
    let deadline = Instant::now() + cfg.timeout;
    let work = crate::runner::temp::folder(&cfg.data_dir, "manifest-")
        .map_err(|e| BakeError::Fetch(format!("kiln's work dir under kiln.dataDir: {e}")))?;
    let dir = work.path();
    let fetcher = Fetcher {
        clouddriver: cfg
            .clouddriver
            .as_deref()
            .map(crate::services::clouddriver::Clouddriver::new),
        deadline,
        max_bytes: cfg.max_artifact_bytes,
        allow_file_urls: cfg.allow_file_urls,
    };
    let bounds = Bounds {
        deadline,
        max_stdout: cfg.max_output_bytes,
    };
    let exe = &cfg.executables;
    let rendered: Vec<u8> = match &req.spec {
        Spec::Helm(h) => {
            let kind = "helm";
            let (chart, values) = chart_and_values(
                &fetcher,
                dir,
                &h.input_artifacts,
                h.chart_file_path.as_deref(),
                kind,
            )?;
            let overrides_path = dir.join(format!("overrides_{}.yml", uuid::Uuid::new_v4()));
            let plan = helm_render::helm_argv(
                exe,
                req.renderer,
                h,
                &chart,
                &values,
                &overrides_path.to_string_lossy(),
            );
            if let Some((path, yaml)) = &plan.overrides_file {
                write(Path::new(path), yaml.as_bytes())?;
            }
            let key = if req.renderer == Renderer::Helm2 {
                "helm.v2ExecutablePath"
            } else {
                "helm.v3ExecutablePath"
            };
            let out = run::run(&plan.argv, dir, &[], bounds).map_err(|e| render_error(e, key))?;
            helm_render::without_tests(&String::from_utf8_lossy(&out)).into_bytes()
        }
        Spec::Helmfile(h) => {
            let (file, values) = chart_and_values(
                &fetcher,
                dir,
                &h.input_artifacts,
                h.helmfile_file_path.as_deref(),
                "helmfile",
            )?;
            let argv = helm_render::helmfile_argv(exe, h, &file, &values);
            let out = run::run(&argv, dir, &[], bounds)
                .map_err(|e| render_error(e, "helmfile.executablePath"))?;
            helm_render::without_tests(&String::from_utf8_lossy(&out)).into_bytes()
        }
        Spec::Kustomize(k) => {
            let tree = dir.join("tree");
            std::fs::create_dir(&tree).map_err(|e| BakeError::Fetch(e.to_string()))?;
            let file = if k.input_artifact.kind() == "git/repo" {
                fetcher
                    .tree(&k.input_artifact, "inputArtifact", &tree, dir)
                    .map_err(|e| fetch_error("Failed to fetch kustomize files", e))?;
                inside(&tree, k.kustomize_file_path.as_deref())?
            } else {
                kustomization_files(&fetcher, &tree, &k.input_artifact)?
            };
            let build_dir = file
                .parent()
                .unwrap_or(&tree)
                .to_string_lossy()
                .into_owned();
            let (exe_path, key) = if req.renderer == Renderer::Kustomize4 {
                (&exe.kustomize4, "kustomize.v4ExecutablePath")
            } else {
                (&exe.kustomize3, "kustomize.v3ExecutablePath")
            };
            let argv = render::kustomize::argv(exe_path, &build_dir);
            run::run(&argv, dir, &[], bounds).map_err(|e| render_error(e, key))?
        }
        Spec::Cf(c) => {
            let template = fetcher
                .bytes(&c.manifest_template, "manifestTemplate")
                .map_err(|e| fetch_error("Failed to fetch the manifest template", e))?;
            let template = String::from_utf8(template).map_err(|_| {
                BakeError::Invalid("manifestTemplate: the template is not UTF-8 text".into())
            })?;
            let mut vars = Vec::new();
            for (i, a) in c.vars_artifacts.iter().enumerate() {
                let what = format!("varsArtifacts[{i}]");
                let bytes = fetcher
                    .bytes(a, &what)
                    .map_err(|e| fetch_error("Failed to fetch a vars file", e))?;
                vars.push((what, bytes));
            }
            render::cf::resolve(&template, &vars)
                .map_err(|e| BakeError::Invalid(e.to_string()))?
                .into_bytes()
        }
    };
    // `work` is dropped here: the work dir and everything fetched into it are removed.
    drop(work);
    Ok(Artifact::embedded(
        req.output_artifact_name.clone(),
        &rendered,
    ))
}

/// Rosco's `getHelmTypePathFromArtifact` and `getValuePaths`: the chart (or helmfile) from the
/// first artifact — a git/repo tree with the file path inside it, or a downloaded file — and
/// the values files from the rest, in order.
fn chart_and_values(
    fetcher: &Fetcher,
    dir: &Path,
    artifacts: &[Artifact],
    file_path: Option<&str>,
    kind: &str,
) -> Result<(String, Vec<String>), BakeError> {
    let first = &artifacts[0];
    let template = format!("Failed to fetch {kind} template");
    let chart = if first.kind() == "git/repo" {
        let tree = dir.join("tree");
        std::fs::create_dir(&tree).map_err(|e| BakeError::Fetch(e.to_string()))?;
        fetcher
            .tree(first, "inputArtifacts[0]", &tree, dir)
            .map_err(|e| fetch_error(&template, e))?;
        inside(&tree, file_path)?
    } else {
        let bytes = fetcher
            .bytes(first, "inputArtifacts[0]")
            .map_err(|e| fetch_error(&template, e))?;
        let path = dir.join(if kind == "helm" {
            "chart.tgz"
        } else {
            "helmfile.yaml"
        });
        write(&path, &bytes)?;
        path
    };
    let mut values = Vec::new();
    for (i, a) in artifacts.iter().enumerate().skip(1) {
        let bytes = fetcher
            .bytes(a, &format!("inputArtifacts[{i}]"))
            .map_err(|e| fetch_error(&format!("Failed to fetch {kind} values file"), e))?;
        let path = dir.join(format!("values-{i}.yml"));
        write(&path, &bytes)?;
        values.push(path.to_string_lossy().into_owned());
    }
    Ok((chart.to_string_lossy().into_owned(), values))
}

/// The most files one kustomization may pull in.
const MAX_KUSTOMIZE_FILES: usize = 200;

/// Rosco's older kustomize path, for an artifact that is one kustomization file (its `name`
/// the path in the repository, its `reference` the URL ending in that path): the files it
/// names are fetched as artifacts of the same kind next to it, folders' kustomizations
/// followed, into `tree` at their repository paths. Answers the top kustomization's path.
fn kustomization_files(fetcher: &Fetcher, tree: &Path, a: &Artifact) -> Result<PathBuf, BakeError> {
    let reference = a.reference.clone().unwrap_or_default();
    let name = a.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
        BakeError::Invalid(
            "inputArtifact.name: the kustomization's path in its repository is required".into(),
        )
    })?;
    let name = name.trim_start_matches('/').to_string();
    let base = reference.strip_suffix(&name).ok_or_else(|| {
        BakeError::Invalid(
            "inputArtifact: the reference must end with the artifact's name (its path)".into(),
        )
    })?;
    let top = normalize(&name).ok_or_else(|| {
        BakeError::Invalid("inputArtifact.name: must stay inside the repository".into())
    })?;
    let fetch = |rel: &str| -> Result<Vec<u8>, FetchError> {
        let mut one = a.clone();
        one.reference = Some(format!("{base}{rel}"));
        one.name = Some(rel.to_string());
        fetcher.bytes(&one, "inputArtifact")
    };
    let fail = |e| fetch_error("Failed to fetch kustomize files", e);
    // (path, is a kustomization, its bytes when a folder probe already fetched them)
    let mut queue: Vec<(String, bool, Option<Vec<u8>>)> = vec![(top.clone(), true, None)];
    let mut seen = std::collections::HashSet::new();
    while let Some((rel, is_kustomization, fetched)) = queue.pop() {
        if !seen.insert(rel.clone()) {
            continue;
        }
        if seen.len() > MAX_KUSTOMIZE_FILES {
            return Err(BakeError::Invalid(format!(
                "inputArtifact: the kustomization names more than {MAX_KUSTOMIZE_FILES} files"
            )));
        }
        let bytes = match fetched {
            Some(bytes) => bytes,
            None => fetch(&rel).map_err(fail)?,
        };
        let path = tree.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BakeError::Fetch(e.to_string()))?;
        }
        write(&path, &bytes)?;
        if !is_kustomization {
            continue;
        }
        let folder = Path::new(&rel)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let named = render::kustomize::referenced(&bytes).map_err(|e| {
            BakeError::Invalid(format!(
                "inputArtifact {}: {e}",
                crate::telemetry::escaped(&rel)
            ))
        })?;
        for entry in named {
            let joined = if folder.is_empty() {
                entry.clone()
            } else {
                format!("{folder}/{entry}")
            };
            let norm = normalize(&joined).ok_or_else(|| {
                BakeError::Invalid(format!(
                    "inputArtifact: {} leaves the repository",
                    crate::telemetry::escaped(&entry)
                ))
            })?;
            if render::kustomize::is_folder(&entry) {
                // The folder's kustomization under the first name kustomize accepts.
                let mut found = None;
                for file in render::kustomize::FILE_NAMES {
                    let candidate = format!("{norm}/{file}");
                    if seen.contains(&candidate) {
                        found = Some((candidate, None));
                        break;
                    }
                    match fetch(&candidate) {
                        Ok(bytes) => {
                            found = Some((candidate, Some(bytes)));
                            break;
                        }
                        Err(FetchError::Status(404, _)) => continue,
                        Err(e) => return Err(fail(e)),
                    }
                }
                let (found, bytes) = found.ok_or_else(|| {
                    BakeError::Upstream(
                        404,
                        format!(
                            "Failed to fetch kustomize files: no kustomization in {}",
                            crate::telemetry::escaped(&norm)
                        ),
                    )
                })?;
                queue.push((found, true, bytes));
            } else {
                queue.push((norm, false, None));
            }
        }
    }
    Ok(tree.join(top))
}

/// `a/./b/../c` → `a/c`; None when it climbs above the root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_inside_the_repository() {
        assert_eq!(
            normalize("overlays/prod/../base/k.yaml").as_deref(),
            Some("overlays/base/k.yaml")
        );
        assert_eq!(normalize("../x"), None);
        assert_eq!(normalize("./a//b"), Some("a/b".into()));
    }

    #[test]
    fn the_defaults_are_roscos() {
        let cfg = Config::from_settings(&Settings::default());
        assert_eq!(cfg.executables.helm3, "helm3");
        assert_eq!(cfg.executables.helm2, "helm");
        assert_eq!(cfg.executables.helmfile, "helmfile");
        assert_eq!(cfg.executables.kustomize3, "kustomize");
        assert_eq!(cfg.executables.kustomize4, "kustomize4");
        assert_eq!(cfg.executables.overrides_file_threshold, 0);
        assert_eq!(cfg.timeout, Duration::from_secs(120));
        assert!(!cfg.allow_file_urls);
    }
}
