//! `kiln config provider aws bakery edit|show`: Halyard's `hal config provider aws bakery edit`,
//! writing `aws.bakeryDefaults` in the config file kiln serves, and the effective settings as
//! `kiln serve` would load them, secrets masked.

use super::file::ConfigFile;
use super::file::{report, require_config};
use super::secret;
use super::view::{self, Secrets};
use super::yaml::{self, Changes};
use clap::Args;
use serde_norway::Value;
use std::path::Path;

/// Halyard's flags for `aws.bakeryDefaults`; an empty value removes a key.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The access key id Packer uses (with --aws-secret-key).
    #[arg(long, value_name = "KEY", conflicts_with = "no_credentials")]
    aws_access_key: Option<String>,
    /// Read the secret key: without echo from a terminal, else one line of standard input.
    #[arg(long, conflicts_with = "no_credentials")]
    aws_secret_key: bool,
    /// The default subnet of the builder instance.
    #[arg(long, visible_alias = "aws-subnet", value_name = "ID")]
    aws_subnet_id: Option<String>,
    /// The default VPC of the builder instance.
    #[arg(long, value_name = "ID")]
    aws_vpc_id: Option<String>,
    /// Whether the builder instance gets a public IP address.
    #[arg(long, value_name = "true|false")]
    aws_associate_public_ip_address: Option<bool>,
    /// The virtualization type when a request names none.
    #[arg(long, value_parser = ["pv", "hvm"])]
    default_virtualization_type: Option<String>,
    /// The default Packer template (a file in configDir).
    #[arg(long, value_name = "FILE")]
    template_file: Option<String>,
    /// The EC2 endpoint Packer talks to (VPC endpoints, emulators).
    #[arg(long, value_name = "URL")]
    aws_ec2_endpoint: Option<String>,
    /// Drop the keys: Packer then uses its default chain (instance role, IRSA, environment).
    #[arg(long)]
    no_credentials: bool,
}

const AT: &str = "aws.bakeryDefaults";

/// `bakery edit`: edits the file in place and prints what changed.
pub(crate) fn edit(config: Option<&Path>, args: &EditArgs) -> anyhow::Result<()> {
    let path = require_config(config)?;
    let secret = match args.aws_secret_key {
        true => Some(secret::read("AWS secret key: ")?),
        false => None,
    };
    let mut file = ConfigFile::open(path)?;
    let mut changes = Changes::default();
    let aws = yaml::child_map(&mut file.root, "aws");
    changes.set(aws, "aws", "enabled", Some(Value::Bool(true)));
    let d = yaml::child_map(aws, "bakeryDefaults");
    let strings = [
        ("awsAccessKey", &args.aws_access_key),
        ("awsSubnetId", &args.aws_subnet_id),
        ("awsVpcId", &args.aws_vpc_id),
        (
            "defaultVirtualizationType",
            &args.default_virtualization_type,
        ),
        ("templateFile", &args.template_file),
        ("awsEc2Endpoint", &args.aws_ec2_endpoint),
    ];
    for (name, value) in strings {
        if let Some(v) = value {
            changes.set(d, AT, name, yaml::string_value(v));
        }
    }
    if let Some(b) = args.aws_associate_public_ip_address {
        changes.set(d, AT, "awsAssociatePublicIpAddress", Some(Value::Bool(b)));
    }
    if let Some(s) = secret {
        let new = Value::String(s);
        let old = yaml::set(d, "awsSecretKey", Some(new.clone()));
        changes.secret(&format!("{AT}.awsSecretKey"), old, Some(&new));
    }
    if args.no_credentials {
        changes.set(d, AT, "awsAccessKey", None);
        let old = yaml::set(d, "awsSecretKey", None);
        changes.secret(&format!("{AT}.awsSecretKey"), old, None);
    }
    file.save()?;
    report(&file, &changes);
    Ok(())
}

/// `bakery show`: the effective bakery settings, secrets masked.
pub(crate) fn show(config: Option<&Path>) -> anyhow::Result<()> {
    let loaded = crate::config::load(config)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let aws = &loaded.settings.aws;
    let shown = serde_json::json!({"aws": {
        "enabled": aws.enabled,
        "bakeryDefaults": view::bakery_defaults(&aws.bakery_defaults, Secrets::Mask),
    }});
    print!("{}", serde_norway::to_string(&view::without_nulls(shown))?);
    Ok(())
}
