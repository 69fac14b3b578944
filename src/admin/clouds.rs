//! `kiln config provider <google|docker|alicloud|tencentcloud|huaweicloud|oracle|azure> bakery
//! edit|show` and `… bakery base-image add|edit|delete|list`: the AWS commands' shape for the
//! other clouds, driven by one table per cloud ([`Cloud`]) instead of seven copies. Each cloud's
//! `bakery edit` flags are Rosco's keys in kebab case (as Halyard spells its flags); a secret flag
//! takes no value and reads the secret from the terminal without echo or from one line of stdin.
//! A set of flags is an [`Edit`]: key/value pairs of one YAML mapping, applied by [`apply`] both
//! here and to an account (`accounts`, which builds on this module).

use super::file::{ConfigFile, report, require_config};
use super::secret;
use super::view;
use super::yaml::{self, Changes};
use crate::config::{RegionalBaseImage, Settings};
use anyhow::bail;
use clap::{Args, Subcommand};
use serde_norway::{Mapping, Value};
use std::path::Path;

/// What differs between the clouds' admin commands.
pub struct Cloud {
    /// The config's top-level key and the CLI's provider name.
    pub name: &'static str,
    /// The cloud's own base-image keys the base-image flags may set (beside the common
    /// `shortDescription`, `packageType`, …).
    pub settings_keys: &'static [&'static str],
    /// Where those keys go.
    pub placement: Placement,
    /// `enabled` and the bakery defaults, secrets masked (for `show`).
    pub view: fn(&Settings) -> serde_json::Result<(bool, serde_json::Value)>,
    /// One line per base image (for `list`).
    pub images: fn(&Settings) -> Vec<String>,
    /// `<cloud>.accounts` as loaded, secrets masked (for `account list`); `None`: the cloud has
    /// no `account` commands.
    pub accounts: Option<fn(&Settings) -> serde_json::Result<serde_json::Value>>,
}

/// Where a cloud's own base-image keys live in a `baseImages` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the `baseImage` block itself (Azure: the marketplace image's publisher, offer, sku and
    /// version; there is no `virtualizationSettings`).
    Image,
    /// In one `virtualizationSettings` block (Google, Docker, Oracle).
    Block,
    /// In a `virtualizationSettings` list, one block per region (Alibaba, Tencent, Huawei).
    PerRegion,
}

pub const GOOGLE: Cloud = Cloud {
    name: "google",
    settings_keys: &["sourceImage", "sourceImageFamily"],
    placement: Placement::Block,
    view: |s| Ok((s.google.enabled, serde_json::to_value(s.google.defaults())?)),
    images: |s| {
        let images = s.google.defaults().base_images;
        images
            .iter()
            .map(|b| {
                let v = &b.virtualization_settings;
                let source = match (&v.source_image, &v.source_image_family) {
                    (Some(i), _) => i.clone(),
                    (None, Some(f)) => format!("family {f}"),
                    (None, None) => "(no source)".into(),
                };
                format!("{}: {source}", b.base_image.id)
            })
            .collect()
    },
    accounts: Some(|s| serde_json::to_value(&s.google.accounts)),
};
pub const DOCKER: Cloud = Cloud {
    name: "docker",
    settings_keys: &["sourceImage"],
    placement: Placement::Block,
    view: |s| {
        Ok((
            s.docker.enabled,
            serde_json::to_value(&s.docker.bakery_defaults)?,
        ))
    },
    images: |s| {
        let images = &s.docker.bakery_defaults.base_images;
        images
            .iter()
            .map(|b| {
                let source = b.virtualization_settings.source_image.as_deref();
                format!("{}: {}", b.base_image.id, source.unwrap_or("(no source)"))
            })
            .collect()
    },
    accounts: None,
};
pub const ALICLOUD: Cloud = Cloud {
    name: "alicloud",
    settings_keys: &["instanceType", "sourceImage", "sshUserName"],
    placement: Placement::PerRegion,
    view: |s| {
        Ok((
            s.alicloud.enabled,
            serde_json::to_value(&s.alicloud.bakery_defaults)?,
        ))
    },
    images: |s| regional(&s.alicloud.bakery_defaults.base_images, |v| &v.region),
    accounts: None,
};
pub const TENCENTCLOUD: Cloud = Cloud {
    name: "tencentcloud",
    settings_keys: &["zone", "instanceType", "sourceImageId", "sshUserName"],
    placement: Placement::PerRegion,
    view: |s| {
        Ok((
            s.tencentcloud.enabled,
            serde_json::to_value(&s.tencentcloud.bakery_defaults)?,
        ))
    },
    images: |s| regional(&s.tencentcloud.bakery_defaults.base_images, |v| &v.region),
    accounts: None,
};
pub const HUAWEICLOUD: Cloud = Cloud {
    name: "huaweicloud",
    settings_keys: &["eipType", "instanceType", "sourceImageId", "sshUserName"],
    placement: Placement::PerRegion,
    view: |s| {
        Ok((
            s.huaweicloud.enabled,
            serde_json::to_value(&s.huaweicloud.bakery_defaults)?,
        ))
    },
    images: |s| regional(&s.huaweicloud.bakery_defaults.base_images, |v| &v.region),
    accounts: None,
};
pub const ORACLE: Cloud = Cloud {
    name: "oracle",
    settings_keys: &["baseImageId", "sshUserName"],
    placement: Placement::Block,
    view: |s| {
        Ok((
            s.oracle.enabled,
            serde_json::to_value(&s.oracle.bakery_defaults)?,
        ))
    },
    images: |s| {
        let images = &s.oracle.bakery_defaults.base_images;
        images
            .iter()
            .map(|b| {
                let id = b.virtualization_settings.base_image_id.as_deref();
                format!("{}: {}", b.base_image.id, id.unwrap_or("(no baseImageId)"))
            })
            .collect()
    },
    accounts: Some(|s| serde_json::to_value(&s.oracle.accounts)),
};
/// Azure's marketplace image is in `baseImage` itself, beside the common keys (Rosco's
/// `AzureOperatingSystemSettings`).
pub const AZURE: Cloud = Cloud {
    name: "azure",
    settings_keys: &["publisher", "offer", "sku", "version"],
    placement: Placement::Image,
    view: |s| {
        Ok((
            s.azure.enabled,
            serde_json::to_value(&s.azure.bakery_defaults)?,
        ))
    },
    images: |s| {
        let images = &s.azure.bakery_defaults.base_images;
        images
            .iter()
            .map(|b| {
                let i = &b.base_image;
                let part = |p: &Option<String>| p.clone().unwrap_or_else(|| "?".into());
                let urn = [&i.publisher, &i.offer, &i.sku].map(part).join(":");
                format!("{}: {urn}", i.base.id)
            })
            .collect()
    },
    accounts: Some(|s| serde_json::to_value(&s.azure.accounts)),
};

/// `id: region, …` per base image.
fn regional<V>(images: &[RegionalBaseImage<V>], region: fn(&V) -> &String) -> Vec<String> {
    images
        .iter()
        .map(|b| {
            let regions: Vec<&str> = b
                .virtualization_settings
                .iter()
                .map(|v| region(v).as_str())
                .collect();
            match regions.is_empty() {
                true => format!("{}: (no regions)", b.base_image.id),
                false => format!("{}: {}", b.base_image.id, regions.join(", ")),
            }
        })
        .collect()
}

/// One cloud's commands; `E` is its `bakery edit` flags.
#[derive(Debug, Subcommand)]
pub enum CloudCommand<E: Args + Edit> {
    /// The bakery's settings (`<cloud>.bakeryDefaults`).
    #[command(subcommand)]
    Bakery(CloudBakeryCommand<E>),
}

#[derive(Debug, Subcommand)]
pub enum CloudBakeryCommand<E: Args + Edit> {
    /// Change the bakery defaults in the config file; an empty value removes a key.
    Edit(Box<E>),
    /// Print the effective bakery settings, secrets masked.
    Show,
    /// The base images bakes start from.
    #[command(subcommand)]
    BaseImage(CloudBaseImageCommand),
}

/// A set of flags as key/value pairs of one YAML mapping: a cloud's `bakery edit` flags
/// (`<cloud>.bakeryDefaults`) or its `account add|edit` flags (one of `<cloud>.accounts`).
pub trait Edit {
    const CLOUD: Cloud;
    /// String keys and their new values (empty removes).
    fn strings(&self) -> Vec<(&'static str, &Option<String>)>;
    fn bools(&self) -> Vec<(&'static str, Option<bool>)> {
        Vec::new()
    }
    fn numbers(&self) -> Vec<(&'static str, Option<i64>)> {
        Vec::new()
    }
    /// The secret key to read, with its prompt, when its flag was given.
    fn secret(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    /// The keys `--no-credentials` removes, when given.
    fn dropped(&self) -> &'static [&'static str] {
        &[]
    }
    /// The string keys whose value names a file kiln's Packer reads (a key file): it must exist
    /// and be readable; its absolute path is written.
    fn files(&self) -> &'static [&'static str] {
        &[]
    }
}

/// A flag's name from its key (`jsonPath` → `--json-path`), for messages.
fn flag(key: &str) -> String {
    let mut out = String::from("--");
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The new values of `args`' keys (`None` removes), checked before the file is opened.
pub(crate) fn values<E: Edit>(args: &E) -> anyhow::Result<Vec<(&'static str, Option<Value>)>> {
    let mut out = Vec::new();
    for (key, value) in args.strings() {
        let Some(v) = value else { continue };
        let mut new = yaml::string_value(v);
        if let Some(Value::String(p)) = &new
            && args.files().contains(&key)
        {
            new = Some(Value::String(readable_file(&flag(key), p)?));
        }
        out.push((key, new));
    }
    for (key, value) in args.bools() {
        out.extend(value.map(|b| (key, Some(Value::Bool(b)))));
    }
    for (key, value) in args.numbers() {
        out.extend(value.map(|n| (key, Some(Value::Number(n.into())))));
    }
    Ok(out)
}

/// `path`'s absolute form, when it names a regular file kiln can open. The file is opened and
/// closed, never read: a key file's contents stay out of kiln's output and the config.
fn readable_file(flag: &str, path: &str) -> anyhow::Result<String> {
    let absolute = std::path::absolute(path)
        .map_err(|e| anyhow::anyhow!("{flag} {path}: {e}; nothing was changed"))?;
    let checked = std::fs::metadata(&absolute).and_then(|m| {
        if !m.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        std::fs::File::open(&absolute).map(drop)
    });
    if let Err(e) = checked {
        bail!(
            "{flag} {path}: {e}; it must name an existing file kiln can read; nothing was changed"
        );
    }
    match absolute.to_str() {
        Some(p) => Ok(p.to_string()),
        None => bail!("{flag} {path}: the path is not UTF-8; nothing was changed"),
    }
}

/// Reads the secret of `args`' secret flag, when given.
pub(crate) fn read_secret<E: Edit>(args: &E) -> anyhow::Result<Option<(&'static str, String)>> {
    match args.secret() {
        Some((key, prompt)) => Ok(Some((key, secret::read(prompt)?))),
        None => Ok(None),
    }
}

/// Writes `values`, the secret and the dropped keys into `map`, recording the changes under
/// `at` (secrets only as `(set)`/`(removed)`).
pub(crate) fn apply(
    map: &mut Mapping,
    at: &str,
    values: Vec<(&'static str, Option<Value>)>,
    secret: Option<(&'static str, String)>,
    dropped: &[&str],
    changes: &mut Changes,
) {
    for (key, new) in values {
        changes.set(map, at, key, new);
    }
    if let Some((key, s)) = secret {
        let new = Value::String(s);
        let old = yaml::set(map, key, Some(new.clone()));
        changes.secret(&format!("{at}.{key}"), old, Some(&new));
    }
    for key in dropped {
        let old = yaml::set(map, key, None);
        changes.secret(&format!("{at}.{key}"), old, None);
    }
}

/// `google.bakeryDefaults` (Halyard's `hal config provider google bakery edit`; the accounts are
/// `account add|edit`'s).
#[derive(Debug, Args)]
pub struct GoogleEdit {
    /// The zone builder instances start in.
    #[arg(long)]
    zone: Option<String>,
    /// The network of the builder instance.
    #[arg(long)]
    network: Option<String>,
    /// A shared VPC's host project.
    #[arg(long, value_name = "PROJECT")]
    network_project_id: Option<String>,
    #[arg(long)]
    subnetwork: Option<String>,
    /// Whether Packer reaches the builder instance on its internal IP.
    #[arg(long, value_name = "true|false")]
    use_internal_ip: Option<bool>,
    /// The default Packer template (a file in configDir).
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
}

impl Edit for GoogleEdit {
    const CLOUD: Cloud = GOOGLE;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("zone", &self.zone),
            ("network", &self.network),
            ("networkProjectId", &self.network_project_id),
            ("subnetwork", &self.subnetwork),
            ("templateFile", &self.template_file),
        ]
    }
    fn bools(&self) -> Vec<(&'static str, Option<bool>)> {
        vec![("useInternalIp", self.use_internal_ip)]
    }
}

/// `docker.bakeryDefaults`.
#[derive(Debug, Args)]
pub struct DockerEdit {
    /// Where baked images are pushed.
    #[arg(long, value_name = "REGISTRY")]
    target_repository: Option<String>,
    /// The default Packer template (a file in configDir).
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
}

impl Edit for DockerEdit {
    const CLOUD: Cloud = DOCKER;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("targetRepository", &self.target_repository),
            ("templateFile", &self.template_file),
        ]
    }
}

/// `alicloud.bakeryDefaults`.
#[derive(Debug, Args)]
pub struct AlicloudEdit {
    /// The AccessKey id Packer uses (with --alicloud-secret-key).
    #[arg(long, value_name = "KEY", conflicts_with = "no_credentials")]
    alicloud_access_key: Option<String>,
    /// Read the AccessKey secret: without echo from a terminal, else one line of standard input.
    #[arg(long, conflicts_with = "no_credentials")]
    alicloud_secret_key: bool,
    /// The vSwitch of the builder instance.
    #[arg(long, value_name = "ID")]
    alicloud_v_switch_id: Option<String>,
    /// The VPC of the builder instance.
    #[arg(long, value_name = "ID")]
    alicloud_vpc_id: Option<String>,
    /// The default Packer template (a file in configDir).
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
    /// Drop the keys: the builder then uses ALICLOUD_* from kiln's environment or a RAM role.
    #[arg(long)]
    no_credentials: bool,
}

impl Edit for AlicloudEdit {
    const CLOUD: Cloud = ALICLOUD;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("alicloudAccessKey", &self.alicloud_access_key),
            ("alicloudVSwitchId", &self.alicloud_v_switch_id),
            ("alicloudVpcId", &self.alicloud_vpc_id),
            ("templateFile", &self.template_file),
        ]
    }
    fn secret(&self) -> Option<(&'static str, &'static str)> {
        self.alicloud_secret_key
            .then_some(("alicloudSecretKey", "Alibaba Cloud AccessKey secret: "))
    }
    fn dropped(&self) -> &'static [&'static str] {
        if self.no_credentials {
            &["alicloudAccessKey", "alicloudSecretKey"]
        } else {
            &[]
        }
    }
}

/// `tencentcloud.bakeryDefaults`.
#[derive(Debug, Args)]
pub struct TencentcloudEdit {
    /// The SecretId Packer uses (with --secret-key).
    #[arg(long, value_name = "ID", conflicts_with = "no_credentials")]
    secret_id: Option<String>,
    /// Read the SecretKey: without echo from a terminal, else one line of standard input.
    #[arg(long, conflicts_with = "no_credentials")]
    secret_key: bool,
    /// The subnet of the builder instance.
    #[arg(long, value_name = "ID")]
    subnet_id: Option<String>,
    /// The VPC of the builder instance.
    #[arg(long, value_name = "ID")]
    vpc_id: Option<String>,
    /// Whether the builder instance gets a public IP address.
    #[arg(long, value_name = "true|false")]
    associate_public_ip_address: Option<bool>,
    /// The default Packer template (a file in configDir).
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
    /// Drop the keys: the template then reads TENCENTCLOUD_* from kiln's environment.
    #[arg(long)]
    no_credentials: bool,
}

impl Edit for TencentcloudEdit {
    const CLOUD: Cloud = TENCENTCLOUD;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("secretId", &self.secret_id),
            ("subnetId", &self.subnet_id),
            ("vpcId", &self.vpc_id),
            ("templateFile", &self.template_file),
        ]
    }
    fn bools(&self) -> Vec<(&'static str, Option<bool>)> {
        vec![("associatePublicIpAddress", self.associate_public_ip_address)]
    }
    fn secret(&self) -> Option<(&'static str, &'static str)> {
        self.secret_key
            .then_some(("secretKey", "Tencent Cloud SecretKey: "))
    }
    fn dropped(&self) -> &'static [&'static str] {
        if self.no_credentials {
            &["secretId", "secretKey"]
        } else {
            &[]
        }
    }
}

/// `huaweicloud.bakeryDefaults`.
#[derive(Debug, Args)]
pub struct HuaweicloudEdit {
    /// The IAM endpoint (e.g. https://iam.cn-north-4.myhuaweicloud.com/v3).
    #[arg(long, value_name = "URL")]
    auth_url: Option<String>,
    /// The IAM user Packer signs in as.
    #[arg(long, value_name = "USER")]
    username: Option<String>,
    /// Read the user's password: without echo from a terminal, else one line of standard input.
    #[arg(long, conflicts_with = "no_credentials")]
    password: bool,
    /// The project (tenant) name.
    #[arg(long, value_name = "NAME")]
    project_name: Option<String>,
    /// The account (domain) name.
    #[arg(long, value_name = "NAME")]
    domain_name: Option<String>,
    /// Skip TLS verification of the endpoints.
    #[arg(long, value_name = "true|false")]
    insecure: Option<bool>,
    /// The VPC of the builder instance.
    #[arg(long, value_name = "ID")]
    vpc_id: Option<String>,
    /// The subnet of the builder instance.
    #[arg(long, value_name = "ID")]
    subnet_id: Option<String>,
    /// The security group of the builder instance.
    #[arg(long, value_name = "ID")]
    security_group: Option<String>,
    /// The EIP's bandwidth in Mbit/s (0 leaves it to the template).
    #[arg(long, value_name = "MBITS")]
    eip_bandwidth_size: Option<i64>,
    /// The default Packer template (a file in configDir).
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
    /// Drop the password: the template then reads HUAWEICLOUD_PASSWORD from kiln's environment.
    #[arg(long)]
    no_credentials: bool,
}

impl Edit for HuaweicloudEdit {
    const CLOUD: Cloud = HUAWEICLOUD;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("authUrl", &self.auth_url),
            ("username", &self.username),
            ("projectName", &self.project_name),
            ("domainName", &self.domain_name),
            ("vpcId", &self.vpc_id),
            ("subnetId", &self.subnet_id),
            ("securityGroup", &self.security_group),
            ("templateFile", &self.template_file),
        ]
    }
    fn bools(&self) -> Vec<(&'static str, Option<bool>)> {
        vec![("insecure", self.insecure)]
    }
    fn numbers(&self) -> Vec<(&'static str, Option<i64>)> {
        vec![("eipBandwidthSize", self.eip_bandwidth_size)]
    }
    fn secret(&self) -> Option<(&'static str, &'static str)> {
        self.password
            .then_some(("password", "Huawei Cloud password: "))
    }
    fn dropped(&self) -> &'static [&'static str] {
        if self.no_credentials {
            &["password"]
        } else {
            &[]
        }
    }
}

/// `oracle.bakeryDefaults` (the accounts are `account add|edit`'s).
#[derive(Debug, Args)]
pub struct OracleEdit {
    /// The availability domain builder instances start in.
    #[arg(long, value_name = "AD")]
    availability_domain: Option<String>,
    /// The subnet's OCID.
    #[arg(long, value_name = "OCID")]
    subnet_id: Option<String>,
    /// The builder instance's shape.
    #[arg(long, value_name = "SHAPE")]
    instance_shape: Option<String>,
    /// The default Packer template (a file in configDir).
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
}

impl Edit for OracleEdit {
    const CLOUD: Cloud = ORACLE;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("availabilityDomain", &self.availability_domain),
            ("subnetId", &self.subnet_id),
            ("instanceShape", &self.instance_shape),
            ("templateFile", &self.template_file),
        ]
    }
}

/// `azure.bakeryDefaults` (the marketplace images are `base-image`'s, the service principals
/// `account add|edit`'s).
#[derive(Debug, Args)]
pub struct AzureEdit {
    /// The default Packer template (a file in configDir).
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
}

impl Edit for AzureEdit {
    const CLOUD: Cloud = AZURE;
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![("templateFile", &self.template_file)]
    }
}

/// `kiln config provider <cloud> …`.
pub(crate) fn run<E: Args + Edit>(
    config: Option<&Path>,
    cmd: &CloudCommand<E>,
) -> anyhow::Result<()> {
    let CloudCommand::Bakery(b) = cmd;
    bakery(config, b)
}

/// `kiln config provider <cloud> bakery …`.
pub(crate) fn bakery<E: Args + Edit>(
    config: Option<&Path>,
    b: &CloudBakeryCommand<E>,
) -> anyhow::Result<()> {
    match b {
        CloudBakeryCommand::Edit(args) => edit(config, args.as_ref()),
        CloudBakeryCommand::Show => show(config, &E::CLOUD),
        CloudBakeryCommand::BaseImage(c) => base_image(config, &E::CLOUD, c),
    }
}

fn edit<E: Edit>(config: Option<&Path>, args: &E) -> anyhow::Result<()> {
    let cloud = E::CLOUD;
    let path = require_config(config)?;
    let values = values(args)?;
    let secret = read_secret(args)?;
    let at = format!("{}.bakeryDefaults", cloud.name);
    let mut file = ConfigFile::open(path)?;
    let mut changes = Changes::default();
    let top = yaml::child_map(&mut file.root, cloud.name);
    changes.set(top, cloud.name, "enabled", Some(Value::Bool(true)));
    let d = yaml::child_map(top, "bakeryDefaults");
    apply(d, &at, values, secret, args.dropped(), &mut changes);
    file.save()?;
    report(&file, &changes);
    Ok(())
}

/// The cloud's effective settings as `kiln serve` loads them, secrets masked.
fn show(config: Option<&Path>, cloud: &Cloud) -> anyhow::Result<()> {
    let loaded = crate::config::load(config)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let (enabled, defaults) = (cloud.view)(&loaded.settings)?;
    let shown = serde_json::json!({ cloud.name: {"enabled": enabled, "bakeryDefaults": defaults} });
    print!("{}", serde_norway::to_string(&view::without_nulls(shown))?);
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum CloudBaseImageCommand {
    /// Add a base image (refused when the id exists).
    Add {
        id: String,
        #[command(flatten)]
        fields: Box<CloudFields>,
    },
    /// Change a base image, and the settings of --region (added when absent).
    Edit {
        id: String,
        #[command(flatten)]
        fields: Box<CloudFields>,
    },
    /// Remove a base image.
    Delete { id: String },
    /// List the base images (with their regions).
    List,
}

/// The base-image flags of every cloud; a cloud refuses the settings flags it has no key for.
#[derive(Debug, Args)]
pub struct CloudFields {
    #[arg(long)]
    short_description: Option<String>,
    #[arg(long)]
    detailed_description: Option<String>,
    #[arg(long, value_parser = ["deb", "rpm", "nupkg", "DEB", "RPM", "NUPKG"])]
    package_type: Option<String>,
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
    #[arg(long)]
    os_type: Option<String>,
    #[arg(long, value_name = "REPO")]
    custom_repository: Option<String>,
    /// Google: the source is an image family (Deck says so).
    #[arg(long, value_name = "true|false")]
    is_image_family: Option<bool>,
    /// The region whose settings the flags below change (not Oracle's: its region is the
    /// account's; not Azure's: its location is the bake's).
    #[arg(long)]
    region: Option<String>,
    /// Alibaba, Tencent, Huawei: the builder instance's type (Huawei: its flavor).
    #[arg(long)]
    instance_type: Option<String>,
    /// Alibaba: the source image (an image id or a public image's name); Google: the image;
    /// Docker: the image bakes start from (`ubuntu:22.04`).
    #[arg(long, value_name = "IMAGE")]
    source_image: Option<String>,
    /// Google: the image family (the newest image of it).
    #[arg(long, value_name = "FAMILY")]
    source_image_family: Option<String>,
    /// Tencent, Huawei: the source image's id.
    #[arg(long, value_name = "ID")]
    source_image_id: Option<String>,
    /// Tencent: the availability zone.
    #[arg(long)]
    zone: Option<String>,
    /// Huawei: the EIP type (e.g. 5_bgp).
    #[arg(long)]
    eip_type: Option<String>,
    /// Oracle: the base image's OCID.
    #[arg(long, value_name = "OCID")]
    base_image_id: Option<String>,
    #[arg(long, value_name = "USER")]
    ssh_user_name: Option<String>,
    /// Azure: the marketplace image's publisher (e.g. Canonical).
    #[arg(long)]
    publisher: Option<String>,
    /// Azure: the marketplace image's offer (e.g. UbuntuServer).
    #[arg(long)]
    offer: Option<String>,
    /// Azure: the marketplace image's SKU (e.g. 18.04-LTS).
    #[arg(long)]
    sku: Option<String>,
    /// Azure: the marketplace image's version (`version`; e.g. latest).
    #[arg(long, value_name = "VERSION")]
    image_version: Option<String>,
}

impl CloudFields {
    /// The common `baseImage` keys: the two descriptions first, then the rest, so that a cloud
    /// whose own keys live in `baseImage` writes them between, in Rosco's order (`id`,
    /// descriptions, publisher…version, `osType`, `packageType`).
    fn image(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("shortDescription", &self.short_description),
            ("detailedDescription", &self.detailed_description),
            ("osType", &self.os_type),
            ("packageType", &self.package_type),
            ("templateFile", &self.template_file),
            ("customRepository", &self.custom_repository),
        ]
    }

    /// The settings flags given, refused when the cloud has no such key.
    fn settings(&self, cloud: &Cloud) -> anyhow::Result<Vec<(&'static str, &str)>> {
        let all = [
            ("instanceType", "--instance-type", &self.instance_type),
            ("sourceImage", "--source-image", &self.source_image),
            (
                "sourceImageFamily",
                "--source-image-family",
                &self.source_image_family,
            ),
            ("sourceImageId", "--source-image-id", &self.source_image_id),
            ("zone", "--zone", &self.zone),
            ("eipType", "--eip-type", &self.eip_type),
            ("baseImageId", "--base-image-id", &self.base_image_id),
            ("sshUserName", "--ssh-user-name", &self.ssh_user_name),
            ("publisher", "--publisher", &self.publisher),
            ("offer", "--offer", &self.offer),
            ("sku", "--sku", &self.sku),
            ("version", "--image-version", &self.image_version),
        ];
        let mut out = Vec::new();
        for (key, flag, value) in all {
            if let Some(v) = value {
                if !cloud.settings_keys.contains(&key) {
                    bail!("{flag} is not a {} base-image setting", cloud.name);
                }
                out.push((key, v.as_str()));
            }
        }
        Ok(out)
    }
}

fn base_image(
    config: Option<&Path>,
    cloud: &Cloud,
    cmd: &CloudBaseImageCommand,
) -> anyhow::Result<()> {
    match cmd {
        CloudBaseImageCommand::Add { id, fields } => edit_image(config, cloud, id, fields, true),
        CloudBaseImageCommand::Edit { id, fields } => edit_image(config, cloud, id, fields, false),
        CloudBaseImageCommand::Delete { id } => delete_image(config, cloud, id),
        CloudBaseImageCommand::List => list_images(config, cloud),
    }
}

fn find(images: &[Value], id: &str) -> Option<usize> {
    images.iter().position(|e| {
        let image = e.as_mapping().and_then(|m| yaml::get(m, "baseImage"));
        image
            .and_then(Value::as_mapping)
            .is_some_and(|i| yaml::text(yaml::get(i, "id")) == id)
    })
}

fn edit_image(
    config: Option<&Path>,
    cloud: &Cloud,
    id: &str,
    f: &CloudFields,
    add: bool,
) -> anyhow::Result<()> {
    let path = require_config(config)?;
    let settings = f.settings(cloud)?;
    let region = f.region.as_deref().map(str::trim).filter(|r| !r.is_empty());
    match (cloud.placement, region) {
        (Placement::PerRegion, None) if !settings.is_empty() => {
            bail!(
                "{} settings are per region: add --region REGION",
                cloud.name
            )
        }
        (Placement::Block | Placement::Image, Some(_)) => bail!(
            "{} base images have no region (the bake's or the account's is used): leave out --region",
            cloud.name
        ),
        _ => {}
    }
    if f.is_image_family.is_some() && cloud.name != GOOGLE.name {
        bail!("--is-image-family is a google base-image setting");
    }
    let name = cloud.name;
    let mut file = ConfigFile::open(path)?;
    let mut changes = Changes::default();
    let top = yaml::child_map(&mut file.root, name);
    let images = yaml::child_seq(yaml::child_map(top, "bakeryDefaults"), "baseImages");
    let at = format!("{name}.bakeryDefaults.baseImages[{id}]");
    let index = match (find(images, id), add) {
        (Some(_), true) => bail!(
            "base image '{id}' exists; use `kiln config provider {name} bakery base-image edit {id}`"
        ),
        (None, false) => bail!(
            "base image '{id}' does not exist; use `kiln config provider {name} bakery base-image add {id}`"
        ),
        (Some(i), false) => i,
        (None, true) => {
            let mut image = Mapping::new();
            image.insert("id".into(), Value::String(id.to_string()));
            let mut entry = Mapping::new();
            entry.insert("baseImage".into(), Value::Mapping(image));
            images.push(Value::Mapping(entry));
            changes.0.push(format!("{at}: added"));
            images.len() - 1
        }
    };
    let Some(entry) = images[index].as_mapping_mut() else {
        bail!("{at} is not a mapping; fix the file first");
    };
    let image = yaml::child_map(entry, "baseImage");
    let image_at = format!("{at}.baseImage");
    let fields = f.image();
    let (descriptions, rest) = fields.split_at(2);
    for (key, value) in descriptions {
        if let Some(v) = value {
            changes.set(image, &image_at, key, yaml::string_value(v));
        }
    }
    if cloud.placement == Placement::Image {
        for (key, value) in &settings {
            changes.set(image, &image_at, key, yaml::string_value(value));
        }
    }
    for (key, value) in rest {
        if let Some(v) = value {
            changes.set(image, &image_at, key, yaml::string_value(v));
        }
    }
    if let Some(family) = f.is_image_family {
        changes.set(image, &image_at, "isImageFamily", Some(Value::Bool(family)));
    }
    let block = match (cloud.placement, region) {
        (Placement::Image, _) => None,
        (_, Some(region)) => {
            let list = yaml::child_seq(entry, "virtualizationSettings");
            let found = list.iter().position(|s| {
                s.as_mapping()
                    .is_some_and(|m| yaml::text(yaml::get(m, "region")) == region)
            });
            let i = found.unwrap_or_else(|| {
                let mut s = Mapping::new();
                s.insert("region".into(), Value::String(region.to_string()));
                list.push(Value::Mapping(s));
                changes
                    .0
                    .push(format!("{at}.virtualizationSettings[{region}]: added"));
                list.len() - 1
            });
            let Some(block) = list[i].as_mapping_mut() else {
                bail!("{at}.virtualizationSettings[{region}] is not a mapping; fix the file first");
            };
            Some((block, format!("{at}.virtualizationSettings[{region}]")))
        }
        (_, None) => Some((
            yaml::child_map(entry, "virtualizationSettings"),
            format!("{at}.virtualizationSettings"),
        )),
    };
    if let Some((block, block_at)) = block {
        for (key, value) in settings {
            changes.set(block, &block_at, key, yaml::string_value(value));
        }
    }
    file.save()?;
    report(&file, &changes);
    Ok(())
}

fn delete_image(config: Option<&Path>, cloud: &Cloud, id: &str) -> anyhow::Result<()> {
    let path = require_config(config)?;
    let mut file = ConfigFile::open(path)?;
    let top = yaml::child_map(&mut file.root, cloud.name);
    let images = yaml::child_seq(yaml::child_map(top, "bakeryDefaults"), "baseImages");
    let Some(index) = find(images, id) else {
        bail!("base image '{id}' does not exist; nothing was changed");
    };
    images.remove(index);
    file.save()?;
    let changes = Changes(vec![format!(
        "{}.bakeryDefaults.baseImages[{id}]: removed",
        cloud.name
    )]);
    report(&file, &changes);
    Ok(())
}

/// Prints `id: region, …` per base image (Oracle: `id: <baseImageId>`), as `kiln serve` loads
/// them.
fn list_images(config: Option<&Path>, cloud: &Cloud) -> anyhow::Result<()> {
    let lines = (cloud.images)(&crate::config::load(config)?.settings);
    if lines.is_empty() {
        println!("no base images");
    }
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        f: CloudFields,
    }

    fn fields(args: &[&str]) -> CloudFields {
        Flags::parse_from(std::iter::once("kiln").chain(args.iter().copied())).f
    }

    fn file(yaml: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.yml");
        std::fs::write(&path, yaml).unwrap();
        (dir, path)
    }

    const ALL: [&Cloud; 7] = [
        &GOOGLE,
        &DOCKER,
        &ALICLOUD,
        &TENCENTCLOUD,
        &HUAWEICLOUD,
        &ORACLE,
        &AZURE,
    ];

    #[test]
    fn every_key_of_the_table_has_a_base_image_flag() {
        let everything = fields(&[
            "--instance-type=x",
            "--source-image=x",
            "--source-image-family=x",
            "--source-image-id=x",
            "--zone=x",
            "--eip-type=x",
            "--base-image-id=x",
            "--ssh-user-name=x",
            "--publisher=x",
            "--offer=x",
            "--sku=x",
            "--image-version=x",
        ]);
        for cloud in ALL {
            let e = everything.settings(cloud).unwrap_err().to_string();
            assert!(e.contains("is not a"), "{}: {e}", cloud.name);
        }
        let flagged: Vec<&str> = {
            let mut all = Vec::new();
            for cloud in ALL {
                for key in cloud.settings_keys {
                    let one = fields(&[&format!("{}=x", flag_of(key))]);
                    let got = one.settings(cloud).unwrap();
                    assert_eq!(got, vec![(*key, "x")], "{}", cloud.name);
                    all.push(*key);
                }
            }
            all
        };
        assert!(flagged.contains(&"version") && flagged.contains(&"sourceImageFamily"));
    }

    /// `version`'s flag is Halyard's `--image-version`; the others are the key in kebab case.
    fn flag_of(key: &str) -> String {
        match key {
            "version" => "--image-version".into(),
            k => flag(k),
        }
    }

    #[test]
    fn azures_image_keys_go_into_base_image_in_roscos_order_without_settings() {
        let (_d, path) = file("server:\n  port: 8087\n");
        let add = fields(&[
            "--short-description",
            "v18.04",
            "--publisher",
            "Canonical",
            "--offer",
            "UbuntuServer",
            "--sku",
            "18.04-LTS",
            "--image-version",
            "18.04.201804262",
            "--os-type",
            "Linux",
            "--package-type",
            "deb",
        ]);
        edit_image(Some(&path), &AZURE, "ubuntu-1804", &add, true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let image = "    - baseImage:\n        id: ubuntu-1804\n        shortDescription: v18.04\n        \
                     publisher: Canonical\n        offer: UbuntuServer\n        sku: 18.04-LTS\n        \
                     version: 18.04.201804262\n        osType: Linux\n        packageType: deb\n";
        assert!(text.contains(image), "{text}");
        assert!(!text.contains("virtualizationSettings"), "{text}");
        // An empty value removes a key; a region or another cloud's key is refused.
        let edit = fields(&["--image-version", "", "--sku", "20.04-LTS"]);
        edit_image(Some(&path), &AZURE, "ubuntu-1804", &edit, false).unwrap();
        let loaded = crate::config::load(Some(&path)).unwrap().settings;
        assert_eq!(
            (AZURE.images)(&loaded),
            vec!["ubuntu-1804: Canonical:UbuntuServer:20.04-LTS"]
        );
        let image = &loaded.azure.bakery_defaults.base_images[0].base_image;
        assert_eq!(image.version, None);
        for (args, message) in [
            (&["--region", "westeurope"][..], "leave out --region"),
            (&["--source-image", "x"], "--source-image is not a azure"),
            (&["--is-image-family", "true"], "google base-image setting"),
        ] {
            let e = edit_image(Some(&path), &AZURE, "ubuntu-1804", &fields(args), false);
            let e = e.unwrap_err().to_string();
            assert!(e.contains(message), "{e}");
        }
        // Azure's keys are not another cloud's.
        let publisher = fields(&["--publisher", "Canonical"]);
        let e = publisher.settings(&GOOGLE).unwrap_err().to_string();
        assert!(e.contains("--publisher is not a google"), "{e}");
    }

    #[derive(Debug, Args)]
    struct KeyFile {
        #[arg(long)]
        key_file_path: Option<String>,
        #[arg(long)]
        passphrase: bool,
    }

    impl Edit for KeyFile {
        const CLOUD: Cloud = ORACLE;
        fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
            vec![("keyFilePath", &self.key_file_path)]
        }
        fn files(&self) -> &'static [&'static str] {
            &["keyFilePath"]
        }
    }

    fn key_file(path: &str) -> KeyFile {
        KeyFile {
            key_file_path: Some(path.into()),
            passphrase: false,
        }
    }

    #[test]
    fn a_key_file_must_be_a_readable_file_and_is_written_absolute_and_unread() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        std::fs::write(&key, "{\"private_key\": \"do-not-copy\"}").unwrap();
        let got = values(&key_file(key.to_str().unwrap())).unwrap();
        assert_eq!(
            got,
            vec![(
                "keyFilePath",
                Some(Value::String(key.display().to_string()))
            )]
        );
        for bad in [
            dir.path().join("missing.json"),
            dir.path().to_path_buf(),
            std::path::PathBuf::from("/dev/null"),
        ] {
            let e = values(&key_file(bad.to_str().unwrap()))
                .unwrap_err()
                .to_string();
            assert!(e.contains("--key-file-path"), "{e}");
            assert!(e.contains("must name an existing file"), "{e}");
            assert!(!e.contains("do-not-copy"), "{e}");
        }
        // A relative path is made absolute (kiln may run from another folder); empty removes.
        let cwd = std::env::current_dir().unwrap();
        let got = values(&key_file("Cargo.toml")).unwrap();
        let absolute = cwd.join("Cargo.toml").display().to_string();
        assert_eq!(got, vec![("keyFilePath", Some(Value::String(absolute)))]);
        assert_eq!(values(&key_file(" ")).unwrap(), vec![("keyFilePath", None)]);
        assert_eq!(flag("sshPrivateKeyFilePath"), "--ssh-private-key-file-path");
        assert!(!key_file("x").passphrase);
    }

    #[test]
    fn apply_records_a_secret_only_as_set() {
        let mut map: Mapping = serde_norway::from_str("name: a\nclientId: old\n").unwrap();
        let mut changes = Changes::default();
        let values = vec![
            ("clientId", Some(Value::String("new".into()))),
            ("tenantId", None),
        ];
        let secret = Some(("appKey", "hush-42".to_string()));
        apply(
            &mut map,
            "azure.accounts[a]",
            values,
            secret,
            &[],
            &mut changes,
        );
        assert_eq!(
            changes.0,
            vec![
                "azure.accounts[a].clientId: old → new",
                "azure.accounts[a].appKey: (set)"
            ]
        );
        assert_eq!(yaml::text(yaml::get(&map, "appKey")), "hush-42");
    }
}
