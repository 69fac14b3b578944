//! The processes the bench starts (moto, kiln), each stopped by its PID when dropped, and what
//! `/proc` says about a process (RSS, CPU time) and about the machine.

use crate::http::Conn;
use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Pids to stop if the bench itself is interrupted (Drop does not run then), and whether it
/// was (then a process started meanwhile is killed at once).
static STARTED: std::sync::Mutex<(Vec<i32>, bool)> = std::sync::Mutex::new((Vec::new(), false));

fn started(pid: i32, alive: bool) {
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    started.0.retain(|&p| p != pid);
    if alive && started.1 {
        // SAFETY: kill(2) of a process this bench just started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    } else if alive {
        started.0.push(pid);
    }
}

/// On SIGINT, SIGTERM or SIGHUP: stop what the bench started (by pid), then exit. Call first
/// in `main`, before any thread starts (they inherit the blocked mask; so would children, but
/// [`in_new_session`] unblocks everything for them).
pub fn stop_started_on_signal() {
    // SAFETY: plain sigset manipulation and a signal mask change for this thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waits for one of the signals blocked above.
        unsafe { libc::sigwait(&set, &mut sig) };
        let pids = {
            let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
            started.1 = true;
            started.0.clone()
        };
        eprintln!("bench: interrupted (signal {sig}); stopping {pids:?}");
        for pid in pids {
            terminate_pid(pid, Duration::from_secs(5));
        }
        std::process::exit(130);
    });
}

/// A moto EC2 server on loopback, started with the tests' `moto-start.sh`.
pub struct Moto {
    pub endpoint: String,
    pid: i32,
}

impl Moto {
    pub fn start(repo: &Path, venv: &Path, dir: &Path) -> io::Result<Moto> {
        for _ in 0..3 {
            let port = free_port()?;
            let out = in_new_session(
                Command::new(repo.join("tests/support/moto-start.sh"))
                    .arg(venv)
                    .arg(port.to_string())
                    .arg(dir),
            )
            .output()?;
            if out.status.success() {
                let pid = std::fs::read_to_string(dir.join("moto.pid"))?
                    .trim()
                    .parse()
                    .map_err(io::Error::other)?;
                // The emulated cloud should answer like an external service, whatever the
                // bakes do to this machine's CPU: its session's autogroup gets top priority.
                started(pid, true);
                if let Err(e) = std::fs::write(format!("/proc/{pid}/autogroup"), "-20") {
                    eprintln!(
                        "bench: cannot raise moto's autogroup priority ({e}); figures are noisier"
                    );
                }
                return Ok(Moto {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    pid,
                });
            }
            eprintln!(
                "bench: moto did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(io::Error::other("moto_server did not start"))
    }

    /// A VPC, a subnet and the source AMI (`moto-seed.py`).
    pub fn seed(&self, repo: &Path, venv: &Path) -> io::Result<serde_json::Value> {
        let out = Command::new(venv.join("bin/python"))
            .arg(repo.join("tests/support/moto-seed.py"))
            .arg(&self.endpoint)
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "moto-seed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        serde_json::from_slice(&out.stdout).map_err(io::Error::other)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // moto was started in the background by a script: not our child, so poll for its end.
        terminate_pid(self.pid, Duration::from_secs(5));
        started(self.pid, false);
    }
}

/// A running `kiln serve --port 0`, stopped (SIGTERM, then SIGKILL) by PID when dropped.
pub struct Kiln {
    child: Child,
    pub addr: SocketAddr,
    /// From exec to the first `GET /health` answered 200.
    pub ready_after: Duration,
}

impl Kiln {
    pub fn start(exe: &Path, data: &Path, config: &Path) -> io::Result<Kiln> {
        std::fs::create_dir_all(data)?;
        let addr_file = data.join("kiln.addr");
        let _ = std::fs::remove_file(&addr_file);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("kiln.stderr.log"))?;
        let t0 = Instant::now();
        let child = in_new_session(&mut Command::new(exe))
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(data)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        started(child.id() as i32, true);
        let mut kiln = Kiln {
            child,
            addr: "127.0.0.1:0".parse().expect("addr"),
            ready_after: Duration::ZERO,
        };
        let deadline = t0 + Duration::from_secs(30);
        loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file)
                && let Ok(addr) = a.trim().parse()
            {
                kiln.addr = addr;
                break;
            }
            if let Some(status) = kiln.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "kiln exited ({status}); see {}",
                    data.join("kiln.stderr.log").display()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("kiln did not write kiln.addr within 30 s"));
            }
            std::thread::sleep(Duration::from_micros(250));
        }
        let mut conn = Conn::new(kiln.addr);
        loop {
            if let Ok(r) = conn.get("/health")
                && r.status == 200
            {
                kiln.ready_after = t0.elapsed();
                return Ok(kiln);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(
                    "kiln's /health did not answer 200 within 30 s",
                ));
            }
            std::thread::sleep(Duration::from_micros(250));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmRSS`, `VmHWM`, … of kiln, in MiB.
    pub fn mem_mib(&self, field: &str) -> f64 {
        status_kib(self.pid(), field).unwrap_or(0) as f64 / 1024.0
    }

    /// SIGTERM, then wait (kiln stops at once and leaves bakes to their supervisors).
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        started(self.child.id() as i32, false);
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kiln {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// SIGTERM to a process that is not our child; SIGKILL if it outlives `grace`.
pub fn terminate_pid(pid: i32, grace: Duration) {
    // SAFETY: kill(2) with a pid this bench started and recorded.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        // SAFETY: signal 0 only checks the pid exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Starts the command in a session of its own, with no signal blocked. With autogroup
/// scheduling (Linux's default outside CPU cgroups) a session is the unit the CPU is shared by,
/// and kiln's supervisors each start one: bare `packer build`s, kiln and moto get one each too,
/// so no two of them share.
pub fn in_new_session(cmd: &mut Command) -> &mut Command {
    // SAFETY: setsid and sigprocmask are async-signal-safe; nothing else runs between fork and
    // exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        })
    }
}

pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A field of `/proc/<pid>/status` in kB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// User + system CPU seconds of a process (all its threads), from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_seconds(pid, [11, 12])
}

/// CPU seconds of the children a process has waited for (and theirs, recursively).
pub fn children_cpu_seconds(pid: u32) -> f64 {
    stat_seconds(pid, [13, 14])
}

fn stat_seconds(pid: u32, which: [usize; 2]) -> f64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces) start after the last ')'.
    let Some(rest) = text.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14 to 17 of stat; `rest` starts at field 3.
    let ticks: u64 = which
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// CPU seconds this process has used.
pub fn own_cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_SELF)
}

/// CPU seconds of this process's waited-for children (and theirs).
pub fn own_children_cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_CHILDREN)
}

fn rusage_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Wakes when a file is written (inotify), so the bench can wait for the packer wrapper's
/// record without polling (a poll every millisecond takes CPU from the Packer it waits for).
pub struct FileWatch {
    fd: i32,
}

impl FileWatch {
    pub fn new(path: &Path) -> io::Result<FileWatch> {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: plain syscalls on a descriptor this struct owns.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::inotify_add_watch(fd, name.as_ptr(), libc::IN_MODIFY) < 0 {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            Ok(FileWatch { fd })
        }
    }

    /// Returns once the file was written since the last call, or after `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut buf = [0u8; 4096];
        // SAFETY: poll and read on our own descriptor, into a buffer we own.
        unsafe {
            libc::poll(
                &mut pfd,
                1,
                timeout.as_millis().min(i32::MAX as u128) as i32,
            );
            while libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) > 0 {}
        }
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this struct owns.
        unsafe { libc::close(self.fd) };
    }
}

/// Finds `kiln __supervise` children of kiln (supervisors detach with `setsid` but stay kiln's
/// children until they exit). Remembers what it has classified, so a scan reads only new pids.
#[derive(Default)]
pub struct SupervisorFinder {
    known: std::collections::HashMap<u32, bool>,
}

impl SupervisorFinder {
    pub fn scan(&mut self, kiln_pid: u32) -> Vec<u32> {
        let mut alive = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return alive;
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let ours = *self
                .known
                .entry(pid)
                .or_insert_with(|| is_supervisor_of(pid, kiln_pid));
            if ours {
                alive.push(pid);
            }
        }
        alive
    }
}

fn is_supervisor_of(pid: u32, kiln_pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok());
    if ppid != Some(kiln_pid) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains("__supervise")
}

/// Proportional set size (shared pages split among the processes sharing them), in kB.
pub fn pss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("Pss:")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The machine, for the record.
pub fn machine(packer: &Path) -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim())
        })
        .unwrap_or("unknown")
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let out = |cmd: &mut Command| {
        cmd.output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    serde_json::json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "cpu": cpu,
        "kernel": out(Command::new("uname").arg("-sr")),
        "packer": out(Command::new(packer).arg("version")),
        "rustc": out(Command::new("rustc").arg("--version")),
        "git": out(Command::new("git").args(["rev-parse", "--short", "HEAD"])),
    })
}

/// CPU seconds the whole machine has spent busy (all CPUs, `/proc/stat`: everything but idle
/// and iowait).
pub fn machine_busy_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return 0.0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = v
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| x)
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    busy as f64 / hz
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Resolves a program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}
