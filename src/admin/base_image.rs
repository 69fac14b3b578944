//! `kiln config provider aws bakery base-image add|edit|delete|list`: Halyard's base-image
//! commands over `aws.bakeryDefaults.baseImages` in the config file kiln serves. A base image
//! holds per-region virtualization settings; `--region` (and `--virtualization-type`, default
//! hvm) selects the one the settings flags change.

use super::file::{ConfigFile, report, require_config};
use super::yaml::{self, Changes};
use anyhow::bail;
use clap::{Args, Subcommand};
use serde_norway::{Mapping, Value};
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum BaseImageCommand {
    /// Add a base image (refused when the id exists).
    Add {
        id: String,
        #[command(flatten)]
        fields: Box<Fields>,
    },
    /// Change a base image, and the settings of --region (added when absent).
    Edit {
        id: String,
        #[command(flatten)]
        fields: Box<Fields>,
    },
    /// Remove a base image.
    Delete { id: String },
    /// List the base images with their regions.
    List,
}

/// Halyard's base-image flags; an empty value removes a key.
#[derive(Debug, Args)]
pub struct Fields {
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
    /// The region whose virtualization settings the flags below change.
    #[arg(long)]
    region: Option<String>,
    /// With --region: which settings of that region (default hvm).
    #[arg(long, value_parser = ["pv", "hvm"])]
    virtualization_type: Option<String>,
    #[arg(long)]
    instance_type: Option<String>,
    #[arg(long, value_name = "AMI")]
    source_ami: Option<String>,
    #[arg(long, value_name = "USER")]
    ssh_user_name: Option<String>,
    #[arg(long, value_name = "USER")]
    win_rm_user_name: Option<String>,
    #[arg(long, value_name = "PRICE")]
    spot_price: Option<String>,
    #[arg(long, value_name = "PRODUCT")]
    spot_price_auto_product: Option<String>,
}

impl Fields {
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

    fn settings(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("instanceType", &self.instance_type),
            ("sourceAmi", &self.source_ami),
            ("sshUserName", &self.ssh_user_name),
            ("winRmUserName", &self.win_rm_user_name),
            ("spotPrice", &self.spot_price),
            ("spotPriceAutoProduct", &self.spot_price_auto_product),
        ]
    }

    /// The region and virtualization type the settings flags apply to, if any.
    fn target(&self) -> anyhow::Result<Option<(&str, &str)>> {
        let vt = self.virtualization_type.as_deref().unwrap_or("hvm");
        match self.region.as_deref() {
            Some(r) if !r.trim().is_empty() => Ok(Some((r.trim(), vt))),
            _ if self.settings().iter().any(|(_, v)| v.is_some()) => {
                bail!("virtualization settings are per region: add --region REGION")
            }
            _ => Ok(None),
        }
    }
}

pub(crate) fn run(config: Option<&Path>, cmd: &BaseImageCommand) -> anyhow::Result<()> {
    match cmd {
        BaseImageCommand::Add { id, fields } => edit(config, id, fields, true),
        BaseImageCommand::Edit { id, fields } => edit(config, id, fields, false),
        BaseImageCommand::Delete { id } => delete(config, id),
        BaseImageCommand::List => list(config),
    }
}

fn hint(id: &str) -> String {
    format!("use `kiln config provider aws bakery base-image edit {id}`")
}

fn id_of(entry: &Value) -> Option<String> {
    let image = yaml::get(entry.as_mapping()?, "baseImage")?.as_mapping()?;
    Some(yaml::text(yaml::get(image, "id")))
}

fn find(images: &[Value], id: &str) -> Option<usize> {
    images.iter().position(|e| id_of(e).as_deref() == Some(id))
}

/// The index of the settings for `region` and `vt` (an unset type is hvm).
fn find_settings(entry: &Mapping, region: &str, vt: &str) -> Option<usize> {
    let list = yaml::get(entry, "virtualizationSettings")?.as_sequence()?;
    list.iter().position(|s| {
        let Some(s) = s.as_mapping() else {
            return false;
        };
        let t = yaml::get(s, "virtualizationType").map_or("hvm".into(), |v| yaml::text(Some(v)));
        yaml::text(yaml::get(s, "region")) == region && t == vt
    })
}

fn edit(config: Option<&Path>, id: &str, f: &Fields, add: bool) -> anyhow::Result<()> {
    let path = require_config(config)?;
    let target = f.target()?;
    let mut file = ConfigFile::open(path)?;
    let mut changes = Changes::default();
    let aws = yaml::child_map(&mut file.root, "aws");
    let images = yaml::child_seq(yaml::child_map(aws, "bakeryDefaults"), "baseImages");
    let at = format!("aws.bakeryDefaults.baseImages[{id}]");
    let index = match (find(images, id), add) {
        (Some(i), true) => {
            if let Some((r, vt)) = target
                && images[i]
                    .as_mapping()
                    .is_some_and(|e| find_settings(e, r, vt).is_some())
            {
                bail!("base image '{id}' has settings for {r}/{vt}; {}", hint(id));
            }
            bail!("base image '{id}' exists; {}", hint(id));
        }
        (None, false) => bail!(
            "base image '{id}' does not exist; use `kiln config provider aws bakery base-image add {id}`"
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
    for (name, value) in f.image() {
        if let Some(v) = value {
            changes.set(
                image,
                &format!("{at}.baseImage"),
                name,
                yaml::string_value(v),
            );
        }
    }
    if let Some((region, vt)) = target {
        edit_settings(entry, &at, region, vt, f, &mut changes);
    }
    file.save()?;
    report(&file, &changes);
    Ok(())
}

/// Changes (adding when absent) the settings of `region`/`vt` in one base image.
fn edit_settings(
    entry: &mut Mapping,
    at: &str,
    region: &str,
    vt: &str,
    f: &Fields,
    changes: &mut Changes,
) {
    let at = format!("{at}.virtualizationSettings[{region}/{vt}]");
    let index = find_settings(entry, region, vt);
    let list = yaml::child_seq(entry, "virtualizationSettings");
    let index = index.unwrap_or_else(|| {
        let mut s = Mapping::new();
        s.insert("region".into(), Value::String(region.to_string()));
        s.insert("virtualizationType".into(), Value::String(vt.to_string()));
        list.push(Value::Mapping(s));
        changes.0.push(format!("{at}: added"));
        list.len() - 1
    });
    let Some(settings) = list[index].as_mapping_mut() else {
        return;
    };
    for (name, value) in f.settings() {
        if let Some(v) = value {
            changes.set(settings, &at, name, yaml::string_value(v));
        }
    }
}

fn delete(config: Option<&Path>, id: &str) -> anyhow::Result<()> {
    let path = require_config(config)?;
    let mut file = ConfigFile::open(path)?;
    let aws = yaml::child_map(&mut file.root, "aws");
    let images = yaml::child_seq(yaml::child_map(aws, "bakeryDefaults"), "baseImages");
    let Some(index) = find(images, id) else {
        bail!("base image '{id}' does not exist; nothing was changed");
    };
    images.remove(index);
    file.save()?;
    let changes = Changes(vec![format!(
        "aws.bakeryDefaults.baseImages[{id}]: removed"
    )]);
    report(&file, &changes);
    Ok(())
}

/// Prints `id: region (type), …` per base image, as `kiln serve` would load them.
fn list(config: Option<&Path>) -> anyhow::Result<()> {
    let loaded = crate::config::load(config)?;
    let images = &loaded.settings.aws.bakery_defaults.base_images;
    if images.is_empty() {
        println!("no base images");
    }
    for img in images {
        let regions: Vec<String> = img
            .virtualization_settings
            .iter()
            .map(|s| {
                let vt = s.virtualization_type.as_deref().unwrap_or("hvm");
                format!("{} ({vt})", s.region)
            })
            .collect();
        let regions = match regions.is_empty() {
            true => "(no regions)".to_string(),
            false => regions.join(", "),
        };
        println!("{}: {regions}", img.base_image.id);
    }
    Ok(())
}
