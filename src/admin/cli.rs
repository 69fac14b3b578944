//! The admin command tree, Halyard's in kiln's words: `kiln config provider aws bakery …`,
//! `kiln config validate` and `kiln deploy apply`. Each command's flags live next to its logic;
//! this module only routes and turns errors into exit codes.

use super::accounts::{
    self, AzureAccountArgs, CloudWithAccountsCommand, GoogleAccountArgs, OracleAccountArgs,
};
use super::bakery::{self, EditArgs};
use super::base_image::{self, BaseImageCommand};
use super::clouds::{
    self, AlicloudEdit, AzureEdit, CloudCommand, DockerEdit, GoogleEdit, HuaweicloudEdit,
    OracleEdit, TencentcloudEdit,
};
use super::deploy::{self, ApplyArgs};
use super::validate;

use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// A cloud provider's settings.
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Check the config as start-up does, and `packer validate` every template it can select.
    Validate,
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Amazon Web Services.
    #[command(subcommand)]
    Aws(AwsCommand),
    /// Google Compute Engine (Rosco's `gce`).
    #[command(subcommand)]
    Google(CloudWithAccountsCommand<GoogleEdit, GoogleAccountArgs>),
    /// Docker images.
    #[command(subcommand)]
    Docker(CloudCommand<DockerEdit>),
    /// Alibaba Cloud.
    #[command(subcommand)]
    Alicloud(CloudCommand<AlicloudEdit>),
    /// Tencent Cloud.
    #[command(subcommand)]
    Tencentcloud(CloudCommand<TencentcloudEdit>),
    /// Huawei Cloud.
    #[command(subcommand)]
    Huaweicloud(CloudCommand<HuaweicloudEdit>),
    /// Oracle Cloud.
    #[command(subcommand)]
    Oracle(CloudWithAccountsCommand<OracleEdit, OracleAccountArgs>),
    /// Microsoft Azure.
    #[command(subcommand)]
    Azure(CloudWithAccountsCommand<AzureEdit, AzureAccountArgs>),
}

#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// The bakery's AWS settings (`aws.bakeryDefaults`).
    #[command(subcommand)]
    Bakery(BakeryCommand),
}

#[derive(Debug, Subcommand)]
pub enum BakeryCommand {
    /// Change the bakery defaults in the config file (Halyard's flags).
    Edit(Box<EditArgs>),
    /// Print the effective bakery settings, secrets masked.
    Show,
    /// The base images bakes start from.
    #[command(subcommand)]
    BaseImage(BaseImageCommand),
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Ask the running kiln to reload its config file (running bakes are untouched).
    Apply(ApplyArgs),
}

/// `kiln config …`.
pub fn run_config(config: Option<&Path>, cmd: &ConfigCommand) -> ExitCode {
    let result = match cmd {
        ConfigCommand::Validate => validate::run(config),
        ConfigCommand::Provider(ProviderCommand::Aws(AwsCommand::Bakery(b))) => match b {
            BakeryCommand::Edit(args) => bakery::edit(config, args).map(|()| true),
            BakeryCommand::Show => bakery::show(config).map(|()| true),
            BakeryCommand::BaseImage(c) => base_image::run(config, c).map(|()| true),
        },
        ConfigCommand::Provider(ProviderCommand::Google(c)) => {
            accounts::run_cloud(config, c).map(|()| true)
        }
        ConfigCommand::Provider(ProviderCommand::Docker(c)) => {
            clouds::run(config, c).map(|()| true)
        }
        ConfigCommand::Provider(ProviderCommand::Alicloud(c)) => {
            clouds::run(config, c).map(|()| true)
        }
        ConfigCommand::Provider(ProviderCommand::Tencentcloud(c)) => {
            clouds::run(config, c).map(|()| true)
        }
        ConfigCommand::Provider(ProviderCommand::Huaweicloud(c)) => {
            clouds::run(config, c).map(|()| true)
        }
        ConfigCommand::Provider(ProviderCommand::Oracle(c)) => {
            accounts::run_cloud(config, c).map(|()| true)
        }
        ConfigCommand::Provider(ProviderCommand::Azure(c)) => {
            accounts::run_cloud(config, c).map(|()| true)
        }
    };
    exit(result)
}

/// `kiln deploy …`.
pub fn run_deploy(config: Option<&Path>, cmd: &DeployCommand) -> ExitCode {
    match cmd {
        DeployCommand::Apply(args) => exit(deploy::apply(config, args)),
    }
}

fn exit(result: anyhow::Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kiln: {e:#}");
            ExitCode::FAILURE
        }
    }
}
