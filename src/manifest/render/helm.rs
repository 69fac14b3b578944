//! Rosco's `HelmTemplateUtils` and `HelmfileTemplateUtils`: the `helm template` and
//! `helmfile template` command lines, the overrides as `--set`/`--set-string` text or a values
//! file, and the output without chart tests. No I/O.

use crate::manifest::request::{Helm, Helmfile, Overrides, Renderer};
use serde_json::Value;

/// Rosco's `HELM3_MAX_ABSOLUTE_NUMERIC_VALUE_THRESHOLD`: with raw overrides in a values file,
/// numbers this large stay on the command line (Helm 3 reads them as floats from YAML).
const LARGE_NUMBER: i64 = 1_000_000;

/// A value as Java's `toString()` prints it (Rosco builds `key=value` with it).
pub fn java_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(java_string).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", java_string(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// `k1=v1,k2=v2`, in the request's order.
pub fn overrides_text(overrides: &[(String, Value)]) -> String {
    overrides
        .iter()
        .map(|(k, v)| format!("{k}={}", java_string(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Rosco's `getLargeAbsoluteNumericValuedEntries`: numbers (or numeric strings) of absolute
/// value ≥ 1,000,000.
fn is_large_number(v: &Value) -> bool {
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    };
    n.is_some_and(|n| n.unsigned_abs() >= LARGE_NUMBER as u64)
}

/// What goes into the overrides values file: a YAML map built from the keys' dotted paths
/// (`image.tag`; `\.` keeps a dot), values as strings unless raw, where Helm's `--set` typing
/// applies (true/false, null, integers). Rosco parses its own `--set` text back for this; kiln
/// builds the same map from the request's pairs. Index paths (`a[0]`) stay literal keys.
pub fn overrides_yaml(overrides: &[(String, Value)], raw: bool) -> String {
    let mut root = serde_json::Map::new();
    for (key, value) in overrides {
        let text = java_string(value);
        let typed = if !raw {
            Value::String(text)
        } else if text == "true" || text == "false" {
            Value::Bool(text == "true")
        } else if text == "null" {
            Value::Null
        } else if let Ok(n) = text.parse::<i64>() {
            Value::from(n)
        } else {
            Value::String(text)
        };
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut chars = key.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'.') => {
                    cur.push('.');
                    chars.next();
                }
                '.' => parts.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        parts.push(cur);
        let mut at = &mut root;
        let last = parts.pop().unwrap_or_default();
        for p in parts {
            let slot = at
                .entry(p)
                .or_insert_with(|| Value::Object(Default::default()));
            if !slot.is_object() {
                *slot = Value::Object(Default::default());
            }
            at = slot.as_object_mut().expect("an object");
        }
        at.insert(last, typed);
    }
    serde_norway::to_string(&Value::Object(root)).unwrap_or_default()
}

/// The executables a bake uses (Rosco's config keys, resolved with their defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executables {
    pub helm3: String,
    pub helm2: String,
    pub helmfile: String,
    pub kustomize3: String,
    pub kustomize4: String,
    /// `helm.overridesFileThreshold` (0: always on the command line).
    pub overrides_file_threshold: usize,
}

/// What a helm command line needs from the work dir: the chart, the values files in order,
/// and (when the overrides go to a file) that file's path.
pub struct HelmPlan {
    pub argv: Vec<String>,
    /// The overrides values file to write before running, and its contents.
    pub overrides_file: Option<(String, String)>,
}

/// Rosco's `HelmTemplateUtils.buildCommand`.
pub fn helm_argv(
    exe: &Executables,
    renderer: Renderer,
    req: &Helm,
    chart: &str,
    values: &[String],
    overrides_file_path: &str,
) -> HelmPlan {
    let helm2 = renderer == Renderer::Helm2;
    let mut argv = vec![
        if helm2 {
            exe.helm2.clone()
        } else {
            exe.helm3.clone()
        },
        "template".to_string(),
    ];
    if helm2 {
        argv.extend([chart.to_string(), "--name".into(), req.release.clone()]);
    } else {
        argv.extend([req.release.clone(), chart.to_string()]);
    }
    if let Some(ns) = &req.namespace {
        argv.extend(["--namespace".into(), ns.clone()]);
    }
    if req.include_crds && renderer == Renderer::Helm3 {
        argv.push("--include-crds".into());
    }
    if let Some(v) = &req.api_versions {
        argv.extend(["--api-versions".into(), v.clone()]);
    }
    if let Some(v) = &req.kube_version {
        argv.extend(["--kube-version".into(), v.clone()]);
    }
    let mut overrides_file = None;
    let Overrides(pairs) = &req.overrides;
    if !pairs.is_empty() {
        let text = overrides_text(pairs);
        let threshold = exe.overrides_file_threshold;
        if threshold == 0 || text.len() < threshold {
            let option = if req.raw_overrides {
                "--set"
            } else {
                "--set-string"
            };
            argv.extend([option.to_string(), text]);
        } else if req.raw_overrides {
            let (large, rest): (Vec<_>, Vec<_>) =
                pairs.iter().cloned().partition(|(_, v)| is_large_number(v));
            if !large.is_empty() {
                argv.extend(["--set".to_string(), overrides_text(&large)]);
            }
            if !rest.is_empty() {
                overrides_file =
                    Some((overrides_file_path.to_string(), overrides_yaml(&rest, true)));
            }
        } else {
            overrides_file = Some((
                overrides_file_path.to_string(),
                overrides_yaml(pairs, false),
            ));
        }
    }
    if !values.is_empty() {
        argv.extend(["--values".into(), values.join(",")]);
    }
    // Last, so the overrides win over every values file.
    if let Some((path, _)) = &overrides_file {
        argv.extend(["--values".into(), path.clone()]);
    }
    HelmPlan {
        argv,
        overrides_file,
    }
}

/// Rosco's `HelmfileTemplateUtils.buildCommand` (`--helm-binary` is `helm.v3ExecutablePath`).
pub fn helmfile_argv(
    exe: &Executables,
    req: &Helmfile,
    file: &str,
    values: &[String],
) -> Vec<String> {
    let mut argv = vec![
        exe.helmfile.clone(),
        "template".into(),
        "--file".into(),
        file.to_string(),
        "--helm-binary".into(),
        exe.helm3.clone(),
    ];
    if let Some(env) = &req.environment {
        argv.extend(["--environment".into(), env.clone()]);
    }
    if let Some(ns) = &req.namespace {
        argv.extend(["--namespace".into(), ns.clone()]);
    }
    if req.include_crds {
        argv.push("--include-crds".into());
    }
    if !req.overrides.0.is_empty() {
        argv.extend(["--set".into(), overrides_text(&req.overrides.0)]);
    }
    if !values.is_empty() {
        argv.extend(["--values".into(), values.join(",")]);
    }
    argv
}

/// Rosco's `removeTestsDirectoryTemplates`: documents rendered from a chart's
/// `templates/tests/` (Helm test hooks) are dropped.
pub fn without_tests(rendered: &str) -> String {
    rendered
        .split("---\n")
        .filter(|doc| {
            !doc.lines().any(|line| {
                line.find("# Source: ")
                    .is_some_and(|at| line[at + "# Source: ".len()..].contains("/templates/tests/"))
            })
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exe(threshold: usize) -> Executables {
        Executables {
            helm3: "helm3".into(),
            helm2: "helm".into(),
            helmfile: "helmfile".into(),
            kustomize3: "kustomize".into(),
            kustomize4: "kustomize4".into(),
            overrides_file_threshold: threshold,
        }
    }

    fn req() -> Helm {
        Helm {
            release: "my-release".into(),
            ..Helm::default()
        }
    }

    fn pairs(v: Value) -> Overrides {
        Overrides(
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn helm3_and_helm2_command_lines_are_roscos() {
        let mut r = req();
        r.namespace = Some("prod".into());
        r.include_crds = true;
        r.api_versions = Some("batch/v1".into());
        r.kube_version = Some("1.29".into());
        r.overrides = pairs(json!({"image.tag": "1.2", "replicas": 3}));
        let values = s(&["/w/v1", "/w/v2"]);
        let plan = helm_argv(
            &exe(0),
            Renderer::Helm3,
            &r,
            "/w/chart",
            &values,
            "/w/o.yml",
        );
        assert_eq!(
            plan.argv,
            s(&[
                "helm3",
                "template",
                "my-release",
                "/w/chart",
                "--namespace",
                "prod",
                "--include-crds",
                "--api-versions",
                "batch/v1",
                "--kube-version",
                "1.29",
                "--set-string",
                "image.tag=1.2,replicas=3",
                "--values",
                "/w/v1,/w/v2",
            ])
        );
        r.raw_overrides = true;
        let plan = helm_argv(&exe(0), Renderer::Helm2, &r, "/w/chart", &[], "/w/o.yml");
        assert_eq!(
            plan.argv,
            s(&[
                "helm",
                "template",
                "/w/chart",
                "--name",
                "my-release",
                "--namespace",
                "prod",
                "--api-versions",
                "batch/v1",
                "--kube-version",
                "1.29",
                "--set",
                "image.tag=1.2,replicas=3",
            ])
        );
        assert!(plan.overrides_file.is_none());
    }

    #[test]
    fn long_overrides_go_to_a_values_file_after_the_others_and_large_numbers_stay_raw() {
        let mut r = req();
        r.overrides = pairs(json!({"a.b": "x", "big": 2000000, "n": 5}));
        let plan = helm_argv(&exe(5), Renderer::Helm3, &r, "c", &s(&["v"]), "/w/o.yml");
        assert_eq!(
            plan.argv,
            s(&[
                "helm3",
                "template",
                "my-release",
                "c",
                "--values",
                "v",
                "--values",
                "/w/o.yml"
            ])
        );
        let (_, yaml) = plan.overrides_file.unwrap();
        let parsed: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(parsed, json!({"a": {"b": "x"}, "big": "2000000", "n": "5"}));

        r.raw_overrides = true;
        let plan = helm_argv(&exe(5), Renderer::Helm3, &r, "c", &[], "/w/o.yml");
        assert_eq!(
            plan.argv,
            s(&[
                "helm3",
                "template",
                "my-release",
                "c",
                "--set",
                "big=2000000",
                "--values",
                "/w/o.yml"
            ])
        );
        let parsed: serde_json::Value =
            serde_norway::from_str(&plan.overrides_file.unwrap().1).unwrap();
        assert_eq!(parsed, json!({"a": {"b": "x"}, "n": 5}));
    }

    #[test]
    fn override_values_print_as_java_does() {
        let o = pairs(
            json!({"s": "x", "b": true, "f": 1.5, "l": [1, "a"], "m": {"k": "v"}, "z": null}),
        );
        assert_eq!(
            overrides_text(&o.0),
            "b=true,f=1.5,l=[1, a],m={k=v},s=x,z=null"
        );
    }

    #[test]
    fn helmfile_command_line_is_roscos() {
        let r = Helmfile {
            environment: Some("staging".into()),
            namespace: Some("ns".into()),
            include_crds: true,
            overrides: pairs(json!({"a": 1})),
            ..Helmfile::default()
        };
        assert_eq!(
            helmfile_argv(&exe(0), &r, "/w/helmfile.yaml", &s(&["/w/v"])),
            s(&[
                "helmfile",
                "template",
                "--file",
                "/w/helmfile.yaml",
                "--helm-binary",
                "helm3",
                "--environment",
                "staging",
                "--namespace",
                "ns",
                "--include-crds",
                "--set",
                "a=1",
                "--values",
                "/w/v",
            ])
        );
    }

    #[test]
    fn chart_tests_are_removed_from_the_output() {
        let out = "---\n# Source: web/templates/cm.yaml\nkind: ConfigMap\n---\n# Source: web/templates/tests/t.yaml\nkind: Pod\n---\n# Source: web/templates/svc.yaml\nkind: Service\n";
        assert_eq!(
            without_tests(out),
            "---\n# Source: web/templates/cm.yaml\nkind: ConfigMap\n---\n# Source: web/templates/svc.yaml\nkind: Service\n"
        );
    }
}
