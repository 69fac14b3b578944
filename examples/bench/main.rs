//! kiln's benchmark (kiln issue #8). `scripts/bench` builds kiln in release and runs this:
//!
//! ```text
//! bench run  [--kiln target/release/kiln] [--out target/bench/results.json] [--quick]
//!            [--only footprint,sequential,concurrency,api]
//! bench seed DB COUNT      fill a store with COUNT finished bakes (as `run` does for the API)
//! ```
//!
//! `run` starts real Packer, a moto EC2 server and kiln on loopback, measures, stops every
//! process it started by its PID, prints a table and writes it as JSON with the machine.
//!
//! Packer runs through a wrapper script (kiln's `kiln.packerPath`) that runs the real Packer and
//! then appends `<EPOCHREALTIME> <aws_target_ami>` to a file just before exiting with Packer's
//! code: that is "Packer's exit" for the completion-visibility figures. The direct runs use the
//! exact argv kiln stored for a bake (`recipe.command`, wrapper included), so both sides pay the
//! same wrapper; only the AMI name gets a `-direct` suffix (Packer refuses an existing name).
//! The wrapper also records when it started (`start-<ami>`), which splits kiln's overhead into
//! "before Packer runs" and "after Packer exits".
//!
//! Fairness: kiln's supervisor starts each Packer in a session of its own, and with autogroup
//! scheduling (Linux's default outside CPU cgroups) the session is what the CPU is shared by.
//! So bare builds get a session each too, kiln gets one, and moto's session runs at autogroup
//! nice -20: the emulated cloud should answer like an external service, not compete with the
//! builds it serves (see `procs::in_new_session`). Concurrent bakes are submitted at once, by
//! one client each, as the bare builds are started at once.

mod http;
mod load;
mod procs;

use anyhow::{Context, Result, bail};
use http::Conn;
use kiln::bake::{BakeRecord, Phase};
use kiln::store::{BakeStore, SqliteStore};
use procs::{Kiln, Moto};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const REGION: &str = "us-east-1";
const ACCESS_KEY: &str = "AKIAKILNBENCHKEY0001";
const SECRET_KEY: &str = "kilnBenchSecretKey/NotReallySecret+01234";
const API_BAKES: usize = 10_000;
const API_CONNS: usize = 64;

fn main() -> Result<()> {
    procs::stop_started_on_signal();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("seed") => {
            let db = PathBuf::from(args.get(1).context("bench seed DB COUNT")?);
            let count: usize = args.get(2).context("bench seed DB COUNT")?.parse()?;
            let took = seed_store(&db, count, &synthetic_record())?;
            println!("seeded {count} bakes into {} in {took:.2?}", db.display());
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: bench run [--kiln PATH] [--out FILE] [--quick] [--only SECTIONS] | bench seed DB COUNT"
            );
            std::process::exit(2)
        }
    }
}

/// One line of the table.
struct Row {
    section: &'static str,
    metric: String,
    value: String,
    target: String,
    ok: Option<bool>,
}

struct Bench {
    repo: PathBuf,
    kiln_exe: PathBuf,
    work: PathBuf,
    wrapper: PathBuf,
    exits: PathBuf,
    config: PathBuf,
    quick: bool,
    rows: Vec<Row>,
    results: serde_json::Map<String, Value>,
    next_pkg: usize,
    run_tag: String,
    /// The 1-minute load average as each section started (other users' work shows here).
    phase_load: serde_json::Map<String, Value>,
}

fn run(args: &[String]) -> Result<()> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut kiln_exe = repo.join("target/release/kiln");
    let mut out = repo.join("target/bench/results.json");
    let mut quick = false;
    let mut only: Option<Vec<String>> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--kiln" => kiln_exe = PathBuf::from(it.next().context("--kiln PATH")?),
            "--out" => out = PathBuf::from(it.next().context("--out FILE")?),
            "--quick" => quick = true,
            "--only" => {
                only = Some(
                    it.next()
                        .context("--only SECTIONS")?
                        .split(',')
                        .map(String::from)
                        .collect(),
                )
            }
            other => bail!("unknown argument {other}"),
        }
    }
    let packer = procs::which("packer").context("packer is not on PATH")?;
    let venv = std::env::var_os("KILN_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target/test-venv"));
    let work = repo.join("target/bench/work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let started = Instant::now();
    let load_before = procs::loadavg();
    let machine = procs::machine(&packer);
    eprintln!("bench: machine {machine}");
    eprintln!("bench: load average before: {load_before:.2}");

    let exits = work.join("packer-exits.log");
    let wrapper = work.join("packer-wrapper");
    write_wrapper(&wrapper, &packer, &exits)?;
    let mut b = Bench {
        kiln_exe: kiln_exe.canonicalize().context("the kiln binary")?,
        config: work.join("kiln.yml"),
        repo: repo.clone(),
        work: work.clone(),
        wrapper,
        exits,
        quick,
        rows: Vec::new(),
        results: serde_json::Map::new(),
        next_pkg: 0,
        phase_load: serde_json::Map::new(),
        run_tag: format!("{:x}", now_epoch_ms() % 0xfffff),
    };

    eprintln!("bench: starting moto");
    let moto = Moto::start(&repo, &venv, &work.join("moto"))?;
    let seed = moto.seed(&repo, &venv)?;
    std::fs::write(&b.config, b.config_yaml(&moto, &seed)?)?;

    let wanted = |s: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == s));
    let note_load = |b: &mut Bench, s: &str| {
        b.phase_load.insert(s.into(), json!(procs::loadavg()));
    };
    if wanted("footprint") {
        note_load(&mut b, "footprint");
        b.footprint_empty()?;
    }
    if wanted("sequential") {
        note_load(&mut b, "sequential");
        b.bakes_sequential()?;
    }
    let template = if wanted("concurrency") {
        note_load(&mut b, "concurrency");
        b.concurrency()?
    } else {
        synthetic_record()
    };
    drop(moto);
    if wanted("api") {
        note_load(&mut b, "api");
        b.api(&template)?;
    }
    // The qemu provider's bake takes minutes and needs its base image: its own script measures
    // it (scripts/bench-qemu, "Local (qemu) bake" in BENCHMARKS.md).
    let local = if repo.join("scripts/bench-qemu").exists() {
        "n/a here: measured by scripts/bench-qemu"
    } else {
        "n/a (no qemu provider yet)"
    };
    b.results.insert("local_bake".into(), json!(local));
    b.rows.push(Row {
        section: "6 local bake",
        metric: "qemu bake".into(),
        value: local.into(),
        target: "-".into(),
        ok: None,
    });
    // Sections in their numbered order (they ran in the order that needs fewest restarts).
    b.rows
        .sort_by_key(|r| r.section.split(' ').next().unwrap_or("").to_string());
    b.results.insert(
        "load_average_1m_at_start".into(),
        Value::Object(b.phase_load.clone()),
    );

    let load_after = procs::loadavg();
    let doc = json!({
        "date": command_out(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])),
        "command": format!("scripts/bench {}", args.join(" ")).trim().to_string(),
        "machine": machine,
        "load_average_1m": {"before": load_before, "after": load_after},
        "bench_seconds": started.elapsed().as_secs_f64(),
        "results": Value::Object(b.results.clone()),
        "table": b.rows.iter().map(|r| json!({
            "section": r.section, "metric": r.metric, "value": r.value,
            "target": r.target, "ok": r.ok,
        })).collect::<Vec<_>>(),
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&doc)? + "\n")?;
    print_table(&b.rows);
    println!(
        "\nmachine: {} CPUs ({}), {} GiB, {}, {}",
        doc["machine"]["nproc"],
        doc["machine"]["cpu"].as_str().unwrap_or(""),
        doc["machine"]["memory_gib"],
        doc["machine"]["kernel"].as_str().unwrap_or(""),
        doc["machine"]["packer"].as_str().unwrap_or(""),
    );
    println!(
        "load average (1 min): {load_before:.2} before, {load_after:.2} after; {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    println!("results: {}", out.display());
    Ok(())
}

impl Bench {
    fn config_yaml(&self, moto: &Moto, seed: &Value) -> Result<String> {
        let nossh =
            std::fs::read_to_string(self.repo.join("tests/fixtures/packer/aws-ebs-nossh.json"))?;
        let files = json!({ "profiles__rosco__packer__aws-ebs-nossh.json": nossh });
        Ok(format!(
            r#"aws:
  enabled: true
  bakeryDefaults:
    awsAccessKey: {ACCESS_KEY}
    awsSecretKey: {SECRET_KEY}
    awsSubnetId: {subnet}
    awsVpcId: {vpc}
    awsEc2Endpoint: {endpoint}
    awsSkipValidation: true
    templateFile: aws-ebs-nossh.json
    baseImages:
    - baseImage:
        id: ubuntu
        shortDescription: v16.04
        packageType: deb
      virtualizationSettings:
      - region: {REGION}
        virtualizationType: hvm
        instanceType: t3.micro
        sourceAmi: {ami}
        sourceAmiOwner: "099720109477"
        sshUserName: ubuntu
debianRepository: http://repo.example.invalid/apt stable main
kiln:
  packerPath: {wrapper}
  jobs:
    maxConcurrent: 64
files: {files}
"#,
            subnet = seed["subnet_id"].as_str().context("subnet_id")?,
            vpc = seed["vpc_id"].as_str().context("vpc_id")?,
            endpoint = moto.endpoint,
            ami = seed["source_ami"].as_str().context("source_ami")?,
            wrapper = self.wrapper.display(),
        ))
    }

    fn row(
        &mut self,
        section: &'static str,
        metric: &str,
        value: String,
        target: &str,
        ok: Option<bool>,
    ) {
        self.rows.push(Row {
            section,
            metric: metric.into(),
            value,
            target: target.into(),
            ok,
        });
    }

    fn start_kiln(&self, data: &Path) -> Result<Kiln> {
        Kiln::start(&self.kiln_exe, data, &self.config)
            .with_context(|| format!("starting kiln on {}", data.display()))
    }

    /// 5. exec → `/health` 200 and idle RSS, on a new and then an existing (empty) store.
    fn footprint_empty(&mut self) -> Result<()> {
        eprintln!("bench: footprint (empty store)");
        let data = self.work.join("footprint");
        let (mut ready, mut rss) = (Vec::new(), Vec::new());
        for _ in 0..if self.quick { 3 } else { 7 } {
            let kiln = self.start_kiln(&data)?;
            ready.push(kiln.ready_after.as_secs_f64() * 1000.0);
            std::thread::sleep(Duration::from_millis(500));
            rss.push(kiln.mem_mib("VmRSS"));
            kiln.stop();
        }
        let first = ready[0];
        let later = median(&ready[1..]);
        let max_later = ready[1..].iter().cloned().fold(0.0, f64::max);
        let idle = median(&rss);
        self.results.insert(
            "footprint_empty".into(),
            json!({"exec_to_health_ms": ready, "idle_rss_mib": rss}),
        );
        self.row(
            "5 footprint",
            "exec → /health 200, new data dir",
            format!("{first:.1} ms"),
            "≤ 200 ms",
            Some(first <= 200.0),
        );
        self.row(
            "5 footprint",
            "exec → /health 200, restart (median / max)",
            format!("{later:.1} / {max_later:.1} ms"),
            "≤ 200 ms",
            Some(max_later <= 200.0),
        );
        self.row(
            "5 footprint",
            "idle RSS, empty store (median)",
            format!("{idle:.1} MiB"),
            "≤ 25 MB",
            Some(idle <= 25.0),
        );
        Ok(())
    }

    /// 1 and 2: bakes one at a time, each paired with the same `packer build` run directly;
    /// then more single bakes for the completion-visibility distribution.
    fn bakes_sequential(&mut self) -> Result<()> {
        let data = self.work.join("kiln");
        let kiln = self.start_kiln(&data)?;
        let mut conn = Conn::new(kiln.addr);
        let config_dir = data.join("packer");
        let pairs = if self.quick { 7 } else { 25 };
        let singles = if self.quick { 15 } else { 30 };

        eprintln!("bench: warm-up bake");
        let warm = self.bake_one(&mut conn)?;
        self.run_direct(&direct_argv(&warm.view)?, &config_dir, "warmup")?;

        eprintln!("bench: overhead, {pairs} pairs");
        let (mut ratios, mut kiln_s, mut direct_s) = (Vec::new(), Vec::new(), Vec::new());
        let mut vis_poll = Vec::new();
        let mut vis_record = Vec::new();
        let mut to_packer = Vec::new();
        let mut direct_to_packer = Vec::new();
        // Packer's own run (wrapper start → exit), under kiln and bare.
        let (mut packer_in_kiln, mut packer_in_direct) = (Vec::new(), Vec::new());
        for i in 0..pairs {
            let k = self.bake_one(&mut conn)?;
            let argv = direct_argv(&k.view)?;
            let spawned = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
            let d = self.run_direct(&argv, &config_dir, &format!("pair{i}"))?;
            let ami = argv
                .iter()
                .find_map(|a| a.strip_prefix("aws_target_ami="))
                .context("aws_target_ami")?;
            let times = self.exit_times()?;
            if let Some(start) = times.get(&format!("start-{ami}")) {
                direct_to_packer.push((start - spawned) * 1000.0);
                if let Some(exit) = times.get(ami) {
                    packer_in_direct.push((exit - start) * 1000.0);
                }
            }
            let kiln_ami = target_ami(&k.view)?;
            if let (Some(start), Some(exit)) = (
                times.get(&format!("start-{kiln_ami}")),
                times.get(&kiln_ami),
            ) {
                packer_in_kiln.push((exit - start) * 1000.0);
            }
            let kt = k.elapsed.as_secs_f64();
            let dt = d.as_secs_f64();
            eprintln!(
                "bench:   pair {i}: kiln {kt:.3} s, packer {dt:.3} s, ratio {:.3}",
                kt / dt
            );
            ratios.push(kt / dt);
            kiln_s.push(kt);
            direct_s.push(dt);
            vis_poll.push(k.visible_ms);
            vis_record.push(k.record_ms);
            to_packer.push(k.to_packer_ms);
        }
        eprintln!("bench: completion visibility, {singles} more bakes");
        for _ in 0..singles {
            let k = self.bake_one(&mut conn)?;
            vis_poll.push(k.visible_ms);
            vis_record.push(k.record_ms);
            to_packer.push(k.to_packer_ms);
        }
        let ratio = median(&ratios);
        self.results.insert(
            "overhead".into(),
            json!({
                "pairs": pairs, "ratios": ratios, "kiln_s": kiln_s, "packer_s": direct_s,
                "median_ratio": ratio, "median_kiln_s": median(&kiln_s),
                "median_packer_s": median(&direct_s),
                "post_to_packer_start_ms_median": median(&to_packer),
                "spawn_to_packer_start_ms_median_direct": median(&direct_to_packer),
                "packer_run_ms_median": {"under_kiln": median(&packer_in_kiln), "bare": median(&packer_in_direct)},
            }),
        );
        self.row(
            "1 overhead",
            &format!("POST→COMPLETED / packer build (median of {pairs})"),
            format!(
                "{ratio:.3} ({:.3} s / {:.3} s)",
                median(&kiln_s),
                median(&direct_s)
            ),
            "≤ 1.10",
            Some(ratio <= 1.10),
        );
        self.row(
            "1 overhead",
            "to Packer's start: POST (kiln) / spawn (bare), median",
            format!(
                "{:.1} / {:.1} ms",
                median(&to_packer),
                median(&direct_to_packer)
            ),
            "-",
            None,
        );
        self.row(
            "1 overhead",
            "Packer's own run (start → exit), under kiln / bare, median",
            format!(
                "{:.1} / {:.1} ms",
                median(&packer_in_kiln),
                median(&packer_in_direct)
            ),
            "-",
            None,
        );
        let mut sorted = vis_poll.clone();
        sorted.sort_by(f64::total_cmp);
        let (p50, p99) = (pct(&sorted, 50.0), pct(&sorted, 99.0));
        let mut rec = vis_record.clone();
        rec.sort_by(f64::total_cmp);
        self.results.insert(
            "visibility".into(),
            json!({
                "samples": sorted.len(), "poll_interval_ms": 1,
                "poll_ms": {"p50": p50, "p99": p99, "max": sorted.last(), "all": vis_poll},
                "record_updated_ms_minus_exit": {"p50": pct(&rec, 50.0), "p99": pct(&rec, 99.0)},
            }),
        );
        self.row(
            "2 visibility",
            &format!(
                "packer exit → COMPLETED via API, p50 / p99 (n={})",
                sorted.len()
            ),
            format!("{p50:.1} / {p99:.1} ms"),
            "p99 ≤ 50 ms",
            Some(p99 <= 50.0),
        );
        // What kiln itself adds to a bake, without the run-to-run spread of Packer's own time:
        // the later start and the exit → COMPLETED delay, over the bare build's median.
        let own_ms = median(&to_packer) - median(&direct_to_packer) + p50;
        let own = 1.0 + own_ms / (median(&direct_s) * 1000.0);
        self.results
            .insert("overhead_own".into(), json!({"ms": own_ms, "ratio": own}));
        self.row(
            "1 overhead",
            "kiln's own share: (later start + exit → COMPLETED p50) / bare build",
            format!("{own:.3} ({own_ms:.1} ms)"),
            "-",
            None,
        );
        kiln.stop();
        Ok(())
    }

    /// 3: 16 and 64 distinct bakes at once, against the same builds run bare in parallel,
    /// four times with the order alternating (kiln then bare, bare then kiln with the argvs of
    /// the previous kiln batch, and again), so drift does not favour one side: moto slows down
    /// as every batch leaves instances and images behind. Returns a finished bake, the template
    /// for the API section's store.
    fn concurrency(&mut self) -> Result<BakeRecord> {
        let data = self.work.join("kiln");
        let config_dir = data.join("packer");
        let kiln = self.start_kiln(&data)?;
        let reps = if self.quick { 1 } else { 4 };
        let mut last_id = String::new();
        for n in [16usize, 64] {
            let (mut ratios, mut kiln_walls, mut bare_walls) = (Vec::new(), Vec::new(), Vec::new());
            let (mut kiln_cpu, mut sup_cpu, mut bare_cpu) = (0.0, 0.0, 0.0);
            let (mut post_ms, mut vis, mut sups) = (Vec::new(), Vec::new(), Vec::new());
            let mut previous: Option<Vec<Vec<String>>> = None;
            for rep in 0..reps {
                let suffix = format!("-direct{n}x{rep}");
                let bare_first = rep % 2 == 1;
                let mut bare = None;
                if bare_first && let Some(argvs) = &previous {
                    eprintln!("bench: concurrency {n}, run {rep}: bare packer first");
                    let argvs: Vec<Vec<String>> =
                        argvs.iter().map(|a| renamed(a, &suffix)).collect();
                    bare = Some(self.bare_batch(&argvs, &config_dir, &format!("c{n}r{rep}"))?);
                }
                eprintln!(
                    "bench: concurrency {n}, run {rep}: kiln (pid {})",
                    kiln.pid()
                );
                let k = self.kiln_batch(&kiln, n)?;
                let argvs: Vec<Vec<String>> =
                    k.views.iter().map(command_of).collect::<Result<_>>()?;
                let (bare_wall, bare_s) = match bare {
                    Some(b) => b,
                    None => {
                        eprintln!("bench: concurrency {n}, run {rep}: bare packer");
                        let renamed_argvs: Vec<Vec<String>> =
                            argvs.iter().map(|a| renamed(a, &suffix)).collect();
                        self.bare_batch(&renamed_argvs, &config_dir, &format!("c{n}r{rep}"))?
                    }
                };
                let ratio = k.wall / bare_wall;
                eprintln!(
                    "bench:   kiln {:.2} s (polled {:.2} s), bare {bare_wall:.2} s, ratio {ratio:.3}; CPU: kiln {:.2} s, supervisors and their packers {:.2} s, bare packers {bare_s:.2} s; posting took {:.0} ms",
                    k.wall, k.polled_wall, k.kiln_cpu, k.sup_cpu, k.posted_ms
                );
                ratios.push(ratio);
                kiln_walls.push(k.wall);
                bare_walls.push(bare_wall);
                kiln_cpu += k.kiln_cpu;
                sup_cpu += k.sup_cpu;
                bare_cpu += bare_s;
                post_ms.extend(k.post_ms);
                vis.extend(k.vis);
                sups.push(k.sup);
                last_id = k.ids.last().cloned().unwrap_or_default();
                previous = Some(argvs);
            }
            let hwm = kiln.mem_mib("VmHWM");
            post_ms.sort_by(f64::total_cmp);
            vis.sort_by(f64::total_cmp);
            let fold = |key: &str| {
                sups.iter()
                    .filter_map(|s| s[key].as_f64())
                    .fold(0.0, f64::max)
            };
            let (max_each, peak_rss, peak_pss) = (
                fold("max_each_mib"),
                fold("peak_total_rss_mib"),
                fold("peak_total_pss_mib"),
            );
            let ratio = median(&ratios);
            self.results.insert(
                format!("concurrency_{n}"),
                json!({
                    "bakes": n, "runs": reps, "all_succeeded": true,
                    "ratios": ratios, "median_ratio": ratio,
                    "kiln_wall_s": kiln_walls, "bare_wall_s": bare_walls,
                    "cpu_s_all_runs": {"kiln": kiln_cpu, "supervisors_and_packers": sup_cpu, "bare_packers": bare_cpu},
                    "post_ms": {"p50": pct(&post_ms, 50.0), "p99": pct(&post_ms, 99.0), "max": post_ms.last()},
                    "visibility_record_ms": {"p50": pct(&vis, 50.0), "p99": pct(&vis, 99.0)},
                    "kiln_vmhwm_mib": hwm,
                    "supervisors": sups,
                }),
            );
            self.row(
                "3 concurrency",
                &format!("{n} bakes: wall kiln / bare packer, median of {reps} (all succeeded)"),
                format!(
                    "{ratio:.3} ({:.2} s / {:.2} s)",
                    median(&kiln_walls),
                    median(&bare_walls)
                ),
                "≤ 1.10",
                Some(ratio <= 1.10),
            );
            self.row(
                "3 concurrency",
                &format!("{n} bakes: CPU kiln + (supervisors + packers) / bare packers"),
                format!("({kiln_cpu:.2} + {sup_cpu:.2}) / {bare_cpu:.2} s"),
                "-",
                None,
            );
            self.row(
                "3 concurrency",
                &format!("{n} bakes: POST latency, all sent at once, p50 / max"),
                format!(
                    "{:.1} / {:.1} ms",
                    pct(&post_ms, 50.0),
                    post_ms.last().copied().unwrap_or(0.0)
                ),
                "-",
                None,
            );
            let (target, ok) = if n == 16 {
                ("≤ 60 MB", Some(hwm <= 60.0))
            } else {
                ("-", None)
            };
            self.row(
                "3 concurrency",
                &format!("{n} bakes: kiln peak RSS (VmHWM, runs so far)"),
                format!("{hwm:.1} MiB"),
                target,
                ok,
            );
            self.row(
                "3 concurrency",
                &format!("{n} bakes: supervisors: RSS each (max); all together, RSS / PSS"),
                format!("{max_each:.1} MiB; {peak_rss:.1} / {peak_pss:.1} MiB"),
                "(separate processes)",
                None,
            );
        }
        kiln.stop();
        let store = SqliteStore::open(&data.join("kiln.db"))?;
        let record = store
            .get(&last_id)?
            .context("the last bake is not stored")?;
        if record.phase != Phase::Succeeded {
            bail!("the template bake did not succeed");
        }
        Ok(record)
    }

    /// POSTs `n` distinct bakes at once (one client each) and waits for all of them. The wall time ends at
    /// the last bake's completion as kiln recorded it (`updated_ms`): the status is polled only
    /// every 200 ms, gently, since the bare side has no poller.
    fn kiln_batch(&mut self, kiln: &Kiln, n: usize) -> Result<KilnBatch> {
        let sampler = SupervisorSampler::start(kiln.pid());
        let mut conn = Conn::new(kiln.addr);
        let (cpu0, child0) = (
            procs::cpu_seconds(kiln.pid()),
            procs::children_cpu_seconds(kiln.pid()),
        );
        let t0 = Instant::now();
        let t0_ms = now_epoch_ms();
        // n clients submit at once, as the bare side starts its n builds at once.
        let packages: Vec<String> = (0..n).map(|_| self.package()).collect();
        let start = Arc::new(std::sync::Barrier::new(n));
        let posters: Vec<_> = packages
            .into_iter()
            .map(|pkg| {
                let (addr, start) = (kiln.addr, start.clone());
                std::thread::spawn(move || -> Result<(String, f64)> {
                    let mut conn = Conn::new(addr);
                    start.wait();
                    let t = Instant::now();
                    let id = post_bake(&mut conn, &pkg)?;
                    Ok((id, t.elapsed().as_secs_f64() * 1000.0))
                })
            })
            .collect();
        let (mut ids, mut post_ms) = (Vec::new(), Vec::new());
        for p in posters {
            let (id, ms) = p
                .join()
                .map_err(|_| anyhow::anyhow!("a poster panicked"))??;
            ids.push(id);
            post_ms.push(ms);
        }
        let posted_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let mut pending: Vec<String> = ids.clone();
        while !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            let mut still = Vec::new();
            for id in pending {
                let s = conn.get_json(&format!("/api/v1/{REGION}/status/{id}"))?;
                match s["state"].as_str() {
                    Some("RUNNING") => still.push(id),
                    Some("COMPLETED") if s["result"] == "SUCCESS" => {}
                    _ => bail!(
                        "bake {id} did not succeed: {s}; log: {}",
                        log_of(&mut conn, &id)
                    ),
                }
            }
            pending = still;
            if t0.elapsed() > Duration::from_secs(600) {
                bail!("bakes still running after 10 minutes");
            }
        }
        let polled_wall = t0.elapsed().as_secs_f64();
        let sup = sampler.stop();
        // Supervisors are reaped by kiln, so their CPU (and their Packers') is kiln's cutime.
        let kiln_cpu = procs::cpu_seconds(kiln.pid()) - cpu0;
        let sup_cpu = procs::children_cpu_seconds(kiln.pid()) - child0;
        let mut views = Vec::new();
        for id in &ids {
            views.push(conn.get_json(&format!("/api/kiln/v1/bakes/{id}"))?);
        }
        let exits = self.exit_times()?;
        let (mut end_ms, mut vis) = (0i64, Vec::new());
        for v in &views {
            let updated = v["updated_ms"].as_i64().context("updated_ms")?;
            end_ms = end_ms.max(updated);
            if let Some(exit) = exits.get(&target_ami(v)?) {
                vis.push(updated as f64 - exit * 1000.0);
            }
        }
        Ok(KilnBatch {
            wall: (end_ms - t0_ms) as f64 / 1000.0,
            polled_wall,
            posted_ms,
            post_ms,
            kiln_cpu,
            sup_cpu,
            vis,
            sup,
            ids,
            views,
        })
    }

    /// Starts every argv at once and waits for all; returns the wall time and the CPU seconds
    /// they used.
    fn bare_batch(
        &self,
        argvs: &[Vec<String>],
        config_dir: &Path,
        tag: &str,
    ) -> Result<(f64, f64)> {
        let cpu0 = procs::own_children_cpu_seconds();
        let t0 = Instant::now();
        let mut children = Vec::new();
        for (i, argv) in argvs.iter().enumerate() {
            children.push(self.spawn_direct(argv, config_dir, &format!("{tag}-{i}"))?);
        }
        for mut c in children {
            let st = c.wait()?;
            if !st.success() {
                bail!(
                    "a bare packer build failed ({st}); see {}",
                    self.work.join("direct").display()
                );
            }
        }
        Ok((
            t0.elapsed().as_secs_f64(),
            procs::own_children_cpu_seconds() - cpu0,
        ))
    }

    /// 4 (and 5 with a full store): GET status and GET bake, 64 keep-alive connections, 10,000
    /// bakes in the store.
    fn api(&mut self, template: &BakeRecord) -> Result<()> {
        let data = self.work.join("api");
        std::fs::create_dir_all(&data)?;
        eprintln!("bench: seeding {API_BAKES} bakes");
        let took = seed_store(&data.join("kiln.db"), API_BAKES, template)?;
        let mut ready = Vec::new();
        for _ in 0..3 {
            let kiln = self.start_kiln(&data)?;
            ready.push(kiln.ready_after.as_secs_f64() * 1000.0);
            kiln.stop();
        }
        let kiln = self.start_kiln(&data)?;
        ready.push(kiln.ready_after.as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(500));
        let idle = kiln.mem_mib("VmRSS");
        let ids: Vec<String> = (0..API_BAKES).map(seed_id).collect();
        let (warmup, measure) = if self.quick {
            (Duration::from_secs(1), Duration::from_secs(3))
        } else {
            (Duration::from_secs(2), Duration::from_secs(6))
        };
        let mut out = serde_json::Map::new();
        for (name, fmt) in [
            ("status", "/api/v1/us-east-1/status/"),
            ("bake", "/api/v1/us-east-1/bake/"),
            ("kiln_bake", "/api/kiln/v1/bakes/"),
        ] {
            eprintln!("bench: API load: GET {fmt}{{id}} (kiln pid {})", kiln.pid());
            let paths = Arc::new(ids.iter().map(|id| format!("{fmt}{id}")).collect());
            let r = load::run(kiln.addr, paths, API_CONNS, warmup, measure, kiln.pid());
            eprintln!(
                "bench:   {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, errors {}, CPU s: kiln {:.2}, client {:.2}, others {:.2}",
                r.rps, r.p50_ms, r.p99_ms, r.errors, r.kiln_cpu_s, r.client_cpu_s, r.others_cpu_s
            );
            let targets = name != "kiln_bake";
            let ok = (r.rps >= 20_000.0 && r.p99_ms <= 5.0 && r.errors == 0) && targets;
            self.row(
                "4 API",
                &format!("GET {fmt}{{id}}: req/s, p50 / p99"),
                format!("{:.0}, {:.2} / {:.2} ms", r.rps, r.p50_ms, r.p99_ms),
                if targets {
                    "≥ 20,000; p99 ≤ 5 ms"
                } else {
                    "(extra)"
                },
                targets.then_some(ok),
            );
            self.row(
                "4 API",
                &format!("GET {fmt}{{id}}: CPU per request kiln / load gen.; others' CPU"),
                format!(
                    "{:.0} / {:.0} µs; {:.2} cores",
                    r.kiln_cpu_s * 1e6 / r.requests.max(1) as f64,
                    r.client_cpu_s * 1e6 / r.requests.max(1) as f64,
                    r.others_cpu_s / r.secs
                ),
                "-",
                None,
            );
            out.insert(name.into(), r.json());
        }
        let hwm = kiln.mem_mib("VmHWM");
        kiln.stop();
        out.insert("seed_seconds".into(), json!(took.as_secs_f64()));
        out.insert("connections".into(), json!(API_CONNS));
        out.insert("bakes_in_store".into(), json!(API_BAKES));
        out.insert("exec_to_health_ms".into(), json!(ready));
        out.insert("idle_rss_mib".into(), json!(idle));
        out.insert("vmhwm_after_load_mib".into(), json!(hwm));
        self.results.insert("api".into(), Value::Object(out));
        let max_ready = ready.iter().cloned().fold(0.0, f64::max);
        self.row(
            "5 footprint",
            "exec → /health 200, 10,000 bakes (median / max)",
            format!("{:.1} / {max_ready:.1} ms", median(&ready)),
            "≤ 200 ms",
            Some(max_ready <= 200.0),
        );
        self.row(
            "5 footprint",
            "idle RSS, 10,000 bakes",
            format!("{idle:.1} MiB"),
            "≤ 25 MB",
            Some(idle <= 25.0),
        );
        self.row(
            "5 footprint",
            "peak RSS after the API load",
            format!("{hwm:.1} MiB"),
            "-",
            None,
        );
        Ok(())
    }

    fn package(&mut self) -> String {
        self.next_pkg += 1;
        format!(
            "bench{}n{}_1.0-h{}.abc123_all",
            self.run_tag, self.next_pkg, self.next_pkg
        )
    }

    /// POSTs one bake and polls its status every millisecond until it reads COMPLETED.
    fn bake_one(&mut self, conn: &mut Conn) -> Result<Baked> {
        let pkg = self.package();
        let watch = procs::FileWatch::new(&self.exits)?;
        let t0 = Instant::now();
        let t0_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let id = post_bake(conn, &pkg)?;
        let ami = target_ami(&conn.get_json(&format!("/api/kiln/v1/bakes/{id}"))?)?;
        // Quiet until the wrapper has recorded Packer's exit (polling while Packer runs would
        // take CPU from it that the bare run does not lose), then a status poll every
        // millisecond. kiln cannot complete a bake before Packer exits.
        let mut last_check = Instant::now();
        loop {
            if self.exit_times()?.contains_key(&ami) {
                break;
            }
            if last_check.elapsed() > Duration::from_millis(250) {
                last_check = Instant::now();
                let s = conn.get_json(&format!("/api/v1/{REGION}/status/{id}"))?;
                if s["state"] != "RUNNING" {
                    break;
                }
            }
            if t0.elapsed() > Duration::from_secs(120) {
                bail!("bake {id}: Packer still running after 120 s");
            }
            watch.wait(Duration::from_millis(250));
        }
        let (seen, seen_wall) = loop {
            let s = conn.get_json(&format!("/api/v1/{REGION}/status/{id}"))?;
            let (now, wall) = (Instant::now(), SystemTime::now());
            match s["state"].as_str() {
                Some("RUNNING") => {}
                Some("COMPLETED") if s["result"] == "SUCCESS" => break (now, wall),
                _ => bail!("bake {id} did not succeed: {s}; log: {}", log_of(conn, &id)),
            }
            if t0.elapsed() > Duration::from_secs(120) {
                bail!("bake {id} still running after 120 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let elapsed = seen - t0;
        let view = conn.get_json(&format!("/api/kiln/v1/bakes/{id}"))?;
        let exit = *self
            .exit_times()?
            .get(&target_ami(&view)?)
            .context("the packer wrapper recorded no exit for this bake")?;
        let seen_s = seen_wall.duration_since(UNIX_EPOCH)?.as_secs_f64();
        let started = self
            .exit_times()?
            .get(&format!("start-{}", target_ami(&view)?))
            .copied()
            .context("the packer wrapper recorded no start for this bake")?;
        let updated = view["updated_ms"].as_f64().context("updated_ms")?;
        Ok(Baked {
            elapsed,
            visible_ms: (seen_s - exit) * 1000.0,
            record_ms: updated - exit * 1000.0,
            to_packer_ms: (started - t0_s) * 1000.0,
            view,
        })
    }

    /// `<aws_target_ami>` → when the wrapper saw Packer exit (seconds since the epoch).
    fn exit_times(&self) -> Result<HashMap<String, f64>> {
        let text = std::fs::read_to_string(&self.exits).unwrap_or_default();
        Ok(text
            .lines()
            .filter_map(|l| {
                let (t, ami) = l.split_once(' ')?;
                Some((ami.to_string(), t.parse().ok()?))
            })
            .collect())
    }

    fn spawn_direct(&self, argv: &[String], cwd: &Path, tag: &str) -> Result<std::process::Child> {
        let dir = self.work.join("direct");
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join(format!("{tag}.log")))?;
        // A session of its own, as kiln's supervisor gives Packer (see `procs::in_new_session`).
        Ok(procs::in_new_session(&mut Command::new(&argv[0]))
            .args(&argv[1..])
            .current_dir(cwd)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?)
    }

    /// Runs a `packer build` directly, as kiln would have; returns how long it took.
    fn run_direct(&self, argv: &[String], cwd: &Path, tag: &str) -> Result<Duration> {
        let t0 = Instant::now();
        let status = self.spawn_direct(argv, cwd, tag)?.wait()?;
        let took = t0.elapsed();
        if !status.success() {
            bail!(
                "direct packer build failed ({status}); see {}",
                self.work
                    .join("direct")
                    .join(format!("{tag}.log"))
                    .display()
            );
        }
        Ok(took)
    }
}

struct KilnBatch {
    wall: f64,
    polled_wall: f64,
    posted_ms: f64,
    post_ms: Vec<f64>,
    kiln_cpu: f64,
    sup_cpu: f64,
    vis: Vec<f64>,
    sup: Value,
    ids: Vec<String>,
    views: Vec<Value>,
}

struct Baked {
    /// POST sent → COMPLETED read.
    elapsed: Duration,
    /// Wrapper's exit timestamp → COMPLETED read (1 ms polls).
    visible_ms: f64,
    /// Wrapper's exit timestamp → the record's `updated_ms`.
    record_ms: f64,
    /// POST sent → the wrapper (so Packer) started.
    to_packer_ms: f64,
    view: Value,
}

/// Samples the memory of kiln's supervisor processes every 50 ms: RSS (which counts the pages
/// they share, the kiln binary's included, in every one of them) and PSS (which splits them).
struct SupervisorSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Value>,
}

impl SupervisorSampler {
    fn start(kiln_pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut finder = procs::SupervisorFinder::default();
            let (mut max_each, mut peak_rss, mut peak_pss, mut peak_count) = (0u64, 0u64, 0u64, 0);
            let mut seen = std::collections::HashSet::new();
            while !flag.load(Ordering::Relaxed) {
                let pids = finder.scan(kiln_pid);
                let (mut rss, mut pss) = (0, 0);
                for &pid in &pids {
                    seen.insert(pid);
                    let r = procs::status_kib(pid, "VmRSS").unwrap_or(0);
                    max_each = max_each.max(procs::status_kib(pid, "VmHWM").unwrap_or(0).max(r));
                    rss += r;
                    pss += procs::pss_kib(pid).unwrap_or(0);
                }
                peak_rss = peak_rss.max(rss);
                peak_pss = peak_pss.max(pss);
                peak_count = peak_count.max(pids.len());
                std::thread::sleep(Duration::from_millis(50));
            }
            json!({
                "seen": seen.len(), "peak_alive": peak_count,
                "max_each_mib": max_each as f64 / 1024.0,
                "peak_total_rss_mib": peak_rss as f64 / 1024.0,
                "peak_total_pss_mib": peak_pss as f64 / 1024.0,
            })
        });
        SupervisorSampler { stop, handle }
    }

    fn stop(self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(Value::Null)
    }
}

fn write_wrapper(path: &Path, packer: &Path, exits: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let script = format!(
        r#"#!/bin/bash
# kiln bench: runs the real Packer, then records when it exited, just before exiting with its code.
ami=
for a in "$@"; do case $a in aws_target_ami=*) ami=${{a#aws_target_ami=}};; esac; done
printf '%s start-%s\n' "$EPOCHREALTIME" "$ami" >> '{exits}'
'{packer}' "$@"
rc=$?
printf '%s %s\n' "$EPOCHREALTIME" "$ami" >> '{exits}'
exit $rc
"#,
        packer = packer.display(),
        exits = exits.display()
    );
    std::fs::write(path, script)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    // It exists from the start, so the bench can watch it (procs::FileWatch).
    std::fs::write(exits, "")?;
    Ok(())
}

fn bake_body(pkg: &str) -> String {
    json!({
        "package": pkg,
        "base_os": "ubuntu",
        "cloud_provider_type": "aws",
        "build_number": "1",
        "commit_hash": "abc123",
        "user": "bench",
    })
    .to_string()
}

fn post_bake(conn: &mut Conn, pkg: &str) -> Result<String> {
    let r = conn.request(
        "POST",
        &format!("/api/v1/{REGION}/bake"),
        bake_body(pkg).as_bytes(),
    )?;
    if r.status != 200 {
        bail!(
            "POST bake: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    let v = r.json()?;
    if v["state"] != "RUNNING" {
        bail!("a new bake should read RUNNING: {v}");
    }
    Ok(v["id"].as_str().context("bake id")?.to_string())
}

fn log_of(conn: &mut Conn, id: &str) -> String {
    conn.get_json(&format!("/api/v1/{REGION}/logs/{id}"))
        .map(|v| v["logsContent"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn target_ami(view: &Value) -> Result<String> {
    Ok(view["recipe"]["variables"]["aws_target_ami"]
        .as_str()
        .context("recipe.variables.aws_target_ami")?
        .to_string())
}

/// The exact argv kiln ran (`recipe.command`).
fn command_of(view: &Value) -> Result<Vec<String>> {
    let argv: Vec<String> = view["recipe"]["command"]
        .as_array()
        .context("recipe.command")?
        .iter()
        .map(|a| a.as_str().map(str::to_string).context("argv entry"))
        .collect::<Result<_>>()?;
    if argv.iter().any(|a| a.contains("******")) {
        bail!("the stored command has masked values; it cannot be re-run as it is");
    }
    Ok(argv)
}

/// The argv with another AMI name (Packer refuses to build over an existing one).
fn renamed(argv: &[String], suffix: &str) -> Vec<String> {
    argv.iter()
        .map(|a| match a.strip_prefix("aws_target_ami=") {
            Some(name) => format!("aws_target_ami={name}{suffix}"),
            None => a.clone(),
        })
        .collect()
}

/// The exact argv kiln ran for a bake, with the AMI name made its own.
fn direct_argv(view: &Value) -> Result<Vec<String>> {
    Ok(renamed(&command_of(view)?, "-direct"))
}

fn seed_id(i: usize) -> String {
    format!("seed-{i:06}")
}

/// Fills the store at `db` with `count` finished bakes shaped like `template`, through the store
/// API (before kiln opens the file).
fn seed_store(db: &Path, count: usize, template: &BakeRecord) -> Result<Duration> {
    let t0 = Instant::now();
    let store = SqliteStore::open(db)?;
    let base = template.created_ms - count as i64 * 1000;
    for i in 0..count {
        let mut r = template.clone();
        r.id = seed_id(i);
        r.identity = format!("{:064x}", 0x5eed_0000_0000u64 + i as u64);
        r.created_ms = base + i as i64 * 1000;
        r.started_ms = Some(r.created_ms + 5);
        r.updated_ms = r.created_ms + 600;
        if let Some(d) = r.details.as_mut() {
            d.id = r.id.clone();
            if let Some(a) = d.artifact.as_mut() {
                a.uuid = Some(r.id.clone());
            }
        }
        store.create(&r, false)?;
    }
    Ok(t0.elapsed())
}

/// A finished bake like one kiln stores after an AWS bake, for `bench seed`.
fn synthetic_record() -> BakeRecord {
    let mut vars = serde_json::Map::new();
    for (k, v) in [
        ("aws_region", "us-east-1"),
        ("aws_instance_type", "t3.micro"),
        ("aws_source_ami", "ami-785db401"),
        ("aws_target_ami", "hello-all-1700000000000-ubuntu"),
        ("aws_ssh_username", "ubuntu"),
        ("aws_subnet_id", "subnet-0123456789abcdef0"),
        ("aws_vpc_id", "vpc-0123456789abcdef0"),
        ("aws_associate_public_ip_address", "true"),
        ("appversion", "hello-1.0-h4.abc123"),
        ("build_host", "https://jenkins.example.com"),
        ("build_info_url", "https://jenkins.example.com/job/hello/4"),
        ("package_type", "deb"),
        ("packages", "hello=1.0-h4.abc123"),
        ("repository", "http://repo.example.com/apt stable main"),
        ("upgrade", "false"),
        ("configDir", "/var/lib/kiln/packer"),
    ] {
        vars.insert(k.into(), json!(v));
    }
    let mut command = vec!["packer", "build", "-color=false", "-machine-readable"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for (k, v) in &vars {
        command.push("-var".into());
        command.push(format!("{k}={}", v.as_str().unwrap_or("")));
    }
    command.push("/var/lib/kiln/packer/aws-ebs.json".into());
    serde_json::from_value(json!({
        "id": "template", "key": "bake:aws:hvm:ubuntu:hello=1.0-h4.abc123:us-east-1",
        "identity": "0".repeat(64), "region": "us-east-1", "provider": "aws",
        "phase": "succeeded", "cause": "success",
        "request": {"package": "hello_1.0-h4.abc123_all", "base_os": "ubuntu",
                    "cloud_provider_type": "aws", "build_number": "4", "commit_hash": "abc123",
                    "user": "pipeline"},
        "recipe": {"name": "hello-all-1700000000000-ubuntu", "version": "hello-1.0-h4.abc123",
                   "command": command, "variables": vars, "template": "aws-ebs.json"},
        "inputs": {"provider": "aws", "region": "us-east-1", "base_os": "ubuntu",
                   "variables": vars, "template": {"aws-ebs.json": "f".repeat(64)}},
        "created_ms": 1_700_000_000_000i64, "updated_ms": 1_700_000_000_600i64,
        "started_ms": 1_700_000_000_005i64,
        "details": {"id": "template", "ami": "ami-0123456789abcdef0",
                    "image_name": "hello-all-1700000000000-ubuntu", "regions": ["us-east-1"],
                    "artifact": {"type": "aws/image", "name": "hello-all-1700000000000-ubuntu",
                                 "location": "us-east-1", "reference": "ami-0123456789abcdef0",
                                 "uuid": "template",
                                 "metadata": {"build_info_url": null, "build_number": "4"}}},
        "error": null, "execution_id": "01HBENCH", "instance_id": "bench@localhost",
    }))
    .expect("a valid synthetic record")
}

fn print_table(rows: &[Row]) {
    let w = |f: &dyn Fn(&Row) -> usize, min: usize| rows.iter().map(f).max().unwrap_or(0).max(min);
    let (ws, wm, wv, wt) = (
        w(&|r| r.section.chars().count(), 7),
        w(&|r| r.metric.chars().count(), 6),
        w(&|r| r.value.chars().count(), 5),
        w(&|r| r.target.chars().count(), 6),
    );
    let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n.saturating_sub(s.chars().count())));
    println!(
        "\n{} | {} | {} | {} | ok",
        pad("section", ws),
        pad("metric", wm),
        pad("value", wv),
        pad("target", wt)
    );
    println!("{}", "-".repeat(ws + wm + wv + wt + 14));
    for r in rows {
        let ok = match r.ok {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!(
            "{} | {} | {} | {} | {ok}",
            pad(r.section, ws),
            pad(&r.metric, wm),
            pad(&r.value, wv),
            pad(&r.target, wt)
        );
    }
}

fn now_epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn command_out(cmd: &mut Command) -> String {
    cmd.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    pct(&s, 50.0)
}

/// Nearest-rank percentile of sorted values (linear between ranks for the median).
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    if p == 50.0 && sorted.len().is_multiple_of(2) {
        let m = sorted.len() / 2;
        return (sorted[m - 1] + sorted[m]) / 2.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The same for integer microseconds.
pub fn percentile_us(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}
