//! `kiln base-image …`: build and list the base images of the `qemu` provider.

use super::build::{BuildOptions, build_base_image};
use super::catalog::base_images;
use crate::config::{Settings, load};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The `base-image` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BaseImageCommand {
    /// Build a Debian base image (debootstrap, kernel, systemd, sshd) into
    /// <dataDir>/base-images/<SUITE>/; a no-op when it exists, unless --rebuild. Needs root.
    Build {
        /// The Debian suite, which is also the base image's id: bookworm, trixie.
        suite: String,
        /// Build again although the image exists.
        #[arg(long)]
        rebuild: bool,
        /// The Debian mirror (default: the one this machine's apt uses).
        #[arg(long)]
        mirror: Option<String>,
        /// The data dir (overrides kiln.dataDir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The root filesystem's size (sparse).
        #[arg(long, default_value = "4G")]
        disk_size: String,
    },
    /// List the base images the qemu provider offers (data dir and config).
    List {
        /// The data dir (overrides kiln.dataDir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Runs a `base-image` subcommand; exit 2 for what to fix first (root, tools, suite).
pub fn run_cli(config: Option<&Path>, cmd: &BaseImageCommand) -> ExitCode {
    let data_dir = match cmd {
        BaseImageCommand::Build { data_dir, .. } | BaseImageCommand::List { data_dir } => {
            data_dir.clone()
        }
    };
    let settings = match settings(config, data_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kiln: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match cmd {
        BaseImageCommand::Build {
            suite,
            rebuild,
            mirror,
            disk_size,
            ..
        } => {
            let opts = BuildOptions {
                data_dir: settings.data_dir(),
                suite: suite.clone(),
                mirror: mirror.clone(),
                rebuild: *rebuild,
                disk_size: disk_size.clone(),
                quiet: false,
            };
            match build_base_image(&opts) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kiln: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        BaseImageCommand::List { .. } => {
            for b in base_images(&settings) {
                let missing = b.missing_files();
                let state = if missing.is_empty() {
                    "ready".to_string()
                } else {
                    format!("missing {}", missing.join(", "))
                };
                println!("{}\t{:?}\t{}\t{state}", b.id, b.origin, b.disk.display());
            }
            ExitCode::SUCCESS
        }
    }
}

fn settings(config: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<Settings> {
    let loaded = load(config)?;
    let mut s = loaded.settings;
    if let Some(d) = data_dir {
        s.kiln.data_dir = Some(d);
    }
    Ok(s)
}
