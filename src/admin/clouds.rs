//! `kiln config provider google|docker bakery edit` and `… bakery base-image
//! add|edit|delete|list`: Halyard's commands for the clouds whose base images hold one
//! virtualization settings map (`<section>.bakeryDefaults.baseImages[].virtualizationSettings`).
//! The edits go through the same file handling as AWS's (no secret printed, no write through a
//! symlink, comments reported lost).

use super::file::{ConfigFile, report, require_config};
use super::yaml::{self, Changes};
use anyhow::bail;
use clap::{Args, Subcommand};
use serde_norway::{Mapping, Value};
use std::path::Path;

/// A flag's value for the file: `true`/`false` become booleans, an empty value removes the key.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Bool,
}

/// One cloud's key names.
struct Cloud {
    /// The config section (`google`, `docker`) and the CLI's name for it.
    section: &'static str,
    cli: &'static str,
}

const GOOGLE: Cloud = Cloud {
    section: "google",
    cli: "google",
};
const DOCKER: Cloud = Cloud {
    section: "docker",
    cli: "docker",
};

#[derive(Debug, Subcommand)]
pub enum GoogleCommand {
    /// The bakery's Google settings (`google.bakeryDefaults`).
    #[command(subcommand)]
    Bakery(GoogleBakery),
}

#[derive(Debug, Subcommand)]
pub enum GoogleBakery {
    /// Change the bakery defaults (Halyard's flags).
    Edit(GoogleBakeryArgs),
    /// The base images bakes start from.
    #[command(subcommand)]
    BaseImage(ImageCommand<GoogleImage>),
}

#[derive(Debug, Args)]
pub struct GoogleBakeryArgs {
    #[arg(long)]
    zone: Option<String>,
    #[arg(long)]
    network: Option<String>,
    #[arg(long, value_name = "PROJECT")]
    network_project_id: Option<String>,
    #[arg(long)]
    subnetwork: Option<String>,
    #[arg(long, value_parser = ["true", "false"])]
    use_internal_ip: Option<String>,
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DockerCommand {
    /// The bakery's Docker settings (`docker.bakeryDefaults`).
    #[command(subcommand)]
    Bakery(DockerBakery),
}

#[derive(Debug, Subcommand)]
pub enum DockerBakery {
    /// Change the bakery defaults.
    Edit(DockerBakeryArgs),
    /// The base images bakes start from.
    #[command(subcommand)]
    BaseImage(ImageCommand<DockerImage>),
}

#[derive(Debug, Args)]
pub struct DockerBakeryArgs {
    /// Where baked images are pushed.
    #[arg(long, value_name = "REGISTRY")]
    target_repository: Option<String>,
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand<F: Args> {
    /// Add a base image (refused when the id exists).
    Add {
        id: String,
        #[command(flatten)]
        fields: Box<F>,
    },
    /// Change a base image.
    Edit {
        id: String,
        #[command(flatten)]
        fields: Box<F>,
    },
    /// Remove a base image.
    Delete { id: String },
    /// List the base images.
    List,
}

/// The flags every base image has.
#[derive(Debug, Args)]
pub struct CommonImage {
    #[arg(long)]
    short_description: Option<String>,
    #[arg(long)]
    detailed_description: Option<String>,
    #[arg(long, value_parser = ["deb", "rpm", "nupkg", "DEB", "RPM", "NUPKG"])]
    package_type: Option<String>,
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
    #[arg(long, value_name = "REPO")]
    custom_repository: Option<String>,
}

impl CommonImage {
    fn keys(&self) -> Vec<(&'static str, &Option<String>, Kind)> {
        vec![
            ("shortDescription", &self.short_description, Kind::Text),
            (
                "detailedDescription",
                &self.detailed_description,
                Kind::Text,
            ),
            ("packageType", &self.package_type, Kind::Text),
            ("templateFile", &self.template_file, Kind::Text),
            ("customRepository", &self.custom_repository, Kind::Text),
        ]
    }
}

#[derive(Debug, Args)]
pub struct GoogleImage {
    #[command(flatten)]
    common: CommonImage,
    /// The source is an image family (Deck says so).
    #[arg(long, value_parser = ["true", "false"])]
    is_image_family: Option<String>,
    #[arg(long, value_name = "IMAGE")]
    source_image: Option<String>,
    #[arg(long, value_name = "FAMILY")]
    source_image_family: Option<String>,
}

#[derive(Debug, Args)]
pub struct DockerImage {
    #[command(flatten)]
    common: CommonImage,
    /// The image bakes start from (`ubuntu:22.04`).
    #[arg(long, value_name = "IMAGE")]
    source_image: Option<String>,
}

/// What a base-image command writes: the `baseImage` keys and the `virtualizationSettings` keys.
trait ImageFields {
    fn image(&self) -> Vec<(&'static str, &Option<String>, Kind)>;
    fn settings(&self) -> Vec<(&'static str, &Option<String>, Kind)>;
}

impl ImageFields for GoogleImage {
    fn image(&self) -> Vec<(&'static str, &Option<String>, Kind)> {
        let mut keys = self.common.keys();
        keys.push(("isImageFamily", &self.is_image_family, Kind::Bool));
        keys
    }
    fn settings(&self) -> Vec<(&'static str, &Option<String>, Kind)> {
        vec![
            ("sourceImage", &self.source_image, Kind::Text),
            ("sourceImageFamily", &self.source_image_family, Kind::Text),
        ]
    }
}

impl ImageFields for DockerImage {
    fn image(&self) -> Vec<(&'static str, &Option<String>, Kind)> {
        self.common.keys()
    }
    fn settings(&self) -> Vec<(&'static str, &Option<String>, Kind)> {
        vec![("sourceImage", &self.source_image, Kind::Text)]
    }
}

pub(crate) fn run_google(config: Option<&Path>, cmd: &GoogleCommand) -> anyhow::Result<()> {
    let GoogleCommand::Bakery(b) = cmd;
    match b {
        GoogleBakery::Edit(a) => edit_bakery(
            config,
            &GOOGLE,
            &[
                ("zone", &a.zone, Kind::Text),
                ("network", &a.network, Kind::Text),
                ("networkProjectId", &a.network_project_id, Kind::Text),
                ("subnetwork", &a.subnetwork, Kind::Text),
                ("useInternalIp", &a.use_internal_ip, Kind::Bool),
                ("templateFile", &a.template_file, Kind::Text),
            ],
        ),
        GoogleBakery::BaseImage(c) => run_images(config, &GOOGLE, c),
    }
}

pub(crate) fn run_docker(config: Option<&Path>, cmd: &DockerCommand) -> anyhow::Result<()> {
    let DockerCommand::Bakery(b) = cmd;
    match b {
        DockerBakery::Edit(a) => edit_bakery(
            config,
            &DOCKER,
            &[
                ("targetRepository", &a.target_repository, Kind::Text),
                ("templateFile", &a.template_file, Kind::Text),
            ],
        ),
        DockerBakery::BaseImage(c) => run_images(config, &DOCKER, c),
    }
}

fn value(v: &str, kind: Kind) -> Option<Value> {
    match kind {
        Kind::Bool => Some(Value::Bool(v == "true")),
        Kind::Text => yaml::string_value(v),
    }
}

fn set_all(
    map: &mut Mapping,
    at: &str,
    keys: &[(&'static str, &Option<String>, Kind)],
    changes: &mut Changes,
) {
    for (name, v, kind) in keys {
        if let Some(v) = v {
            changes.set(map, at, name, value(v, *kind));
        }
    }
}

fn edit_bakery(
    config: Option<&Path>,
    cloud: &Cloud,
    keys: &[(&'static str, &Option<String>, Kind)],
) -> anyhow::Result<()> {
    let path = require_config(config)?;
    let mut file = ConfigFile::open(path)?;
    let mut changes = Changes::default();
    let section = yaml::child_map(&mut file.root, cloud.section);
    changes.set(section, cloud.section, "enabled", Some(Value::Bool(true)));
    let d = yaml::child_map(section, "bakeryDefaults");
    set_all(
        d,
        &format!("{}.bakeryDefaults", cloud.section),
        keys,
        &mut changes,
    );
    file.save()?;
    report(&file, &changes);
    Ok(())
}

fn run_images<F: Args + ImageFields>(
    config: Option<&Path>,
    cloud: &Cloud,
    cmd: &ImageCommand<F>,
) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Add { id, fields } => edit_image(config, cloud, id, fields.as_ref(), true),
        ImageCommand::Edit { id, fields } => edit_image(config, cloud, id, fields.as_ref(), false),
        ImageCommand::Delete { id } => delete_image(config, cloud, id),
        ImageCommand::List => list_images(config, cloud),
    }
}

fn id_of(entry: &Value) -> Option<String> {
    let image = yaml::get(entry.as_mapping()?, "baseImage")?.as_mapping()?;
    Some(yaml::text(yaml::get(image, "id")))
}

fn images<'a>(root: &'a mut Mapping, cloud: &Cloud) -> &'a mut Vec<Value> {
    let section = yaml::child_map(root, cloud.section);
    yaml::child_seq(yaml::child_map(section, "bakeryDefaults"), "baseImages")
}

fn edit_image(
    config: Option<&Path>,
    cloud: &Cloud,
    id: &str,
    f: &dyn ImageFields,
    add: bool,
) -> anyhow::Result<()> {
    let path = require_config(config)?;
    let mut file = ConfigFile::open(path)?;
    let mut changes = Changes::default();
    let list = images(&mut file.root, cloud);
    let at = format!("{}.bakeryDefaults.baseImages[{id}]", cloud.section);
    let found = list.iter().position(|e| id_of(e).as_deref() == Some(id));
    let index = match (found, add) {
        (Some(_), true) => bail!(
            "base image '{id}' exists; use `kiln config provider {} bakery base-image edit {id}`",
            cloud.cli
        ),
        (None, false) => bail!(
            "base image '{id}' does not exist; use `kiln config provider {} bakery base-image add {id}`",
            cloud.cli
        ),
        (Some(i), false) => i,
        (None, true) => {
            let mut image = Mapping::new();
            image.insert("id".into(), Value::String(id.to_string()));
            let mut entry = Mapping::new();
            entry.insert("baseImage".into(), Value::Mapping(image));
            list.push(Value::Mapping(entry));
            changes.0.push(format!("{at}: added"));
            list.len() - 1
        }
    };
    let Some(entry) = list[index].as_mapping_mut() else {
        bail!("{at} is not a mapping; fix the file first");
    };
    let image = yaml::child_map(entry, "baseImage");
    set_all(image, &format!("{at}.baseImage"), &f.image(), &mut changes);
    let settings = yaml::child_map(entry, "virtualizationSettings");
    set_all(
        settings,
        &format!("{at}.virtualizationSettings"),
        &f.settings(),
        &mut changes,
    );
    file.save()?;
    report(&file, &changes);
    Ok(())
}

fn delete_image(config: Option<&Path>, cloud: &Cloud, id: &str) -> anyhow::Result<()> {
    let path = require_config(config)?;
    let mut file = ConfigFile::open(path)?;
    let list = images(&mut file.root, cloud);
    let Some(index) = list.iter().position(|e| id_of(e).as_deref() == Some(id)) else {
        bail!("base image '{id}' does not exist; nothing was changed");
    };
    list.remove(index);
    file.save()?;
    let at = format!("{}.bakeryDefaults.baseImages[{id}]: removed", cloud.section);
    report(&file, &Changes(vec![at]));
    Ok(())
}

/// Prints `id: source` per base image, as `kiln serve` would load them.
fn list_images(config: Option<&Path>, cloud: &Cloud) -> anyhow::Result<()> {
    let s = crate::config::load(config)?.settings;
    let rows: Vec<(String, String)> = match cloud.section {
        "google" => s
            .google
            .defaults()
            .base_images
            .iter()
            .map(|b| {
                let v = &b.virtualization_settings;
                let source = match (&v.source_image, &v.source_image_family) {
                    (Some(i), _) => i.clone(),
                    (None, Some(f)) => format!("family {f}"),
                    (None, None) => "(no source)".into(),
                };
                (b.base_image.id.clone(), source)
            })
            .collect(),
        _ => s
            .docker
            .bakery_defaults
            .base_images
            .iter()
            .map(|b| {
                let source = b.virtualization_settings.source_image.clone();
                (
                    b.base_image.id.clone(),
                    source.unwrap_or("(no source)".into()),
                )
            })
            .collect(),
    };
    if rows.is_empty() {
        println!("no base images");
    }
    for (id, source) in rows {
        println!("{id}: {source}");
    }
    Ok(())
}
