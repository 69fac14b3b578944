//! What a manifest bake asks for, as Orca sends it (`orca-bakery`'s `*BakeManifestRequest` and
//! `BakeCloudFoundryManifestRequest`), and Rosco's rules for it: which renderer a path names,
//! what each renderer needs, and what kiln refuses before anything is fetched or run. No I/O.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Rosco's `TemplateRenderer`: the `{type}` of `POST /api/v2/manifest/bake/{type}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    Helm2,
    Helm3,
    Helmfile,
    Kustomize,
    Kustomize4,
    Cf,
}

impl Renderer {
    pub const ALL: [Renderer; 6] = [
        Renderer::Helm2,
        Renderer::Helm3,
        Renderer::Helmfile,
        Renderer::Kustomize,
        Renderer::Kustomize4,
        Renderer::Cf,
    ];

    /// Rosco's name (`HELM3`); matched case-insensitively, as Rosco's `valueOf(toUpperCase())`.
    pub fn name(self) -> &'static str {
        match self {
            Renderer::Helm2 => "HELM2",
            Renderer::Helm3 => "HELM3",
            Renderer::Helmfile => "HELMFILE",
            Renderer::Kustomize => "KUSTOMIZE",
            Renderer::Kustomize4 => "KUSTOMIZE4",
            Renderer::Cf => "CF",
        }
    }

    /// The metrics label (`helm3`).
    pub fn label(self) -> &'static str {
        match self {
            Renderer::Helm2 => "helm2",
            Renderer::Helm3 => "helm3",
            Renderer::Helmfile => "helmfile",
            Renderer::Kustomize => "kustomize",
            Renderer::Kustomize4 => "kustomize4",
            Renderer::Cf => "cf",
        }
    }

    pub fn parse(text: &str) -> Option<Renderer> {
        Renderer::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(text.trim()))
    }

    /// Which of Rosco's bake services takes it (the path picks the service; the body's
    /// `templateRenderer` picks the version inside it).
    fn service(self) -> &'static str {
        match self {
            Renderer::Helm2 | Renderer::Helm3 => "helm",
            Renderer::Helmfile => "helmfile",
            Renderer::Kustomize | Renderer::Kustomize4 => "kustomize",
            Renderer::Cf => "cf",
        }
    }
}

/// kork's `Artifact`, as Orca sends it and Rosco answers it. Nulls are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "null_as_false")]
    pub custom_kind: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

impl Artifact {
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("")
    }

    /// Rosco's answer: the rendered text as an `embedded/base64` artifact.
    pub fn embedded(name: Option<String>, content: &[u8]) -> Artifact {
        use base64::Engine;
        Artifact {
            kind: Some("embedded/base64".into()),
            name,
            reference: Some(base64::engine::general_purpose::STANDARD.encode(content)),
            ..Artifact::default()
        }
    }
}

fn null_as_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

/// Helm overrides in the order they were sent (Rosco's Jackson map keeps it, and it is the
/// order of the `--set` text). serde_json's map sorts keys, hence this small visitor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Overrides {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Overrides;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of override keys and values")
            }
            fn visit_unit<E>(self) -> Result<Overrides, E> {
                Ok(Overrides::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Overrides, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.retain(|(key, _): &(String, Value)| key != &k);
                    out.push((k, v));
                }
                Ok(Overrides(out))
            }
        }
        d.deserialize_any(Ordered)
    }
}

/// The fields every manifest request may carry (Rosco's `BakeManifestRequest` and its
/// subclasses); each renderer reads its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    template_renderer: Option<String>,
    output_name: Option<String>,
    output_artifact_name: Option<String>,
    #[serde(default)]
    overrides: Option<Overrides>,
    namespace: Option<String>,
    input_artifacts: Option<Vec<Artifact>>,
    raw_overrides: Option<bool>,
    #[serde(rename = "includeCRDs")]
    include_crds: Option<bool>,
    helm_chart_file_path: Option<String>,
    api_versions: Option<String>,
    kube_version: Option<String>,
    environment: Option<String>,
    helmfile_file_path: Option<String>,
    input_artifact: Option<Artifact>,
    kustomize_file_path: Option<String>,
    manifest_template: Option<Artifact>,
    vars_artifacts: Option<Vec<Artifact>>,
}

/// A checked manifest request.
#[derive(Debug, Clone, PartialEq)]
pub struct BakeRequest {
    pub renderer: Renderer,
    pub output_name: Option<String>,
    pub output_artifact_name: Option<String>,
    pub spec: Spec,
}

/// What each renderer needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Helm(Helm),
    Helmfile(Helmfile),
    Kustomize(Kustomize),
    Cf(Cf),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Helm {
    pub release: String,
    pub namespace: Option<String>,
    /// The chart (or a git/repo holding it) first, then values files.
    pub input_artifacts: Vec<Artifact>,
    pub overrides: Overrides,
    pub raw_overrides: bool,
    pub include_crds: bool,
    pub chart_file_path: Option<String>,
    pub api_versions: Option<String>,
    pub kube_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Helmfile {
    pub input_artifacts: Vec<Artifact>,
    pub helmfile_file_path: Option<String>,
    pub environment: Option<String>,
    pub namespace: Option<String>,
    pub overrides: Overrides,
    pub include_crds: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Kustomize {
    pub input_artifact: Artifact,
    pub kustomize_file_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cf {
    pub manifest_template: Artifact,
    pub vars_artifacts: Vec<Artifact>,
}

/// A request kiln refuses: Rosco's 400, its message naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(text: impl Into<String>) -> Invalid {
    Invalid(text.into())
}

/// `text` as sent when it is printable, else escaped and quoted.
fn plain(text: &str) -> String {
    if text.chars().any(char::is_control) {
        crate::telemetry::escaped(text)
    } else {
        text.to_string()
    }
}

/// Rosco's 400 for a `{type}` no service handles.
pub fn renderer_of_path(kind: &str) -> Result<Renderer, Invalid> {
    Renderer::parse(kind).ok_or_else(|| {
        invalid(format!(
            "Cannot bake manifest with template renderer type: {}",
            plain(kind)
        ))
    })
}

impl BakeRequest {
    /// Reads the body of `POST /api/v2/manifest/bake/{type}` for the renderer the path named.
    pub fn from_json(path_renderer: Renderer, body: &[u8]) -> Result<BakeRequest, Invalid> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(invalid(
                "the body must be a JSON object (Rosco's bake manifest request)",
            ));
        }
        check_inert(&value, "")?;
        // From the text, not the Value: the overrides keep their order.
        let mut de = serde_json::Deserializer::from_slice(body);
        let body: Body = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            invalid(format!("{field}: {}", e.into_inner()))
        })?;
        let renderer = match body.template_renderer.as_deref() {
            None | Some("") => path_renderer,
            Some(text) => {
                let r = Renderer::parse(text).ok_or_else(|| {
                    invalid(format!(
                        "templateRenderer: The value {} is not a supported renderer",
                        crate::telemetry::escaped(text)
                    ))
                })?;
                if r.service() != path_renderer.service() {
                    return Err(invalid(format!(
                        "templateRenderer: {} cannot be baked at /api/v2/manifest/bake/{}",
                        r.name(),
                        path_renderer.name()
                    )));
                }
                r
            }
        };
        let spec = match renderer {
            Renderer::Helm2 | Renderer::Helm3 => Spec::Helm(helm(&body)?),
            Renderer::Helmfile => Spec::Helmfile(helmfile(&body)?),
            Renderer::Kustomize | Renderer::Kustomize4 => Spec::Kustomize(kustomize(&body)?),
            Renderer::Cf => Spec::Cf(cf(&body)?),
        };
        Ok(BakeRequest {
            renderer,
            output_name: body.output_name.clone(),
            output_artifact_name: body.output_artifact_name.clone(),
            spec,
        })
    }

    /// Every artifact the bake fetches.
    pub fn artifacts(&self) -> Vec<&Artifact> {
        match &self.spec {
            Spec::Helm(h) => h.input_artifacts.iter().collect(),
            Spec::Helmfile(h) => h.input_artifacts.iter().collect(),
            Spec::Kustomize(k) => vec![&k.input_artifact],
            Spec::Cf(c) => std::iter::once(&c.manifest_template)
                .chain(&c.vars_artifacts)
                .collect(),
        }
    }
}

/// No control characters anywhere in the request (they would reach argv, file names, logs).
fn check_inert(value: &Value, at: &str) -> Result<(), Invalid> {
    let bad = |s: &str| s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    match value {
        Value::String(s) if bad(s) => Err(invalid(format!(
            "{}: control characters are not allowed",
            if at.is_empty() { "body" } else { at }
        ))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_inert(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let here = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if bad(k) {
                return Err(invalid(format!(
                    "{here}: control characters are not allowed"
                )));
            }
            check_inert(v, &here)
        }),
        _ => Ok(()),
    }
}

/// A value that goes into the renderer's argv on its own: never read as an option.
fn argv_value(field: &str, value: &Option<String>) -> Result<Option<String>, Invalid> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.starts_with('-') => Err(invalid(format!(
            "{field}: must not start with '-' (it would be read as a renderer option)"
        ))),
        Some(v) if v.contains('\n') || v.contains('\t') => {
            Err(invalid(format!("{field}: must be one line")))
        }
        Some(_) => Ok(value.clone()),
    }
}

/// A path inside the fetched artifact: relative, and never above it.
pub fn relative_path(field: &str, value: &Option<String>) -> Result<Option<String>, Invalid> {
    let Some(path) = value.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let escapes = path.starts_with('/')
        || path.split('/').any(|part| part == "..")
        || path.contains('\n')
        || path.contains('\0');
    if escapes {
        return Err(invalid(format!(
            "{field}: must be a path inside the artifact (relative, without '..'): {}",
            crate::telemetry::escaped(path)
        )));
    }
    Ok(Some(path.to_string()))
}

fn check_overrides(overrides: &Overrides) -> Result<(), Invalid> {
    if overrides.0.len() > 1000 {
        return Err(invalid("overrides: at most 1000 keys"));
    }
    for (key, _) in &overrides.0 {
        if key.trim().is_empty() || key.starts_with('-') {
            return Err(invalid(format!(
                "overrides: the key {} is not a Helm value path",
                crate::telemetry::escaped(key)
            )));
        }
    }
    Ok(())
}

fn input_artifacts(body: &Body) -> Result<Vec<Artifact>, Invalid> {
    let artifacts = body.input_artifacts.clone().unwrap_or_default();
    if artifacts.is_empty() {
        return Err(invalid(
            "inputArtifacts: At least one input artifact must be provided to bake",
        ));
    }
    if artifacts.len() > 50 {
        return Err(invalid("inputArtifacts: at most 50 artifacts"));
    }
    Ok(artifacts)
}

fn helm(body: &Body) -> Result<Helm, Invalid> {
    let overrides = body.overrides.clone().unwrap_or_default();
    check_overrides(&overrides)?;
    let release = argv_value("outputName", &body.output_name)?.ok_or_else(|| {
        invalid("outputName: the release name is required (helm template <outputName> <chart>)")
    })?;
    Ok(Helm {
        release,
        namespace: argv_value("namespace", &body.namespace)?,
        input_artifacts: input_artifacts(body)?,
        overrides,
        raw_overrides: body.raw_overrides.unwrap_or(false),
        include_crds: body.include_crds.unwrap_or(false),
        chart_file_path: relative_path("helmChartFilePath", &body.helm_chart_file_path)?,
        api_versions: argv_value("apiVersions", &body.api_versions)?,
        kube_version: argv_value("kubeVersion", &body.kube_version)?,
    })
}

fn helmfile(body: &Body) -> Result<Helmfile, Invalid> {
    let overrides = body.overrides.clone().unwrap_or_default();
    check_overrides(&overrides)?;
    Ok(Helmfile {
        input_artifacts: input_artifacts(body)?,
        helmfile_file_path: relative_path("helmfileFilePath", &body.helmfile_file_path)?,
        environment: argv_value("environment", &body.environment)?,
        namespace: argv_value("namespace", &body.namespace)?,
        overrides,
        include_crds: body.include_crds.unwrap_or(false),
    })
}

fn kustomize(body: &Body) -> Result<Kustomize, Invalid> {
    let artifact = body.input_artifact.clone().ok_or_else(|| {
        invalid("inputArtifact: Exactly one input artifact must be provided to bake.")
    })?;
    let path = relative_path("kustomizeFilePath", &body.kustomize_file_path)?;
    if artifact.kind() == "git/repo" {
        if path.is_none() {
            return Err(invalid(
                "kustomizeFilePath: The bake request should contain a kustomize file path.",
            ));
        }
    } else {
        let reference = artifact.reference.as_deref().unwrap_or("");
        let file = reference.rsplit('/').next().unwrap_or("");
        if !file.to_uppercase().contains("KUSTOMIZATION") {
            return Err(invalid(
                "inputArtifact: The inputArtifact should be a valid kustomization file.",
            ));
        }
    }
    Ok(Kustomize {
        input_artifact: artifact,
        kustomize_file_path: path,
    })
}

fn cf(body: &Body) -> Result<Cf, Invalid> {
    let manifest_template = body
        .manifest_template
        .clone()
        .ok_or_else(|| invalid("manifestTemplate: the manifest template artifact is required"))?;
    let vars_artifacts = body.vars_artifacts.clone().ok_or_else(|| {
        invalid("varsArtifacts: at least one variables artifact is required (may be empty: [])")
    })?;
    if vars_artifacts.len() > 50 {
        return Err(invalid("varsArtifacts: at most 50 artifacts"));
    }
    Ok(Cf {
        manifest_template,
        vars_artifacts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(kind: &str, body: Value) -> Result<BakeRequest, Invalid> {
        BakeRequest::from_json(renderer_of_path(kind)?, body.to_string().as_bytes())
    }

    fn chart() -> Value {
        json!({"type": "helm/chart", "name": "web", "version": "1.2.0", "artifactAccount": "charts",
               "customKind": null, "metadata": null, "kind": "helm", "provenance": null})
    }

    fn values_file() -> Value {
        json!({"type": "embedded/base64", "name": "values.yml", "reference": "YTogMQo="})
    }

    /// Orca's `HelmBakeManifestRequest` as Orca serializes it (its unused `values` field too).
    fn orca_helm(renderer: &str) -> Value {
        json!({
            "templateRenderer": renderer, "outputName": "web", "outputArtifactName": "web-manifest",
            "apiVersions": "batch/v1", "kubeVersion": "1.29", "namespace": "prod",
            "overrides": {"replicas": 3, "image.tag": "1.0"}, "inputArtifacts": [chart(), values_file()],
            "values": null, "rawOverrides": true, "includeCRDs": true, "helmChartFilePath": "charts/web"
        })
    }

    #[test]
    fn orcas_helm3_and_helm2_requests_are_read() {
        for (kind, renderer) in [("HELM3", Renderer::Helm3), ("helm2", Renderer::Helm2)] {
            let r = parse(kind, orca_helm(renderer.name())).unwrap();
            assert_eq!(r.renderer, renderer);
            assert_eq!(r.output_artifact_name.as_deref(), Some("web-manifest"));
            let Spec::Helm(h) = r.spec else {
                panic!("{kind}")
            };
            assert_eq!(h.release, "web");
            assert_eq!(h.namespace.as_deref(), Some("prod"));
            assert_eq!(h.input_artifacts.len(), 2);
            assert_eq!(h.input_artifacts[0].kind(), "helm/chart");
            assert_eq!(h.input_artifacts[0].version.as_deref(), Some("1.2.0"));
            assert_eq!(h.overrides.0.len(), 2);
            assert!(h.raw_overrides && h.include_crds);
            assert_eq!(h.chart_file_path.as_deref(), Some("charts/web"));
            assert_eq!(h.api_versions.as_deref(), Some("batch/v1"));
            assert_eq!(h.kube_version.as_deref(), Some("1.29"));
        }
    }

    #[test]
    fn overrides_keep_the_order_they_were_sent_in() {
        let body = br#"{"outputName": "w", "inputArtifacts": [{"type": "http/file"}],
                        "overrides": {"z": 1, "a.b": "x", "m": true}}"#;
        let r = BakeRequest::from_json(Renderer::Helm3, body).unwrap();
        let Spec::Helm(h) = r.spec else { panic!() };
        let keys: Vec<&str> = h.overrides.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a.b", "m"]);
    }

    #[test]
    fn orcas_helmfile_request_is_read() {
        let body = json!({
            "templateRenderer": "HELMFILE", "outputName": "web", "outputArtifactName": "out",
            "environment": "staging", "namespace": "ns", "overrides": {"a": "b"},
            "inputArtifacts": [{"type": "git/repo", "reference": "https://git.example/r.git", "version": "main"}],
            "values": null, "includeCRDs": false, "helmfileFilePath": "deploy/helmfile.yaml"
        });
        let r = parse("HELMFILE", body).unwrap();
        let Spec::Helmfile(h) = r.spec else { panic!() };
        assert_eq!(h.environment.as_deref(), Some("staging"));
        assert_eq!(
            h.helmfile_file_path.as_deref(),
            Some("deploy/helmfile.yaml")
        );
        assert_eq!(h.input_artifacts[0].version.as_deref(), Some("main"));
        assert!(!h.include_crds);
    }

    #[test]
    fn orcas_kustomize_requests_are_read() {
        for (kind, renderer) in [
            ("KUSTOMIZE", Renderer::Kustomize),
            ("Kustomize4", Renderer::Kustomize4),
        ] {
            let body = json!({
                "templateRenderer": renderer.name(), "outputName": "k", "outputArtifactName": "k-out",
                "inputArtifact": {"type": "git/repo", "reference": "https://git.example/r.git",
                                  "metadata": {"subPath": "deploy"}},
                "kustomizeFilePath": "deploy/overlays/prod/kustomization.yaml"
            });
            let r = parse(kind, body).unwrap();
            assert_eq!(r.renderer, renderer);
            let Spec::Kustomize(k) = r.spec else { panic!() };
            assert_eq!(k.input_artifact.metadata["subPath"], "deploy");
            assert_eq!(
                k.kustomize_file_path.as_deref(),
                Some("deploy/overlays/prod/kustomization.yaml")
            );
        }
        // Rosco's older shape: one kustomization file, not a repository.
        let body = json!({"templateRenderer": "KUSTOMIZE", "outputArtifactName": "k",
            "inputArtifact": {"type": "github/file", "name": "k/kustomization.yaml",
                              "reference": "https://api.github.com/repos/o/r/contents/k/kustomization.yaml"}});
        assert!(parse("KUSTOMIZE", body).is_ok());
    }

    #[test]
    fn orcas_cloud_foundry_request_is_read() {
        let body = json!({
            "templateRenderer": "CF", "outputName": "app-manifest", "outputArtifactName": "app-manifest",
            "manifestTemplate": {"type": "embedded/base64", "reference": "YQ=="},
            "varsArtifacts": [{"type": "embedded/base64", "reference": "Yg=="}]
        });
        let r = parse("CF", body).unwrap();
        assert_eq!(r.artifacts().len(), 2);
        let Spec::Cf(c) = r.spec else { panic!() };
        assert_eq!(c.vars_artifacts[0].reference.as_deref(), Some("Yg=="));
    }

    #[test]
    fn the_answer_is_roscos_artifact_without_nulls() {
        let a = Artifact::embedded(Some("out".into()), b"kind: A\n");
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"type": "embedded/base64", "customKind": false, "name": "out",
                   "reference": "a2luZDogQQo=", "metadata": {}})
        );
    }

    fn refused(kind: &str, body: Value) -> String {
        match parse(kind, body) {
            Err(e) => e.0,
            Ok(r) => panic!("accepted: {r:?}"),
        }
    }

    #[test]
    fn every_refusal_names_what_to_fix() {
        let helm = |patch: Value| {
            let mut b = orca_helm("HELM3");
            for (k, v) in patch.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "PACKER",
                json!({}),
                "Cannot bake manifest with template renderer type: PACKER",
            ),
            ("HELM3", json!([1]), "the body must be a JSON object"),
            (
                "HELM3",
                helm(json!({"templateRenderer": "HELM4"})),
                "templateRenderer: The value 'HELM4' is not a supported renderer",
            ),
            (
                "HELM3",
                helm(json!({"templateRenderer": "KUSTOMIZE"})),
                "templateRenderer: KUSTOMIZE cannot be baked at /api/v2/manifest/bake/HELM3",
            ),
            (
                "HELM3",
                helm(json!({"inputArtifacts": []})),
                "inputArtifacts: At least one input artifact must be provided to bake",
            ),
            (
                "HELM3",
                helm(json!({"inputArtifacts": null})),
                "inputArtifacts: At least one input artifact",
            ),
            (
                "HELM3",
                helm(json!({"inputArtifacts": "chart"})),
                "inputArtifacts: invalid type",
            ),
            (
                "HELM3",
                helm(json!({"outputName": null})),
                "outputName: the release name is required",
            ),
            (
                "HELM3",
                helm(json!({"outputName": "--post-renderer=/bin/sh"})),
                "outputName: must not start with '-'",
            ),
            (
                "HELM3",
                helm(json!({"namespace": "-n"})),
                "namespace: must not start with '-'",
            ),
            (
                "HELM3",
                helm(json!({"kubeVersion": "--x"})),
                "kubeVersion: must not start with '-'",
            ),
            (
                "HELM3",
                helm(json!({"apiVersions": "-a"})),
                "apiVersions: must not start with '-'",
            ),
            (
                "HELM3",
                helm(json!({"helmChartFilePath": "../../etc"})),
                "helmChartFilePath: must be a path inside the artifact",
            ),
            (
                "HELM3",
                helm(json!({"helmChartFilePath": "/etc"})),
                "helmChartFilePath: must be a path inside the artifact",
            ),
            (
                "HELM3",
                helm(json!({"overrides": {"-x": 1}})),
                "overrides: the key '-x' is not a Helm value path",
            ),
            (
                "HELM3",
                helm(json!({"overrides": [1]})),
                "overrides: invalid type",
            ),
            (
                "HELM3",
                helm(json!({"rawOverrides": "yes"})),
                "rawOverrides: invalid type",
            ),
            (
                "HELM3",
                helm(json!({"namespace": "a\u{1b}[31m"})),
                "namespace: control characters are not allowed",
            ),
            (
                "HELMFILE",
                json!({"inputArtifacts": []}),
                "inputArtifacts: At least one input artifact",
            ),
            (
                "HELMFILE",
                json!({"inputArtifacts": [chart()], "helmfileFilePath": "a/../../b"}),
                "helmfileFilePath: must be a path inside",
            ),
            (
                "HELMFILE",
                json!({"inputArtifacts": [chart()], "environment": "-e"}),
                "environment: must not start with '-'",
            ),
            (
                "KUSTOMIZE",
                json!({}),
                "inputArtifact: Exactly one input artifact must be provided to bake.",
            ),
            (
                "KUSTOMIZE",
                json!({"inputArtifact": {"type": "git/repo", "reference": "https://g/r.git"}}),
                "kustomizeFilePath: The bake request should contain a kustomize file path.",
            ),
            (
                "KUSTOMIZE4",
                json!({"inputArtifact": {"type": "github/file", "reference": "https://g/deploy.yaml"}}),
                "inputArtifact: The inputArtifact should be a valid kustomization file.",
            ),
            (
                "KUSTOMIZE",
                json!({"inputArtifact": {"type": "git/repo", "reference": "https://g/r.git"}, "kustomizeFilePath": "../k.yaml"}),
                "kustomizeFilePath: must be a path inside",
            ),
            (
                "CF",
                json!({"varsArtifacts": []}),
                "manifestTemplate: the manifest template artifact is required",
            ),
            (
                "CF",
                json!({"manifestTemplate": {"type": "embedded/base64"}}),
                "varsArtifacts: at least one variables artifact is required",
            ),
        ];
        for (kind, body, message) in cases {
            let got = refused(kind, body.clone());
            assert!(
                got.contains(message),
                "{kind} {body}: expected '{message}' in '{got}'"
            );
        }
    }

    #[test]
    fn the_path_type_is_matched_case_insensitively() {
        for r in Renderer::ALL {
            assert_eq!(renderer_of_path(&r.name().to_lowercase()), Ok(r));
        }
        assert_eq!(
            renderer_of_path("helm\u{7}").unwrap_err().0,
            "Cannot bake manifest with template renderer type: 'helm\\u{7}'"
        );
    }
}
