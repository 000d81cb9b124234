//! A real `redis-server` process for tests.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the `redis-server` binary (default:
/// `redis-server` on `PATH`).
pub const REDIS_SERVER_ENV: &str = "LIVESTACK_REDIS_SERVER";

/// How long a start or restart may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// What the process is.
#[derive(Debug, Clone)]
enum Mode {
    /// A data server: extra configuration lines (e.g. `replicaof …`), and
    /// whether the port speaks TLS.
    Server { extra: Vec<String>, tls: bool },
    /// A Sentinel watching the primary on `primary_port` as `service`.
    Sentinel { service: String, primary_port: u16 },
}

/// A `redis-server` on a free loopback port and a Unix socket, in its own
/// temporary directory (removed on drop).
///
/// Persistence: append-only file with `appendfsync always` (and no RDB
/// snapshots), so every acknowledged write survives [`kill`](Self::kill)
/// (SIGKILL) as well as [`stop`](Self::stop), and
/// [`restart`](Self::restart) (same port, same directory) brings the data
/// back. Durability, not speed, is what the tests need.
///
/// The methods block the calling thread (at most 15 s for a
/// start); from an async test on a multi-thread runtime that is fine, or
/// use `tokio::task::block_in_place`. Failures panic with the server's log:
/// this is test support.
///
/// A missing `redis-server` binary panics with a message pointing at the
/// README's test command (`tests/run.sh`), which installs it; tests never
/// skip silently.
#[derive(Debug)]
pub struct RedisServer {
    dir: tempfile::TempDir,
    port: u16,
    mode: Mode,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a standalone server and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::start_mode(Mode::Server {
            extra: Vec::new(),
            tls: false,
        })
    }

    /// Starts a server with extra `redis.conf` lines (e.g.
    /// `["replicaof 127.0.0.1 6379"]`) and waits until it answers `PING`.
    pub fn start_with(config: &[&str]) -> Self {
        Self::start_mode(Mode::Server {
            extra: config.iter().map(|s| (*s).to_owned()).collect(),
            tls: false,
        })
    }

    /// Starts a server whose TCP port speaks TLS only, with a certificate
    /// for 127.0.0.1 signed by a CA made for it (with the `openssl`
    /// command; clients trust it through [`tls_ca_pem`](Self::tls_ca_pem)).
    /// The Unix socket stays plain.
    pub fn start_tls() -> Self {
        Self::start_mode(Mode::Server {
            extra: Vec::new(),
            tls: true,
        })
    }

    /// Starts `redis-server --sentinel` monitoring the primary on
    /// `127.0.0.1:primary_port` as `service` (quorum 1, down after 300 ms,
    /// failover timeout 3 s).
    pub(crate) fn start_sentinel(service: &str, primary_port: u16) -> Self {
        Self::start_mode(Mode::Sentinel {
            service: service.to_owned(),
            primary_port,
        })
    }

    fn start_mode(mode: Mode) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("livestack-redis-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for redis: {e}"));
        if matches!(mode, Mode::Server { tls: true, .. }) {
            make_certificate(dir.path());
        }
        let mut server = RedisServer {
            dir,
            port: 0,
            mode,
            child: None,
        };
        // Another process may take the free port between probing and
        // binding: try a few.
        for attempt in 1..=5 {
            server.port = free_port();
            server.spawn();
            match server.wait_ready() {
                Ok(()) => return server,
                Err(e) if attempt < 5 && server.log().contains("Address already in use") => {
                    server.kill();
                    let _ = std::fs::remove_file(server.dir.path().join("redis.log"));
                    eprintln!("redis-server: port {} taken ({e}), retrying", server.port);
                }
                Err(e) => server.fail(&e),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://127.0.0.1:PORT` for a
    /// [TLS server](Self::start_tls).
    pub fn url(&self) -> String {
        if self.tls() {
            format!("rediss://127.0.0.1:{}", self.port)
        } else {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    /// The PEM of the CA that signed a [TLS server](Self::start_tls)'s
    /// certificate (`None` for a plain server).
    pub fn tls_ca_pem(&self) -> Option<Vec<u8>> {
        self.tls().then(|| {
            std::fs::read(self.dir.path().join("ca.crt"))
                .unwrap_or_else(|e| panic!("the test CA certificate: {e}"))
        })
    }

    fn tls(&self) -> bool {
        matches!(self.mode, Mode::Server { tls: true, .. })
    }

    /// `redis+unix:///…/redis.sock` (the server also listens there).
    pub fn unix_url(&self) -> String {
        format!("redis+unix://{}", self.socket_path().display())
    }

    /// The Unix socket's path.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The TCP port (stays the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's directory (configuration, append-only file, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        // Only used in failure messages; no log file yet reads as empty.
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// The process id while it runs (to send it signals, e.g. `SIGSTOP`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// A blocking client of this server, for raw commands in tests.
    pub fn client(&self) -> ::redis::Client {
        crate::redis::client_for(&self.url(), self.tls_ca_pem().as_deref())
            .unwrap_or_else(|e| panic!("redis client for {}: {e}", self.url()))
    }

    /// Runs one raw command (blocking) and returns its reply.
    ///
    /// # Errors
    /// Whatever the server or the connection says.
    pub fn query<T: ::redis::FromRedisValue>(
        &self,
        cmd: &mut ::redis::Cmd,
    ) -> ::redis::RedisResult<T> {
        let mut conn = self
            .client()
            .get_connection_with_timeout(Duration::from_secs(2))?;
        cmd.query(&mut conn)
    }

    /// Kills the process with SIGKILL (no shutdown, no save beyond the
    /// append-only file) and waits until it is gone. A no-op if stopped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server cleanly (`SHUTDOWN`, which flushes the
    /// append-only file) and waits until it is gone (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // The server closes the connection instead of answering.
        let _ = self.query::<()>(&mut ::redis::cmd("SHUTDOWN"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same port and directory (stopping it
    /// first if it runs), with the data it had, and waits until it answers.
    pub fn restart(&mut self) {
        if self.is_running() {
            self.stop();
        }
        self.kill();
        // The port may linger for a moment; retry within the start timeout.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.spawn();
            match self.wait_ready() {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline && self.log().contains("already in use") => {
                    self.kill();
                    eprintln!("redis-server: port {} busy on restart ({e})", self.port);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => self.fail(&e),
            }
        }
    }

    fn config(&self) -> String {
        let dir = self.dir.path().display();
        let mut c = String::new();
        let _ = writeln!(c, "bind 127.0.0.1");
        if self.tls() {
            let _ = writeln!(c, "port 0");
            let _ = writeln!(c, "tls-port {}", self.port);
            let _ = writeln!(c, "tls-cert-file \"{dir}/tls.crt\"");
            let _ = writeln!(c, "tls-key-file \"{dir}/tls.key\"");
            let _ = writeln!(c, "tls-ca-cert-file \"{dir}/tls.crt\"");
            let _ = writeln!(c, "tls-auth-clients no");
        } else {
            let _ = writeln!(c, "port {}", self.port);
        }
        let _ = writeln!(c, "dir \"{dir}\"");
        let _ = writeln!(c, "logfile \"{dir}/redis.log\"");
        let _ = writeln!(c, "daemonize no");
        match &self.mode {
            Mode::Server { extra, .. } => {
                let _ = writeln!(c, "unixsocket \"{dir}/redis.sock\"");
                let _ = writeln!(c, "unixsocketperm 700");
                let _ = writeln!(c, "appendonly yes");
                let _ = writeln!(c, "appendfsync always");
                let _ = writeln!(c, "save \"\"");
                // A replica's first sync starts at once (Redis waits 5 s by
                // default for more replicas to join a diskless transfer).
                let _ = writeln!(c, "repl-diskless-sync-delay 0");
                for line in extra {
                    let _ = writeln!(c, "{line}");
                }
            }
            Mode::Sentinel {
                service,
                primary_port,
            } => {
                let _ = writeln!(c, "sentinel monitor {service} 127.0.0.1 {primary_port} 1");
                let _ = writeln!(c, "sentinel down-after-milliseconds {service} 300");
                let _ = writeln!(c, "sentinel failover-timeout {service} 3000");
                let _ = writeln!(c, "sentinel parallel-syncs {service} 1");
            }
        }
        c
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("redis.conf");
        // Written for each new port only: a Sentinel rewrites its file with
        // what it learned (the current primary) and keeps it on restart.
        if self.port_in_conf_differs(&conf) {
            std::fs::write(&conf, self.config())
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", conf.display()));
        }
        let mut cmd = Command::new(redis_server_binary());
        cmd.arg(&conf);
        if matches!(self.mode, Mode::Sentinel { .. }) {
            cmd.arg("--sentinel");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server: {e}; {}", HOW_TO_INSTALL));
        self.child = Some(child);
    }

    fn port_in_conf_differs(&self, conf: &Path) -> bool {
        std::fs::read_to_string(conf)
            .map(|c| !c.contains(&format!(" {}\n", self.port)))
            .unwrap_or(true)
    }

    /// Waits until the server answers `PING` (a server loading its
    /// append-only file answers `LOADING` first).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if !self.is_running() {
                return Err(format!("redis-server exited ({last})"));
            }
            match self.query::<String>(&mut ::redis::cmd("PING")) {
                Ok(pong) if pong == "PONG" => return Ok(()),
                Ok(other) => last = other,
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("no PONG within {START_TIMEOUT:?} ({last})"))
    }

    fn fail(&mut self, why: &str) -> ! {
        self.kill();
        panic!(
            "redis-server on port {} did not start: {why}\n--- log ---\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

const HOW_TO_INSTALL: &str = "the Redis tests need redis-server: run the README's test command \
     `tests/run.sh` (it installs redis-server with apt), or `apt-get install redis-server`, or set \
     LIVESTACK_REDIS_SERVER to the binary";

/// The `redis-server` binary: `$LIVESTACK_REDIS_SERVER`, else the first
/// `redis-server` on `PATH` (or in `/usr/bin`, `/usr/sbin`,
/// `/usr/local/bin`).
///
/// # Panics
/// When there is none, with a message saying how to install it.
pub fn redis_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os(REDIS_SERVER_ENV) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{REDIS_SERVER_ENV}={} is not a file; {HOW_TO_INSTALL}",
            p.display()
        );
        return p;
    }
    // No PATH: nothing to search; the caller fails with the install hint.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("redis-server not found; {HOW_TO_INSTALL}"))
}

/// A test CA (`ca.crt`) and a certificate for 127.0.0.1 and `localhost`
/// signed by it (`tls.crt`, `tls.key`) in `dir`, made with the `openssl`
/// command (P-256 keys, valid two days).
fn make_certificate(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap_or_else(|e| panic!("cannot write leaf.ext: {e}"));
    let steps: [&[&str]; 3] = [
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", "/CN=livestack test CA"],
            &["-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat(),
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "tls.key",
                "-out",
                "tls.csr",
            ],
        ]
        .concat(),
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "tls.crt",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl (apt-get install openssl): {e}"));
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}
