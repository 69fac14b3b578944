//! The Packer command line for a recipe (Rosco's `packer build -color=false … -var k=v …
//! <configDir>/<template>`), plus `-machine-readable` so kiln reads results from stable lines
//! rather than prose. Secrets never go on the command line: credentials travel in the
//! environment and masked variables in a private var file, because any local user can read a
//! process's argv.

use crate::config::Settings;
use crate::providers::Prepared;
use std::path::{Path, PathBuf};

/// How to start Packer for one bake.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub argv: Vec<String>,
    /// Extra environment (credentials). Secret: never logged or stored.
    pub env: Vec<(String, String)>,
    /// The masked variables as a JSON var file, if any. Secret: written 0600 outside the data
    /// dir and removed when the run ends.
    pub secret_var_file: Option<(PathBuf, String)>,
}

impl Invocation {
    /// The command line as kiln shows and stores it. Nothing secret is on it; variables named in
    /// `masked` are masked anyway, as Rosco's log does.
    pub fn shown(&self, masked: &[String]) -> Vec<String> {
        self.argv
            .iter()
            .map(|arg| match arg.split_once('=') {
                Some((k, _)) if masked.iter().any(|m| m == k) => format!("{k}=******"),
                _ => arg.clone(),
            })
            .collect()
    }
}

/// Builds the invocation. `secret_dir` is where a masked-variable file would go.
pub fn build(p: &Prepared, settings: &Settings, secret_dir: &Path) -> Invocation {
    let mut argv = Vec::new();
    if p.run_as_root {
        argv.push("sudo".to_string());
        let names: Vec<&str> = p.env.iter().map(|(k, _)| k.as_str()).collect();
        if !names.is_empty() {
            argv.push(format!("--preserve-env={}", names.join(",")));
        }
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
    let secret_var_file = (!p.secret_variables.is_empty()).then(|| {
        let map: serde_json::Map<String, serde_json::Value> = p
            .secret_variables
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let path = secret_dir.join("secret-vars.json");
        argv.push(format!("-var-file={}", path.display()));
        (path, serde_json::Value::Object(map).to_string())
    });
    if let Some(f) = &p.var_file {
        argv.push(format!("-var-file={}", f.display()));
    }
    argv.push(p.template_path.display().to_string());
    Invocation {
        argv,
        env: p.env.clone(),
        secret_var_file,
    }
}
