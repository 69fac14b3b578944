//! What the clouds built like Rosco's Alibaba, Tencent and Huawei handlers share: a base image
//! found by `base_os` and then by region (Rosco's two 400 messages), the request's `base_ami`
//! replacing the configured source image, an image-name rule per cloud, the Rosco bake-key tail
//! of a region, and a builder's `region:id[,region:id…]` artifact id read per region.

use super::provider::{RunContext, image_details};
use super::recipe::BakeError;
use crate::bake::{BakeDetails, BakeRequest, present};
use crate::builders::packer::output::Outcome;
use crate::config::{BaseImage, RegionalBaseImage};
use crate::telemetry::escaped;

/// The configured base image for the request's `base_os` and the settings for `region`: Rosco's
/// messages when either is missing (`tail` ends the second one: Tencent's has no period).
pub(super) fn find<'a, V>(
    images: &'a [RegionalBaseImage<V>],
    req: &BakeRequest,
    region: &str,
    region_of: fn(&V) -> &str,
    tail: &str,
) -> Result<(&'a BaseImage, &'a V), BakeError> {
    let os = present(&req.base_os).unwrap_or_default();
    let mut matching = images.iter().filter(|b| b.base_image.id == os).peekable();
    if matching.peek().is_none() {
        return Err(BakeError::Invalid(format!(
            "No virtualization settings found for '{os}'."
        )));
    }
    for image in matching {
        if let Some(v) = image
            .virtualization_settings
            .iter()
            .find(|v| region_of(v) == region)
        {
            return Ok((&image.base_image, v));
        }
    }
    Err(BakeError::Invalid(format!(
        "No virtualization settings found for region '{region}', operating system '{os}'{tail}"
    )))
}

/// For `kiln config validate`: a request that bakes `template` from the base image that selects
/// it (else the first), in that image's first region.
pub(super) fn sample_request<V>(
    provider: &str,
    images: &[RegionalBaseImage<V>],
    region_of: fn(&V) -> &str,
    template: &str,
) -> Option<(BakeRequest, String)> {
    let entry = super::provider::entry_for(images, |b| &b.base_image, template)?;
    let region = region_of(entry.virtualization_settings.first()?).to_string();
    let req = super::provider::sample_bake(provider, Some(&entry.base_image.id), template);
    Some((req, region))
}

/// The source image: the request's `base_ami`, else the configured one. Rosco would start Packer
/// without one; kiln answers 400 naming both places it can come from.
pub(super) fn source_image(
    req: &BakeRequest,
    configured: &Option<String>,
    key: &str,
    cloud: &str,
) -> Result<String, BakeError> {
    present(&req.base_ami)
        .or(present(configured))
        .map(str::to_string)
        .ok_or_else(|| {
            BakeError::Invalid(format!(
                "no source image for base_os '{}': set base_ami in the request or {key} in {cloud}.bakeryDefaults.baseImages",
                present(&req.base_os).unwrap_or_default()
            ))
        })
}

/// An image-name rule: its length in characters, the first character, the others. The 400
/// says what is wrong and which request fields change the name.
pub(super) struct NameRule {
    pub cloud: &'static str,
    pub min: usize,
    pub max: usize,
    pub first: fn(char) -> bool,
    pub rest: fn(char) -> bool,
    /// The rule in words, for the message.
    pub described: &'static str,
}

impl NameRule {
    pub(super) fn check(&self, name: &str) -> Result<(), BakeError> {
        let mut problems = Vec::new();
        let length = name.chars().count();
        if length < self.min || length > self.max {
            problems.push(format!(
                "it is {length} characters long and must be {} to {}",
                self.min, self.max
            ));
        }
        if let Some(c) = name.chars().next().filter(|c| !(self.first)(*c)) {
            problems.push(format!("it may not start with '{}'", c.escape_debug()));
        }
        let mut bad: Vec<char> = name.chars().skip(1).filter(|c| !(self.rest)(*c)).collect();
        bad.dedup();
        if !bad.is_empty() {
            let listed: Vec<String> = bad
                .iter()
                .map(|c| format!("'{}'", c.escape_debug()))
                .collect();
            problems.push(format!("{} not allowed", listed.join(", ")));
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(BakeError::Invalid(format!(
            "image name {} is not a valid {} image name ({}): {}; set ami_name or ami_suffix to fix it",
            escaped(name),
            self.cloud,
            self.described,
            problems.join(" and ")
        )))
    }
}

/// Rosco's `GET bake` for a cloud whose builder's artifact id lists `region:image` pairs
/// (Alibaba's and Tencent's `Id()` in Packer 1.6.6), one artifact per region.
pub(super) fn details(provider: &str, run: RunContext<'_>, outcome: &Outcome) -> BakeDetails {
    image_details(provider, run.record, &per_region(outcome))
}

/// The outcome with each regionless `region:id,…` id split into its regions; an id that is not
/// such a list stays as it is.
pub(super) fn per_region(outcome: &Outcome) -> Outcome {
    let mut out = outcome.clone();
    out.artifacts.clear();
    for (region, id) in &outcome.artifacts {
        let pairs: Option<Vec<(&str, &str)>> = if region.is_empty() {
            id.split(',')
                .map(|part| {
                    part.trim()
                        .split_once(':')
                        .filter(|(r, i)| is_region(r) && !i.is_empty())
                })
                .collect()
        } else {
            None
        };
        let pairs = pairs.unwrap_or_else(|| vec![(region.as_str(), id.as_str())]);
        for (r, i) in pairs {
            let artifact = (r.to_string(), i.trim().to_string());
            if !out.artifacts.contains(&artifact) {
                out.artifacts.push(artifact);
            }
        }
    }
    out
}

/// `cn-hangzhou`, `ap-guangzhou`, `cn-north-4`, `eu-central-1`: lowercase words and digits
/// joined by dashes, at least two parts.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ids: &[(&str, &str)]) -> Outcome {
        Outcome {
            artifacts: ids
                .iter()
                .map(|(r, i)| (r.to_string(), i.to_string()))
                .collect(),
            ..Outcome::default()
        }
    }

    #[test]
    fn region_lists_split_per_region_and_other_ids_stay() {
        let split = per_region(&outcome(&[("", "cn-beijing:m-2,cn-hangzhou:m-1")]));
        assert_eq!(
            split.artifacts,
            [
                ("cn-beijing".to_string(), "m-2".to_string()),
                ("cn-hangzhou".to_string(), "m-1".to_string())
            ]
        );
        let oci = "ocid1.image.oc1.iad.aaaa";
        assert_eq!(
            per_region(&outcome(&[("", oci)])).artifacts,
            [(String::new(), oci.to_string())]
        );
        let aws = per_region(&outcome(&[("us-east-1", "ami-1")]));
        assert_eq!(aws.artifacts, [("us-east-1".into(), "ami-1".into())]);
        // A repeat (the manifest post-processor) is one artifact.
        let twice = per_region(&outcome(&[
            ("", "ap-guangzhou:img-1"),
            ("", "ap-guangzhou:img-1"),
        ]));
        assert_eq!(twice.artifacts.len(), 1);
    }
}
