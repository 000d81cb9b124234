//! Child processes for the benchmarks (a server under test, ffmpeg
//! publishers) that never outlive the benchmark, their CPU accounting, free
//! loopback ports and niceness.
//!
//! A [`Guarded`] child is killed and reaped when dropped, which covers normal
//! exit and panics (unwinding). On Linux it is also started through
//! util-linux `setpriv --pdeathsig KILL` when available, so the kernel kills
//! it if the benchmark itself dies without unwinding (SIGKILL, Ctrl-C).

use std::{
    net::{SocketAddr, TcpListener, UdpSocket},
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
