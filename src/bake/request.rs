//! Rosco's `BakeRequest`, field for field (snake_case JSON, `package` for the package list).
//! Read as Rosco's Jackson reads it (see [`super::lenient`]): unknown fields ignored, `null` for
//! any optional field, booleans and numbers given as strings, enums in any case; a value Jackson
//! would refuse is an error naming the field.

use super::Artifact;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A bake request as Orca sends it. Every field is optional on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BakeRequest {
    pub request_id: Option<String>,
    pub user: Option<String>,
    #[serde(rename = "package")]
    pub package_name: Option<String>,
    pub package_artifacts: Option<Vec<Artifact>>,
    pub build_host: Option<String>,
    pub job: Option<String>,
    pub build_number: Option<String>,
    pub commit_hash: Option<String>,
    pub build_info_url: Option<String>,
    pub cloud_provider_type: Option<String>,
    pub base_label: Option<String>,
    pub base_os: Option<String>,
    pub base_name: Option<String>,
    pub base_ami: Option<String>,
    pub vm_type: Option<String>,
    pub store_type: Option<String>,
    pub enhanced_networking: Option<bool>,
    pub ami_name: Option<String>,
    pub ami_suffix: Option<String>,
    pub upgrade: Option<bool>,
    pub instance_type: Option<String>,
    pub organization: Option<String>,
    pub template_file_name: Option<String>,
    pub extended_attributes: Option<BTreeMap<String, serde_json::Value>>,
    pub var_file_name: Option<String>,
    pub account_name: Option<String>,
    pub spinnaker_execution_id: Option<String>,
    pub publisher: Option<String>,
    pub offer: Option<String>,
    pub sku: Option<String>,
    pub os_type: Option<String>,
    pub package_type: Option<String>,
    pub custom_managed_image_name: Option<String>,
}

/// A request body kiln cannot read; the message names the field and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

impl BakeRequest {
    /// Parses a JSON body, naming the offending field on a type error. The body must be a JSON
    /// object, and every string in it (keys included) must be inert text (see [`super::input`]).
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| RequestError(format!("malformed bake request: {e}")))?;
        if !value.is_object() {
            let kind = match value {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::Null => "null",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                _ => "a boolean",
            };
            return Err(RequestError(format!(
                "the bake request must be a JSON object ({{\"package\": …, \"base_os\": …}}), not {kind}"
            )));
        }
        let known = Self::fields();
        super::input::check_json(&value, &|k| !known.iter().any(|f| f == k))
            .map_err(|e| RequestError(format!("field {e}")))?;
        let mut value = value;
        super::lenient::coerce(&mut value)
            .map_err(|e| RequestError(format!("malformed bake request: {e}")))?;
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                RequestError(format!("malformed bake request: {inner}"))
            } else {
                RequestError(format!("malformed bake request: field '{path}': {inner}"))
            }
        })
    }

    /// The JSON field names of a request (every field of [`BakeRequest`]); others are ignored.
    fn fields() -> Vec<String> {
        match serde_json::to_value(BakeRequest::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The request's extended attributes as strings, the way Packer receives them: strings
    /// trimmed, other JSON values in their JSON text, arrays joined with commas; nulls and empty
    /// values dropped (as Rosco does: an empty row left in Deck's table keeps the template's
    /// default).
    pub fn extended_attributes(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in self.extended_attributes.iter().flatten() {
            let text = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let text = text.trim();
            if !text.is_empty() {
                out.insert(k.clone(), text.to_string());
            }
        }
        out
    }

    /// The whitespace-separated package list.
    pub fn packages(&self) -> Vec<&str> {
        self.package_name
            .as_deref()
            .map(|p| p.split_whitespace().collect())
            .unwrap_or_default()
    }
}

/// A string field that counts only when it holds something: Rosco drops null and empty values.
pub fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinnaker_shaped_body_is_read_with_package_as_the_field_name() {
        let r = BakeRequest::from_json(
            br#"{"package":"nginx kato","base_os":"trusty","cloud_provider_type":"aws",
                "extended_attributes":{"aws_subnet_id":"subnet-1","flag":true},"unknown":1}"#,
        )
        .unwrap();
        assert_eq!(r.packages(), vec!["nginx", "kato"]);
        assert_eq!(r.base_os.as_deref(), Some("trusty"));
        let ext = r.extended_attributes();
        assert_eq!(ext["aws_subnet_id"], "subnet-1");
        assert_eq!(ext["flag"], "true");
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_in_the_error() {
        let err = BakeRequest::from_json(br#"{"upgrade":"yes please"}"#).unwrap_err();
        assert!(err.to_string().contains("field 'upgrade'"), "{err}");
        let err = BakeRequest::from_json(br#"{"package": "#).unwrap_err();
        assert!(
            err.to_string().starts_with("malformed bake request"),
            "{err}"
        );
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_refused_saying_so() {
        for (body, kind) in [
            (&b"[1,2]"[..], "an array"),
            (b"\"nginx\"", "a string"),
            (b"42", "a number"),
            (b"null", "null"),
            (b"true", "a boolean"),
        ] {
            let err = BakeRequest::from_json(body).unwrap_err().to_string();
            assert!(
                err.starts_with("the bake request must be a JSON object") && err.ends_with(kind),
                "{err}"
            );
        }
    }

    #[test]
    fn fields_kiln_ignores_may_be_multi_line_and_known_ones_may_not() {
        let r = BakeRequest::from_json(br#"{"package": "nginx", "comments": "a\nb"}"#).unwrap();
        assert_eq!(r.packages(), vec!["nginx"]);
        let err = BakeRequest::from_json(br#"{"build_host": "a\nb"}"#).unwrap_err();
        assert!(err.to_string().starts_with("field build_host: "), "{err}");
        let err = BakeRequest::from_json(br#"{"comments": "{{env `K`}}"}"#).unwrap_err();
        assert!(err.to_string().starts_with("field comments: "), "{err}");
    }

    #[test]
    fn template_syntax_in_any_field_is_refused_naming_the_field() {
        let err = BakeRequest::from_json(br#"{"extended_attributes":{"foo":"{{env `K`}}"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("field extended_attributes.foo: "), "{err}");
    }
}
