//! Building and running the server: load the config once, open the store, install the shipped
//! templates, bind (the listener is passed in, so tests bind port 0 without a race), recover
//! unfinished bakes, then serve until SIGINT/SIGTERM.
//!
//! A graceful stop stops taking requests and leaves running bakes to their supervisors: Packer
//! keeps baking, and the next start re-attaches each run and settles it. Waiting for bakes
//! instead could hold a deploy for an hour, and killing them would leak cloud resources. The
//! stop has a deadline: open connections and live log streams get `api::server::SHUTDOWN_GRACE`,
//! then kiln exits whatever its clients do.

use crate::admin::Reloader;
use crate::bakery::Bakery;
use crate::config::{self, Settings};
use crate::templates;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `kiln serve`: runs until SIGINT or SIGTERM.
pub fn serve(
    config_file: Option<&Path>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    // Remembered for reloads (`kiln deploy apply`, SIGHUP), with the command line's overrides.
    let reloader = Arc::new(Reloader::new(
        config_file.map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())),
        port,
        data_dir.clone(),
    ));
    let loaded = config::load(config_file)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let mut settings = loaded.settings;
    if let Some(p) = port {
        settings.server.port = p;
    }
    if let Some(d) = data_dir {
        settings.kiln.data_dir = Some(d);
    }
    let open_files = crate::api::server::raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async move {
        let addr: SocketAddr = format!("{}:{}", settings.server.address, settings.server.port)
            .parse()
            .with_context(|| {
                format!(
                    "server.address '{}' is not an IP address",
                    settings.server.address
                )
            })?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let data_dir = settings.data_dir();
        let app = Application::build(settings, listener)?
            .with_reloader(reloader.clone())
            .with_open_files(open_files);
        crate::admin::reload::watch_sighup(reloader, app.bakery().clone())?;
        // Where a client (or a test that asked for port 0) finds this server.
        let bound = app.listener.local_addr()?;
        // Written whole or not at all (temp file + rename): a reader never sees half an address.
        // Not fatal: on a full data dir kiln still serves reads, and /health says why.
        let addr_file = data_dir.join("kiln.addr");
        let tmp = data_dir.join(".kiln.addr.tmp");
        if let Err(e) = std::fs::write(&tmp, bound.to_string())
            .and_then(|()| std::fs::rename(&tmp, &addr_file))
        {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %addr_file.display(), error = %e,
                "cannot write kiln.addr; `kiln deploy apply` then finds kiln by server.address and --port");
        }
        app.run_until_stopped(shutdown_signal()).await
    });
    // Work still on the runtime (a blocking store call, a log tail) must not hold the exit:
    // every bake it serves is re-attached and settled by the next start.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}

pub struct Application {
    listener: TcpListener,
    bakery: Bakery,
    reloader: Option<Arc<Reloader>>,
    /// The open-files limit in force, which bounds `kiln.http.maxConnections`.
    open_files: u64,
}

impl Application {
    /// Opens the store, installs templates and recovers unfinished bakes. Needs a runtime.
    pub fn build(settings: Settings, listener: TcpListener) -> anyhow::Result<Application> {
        let kiln_exe = std::env::current_exe().context("cannot find kiln's own executable")?;
        Self::build_with_exe(settings, listener, kiln_exe)
    }

    /// [`Application::build`] with the `kiln` executable that supervises Packer runs given
    /// (`kiln __supervise`): in-process tests run from a test binary, not from `kiln`.
    pub fn build_with_exe(
        settings: Settings,
        listener: TcpListener,
        kiln_exe: std::path::PathBuf,
    ) -> anyhow::Result<Application> {
        let data_dir = settings.data_dir();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
        // `kiln.store`: SQLite in the data dir, or a Redis shared with other instances.
        let store = crate::store::open(&settings).context("cannot open the bake store")?;
        Self::build_with_store(settings, listener, kiln_exe, store)
    }

    /// [`Application::build_with_exe`] on a store opened by the caller (a test's decorated
    /// store, or an embedding program's own engine).
    pub fn build_with_store(
        settings: Settings,
        listener: TcpListener,
        kiln_exe: std::path::PathBuf,
        store: Arc<dyn crate::store::BakeStore>,
    ) -> anyhow::Result<Application> {
        let data_dir = settings.data_dir();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
        templates::install(&settings).context("cannot prepare configDir")?;
        // ebs-direct bakes whose engine died (a crash, a reboot) leave mounts and loop devices;
        // a running one holds its folder's lock and is left alone.
        let swept = crate::builders::ebs_direct::sweep(&data_dir);
        if !swept.is_empty() {
            tracing::info!(
                folders = swept.len(),
                "released ebs-direct work folders left by ended bakes"
            );
        }
        let bakery = Bakery::new(settings, store, kiln_exe);
        let found = bakery.recover().context("cannot read unfinished bakes")?;
        if found != Default::default() {
            tracing::info!(
                reattached = found.reattached,
                requeued = found.requeued,
                lost = found.lost,
                "recovered unfinished bakes"
            );
        }
        Ok(Application {
            listener,
            bakery,
            reloader: None,
            open_files: 1024,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves `POST /api/kiln/v1/reload` with this reloader.
    pub fn with_reloader(mut self, reloader: Arc<Reloader>) -> Self {
        self.reloader = Some(reloader);
        self
    }

    /// The open-files limit the server sizes its connection cap by.
    pub fn with_open_files(mut self, open_files: u64) -> Self {
        self.open_files = open_files;
        self
    }

    pub fn bakery(&self) -> &Bakery {
        &self.bakery
    }

    pub async fn run_until_stopped(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let limits = crate::api::server::Limits::new(&self.bakery.settings(), self.open_files);
        tracing::info!(
            %addr,
            instance = self.bakery.instance_id(),
            max_connections = limits.max_connections,
            header_read_timeout = ?limits.header_read_timeout,
            "kiln is serving"
        );
        let bakery = self.bakery.clone();
        let stopping = CancellationToken::new();
        let mut router = crate::api::router(self.bakery, stopping.clone());
        if let Some(reloader) = self.reloader {
            router = router.layer(axum::Extension(reloader));
        }
        let signal = stopping.clone();
        tokio::spawn(async move {
            stop.await;
            tracing::info!("stopping: no new connections; open ones get a few seconds");
            signal.cancel();
        });
        crate::api::server::serve(self.listener, router, limits, stopping)
            .await
            .context("the HTTP server failed")?;
        bakery.shutdown();
        tracing::info!(
            "kiln stopped; running bakes continue and are re-attached at the next start"
        );
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
