//! Jackson's leniency, as Rosco's Spring reads a `BakeRequest`: Orca forwards stage-context values
//! as they are, so `"upgrade": "true"`, `"build_number": 42`, `"vm_type": "HVM"` and `null` for
//! any optional field all reach Rosco as meant. [`coerce`] rewrites a request body's JSON the
//! same way before it is read field by field; what Jackson refuses (`"upgrade": "yes"`, an object
//! for a string, an unknown `vm_type`) stays an error, named by field. Nothing here does I/O.

use serde_json::Value;

/// Boolean fields (Java `Boolean`).
const BOOLEANS: [&str; 2] = ["enhanced_networking", "upgrade"];

/// Enum fields with their values (Rosco's enum names). `cloud_provider_type` is only folded to
/// lower case: which providers exist is kiln's configuration ("Unknown provider type").
const ENUMS: [(&str, &[&str]); 5] = [
    ("vm_type", &["pv", "hvm"]),
    (
        "base_label",
        &["release", "candidate", "previous", "unstable", "foundation"],
    ),
    ("store_type", &["ebs", "s3", "docker"]),
    ("os_type", &["linux", "windows"]),
    ("package_type", &["rpm", "deb", "nupkg"]),
];

/// String fields of a package artifact (kork's `Artifact`).
const ARTIFACT_STRINGS: [&str; 6] = ["type", "name", "version", "location", "reference", "uuid"];

/// Rewrites `body` (a JSON object) as Jackson would read it. An error names the field and what
/// Rosco expects there.
pub fn coerce(body: &mut Value) -> Result<(), String> {
    let Some(map) = body.as_object_mut() else {
        return Ok(());
    };
    for (field, v) in map.iter_mut() {
        let field = field.as_str();
        if BOOLEANS.contains(&field) {
            boolean(field, v)?;
        } else if let Some((_, values)) = ENUMS.iter().find(|(f, _)| *f == field) {
            enumeration(field, v, values)?;
        } else if field == "cloud_provider_type" {
            scalar_to_string(v);
            if let Value::String(s) = v {
                *s = s.trim().to_ascii_lowercase();
            }
        } else if field == "package_artifacts" {
            if let Value::Array(items) = v {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    for (k, value) in item.iter_mut() {
                        if ARTIFACT_STRINGS.contains(&k.as_str()) {
                            scalar_to_string(value);
                        }
                    }
                }
            }
        } else if field != "extended_attributes" {
            // Every other known field is a string: Jackson takes a number or a boolean there
            // as its text. Unknown fields are ignored anyway.
            scalar_to_string(v);
        }
    }
    Ok(())
}

/// `"true"`/`"false"` in any case, and integers (0 is false), as Jackson's `Boolean`; an empty
/// string is null.
fn boolean(field: &str, v: &mut Value) -> Result<(), String> {
    let new = match &*v {
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "" => Value::Null,
            _ => {
                return Err(format!(
                    "field '{field}': '{}' is not a boolean (true or false)",
                    s.escape_debug()
                ));
            }
        },
        Value::Number(n) if n.is_i64() || n.is_u64() => Value::Bool(n.as_f64() != Some(0.0)),
        _ => return Ok(()),
    };
    *v = new;
    Ok(())
}

/// Any case of one of `values`; an empty string is null.
fn enumeration(field: &str, v: &mut Value, values: &[&str]) -> Result<(), String> {
    let Value::String(s) = &*v else {
        return Ok(());
    };
    let folded = s.trim().to_ascii_lowercase();
    if folded.is_empty() {
        *v = Value::Null;
    } else if values.contains(&folded.as_str()) {
        *v = Value::String(folded);
    } else {
        return Err(format!(
            "field '{field}': '{}' is not one of {}",
            s.escape_debug(),
            values.join(", ")
        ));
    }
    Ok(())
}

fn scalar_to_string(v: &mut Value) {
    match &*v {
        Value::Number(n) => *v = Value::String(n.to_string()),
        Value::Bool(b) => *v = Value::String(b.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn coerced(v: Value) -> Result<Value, String> {
        let mut v = v;
        coerce(&mut v).map(|_| v)
    }

    #[test]
    fn booleans_come_as_jackson_takes_them() {
        let v = coerced(json!({"upgrade": "true", "enhanced_networking": "FALSE"})).unwrap();
        assert_eq!(v, json!({"upgrade": true, "enhanced_networking": false}));
        let v = coerced(json!({"upgrade": 1, "enhanced_networking": 0})).unwrap();
        assert_eq!(v, json!({"upgrade": true, "enhanced_networking": false}));
        let v = coerced(json!({"upgrade": "", "enhanced_networking": null})).unwrap();
        assert_eq!(v, json!({"upgrade": null, "enhanced_networking": null}));
        let e = coerced(json!({"upgrade": "yes please"})).unwrap_err();
        assert!(
            e.starts_with("field 'upgrade': 'yes please' is not a boolean"),
            "{e}"
        );
    }

    #[test]
    fn enums_are_read_in_any_case_and_unknown_values_are_named() {
        let v = coerced(
            json!({"vm_type": "HVM", "package_type": "DEB", "base_label": "Release",
                               "cloud_provider_type": "AWS", "os_type": ""}),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"vm_type": "hvm", "package_type": "deb", "base_label": "release",
                   "cloud_provider_type": "aws", "os_type": null})
        );
        let e = coerced(json!({"vm_type": "hvm2"})).unwrap_err();
        assert_eq!(e, "field 'vm_type': 'hvm2' is not one of pv, hvm");
    }

    #[test]
    fn numbers_and_booleans_in_string_fields_are_their_text() {
        let v = coerced(
            json!({"build_number": 42, "commit_hash": true, "ami_suffix": 20260101,
                               "package_artifacts": [{"version": 3, "customKind": false}],
                               "extended_attributes": {"n": 1}}),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"build_number": "42", "commit_hash": "true", "ami_suffix": "20260101",
                   "package_artifacts": [{"version": "3", "customKind": false}],
                   "extended_attributes": {"n": 1}})
        );
    }
}
