//! What kiln keeps about a bake. Secrets never enter a record: the request and recipe stored here
//! are the redacted ones.

use super::{Artifact, Cause, Phase};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The recipe Packer ran: image name, appversion, the (masked) command line and variables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub name: String,
    pub version: Option<String>,
    pub command: Vec<String>,
    pub variables: BTreeMap<String, String>,
    pub template: String,
    /// The source image the bake starts from, when it was looked up by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_image: Option<SourceImage>,
    /// kiln: the builder when not Packer (`ebs-direct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
}

/// A source image given by name and the id it resolved to before Packer ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceImage {
    pub id: String,
    pub name: String,
    /// Where it was looked up: `clouddriver` or `ec2`.
    pub via: String,
}

/// Rosco's `Bake` JSON: what a finished bake produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BakeDetails {
    pub id: String,
    pub ami: Option<String>,
    pub image_name: Option<String>,
    pub regions: Option<Vec<String>>,
    pub artifact: Option<Artifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<Artifact>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ami: Option<String>,
}

impl BakeDetails {
    /// The view for one region: a multi-region bake answers with that region's artifact and AMI.
    /// `None` when the bake produced no artifact for that region.
    pub fn for_region(&self, region: &str) -> Option<BakeDetails> {
        let Some(all) = self.artifacts.as_ref().filter(|a| !a.is_empty()) else {
            return Some(self.clone());
        };
        let artifact = all
            .iter()
            .find(|a| a.location.as_deref() == Some(region))?
            .clone();
        Some(BakeDetails {
            id: self.id.clone(),
            ami: artifact.reference.clone(),
            image_name: self.image_name.clone(),
            regions: Some(all.iter().filter_map(|a| a.location.clone()).collect()),
            artifact: Some(artifact),
            artifacts: None,
            base_ami: self.base_ami.clone(),
        })
    }
}

/// Everything kiln stores about one bake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BakeRecord {
    pub id: String,
    /// Rosco's bake key (`bake:aws:...`), kept for display and for `DELETE`.
    pub key: String,
    /// kiln's bake identity: a digest of every input that changes the image.
    pub identity: String,
    pub region: String,
    pub provider: String,
    pub phase: Phase,
    pub cause: Option<Cause>,
    /// The request as received, secrets removed.
    pub request: serde_json::Value,
    pub recipe: Recipe,
    /// The inputs behind `identity`, secrets removed, for explaining reuse.
    pub inputs: serde_json::Value,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub started_ms: Option<i64>,
    pub details: Option<BakeDetails>,
    pub error: Option<String>,
    pub execution_id: Option<String>,
    pub instance_id: String,
    /// The timeline and diagnosis, stored when the bake settles (empty before).
    #[serde(default)]
    pub report: super::BakeReport,
}
