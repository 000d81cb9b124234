//! QUIC clients of the origin: a quinn endpoint that trusts exactly one
//! certificate by its SHA-256 (what a browser's `serverCertificateHashes`
//! does), for raw QUIC with any ALPN, and moq-net subscribers on it.

use std::net::SocketAddr;

use livestack_origin::tls::{PinnedCertificates, quic_client_config};

/// A client endpoint on loopback whose connections offer `alpn` and trust
/// only the certificate with SHA-256 `certificate_sha256` (hex).
pub fn endpoint(alpn: &[&str], certificate_sha256: &str) -> (quinn::Endpoint, quinn::ClientConfig) {
    let alpn: Vec<&[u8]> = alpn.iter().map(|a| a.as_bytes()).collect();
    let config = quic_client_config(PinnedCertificates::new([certificate_sha256]), &alpn)
        .expect("QUIC client configuration");
    let endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client endpoint");
    (endpoint, config)
}

/// Connects to `server` offering `alpn`.
///
/// # Errors
/// The connection error (a refused ALPN fails the handshake).
pub async fn connect(
    server: SocketAddr,
    alpn: &[&str],
    certificate_sha256: &str,
) -> Result<quinn::Connection, quinn::ConnectionError> {
    let (endpoint, config) = endpoint(alpn, certificate_sha256);
    endpoint
        .connect_with(config, server, "localhost")
        .expect("connect parameters")
        .await
}

/// A video frame a MoQ subscriber received.
#[derive(Debug, Clone)]
pub struct MoqFrame {
    /// The group (sequence number) it came in.
    pub group: u64,
    /// Its index in the group (0: the group's first frame, a keyframe).
    pub index: usize,
    /// The hang timestamp, microseconds.
    pub timestamp_us: u64,
    /// The codec payload.
    pub payload: bytes::Bytes,
    /// When it was read.
    pub received: std::time::Instant,
}

/// What [`moq_subscribe`] saw.
#[derive(Debug)]
pub struct MoqReport {
    /// The negotiated MoQ version.
    pub version: String,
    /// The catalog JSON.
    pub catalog: String,
    /// The video frames, in the order read.
    pub frames: Vec<MoqFrame>,
}

/// A moq-net client session over raw QUIC, subscribing only: its local
/// origin (where the server's announced broadcasts appear) and the two
/// driver tasks, aborted on drop (which closes the session).
pub struct MoqSubscriber {
    origin: moq_net::origin::Producer,
    /// Held for its lifetime: dropping the last handle closes the session.
    _session: moq_net::Session,
    version: String,
    tasks: [tokio::task::JoinHandle<moq_net::Error>; 2],
}

impl Drop for MoqSubscriber {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl MoqSubscriber {
    /// Connects to `server` offering `alpn`, trusting the certificate with
    /// SHA-256 `certificate_sha256` (hex), and completes the MoQ SETUP.
    ///
    /// # Errors
    /// A description of the failed step.
    pub async fn connect(
        server: SocketAddr,
        alpn: &[&str],
        certificate_sha256: &str,
    ) -> Result<Self, String> {
        let conn = connect(server, alpn, certificate_sha256)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        Self::setup(web_transport_quinn::Session::raw(conn)).await
    }

    /// Connects to the WebTransport URL `url` (`https://HOST:PORT/moq`,
    /// query and all, e.g. `?token=`) offering every MoQ version as a
    /// subprotocol, trusting the certificate with SHA-256
    /// `certificate_sha256`, and completes the MoQ SETUP.
    ///
    /// # Errors
    /// A description of the failed step.
    pub async fn connect_webtransport(url: &str, certificate_sha256: &str) -> Result<Self, String> {
        let url: url::Url = url.parse().map_err(|e| format!("url: {e}"))?;
        let server = url
            .socket_addrs(|| None)
            .map_err(|e| format!("address: {e}"))?
            .into_iter()
            .next()
            .ok_or("no address")?;
        let conn = connect(server, &["h3"], certificate_sha256)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let request = web_transport_quinn::proto::ConnectRequest::new(url)
            .with_protocols(moq_net::ALPNS.iter().map(|a| (*a).to_owned()));
        let session = web_transport_quinn::Session::connect(conn, request)
            .await
            .map_err(|e| format!("WebTransport: {e}"))?;
        Self::setup(session).await
    }

    /// The MoQ SETUP on `session`, subscribing only.
    async fn setup(session: web_transport_quinn::Session) -> Result<Self, String> {
        let (origin, driver) = moq_net::origin::Producer::new(moq_net::origin::Config::default());
        let origin_task = tokio::spawn(moq_net::time::run(driver));
        let (session, driver) = match moq_net::Client::new()
            .with_subscriber(origin.clone())
            .connect(std::time::Instant::now(), session)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                origin_task.abort();
                return Err(format!("MoQ SETUP: {e}"));
            }
        };
        let session_task = tokio::spawn(moq_net::time::run(driver));
        Ok(Self {
            origin,
            version: session.version().to_string(),
            _session: session,
            tasks: [origin_task, session_task],
        })
    }

    /// The negotiated MoQ version (`moq-lite-06`, `moqt-17`, ...).
    pub fn version(&self) -> String {
        self.version.clone()
    }

    /// Waits until the server announces broadcast `name` and returns it.
    ///
    /// # Errors
    /// The session or origin failed.
    pub async fn broadcast(&self, name: &str) -> Result<moq_net::broadcast::Consumer, String> {
        self.origin
            .consume()
            .routed_broadcast(name)
            .await
            .map_err(|e| format!("broadcast {name}: {e}"))
    }

    /// Subscribes to `track` of `broadcast` at the hang priority of its
    /// kind (`video` or anything else: audio).
    ///
    /// # Errors
    /// The track cannot be subscribed.
    pub async fn subscribe(
        broadcast: &moq_net::broadcast::Consumer,
        track: &str,
    ) -> Result<moq_net::track::Subscriber, String> {
        let priority = if track.starts_with("video") {
            hang::catalog::PRIORITY.video
        } else {
            hang::catalog::PRIORITY.audio
        };
        broadcast
            .track(track)
            .map_err(|e| format!("{track} track: {e}"))?
            .subscribe(moq_net::track::Subscription::default().with_priority(priority))
            .await
            .map_err(|e| format!("subscribe {track}: {e}"))
    }
}

/// Subscribes over raw QUIC (offering `alpn`) to broadcast `name` at
/// `server` with moq-net, reads the hang catalog, then the `video` track
/// until `frames` frames arrived or the track ended.
///
/// # Errors
/// A description of the first failure.
pub async fn moq_subscribe(
    server: SocketAddr,
    alpn: &[&str],
    certificate_sha256: &str,
    name: &str,
    frames: usize,
) -> Result<MoqReport, String> {
    let client = MoqSubscriber::connect(server, alpn, certificate_sha256).await?;
    let broadcast = client.broadcast(name).await?;
    let mut catalog = hang::Catalog::<()>::subscribe(&broadcast)
        .await
        .map_err(|e| format!("catalog: {e}"))?;
    let catalog = catalog
        .next()
        .await
        .map_err(|e| format!("catalog: {e}"))?
        .ok_or("catalog track ended")?
        .to_json()
        .map_err(|e| format!("catalog JSON: {e}"))?;
    let mut video = MoqSubscriber::subscribe(&broadcast, "video").await?;
    let mut out = Vec::new();
    while out.len() < frames {
        let Some(mut group) = video
            .recv_group()
            .await
            .map_err(|e| format!("group: {e}"))?
        else {
            break;
        };
        let mut index = 0;
        while let Some(frame) = group
            .read_frame()
            .await
            .map_err(|e| format!("frame: {e}"))?
        {
            let decoded = hang::container::Frame::decode(frame.payload)
                .map_err(|e| format!("hang frame: {e}"))?;
            out.push(MoqFrame {
                group: group.sequence,
                index,
                timestamp_us: decoded.timestamp.as_micros() as u64,
                payload: decoded.payload,
                received: std::time::Instant::now(),
            });
            index += 1;
            if out.len() >= frames {
                break;
            }
        }
    }
    Ok(MoqReport {
        version: client.version(),
        catalog,
        frames: out,
    })
}

/// Subscribes like [`moq_subscribe`] to the `video` track of `name`, reads
/// the first frame of the first group, then reads nothing for `stall`
/// (letting QUIC flow control fill up), then reads the next group it gets.
/// Returns the two group sequence numbers: (first, the one after the
/// stall).
///
/// # Errors
/// A description of the first failure.
pub async fn moq_subscribe_stalling(
    server: SocketAddr,
    alpn: &[&str],
    certificate_sha256: String,
    name: &str,
    stall: std::time::Duration,
) -> Result<(u64, u64), String> {
    let client = MoqSubscriber::connect(server, alpn, &certificate_sha256).await?;
    let broadcast = client.broadcast(name).await?;
    let mut video = MoqSubscriber::subscribe(&broadcast, "video").await?;
    let mut group = video
        .recv_group()
        .await
        .map_err(|e| format!("group: {e}"))?
        .ok_or("video track ended")?;
    let first = group.sequence;
    group
        .read_frame()
        .await
        .map_err(|e| format!("frame: {e}"))?
        .ok_or("empty group")?;
    tokio::time::sleep(stall).await;
    drop(group);
    let next = video
        .recv_group()
        .await
        .map_err(|e| format!("group: {e}"))?
        .ok_or("video track ended")?;
    Ok((first, next.sequence))
}
