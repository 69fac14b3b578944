//! What one ebs-direct bake is given: kiln writes it as JSON before the run
//! (`kiln __ebs-direct <spec.json> [-var-file=…]`). It holds no secret: credentials come in the
//! environment (as for Packer), masked variables in the supervisor's in-memory var file.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The bake id: names the work folder.
    pub bake_id: String,
    pub region: String,
    pub ec2_endpoint: Option<String>,
    pub ebs_endpoint: Option<String>,
    /// The base image (`ami-…`, in `region`, owned by the bakery's account).
    pub base_ami: String,
    pub image_name: String,
    /// The recipe's variables, as Packer would get them: `packages`, `repository`,
    /// `package_type`, `upgrade` (the install script's), `appversion`, `build_host`,
    /// `build_info_url` (tags), `share_with_N`, `copy_to_N`.
    pub variables: Vec<(String, String)>,
    /// The staged package artifacts (a folder of plain files), copied into the image's
    /// `/tmp/kiln-artifacts` for the install.
    pub artifacts_dir: Option<PathBuf>,
    /// `install_packages.sh`, the script the Packer templates run.
    pub install_script: PathBuf,
    /// kiln's data dir: the cache is `ebs-cache/`, the bake's work folder `ebs-work/<bake_id>`.
    pub data_dir: PathBuf,
}

/// The work folders of every ebs-direct bake live here.
pub fn work_root(data_dir: &Path) -> PathBuf {
    data_dir.join("ebs-work")
}

/// Fetched base snapshots, one raw file per snapshot id.
pub fn cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ebs-cache")
}

impl Spec {
    pub fn work_dir(&self) -> PathBuf {
        work_root(&self.data_dir).join(&self.bake_id)
    }

    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// `<name>_1`, `<name>_2`, … in order (`share_with`, `copy_to`).
    pub fn numbered(&self, name: &str) -> Vec<String> {
        (1..)
            .map_while(|i| self.variable(&format!("{name}_{i}")).map(str::to_string))
            .collect()
    }

    /// The tags the shipped templates set, where they have a value.
    pub fn tags(&self) -> Vec<(String, String)> {
        let mut tags: Vec<(String, String)> = ["appversion", "build_host", "build_info_url"]
            .iter()
            .filter_map(|k| self.variable(k).map(|v| (k.to_string(), v.to_string())))
            .collect();
        tags.push(("base_ami_id".into(), self.base_ami.clone()));
        tags
    }

    /// What makes the spec unusable, before anything runs. The values came through kiln's
    /// checks; these guard the paths and ids the engine builds file names from.
    pub fn check(&self) -> Result<(), String> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && !s.starts_with('.')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        };
        if !plain(&self.bake_id) {
            return Err(format!("bake id {:?} cannot name a folder", self.bake_id));
        }
        if !is_id(&self.base_ami, "ami-") {
            return Err(format!(
                "base image {:?} is not an image id (ami-…)",
                self.base_ami
            ));
        }
        if !self.data_dir.is_absolute() || !self.install_script.is_absolute() {
            return Err("the data dir and the install script must be absolute paths".into());
        }
        Ok(())
    }
}

/// `prefix` followed by 1–64 lowercase hex digits (AWS ids: `ami-…`, `snap-…`).
pub fn is_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|hex| {
        (1..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let v = |k: &str, x: &str| (k.to_string(), x.to_string());
        Spec {
            bake_id: "01JX-abc".into(),
            base_ami: "ami-0abc".into(),
            data_dir: "/var/lib/kiln".into(),
            install_script: "/etc/kiln/install_packages.sh".into(),
            variables: vec![
                v("appversion", "app-1.0-h1"),
                v("build_host", " "),
                v("share_with_1", "111122223333"),
                v("share_with_2", "444455556666"),
                v("copy_to_1", "eu-west-1"),
            ],
            ..Spec::default()
        }
    }

    #[test]
    fn tags_shares_and_copies_come_from_the_variables() {
        let s = spec();
        assert_eq!(
            s.tags(),
            vec![
                ("appversion".to_string(), "app-1.0-h1".to_string()),
                ("base_ami_id".to_string(), "ami-0abc".to_string())
            ]
        );
        assert_eq!(
            s.numbered("share_with"),
            vec!["111122223333", "444455556666"]
        );
        assert_eq!(s.numbered("copy_to"), vec!["eu-west-1"]);
        assert_eq!(s.work_dir(), Path::new("/var/lib/kiln/ebs-work/01JX-abc"));
        assert!(s.check().is_ok());
    }

    #[test]
    fn ids_and_paths_that_could_escape_are_refused() {
        for bad in ["../x", "", ".hidden", "a/b"] {
            let s = Spec {
                bake_id: bad.into(),
                ..spec()
            };
            assert!(s.check().is_err(), "{bad}");
        }
        let s = Spec {
            base_ami: "ami-../../etc".into(),
            ..spec()
        };
        assert!(s.check().is_err());
        assert!(is_id("snap-0123abcd", "snap-"));
        assert!(!is_id("snap-", "snap-") && !is_id("snap-x/y", "snap-"));
    }
}
