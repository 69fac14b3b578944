//! Live reload: the server re-reads the config file it was started with (keeping the command
//! line's `--port`/`--data-dir`), checks it as start-up does, prepares configDir, and swaps the
//! settings new bakes are prepared with. Running bakes are untouched: they hold their recipe.
//! On any failure the old settings stay active and the reason is answered.
//!
//! Some settings are fixed for the life of the process (the listener, the data dir, the store,
//! the number of bake slots): a change to one is reported as needing a restart and the running
//! value is kept. Changed keys are reported by path only; no value, secret or not, is shown.

use super::view::{self, Secrets};
use crate::bakery::Bakery;
use crate::config::{self, Settings};
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Settings (and sections) read once at start: the listener, the data dir, the store and its
/// connection, the heartbeat, the HTTP server's limits, the manifest route's time limit and
/// manifest bakes at once.
const FIXED: [&str; 8] = [
    "server",
    "kiln.dataDir",
    "kiln.store",
    "kiln.ha",
    "kiln.http",
    "redis",
    "kiln.manifests.timeout",
    "kiln.manifests.maxConcurrent",
];

fn is_fixed(path: &str) -> bool {
    FIXED
        .iter()
        .any(|f| path == *f || path.strip_prefix(f).is_some_and(|r| r.starts_with('.')))
}

/// What `kiln serve` was started with, to load it again.
#[derive(Debug)]
pub struct Reloader {
    config: Option<PathBuf>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    /// One reload at a time (HTTP and SIGHUP may race).
    busy: Mutex<()>,
}

/// The answer to a successful reload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reloaded {
    /// Key paths whose values changed and now apply to new bakes.
    pub changed: Vec<String>,
    /// Key paths that changed in the file but apply only after a restart.
    pub restart_needed: Vec<String>,
    pub warnings: Vec<String>,
    pub message: String,
}

impl Reloader {
    pub fn new(config: Option<PathBuf>, port: Option<u16>, data_dir: Option<PathBuf>) -> Self {
        Reloader {
            config,
            port,
            data_dir,
            busy: Mutex::new(()),
        }
    }

    /// Loads the settings as start-up does, with the command line's overrides.
    pub fn load(&self) -> anyhow::Result<(Settings, Vec<String>)> {
        let loaded = config::load(self.config.as_deref())?;
        let mut settings = loaded.settings;
        if let Some(p) = self.port {
            settings.server.port = p;
        }
        if let Some(d) = &self.data_dir {
            settings.kiln.data_dir = Some(d.clone());
        }
        Ok((settings, loaded.warnings))
    }

    /// Reloads into `bakery`; on error the old settings stay active. Blocking (file I/O).
    pub fn reload(&self, bakery: &Bakery) -> anyhow::Result<Reloaded> {
        let _one = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let (mut new, warnings) = self.load()?;
        new.server
            .address
            .parse::<std::net::IpAddr>()
            .with_context(|| {
                format!(
                    "server.address '{}' is not an IP address",
                    new.server.address
                )
            })?;
        let old = bakery.settings();
        let before = view::settings(&old, Secrets::Digest);
        let restart_needed: Vec<String> =
            view::changed_paths(&before, &view::settings(&new, Secrets::Digest))
                .into_iter()
                .filter(|p| is_fixed(p))
                .collect();
        keep_fixed(&mut new, &old);
        crate::templates::install(&new).context("cannot prepare configDir")?;
        let changed = changes(&old, &before, &new);
        bakery.replace_settings(new);
        let message = message(&changed, &restart_needed);
        Ok(Reloaded {
            changed,
            restart_needed,
            warnings,
            message,
        })
    }
}

/// The changed key paths, plus any section that changed in a way the view does not itemize.
fn changes(old: &Settings, before: &serde_json::Value, new: &Settings) -> Vec<String> {
    let mut changed = view::changed_paths(before, &view::settings(new, Secrets::Digest));
    for section in view::changed_sections(old, new) {
        let prefix = format!("{section}.");
        if !changed
            .iter()
            .any(|p| *p == section || p.starts_with(&prefix))
        {
            changed.push(section);
        }
    }
    changed
}

/// Keeps the running values of the settings a live reload can't change.
fn keep_fixed(new: &mut Settings, old: &Settings) {
    new.server = old.server.clone();
    new.kiln.data_dir = old.kiln.data_dir.clone();
    new.kiln.store = old.kiln.store.clone();
    new.kiln.ha = old.kiln.ha.clone();
    new.kiln.manifests.timeout = old.kiln.manifests.timeout;
    new.kiln.manifests.max_concurrent = old.kiln.manifests.max_concurrent;
    new.redis = old.redis.clone();
}

fn message(changed: &[String], restart_needed: &[String]) -> String {
    let mut m = match changed.len() {
        0 => "reloaded; no settings changed".to_string(),
        1 => "reloaded; 1 setting changed for new bakes".to_string(),
        n => format!("reloaded; {n} settings changed for new bakes"),
    };
    if !restart_needed.is_empty() {
        m.push_str(&format!(
            "; restart needed for: {}",
            restart_needed.join(", ")
        ));
    }
    m
}

/// Reloads on SIGHUP and logs the result. Registers the handler before returning, so a SIGHUP
/// sent once kiln announces its address never takes the default action (exit).
pub fn watch_sighup(reloader: Arc<Reloader>, bakery: Bakery) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let (r, b) = (reloader.clone(), bakery.clone());
            match tokio::task::spawn_blocking(move || r.reload(&b)).await {
                Ok(Ok(done)) => tracing::info!(
                    changed = ?done.changed,
                    restart_needed = ?done.restart_needed,
                    "SIGHUP: {}", done.message
                ),
                Ok(Err(e)) => {
                    tracing::warn!("SIGHUP: reload refused, the old config stays active: {e:#}")
                }
                Err(e) => tracing::error!("SIGHUP: reload failed: {e}"),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_settings_are_matched_by_section() {
        assert!(is_fixed("server.port") && is_fixed("redis.connection"));
        assert!(is_fixed("kiln.ha.heartbeat") && !is_fixed("kiln.jobs.maxConcurrent"));
        assert!(is_fixed("kiln.manifests.timeout") && !is_fixed("kiln.manifests.allowFileUrls"));
        assert!(is_fixed("kiln.http.maxConnections"));
        assert!(!is_fixed("serverless"));
    }

    #[test]
    fn the_message_names_what_needs_a_restart() {
        let m = message(&["a.b".into()], &["server.port".into()]);
        assert_eq!(
            m,
            "reloaded; 1 setting changed for new bakes; restart needed for: server.port"
        );
    }
}
