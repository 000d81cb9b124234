//! The livestack control plane: what a second node must see.
//!
//! Media servers consult the control plane; they do not own its state
//! (`DESIGN.md`, "Control plane"). It holds:
//!
//! - **stream keys and ACLs** ([`StreamKey`]): who may publish or play which
//!   broadcast, until when;
//! - **sessions** ([`Session`]): publishers, viewers by protocol, room
//!   membership for the SFU;
//! - **the origin registry** ([`NodeInfo`]): node id, region, public URLs per
//!   protocol, load, kept alive by heartbeats with a TTL;
//! - **stream placement** ([`Placement`]): which node holds each live
//!   stream, claimed atomically so that two nodes never both own one;
//! - **node commands** ([`NodeCommand`]): kick a publisher, drain a node,
//!   delivered to the node that must act.
//!
//! [`ControlPlane`] is the storage contract. Two implementations satisfy it
//! and one shared test suite checks that they behave the same:
//! [`MemoryControlPlane`] (the embedded default: one box, the demo) and the
//! Redis implementation (several nodes).
//!
//! Time is wall-clock milliseconds since the Unix epoch ([`UnixMillis`]) in
//! everything stored, because several machines read it; TTLs are
//! [`Duration`]s. The in-memory store and the [`ControlClient`] read time
//! from a [`Clock`] they are given ([`SystemClock`] by default), so tests
//! move it with a [`ManualClock`] instead of sleeping.

mod auth;
mod client;
mod memory;
mod redis;
#[cfg(feature = "test-support")]
pub mod testing;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use self::redis::{
    DEFAULT_SENTINEL_PORT, MAX_TTL_MS, RedisControlPlane, RedisOptions, RedisTarget,
    RedisTargetError, SentinelTarget,
};
pub use auth::{Action, Grant, authorize, ct_eq};
pub use client::{Authorized, ClientOptions, ControlClient, DEFAULT_MAX_CACHED_STREAMS, Source};
pub use livestack_clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use memory::MemoryControlPlane;

/// Milliseconds since the Unix epoch (UTC), the time unit of everything the
/// control plane stores.
pub type UnixMillis = livestack_clock::UnixMillis;

/// Now by the system clock, as [`UnixMillis`] (0 if the clock is before
/// 1970). Code that decides by time takes a [`Clock`] instead.
pub fn now_millis() -> UnixMillis {
    SystemClock.unix_millis()
}

/// Why a control-plane operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No credential was presented for a stream that requires one.
    #[error("a stream key is required to {action} {stream}")]
    Unauthorized {
        /// `"publish"` or `"play"`.
        action: &'static str,
        /// The broadcast name.
        stream: String,
    },
    /// A credential was presented but it does not open this stream for this
    /// action (unknown, revoked, expired, wrong stream or wrong scope).
    #[error("the stream key does not allow to {action} {stream}")]
    Forbidden {
        /// `"publish"` or `"play"`.
        action: &'static str,
        /// The broadcast name.
        stream: String,
    },
    /// The stream is already held by another session.
    #[error("{stream} is already live on node {node}")]
    AlreadyLive {
        /// The broadcast name.
        stream: String,
        /// The node that holds it.
        node: String,
    },
    /// A record with this id already exists (creating a stream key).
    #[error("{0} already exists")]
    Exists(String),
    /// No record with this id.
    #[error("{0} not found")]
    NotFound(String),
    /// The control plane cannot be reached or failed; the operation may be
    /// retried.
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded (written by an incompatible
    /// version, or corrupted).
    #[error("control plane data is corrupt: {0}")]
    Corrupt(String),
}

/// What a stream key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Publish (ingest) only.
    Publish,
    /// Play (subscribe) only.
    Play,
    /// Both.
    Both,
}

impl Scope {
    /// True when this scope allows `action`.
    pub fn allows(self, action: Action) -> bool {
        matches!(
            (self, action),
            (Scope::Both, _) | (Scope::Publish, Action::Publish) | (Scope::Play, Action::Play)
        )
    }
}

/// A stream key: a secret that opens one broadcast (or all, `"*"`) for an
/// action until it expires or is revoked. For SRT it is the `t=`/`token=`
/// value of the streamid (SRT Access Control) or the passphrase; for WHIP
/// the bearer token (RFC 9725 §4.2).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamKey {
    /// Unique id, used to revoke it (`"k-3f9a…"`). Not secret.
    pub id: String,
    /// The broadcast name (`NAME` of `live/NAME`) or `"*"` for every
    /// broadcast.
    pub stream: String,
    /// The secret itself (compare with [`ct_eq`]).
    pub secret: String,
    /// What it allows.
    pub scope: Scope,
    /// Expiry; `None`: never.
    pub expires_at: Option<UnixMillis>,
    /// Creation time.
    pub created_at: UnixMillis,
}

impl StreamKey {
    /// True when the key applies to `stream` (exact name or `"*"`).
    pub fn matches(&self, stream: &str) -> bool {
        self.stream == stream || self.stream == "*"
    }

    /// True when the key has expired at `now`.
    pub fn expired(&self, now: UnixMillis) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

impl std::fmt::Debug for StreamKey {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamKey")
            .field("id", &self.id)
            .field("stream", &self.stream)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Load a node reports with each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Live streams (publishers) held by the node.
    pub streams: u64,
    /// Viewers currently served (HLS clients active in the last few
    /// seconds, WHEP and MoQ subscribers).
    pub viewers: u64,
    /// Media egress, bits per second, averaged over the last heartbeat
    /// interval.
    pub egress_bps: u64,
    /// Process CPU use as a fraction of the node's cores, 0.0 ..= 1.0.
    pub cpu: f64,
    /// Load as a fraction of capacity, 0.0 ..= 1.0, as routing sees it (the
    /// largest of the node's configured limits' fractions).
    pub load: f64,
}

/// One origin node as the registry holds it. Written by the node with each
/// heartbeat; gone when its TTL passes without one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Unique node id (`"origin-eu-west-1a"`).
    pub id: String,
    /// Region name, the unit of geo-affinity (`"eu-west"`).
    pub region: String,
    /// Latitude, longitude of the region in degrees (WGS 84), if known.
    pub location: Option<(f64, f64)>,
    /// Public URLs per protocol: `"http"` (LL-HLS, WHIP, WHEP base URL, no
    /// trailing slash), `"srt"` (`srt://host:port`), `"webtransport"`, ...
    pub urls: BTreeMap<String, String>,
    /// SHA-256 (lower-case hex) of each self-signed certificate of the
    /// node's WebTransport listener, for browsers'
    /// `serverCertificateHashes`; empty for a publicly trusted certificate
    /// (and in records written before this field existed).
    #[serde(default)]
    pub certificate_sha256: Vec<String>,
    /// Load at the last heartbeat.
    pub load: NodeLoad,
    /// True while the node is draining: it takes no new publishers or
    /// viewers; routing sends new work elsewhere.
    pub draining: bool,
    /// When the node started (to tell a restarted node from a live one).
    pub started_at: UnixMillis,
    /// When this record was written (the last heartbeat).
    pub heartbeat_at: UnixMillis,
}

/// Which node holds a live stream. Exactly one session of the whole
/// deployment holds a stream at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The broadcast name.
    pub stream: String,
    /// The node holding the publisher.
    pub node_id: String,
    /// The publishing session (unique across the deployment: the node id
    /// and a per-node counter).
    pub session_id: String,
    /// When the stream went live there.
    pub since: UnixMillis,
    /// Ingest bit rate at the last renewal, bits per second.
    pub bitrate_bps: u64,
    /// Viewers at the last renewal.
    pub viewers: u64,
}

/// Publisher or viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends media (SRT caller, WHIP client, MoQ publisher).
    Publisher,
    /// Receives media (HLS player, WHEP client, MoQ subscriber).
    Viewer,
}

/// A publishing or viewing session, or an SFU room participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Unique id (also the tracing span's `session.id`).
    pub id: String,
    /// The node serving it.
    pub node_id: String,
    /// Publisher or viewer.
    pub role: Role,
    /// `"srt"`, `"whip"`, `"whep"`, `"hls"`, `"moq"`.
    pub protocol: String,
    /// The broadcast name.
    pub stream: String,
    /// The SFU room, for a room participant.
    pub room: Option<String>,
    /// When it started.
    pub started_at: UnixMillis,
}

/// An instruction for one node, executed by the node that receives it at
/// its next heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum NodeCommand {
    /// Disconnect the publisher of `stream` (its key may have been revoked
    /// first, so that it cannot come back).
    Kick {
        /// The broadcast name.
        stream: String,
    },
    /// Start (`true`) or stop (`false`) draining.
    Drain {
        /// The new draining state.
        draining: bool,
    },
}

/// The storage contract of the control plane.
///
/// Every implementation is shared (`Arc<dyn ControlPlane>`) between tasks
/// and must be cheap to call concurrently. Each method is one logical
/// operation; on Redis each is at most one round trip (a pipeline or a
/// script), so callers can count and cache them. Operations never block on
/// an unreachable backend for long: they fail with
/// [`ControlError::Unavailable`] and the caller decides (see
/// `DESIGN.md`: established work keeps flowing, new work that cannot be
/// authorized is refused).
pub trait ControlPlane: Send + Sync + 'static {
    /// `"memory"` or `"redis"`, for metrics and logs.
    fn backend(&self) -> &'static str;

    /// Stores a new stream key.
    ///
    /// # Errors
    /// [`ControlError::Exists`] when `key.id` is taken;
    /// [`ControlError::Unavailable`].
    fn create_key<'a>(&'a self, key: &'a StreamKey) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Revokes (deletes) a stream key; from then on it opens nothing.
    ///
    /// # Errors
    /// [`ControlError::NotFound`] for an unknown id;
    /// [`ControlError::Unavailable`].
    fn revoke_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Every stream key not yet expired, ordered by id.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`], [`ControlError::Corrupt`].
    fn keys(&self) -> BoxFuture<'_, Result<Vec<StreamKey>, ControlError>>;

    /// The keys that apply to `stream` (its own and the `"*"` keys), not
    /// yet expired. This is what authorization reads (one round trip).
    ///
    /// # Errors
    /// [`ControlError::Unavailable`], [`ControlError::Corrupt`].
    fn keys_for_stream<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StreamKey>, ControlError>>;

    /// Writes (creates or replaces) `node`'s registry record, alive for
    /// `ttl` from now. A heartbeat is this call.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`].
    fn register_node<'a>(
        &'a self,
        node: &'a NodeInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Removes `id` from the registry at once (a clean shutdown).
    ///
    /// # Errors
    /// [`ControlError::Unavailable`].
    fn deregister_node<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Every node whose record has not expired, ordered by id.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`], [`ControlError::Corrupt`].
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, ControlError>>;

    /// Atomically claims `placement.stream` for `placement.session_id`, held
    /// for `ttl` from now unless renewed by calling this again.
    ///
    /// Succeeds when the stream is unheld (or its holder's lease expired)
    /// or already held by the same session, in which case the lease is
    /// renewed and the record (bit rate, viewers) replaced.
    ///
    /// # Errors
    /// [`ControlError::AlreadyLive`] (with the holder's node) when another
    /// session holds it; [`ControlError::Unavailable`].
    fn claim_stream<'a>(
        &'a self,
        placement: &'a Placement,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Releases `stream` if `session_id` holds it; a no-op otherwise.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`].
    fn release_stream<'a>(
        &'a self,
        stream: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// The placement of `stream`, if live.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`], [`ControlError::Corrupt`].
    fn placement<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<Placement>, ControlError>>;

    /// Every live placement, ordered by stream.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`], [`ControlError::Corrupt`].
    fn placements(&self) -> BoxFuture<'_, Result<Vec<Placement>, ControlError>>;

    /// Writes (creates or replaces) a session, alive for `ttl` from now
    /// unless written again.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`].
    fn put_session<'a>(
        &'a self,
        session: &'a Session,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Removes a session (a no-op for an unknown id).
    ///
    /// # Errors
    /// [`ControlError::Unavailable`].
    fn remove_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Every session not expired, ordered by id.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`], [`ControlError::Corrupt`].
    fn sessions(&self) -> BoxFuture<'_, Result<Vec<Session>, ControlError>>;

    /// Queues `command` for `node_id` (delivered by [`take_commands`]).
    ///
    /// [`take_commands`]: ControlPlane::take_commands
    ///
    /// # Errors
    /// [`ControlError::Unavailable`].
    fn send_command<'a>(
        &'a self,
        node_id: &'a str,
        command: &'a NodeCommand,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Removes and returns the commands queued for `node_id`, oldest first.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`], [`ControlError::Corrupt`].
    fn take_commands<'a>(
        &'a self,
        node_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<NodeCommand>, ControlError>>;
}
