//! The ebs-direct builder: an AMI without a builder instance or SSH. The base AMI's root
//! snapshot is fetched through the EBS direct APIs (once per base, cached), the packages are
//! installed into a local copy of its filesystem in a chroot, and only the 512 KiB blocks that
//! changed are uploaded as a child snapshot of the base, which is then registered as the AMI
//! with the base's settings.
//!
//! It runs as `kiln __ebs-direct <spec.json> [-var-file=…]` under the same supervisor as Packer
//! and prints Packer's machine-readable lines ([`say`]), so kiln follows, limits, cancels and
//! re-attaches it like a Packer run. SIGINT or SIGTERM (cancel, a limit) stops the phase under
//! way; on every ending the started-but-unregistered snapshot is deleted and the mount, loop
//! device and disk copy are removed ([`work::release`]); what a crash leaves is released by the
//! sweep at kiln's start ([`sweep`]).
//!
//! Phases: `spec` (check) → `fetch` → `copy` → `mount` → `install` → `unmount` → `diff` →
//! `upload` → `complete` (wait for `completed`) → `register` (and tags) → `share` → `copy`
//! (regions); each one's time is a log line.

mod chroot;
mod diff;
mod fetch;
pub mod partition;
mod say;
pub mod spec;
mod work;

pub use say::PHASE_MARKERS;
pub use spec::Spec;
pub use work::{release_ended, sweep};

use crate::aws::CredentialSource;
use crate::aws::ebs::{BLOCK_SIZE, Ebs};
use crate::aws::ec2::{Ec2, ImageQuery};
use crate::aws::ec2_images::Registration;
use crate::builders::{BuildPlan, Launch};
use crate::config::Settings;
use crate::runner::RunSpec;
use futures_util::{StreamExt, TryStreamExt};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The largest base volume kiln fetches.
const MAX_VOLUME_GIB: u64 = 1024;
/// Parallel PutSnapshotBlock calls.
const UPLOAD_WORKERS: usize = 16;
/// StartSnapshot's Timeout: EBS abandons the snapshot after this long without a block.
const SNAPSHOT_TIMEOUT_MINUTES: u32 = 60;
/// How long a copied image may take to become `available` (Packer's default AMI wait is about
/// 30 minutes too).
const COPY_LIMIT: Duration = Duration::from_secs(30 * 60);

/// How long CompleteSnapshot may take to reach `completed`.
const COMPLETE_LIMIT: Duration = Duration::from_secs(30 * 60);

/// `kiln __ebs-direct <spec.json | -> [-var-file=PATH]` (`-`: the spec is in [`SPEC_ENV`]): the whole bake; the exit code is 0 for an
/// AMI, 1 for a failure, 130 when stopped by a signal.
pub fn main(args: &[String]) -> ExitCode {
    let Some(spec_path) = args.first() else {
        say::error("usage: kiln __ebs-direct <spec.json> [-var-file=PATH]");
        return ExitCode::from(2);
    };
    let text = if spec_path == "-" {
        std::env::var(SPEC_ENV).map_err(|_| format!("{SPEC_ENV} is not set"))
    } else {
        std::fs::read_to_string(spec_path).map_err(|e| e.to_string())
    };
    // Not passed on: the install runs with a clean environment anyway.
    // SAFETY: single-threaded here (the runtime starts below); nothing reads the environment
    // concurrently.
    unsafe { std::env::remove_var(SPEC_ENV) };
    let spec: Spec = match text.and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string())) {
        Ok(s) => s,
        Err(e) => {
            say::error(&format!("cannot read the spec {spec_path}: {e}"));
            return ExitCode::from(2);
        }
    };
    let mut variables = spec.variables.clone();
    for a in &args[1..] {
        match a.strip_prefix("-var-file=").map(read_var_file) {
            Some(Ok(vars)) => variables.extend(vars),
            Some(Err(e)) => {
                say::error(&format!("cannot read the masked variables: {e}"));
                return ExitCode::from(2);
            }
            None => {
                say::error(&format!("unknown argument {a:?}"));
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say::error(&format!("cannot start: {e}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(bake_until_stopped(spec, variables))
}

/// The masked variables' var file (a JSON object of strings, in the supervisor's memory).
fn read_var_file(path: &str) -> Result<Vec<(String, String)>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    Ok(map.into_iter().collect())
}

/// Where the bake is, for cleanup whatever ends it.
struct State {
    work: work::Held,
    ec2: Ec2,
}

async fn bake_until_stopped(spec: Spec, variables: Vec<(String, String)>) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        say::error("cannot handle signals");
        return ExitCode::FAILURE;
    };
    if let Err(e) = spec.check() {
        say::error(&e);
        return ExitCode::FAILURE;
    }
    let work = match work::hold(&spec.work_dir()) {
        Ok(w) => w,
        Err(e) => {
            say::error(&format!(
                "cannot take the work folder {}: {e}",
                spec.work_dir().display()
            ));
            return ExitCode::FAILURE;
        }
    };
    let credentials = CredentialSource::DefaultChain;
    let state = State {
        work,
        ec2: Ec2::new(
            &spec.region,
            spec.ec2_endpoint.as_deref(),
            credentials.clone(),
        ),
    };
    let started = Instant::now();
    let outcome = tokio::select! {
        r = bake(&spec, &variables, &state, &credentials) => r.map_err(|e| (e, 1u8)),
        _ = int.recv() => Err(("stopped by SIGINT".to_string(), 130)),
        _ = term.recv() => Err(("stopped by SIGTERM".to_string(), 130)),
    };
    // Whatever ended the bake: the unregistered snapshot goes, then the local state.
    let pending = state.work.dir.join(work::PENDING);
    if let Ok(id) = std::fs::read_to_string(&pending) {
        let id = id.trim();
        match state.ec2.delete_snapshot(id).await {
            Ok(()) => {
                say::say(&format!("Deleted the unfinished snapshot {id}"));
                let _ = std::fs::remove_file(&pending);
            }
            Err(e) => say::say(&format!(
                "Could not delete the unfinished snapshot {id}: {e}"
            )),
        }
    }
    for note in work::release(&state.work.dir) {
        say::say(&format!("Cleanup: {note}"));
    }
    match outcome {
        Ok(ids) => {
            say::timing("total", started.elapsed());
            say::artifact(&ids);
            ExitCode::SUCCESS
        }
        Err((e, code)) => {
            say::error(&e);
            ExitCode::from(code)
        }
    }
}

/// Runs one phase, printing its time.
async fn phase<T>(
    name: &str,
    timings: &mut Vec<(String, Duration)>,
    f: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    say::start(name);
    let t = Instant::now();
    let r = f.await;
    let took = t.elapsed();
    say::timing(name, took);
    timings.push((name.to_string(), took));
    r
}

async fn bake(
    spec: &Spec,
    variables: &[(String, String)],
    state: &State,
    credentials: &CredentialSource,
) -> Result<Vec<(String, String)>, String> {
    let mut t = Vec::new();
    let work = &state.work.dir;
    say::say(&format!("Prevalidating AMI Name: {}", spec.image_name));
    say::say(&format!(
        "ebs-direct: baking from {} in {}",
        spec.base_ami, spec.region
    ));
    let base = describe_base(&state.ec2, &spec.base_ami).await?;
    let root_device = base.root_device_name.clone().unwrap_or_default();
    let root_snapshot = base
        .block_devices
        .iter()
        .find(|d| d.device_name == root_device)
        .and_then(|d| d.snapshot_id.clone())
        .filter(|s| spec::is_id(s, "snap-"))
        .ok_or_else(|| {
            format!(
                "base image {}: no EBS snapshot on its root device {root_device:?}",
                spec.base_ami
            )
        })?;
    let ebs = Ebs::new(&spec.region, spec.ebs_endpoint.as_deref(), credentials)
        .await
        .map_err(|e| e.to_string())?;

    let cache = spec::cache_dir(&spec.data_dir);
    let (base_disk, cached) = phase("fetch", &mut t, async {
        fetch::base_disk(&ebs, &cache, &root_snapshot, MAX_VOLUME_GIB)
            .await
            .map_err(|e| crate::telemetry::Chain(&e).to_string())
    })
    .await?;
    say::say(&format!(
        "ebs-direct: base snapshot {root_snapshot} {}",
        if cached {
            "from the cache"
        } else {
            "fetched into the cache"
        }
    ));
    let disk = work.join(work::DISK);
    phase("copy", &mut t, async {
        fetch::copy(&base_disk, &disk)
            .await
            .map_err(|e| crate::telemetry::Chain(&e).to_string())
    })
    .await?;
    let root = work.join(work::ROOT);
    let dev = phase("mount", &mut t, async {
        let mut head = vec![0u8; partition::HEAD_BYTES];
        let file = std::fs::File::open(&disk).map_err(|e| e.to_string())?;
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        let n = file.read_at(&mut head, 0).map_err(|e| e.to_string())?;
        head.truncate(n);
        let (layout, extent) = partition::root_extent(&head, size)
            .map_err(|e| format!("base image {}: {e}", spec.base_ami))?;
        say::say(&format!(
            "ebs-direct: root filesystem: {layout:?} at byte {} ({} bytes)",
            extent.offset, extent.size
        ));
        let dev = chroot::attach(&disk, extent).await?;
        chroot::mount(&dev, &root).await?;
        Ok(dev)
    })
    .await?;
    phase("install", &mut t, chroot::install(&root, spec, variables)).await?;
    phase("unmount", &mut t, chroot::unmount(&dev, &root)).await?;
    let changed = phase("diff", &mut t, async {
        let (a, b) = (base_disk.clone(), disk.clone());
        tokio::task::spawn_blocking(move || {
            let (a, b) = (std::fs::File::open(&a)?, std::fs::File::open(&b)?);
            let candidates = diff::candidate_blocks(&a, &b, BLOCK_SIZE as u64)?;
            diff::changed_among(&a, &b, &candidates, BLOCK_SIZE)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot compare the disks: {e}"))
    })
    .await?;
    say::say(&format!(
        "ebs-direct: {} changed blocks of 512 KiB",
        changed.len()
    ));

    let volume_gib = std::fs::metadata(&disk)
        .map_err(|e| e.to_string())?
        .len()
        .div_ceil(1 << 30);
    let snapshot = phase(
        "upload",
        &mut t,
        upload(
            &ebs,
            spec,
            work,
            &root_snapshot,
            volume_gib,
            &disk,
            &changed,
        ),
    )
    .await?;
    phase(
        "complete",
        &mut t,
        complete(&ebs, &state.ec2, &snapshot, changed.len() as u64),
    )
    .await?;
    let ami = phase(
        "register",
        &mut t,
        register(&state.ec2, spec, &base, &root_device, &snapshot),
    )
    .await?;
    let _ = std::fs::remove_file(work.join(work::PENDING));
    say::say(&format!("AMI: {ami}"));
    let accounts = spec.numbered("share_with");
    phase("share", &mut t, async {
        if accounts.is_empty() {
            return Ok(());
        }
        state
            .ec2
            .share_image(&ami, &accounts)
            .await
            .map_err(|e| e.to_string())?;
        state
            .ec2
            .share_snapshot(&snapshot, &accounts)
            .await
            .map_err(|e| e.to_string())?;
        say::say(&format!(
            "Shared {ami} and {snapshot} with {}",
            accounts.join(", ")
        ));
        Ok(())
    })
    .await?;
    let mut ids = vec![(spec.region.clone(), ami.clone())];
    let regions = spec.numbered("copy_to");
    let copies = phase("copy_regions", &mut t, async {
        let mut out = Vec::new();
        for region in regions.iter().filter(|r| **r != spec.region) {
            let ec2 = Ec2::new(region, spec.ec2_endpoint.as_deref(), credentials.clone());
            let copy = ec2
                .copy_image(&spec.region, &ami, &spec.image_name)
                .await
                .map_err(|e| e.to_string())?;
            ec2.create_tags(std::slice::from_ref(&copy), &spec.tags())
                .await
                .map_err(|e| e.to_string())?;
            say::say(&format!("Copied {ami} to {region}: {copy}"));
            // As Packer's ami_regions: the copy is usable, and shared like the original, before
            // the bake answers with it.
            let image = wait_available(&ec2, &copy).await?;
            if !accounts.is_empty() {
                ec2.share_image(&copy, &accounts)
                    .await
                    .map_err(|e| e.to_string())?;
                for snapshot in image
                    .block_devices
                    .iter()
                    .filter_map(|b| b.snapshot_id.as_ref())
                {
                    ec2.share_snapshot(snapshot, &accounts)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                say::say(&format!("Shared {copy} with {}", accounts.join(", ")));
            }
            out.push((region.clone(), copy));
        }
        Ok(out)
    })
    .await?;
    ids.extend(copies);
    let summary: Vec<String> = t
        .iter()
        .map(|(p, d)| format!("{p}={:.2}s", d.as_secs_f64()))
        .collect();
    say::say(&format!("ebs-direct: timings {}", summary.join(" ")));
    Ok(ids)
}

/// Waits until the copied image `ami` is `available` (EC2 copies take minutes); it fails on
/// `failed` or after [`COPY_LIMIT`].
async fn wait_available(ec2: &Ec2, ami: &str) -> Result<crate::aws::ec2::Image, String> {
    let probe = || async {
        let found = ec2
            .describe_images(&ImageQuery {
                image_ids: vec![ami.to_string()],
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let image = found.into_iter().find(|i| i.id == ami);
        match image.as_ref().and_then(|i| i.state.as_deref()) {
            Some("available") => Ok(image),
            Some(state @ ("failed" | "error" | "invalid" | "deregistered")) => {
                Err(format!("the copy {ami} ended in state {state}"))
            }
            _ => Ok(None),
        }
    };
    poll(COPY_LIMIT, Duration::from_secs(10), probe)
        .await?
        .ok_or_else(|| format!("the copy {ami} was not available after {COPY_LIMIT:?}"))
}

/// Asks `probe` until it answers (`Some`) or fails, pausing 250 ms and doubling up to
/// `max_pause` between asks; `None` once `limit` has passed.
async fn poll<T, F, Fut>(
    limit: Duration,
    max_pause: Duration,
    mut probe: F,
) -> Result<Option<T>, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + limit;
    let mut wait = Duration::from_millis(250);
    loop {
        if let Some(answer) = probe().await? {
            return Ok(Some(answer));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(max_pause);
    }
}

async fn describe_base(ec2: &Ec2, ami: &str) -> Result<crate::aws::ec2::Image, String> {
    let found = ec2
        .describe_images(&ImageQuery {
            image_ids: vec![ami.to_string()],
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let image = found
        .into_iter()
        .find(|i| i.id == ami)
        .ok_or_else(|| format!("base image {ami} not found"))?;
    if image
        .virtualization_type
        .as_deref()
        .is_some_and(|v| v != "hvm")
    {
        return Err(format!(
            "base image {ami} is not hvm: ebs-direct registers hvm images only"
        ));
    }
    Ok(image)
}

async fn upload(
    ebs: &Ebs,
    spec: &Spec,
    work: &Path,
    parent: &str,
    volume_gib: u64,
    disk: &Path,
    changed: &[u64],
) -> Result<String, String> {
    // One token per run: a retried StartSnapshot answers the same snapshot, while a re-run of
    // the bake (requeued after a restart) starts a new one rather than meet a deleted one.
    let token = uuid::Uuid::new_v4().to_string();
    let started = ebs
        .start(
            volume_gib,
            parent,
            &token,
            SNAPSHOT_TIMEOUT_MINUTES,
            &format!("kiln ebs-direct: {}", spec.image_name),
        )
        .await
        .map_err(|e| e.to_string())?;
    let id = started.snapshot_id;
    if !spec::is_id(&id, "snap-") {
        return Err(format!("StartSnapshot answered {id:?}, not a snapshot id"));
    }
    std::fs::write(work.join(work::PENDING), &id).map_err(|e| e.to_string())?;
    say::say(&format!(
        "ebs-direct: uploading {} blocks into {id} (parent {parent})",
        changed.len()
    ));
    if started.block_size != BLOCK_SIZE {
        return Err(format!(
            "StartSnapshot: block size {} (expected {BLOCK_SIZE})",
            started.block_size
        ));
    }
    let file = std::sync::Arc::new(std::fs::File::open(disk).map_err(|e| e.to_string())?);
    futures_util::stream::iter(changed.iter().copied())
        .map(|index| {
            let (file, id) = (file.clone(), id.clone());
            async move {
                let data = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; BLOCK_SIZE];
                    let n = read_full_at(&file, &mut buf, index * BLOCK_SIZE as u64)?;
                    buf[n..].fill(0);
                    Ok::<_, std::io::Error>(buf)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot read block {index}: {e}"))?;
                ebs.put_block(&id, index, data)
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(UPLOAD_WORKERS)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(id)
}

fn read_full_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

async fn complete(ebs: &Ebs, ec2: &Ec2, snapshot: &str, changed: u64) -> Result<(), String> {
    let status = ebs
        .complete(snapshot, changed)
        .await
        .map_err(|e| e.to_string())?;
    say::say(&format!("ebs-direct: CompleteSnapshot: {status}"));
    let probe = || async {
        let state = ec2
            .snapshot_state(snapshot)
            .await
            .map_err(|e| e.to_string())?;
        match state.as_deref() {
            Some("completed") => Ok(Some(())),
            Some("error") => Err(format!("snapshot {snapshot} ended in state error")),
            _ => Ok(None),
        }
    };
    poll(COMPLETE_LIMIT, Duration::from_secs(5), probe)
        .await?
        .ok_or_else(|| format!("snapshot {snapshot} was not completed after {COMPLETE_LIMIT:?}"))
}

async fn register(
    ec2: &Ec2,
    spec: &Spec,
    base: &crate::aws::ec2::Image,
    root_device: &str,
    snapshot: &str,
) -> Result<String, String> {
    let block_devices = base
        .block_devices
        .iter()
        .cloned()
        .map(|mut d| {
            if d.device_name == root_device {
                d.snapshot_id = Some(snapshot.to_string());
            }
            d
        })
        .collect();
    let r = Registration {
        name: spec.image_name.clone(),
        description: None,
        architecture: base.architecture.clone().unwrap_or_else(|| "x86_64".into()),
        root_device_name: root_device.to_string(),
        ena_support: base.ena_support,
        sriov_net_support: base.sriov_net_support.clone(),
        boot_mode: base.boot_mode.clone(),
        block_devices,
    };
    say::say(&format!(
        "Creating AMI {} from snapshot {snapshot}",
        spec.image_name
    ));
    let ami = ec2.register_image(&r).await.map_err(|e| e.to_string())?;
    let resources = vec![ami.clone(), snapshot.to_string()];
    ec2.create_tags(&resources, &spec.tags())
        .await
        .map_err(|e| e.to_string())?;
    Ok(ami)
}

/// The environment variable the spec travels in (from kiln to the supervisor to the builder):
/// no file to leave behind, and it holds no secret.
pub const SPEC_ENV: &str = "KILN_EBS_DIRECT_SPEC";

/// The command line a bake shows (`recipe.command`).
pub fn shown(plan: &BuildPlan) -> Vec<String> {
    let mut argv: Vec<String> = ["kiln", "__ebs-direct", "-"].map(String::from).to_vec();
    if !plan.secret_variables.is_empty() {
        argv.push(crate::builders::packer::command::SECRET_VAR_FILE_SHOWN.into());
    }
    argv
}

/// The spec of a plan's run.
pub fn spec_of(plan: &BuildPlan, settings: &Settings) -> Spec {
    let d = &settings.aws.bakery_defaults;
    let endpoint = |e: &Option<String>| e.clone().filter(|e| !e.trim().is_empty());
    let bake_id = plan
        .run
        .as_ref()
        .map(|r| r.bake_id.clone())
        .unwrap_or_default();
    let artifacts_dir =
        crate::images::staging_dir(&settings.data_dir(), &bake_id).join("kiln-artifacts");
    Spec {
        region: plan.variable("aws_region").unwrap_or_default().to_string(),
        ec2_endpoint: endpoint(&d.aws_ec2_endpoint),
        ebs_endpoint: endpoint(&d.aws_ebs_endpoint),
        base_ami: plan
            .variable("aws_source_ami")
            .unwrap_or_default()
            .to_string(),
        image_name: plan
            .variable("aws_target_ami")
            .unwrap_or_default()
            .to_string(),
        variables: plan.variables.clone(),
        artifacts_dir: artifacts_dir.is_dir().then_some(artifacts_dir),
        install_script: settings.config_dir().join("install_packages.sh"),
        data_dir: settings.data_dir(),
        bake_id,
    }
}

/// `kiln __ebs-direct - [masked var file]` under the supervisor: the spec in [`SPEC_ENV`], the
/// credentials (and the masked variables, under kiln's own names) in the supervisor's
/// environment, redacted from the log.
pub fn launch(
    plan: &BuildPlan,
    settings: &Settings,
    temp_dir: Option<std::path::PathBuf>,
) -> Launch {
    let exe = plan
        .run
        .as_ref()
        .map(|r| r.kiln_exe.display().to_string())
        .unwrap_or_else(|| "kiln".into());
    let argv = vec![exe, "__ebs-direct".to_string(), "-".to_string()];
    let (mut env, redact_env, secret_vars) = crate::builders::secret_env(plan, argv.len());
    let spec = serde_json::to_string(&spec_of(plan, settings)).unwrap_or_default();
    env.push((SPEC_ENV.to_string(), spec));
    Launch {
        spec: RunSpec {
            argv,
            cwd: Some(settings.config_dir()),
            redact_env,
            max_log_bytes: settings.max_log_bytes(),
            secret_vars,
            temp_dir,
        },
        env,
    }
}
