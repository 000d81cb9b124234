//! Child processes for the benchmarks (the origin binary, ffmpeg
//! publishers) that never outlive the benchmark, and their CPU accounting.
//!
//! A [`Guarded`] child is killed and reaped when dropped, which covers normal
//! exit and panics (unwinding). On Linux it is also started through
//! util-linux `setpriv --pdeathsig KILL` when available, so the kernel kills
//! it if the benchmark itself dies without unwinding (SIGKILL, Ctrl-C).

use std::{
    net::{SocketAddr, TcpListener, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// True when `tool` is an executable file on `PATH`.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// A child process killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Guarded {
    child: Child,
    what: String,
}

impl Guarded {
    /// Spawns `program args...` with stdin closed, stdout discarded and
    /// stderr inherited, behind `setpriv --pdeathsig KILL` when available
    /// (`setpriv` execs the program, so [`pid`](Self::pid) is the
    /// program's). `prefix` (e.g. `taskset -c 0`) goes before the program.
    pub fn spawn(prefix: &[String], program: &str, args: &[String]) -> Result<Self> {
        let mut argv: Vec<String> = Vec::new();
        if on_path("setpriv") {
            argv.extend(["setpriv", "--pdeathsig", "KILL", "--"].map(str::to_owned));
        }
        argv.extend(prefix.iter().cloned());
        argv.push(program.to_owned());
        argv.extend(args.iter().cloned());
        let what = argv.join(" ");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn {what}"))?;
        Ok(Self { child, what })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line it was started with.
    pub fn command(&self) -> &str {
        &self.what
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("`{}` exited: {status}", self.what),
            None => Ok(()),
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`,
/// 100 when that fails, which is what Linux uses everywhere).
pub fn clock_ticks_per_sec() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// CPU time (user + system, all threads) a process has used so far, from
/// `/proc/PID/stat` (`self` for this process). Resolution: one clock tick
/// (10 ms).
pub fn cpu_time(pid: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name, which may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at 3.
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i - 3)
            .context("short /proc stat")?
            .parse::<u64>()
            .context("bad /proc stat field")
    };
    let total = ticks(14)? + ticks(15)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks_per_sec() as f64,
    ))
}

/// Measures a process's CPU use as a share of one core between two points.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    pid: String,
    at: Instant,
    cpu: Duration,
}

impl CpuMeter {
    /// Starts measuring `pid` (`"self"` for this process).
    pub fn start(pid: &str) -> Result<Self> {
        Ok(Self {
            pid: pid.to_owned(),
            at: Instant::now(),
            cpu: cpu_time(pid)?,
        })
    }

    /// Percent of one core used since the start (or the previous lap), and
    /// restarts the window.
    pub fn lap(&mut self) -> Result<f64> {
        let now = Instant::now();
        let cpu = cpu_time(&self.pid)?;
        let pct = (cpu - self.cpu).as_secs_f64() / (now - self.at).as_secs_f64() * 100.0;
        self.at = now;
        self.cpu = cpu;
        Ok(pct)
    }
}

/// A free loopback TCP port (bound then released; the benchmark binds it
/// again right away).
pub fn free_tcp_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A free loopback UDP port, for the SRT listener.
pub fn free_udp_addr() -> Result<SocketAddr> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?)
}

/// The release `livestack` binary: `$LIVESTACK_BIN`, else
/// `target/release/livestack` of this workspace (`$CARGO_TARGET_DIR` is
/// honoured).
pub fn origin_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LIVESTACK_BIN") {
        return Ok(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("release/livestack");
    if !bin.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release -p livestack` \
             (or set LIVESTACK_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

/// How to start the origin binary.
#[derive(Debug, Clone)]
pub struct OriginSpec {
    /// Runtime worker threads (`--threads`); `None` for the default.
    pub threads: Option<usize>,
    /// Pin to this CPU with `taskset -c`.
    pub cpu: Option<usize>,
    /// LL-HLS part target.
    pub part_target: Duration,
    /// Scheduling niceness (absolute; negative needs root), to keep
    /// unrelated work on a shared machine from delaying the origin.
    pub nice: Option<i32>,
}

/// A running origin process on free loopback ports.
#[derive(Debug)]
pub struct OriginProcess {
    /// The process (killed on drop).
    pub child: Guarded,
    /// Its SRT listener.
    pub srt: SocketAddr,
    /// Its HTTP listener.
    pub http: SocketAddr,
}

impl OriginProcess {
    /// Starts the release origin binary and waits until `/healthz` answers.
    /// Logs at `warn` (`LIVESTACK_LOG` overrides).
    pub async fn start(spec: &OriginSpec) -> Result<Self> {
        let bin = origin_binary()?;
        let srt = free_udp_addr()?;
        let http = free_tcp_addr()?;
        let mut prefix = Vec::new();
        if let Some(cpu) = spec.cpu {
            if !on_path("taskset") {
                bail!("`taskset` (util-linux) is needed to pin the origin to a core");
            }
            prefix.extend(["taskset".to_owned(), "-c".to_owned(), cpu.to_string()]);
        }
        if let Some(n) = spec.nice {
            prefix.splice(0..0, nice_prefix(n)?);
        }
        let mut args = Vec::new();
        if let Some(t) = spec.threads {
            args.extend(["--threads".to_owned(), t.to_string()]);
        }
        args.extend([
            "origin".to_owned(),
            "--srt".to_owned(),
            srt.to_string(),
            "--http".to_owned(),
            http.to_string(),
            "--part-target".to_owned(),
            format!("{}ms", spec.part_target.as_millis()),
        ]);
        if std::env::var_os("LIVESTACK_LOG").is_none() {
            // Through env(1), which execs: the pid stays the origin's.
            prefix.splice(0..0, ["env".to_owned(), "LIVESTACK_LOG=warn".to_owned()]);
        }
        let mut child = Guarded::spawn(&prefix, &bin.to_string_lossy(), &args)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            child.check_running()?;
            if let Ok(mut c) = crate::http1::Conn::connect(http).await
                && let Ok(r) = c.get("/healthz", false).await
                && r.status == 200
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("origin did not answer /healthz within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { child, srt, http })
    }
}

/// This process's current niceness (`/proc/self/stat` field 19).
pub fn own_niceness() -> Result<i32> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    rest.split_whitespace()
        .nth(19 - 3)
        .context("short stat")?
        .parse()
        .context("bad niceness")
}

/// `nice -n D` that brings a child of this process to niceness `target`
/// (children inherit ours, and `nice -n` is relative).
///
/// # Errors
/// When this process's niceness cannot be read.
pub fn nice_prefix(target: i32) -> Result<Vec<String>> {
    let delta = target - own_niceness()?;
    Ok(["nice".to_owned(), "-n".to_owned(), delta.to_string()].to_vec())
}

/// Sets the niceness of this process (all its threads) with `renice`;
/// negative values need root.
pub fn renice_self(nice: i32) -> Result<()> {
    let pid = std::process::id().to_string();
    // renice -p changes one thread; -g the process group would reach too
    // far, so list every thread of this process.
    let tasks: Vec<String> = std::fs::read_dir("/proc/self/task")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let status = Command::new("renice")
        .args(["-n", &nice.to_string(), "-p"])
        .args(if tasks.is_empty() { vec![pid] } else { tasks })
        .stdout(Stdio::null())
        .status()
        .context("run renice")?;
    if !status.success() {
        bail!("renice -n {nice} failed (negative values need root)");
    }
    Ok(())
}

/// Starts ffmpeg publishing `source` to `srt` as stream `name` in real time
/// (`-re`, stream copy), looping forever when `looped`, pinned to `cpu` and
/// at (absolute) niceness `nice` when given.
pub fn publish(
    srt: SocketAddr,
    name: &str,
    source: &Path,
    looped: bool,
    cpu: Option<usize>,
    nice: Option<i32>,
) -> Result<Guarded> {
    let mut prefix = Vec::new();
    if let Some(n) = nice {
        prefix.extend(nice_prefix(n)?);
    }
    if let Some(cpu) = cpu {
        prefix.extend(["taskset".to_owned(), "-c".to_owned(), cpu.to_string()]);
    }
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin"]
        .map(str::to_owned)
        .to_vec();
    if looped {
        args.extend(["-stream_loop".to_owned(), "-1".to_owned()]);
    }
    args.extend(["-re".to_owned(), "-i".to_owned()]);
    args.push(source.to_string_lossy().into_owned());
    args.extend(["-c", "copy", "-f", "mpegts"].map(str::to_owned));
    args.push(livestack_test_harness::srt_url(
        srt,
        &format!("#!::r=live/{name},m=publish"),
    ));
    Guarded::spawn(&prefix, "ffmpeg", &args)
}
