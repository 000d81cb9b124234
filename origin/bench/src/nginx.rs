//! Debian's `nginx` as a reference static file server for the load
//! generator's calibration.
//!
//! [`Nginx::start`] writes a configuration into a temporary directory and
//! runs `nginx -p DIR -c nginx.conf` in the foreground as one process
//! (`daemon off; master_process off;`: the process that is started is the
//! one that serves, so its `/proc/PID/stat` is the server's whole CPU, like
//! the origin's `--threads 1`), pinned with `taskset` like the origin, with
//! access logging off, `sendfile` on and keep-alive without a request limit.
//! Playlists get the origin's `Cache-Control: max-age=1`, everything else
//! `immutable`, both with the origin's open CORS header.

use std::{net::SocketAddr, path::Path, time::Duration};

use anyhow::{Context, Result, bail};

use crate::process::{Guarded, free_tcp_addr, nice_prefix, on_path};

/// A running nginx serving a directory.
#[derive(Debug)]
pub struct Nginx {
    /// The process (killed on drop).
    pub child: Guarded,
    /// Its HTTP listener.
    pub http: SocketAddr,
    dir: tempfile::TempDir,
}

/// The nginx binary: on `PATH`, else Debian's `/usr/sbin/nginx`.
fn binary() -> Result<String> {
    if on_path("nginx") {
        return Ok("nginx".to_owned());
    }
    if Path::new("/usr/sbin/nginx").is_file() {
        return Ok("/usr/sbin/nginx".to_owned());
    }
    bail!("nginx not found: install it with `apt-get install -y nginx`")
}

/// The configuration serving `root` on `addr` with room for `connections`.
fn config(dir: &Path, root: &Path, addr: SocketAddr, connections: usize) -> String {
    let d = dir.display();
    let r = root.display();
    // One descriptor per connection plus the files it serves.
    let files = connections * 2 + 256;
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {files};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections {connections};
}}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    open_file_cache max=10000 inactive=600s;
    open_file_cache_valid 600s;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/iso.segment m4s;
        video/mp4 mp4;
    }}
    default_type application/octet-stream;
    server {{
        listen {addr} backlog=4096;
        root {r};
        location ~ \.m3u8$ {{
            add_header Cache-Control "max-age=1";
            add_header Access-Control-Allow-Origin "*";
        }}
        location / {{
            add_header Cache-Control "max-age=31536000, immutable";
            add_header Access-Control-Allow-Origin "*";
        }}
    }}
}}
"#
    )
}

impl Nginx {
    /// Starts nginx serving the files under `root` (which must hold a file
    /// `healthz`, polled until it answers), with room for `connections`
    /// keep-alive connections, pinned to `cpu` and at (absolute) niceness
    /// `nice` when given.
    ///
    /// # Errors
    /// nginx missing, failing to start, or not answering within 10 s (its
    /// error log is quoted).
    pub async fn start(
        root: &Path,
        connections: usize,
        cpu: Option<usize>,
        nice: Option<i32>,
    ) -> Result<Self> {
        let bin = binary()?;
        let dir = tempfile::Builder::new()
            .prefix("livestack-bench-nginx")
            .tempdir()?;
        std::fs::create_dir_all(dir.path().join("tmp"))?;
        let http = free_tcp_addr()?;
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), root, http, connections + 64))?;
        let mut prefix = Vec::new();
        if let Some(n) = nice {
            prefix.extend(nice_prefix(n)?);
        }
        if let Some(cpu) = cpu {
            prefix.extend(["taskset".to_owned(), "-c".to_owned(), cpu.to_string()]);
        }
        let args = [
            "-e".to_owned(),
            dir.path().join("error.log").to_string_lossy().into_owned(),
            "-p".to_owned(),
            dir.path().to_string_lossy().into_owned(),
            "-c".to_owned(),
            conf.to_string_lossy().into_owned(),
        ];
        let mut child = Guarded::spawn(&prefix, &bin, &args)?;
        let log = dir.path().join("error.log");
        let wait = crate::http1::wait_for_200(
            http,
            "/healthz",
            "nginx",
            Duration::from_secs(10),
            Duration::from_millis(50),
            || child.check_running(),
        )
        .await;
        if let Err(e) = wait {
            let log = std::fs::read_to_string(&log)
                .unwrap_or_else(|e| format!("(error log unreadable: {e})"));
            return Err(e).with_context(|| format!("nginx error log:\n{log}"));
        }
        Ok(Self { child, http, dir })
    }

    /// The directory holding the configuration and the error log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
