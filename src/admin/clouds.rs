//! `kiln config provider <google|docker|alicloud|tencentcloud|huaweicloud|oracle> bakery
//! edit|show` and `… bakery base-image add|edit|delete|list`: the AWS commands' shape for the
//! other clouds, driven by one table per cloud ([`Cloud`]) instead of six copies. Each cloud's `bakery edit`
//! flags are Rosco's keys in kebab case (as Halyard spells its flags); a secret flag takes no
//! value and reads the secret from the terminal without echo or from one line of stdin.

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
    /// The keys of a base image's virtualization settings the base-image flags may set.
    pub settings_keys: &'static [&'static str],
    /// Whether settings are a list per region (Oracle has one block per base image).
    pub per_region: bool,
    /// `enabled` and the bakery defaults, secrets masked (for `show`).
    pub view: fn(&Settings) -> serde_json::Result<(bool, serde_json::Value)>,
    /// One line per base image (for `list`).
    pub images: fn(&Settings) -> Vec<String>,
}

pub const GOOGLE: Cloud = Cloud {
    name: "google",
    settings_keys: &["sourceImage", "sourceImageFamily"],
    per_region: false,
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
};
pub const DOCKER: Cloud = Cloud {
    name: "docker",
    settings_keys: &["sourceImage"],
    per_region: false,
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
};
pub const ALICLOUD: Cloud = Cloud {
    name: "alicloud",
    settings_keys: &["instanceType", "sourceImage", "sshUserName"],
    per_region: true,
    view: |s| {
        Ok((
            s.alicloud.enabled,
            serde_json::to_value(&s.alicloud.bakery_defaults)?,
        ))
    },
    images: |s| regional(&s.alicloud.bakery_defaults.base_images, |v| &v.region),
};
pub const TENCENTCLOUD: Cloud = Cloud {
    name: "tencentcloud",
    settings_keys: &["zone", "instanceType", "sourceImageId", "sshUserName"],
    per_region: true,
    view: |s| {
        Ok((
            s.tencentcloud.enabled,
            serde_json::to_value(&s.tencentcloud.bakery_defaults)?,
        ))
    },
    images: |s| regional(&s.tencentcloud.bakery_defaults.base_images, |v| &v.region),
};
pub const HUAWEICLOUD: Cloud = Cloud {
    name: "huaweicloud",
    settings_keys: &["eipType", "instanceType", "sourceImageId", "sshUserName"],
    per_region: true,
    view: |s| {
        Ok((
            s.huaweicloud.enabled,
            serde_json::to_value(&s.huaweicloud.bakery_defaults)?,
        ))
    },
    images: |s| regional(&s.huaweicloud.bakery_defaults.base_images, |v| &v.region),
};
pub const ORACLE: Cloud = Cloud {
    name: "oracle",
    settings_keys: &["baseImageId", "sshUserName"],
    per_region: false,
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

/// A cloud's `bakery edit` flags, as key/value pairs of `<cloud>.bakeryDefaults`.
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
}

/// `google.bakeryDefaults` (Halyard's `hal config provider google bakery edit`; the accounts,
/// with their key files, are Clouddriver's `google.accounts`: edit them in the file).
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

/// `oracle.bakeryDefaults` (the accounts, with their key passphrases, are Clouddriver's
/// `oracle.accounts`: edit them in the file).
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

/// `kiln config provider <cloud> …`.
pub(crate) fn run<E: Args + Edit>(
    config: Option<&Path>,
    cmd: &CloudCommand<E>,
) -> anyhow::Result<()> {
    let CloudCommand::Bakery(b) = cmd;
    match b {
        CloudBakeryCommand::Edit(args) => edit(config, args.as_ref()),
        CloudBakeryCommand::Show => show(config, &E::CLOUD),
        CloudBakeryCommand::BaseImage(c) => base_image(config, &E::CLOUD, c),
    }
}

fn edit<E: Edit>(config: Option<&Path>, args: &E) -> anyhow::Result<()> {
    let cloud = E::CLOUD;
    let path = require_config(config)?;
    let secret = match args.secret() {
        Some((key, prompt)) => Some((key, secret::read(prompt)?)),
        None => None,
    };
    let at = format!("{}.bakeryDefaults", cloud.name);
    let mut file = ConfigFile::open(path)?;
    let mut changes = Changes::default();
    let top = yaml::child_map(&mut file.root, cloud.name);
    changes.set(top, cloud.name, "enabled", Some(Value::Bool(true)));
    let d = yaml::child_map(top, "bakeryDefaults");
    for (name, value) in args.strings() {
        if let Some(v) = value {
            changes.set(d, &at, name, yaml::string_value(v));
        }
    }
    for (name, value) in args.bools() {
        if let Some(b) = value {
            changes.set(d, &at, name, Some(Value::Bool(b)));
        }
    }
    for (name, value) in args.numbers() {
        if let Some(n) = value {
            changes.set(d, &at, name, Some(Value::Number(n.into())));
        }
    }
    if let Some((key, s)) = secret {
        let new = Value::String(s);
        let old = yaml::set(d, key, Some(new.clone()));
        changes.secret(&format!("{at}.{key}"), old, Some(&new));
    }
    for key in args.dropped() {
        let old = yaml::set(d, key, None);
        changes.secret(&format!("{at}.{key}"), old, None);
    }
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
    /// account's).
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
}

impl CloudFields {
    fn image(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("shortDescription", &self.short_description),
            ("detailedDescription", &self.detailed_description),
            ("packageType", &self.package_type),
            ("templateFile", &self.template_file),
            ("osType", &self.os_type),
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
    match (cloud.per_region, region) {
        (true, None) if !settings.is_empty() => {
            bail!(
                "{} settings are per region: add --region REGION",
                cloud.name
            )
        }
        (false, Some(_)) => bail!(
            "{} base images have no region (the bake's or the account's is used): leave out --region",
            cloud.name
        ),
        _ => {}
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
    for (key, value) in f.image() {
        if let Some(v) = value {
            changes.set(
                image,
                &format!("{at}.baseImage"),
                key,
                yaml::string_value(v),
            );
        }
    }
    if let Some(family) = f.is_image_family {
        if cloud.name != GOOGLE.name {
            bail!("--is-image-family is a google base-image setting");
        }
        let at = format!("{at}.baseImage");
        changes.set(image, &at, "isImageFamily", Some(Value::Bool(family)));
    }
    let (block, block_at) = match region {
        Some(region) => {
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
            (block, format!("{at}.virtualizationSettings[{region}]"))
        }
        None => (
            yaml::child_map(entry, "virtualizationSettings"),
            format!("{at}.virtualizationSettings"),
        ),
    };
    for (key, value) in settings {
        changes.set(block, &block_at, key, yaml::string_value(value));
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
