//! The Packer command line for a build plan (Rosco's `packer build -color=false … -var k=v …
//! <configDir>/<template>`), plus `-machine-readable` so kiln reads results from stable lines
//! rather than prose, and the environment every Packer kiln starts gets ([`packer_env`]).
//! Secrets never go on the command line, nor into a file: credentials travel in the
//! environment, and masked variables as a var file that exists only in the supervisor's memory
//! (see [`crate::runner::SecretVars`]), because any local user can read a process's argv.

use crate::builders::{BuildPlan, Launch, preserved_env};
use crate::config::Settings;
use crate::runner::RunSpec;
use std::path::PathBuf;

/// How the in-memory var file of masked variables shows in a displayed command line.
pub const SECRET_VAR_FILE_SHOWN: &str = "-var-file=<masked variables, in memory>";

/// How to start Packer for one bake.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub argv: Vec<String>,
    /// Extra environment (credentials). Secret: never logged or stored.
    pub env: Vec<(String, String)>,
    /// Extra environment that is no secret ([`packer_env`]).
    pub plain_env: Vec<(String, String)>,
    /// The masked variables (secret), and where in `argv` their var-file argument goes.
    pub secret_vars: Option<(usize, Vec<(String, String)>)>,
}

impl Invocation {
    /// The command line as kiln shows and stores it. Nothing secret is on it; variables named in
    /// `masked` are masked anyway, as Rosco's log does.
    pub fn shown(&self, masked: &[String]) -> Vec<String> {
        let mut shown: Vec<String> = self
            .argv
            .iter()
            .map(|arg| match arg.split_once('=') {
                Some((k, _)) if masked.iter().any(|m| m == k) => format!("{k}=******"),
                _ => arg.clone(),
            })
            .collect();
        if let Some((at, _)) = &self.secret_vars {
            shown.insert(*at, SECRET_VAR_FILE_SHOWN.into());
        }
        shown
    }
}

/// The environment kiln adds for every Packer it starts (bakes and `kiln config validate`):
/// `CHECKPOINT_DISABLE=1`, so Packer never phones home, unless the operator's config says
/// `packer.checkpointDisable: false`.
pub fn packer_env(settings: &Settings) -> Vec<(String, String)> {
    if settings.packer.checkpoint_disable == Some(false) {
        Vec::new()
    } else {
        vec![("CHECKPOINT_DISABLE".into(), "1".into())]
    }
}

/// Builds the invocation.
pub fn build(p: &BuildPlan, settings: &Settings) -> Invocation {
    let plain_env = packer_env(settings);
    let mut argv = Vec::new();
    if p.run_as_root {
        argv.push("sudo".to_string());
        // sudo resets the environment: keep what kiln sets, and Packer's temp folder.
        argv.push(format!(
            "--preserve-env={}",
            preserved_env(p, &plain_env).join(",")
        ));
    }
    argv.push(settings.packer_path().display().to_string());
    argv.extend(["build", "-color=false", "-machine-readable"].map(String::from));
    if settings.packer.timestamp {
        argv.push("-timestamp-ui".into());
    }
    argv.extend(settings.packer.additional_parameters.iter().cloned());
    for (k, v) in &p.variables {
        argv.push("-var".into());
        argv.push(format!("{k}={v}"));
    }
    let secret_vars =
        (!p.secret_variables.is_empty()).then(|| (argv.len(), p.secret_variables.clone()));
    if let Some(f) = &p.var_file {
        argv.push(format!("-var-file={}", f.display()));
    }
    argv.push(p.template.display().to_string());
    Invocation {
        argv,
        env: p.env.clone(),
        plain_env,
        secret_vars,
    }
}

/// Packer under the supervisor. Secrets reach it only through the supervisor's environment:
/// the credentials as Packer reads them, the masked variables under names of kiln's own, which
/// the supervisor turns into an in-memory var file.
pub fn launch(plan: &BuildPlan, settings: &Settings, temp_dir: Option<PathBuf>) -> Launch {
    let inv = build(plan, settings);
    // `build` puts the var file's argument where the masked variables' place is.
    let at = inv.secret_vars.as_ref().map_or(0, |(at, _)| *at);
    let (mut env, redact_env, secret_vars) = crate::builders::secret_env(plan, at);
    env.extend(inv.plain_env.iter().cloned());
    let spec = RunSpec {
        argv: inv.argv,
        cwd: Some(settings.config_dir()),
        redact_env,
        max_log_bytes: settings.max_log_bytes(),
        secret_vars,
        temp_dir,
    };
    Launch { spec, env }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Settings {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn packer_never_phones_home_unless_the_operator_allows_it() {
        let on = vec![("CHECKPOINT_DISABLE".to_string(), "1".to_string())];
        assert_eq!(packer_env(&settings("{}")), on);
        assert_eq!(
            packer_env(&settings("packer: {checkpointDisable: true}")),
            on
        );
        assert!(packer_env(&settings("packer: {checkpointDisable: false}")).is_empty());
    }

    fn prepared(run_as_root: bool) -> BuildPlan {
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        BuildPlan {
            template: "/cfg/t.json".into(),
            var_file: Some("/cfg/v.json".into()),
            variables: vec![pair("aws_region", "us-east-1")],
            secret_variables: vec![pair("api_token", "s3cr3t-TOKEN")],
            env: vec![pair("AWS_SECRET_ACCESS_KEY", "s3cr3t-KEY")],
            run_as_root,
            ..BuildPlan::default()
        }
    }

    #[test]
    fn secrets_stay_off_the_command_line_and_out_of_files() {
        let inv = build(&prepared(false), &settings("{}"));
        let line = inv.argv.join(" ");
        assert!(!line.contains("s3cr3t"), "{line}");
        assert!(!line.contains("-var-file=/") || line.contains("-var-file=/cfg/v.json"));
        let (at, vars) = inv.secret_vars.clone().expect("masked variables");
        assert_eq!(
            vars,
            vec![("api_token".to_string(), "s3cr3t-TOKEN".to_string())]
        );
        // The in-memory var file goes before the operator's var file, as the private file did.
        assert_eq!(inv.argv[at], "-var-file=/cfg/v.json");
        let shown = inv.shown(&["api_token".to_string()]);
        assert_eq!(shown[at], SECRET_VAR_FILE_SHOWN);
        assert_eq!(shown.last().unwrap(), "/cfg/t.json");
        assert_eq!(inv.plain_env, packer_env(&settings("{}")));
    }

    #[test]
    fn a_launch_carries_secrets_in_the_environment_only() {
        let launch = launch(&prepared(false), &settings("{}"), None);
        let spec = serde_json::to_string(&launch.spec).unwrap();
        assert!(!spec.contains("s3cr3t"), "{spec}");
        let env: Vec<&str> = launch.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            env,
            [
                "AWS_SECRET_ACCESS_KEY",
                "KILN_SECRET_VAR_0",
                "CHECKPOINT_DISABLE"
            ]
        );
        assert_eq!(
            launch.spec.redact_env,
            ["AWS_SECRET_ACCESS_KEY", "KILN_SECRET_VAR_0"]
        );
        let vars = launch.spec.secret_vars.unwrap().vars;
        assert_eq!(
            vars,
            [("api_token".to_string(), "KILN_SECRET_VAR_0".to_string())]
        );
    }

    #[test]
    fn sudo_keeps_the_environment_kiln_sets() {
        let inv = build(&prepared(true), &settings("{}"));
        assert_eq!(inv.argv[0], "sudo");
        assert_eq!(
            inv.argv[1],
            "--preserve-env=AWS_SECRET_ACCESS_KEY,CHECKPOINT_DISABLE,TMPDIR,PACKER_TMP_DIR"
        );
    }
}
