//! This origin as a node of a deployment: its registry record and
//! heartbeat, publish admission (authorization, atomic placement, session),
//! viewer and load accounting, and the commands other nodes send it (kick,
//! drain).
//!
//! The heartbeat (every `cluster.heartbeat_interval`) writes the node's
//! [`NodeInfo`] with a TTL of `cluster.heartbeat_ttl`, renews the placement
//! lease and the session of every stream it holds, and takes its command
//! queue. When the control plane is unreachable, established publishers and
//! viewers are untouched (the media path never waits on it); when it comes
//! back, the next heartbeat re-registers the node and re-claims its streams,
//! so the shared state converges without manual action. A stream whose
//! placement another node took meanwhile (it was published there while
//! this node was cut off) is disconnected here: the lease holder wins.
//!
//! Time (heartbeat stamps, load sampling, viewer windows, session starts)
//! comes from the clock of the node's [`ControlClient`]
//! ([`ControlClient::clock`]): the system clock unless the client was built
//! with another.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    config::ClusterConfig,
    control::{
        Action, CONFIG_KEY_PREFIX, ControlClient, ControlError, NodeCommand, NodeInfo, NodeLoad,
        Placement, Role, Session, SharedClock, Source, StreamKey, SystemClock, UnixMillis, ct_eq,
    },
    metrics::Metrics,
};

/// Why a publisher was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The node is draining: it takes no new work.
    #[error("node {0} is draining; publish to another node")]
    Draining(String),
    /// The control plane refused or could not decide.
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// An admitted publisher. Hand it back to [`Node::end_publish`].
#[derive(Debug)]
pub struct PublishTicket {
    /// The broadcast name.
    pub stream: String,
    /// The session id (`<node>-<start ms>-<n>`), unique in the deployment;
    /// also the tracing span's `session.id`.
    pub session_id: String,
    /// For an encrypted SRT caller, the passphrase the handshake must use.
    pub passphrase: Option<String>,
    /// Notified when the publisher must be disconnected (kicked, or its
    /// placement was lost to another node).
    pub kick: Arc<Notify>,
    /// Add every ingested byte here (the heartbeat reports the bit rate).
    pub bytes_in: Arc<AtomicU64>,
    /// Where the authorization's keys came from.
    pub source: Source,
}

/// What a publisher is, as its control-plane session records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// `"srt"`, `"whip"`, `"moq"`, `"room"`.
    pub protocol: &'static str,
    /// The SFU room of a room participant's publication: the credential
    /// then opens the room's name, not the broadcast's.
    pub room: Option<&'a str>,
    /// An encrypted SRT caller (its key must carry a passphrase).
    pub encrypted: bool,
}

impl Publish<'static> {
    /// A publisher over `protocol`, not encrypted, in no room.
    pub fn over(protocol: &'static str) -> Self {
        Self {
            protocol,
            room: None,
            encrypted: false,
        }
    }
}

#[derive(Debug)]
struct LiveStream {
    session_id: String,
    since: UnixMillis,
    protocol: &'static str,
    room: Option<String>,
    kick: Arc<Notify>,
    bytes_in: Arc<AtomicU64>,
    last_bytes: u64,
    bitrate_bps: u64,
    claimed: bool,
}

/// Viewers per stream: distinct client connections (peer addresses) that
/// fetched any of the stream's resources within the last
/// [`VIEWER_WINDOW`] by its clock. Behind an edge, the edge's connections
/// are the viewers the origin sees.
#[derive(Debug)]
pub struct Viewers {
    seen: Mutex<HashMap<String, HashMap<SocketAddr, Instant>>>,
    clock: SharedClock,
}

impl Default for Viewers {
    fn default() -> Self {
        Self::with_clock(SystemClock::shared())
    }
}

/// How recently a connection must have fetched to count as a viewer.
pub const VIEWER_WINDOW: Duration = Duration::from_secs(5);

impl Viewers {
    /// No viewers yet, judged by `clock`.
    pub fn with_clock(clock: SharedClock) -> Self {
        Self {
            seen: Mutex::default(),
            clock,
        }
    }

    /// Records that `peer` fetched a resource of `stream` now.
    pub fn touch(&self, stream: &str, peer: SocketAddr) {
        let now = self.clock.now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        match seen.get_mut(stream) {
            Some(m) => {
                m.insert(peer, now);
            }
            None => {
                seen.insert(stream.to_owned(), HashMap::from([(peer, now)]));
            }
        }
    }

    /// Viewers of `stream` now.
    pub fn count(&self, stream: &str) -> u64 {
        let now = self.clock.now();
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(stream).map_or(0, |m| {
            m.values()
                .filter(|t| now.saturating_duration_since(**t) < VIEWER_WINDOW)
                .count() as u64
        })
    }

    /// Viewers per stream now (forgetting older entries).
    pub fn counts(&self) -> HashMap<String, u64> {
        let now = self.clock.now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, m| {
            m.retain(|_, t| now.saturating_duration_since(*t) < VIEWER_WINDOW);
            !m.is_empty()
        });
        seen.iter()
            .map(|(s, m)| (s.clone(), m.len() as u64))
            .collect()
    }
}

/// CPU time of this process, from `/proc/self/stat` (utime + stime, in
/// clock ticks of 1/100 s, the Linux USER_HZ).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name (which may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[derive(Debug)]
struct Sample {
    at: Instant,
    egress_bytes: u64,
    cpu_seconds: f64,
}

/// This origin node.
pub struct Node {
    id: String,
    region: String,
    location: Option<(f64, f64)>,
    urls: std::collections::BTreeMap<String, String>,
    certificate_sha256: Vec<String>,
    config: ClusterConfig,
    client: Arc<ControlClient>,
    metrics: Arc<Metrics>,
    /// Streams without any key may be published (embedded single-box
    /// default: no keys configured, no shared control plane).
    open: bool,
    started_at: UnixMillis,
    next_session: AtomicU64,
    draining: AtomicBool,
    reachable: AtomicBool,
    live: Mutex<HashMap<String, LiveStream>>,
    /// The configuration file's stream keys, written to the control plane
    /// at start and again whenever it returns from an outage (it may have
    /// lost them), until a write succeeded.
    config_keys: Vec<crate::control::StreamKey>,
    seeded: AtomicBool,
    /// Viewer accounting, fed by the HTTP server.
    pub viewers: Viewers,
    /// Keys verifying the edges' session tokens ([`Self::set_session_keys`]).
    session_keys: std::sync::OnceLock<livestack_tokens::KeySet>,
    last: Mutex<Sample>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("region", &self.region)
            .field("urls", &self.urls)
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node with `config`'s identity, publishing `urls` (protocol → public
    /// URL) and `certificate_sha256` (hashes of its self-signed WebTransport
    /// certificates, hex) in the registry, and seeding `config_keys` (see
    /// [`seed_keys`](Self::seed_keys)). It reads time from `client`'s
    /// clock.
    pub fn new(
        config: &ClusterConfig,
        urls: std::collections::BTreeMap<String, String>,
        certificate_sha256: Vec<String>,
        client: Arc<ControlClient>,
        metrics: Arc<Metrics>,
        open: bool,
        config_keys: Vec<crate::control::StreamKey>,
    ) -> Arc<Self> {
        let clock = client.clock().clone();
        Arc::new(Self {
            id: config.node_id.clone(),
            region: config.region.clone(),
            location: config.location,
            urls,
            certificate_sha256,
            config: config.clone(),
            client,
            metrics: metrics.clone(),
            open,
            started_at: clock.unix_millis(),
            next_session: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            reachable: AtomicBool::new(true),
            live: Mutex::default(),
            seeded: AtomicBool::new(config_keys.is_empty()),
            config_keys,
            viewers: Viewers::with_clock(clock.clone()),
            session_keys: std::sync::OnceLock::new(),
            last: Mutex::new(Sample {
                at: clock.now(),
                egress_bytes: metrics.http_sent_bytes.get(),
                cpu_seconds: process_cpu_seconds().unwrap_or(0.0),
            }),
        })
    }

    /// Makes the control plane's configured keys (ids `config-…`, see
    /// [`config_keys`](crate::control::config_keys)) exactly this node's
    /// configuration: a configured key that is missing is created, one whose
    /// stream or secret changed is replaced, and a `config-…` key that the
    /// configuration no longer has is revoked; keys created through the
    /// admin API are left alone. True when the control plane now holds the
    /// configuration. The heartbeat calls it again until it succeeds, and
    /// after every outage.
    ///
    /// Every node of a deployment must carry the same key list: the node
    /// that seeds last wins (as with any configuration management that
    /// converges on the file's content).
    pub async fn seed_keys(&self) -> bool {
        let ok = match self.reconcile_keys().await {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "cannot write the configured stream keys to the control plane yet");
                false
            }
        };
        self.seeded.store(ok, Ordering::Relaxed);
        ok
    }

    /// The work of [`seed_keys`](Self::seed_keys).
    async fn reconcile_keys(&self) -> Result<(), ControlError> {
        let stored = self.client.call("keys", |s| s.keys()).await?;
        let same = |a: &StreamKey, b: &StreamKey| {
            a.stream == b.stream && a.scope == b.scope && ct_eq(&a.secret, &b.secret)
        };
        for old in stored
            .iter()
            .filter(|k| k.id.starts_with(CONFIG_KEY_PREFIX))
        {
            let kept = self
                .config_keys
                .iter()
                .any(|k| k.id == old.id && same(k, old));
            if !kept {
                match self.client.revoke_key(&old.id).await {
                    Ok(()) | Err(ControlError::NotFound(_)) => {
                        info!(key = %old.id, stream = %old.stream, "configured stream key changed or removed: revoked");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        for key in &self.config_keys {
            let present = stored.iter().any(|k| k.id == key.id && same(k, key));
            if present {
                continue;
            }
            match self.client.call("create_key", |s| s.create_key(key)).await {
                // Another node seeding the same file at the same moment.
                Ok(()) | Err(ControlError::Exists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The clock this node reads (its control client's).
    fn clock(&self) -> &SharedClock {
        self.client.clock()
    }

    /// The node id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The control-plane client.
    pub fn client(&self) -> &Arc<ControlClient> {
        &self.client
    }

    /// True while draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Starts or stops draining: a draining node refuses new publishers,
    /// reports `draining` in the registry (routing sends new viewers
    /// elsewhere) and keeps serving what it has.
    pub fn set_draining(&self, draining: bool) {
        if self.draining.swap(draining, Ordering::Relaxed) != draining {
            info!(node = %self.id, draining, "drain state changed");
        }
        self.metrics.node_draining.set(i64::from(draining));
    }

    fn live(&self) -> MutexGuard<'_, HashMap<String, LiveStream>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The streams this node holds.
    pub fn live_streams(&self) -> Vec<String> {
        self.live().keys().cloned().collect()
    }

    /// Disconnects the local publisher of `stream`; false when this node
    /// does not hold it.
    pub fn kick(&self, stream: &str) -> bool {
        match self.live().get(stream) {
            Some(l) => {
                info!(stream, session.id = %l.session_id, "publisher kicked");
                l.kick.notify_one();
                true
            }
            None => false,
        }
    }

    /// The refusal of a second publisher of `stream`, held by this node
    /// (2409 in SRT).
    fn already_live_here(&self, stream: &str) -> Refusal {
        ControlError::AlreadyLive {
            stream: stream.to_owned(),
            node: self.id.clone(),
        }
        .into()
    }

    /// Admits a publisher of `stream`: the node must not be draining, the
    /// credential must open the stream (see
    /// [`ControlClient::authorize`]), and the stream's placement is claimed
    /// atomically for a new session. While the control plane is
    /// unreachable, a publisher authorized from cached keys (within
    /// `cluster.auth_grace`) is admitted and its placement claimed at the
    /// next heartbeat that reaches the control plane.
    ///
    /// # Errors
    /// [`Refusal::Draining`]; [`Refusal::Control`] with
    /// `Unauthorized`/`Forbidden` (credential), `AlreadyLive` (another
    /// session holds the stream) or `Unavailable` (cannot decide).
    /// A room participant's publication ([`Publish::room`]) is authorized
    /// by the room's keys (the credential opens the room, whatever the
    /// participant's broadcast is called).
    pub async fn begin_publish(
        &self,
        stream: &str,
        credential: Option<&str>,
        publish: Publish<'_>,
    ) -> Result<PublishTicket, Refusal> {
        if self.is_draining() {
            return Err(Refusal::Draining(self.id.clone()));
        }
        let encrypted = publish.encrypted;
        // The name whose keys decide.
        let authorized_name = publish.room.unwrap_or(stream);
        // A session token the edge minted for publishing here (WHIP, MoQ)
        // is a credential of its own; anything else is a stream key.
        let by_session_token = self
            .valid_session_token(
                authorized_name,
                credential,
                livestack_tokens::Access::Publish,
            )
            .then(|| crate::control::Authorized {
                grant: crate::control::Grant {
                    key_id: "session-token".to_owned(),
                    passphrase: None,
                },
                source: Source::Fresh,
            });
        let decided = match by_session_token {
            Some(a) => Ok(a),
            None => {
                self.client
                    .authorize(Action::Publish, authorized_name, credential, encrypted)
                    .await
            }
        };
        let authorized = match decided {
            Ok(a) => a,
            Err(e @ (ControlError::Unauthorized { .. } | ControlError::Forbidden { .. }))
                if self.open =>
            {
                // Open mode: only streams with keys of their own (or a `*`
                // key) need one.
                if self.client.has_keys(authorized_name) {
                    return Err(e.into());
                }
                crate::control::Authorized {
                    grant: crate::control::Grant {
                        key_id: String::new(),
                        passphrase: None,
                    },
                    source: Source::Fresh,
                }
            }
            Err(e) => return Err(e.into()),
        };
        // This node's own publisher of the name is on air: refused here,
        // whether or not the control plane can be asked (during an outage
        // the claim below cannot see it, and the publisher on air must not
        // be replaced).
        if self.live().contains_key(stream) {
            return Err(self.already_live_here(stream));
        }
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        let session_id = format!("{}-{}-{n}", self.id, self.started_at);
        let since = self.clock().unix_millis();
        let placement = Placement {
            stream: stream.to_owned(),
            node_id: self.id.clone(),
            session_id: session_id.clone(),
            since,
            bitrate_bps: 0,
            viewers: 0,
        };
        let claimed = match self
            .client
            .call("claim_stream", |s| {
                s.claim_stream(&placement, self.config.heartbeat_ttl)
            })
            .await
        {
            Ok(()) => true,
            Err(ControlError::Unavailable(why)) if authorized.source == Source::Grace => {
                warn!(stream, reason = %why, "control plane unreachable: admitting from cached keys; placement claimed when it returns");
                false
            }
            Err(e) => return Err(e.into()),
        };
        // Two publishers of one name racing on this node while the control
        // plane is away both pass the checks above: the first to get here
        // keeps the name.
        let kick = Arc::new(Notify::new());
        let bytes_in = Arc::new(AtomicU64::new(0));
        let inserted = match self.live().entry(stream.to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(LiveStream {
                    session_id: session_id.clone(),
                    since,
                    protocol: publish.protocol,
                    room: publish.room.map(str::to_owned),
                    kick: kick.clone(),
                    bytes_in: bytes_in.clone(),
                    last_bytes: 0,
                    bitrate_bps: 0,
                    claimed,
                });
                true
            }
        };
        if !inserted {
            if claimed {
                let _ = self
                    .client
                    .call("release_stream", |s| s.release_stream(stream, &session_id))
                    .await;
            }
            return Err(self.already_live_here(stream));
        }
        self.put_session(stream, &session_id, since, publish.protocol, publish.room)
            .await;
        Ok(PublishTicket {
            stream: stream.to_owned(),
            session_id,
            passphrase: authorized.grant.passphrase,
            kick,
            bytes_in,
            source: authorized.source,
        })
    }

    /// Authorizes a viewer of `stream` presenting `credential` (the `token`
    /// query parameter). A stream without play keys is public at the origin
    /// (viewers are then authorized by the edge's tokens); one with play
    /// keys needs one of them. Cached: no control-plane round trip once the
    /// stream's keys are read (see [`ControlClient`]).
    ///
    /// # Errors
    /// `Unauthorized`/`Forbidden` for a restricted stream; `Unavailable`
    /// when the keys were never read and the control plane is unreachable.
    pub async fn authorize_play(
        &self,
        stream: &str,
        credential: Option<&str>,
    ) -> Result<(), ControlError> {
        if self.valid_session_token(stream, credential, livestack_tokens::Access::Play) {
            return Ok(());
        }
        // Open streams (no play key), keys cached fresh: decided without a
        // lock or an allocation, as every LL-HLS request asks.
        if self.client.play_is_open(stream) {
            return Ok(());
        }
        match self
            .client
            .authorize(Action::Play, stream, credential, false)
            .await
        {
            Ok(_) => Ok(()),
            Err(ControlError::Unauthorized { .. } | ControlError::Forbidden { .. })
                if !self.client.has_keys_for(stream, Action::Play) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// As [`authorize_play`](Self::authorize_play), for a closed origin
    /// ([`AccessConfig::closed`](crate::config::AccessConfig::closed)): a
    /// stream without play keys is not open but closed to everyone
    /// without a valid play credential.
    ///
    /// # Errors
    /// As [`authorize_play`](Self::authorize_play); `Unauthorized` for a
    /// stream without play keys.
    pub async fn authorize_play_strict(
        &self,
        stream: &str,
        credential: Option<&str>,
    ) -> Result<(), ControlError> {
        if self.valid_session_token(stream, credential, livestack_tokens::Access::Play) {
            return Ok(());
        }
        self.client
            .authorize(Action::Play, stream, credential, false)
            .await
            .map(|_| ())
    }

    /// Sets the keys that verify session tokens (CAT or JWT) the edges'
    /// signaling mints, in `livestack-tokens` key-config format; once.
    ///
    /// # Errors
    /// The key configuration does not parse, or keys were set already.
    pub fn set_session_keys(&self, keys: &str) -> Result<(), String> {
        let keys: livestack_tokens::KeySet = keys.parse().map_err(|e| format!("{e}"))?;
        self.session_keys
            .set(keys)
            .map_err(|_| "session keys are set already".to_owned())
    }

    /// True when `credential` is a session token (CAT or JWT) that opens
    /// `stream` for `access` here: keys configured, the token names this
    /// stream and that access, is within its times and, if it has an
    /// audience, names this node (CTA-5007 / RFC 7519 checks of
    /// `livestack-tokens`). Anything else is left to the stream keys.
    fn valid_session_token(
        &self,
        stream: &str,
        credential: Option<&str>,
        access: livestack_tokens::Access,
    ) -> bool {
        let (Some(keys), Some(token)) = (self.session_keys.get(), credential) else {
            return false;
        };
        if livestack_tokens::TokenKind::detect(token).is_none() {
            return false;
        }
        let now = self.client.clock().unix_millis() / 1000;
        let mut opts = livestack_tokens::VerifyOptions::new(now);
        opts.audience = Some(self.id.clone());
        opts.stream = Some(stream.to_owned());
        opts.access = Some(access);
        match livestack_tokens::verify(token, keys, &opts) {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(stream, error = %e, "not a session token for this stream");
                false
            }
        }
    }

    async fn put_session(
        &self,
        stream: &str,
        session_id: &str,
        since: UnixMillis,
        protocol: &str,
        room: Option<&str>,
    ) {
        let session = Session {
            id: session_id.to_owned(),
            node_id: self.id.clone(),
            role: Role::Publisher,
            protocol: protocol.to_owned(),
            stream: stream.to_owned(),
            room: room.map(str::to_owned),
            started_at: since,
        };
        // Best effort: the heartbeat writes it again.
        let _ = self
            .client
            .call("put_session", |s| {
                s.put_session(&session, self.config.heartbeat_ttl)
            })
            .await;
    }

    /// The control plane's publisher sessions in SFU room `room`, on every
    /// node (a crashed node's expire with its heartbeat TTL).
    ///
    /// # Errors
    /// [`ControlError::Unavailable`], [`ControlError::Corrupt`].
    pub async fn room_sessions(&self, room: &str) -> Result<Vec<Session>, ControlError> {
        let all = self.client.call("sessions", |s| s.sessions()).await?;
        Ok(all
            .into_iter()
            .filter(|s| s.room.as_deref() == Some(room))
            .collect())
    }

    /// Ends a publisher's session: forgets it locally and releases its
    /// placement and session (best effort; the leases expire anyway).
    pub async fn end_publish(&self, ticket: &PublishTicket) {
        {
            let mut live = self.live();
            if live
                .get(&ticket.stream)
                .is_some_and(|l| l.session_id == ticket.session_id)
            {
                live.remove(&ticket.stream);
            }
        }
        let _ = self
            .client
            .call("release_stream", |s| {
                s.release_stream(&ticket.stream, &ticket.session_id)
            })
            .await;
        let _ = self
            .client
            .call("remove_session", |s| s.remove_session(&ticket.session_id))
            .await;
    }

    /// The registry record this node would write now (load sampled since
    /// the previous call).
    fn sample(&self) -> NodeInfo {
        let now = self.clock().now();
        let egress = self.metrics.http_sent_bytes.get();
        let cpu = process_cpu_seconds().unwrap_or(0.0);
        let (egress_bps, cpu_fraction) = {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let dt = now.duration_since(last.at).as_secs_f64().max(0.001);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            let bps = (egress.saturating_sub(last.egress_bytes) as f64 * 8.0 / dt) as u64;
            let cpu_f = ((cpu - last.cpu_seconds) / dt / cores).clamp(0.0, 1.0);
            *last = Sample {
                at: now,
                egress_bytes: egress,
                cpu_seconds: cpu,
            };
            (bps, cpu_f)
        };
        let viewers_by_stream = self.viewers.counts();
        let viewers: u64 = viewers_by_stream.values().sum();
        let streams = self.live().len() as u64;
        let c = &self.config;
        let load = [
            streams as f64 / c.max_streams as f64,
            viewers as f64 / c.max_viewers as f64,
            egress_bps as f64 / c.max_egress_bps as f64,
            cpu_fraction,
        ]
        .into_iter()
        .fold(0.0, f64::max)
        .min(1.0);
        NodeInfo {
            id: self.id.clone(),
            region: self.region.clone(),
            location: self.location,
            urls: self.urls.clone(),
            certificate_sha256: self.certificate_sha256.clone(),
            load: NodeLoad {
                streams,
                viewers,
                egress_bps,
                cpu: cpu_fraction,
                load,
            },
            draining: self.is_draining(),
            started_at: self.started_at,
            heartbeat_at: self.clock().unix_millis(),
        }
    }

    /// One heartbeat: registry record, placement leases, sessions, commands.
    /// Returns whether the control plane was reachable.
    pub async fn heartbeat(&self) -> bool {
        let info = self.sample();
        let ttl = self.config.heartbeat_ttl;
        let registered = self
            .client
            .call("register_node", |s| s.register_node(&info, ttl))
            .await;
        let ok = registered.is_ok();
        self.metrics
            .heartbeats
            .get_or_create(&vec![(
                "result",
                if ok { "ok" } else { "error" }.to_owned(),
            )])
            .inc();
        let was = self.reachable.swap(ok, Ordering::Relaxed);
        match (&registered, was) {
            (Err(e), true) => {
                warn!(node = %self.id, error = %e, "control plane unreachable: established streams keep flowing; new publishers only from cached keys");
            }
            (Ok(()), false) => {
                info!(node = %self.id, "control plane reachable again: re-registering");
            }
            _ => {}
        }
        if !ok {
            return false;
        }
        if !was || !self.seeded.load(Ordering::Relaxed) {
            self.seed_keys().await;
        }
        self.renew_streams(&info).await;
        match self
            .client
            .call("take_commands", |s| s.take_commands(&self.id))
            .await
        {
            Ok(commands) => {
                for c in commands {
                    match c {
                        NodeCommand::Kick { stream } => {
                            if !self.kick(&stream) {
                                info!(stream, "kick for a stream this node no longer holds");
                            }
                        }
                        NodeCommand::Drain { draining } => self.set_draining(draining),
                    }
                }
            }
            Err(e) => warn!(error = %e, "taking node commands failed"),
        }
        true
    }

    async fn renew_streams(&self, info: &NodeInfo) {
        let viewers = self.viewers.counts();
        let interval = self.config.heartbeat_interval.as_secs_f64().max(0.001);
        let held: Vec<(Placement, bool, &'static str, Option<String>)> = {
            let mut live = self.live();
            live.iter_mut()
                .map(|(stream, l)| {
                    let bytes = l.bytes_in.load(Ordering::Relaxed);
                    l.bitrate_bps =
                        ((bytes.saturating_sub(l.last_bytes)) as f64 * 8.0 / interval) as u64;
                    l.last_bytes = bytes;
                    (
                        Placement {
                            stream: stream.clone(),
                            node_id: info.id.clone(),
                            session_id: l.session_id.clone(),
                            since: l.since,
                            bitrate_bps: l.bitrate_bps,
                            viewers: viewers.get(stream).copied().unwrap_or(0),
                        },
                        l.claimed,
                        l.protocol,
                        l.room.clone(),
                    )
                })
                .collect()
        };
        for (p, was_claimed, protocol, room) in held {
            match self
                .client
                .call("claim_stream", |s| {
                    s.claim_stream(&p, self.config.heartbeat_ttl)
                })
                .await
            {
                Ok(()) => {
                    if !was_claimed {
                        info!(stream = %p.stream, "placement claimed after the control plane returned");
                    }
                    if let Some(l) = self.live().get_mut(&p.stream)
                        && l.session_id == p.session_id
                    {
                        l.claimed = true;
                    }
                    self.put_session(&p.stream, &p.session_id, p.since, protocol, room.as_deref())
                        .await;
                }
                Err(ControlError::AlreadyLive { node, .. }) => {
                    warn!(stream = %p.stream, holder = %node, "placement held by another node: disconnecting the local publisher");
                    self.kick(&p.stream);
                }
                Err(e) => warn!(stream = %p.stream, error = %e, "renewing the placement failed"),
            }
        }
    }

    /// Runs the heartbeat every `cluster.heartbeat_interval`, forever.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.heartbeat().await;
        }
    }

    /// Removes the node from the registry and releases its streams (a clean
    /// shutdown; best effort).
    pub async fn deregister(&self) {
        let _ = self
            .client
            .call("deregister_node", |s| s.deregister_node(&self.id))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::control::{ClientOptions, Clock, ControlPlane, ManualClock, MemoryControlPlane};

    #[tokio::test]
    async fn heartbeats_leases_and_viewers_follow_the_node_clock() {
        let clock = ManualClock::new();
        let store = MemoryControlPlane::with_clock(clock.shared());
        let client =
            ControlClient::with_clock(store.clone(), ClientOptions::default(), clock.shared());
        let config = ClusterConfig {
            node_id: "n1".into(),
            ..ClusterConfig::default()
        };
        let metrics = Arc::new(Metrics::new());
        let node = Node::new(
            &config,
            BTreeMap::new(),
            Vec::new(),
            client,
            metrics,
            true,
            Vec::new(),
        );
        // Open mode: a stream without keys publishes without a credential.
        let ticket = node
            .begin_publish("cam", None, Publish::over("srt"))
            .await
            .unwrap();
        clock.advance(Duration::from_millis(250));
        assert!(node.heartbeat().await);
        let nodes = store.nodes().await.unwrap();
        assert_eq!(nodes[0].heartbeat_at, clock.unix_millis());
        assert_eq!(nodes[0].load.streams, 1);

        let peer = "127.0.0.1:5000".parse().unwrap();
        node.viewers.touch("cam", peer);
        clock.advance(VIEWER_WINDOW - Duration::from_millis(1));
        assert_eq!(node.viewers.counts().get("cam"), Some(&1));
        clock.advance(Duration::from_millis(1));
        assert!(node.viewers.counts().is_empty(), "out of the window");

        // No heartbeat for the TTL: the record and the lease are gone ...
        clock.advance(config.heartbeat_ttl);
        assert_eq!(store.nodes().await.unwrap(), vec![]);
        assert_eq!(store.placement("cam").await.unwrap(), None);
        // ... and the next heartbeat brings both back.
        assert!(node.heartbeat().await);
        assert_eq!(store.nodes().await.unwrap().len(), 1);
        let placement = store.placement("cam").await.unwrap().expect("re-claimed");
        assert_eq!(placement.session_id, ticket.session_id);
        node.end_publish(&ticket).await;
        assert_eq!(store.placement("cam").await.unwrap(), None);
    }
}
