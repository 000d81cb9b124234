//! A tiny fake origin: counts requests per path and query, holds every
//! response for a configurable time or until the test releases it (a
//! blocking reload, a preload-hinted part), and answers with the origin's
//! Cache-Control values.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use livestack_edge_cache::{CacheConfig, OriginCache};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Requests seen, by path and query.
type Counts = Arc<Mutex<HashMap<String, u64>>>;

/// The fake origin; stops when dropped.
pub struct FakeOrigin {
    pub addr: SocketAddr,
    counts: Counts,
    /// Responses are sent only while this is `true`.
    gate: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeOrigin {
    /// Starts on a free loopback port, holding every response for `hold`.
    pub async fn start(hold: Duration) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), hold).await
    }

    /// Holds every response from now on (`true`) until called with
    /// `false`, which sends the held ones.
    pub fn set_held(&self, held: bool) {
        self.gate.send_replace(!held);
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr, hold: Duration) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind fake origin");
        let addr = listener.local_addr().unwrap();
        let counts = Counts::default();
        let (gate, open) = watch::channel(true);
        let task = tokio::spawn({
            let counts = counts.clone();
            async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let counts = counts.clone();
                    let open = open.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| {
                            let counts = counts.clone();
                            let mut open = open.clone();
                            async move {
                                Ok::<_, Infallible>(answer(req, &counts, hold, &mut open).await)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    });
                }
            }
        });
        Self {
            addr,
            counts,
            gate,
            task,
        }
    }

    /// A cache in front of this origin with `tweak` applied to the defaults.
    pub fn cache(&self, tweak: impl FnOnce(&mut CacheConfig)) -> Arc<OriginCache> {
        let mut config = CacheConfig::new(format!("http://{}", self.addr).parse().unwrap());
        tweak(&mut config);
        OriginCache::new(config)
    }

    /// Requests seen for `path_and_query`.
    pub fn count(&self, path_and_query: &str) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .get(path_and_query)
            .copied()
            .unwrap_or(0)
    }

    /// Every path and query seen.
    pub fn seen(&self) -> Vec<String> {
        self.counts.lock().unwrap().keys().cloned().collect()
    }
}

impl Drop for FakeOrigin {
    fn drop(&mut self) {
        self.set_held(false);
        self.task.abort();
    }
}

/// Routes like the real origin's, by what the path ends with:
/// `/status/NNN` → that status (`no-store`); `/big/N/...` → N bytes,
/// immutable; `.m3u8` → `max-age=30` with `_HLS_msn`, else `max-age=1`;
/// `.m4s`/`.mp4` → immutable. Bodies name the request and its number, so
/// two origin fetches never return the same body.
async fn answer(
    req: Request<Incoming>,
    counts: &Counts,
    hold: Duration,
    open: &mut watch::Receiver<bool>,
) -> Response<Full<Bytes>> {
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        // Test origin: no query and an empty query are the same.
        .unwrap_or_default();
    let n = {
        let mut counts = counts.lock().unwrap();
        let c = counts.entry(pq.clone()).or_default();
        *c += 1;
        *c
    };
    tokio::time::sleep(hold).await;
    // The test drops the origin (and the gate) only after its requests.
    let _ = open.wait_for(|open| *open).await;
    let path = req.uri().path();
    // Test origin: no query and an empty query are the same.
    let query = req.uri().query().unwrap_or_default();
    let (status, cache, body) = if let Some(code) = path.strip_prefix("/status/") {
        let status = StatusCode::from_bytes(code.as_bytes()).unwrap();
        (status, "no-store", Bytes::from(format!("{status}\n")))
    } else if let Some(rest) = path.strip_prefix("/big/") {
        let size: usize = rest.split('/').next().unwrap().parse().unwrap();
        (StatusCode::OK, IMMUTABLE, Bytes::from(vec![b'x'; size]))
    } else if path.ends_with(".m3u8") && query.contains("_HLS_msn") {
        (StatusCode::OK, "public, max-age=30", playlist(&pq, n))
    } else if path.ends_with(".m3u8") {
        (StatusCode::OK, "public, max-age=1", playlist(&pq, n))
    } else if path.ends_with(".m4s") || path.ends_with(".mp4") {
        (
            StatusCode::OK,
            IMMUTABLE,
            Bytes::from(format!("media {pq} #{n}")),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            "no-store",
            Bytes::from_static(b"not found\n"),
        )
    };
    Response::builder()
        .status(status)
        .header(header::CACHE_CONTROL, cache)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Full::new(body))
        .unwrap()
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn playlist(pq: &str, n: u64) -> Bytes {
    Bytes::from(format!("#EXTM3U\n# {pq} fetch #{n}\n"))
}
