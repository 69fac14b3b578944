//! What a value from a request may hold before it can reach Packer. One place for the rules
//! that make request text inert:
//!
//! - **No Packer template syntax.** Packer 1.6.6 renders `{{ … }}` in every `-var` and var-file
//!   value, with `env`, `user`, `aws_secretsmanager`, `vault` and Go's `printf` at hand, and it
//!   renders variables repeatedly until they stop changing (`core.go`, `init`), so escaping does
//!   not hold. kiln refuses `{{` outright. Without `{{` Go's `text/template` has no action to
//!   run and prints the text as it is, so near-misses (`{ {`, `}}`, `{x}`) are harmless.
//! - **No control characters** (NUL, newline, ESC, …): Packer refuses NUL in an argument
//!   ("nul byte found"), and newlines and escapes would forge lines in logs.
//! - **No value beyond what `execve` takes**: one argument may be at most `MAX_ARG_STRLEN`
//!   (128 KiB, its NUL included).
//!
//! Nothing here does I/O.

use serde_json::Value;

/// Linux's `MAX_ARG_STRLEN`: the longest single argument `execve` takes, its NUL included.
pub const MAX_ARG_BYTES: usize = 128 * 1024;

/// Why a value cannot reach Packer; the message names the field and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Refused {
    pub field: String,
    pub problem: String,
}

/// Checks one value that would reach Packer. `field` names it for the requester.
pub fn check_value(field: &str, value: &str) -> Result<(), Refused> {
    let refuse = |problem: String| {
        Err(Refused {
            field: field.to_string(),
            problem,
        })
    };
    if value.contains("{{") {
        return refuse(
            "'{{' is Packer template syntax, which Packer would evaluate (it can read kiln's \
             environment and secrets); remove it"
                .into(),
        );
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return refuse(format!(
            "holds the control character {}; Packer values cannot carry control characters \
             (NUL, newline, tab, escape, …)",
            c.escape_unicode()
        ));
    }
    // `k=v` and its NUL must fit one argument; leave room for a short variable name.
    if value.len() >= MAX_ARG_BYTES - 256 {
        return refuse(format!(
            "is {} bytes long; a value Packer receives must stay under {} bytes (the OS limit of \
             one argument is 128 KiB)",
            value.len(),
            MAX_ARG_BYTES - 256
        ));
    }
    Ok(())
}

/// Checks every string of a request body, object keys included, before it is read field by
/// field, so no field (known, unknown or nested) escapes the rules. Errors name the field's
/// path: `extended_attributes.foo`, `package_artifacts[0].reference`.
///
/// Two exceptions, data that never reaches Packer, where only template syntax is refused, not
/// multi-line text: a package artifact's `metadata`, CI's free-form data (build info, commit
/// messages; kiln reads only a digest from it, compared as text), and the top-level fields
/// `is_unknown` names, which kiln ignores (Orca passes its stage context through: a stage's
/// multi-line `comments`, say).
pub fn check_json(body: &Value, is_unknown: &dyn Fn(&str) -> bool) -> Result<(), Refused> {
    if let Value::Object(map) = body {
        for (k, item) in map.iter().filter(|(k, _)| is_unknown(k)) {
            check_template_syntax(&format!("the request key {}", Escaped(k)), k)?;
            walk(item, &mut k.clone(), false)?;
        }
        let known: serde_json::Map<String, Value> = map
            .iter()
            .filter(|(k, _)| !is_unknown(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        return walk(&Value::Object(known), &mut String::new(), true);
    }
    walk(body, &mut String::new(), true)
}

fn check_template_syntax(field: &str, s: &str) -> Result<(), Refused> {
    if s.contains("{{") {
        check_value(field, "{{")
    } else {
        Ok(())
    }
}

fn walk(v: &Value, path: &mut String, strict: bool) -> Result<(), Refused> {
    let check = |field: &str, s: &str| {
        if strict {
            check_value(field, s)
        } else {
            check_template_syntax(field, s)
        }
    };
    match v {
        Value::String(s) => check(display_path(path), s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, strict)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let free_form = k == "metadata"
                    && path.starts_with("package_artifacts[")
                    && !path.contains('.');
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                // The key is checked under its parent's name, printed escaped.
                check(&format!("{} key {}", display_path(path), Escaped(k)), k)?;
                path.push_str(k);
                walk(item, path, strict && !free_form)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn display_path(path: &str) -> &str {
    let p = path.trim_end_matches('.');
    if p.is_empty() { "the request" } else { p }
}

pub use crate::telemetry::{Escaped, escaped};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packer_template_syntax_is_refused_wherever_it_hides() {
        for (body, field) in [
            (
                json!({"package": "{{env `AWS_SECRET_ACCESS_KEY`}}"}),
                "package",
            ),
            (
                json!({"extended_attributes": {"x": "a{{printf \"%x\" (env \"K\")}}"}}),
                "extended_attributes.x",
            ),
            (
                json!({"package_artifacts": [{}, {"reference": "{{ user `aws_secret_key` | upper }}"}]}),
                "package_artifacts[1].reference",
            ),
            (
                json!({"package_artifacts": [{"metadata": {"deep": ["ok", "{{-vault `x` `y`}}"]}}]}),
                "package_artifacts[0].metadata.deep[1]",
            ),
            (json!({"unknown_field": "{{env `HOME`}}"}), "unknown_field"),
        ] {
            let e = check_json(&body, &|_| false).unwrap_err();
            assert_eq!(e.field, field, "{body}");
            assert!(e.problem.contains("template syntax"), "{e}");
        }
        let e =
            check_json_strict(&json!({"extended_attributes": {"{{env `X`}}": "v"}})).unwrap_err();
        assert!(e.field.starts_with("extended_attributes key"), "{e}");
    }

    #[test]
    fn artifact_metadata_is_free_form_text_but_never_template_syntax() {
        let ok = json!({"package_artifacts": [{"metadata": {"message": "fix\n\tthings", "n": 1}}]});
        assert_eq!(check_json(&ok, &|_| false), Ok(()));
        let bad = json!({"package_artifacts": [{"metadata": {"message": "{{env `K`}}"}}]});
        assert!(check_json(&bad, &|_| false).is_err());
        let elsewhere = json!({"extended_attributes": {"metadata": "a\nb"}});
        assert!(check_json(&elsewhere, &|_| false).is_err());
    }

    fn check_json_strict(v: &Value) -> Result<(), Refused> {
        check_json(v, &|_| false)
    }

    #[test]
    fn fields_kiln_ignores_may_hold_text_but_never_template_syntax() {
        let unknown = |k: &str| k == "comments";
        let ok = json!({"comments": "line one\nline two", "package": "nginx"});
        assert_eq!(check_json(&ok, &unknown), Ok(()));
        let bad = json!({"comments": ["{{env `K`}}"]});
        let e = check_json(&bad, &unknown).unwrap_err();
        assert_eq!(e.field, "comments[0]");
        let known = json!({"comments": "x", "package": "a\nb"});
        assert_eq!(check_json(&known, &unknown).unwrap_err().field, "package");
    }

    #[test]
    fn near_misses_are_plain_text() {
        for ok in [
            "{ {env `X`} }",
            "}}",
            "{x}",
            "$(id)",
            "`id`",
            "a{b}c",
            "${HOME}",
            "日本",
        ] {
            assert_eq!(check_value("f", ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn control_characters_and_oversized_values_are_refused_with_the_field() {
        for bad in [
            "a\0b",
            "a\nkiln: forged",
            "\u{1b}[31mred",
            "tab\there",
            "\u{85}",
        ] {
            let e = check_value("build_host", bad).unwrap_err();
            assert_eq!(e.field, "build_host");
            assert!(e.problem.contains("control character"), "{e}");
            // The message itself never carries the raw character.
            assert!(!e.to_string().chars().any(char::is_control), "{e}");
        }
        let big = "a".repeat(MAX_ARG_BYTES);
        let e = check_value("extended_attributes.x", &big).unwrap_err();
        assert!(e.problem.contains("128 KiB"), "{e}");
        assert!(check_value("x", &"a".repeat(100_000)).is_ok());
    }
}
