//! Rosco's `CloudFoundryBakeManifestService`: `((name))` placeholders in a manifest template
//! are replaced by values from YAML vars files, flattened to `a.b` and `list[0]` paths. No I/O.

use serde_norway::Value;
use std::collections::HashMap;

/// Rosco's message when placeholders stay unresolved (a 400).
pub const UNRESOLVED: &str = "Unable to resolve values for the following keys: \n";

/// Rosco's pattern `\(\((!?[-/\.\w\pL\]\[]+)\)\)`, hand-written (kiln has no regex engine and
/// the grammar is one character class): a name character is `-`, `/`, `.`, `[`, `]`, an ASCII
/// word character or a Unicode letter.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c.is_alphabetic() || "-/.[]".contains(c)
}

/// Every placeholder (`((name))`, or `((!name))`) in `text`, in order, as Java's `find()` loop
/// sees them.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("((") {
        let start = i + at;
        let inner = &text[start + 2..];
        let bang = usize::from(inner.starts_with('!'));
        let len: usize = inner[bang..]
            .chars()
            .take_while(|c| name_char(*c))
            .map(char::len_utf8)
            .sum();
        let end = start + 2 + bang + len;
        if len > 0 && text[end..].starts_with("))") {
            out.push(&text[start..end + 2]);
            i = end + 2;
        } else {
            i = start + 1;
        }
    }
    out
}

/// Flattens YAML maps and lists as Spring Vault's `JsonMapFlattener` (Rosco's copy): `a.b`,
/// `list[0]`, `list[0].name`.
pub fn flatten(vars: &serde_norway::Mapping) -> HashMap<String, Value> {
    fn element(prefix: String, v: &Value, out: &mut HashMap<String, Value>) {
        match v {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    element(format!("{prefix}[{i}]"), item, out);
                }
            }
            Value::Mapping(map) => entries(&prefix, map, out),
            Value::Tagged(t) => element(prefix, &t.value, out),
            other => {
                out.insert(prefix, other.clone());
            }
        }
    }
    fn entries(prefix: &str, map: &serde_norway::Mapping, out: &mut HashMap<String, Value>) {
        for (k, v) in map {
            let key = scalar_text(k).unwrap_or_default();
            let path = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            element(path, v, out);
        }
    }
    let mut out = HashMap::new();
    entries("", vars, &mut out);
    out
}

/// A scalar as text (Rosco casts to String; kiln prints numbers and booleans too).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads the vars files in order (a later file's top-level key replaces an earlier one's, as
/// Rosco's `putAll`), then resolves the template. Unresolved placeholders are an error
/// listing them, Rosco's message.
pub fn resolve(template: &str, vars_files: &[(String, Vec<u8>)]) -> Result<String, CfError> {
    let mut vars = serde_norway::Mapping::new();
    for (what, bytes) in vars_files {
        let doc: Value = serde_norway::from_slice(bytes)
            .map_err(|e| CfError::Vars(format!("{what}: not a YAML map of variables: {e}")))?;
        match doc {
            Value::Mapping(map) => {
                for (k, v) in map {
                    vars.insert(k, v);
                }
            }
            Value::Null => {}
            _ => {
                return Err(CfError::Vars(format!(
                    "{what}: not a YAML map of variables"
                )));
            }
        }
    }
    let flat = flatten(&vars);
    let mut out = template.to_string();
    let mut unresolved: Vec<&str> = Vec::new();
    for found in placeholders(template) {
        let key = &found[2..found.len() - 2];
        match flat.get(key).and_then(scalar_text) {
            Some(value) => out = out.replace(found, &value),
            None => {
                if !unresolved.contains(&found) {
                    unresolved.push(found);
                }
            }
        }
    }
    if !unresolved.is_empty() {
        return Err(CfError::Unresolved(format!(
            "{UNRESOLVED}{}",
            unresolved.join("\n ")
        )));
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CfError {
    #[error("{0}")]
    Unresolved(String),
    #[error("{0}")]
    Vars(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(template: &str, vars: &str) -> Result<String, CfError> {
        resolve(
            template,
            &[("varsArtifacts[0]".into(), vars.as_bytes().to_vec())],
        )
    }

    // The five cases of Rosco's CloudFoundryBakeManifestServiceTest.
    #[test]
    fn simple_vars_resolve() {
        let out = one(
            r#"{"app":"((appname))","version":"((someversion))"}"#,
            r#"{"appname":"bobservice1","someversion":"v999"}"#,
        );
        assert_eq!(out.unwrap(), r#"{"app":"bobservice1","version":"v999"}"#);
    }

    #[test]
    fn map_vars_resolve() {
        let out = one(
            r#"{"app":"((app.name))","version":"((someversion))"}"#,
            r#"{"app":{"name":"bobservice1"},"someversion":"v999"}"#,
        );
        assert_eq!(out.unwrap(), r#"{"app":"bobservice1","version":"v999"}"#);
    }

    #[test]
    fn list_vars_resolve() {
        let out = one(
            r#"{"app":"((app[0]))","version":"((someversion))"}"#,
            r#"{"app":["bobservice1"],"someversion":"v999"}"#,
        );
        assert_eq!(out.unwrap(), r#"{"app":"bobservice1","version":"v999"}"#);
    }

    #[test]
    fn complex_vars_resolve() {
        let out = one(
            r#"{"app":"((app[0].name))","version":"((someversion))"}"#,
            r#"{"app":[{"name":"bobservice1","secondary":"tester"}],"someversion":"v999"}"#,
        );
        assert_eq!(out.unwrap(), r#"{"app":"bobservice1","version":"v999"}"#);
    }

    #[test]
    fn unknown_keys_are_an_error_naming_them() {
        let out = one(
            r#"{"app":"((appname1))","version":"((someversion))"}"#,
            r#"{"appname":"bobservice1","someversion":"v999"}"#,
        );
        assert_eq!(
            out.unwrap_err(),
            CfError::Unresolved(
                "Unable to resolve values for the following keys: \n((appname1))".into()
            )
        );
    }

    #[test]
    fn later_vars_files_win_and_yaml_and_numbers_work() {
        let out = resolve(
            "name: ((app))\ninstances: ((n))\nhost: ((routes[1]))\n",
            &[
                ("a".into(), b"app: first\nn: 1\n".to_vec()),
                (
                    "b".into(),
                    b"app: second\nroutes: [a.example, b.example]\n".to_vec(),
                ),
            ],
        );
        assert_eq!(
            out.unwrap(),
            "name: second\ninstances: 1\nhost: b.example\n"
        );
    }

    #[test]
    fn placeholders_follow_roscos_pattern() {
        assert_eq!(
            placeholders("(((a)) ((b c)) ((!d)) ((é/x-y.z[0])) (())"),
            vec!["((a))", "((!d))", "((é/x-y.z[0]))"]
        );
        let e = one("((a)) ((b))", "a: 1").unwrap_err();
        assert_eq!(e, CfError::Unresolved(format!("{UNRESOLVED}((b))")));
        assert!(matches!(one("x", "- a\n- b\n"), Err(CfError::Vars(_))));
    }
}
