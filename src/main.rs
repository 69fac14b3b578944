//! The `kiln` binary: parses the command line and hands off to the library.

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "A machine-image bakery, compatible with Spinnaker's Rosco"
)]
struct Cli {
    /// The configuration file (rosco.yml shape).
    #[arg(long, global = true, env = "KILN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the bakery's HTTP API.
    Serve {
        /// Port to listen on (overrides server.port).
        #[arg(long)]
        port: Option<u16>,
        /// Where bakes are stored (overrides kiln.dataDir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Edit and check the configuration (Halyard's `hal config`, for kiln).
    #[command(subcommand)]
    Config(kiln::admin::ConfigCommand),
    /// Apply the configuration to the running kiln (Halyard's `hal deploy`).
    #[command(subcommand)]
    Deploy(kiln::admin::DeployCommand),
    /// Bake an image on a running kiln and follow it to its end (prints the image id or path).
    Bake(Box<kiln::client::bake::BakeArgs>),
    /// Bakes on a running kiln: list, show, logs, cancel.
    #[command(subcommand)]
    Bakes(kiln::client::bakes::BakesCommand),
    /// Run retention on the running kiln now (kiln.retention) and say what it freed.
    Gc(kiln::client::bake::ServerArgs),
    /// Local base images for the qemu provider (`base-image build bookworm`).
    #[command(name = "base-image", subcommand)]
    BaseImage(kiln::images::BaseImageCommand),
    /// Internal: supervise one Packer run (started by `kiln serve`).
    #[command(name = "__supervise", hide = true)]
    Supervise { run_dir: PathBuf },
    /// Internal: one ebs-direct bake (run by the supervisor, as Packer is).
    #[command(name = "__ebs-direct", hide = true)]
    EbsDirect {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    // Before clap, whose error for `--aws-secret-key VALUE` would print the value.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Err(e) = kiln::admin::refuse_secret_on_command_line(&args, &Cli::command()) {
        eprintln!("kiln: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Supervise { run_dir } => kiln::runner::supervise(&run_dir),
        Command::EbsDirect { args } => kiln::builders::ebs_direct::main(&args),
        Command::BaseImage(c) => kiln::images::run_cli(cli.config.as_deref(), &c),
        Command::Config(c) => kiln::admin::run_config(cli.config.as_deref(), &c),
        Command::Deploy(c) => kiln::admin::run_deploy(cli.config.as_deref(), &c),
        Command::Bake(args) => kiln::client::bake::run(cli.config.as_deref(), &args),
        Command::Bakes(c) => kiln::client::bakes::run(cli.config.as_deref(), &c),
        Command::Gc(server) => match server
            .find(cli.config.as_deref())
            .and_then(|s| kiln::client::gc(&s))
        {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("kiln gc: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Serve { port, data_dir } => {
            kiln::telemetry::init();
            match kiln::startup::serve(cli.config.as_deref(), port, data_dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kiln: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
