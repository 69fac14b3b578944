//! Creating a bake (Rosco's `createBake`): recipe, identity, dedupe or rebake, then the queue.

use super::{Bakery, now_ms};
use crate::bake::{BakeRecord, BakeRequest, Phase, Recipe, SourceImage};
use crate::builders;
use crate::providers::{BakeError, Prepared, RecipeContext, prepare};
use crate::services::source_images::Finder;
use crate::services::source_images::SourceImages;
use crate::store::{Created as Stored, StoreError};
use std::collections::BTreeMap;

/// The answer to a create.
#[derive(Debug, Clone)]
pub struct Created {
    pub record: BakeRecord,
    /// Set when an existing bake answered the request.
    pub reused: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Invalid(#[from] BakeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Bakery {
    /// Builds the recipe for a request in a region. Blocking: a source image given by name is
    /// looked up (Clouddriver or EC2, with retries), so call it on a blocking thread.
    pub fn prepare(&self, region: &str, req: &BakeRequest) -> Result<Prepared, BakeError> {
        Ok(self.prepare_with_source(region, req)?.0)
    }

    /// [`Bakery::prepare`], and where a source image name was looked up (`clouddriver`, `ec2`).
    fn prepare_with_source(
        &self,
        region: &str,
        req: &BakeRequest,
    ) -> Result<(Prepared, &'static str), BakeError> {
        let settings = self.settings();
        let config_dir = settings.config_dir();
        let images = Finder::of(&settings);
        let ctx = RecipeContext {
            settings: &settings,
            config_dir: &config_dir,
            region,
            now_ms: now_ms(),
            images: &images,
        };
        Ok((prepare(req, &ctx)?, images.via()))
    }

    /// Creates a bake, or answers with the existing bake of the same identity (unless
    /// `rebake`, which always starts a new one and stops the old one if it still runs).
    pub fn create(
        &self,
        region: &str,
        mut req: BakeRequest,
        rebake: bool,
        execution_header: Option<String>,
    ) -> Result<Created, CreateError> {
        if let Some(h) = execution_header.filter(|h| !h.is_empty()) {
            req.spinnaker_execution_id = Some(h);
        }
        let (prepared, via) = self.prepare_with_source(region, &req)?;
        let store = self.store();
        // A store that cannot write now (a full or read-only data dir) would lose the bake's
        // log and result: refuse it up front, saying why (503), rather than fail it later.
        store.probe()?;
        if rebake && let Some(old) = store.get_by_identity(&prepared.identity.digest)? {
            if !old.phase.is_finished() {
                let _ = self.cancel(&old.id);
            }
            store.unbind(&old.id)?;
        }
        let record = self.new_record(region, &req, &prepared, via);
        if req.request_id.is_some() && store.get(&record.id)?.is_some() {
            return Err(CreateError::Invalid(BakeError::Invalid(format!(
                "request_id '{}' is already a bake's id; leave request_id out or use a new one",
                record.id
            ))));
        }
        match store.create(&record, !rebake)? {
            Stored::Existing(existing) => {
                self.metrics().requested("duplicate");
                Ok(Created {
                    record: *existing,
                    reused: true,
                })
            }
            Stored::New => {
                self.metrics()
                    .requested(if rebake { "rebake" } else { "plain" });
                self.enqueue(record.clone(), prepared);
                Ok(Created {
                    record,
                    reused: false,
                })
            }
        }
    }

    pub(super) fn new_record(
        &self,
        region: &str,
        req: &BakeRequest,
        p: &Prepared,
        via: &str,
    ) -> BakeRecord {
        let settings = self.settings();
        let id = req
            .request_id
            .clone()
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let masked = crate::providers::registry::masked_parameters(&settings);
        let now = now_ms();
        BakeRecord {
            id,
            key: p.key.clone(),
            identity: p.identity.digest.clone(),
            region: region.to_string(),
            provider: p.provider.to_string(),
            phase: Phase::Queued,
            cause: None,
            request: redacted_request(req, &masked),
            recipe: Recipe {
                name: p.image_name.clone(),
                version: p.app_version.clone(),
                command: builders::shown(&p.plan, &settings, &masked),
                variables: shown_variables(p),
                template: p.template_name.clone(),
                source_image: p.source_name.as_ref().map(|name| SourceImage {
                    id: p.source_image.clone(),
                    name: name.clone(),
                    via: via.to_string(),
                }),
                builder: (p.plan.builder != builders::Builder::Packer)
                    .then(|| p.plan.builder.name().to_string()),
            },
            inputs: p.identity.inputs.clone(),
            created_ms: now,
            updated_ms: now,
            started_ms: None,
            details: None,
            error: None,
            execution_id: req
                .spinnaker_execution_id
                .as_deref()
                .map(|e| e.split(':').next().unwrap_or(e).to_string()),
            instance_id: self.instance_id().to_string(),
            report: Default::default(),
        }
    }
}

fn shown_variables(p: &Prepared) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = p.plan.variables.iter().cloned().collect();
    for (k, _) in &p.plan.secret_variables {
        vars.insert(k.clone(), "******".into());
    }
    vars
}

/// The request as stored: masked extended attributes lose their values.
fn redacted_request(req: &BakeRequest, masked: &[String]) -> serde_json::Value {
    let mut req = req.clone();
    if let Some(attrs) = req.extended_attributes.as_mut() {
        for (k, v) in attrs.iter_mut() {
            if masked.contains(k) {
                *v = serde_json::Value::String("******".into());
            }
        }
    }
    serde_json::to_value(&req).unwrap_or(serde_json::Value::Null)
}
