//! `kiln config validate`: what start-up checks (loading, placeholders, types, the cross-field
//! checks, the listen address, preparing configDir with the shipped files and `files:`), then
//! `packer validate` of every template the config can select: `bakeryDefaults.templateFile`,
//! each base image's `templateFile`, and every `*.json` / `*.pkr.hcl` in configDir.
//!
//! configDir is prepared in a scratch copy, so validating never changes what a running kiln
//! bakes with. The copy, and Packer's temp files, go to a folder of kiln's own temp folder
//! (`<dataDir>/tmp/validate-…`, see [`crate::runner::temp`]) that is removed afterwards: no
//! dependency on `$TMPDIR`, nothing left in it. Templates are validated with the variables kiln would pass for a bake of a base
//! image that selects them (a full check: e.g. a missing `sshUserName` fails here, not in a
//! bake), the bake's credentials in Packer's environment and its masked variables in an
//! in-memory var file, as a bake has them (Packer's messages are redacted of them); a template
//! needing a variable only a request can give falls back to `-syntax-only`.

use crate::builders::packer::command;
use crate::config::Settings;
use crate::providers::{RecipeContext, Vars, registry, resolve_in_config_dir};
use crate::runner::redact::Redactor;
use crate::runner::{SecretFile, temp};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Prints one line per check; `Ok(false)` when anything failed.
pub(crate) fn run(config: Option<&Path>) -> anyhow::Result<bool> {
    let shown = config.map_or("(none: the defaults)".into(), |p| p.display().to_string());
    let settings = match load(config) {
        Ok(s) => s,
        Err(e) => {
            println!("FAILED  config {shown}: {e:#}");
            return Ok(false);
        }
    };
    println!("OK      config {shown}");
    let staging = match Staging::prepare(&settings) {
        Ok(s) => s,
        Err(e) => {
            println!(
                "FAILED  configDir {}: {e:#}",
                settings.config_dir().display()
            );
            return Ok(false);
        }
    };
    let mut ok = true;
    for (name, why) in templates(&settings, &staging.config_dir()) {
        let (passed, line) = check(&settings, &staging, &name, why);
        ok &= passed;
        println!("{line}");
    }
    Ok(ok)
}

/// Loading as `kiln serve` does, and its further start-up checks.
fn load(config: Option<&Path>) -> anyhow::Result<Settings> {
    let loaded = crate::config::load(config)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let s = loaded.settings;
    s.server
        .address
        .parse::<std::net::IpAddr>()
        .with_context(|| format!("server.address '{}' is not an IP address", s.server.address))?;
    Ok(s)
}

/// A scratch folder holding a copy of configDir (`packer/`, with the shipped files and `files:`
/// installed) and Packer's temp folder (`tmp/`); removed on drop, with the folders above it
/// that it had to make (validating leaves no trace, not even an empty data dir).
struct Staging {
    scratch: Option<tempfile::TempDir>,
    /// Folders made for the scratch folder, deepest first.
    made: Vec<PathBuf>,
}

impl Staging {
    fn prepare(settings: &Settings) -> anyhow::Result<Staging> {
        let root = settings.data_dir().join("tmp");
        let made = root
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
            .map(Path::to_path_buf)
            .collect();
        let mut staging = Staging {
            scratch: None,
            made,
        };
        let scratch = crate::runner::temp::folder(&settings.data_dir(), temp::SCRATCH_PREFIX)
            .with_context(|| format!("cannot make a scratch folder in {}", root.display()))?;
        staging.scratch = Some(scratch);
        std::fs::create_dir(staging.packer_temp())?;
        temp::check_socket_room(&staging.packer_temp())?;
        let dir = staging.config_dir();
        let live = settings.config_dir();
        if live.is_dir() {
            copy_dir(&live, &dir).with_context(|| format!("cannot read {}", live.display()))?;
        }
        let mut copy = settings.clone();
        copy.rosco.config_dir = Some(dir);
        crate::templates::install(&copy)?;
        Ok(staging)
    }

    fn path(&self) -> &Path {
        self.scratch.as_ref().map_or(Path::new(""), |s| s.path())
    }

    fn config_dir(&self) -> PathBuf {
        self.path().join("packer")
    }

    fn packer_temp(&self) -> PathBuf {
        self.path().join("tmp")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        drop(self.scratch.take());
        for dir in &self.made {
            // Only an empty folder goes; a kiln that started meanwhile keeps its data dir.
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_dir() {
            copy_dir(&src, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Every template the config can select, with why it is checked; configured ones first.
fn templates(settings: &Settings, dir: &Path) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    let mut add = |name: &str, why| {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), why));
        }
    };
    for p in registry::enabled(settings) {
        for (name, why) in p.configured_templates(settings) {
            add(&name, why);
        }
    }
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && (n.ends_with(".json") || n.ends_with(".pkr.hcl")))
        .collect();
    found.sort();
    for name in found {
        add(&name, "in configDir");
    }
    out
}

/// Validates one template: `(passed, the line to print)`.
fn check(settings: &Settings, staging: &Staging, name: &str, why: &str) -> (bool, String) {
    let dir = &staging.config_dir();
    let path = match resolve_in_config_dir(dir, name, "template") {
        Ok(f) => f.path,
        Err(e) => return (false, format!("FAILED  {name} ({why}): {e}")),
    };
    if why == "in configDir" && !is_template(&path) {
        return (true, format!("SKIPPED {name}: no builders (a var file?)"));
    }
    let mut errors = Vec::new();
    for inputs in candidates(settings, dir, name, &path) {
        match packer_validate(settings, staging, &path, &inputs, false) {
            Ok(()) => return (true, format!("OK      {name}")),
            Err(e) => errors.push(e),
        }
    }
    // The likeliest recipe's error is the one to fix; a template that needs what only a request
    // gives gets a syntax check.
    match errors.into_iter().next().unwrap_or_default() {
        e if needs_request_values(&e) => {
            match packer_validate(settings, staging, &path, &Inputs::default(), true) {
                Ok(()) => (true, format!("OK      {name} (syntax only: {})", unset(&e))),
                Err(e) => (false, format!("FAILED  {name}: {e}")),
            }
        }
        e => match unknown_builder(&e) {
            Some(builder) => (
                false,
                format!(
                    "FAILED  {name}: Packer ({}) has no {builder} builder, so a bake with this template fails: point kiln.packerPath at a Packer that has it (with its plugin installed) ({e})",
                    settings.packer_path().display()
                ),
            ),
            None => (false, format!("FAILED  {name}: {e}")),
        },
    }
}

/// The builder Packer says it does not know (1.6: "Unknown builder x"; 1.7+: "The builder x is
/// unknown by Packer").
fn unknown_builder(error: &str) -> Option<&str> {
    let after = error
        .split_once("Unknown builder ")
        .or_else(|| error.split_once("The builder "))
        .map(|(_, rest)| rest)?;
    let name = after.split_whitespace().next()?;
    let name = name.trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
    (!name.is_empty() && (error.contains("Unknown builder") || error.contains("unknown by Packer")))
        .then_some(name)
}

/// A JSON file that parses and has no `builders` is a var file, not a template.
fn is_template(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "hcl") {
        return true;
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(m)) => m.contains_key("builders"),
        _ => true,
    }
}

/// `needs qemu_kernel, qemu_initrd at bake time`, from Packer's unset-variable errors.
fn unset(error: &str) -> String {
    let json = error
        .split("required variable not set: ")
        .skip(1)
        .filter_map(|r| r.split_whitespace().next());
    let hcl = error
        .split("Unset variable \"")
        .skip(1)
        .filter_map(|r| r.split('"').next());
    let names: Vec<&str> = json.chain(hcl).collect();
    format!("needs {} at bake time", names.join(", "))
}

fn needs_request_values(error: &str) -> bool {
    error.contains("required variable not set") || error.contains("Unset variable")
}

/// What a bake hands Packer: its variables on the command line, the credentials in its
/// environment and the masked variables in a var file (here too never on the command line).
#[derive(Default)]
struct Inputs {
    vars: Vars,
    env: Vars,
    masked: Vars,
}

/// What kiln would hand Packer for `name`, the likeliest first: the recipe of the provider whose
/// config selects it (alone: that is how it bakes); for a template no config selects, each
/// enabled provider's recipe, then representative variables of every provider (the first that
/// passes will do: a request may bake it with any of them). An HCL template gets only the
/// variables it declares (Packer refuses others; JSON templates ignore them).
fn candidates(settings: &Settings, dir: &Path, name: &str, path: &Path) -> Vec<Inputs> {
    let selects = |p: &&dyn crate::providers::Provider| {
        p.configured_templates(settings)
            .iter()
            .any(|(t, _)| t == name)
    };
    let (selecting, rest): (Vec<_>, Vec<_>) = registry::enabled(settings).partition(selects);
    let recipe = |p: &dyn crate::providers::Provider| recipe_inputs(settings, dir, name, p);
    let mut out: Vec<Inputs> = selecting.iter().filter_map(|p| recipe(*p)).collect();
    if out.is_empty() {
        out.extend(rest.iter().filter_map(|p| recipe(*p)));
        out.push(Inputs {
            vars: registry::all()
                .iter()
                .flat_map(|p| p.stand_in_variables(settings, dir))
                .collect(),
            ..Inputs::default()
        });
    }
    if path.to_string_lossy().ends_with(".pkr.hcl") {
        let declared = declared_variables(path);
        for inputs in &mut out {
            inputs.vars.retain(|(k, _)| declared.contains(k));
            inputs.masked.retain(|(k, _)| declared.contains(k));
        }
    }
    out
}

/// What provider `p` hands Packer baking a sample of its configured base images with `name`.
fn recipe_inputs(
    settings: &Settings,
    dir: &Path,
    name: &str,
    p: &dyn crate::providers::Provider,
) -> Option<Inputs> {
    let (req, region) = p.sample_request(settings, name)?;
    let ctx = RecipeContext {
        settings,
        config_dir: dir,
        region: &region,
        now_ms: crate::bake::now_ms(),
        images: &crate::services::source_images::NoLookup,
    };
    let plan = p.prepare(&req, &ctx).ok()?.plan;
    let mut vars = plan.variables;
    // What a run adds (GCE's artifact and manifest files), as representative values.
    for (k, v) in p.stand_in_variables(settings, dir) {
        if p.run_variables().contains(&k.as_str()) && !vars.iter().any(|(have, _)| *have == k) {
            vars.push((k, v));
        }
    }
    Some(Inputs {
        vars,
        env: plan.env,
        masked: plan.secret_variables,
    })
}

/// `variable "name" {` declarations of an HCL template.
fn declared_variables(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("variable"))
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
        .map(String::from)
        .collect()
}

/// `packer validate`, with the environment kiln gives every Packer (the bake's credentials
/// included) and its temp folder in the scratch folder, the masked variables in an in-memory var
/// file as a bake has them; the error is Packer's message on one line.
fn packer_validate(
    settings: &Settings,
    staging: &Staging,
    template: &Path,
    inputs: &Inputs,
    syntax_only: bool,
) -> Result<(), String> {
    let packer = settings.packer_path();
    let mut cmd = Command::new(&packer);
    cmd.arg("validate");
    if syntax_only {
        cmd.arg("-syntax-only");
    }
    for (k, v) in &inputs.vars {
        cmd.arg("-var").arg(format!("{k}={v}"));
    }
    // Kept open until Packer has read it (it opens the file through this process's /proc).
    let _masked = if inputs.masked.is_empty() {
        None
    } else {
        let map: serde_json::Map<String, serde_json::Value> = inputs
            .masked
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        let file = SecretFile::new(serde_json::Value::Object(map).to_string().as_bytes())
            .map_err(|e| format!("cannot hold the masked variables in memory: {e}"))?;
        let arg = file
            .argument(staging.path())
            .map_err(|e| format!("cannot link the masked variables' file: {e}"))?;
        cmd.arg(arg);
        Some(file)
    };
    let out = cmd
        .arg(template)
        .current_dir(staging.config_dir())
        .envs(command::packer_env(settings))
        .envs(inputs.env.iter().map(|(k, v)| (k, v)))
        .envs(temp::env(&staging.packer_temp()))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run packer ({}): {e}", packer.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Packer may quote a value it refuses: never a secret.
    let secrets = inputs
        .env
        .iter()
        .chain(&inputs.masked)
        .map(|(_, v)| v.clone());
    let text = Redactor::new(secrets).redact(&text).into_owned();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Err(lines.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_builder_is_named() {
        let e = "Error: Failed to initialize build 'huaweicloud-ecs': error initializing builder 'huaweicloud-ecs': Unknown builder huaweicloud-ecs";
        assert_eq!(unknown_builder(e), Some("huaweicloud-ecs"));
        let e = "Error: The builder huaweicloud-ecs is unknown by Packer, and is likely part of a plugin";
        assert_eq!(unknown_builder(e), Some("huaweicloud-ecs"));
        assert_eq!(
            unknown_builder("Error: 1 error occurred: * An image_sku must be specified"),
            None
        );
    }

    #[test]
    fn unset_variables_are_named() {
        let e = "Error: 2 errors occurred: * required variable not set: a * required variable not set: b";
        assert_eq!(unset(e), "needs a, b at bake time");
        assert_eq!(
            unset("Error: Unset variable \"c\" A used"),
            "needs c at bake time"
        );
    }

    #[test]
    fn hcl_variable_declarations_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pkr.hcl");
        let hcl = "variable \"aws_region\" {\n  type = string\n}\n  variable \"x\" {}\nlocals {}\n";
        std::fs::write(&path, hcl).unwrap();
        assert_eq!(declared_variables(&path), vec!["aws_region", "x"]);
    }
}
