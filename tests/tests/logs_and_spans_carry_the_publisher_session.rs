//! Logs and traces of a real `livestack origin` process with a real ffmpeg
//! SRT publisher:
//!
//! - `--log-format json`: every stderr line is one JSON object with an RFC
//!   3339 timestamp, level and target, and the lines of a publisher's
//!   session carry its `session.id` in their span fields;
//! - `--otlp-endpoint`: spans arrive as OTLP/HTTP protobuf at a collector
//!   stand-in (a hyper server here) and are decoded by an independent
//!   implementation (the Python `opentelemetry-proto` package, from
//!   `tests/requirements.txt`); the SRT span carries the session id, the
//!   resource names the service and the node, and the JSON log lines carry
//!   the same trace and span ids.
//!
//! The origin is stopped with SIGTERM, as systemd and Kubernetes stop it,
//! and must exit cleanly having flushed its spans.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use livestack_test_harness::{VideoCodec, encode_source, publish, require, workdir};
use serde_json::Value;

/// Both tests publish in real time and encode with ffmpeg: one at a time on
/// a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running `livestack origin` with its stderr lines.
struct Origin {
    child: Child,
    srt: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The thread collecting `stderr`; it ends at the process's EOF.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Origin {
    /// Starts `livestack origin` on free loopback ports with `extra` flags
    /// and waits until it listens.
    fn start(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_livestack-under-test"));
        cmd.args(["origin", "--srt", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(extra)
            .env("LIVESTACK_LOG", "info")
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_RESOURCE_ATTRIBUTES")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn livestack");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = {
            let err = child.stderr.take().expect("stderr");
            let lines = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        let (tx, rx) = mpsc::channel();
        {
            let out = child.stdout.take().expect("stdout");
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut srt = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "the origin did not start; stderr:\n{}",
                    stderr.lock().unwrap().join("\n")
                )
            });
            if let Some(a) = line.strip_prefix("SRT listening on ") {
                srt = Some(a.parse().expect("SRT address"));
            }
            if line.starts_with("HTTP listening on") {
                break;
            }
        }
        Self {
            child,
            srt: srt.expect("SRT address printed"),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `text`.
    fn wait_for(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stderr().iter().any(|l| l.contains(text)) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in stderr:\n{}",
                self.stderr().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the process with SIGTERM and waits for a clean exit; returns
    /// every stderr line.
    fn terminate(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "the origin did not stop on SIGTERM; stderr:\n{}",
                self.stderr().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            exit.success(),
            "the origin exited with {exit} on SIGTERM; stderr:\n{}",
            self.stderr().join("\n")
        );
        // Every line is in once the reader has seen the exited process's
        // EOF.
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().expect("the stderr reader does not panic");
        }
        self.stderr()
    }
}

/// Publishes a 2 s H.264/AAC source to `origin` over SRT with ffmpeg, waits
/// until ffmpeg is done and the origin has ended the session.
fn publish_short_stream(origin: &Origin, name: &str) {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 2);
    let mut ffmpeg = publish(origin.srt, &format!("#!::r=live/{name},m=publish"), &source);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = ffmpeg.try_wait().expect("wait for ffmpeg") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = ffmpeg.kill();
            panic!("ffmpeg did not finish publishing");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "ffmpeg failed to publish: {status}");
    origin.wait_for("publisher gone", Duration::from_secs(30));
}

/// Every line as JSON (panics on the first that is not one object).
fn parse_lines(lines: &[String]) -> Vec<Value> {
    assert!(!lines.is_empty(), "no log lines");
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}"));
            assert!(v.is_object(), "not a JSON object: {l}");
            v
        })
        .collect()
}

/// The log line whose message is `message`.
fn line_with<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["fields"]["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} line in {lines:#?}"))
}

/// `2026-01-02T03:04:05.678901Z`: RFC 3339, UTC, with a fraction.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (b[19] == b'.' || b[19] == b'Z' || b[19] == b'+' || b[19] == b'-')
        && (s.ends_with('Z') || s[19..].contains(['+', '-']))
}

#[test]
fn json_logs_carry_the_session_id() {
    let _serial = serial();
    let node = "json-node";
    let origin = Origin::start(&["--log-format", "json", "--node-id", node], &[]);
    publish_short_stream(&origin, "jsonlogs");
    let lines = parse_lines(&origin.terminate());

    for l in &lines {
        // A missing timestamp reads as "" and fails the check below.
        let ts = l["timestamp"].as_str().unwrap_or_default();
        assert!(is_rfc3339(ts), "timestamp not RFC 3339: {l}");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                .contains(&l["level"].as_str().unwrap_or("")),
            "{l}"
        );
        assert!(l["target"].is_string(), "{l}");
        assert!(
            l.get("trace_id").is_none(),
            "no trace ids without an exporter: {l}"
        );
    }
    let connected = line_with(&lines, "publisher connected");
    assert_eq!(connected["target"], "livestack_origin::srt", "{connected}");
    assert_eq!(connected["fields"]["stream"], "jsonlogs", "{connected}");
    assert_eq!(connected["span"]["name"], "srt", "{connected}");
    let session = connected["span"]["session.id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session.id in the span fields: {connected}"));
    assert!(session.starts_with(&format!("{node}-")), "{session}");
    // Every line of the session names it, the last one included.
    let gone = line_with(&lines, "publisher gone");
    assert_eq!(gone["span"]["session.id"], session, "{gone}");
    assert!(
        gone["spans"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["session.id"] == session)),
        "{gone}"
    );
}

/// What the collector stand-in received: request path, content type, body.
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// An OTLP/HTTP collector stand-in on a free loopback port: records every
/// request and answers 200 with an empty (valid) protobuf response.
fn collector() -> (SocketAddr, Received, tokio::runtime::Runtime) {
    use http_body_util::{BodyExt, Full};
    use hyper::{Request, Response, body::Incoming, service::service_fn};
    use hyper_util::rt::TokioIo;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received: Received = Arc::default();
    let rec = received.clone();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let rec = rec.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let rec = rec.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        // Recorded and asserted later: a missing content
                        // type reads as "" and fails that assertion.
                        let ctype = req
                            .headers()
                            .get(hyper::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = req.into_body().collect().await?.to_bytes().to_vec();
                        rec.lock().unwrap().push((path, ctype, body));
                        let mut resp = Response::new(Full::new(bytes::Bytes::new()));
                        resp.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/x-protobuf"),
                        );
                        Ok::<_, hyper::Error>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, received, rt)
}

/// Decodes `ExportTraceServiceRequest` bodies with the Python
/// `opentelemetry-proto` package; prints one JSON object per span.
const DECODE: &str = r#"
import json, sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

def value(v):
    kind = v.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(v, kind)
    return None if kind is None else str(getattr(v, kind))

spans = []
for path in sys.argv[1:]:
    req = ExportTraceServiceRequest()
    with open(path, "rb") as f:
        req.ParseFromString(f.read())
    for rs in req.resource_spans:
        resource = {a.key: value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append({
                    "resource": resource,
                    "scope": ss.scope.name,
                    "name": s.name,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "attributes": {a.key: value(a.value) for a in s.attributes},
                    "events": [e.name for e in s.events],
                })
print(json.dumps(spans))
"#;

fn decode_with_python(bodies: &[Vec<u8>]) -> Vec<Value> {
    require("python3");
    let dir = workdir();
    let mut paths = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let p = dir.path().join(format!("export-{i}.pb"));
        std::fs::write(&p, body).expect("write body");
        paths.push(p);
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(DECODE)
        .args(&paths)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "decoding with opentelemetry-proto failed (run the README's test command, or \
         `target/pyenv/bin/pip install -r tests/requirements.txt` and put target/pyenv/bin \
         first on PATH):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("decoder output is JSON")
}

#[test]
fn otlp_export_has_the_session_span() {
    let _serial = serial();
    let (addr, received, _rt) = collector();
    let node = "otel-node";
    let endpoint = format!("http://{addr}");
    let origin = Origin::start(
        &[
            "--log-format",
            "json",
            "--node-id",
            node,
            "--otlp-endpoint",
            &endpoint,
        ],
        // A short batch delay is not needed (SIGTERM flushes), but keeps
        // exports happening while the process runs too.
        &[("OTEL_BSP_SCHEDULE_DELAY", "500")],
    );
    publish_short_stream(&origin, "traced");
    let lines = parse_lines(&origin.terminate());

    let received = received.lock().unwrap().clone();
    assert!(!received.is_empty(), "no OTLP export received");
    for (path, ctype, _) in &received {
        assert_eq!(path, "/v1/traces");
        assert_eq!(ctype, "application/x-protobuf");
    }
    let bodies: Vec<Vec<u8>> = received.into_iter().map(|(_, _, b)| b).collect();
    let spans = decode_with_python(&bodies);

    let srt = spans
        .iter()
        .find(|s| s["name"] == "srt" && s["attributes"]["session.id"].is_string())
        .unwrap_or_else(|| panic!("no srt span with a session.id in {spans:#?}"));
    let session = srt["attributes"]["session.id"].as_str().unwrap();
    assert!(session.starts_with(&format!("{node}-")), "{srt}");
    assert_eq!(srt["resource"]["service.name"], "livestack-origin", "{srt}");
    assert_eq!(srt["resource"]["service.instance.id"], node, "{srt}");
    assert_eq!(
        srt["resource"]["service.version"],
        env!("CARGO_PKG_VERSION"),
        "{srt}"
    );
    assert!(
        srt["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e == "publisher connected")),
        "the session's log events are span events: {srt}"
    );

    // The log lines of the session name the same trace and span.
    let connected = line_with(&lines, "publisher connected");
    assert_eq!(connected["span"]["session.id"], session, "{connected}");
    assert_eq!(connected["trace_id"], srt["trace_id"], "{connected}");
    assert_eq!(connected["span_id"], srt["span_id"], "{connected}");
    assert_eq!(
        connected["trace_id"].as_str().map(str::len),
        Some(32),
        "{connected}"
    );
    // Lines outside any span have no ids.
    let open = line_with(
        &lines,
        "no stream keys configured: any SRT caller may publish a stream that has no key",
    );
    assert!(open.get("trace_id").is_none(), "{open}");
}
