//! What every livestack HTTP listener (the origin's public and admin
//! listeners, the edge's) does against hostile clients, in one place:
//!
//! - a **header-read timeout**: a client that has not sent a whole request
//!   head within it is disconnected (also while a keep-alive connection is
//!   idle between requests). A slowloris client sending one header byte a
//!   second holds a connection for at most this long.
//! - a **TLS-handshake timeout** for the TLS listeners.
//! - a **cap on connections**, in total and per client address; a
//!   connection above a cap is closed at once and counted.
//! - a **cap on concurrent HTTP/2 streams** per connection.
//!
//! The defaults ([`ListenerLimits::default`]) follow what nginx and Envoy
//! ship or recommend, sized for an origin that serves thousands of LL-HLS
//! viewers (each holds one keep-alive connection and one blocking request):
//! header timeout 10 s (nginx `client_header_timeout` is 60 s; LL-HLS
//! clients send a request head in one packet, so 10 s only ever cuts the
//! slow and the idle), TLS handshake 10 s (Envoy's
//! `transport_socket_connect_timeout`), 20,000 connections per listener,
//! 4,096 per client address (a NAT or a CDN PoP fetches for many viewers;
//! nginx `limit_conn` has no default, operators set one per deployment),
//! 256 HTTP/2 streams per connection (nginx `http2_max_concurrent_streams`
//! is 128; a CDN multiplexes more).

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioTimer},
    server::conn::auto,
};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Sleep,
};
use tracing::warn;

/// Default of [`ListenerLimits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`ListenerLimits::tls_handshake_timeout`].
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`ListenerLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
/// Default of [`ListenerLimits::max_connections_per_address`].
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 4_096;
/// Default of [`ListenerLimits::max_h2_streams`].
pub const DEFAULT_MAX_H2_STREAMS: u32 = 256;
/// Default [`ListenerLimits::max_held_requests_per_address`]: a venue of
/// 500 LL-HLS viewers behind one NAT address holds about 1,000 (a
/// playlist reload and a part preload each).
pub const DEFAULT_MAX_HELD_REQUESTS_PER_ADDRESS: usize = 2_048;

/// The limits of one listener. See the crate docs for the defaults and why.
/// In a configuration file (`[limits]` of the origin's and the edge's
/// TOML), durations are humantime strings (`"10s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerLimits {
    /// Longest time a client may take to send a request head, and longest
    /// time a keep-alive connection may sit idle before its next one.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest TLS handshake.
    #[serde(with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    /// Connections open at once on the listener.
    pub max_connections: usize,
    /// Connections open at once from one client IP address.
    pub max_connections_per_address: usize,
    /// Concurrent streams per HTTP/2 connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub max_h2_streams: u32,
    /// Requests one client IP address may have held at once (LL-HLS
    /// blocking playlist reloads and preload-hinted parts waiting for the
    /// media): without it, connections × HTTP/2 streams would let one
    /// address park a million requests. One more is answered at once (the
    /// origin: 429 Too Many Requests, `Retry-After: 1`). See
    /// [`HeldRequests`]. Enforced by the origin; the edge, which coalesces
    /// its viewers' held requests into one origin request each, does not
    /// use it yet.
    pub max_held_requests_per_address: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            max_h2_streams: DEFAULT_MAX_H2_STREAMS,
            max_held_requests_per_address: DEFAULT_MAX_HELD_REQUESTS_PER_ADDRESS,
        }
    }
}

impl ListenerLimits {
    /// `io` with the protocol-detection phase bounded by
    /// [`header_read_timeout`](Self::header_read_timeout) (see
    /// [`PrefaceDeadline`]); serve the result with
    /// [`builder`](Self::builder).
    pub fn guard<T>(&self, io: T) -> PrefaceDeadline<T> {
        PrefaceDeadline::new(io, self.header_read_timeout)
    }

    /// The HTTP/1.1 + HTTP/2 connection builder with these limits (hyper's
    /// header-read timeout needs a timer: it is set here).
    pub fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut b = auto::Builder::new(TokioExecutor::new());
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        b.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.max_h2_streams);
        b
    }
}

/// Bytes hyper-util's protocol detection reads before it starts HTTP/1 or
/// HTTP/2: the length of the HTTP/2 connection preface (RFC 9113 §3.4).
pub const PREFACE_LEN: usize = 24;

/// A connection's IO whose first [`PREFACE_LEN`] bytes must arrive within
/// a deadline, else reads fail with [`io::ErrorKind::TimedOut`].
///
/// hyper's header-read timeout starts only once hyper-util's automatic
/// protocol detection has chosen HTTP/1 or HTTP/2; during detection no
/// timer runs, so a client that connects and sends nothing, or sends the
/// HTTP/2 preface a byte a minute, would hold its connection forever. This
/// bounds that phase by [`ListenerLimits::header_read_timeout`]; after the
/// preface-length bytes, reads pass through and hyper's own timers govern.
#[derive(Debug)]
pub struct PrefaceDeadline<T> {
    io: T,
    remaining: usize,
    deadline: Pin<Box<Sleep>>,
}

impl<T> PrefaceDeadline<T> {
    /// `io`, whose first bytes must arrive within `timeout` from now.
    pub fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            remaining: PREFACE_LEN,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for PrefaceDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                this.remaining = this.remaining.saturating_sub(read);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request head within the header-read timeout",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for PrefaceDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum RefusalReason {
    /// [`ListenerLimits::max_connections`] reached.
    Listener,
    /// [`ListenerLimits::max_connections_per_address`] reached.
    Address,
}

/// Labels of [`Admission::refused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RefusalLabels {
    /// Which cap.
    pub reason: RefusalReason,
}

/// Counts the open connections of one listener and admits new ones within
/// its [`ListenerLimits`]. One short lock per accepted connection (never
/// per request).
#[derive(Debug)]
pub struct Admission {
    limits: ListenerLimits,
    open: Mutex<Open>,
    /// Connections closed at accept, by cap.
    pub refused: Family<RefusalLabels, Counter>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
    /// Whether the refusal of each kind was logged since the last time the
    /// listener was below its caps: a flood logs once, not once per try.
    logged: [bool; 2],
}

impl Admission {
    /// An admission for a listener with `limits`, counting refusals in
    /// `refused` (a family registered in the server's metrics; clones share
    /// their counters).
    pub fn new(limits: ListenerLimits, refused: Family<RefusalLabels, Counter>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::default(),
            refused,
        })
    }

    /// The limits.
    pub fn limits(&self) -> &ListenerLimits {
        &self.limits
    }

    /// Admits a connection from `peer`; the connection counts until the
    /// returned guard is dropped.
    ///
    /// # Errors
    /// The cap that is full; the refusal is counted in
    /// [`refused`](Self::refused) and logged once per flood.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, RefusalReason> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let from_peer = open.per_address.get(&peer).copied().unwrap_or(0);
        let refusal = if open.total >= self.limits.max_connections {
            Some(RefusalReason::Listener)
        } else if from_peer >= self.limits.max_connections_per_address {
            Some(RefusalReason::Address)
        } else {
            None
        };
        if let Some(reason) = refusal {
            let slot = &mut open.logged[reason as usize];
            if !*slot {
                *slot = true;
                warn!(?reason, peer = %ClientAddr(peer), open = open.total, "connection refused: cap reached (logged once per flood)");
            }
            drop(open);
            self.refused.get_or_create(&RefusalLabels { reason }).inc();
            return Err(reason);
        }
        open.total += 1;
        *open.per_address.entry(peer).or_insert(0) += 1;
        Ok(Admitted {
            admission: Arc::clone(self),
            peer,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// Whether logs show whole client addresses; see [`set_log_client_addresses`].
static LOG_CLIENT_ADDRESSES: AtomicBool = AtomicBool::new(false);

/// Sets whether logs show whole client IP addresses (`true`) or only their
/// network (`false`, the default: an IPv4 address with its last octet
/// zeroed as `/24`, an IPv6 address cut to its `/48`), since an IP
/// address is personal data in many jurisdictions (e.g. the GDPR). Call
/// once at start, before serving (`--log-client-addresses`).
pub fn set_log_client_addresses(on: bool) {
    LOG_CLIENT_ADDRESSES.store(on, Ordering::Relaxed);
}

/// A client address as logs show it (see [`set_log_client_addresses`]):
/// `203.0.113.7` in full, else `203.0.113.0/24` (IPv6: its `/48`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl From<std::net::SocketAddr> for ClientAddr {
    fn from(a: std::net::SocketAddr) -> Self {
        Self(a.ip())
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if LOG_CLIENT_ADDRESSES.load(Ordering::Relaxed) {
            return write!(f, "{}", self.0);
        }
        match self.0 {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                write!(f, "{a}.{b}.{c}.0/24")
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
                write!(f, "{net}/48")
            }
        }
    }
}

/// Shards of [`HeldRequests`]: requests from different addresses rarely
/// share a lock.
const HELD_SHARDS: usize = 64;

/// Counts the held requests of each client address and refuses those
/// beyond [`ListenerLimits::max_held_requests_per_address`]. Takes one
/// short lock of one of 64 shards (by address) when a request starts to
/// wait and when it ends, never a lock shared by all requests.
#[derive(Debug)]
pub struct HeldRequests {
    max_per_address: usize,
    shards: Vec<Mutex<HashMap<IpAddr, usize>>>,
    /// Requests refused because their address held the maximum.
    pub refused: Counter,
}

impl HeldRequests {
    /// A counter allowing `max_per_address` held requests per address,
    /// counting refusals in `refused` (registered in the server's metrics).
    pub fn new(max_per_address: usize, refused: Counter) -> Arc<Self> {
        Arc::new(Self {
            max_per_address,
            shards: (0..HELD_SHARDS).map(|_| Mutex::default()).collect(),
            refused,
        })
    }

    fn shard(&self, peer: &IpAddr) -> &Mutex<HashMap<IpAddr, usize>> {
        use std::hash::{Hash, Hasher};
        // `DefaultHasher::new` has fixed keys: an address always lands in
        // the same shard.
        let mut h = std::hash::DefaultHasher::new();
        peer.hash(&mut h);
        &self.shards[(h.finish() as usize) % self.shards.len()]
    }

    /// Counts one held request of `peer` until the guard is dropped, or
    /// `None` when `peer` already holds the maximum (counted in
    /// [`refused`](Self::refused)).
    pub fn hold(self: &Arc<Self>, peer: IpAddr) -> Option<Held> {
        let mut shard = self
            .shard(&peer)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = shard.entry(peer).or_insert(0);
        if *n >= self.max_per_address {
            drop(shard);
            self.refused.inc();
            return None;
        }
        *n += 1;
        Some(Held {
            held: Arc::clone(self),
            peer,
        })
    }

    /// Requests `peer` holds now.
    pub fn held_by(&self, peer: IpAddr) -> usize {
        self.shard(&peer)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .copied()
            .unwrap_or(0)
    }
}

/// One held request; dropping it frees its place.
#[derive(Debug)]
pub struct Held {
    held: Arc<HeldRequests>,
    peer: IpAddr,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut shard = self
            .held
            .shard(&self.peer)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = shard.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                shard.remove(&self.peer);
            }
        }
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    peer: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_address.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&self.peer);
            }
        }
        open.logged = [false; 2];
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn client_addresses_are_logged_as_networks_unless_asked() {
        let v4 = ClientAddr("203.0.113.7".parse().unwrap());
        let v6 = ClientAddr("2001:db8:1:2:3:4:5:6".parse().unwrap());
        assert_eq!(v4.to_string(), "203.0.113.0/24");
        assert_eq!(v6.to_string(), "2001:db8:1::/48");
        set_log_client_addresses(true);
        assert_eq!(v4.to_string(), "203.0.113.7");
        set_log_client_addresses(false);
    }

    #[test]
    fn held_requests_are_capped_per_address_and_freed() {
        let held = HeldRequests::new(2, Counter::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = held.hold(a).expect("first");
        let a2 = held.hold(a).expect("second");
        assert!(held.hold(a).is_none(), "a third from the same address");
        assert_eq!(held.refused.get(), 1);
        let b1 = held.hold(b).expect("another address is not affected");
        drop(a1);
        let a3 = held.hold(a).expect("a freed place");
        assert_eq!(held.held_by(a), 2);
        drop((a2, a3, b1));
        assert_eq!(held.held_by(a), 0);
        assert_eq!(held.held_by(b), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_times_out_and_a_prompt_one_passes() {
        let (client, server) = tokio::io::duplex(64);
        let mut guarded = PrefaceDeadline::new(server, Duration::from_secs(10));
        let mut buf = [0u8; 8];
        let e = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(client);

        let (mut client, server) = tokio::io::duplex(64);
        let mut guarded = PrefaceDeadline::new(server, Duration::from_secs(10));
        client.write_all(&[b'x'; 24]).await.unwrap();
        let mut buf = [0u8; 24];
        guarded.read_exact(&mut buf).await.unwrap();
        // Past the preface, no deadline: an idle wait is hyper's business.
        tokio::time::advance(Duration::from_secs(60)).await;
        client.write_all(b"y").await.unwrap();
        assert_eq!(guarded.read(&mut buf).await.unwrap(), 1);
    }

    #[test]
    fn caps_in_total_and_per_address_free_on_drop() {
        let a = Admission::new(
            ListenerLimits {
                max_connections: 3,
                max_connections_per_address: 2,
                ..ListenerLimits::default()
            },
            Family::default(),
        );
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = a.admit(one).unwrap();
        let _a2 = a.admit(one).unwrap();
        assert_eq!(a.admit(one).unwrap_err(), RefusalReason::Address);
        let _b1 = a.admit(two).unwrap();
        assert_eq!(a.admit(two).unwrap_err(), RefusalReason::Listener);
        assert_eq!(a.open(), 3);
        drop(a1);
        assert_eq!(a.open(), 2);
        let _a3 = a.admit(one).expect("a freed place is reusable");
        let refused = |reason| a.refused.get_or_create(&RefusalLabels { reason }).get();
        assert_eq!(refused(RefusalReason::Address), 1);
        assert_eq!(refused(RefusalReason::Listener), 1);
    }
}
