//! Test support for porting Rosco's `*BakeHandlerSpec` cases: a recipe prepared from a config and
//! a request body in a region, and its variables as a map (Rosco compares maps, not orders).

use super::recipe::{Prepared, RecipeContext};
use super::registry::prepare;
use crate::bake::BakeRequest;
use crate::config::Settings;
use crate::services::source_images::NoLookup;
use std::collections::BTreeMap;

/// Rosco's `TestDefaults`.
pub const PACKAGES_NAME: &str = "kato nflx-djangobase-enhanced_0.1-h12.170cdbd_all mongodb";
/// [`PACKAGES_NAME`] as kiln's real package rules pass it to Packer (Rosco's specs mock them).
pub const PACKAGES_PARAMETER: &str = "kato nflx-djangobase-enhanced=0.1-h12.170cdbd mongodb";
pub const DEBIAN_REPOSITORY: &str = "http://some-debian-repository";

/// A bakery configured by `yaml` (plus Rosco's test repository), with a configDir holding
/// `templates` (empty files).
pub struct Spec {
    pub settings: Settings,
    pub dir: tempfile::TempDir,
}

impl Spec {
    pub fn new(yaml: &str, templates: &[&str]) -> Spec {
        let with_repo = format!("debianRepository: {DEBIAN_REPOSITORY}\n{yaml}");
        let settings = crate::config::load_str(&with_repo, &|_| None)
            .unwrap()
            .settings;
        let dir = tempfile::tempdir().unwrap();
        for t in templates {
            std::fs::write(dir.path().join(t), "{}").unwrap();
        }
        Spec { settings, dir }
    }

    /// configDir as the recipe passes it.
    pub fn config_dir(&self) -> String {
        self.dir
            .path()
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
    }

    /// The recipe for `body` (Rosco's request JSON) in `region`; the error's text on a refusal.
    pub fn prepare(&self, region: &str, body: serde_json::Value) -> Result<Prepared, String> {
        let req = BakeRequest::from_json(body.to_string().as_bytes()).map_err(|e| e.0)?;
        let dir = self.dir.path().canonicalize().unwrap();
        let ctx = RecipeContext {
            settings: &self.settings,
            config_dir: &dir,
            region,
            now_ms: 1_470_391_070_464,
            images: &NoLookup,
        };
        prepare(&req, &ctx).map_err(|e| e.to_string())
    }

    /// The template's path as Rosco's spec names it (`$configDir/<file>`).
    pub fn template(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().canonicalize().unwrap().join(file)
    }
}

/// The variables Packer gets on its command line, by name.
pub fn vars(p: &Prepared) -> BTreeMap<String, String> {
    p.plan.variables.iter().cloned().collect()
}

/// An expected map from `(name, value)` pairs.
pub fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Rosco's `GET bake` for a bake of `provider` in `region` named `image_name` whose Packer
/// printed `log` (machine-readable lines), as the provider shapes it.
pub fn details_of(
    provider: &str,
    region: &str,
    image_name: &str,
    log: &str,
) -> crate::bake::BakeDetails {
    use crate::builders::packer::output::{Outcome, parse_line};
    let mut outcome = Outcome::default();
    for event in log.lines().filter_map(parse_line) {
        outcome.feed(&event);
    }
    let request = serde_json::json!({"build_info_url": "http://ci/1", "build_number": "7"});
    let mut record = super::provider::test_record_named(provider, region, image_name, request);
    record.id = "123".into();
    let run = super::provider::test_run(&record);
    super::registry::find(provider)
        .unwrap()
        .details(run, &outcome)
}
