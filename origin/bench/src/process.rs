//! The origin benchmarks' processes: the release `livestack` origin binary
//! on free loopback ports, ffmpeg publishers, on top of the shared
//! [`livestack_bench_support::process`] helpers (re-exported here).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

pub use livestack_bench_support::process::*;

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
    /// Also serve Media over QUIC (`--webtransport` on a free UDP port).
    pub webtransport: bool,
    /// Also serve HTTPS (HTTP/1.1 and HTTP/2 over TLS, HTTP/3; `--https`
    /// on a free port, self-signed certificate).
    pub https: bool,
    /// Also serve WebRTC (`--webrtc` on a free loopback UDP port, WHIP and
    /// WHEP on the HTTP listener).
    pub webrtc: bool,
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
    /// Its Media over QUIC listener, if asked for.
    pub webtransport: Option<SocketAddr>,
    /// Its HTTPS listener, if asked for.
    pub https: Option<SocketAddr>,
    /// Its WebRTC UDP port, if asked for.
    pub webrtc: Option<SocketAddr>,
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
        let webtransport = if spec.webtransport {
            let addr = free_udp_addr()?;
            args.extend(["--webtransport".to_owned(), addr.to_string()]);
            Some(addr)
        } else {
            None
        };
        let https = if spec.https {
            let addr = free_tcp_addr()?;
            args.extend(["--https".to_owned(), addr.to_string()]);
            Some(addr)
        } else {
            None
        };
        let webrtc = if spec.webrtc {
            let addr = free_udp_addr()?;
            args.extend(["--webrtc".to_owned(), addr.to_string()]);
            Some(addr)
        } else {
            None
        };
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
        Ok(Self {
            child,
            srt,
            http,
            webtransport,
            https,
            webrtc,
        })
    }
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
