//! How an image is built. A recipe ends in a [`BuildPlan`]: which builder, the template and var
//! file, the variables (shown and masked) and the credentials. A builder turns a plan into the
//! process the runner supervises ([`launch`]) and the command line kiln shows ([`shown`]); the
//! bakery and the runner never see a builder's own argv conventions.
//!
//! Builders: [`packer`] (`packer build` of a template; the default) and [`ebs_direct`] (an AMI
//! written from kiln's own host through the EBS direct APIs, `kiln __ebs-direct`). Every builder's process
//! prints Packer's machine-readable lines ([`packer::output`]), so following, limits, logs and
//! results work alike for all of them.
//!
//! Invariant: secrets (the credentials and the masked variables) reach the builder's process
//! through the supervisor's environment and memory only, never its argv or a file.

pub mod ebs_direct;
pub mod packer;

use crate::config::Settings;
use crate::runner::{RunSpec, SecretVars, temp};
use std::path::PathBuf;

/// Name/value pairs in order (variables, environment).
pub type Vars = Vec<(String, String)>;

/// Which builder makes the image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Builder {
    /// `packer build` of the recipe's template.
    #[default]
    Packer,
    /// kiln's own AWS builder: the changed blocks of the base AMI's root snapshot, uploaded
    /// through the EBS direct APIs (no instance, no SSH).
    EbsDirect,
}

impl Builder {
    pub fn name(self) -> &'static str {
        match self {
            Builder::Packer => "packer",
            Builder::EbsDirect => "ebs-direct",
        }
    }
}

/// Everything a builder needs to make one image.
#[derive(Debug, Clone, Default)]
pub struct BuildPlan {
    pub builder: Builder,
    /// The template, inside configDir.
    pub template: PathBuf,
    /// The operator's var file, inside configDir, if the request names one.
    pub var_file: Option<PathBuf>,
    /// Variables that may be shown (they go on the builder's command line).
    pub variables: Vars,
    /// Variables named in `maskedPackerParameters`: handed over in memory only.
    pub secret_variables: Vars,
    /// Environment for the builder (credentials). Secret.
    pub env: Vars,
    /// Whether the template needs root (`templatesNeedingRoot`): the builder runs under sudo.
    pub run_as_root: bool,
    /// Set when the bake runs: builders that keep per-bake state or run kiln itself need it.
    pub run: Option<PlanRun>,
}

/// The run of a plan: the bake's id (ebs-direct names its work folder after it) and the `kiln`
/// executable (ebs-direct's process is `kiln __ebs-direct`).
#[derive(Debug, Clone, Default)]
pub struct PlanRun {
    pub bake_id: String,
    pub kiln_exe: PathBuf,
}

impl BuildPlan {
    /// A shown variable's value.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a shown variable (kiln's per-run values, such as a qemu bake's output folder).
    pub fn set_variable(&mut self, name: &str, value: String) {
        match self.variables.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.variables.push((name.to_string(), value)),
        }
    }
}

/// A plan made ready for the runner: the supervised process (`spec`, which holds no secret)
/// and the environment its supervisor is started with (secrets included).
#[derive(Debug, Clone)]
pub struct Launch {
    pub spec: RunSpec,
    pub env: Vars,
}

/// The secrets of `plan` as its supervisor gets them, whichever the builder: the credentials
/// under their own names, and each masked variable under a name of kiln's own
/// (`KILN_SECRET_VAR_<i>`), which the supervisor turns into an in-memory var file whose argument
/// goes to `argv[at]`. Returns that environment, the names whose values the log redacts, and
/// which Packer variable each of kiln's names holds.
pub(crate) fn secret_env(plan: &BuildPlan, at: usize) -> (Vars, Vec<String>, Option<SecretVars>) {
    let mut env: Vars = plan.env.clone();
    let mut redact_env: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
    let secret_vars = (!plan.secret_variables.is_empty()).then(|| {
        let vars = plan
            .secret_variables
            .iter()
            .enumerate()
            .map(|(i, (name, value))| {
                let var = format!("KILN_SECRET_VAR_{i}");
                env.push((var.clone(), value.clone()));
                redact_env.push(var.clone());
                (name.clone(), var)
            })
            .collect();
        SecretVars { at, vars }
    });
    (env, redact_env, secret_vars)
}

/// The process that builds `plan`, working in configDir with `temp_dir` as its temp folder.
pub fn launch(plan: &BuildPlan, settings: &Settings, temp_dir: Option<PathBuf>) -> Launch {
    match plan.builder {
        Builder::Packer => packer::command::launch(plan, settings, temp_dir),
        Builder::EbsDirect => ebs_direct::launch(plan, settings, temp_dir),
    }
}

/// The command line as kiln shows and stores it: nothing secret is on it, and the variables
/// named in `masked` are masked anyway, as Rosco's log does.
pub fn shown(plan: &BuildPlan, settings: &Settings, masked: &[String]) -> Vec<String> {
    match plan.builder {
        Builder::Packer => packer::command::build(plan, settings).shown(masked),
        Builder::EbsDirect => ebs_direct::shown(plan),
    }
}

/// The environment names a builder started through sudo must keep.
pub(crate) fn preserved_env<'a>(plan: &'a BuildPlan, plain: &'a Vars) -> Vec<&'a str> {
    plan.env
        .iter()
        .chain(plain)
        .map(|(k, _)| k.as_str())
        .chain(temp::ENV)
        .collect()
}
