//! The settings as a tree of plain values, for `bakery show` and for the keys a reload changed.
//! Secrets are masked (`******`) for display, or replaced by a digest when two trees are only
//! compared (the digest never leaves the process); `files:` contents are always digests.

use crate::config::{AwsBakeryDefaults, DurationText, Secret, Settings};
use crate::digest::sha256_hex;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// How a secret appears in a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secrets {
    /// `******`, for showing.
    Mask,
    /// A digest, for comparing.
    Digest,
}

fn secret(s: &Option<Secret>, how: Secrets) -> Value {
    match (s, how) {
        (None, _) => Value::Null,
        (Some(_), Secrets::Mask) => json!("******"),
        (Some(s), Secrets::Digest) => json!(sha256_hex(s.expose().as_bytes())),
    }
}

fn duration(d: &Option<DurationText>) -> Value {
    d.map_or(Value::Null, |d| json!(format!("{:?}", d.0)))
}

fn yaml(v: &Option<serde_norway::Value>) -> Value {
    v.as_ref()
        .map(|v| serde_json::to_value(v).unwrap_or_else(|_| json!(format!("{v:?}"))))
        .unwrap_or(Value::Null)
}

/// `aws.bakeryDefaults`.
pub(crate) fn bakery_defaults(d: &AwsBakeryDefaults, how: Secrets) -> Value {
    let images: Vec<Value> = d
        .base_images
        .iter()
        .map(|b| {
            let mut v = serde_json::to_value(b).unwrap_or(Value::Null);
            v["baseImage"]["timeout"] = duration(&b.base_image.timeout);
            v["baseImage"]["idleTimeout"] = duration(&b.base_image.idle_timeout);
            v
        })
        .collect();
    json!({
        "awsAccessKey": d.aws_access_key,
        "awsSecretKey": secret(&d.aws_secret_key, how),
        "awsSubnetId": d.aws_subnet_id,
        "awsVpcId": d.aws_vpc_id,
        "awsAssociatePublicIpAddress": d.aws_associate_public_ip_address,
        "awsEc2Endpoint": d.aws_ec2_endpoint,
        "awsEbsEndpoint": d.aws_ebs_endpoint,
        "awsSkipValidation": d.aws_skip_validation,
        "templateFile": d.template_file,
        "defaultVirtualizationType": d.default_virtualization_type,
        "maskedPackerParameters": d.masked_packer_parameters,
        "baseImages": images,
    })
}

/// An account's secret keys and values.
type SecretsOf<A> = fn(&A) -> Vec<(&'static str, &Option<Secret>)>;

/// `<cloud>.accounts` (what `account add|edit` writes), each account's secrets as `how` says.
fn accounts<A: serde::Serialize>(list: &[A], secrets: SecretsOf<A>, how: Secrets) -> Value {
    let shown = list.iter().map(|a| {
        let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
        for (key, s) in secrets(a) {
            v[key] = secret(s, how);
        }
        v
    });
    Value::Array(shown.collect())
}

/// A cloud's settings as configured (`enabled`, `bakeryDefaults`, …), with its bakery secrets
/// (keys under `bakeryDefaults`) and its accounts' shown as `how` says: plain serializing masks
/// every secret, which would hide a changed one from a reload's report.
fn cloud<T: serde::Serialize>(
    settings: &T,
    bakery_secrets: &[(&str, &Option<Secret>)],
    accounts: Option<Value>,
    how: Secrets,
) -> Value {
    let mut v = serde_json::to_value(settings).unwrap_or(Value::Null);
    for (key, s) in bakery_secrets {
        v["bakeryDefaults"][*key] = secret(s, how);
    }
    if let Some(list) = accounts {
        v["accounts"] = list;
    }
    v
}

/// Every setting kiln reads, under its camelCase path.
pub(crate) fn settings(s: &Settings, how: Secrets) -> Value {
    let files: BTreeMap<&String, String> = s
        .files
        .iter()
        .map(|(k, v)| (k, sha256_hex(v.as_bytes())))
        .collect();
    let k = &s.kiln;
    json!({
        "server": {"port": s.server.port, "address": s.server.address},
        "rosco": {
            "configDir": s.rosco.config_dir,
            "jobs": {"local": {"timeoutMinutes": s.rosco.jobs.local.timeout_minutes}},
            "polling": yaml(&s.rosco.polling),
        },
        "defaultCloudProviderType": s.default_cloud_provider_type,
        "templatesNeedingRoot": s.templates_needing_root,
        "debianRepository": s.debian_repository,
        "yumRepository": s.yum_repository,
        "chocolateyRepository": s.chocolatey_repository,
        "packer": {"timestamp": s.packer.timestamp, "additionalParameters": s.packer.additional_parameters},
        "aws": {
            "enabled": s.aws.enabled,
            "bakeryDefaults": bakery_defaults(&s.aws.bakery_defaults, how),
            "base": yaml(&s.aws.base),
            "accounts": yaml(&s.aws.accounts),
        },
        "google": cloud(&s.google, &[], None, how),
        "docker": cloud(&s.docker, &[], None, how),
        "alicloud": cloud(
            &s.alicloud,
            &[("alicloudSecretKey", &s.alicloud.bakery_defaults.alicloud_secret_key)],
            None,
            how,
        ),
        "tencentcloud": cloud(
            &s.tencentcloud,
            &[("secretKey", &s.tencentcloud.bakery_defaults.secret_key)],
            None,
            how,
        ),
        "huaweicloud": cloud(
            &s.huaweicloud,
            &[("password", &s.huaweicloud.bakery_defaults.password)],
            None,
            how,
        ),
        "oracle": cloud(
            &s.oracle,
            &[],
            Some(accounts(
                &s.oracle.accounts,
                |a| vec![("privateKeyPassphrase", &a.private_key_passphrase)],
                how,
            )),
            how,
        ),
        "azure": cloud(
            &s.azure,
            &[],
            Some(accounts(&s.azure.accounts, |a| vec![("appKey", &a.app_key)], how)),
            how,
        ),
        "qemu": {
            "enabled": s.qemu.enabled,
            "accelerator": s.qemu.accelerator,
            "templateFile": s.qemu.template_file,
            "baseImages": s.qemu.base_images,
        },
        "redis": {"connection": s.redis.connection, "timeout": s.redis.timeout},
        "kiln": {
            "dataDir": k.data_dir,
            "packerPath": k.packer_path,
            "store": k.store,
            "jobs": {
                "timeout": duration(&k.jobs.timeout),
                "idleTimeout": duration(&k.jobs.idle_timeout),
                "killGrace": duration(&k.jobs.kill_grace),
                "maxConcurrent": k.jobs.max_concurrent,
            },
            "logs": {"maxBytes": k.logs.max_bytes},
            "ha": {
                "orphanTimeout": duration(&k.ha.orphan_timeout),
                "heartbeat": duration(&k.ha.heartbeat),
            },
            "http": {
                "headerReadTimeout": duration(&k.http.header_read_timeout),
                "maxConnections": k.http.max_connections,
                "requestTimeout": duration(&k.http.request_timeout),
            },
            "manifests": {
                "timeout": duration(&k.manifests.timeout),
                "maxArtifactBytes": k.manifests.max_artifact_bytes,
                "maxOutputBytes": k.manifests.max_output_bytes,
                "maxConcurrent": k.manifests.max_concurrent,
                "allowFileUrls": k.manifests.allow_file_urls,
            },
        },
        "helm": {
            "v3ExecutablePath": s.helm.v3_executable_path,
            "v2ExecutablePath": s.helm.v2_executable_path,
            "overridesFileThreshold": s.helm.overrides_file_threshold,
        },
        "helmfile": {"executablePath": s.helmfile.executable_path},
        "kustomize": {
            "v3ExecutablePath": s.kustomize.v3_executable_path,
            "v4ExecutablePath": s.kustomize.v4_executable_path,
        },
        "files": files,
        "spectator": yaml(&s.spectator),
        "swagger": yaml(&s.swagger),
        "services": yaml(&s.services),
        "endpoints": yaml(&s.endpoints),
        "spring": yaml(&s.spring),
        "logging": yaml(&s.logging),
    })
}

/// The view without its unset (null) values, for display.
pub(crate) fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// The leaf paths whose values differ between two views (`aws.bakeryDefaults.awsSubnetId`,
/// `aws.bakeryDefaults.baseImages[0].baseImage.id`); unset and null are the same.
pub(crate) fn changed_paths(old: &Value, new: &Value) -> Vec<String> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten(old, String::new(), &mut a);
    flatten(new, String::new(), &mut b);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// The top-level sections (camelCase) whose `Debug` text differs: a safety net, so a setting
/// this view does not itemize yet is still reported. `Debug` masks secrets; only names leave.
pub(crate) fn changed_sections(old: &Settings, new: &Settings) -> Vec<String> {
    let (a, b) = (sections(old), sections(new));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .cloned()
        .collect()
}

/// `{:#?}` puts each top-level field on a line indented by four spaces.
fn sections(s: &Settings) -> BTreeMap<String, String> {
    let text = format!("{s:#?}");
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines().skip(1) {
        let top = line.strip_prefix("    ").filter(|l| !l.starts_with(' '));
        if let Some((name, _)) = top.and_then(|l| l.split_once(':')) {
            current = super::yaml::camel(name);
        }
        out.entry(current.clone()).or_default().push_str(line);
    }
    out
}

fn flatten<'a>(v: &'a Value, path: String, out: &mut BTreeMap<String, &'a Value>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match v {
        Value::Null => {}
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                flatten(child, join(k), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                flatten(child, format!("{path}[{i}]"), out);
            }
        }
        leaf => {
            out.insert(path, leaf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Settings {
        crate::config::load_str(yaml, &|_| None).unwrap().settings
    }

    #[test]
    fn a_changed_secret_is_reported_by_path_and_never_by_value() {
        let old =
            load("aws:\n  bakeryDefaults:\n    awsAccessKey: A\n    awsSecretKey: s3cr3t-one\n");
        let new = load(
            "aws:\n  bakeryDefaults:\n    awsAccessKey: A\n    awsSecretKey: s3cr3t-two\n    awsSubnetId: s\n",
        );
        let (a, b) = (
            settings(&old, Secrets::Digest),
            settings(&new, Secrets::Digest),
        );
        assert_eq!(
            changed_paths(&a, &b),
            vec![
                "aws.bakeryDefaults.awsSecretKey",
                "aws.bakeryDefaults.awsSubnetId"
            ]
        );
        let shown = settings(&new, Secrets::Mask).to_string();
        assert!(
            !shown.contains("s3cr3t-two") && shown.contains("******"),
            "{shown}"
        );
    }

    #[test]
    fn the_other_clouds_bakery_changes_and_secrets_are_reported_by_path_only() {
        let old = load(
            "alicloud:\n  bakeryDefaults:\n    alicloudSecretKey: s3cr3t-one\ntencentcloud:\n  bakeryDefaults:\n    secretKey: s3cr3t-one\nhuaweicloud:\n  bakeryDefaults:\n    password: s3cr3t-one\n",
        );
        let new = load(
            "alicloud:\n  bakeryDefaults:\n    alicloudSecretKey: s3cr3t-two\ntencentcloud:\n  bakeryDefaults:\n    secretKey: s3cr3t-two\nhuaweicloud:\n  bakeryDefaults:\n    password: s3cr3t-one\ngoogle:\n  bakeryDefaults:\n    zone: us-east1-b\nazure:\n  enabled: true\n",
        );
        let (a, b) = (
            settings(&old, Secrets::Digest),
            settings(&new, Secrets::Digest),
        );
        assert_eq!(
            changed_paths(&a, &b),
            vec![
                "alicloud.bakeryDefaults.alicloudSecretKey",
                "azure.enabled",
                "google.bakeryDefaults.zone",
                "tencentcloud.bakeryDefaults.secretKey",
            ]
        );
        for how in [Secrets::Mask, Secrets::Digest] {
            let shown = settings(&new, how).to_string();
            assert!(
                !shown.contains("s3cr3t-two") && !shown.contains("s3cr3t-one"),
                "{shown}"
            );
        }
    }

    /// (An empty list is a leaf: `oracle.accounts` goes from `[]` to a list.)
    #[test]
    fn an_accounts_changed_secret_is_reported_by_path_and_never_by_value() {
        let old = load("azure:\n  accounts:\n  - {name: a, appKey: s3cr3t-one}\n");
        let new = load(
            "azure:\n  accounts:\n  - {name: a, appKey: s3cr3t-two}\noracle:\n  accounts:\n  - {name: o, privateKeyPassphrase: s3cr3t-three}\n",
        );
        let (a, b) = (
            settings(&old, Secrets::Digest),
            settings(&new, Secrets::Digest),
        );
        assert_eq!(
            changed_paths(&a, &b),
            vec![
                "azure.accounts[0].appKey",
                "oracle.accounts",
                "oracle.accounts[0].name",
                "oracle.accounts[0].privateKeyPassphrase"
            ]
        );
        for how in [Secrets::Mask, Secrets::Digest] {
            let shown = settings(&new, how).to_string();
            assert!(
                !shown.contains("s3cr3t-two") && !shown.contains("s3cr3t-three"),
                "{shown}"
            );
        }
    }

    #[test]
    fn every_top_level_section_is_seen_by_the_safety_net() {
        let old = load("server:\n  port: 1\n");
        let new = load("server:\n  port: 2\nqemu:\n  enabled: true\n");
        assert_eq!(changed_sections(&old, &new), vec!["qemu", "server"]);
        assert!(changed_sections(&old, &old).is_empty());
    }

    #[test]
    fn base_images_and_files_changes_name_their_leaf() {
        let old = load(
            "aws:\n  bakeryDefaults:\n    baseImages:\n    - baseImage: {id: a}\nfiles:\n  f: x\n",
        );
        let new = load(
            "aws:\n  bakeryDefaults:\n    baseImages:\n    - baseImage: {id: b}\nfiles:\n  f: y\n",
        );
        let paths = changed_paths(
            &settings(&old, Secrets::Digest),
            &settings(&new, Secrets::Digest),
        );
        assert_eq!(
            paths,
            vec!["aws.bakeryDefaults.baseImages[0].baseImage.id", "files.f"]
        );
    }
}
