//! Reading the configuration file: YAML → Spring's relaxed key binding → `${NAME:default}`
//! placeholders from the environment → typed [`Settings`]. Unknown keys become warnings; a
//! malformed file, a wrong type or an unresolvable placeholder is an error naming the key.

use super::Settings;
use anyhow::{Context, bail};
use serde_norway::{Mapping, Value};
use std::path::Path;

/// Settings plus what the loader wants the operator to know.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub warnings: Vec<String>,
}

/// Loads a config file, or the defaults when there is none.
pub fn load(path: Option<&Path>) -> anyhow::Result<Loaded> {
    let Some(path) = path else {
        return load_str("", &|k| std::env::var(k).ok());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    load_str(&text, &|k| std::env::var(k).ok())
        .with_context(|| format!("config file {}", path.display()))
}

/// Loads settings from YAML text; `env` answers placeholder lookups.
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Loaded> {
    let raw: Value = if text.trim().is_empty() {
        Value::Mapping(Mapping::new())
    } else {
        serde_norway::from_str(text).map_err(|e| anyhow::anyhow!("malformed YAML: {e}"))?
    };
    let value = resolve(normalize(raw, false), "", env)?;
    let mut warnings = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path| {
        warnings.push(format!("unknown config key '{path}' is ignored"));
    };
    let ignored = serde_ignored::Deserializer::new(value, &mut on_unknown);
    let settings: Settings = serde_path_to_error::deserialize(ignored).map_err(|e| {
        let path = e.path().to_string();
        anyhow::anyhow!("key '{path}': {}", e.into_inner())
    })?;
    check(&settings)?;
    Ok(Loaded { settings, warnings })
}

/// The top-level key whose entries are files for configDir, kept as written.
const FILES: &str = "files";

/// Folds every key into camelCase: Spring treats `default-virtualization-type`,
/// `default_virtualization_type` and `defaultVirtualizationType` as one key. The keys of
/// `files:` are file names and stay as written.
fn normalize(v: Value, verbatim_keys: bool) -> Value {
    match v {
        Value::Mapping(m) => Value::Mapping(
            m.into_iter()
                .map(|(k, v)| {
                    let name = k.as_str().map(String::from);
                    let key = match (&name, verbatim_keys) {
                        (Some(s), false) => Value::String(relaxed_key(s)),
                        _ => k,
                    };
                    let child_verbatim = !verbatim_keys && name.as_deref() == Some(FILES);
                    (key, normalize(v, child_verbatim))
                })
                .collect(),
        ),
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(|v| normalize(v, false)).collect()),
        other => other,
    }
}

/// Spring's relaxed form of a key: `default-virtualization-type` → `defaultVirtualizationType`.
pub fn relaxed_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '-' || c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Replaces `${NAME}` and `${NAME:default}` in string values. A value that was only a
/// placeholder is re-read as YAML, so `${AWS_ENABLED:false}` is the boolean `false`.
/// The contents of `files:` entries are not config values but files (shell scripts, templates):
/// they are kept verbatim, so a script's `${packages:-none}` or `${arr[@]}` stays as written.
fn resolve(v: Value, path: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Value> {
    if path == FILES {
        return Ok(v);
    }
    Ok(match v {
        Value::Mapping(m) => {
            let mut out = Mapping::new();
            for (k, v) in m {
                let child = match k.as_str() {
                    Some(s) if path.is_empty() => s.to_string(),
                    Some(s) => format!("{path}.{s}"),
                    None => path.to_string(),
                };
                out.insert(k, resolve(v, &child, env)?);
            }
            Value::Mapping(out)
        }
        Value::Sequence(s) => Value::Sequence(
            s.into_iter()
                .enumerate()
                .map(|(i, v)| resolve(v, &format!("{path}[{i}]"), env))
                .collect::<anyhow::Result<_>>()?,
        ),
        Value::String(s) if s.contains("${") => {
            let whole = s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1;
            let text = substitute(&s, env).with_context(|| format!("key '{path}'"))?;
            if whole {
                serde_norway::from_str::<Value>(&text)
                    .ok()
                    .filter(|v| !matches!(v, Value::Mapping(_) | Value::Sequence(_)))
                    .unwrap_or(Value::String(text))
            } else {
                Value::String(text)
            }
        }
        other => other,
    })
}

fn substitute(s: &str, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            bail!("unclosed placeholder in '{s}'");
        };
        let inner = &rest[start + 2..start + end];
        let (name, default) = match inner.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let value = lookup(name, env).or(default.map(String::from));
        match value {
            Some(v) => out.push_str(&v),
            None => bail!(
                "placeholder '${{{name}}}' has no value: set the environment variable {name} or write '${{{name}:default}}'"
            ),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Spring looks a property up as written and in its environment-variable form
/// (`services.redis.baseUrl` → `SERVICES_REDIS_BASEURL`).
fn lookup(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    env(name).or_else(|| {
        let upper: String = name
            .chars()
            .map(|c| match c {
                '.' | '-' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        env(&upper)
    })
}

/// Cross-field checks that serde cannot make.
fn check(s: &Settings) -> anyhow::Result<()> {
    let d = &s.aws.bakery_defaults;
    if let Some(vt) = &d.default_virtualization_type
        && vt != "hvm"
        && vt != "pv"
    {
        bail!(
            "key 'aws.bakeryDefaults.defaultVirtualizationType': '{vt}' is not a virtualization type (expected hvm or pv)"
        );
    }
    let has_secret = d.aws_secret_key.as_ref().is_some_and(|k| !k.is_empty());
    let has_access = d
        .aws_access_key
        .as_ref()
        .is_some_and(|k| !k.trim().is_empty());
    if has_secret != has_access {
        bail!(
            "key 'aws.bakeryDefaults': awsAccessKey and awsSecretKey go together; set both, or neither to use the default credential chain"
        );
    }
    for (i, img) in d.base_images.iter().enumerate() {
        let at = format!("aws.bakeryDefaults.baseImages[{i}]");
        if img.base_image.id.trim().is_empty() {
            bail!("key '{at}.baseImage.id': every base image needs an id");
        }
        if let Some(pt) = &img.base_image.package_type
            && !["deb", "rpm", "nupkg"].contains(&pt.to_ascii_lowercase().as_str())
        {
            bail!(
                "key '{at}.baseImage.packageType': '{pt}' is not a package type (expected deb, rpm or nupkg)"
            );
        }
        match img.base_image.builder.as_deref().map(str::trim) {
            None | Some("" | "packer") => {}
            Some("ebs-direct") => {
                if img
                    .base_image
                    .package_type
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case("nupkg"))
                    || img
                        .base_image
                        .os_type
                        .as_deref()
                        .is_some_and(|o| o.eq_ignore_ascii_case("windows"))
                {
                    bail!(
                        "key '{at}.baseImage.builder': ebs-direct installs deb and rpm packages on Linux only; bake this Windows image with packer"
                    );
                }
            }
            Some(b) => bail!(
                "key '{at}.baseImage.builder': '{b}' is not a builder (expected packer or ebs-direct)"
            ),
        }
        for (j, vs) in img.virtualization_settings.iter().enumerate() {
            if let Some(vt) = &vs.virtualization_type
                && vt != "hvm"
                && vt != "pv"
            {
                bail!(
                    "key '{at}.virtualizationSettings[{j}].virtualizationType': '{vt}' is not a virtualization type (expected hvm or pv)"
                );
            }
        }
    }
    check_http(s)?;
    check_store(s)
}

/// `kiln.http` limits that would switch a defence off are refused, not silently replaced.
fn check_http(s: &Settings) -> anyhow::Result<()> {
    let h = &s.kiln.http;
    for (key, value) in [
        ("headerReadTimeout", h.header_read_timeout),
        ("requestTimeout", h.request_timeout),
    ] {
        if value.is_some_and(|d| d.0.is_zero()) {
            bail!("key 'kiln.http.{key}': 0 would turn the limit off; give a duration such as 10s");
        }
    }
    if h.max_connections == Some(0) {
        bail!(
            "key 'kiln.http.maxConnections': 0 would refuse every client; give a number such as 1024"
        );
    }
    Ok(())
}

/// `kiln.store` names an engine this build has; a Redis engine gets a usable URI and
/// heartbeat timings that leave room for a missed beat.
fn check_store(s: &Settings) -> anyhow::Result<()> {
    use super::{DEFAULT_REDIS_CONNECTION, Engine, check_redis_connection};
    let engine = Engine::from_config(s.kiln.store.as_deref())
        .map_err(|e| anyhow::anyhow!("key 'kiln.store': {e}"))?;
    if engine != Engine::Redis {
        return Ok(());
    }
    let uri = s
        .redis
        .connection
        .as_deref()
        .unwrap_or(DEFAULT_REDIS_CONNECTION);
    check_redis_connection(uri).map_err(|e| anyhow::anyhow!("key 'redis.connection': {e}"))?;
    let tls = ["rediss://", "valkeys://"].iter().any(|p| {
        uri.get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    });
    if s.redis.ca_cert_file.is_some() && !tls {
        bail!("key 'redis.caCertFile' is set but redis.connection is not a TLS URI: use rediss://");
    }
    if s.redis.timeout == Some(0) {
        bail!("key 'redis.timeout': 0 ms would fail every call (Rosco's default is 2000)");
    }
    let (every, orphan) = (s.heartbeat_every(), s.orphan_timeout());
    if orphan < every * 3 {
        bail!(
            "key 'kiln.ha.orphanTimeout': {orphan:?} is shorter than three heartbeats \
             (kiln.ha.heartbeat is {every:?}); one late heartbeat would orphan running bakes"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "AWS_ENABLED" => Some("true".into()),
            "SERVICES_REDIS_BASEURL" => Some("redis://r:6379".into()),
            _ => None,
        }
    }

    #[test]
    fn a_base_images_builder_is_packer_or_ebs_direct_and_ebs_direct_is_linux_only() {
        let yaml = |builder: &str, kind: &str| {
            format!(
                "aws:\n  bakeryDefaults:\n    awsEbsEndpoint: http://127.0.0.1:5000\n    baseImages:\n    - baseImage: {{id: b, packageType: {kind}, builder: {builder}}}\n"
            )
        };
        let ok = load_str(&yaml("ebs-direct", "deb"), &env).unwrap();
        let d = &ok.settings.aws.bakery_defaults;
        assert_eq!(
            d.base_images[0].base_image.builder.as_deref(),
            Some("ebs-direct")
        );
        assert_eq!(d.aws_ebs_endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(load_str(&yaml("packer", "nupkg"), &env).is_ok());
        let e = load_str(&yaml("ebs-fast", "deb"), &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("baseImages[0].baseImage.builder") && e.contains("packer or ebs-direct"),
            "{e}"
        );
        let e = load_str(&yaml("ebs-direct", "nupkg"), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Windows"), "{e}");
    }

    #[test]
    fn relaxed_spellings_of_a_key_are_the_same_key() {
        let l = load_str(
            "aws:\n  bakery-defaults:\n    default-virtualization-type: pv\n    aws_subnet_id: subnet-1\n",
            &env,
        )
        .unwrap();
        let d = &l.settings.aws.bakery_defaults;
        assert_eq!(d.default_virtualization_type.as_deref(), Some("pv"));
        assert_eq!(d.aws_subnet_id.as_deref(), Some("subnet-1"));
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn placeholders_resolve_from_the_environment_with_defaults() {
        let l = load_str(
            "aws:\n  enabled: ${AWS_ENABLED:false}\nredis:\n  connection: ${services.redis.baseUrl:redis://localhost:6379}\ndebianRepository: ${DEB_REPO:http://deb stable main}\n",
            &env,
        )
        .unwrap();
        assert!(l.settings.aws.enabled);
        assert_eq!(
            l.settings.redis.connection.as_deref(),
            Some("redis://r:6379")
        );
        assert_eq!(
            l.settings.debian_repository.as_deref(),
            Some("http://deb stable main")
        );
    }

    #[test]
    fn an_unknown_key_is_a_warning_naming_its_path() {
        let l = load_str("rosco:\n  configDirr: /x\n", &env).unwrap();
        assert_eq!(
            l.warnings,
            vec!["unknown config key 'rosco.configDirr' is ignored"]
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_and_what_was_expected() {
        let e = load_str("server:\n  port: eighty\n", &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.port"), "{e}");
        let e = load_str(
            "aws:\n  bakeryDefaults:\n    awsAssociatePublicIpAddress: maybe\n",
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("aws.bakeryDefaults.awsAssociatePublicIpAddress"),
            "{e}"
        );
    }

    #[test]
    fn malformed_yaml_stops_with_a_position() {
        let e = load_str("server: [port\n", &env).unwrap_err().to_string();
        assert!(e.contains("malformed YAML"), "{e}");
    }

    #[test]
    fn an_unset_placeholder_without_default_says_what_to_set() {
        let e = load_str("aws:\n  enabled: ${NOPE}\n", &env).unwrap_err();
        assert!(
            format!("{e:#}").contains("set the environment variable NOPE"),
            "{e:#}"
        );
    }

    #[test]
    fn halyard_written_aws_settings_are_read() {
        let yaml = r#"
aws:
  enabled: true
  bakeryDefaults:
    awsAccessKey: AKIAEXAMPLE
    awsSecretKey: s3cr3t-value
    awsSubnetId: subnet-1
    awsAssociatePublicIpAddress: false
    templateFile: aws-ebs.json
    baseImages:
    - baseImage:
        id: trusty
        packageType: DEB
      virtualizationSettings:
      - region: us-east-1
        virtualizationType: hvm
        instanceType: t2.micro
        sourceAmi: ami-1
        sshUserName: ubuntu
        spotPrice: 0
templatesNeedingRoot: aws-chroot.json, aws-multi-chroot.json
files:
  profiles__rosco__packer__my_template.json: "{}"
"#;
        let l = load_str(yaml, &env).unwrap();
        let d = &l.settings.aws.bakery_defaults;
        assert_eq!(d.aws_secret_key.as_ref().unwrap().expose(), "s3cr3t-value");
        assert!(!format!("{:?}", l.settings).contains("s3cr3t"));
        assert_eq!(d.aws_associate_public_ip_address, Some(false));
        assert_eq!(
            d.base_images[0].virtualization_settings[0]
                .spot_price
                .as_deref(),
            Some("0")
        );
        assert_eq!(l.settings.templates_needing_root().len(), 2);
        assert!(
            l.settings
                .files
                .contains_key("profiles__rosco__packer__my_template.json")
        );
    }

    #[test]
    fn http_limits_that_would_turn_a_defence_off_are_refused() {
        for (yaml, key) in [
            (
                "kiln:\n  http:\n    headerReadTimeout: 0s\n",
                "headerReadTimeout",
            ),
            ("kiln:\n  http:\n    requestTimeout: 0\n", "requestTimeout"),
            ("kiln:\n  http:\n    maxConnections: 0\n", "maxConnections"),
        ] {
            let e = load_str(yaml, &env).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
        assert!(load_str("kiln:\n  http:\n    headerReadTimeout: 5s\n", &env).is_ok());
    }

    #[test]
    fn the_store_engine_is_checked_with_its_redis_settings() {
        let l = load_str("kiln:\n  store: sqlite\n", &env).unwrap();
        assert_eq!(l.settings.kiln.store.as_deref(), Some("sqlite"));
        let e = load_str("kiln:\n  store: mongo\n", &env).unwrap_err();
        assert!(
            e.to_string().contains("kiln.store") && e.to_string().contains("mongo"),
            "{e}"
        );
        let redis = load_str(
            "kiln:\n  store: redis\n  ha: {heartbeat: 1s, orphan-timeout: 3s}\nredis:\n  connection: redis://:pw@r:6379/2\n  timeout: 500\n",
            &env,
        );
        if !cfg!(feature = "redis") {
            let e = redis.unwrap_err().to_string();
            assert!(e.contains("not compiled into this build"), "{e}");
            return;
        }
        let s = redis.unwrap().settings;
        assert_eq!(s.heartbeat_every(), std::time::Duration::from_secs(1));
        assert_eq!(s.heartbeat_ttl(), std::time::Duration::from_secs(2));
        let tls = load_str(
            "kiln:\n  store: redis\nredis:\n  connection: rediss://r\n  caCertFile: /etc/ca.pem\n",
            &env,
        )
        .unwrap();
        assert_eq!(
            tls.settings.redis.ca_cert_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        let plain_with_ca = load_str(
            "kiln:\n  store: redis\nredis:\n  connection: redis://r\n  caCertFile: /etc/ca.pem\n",
            &env,
        );
        assert!(
            plain_with_ca.unwrap_err().to_string().contains("rediss://"),
            "a CA file without TLS is a mistake worth naming"
        );
        let tight = load_str(
            "kiln:\n  store: redis\n  ha:\n    orphanTimeout: 10s\n",
            &env,
        );
        let e = tight.unwrap_err().to_string();
        assert!(
            e.contains("kiln.ha.orphanTimeout") && e.contains("three heartbeats"),
            "{e}"
        );
    }

    #[test]
    fn files_contents_are_kept_verbatim_while_config_values_resolve() {
        let script = "#!/bin/bash\necho ${packages:-none} ${arr[@]} ${NOPE} ${AWS_ENABLED}\n";
        let yaml = format!(
            "aws:\n  enabled: ${{AWS_ENABLED:false}}\nfiles:\n  profiles__rosco__packer__x.sh: {}\n",
            serde_json::to_string(script).unwrap()
        );
        let l = load_str(&yaml, &env).unwrap();
        assert!(l.settings.aws.enabled);
        assert_eq!(l.settings.files["profiles__rosco__packer__x.sh"], script);
    }

    #[test]
    fn a_secret_without_its_access_key_is_refused() {
        let e = load_str("aws:\n  bakeryDefaults:\n    awsSecretKey: x\n", &env).unwrap_err();
        assert!(e.to_string().contains("set both"), "{e}");
    }
}
