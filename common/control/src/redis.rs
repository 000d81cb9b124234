//! The Redis control plane: several nodes share one Redis (standalone or
//! Sentinel-managed). See [`RedisControlPlane`] for the key layout.

mod link;
mod scripts;
mod target;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{ErrorKind, RedisError, RedisResult};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use target::{DEFAULT_SENTINEL_PORT, RedisTarget, RedisTargetError, SentinelTarget};

use crate::{
    ControlError, ControlPlane, NodeCommand, NodeInfo, Placement, Session, StreamKey, now_millis,
};
use link::Link;
use scripts::Scripts;

/// The longest TTL written (`PX`): about ten years, in milliseconds.
/// Longer TTLs are shortened to it; a zero TTL is written as 1 ms.
pub const MAX_TTL_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// Settings of a [`RedisControlPlane`]. `Default` gives the documented
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prefix of every key, so that several deployments (or tests) can
    /// share one Redis. Default `"livestack:"`.
    pub key_prefix: String,
    /// Bound on one attempt to open a connection (TCP, TLS, `HELLO`/`AUTH`,
    /// `SELECT`). Default 250 ms.
    pub connect_timeout: Duration,
    /// Bound on waiting for the reply to one call. Default 500 ms.
    ///
    /// Every call returns within `connect_timeout + response_timeout`
    /// (750 ms by default), with [`ControlError::Unavailable`] if Redis did
    /// not answer in time.
    pub response_timeout: Duration,
    /// Bound on one lookup of the primary through Sentinel (it runs in the
    /// background, not inside a call). Default 2 s.
    pub lookup_timeout: Duration,
    /// Least time between two lookups of the primary (after connection
    /// errors). Default 100 ms.
    pub refresh_interval: Duration,
    /// With Sentinel: how often the primary is looked up again while calls
    /// are made, even without errors. A manual failover (`SENTINEL
    /// FAILOVER`) leaves the old primary answering until Sentinel demotes
    /// it; this bounds how long writes can still go there. Default 1 s.
    pub sentinel_check_interval: Duration,
    /// For `rediss://` servers whose certificate a private CA signed: that
    /// CA's certificate(s), PEM. `None` (the default): the system's root
    /// certificates.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "livestack:".into(),
            connect_timeout: Duration::from_millis(250),
            response_timeout: Duration::from_millis(500),
            lookup_timeout: Duration::from_secs(2),
            refresh_interval: Duration::from_millis(100),
            sentinel_check_interval: Duration::from_secs(1),
            tls_ca_pem: None,
        }
    }
}

impl RedisOptions {
    /// These options with [`key_prefix`](Self::key_prefix) set.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// These options with [`tls_ca_pem`](Self::tls_ca_pem) set.
    #[must_use]
    pub fn with_tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca_pem = Some(pem.into());
        self
    }

    /// These options with [`connect_timeout`](Self::connect_timeout) and
    /// [`response_timeout`](Self::response_timeout) set.
    #[must_use]
    pub fn with_timeouts(mut self, connect: Duration, response: Duration) -> Self {
        self.connect_timeout = connect;
        self.response_timeout = response;
        self
    }
}

/// The control plane on Redis (the `redis` crate, async, one multiplexed
/// connection).
///
/// # Connection
///
/// One auto-reconnecting [`ConnectionManager`] carries every call, created
/// lazily: [`connect`](Self::connect) never fails because Redis is down, so
/// a node starts while Redis is unreachable and converges when it comes
/// back. Every call is bounded by
/// [`connect_timeout + response_timeout`](RedisOptions::response_timeout)
/// and fails with [`ControlError::Unavailable`] when Redis does not answer;
/// the next calls reconnect by themselves.
///
/// With a Sentinel target (`redis+sentinel://`) the primary is looked up
/// through the Sentinels (`SENTINEL MASTERS`, then `ROLE` on the named
/// server), in the background, at start and again after any call fails with
/// a connection error, a timeout, `READONLY` (the server was demoted),
/// `MASTERDOWN` or `LOADING`, and every
/// [`sentinel_check_interval`](RedisOptions::sentinel_check_interval)
/// while calls are made. When the Sentinels name another primary, a new
/// connection manager for it replaces the old one: a failover is followed
/// without rebuilding the control plane. Redis replicates asynchronously:
/// a write acknowledged just before the primary dies can be lost in the
/// failover (a lost placement is claimed again at the next renewal; the
/// servers' `min-replicas-to-write` narrows the window).
///
/// # Key layout
///
/// `P` is [`RedisOptions::key_prefix`] (`livestack:`). Values are JSON
/// (`serde_json`) of the crate's types.
///
/// | key | type | content |
/// |---|---|---|
/// | `P keys:{stream}` | hash | key id → [`StreamKey`], the keys of one broadcast; `P keys:*` holds the wildcard keys |
/// | `P key-streams` | hash | key id → stream: finds a key by id (revoke, list) |
/// | `P node:{id}` | string, `PX` = heartbeat TTL | [`NodeInfo`] |
/// | `P nodes` | set | node ids; ids whose record expired are removed when listing |
/// | `P placement:{stream}` | string, `PX` = lease | [`Placement`] |
/// | `P placements` | set | streams with a placement; cleaned the same way |
/// | `P session:{id}` | string, `PX` = TTL | [`Session`] |
/// | `P sessions` | set | session ids; cleaned the same way |
/// | `P commands:{node}` | list | [`NodeCommand`]s for that node, oldest first |
///
/// # Commands per call
///
/// Each call is one round trip: a command, a pipeline, a `MULTI`/`EXEC`, or
/// a Lua script by `EVALSHA` (when the server does not know the script,
/// e.g. after a restart, the `redis` crate loads it and retries: one more
/// round trip, once).
///
/// | call | Redis |
/// |---|---|
/// | `create_key` | script: `HGET` the index, check an old key of that id (replaced only if expired), `HSET` key hash and index |
/// | `revoke_key` | script: `HGET` index, `HDEL` both; `NotFound` if unknown or expired |
/// | `keys` | script: `HGETALL` index, `HGET` each key, drops expired ones |
/// | `keys_for_stream` | pipeline: `HGETALL P keys:{stream}`, `HGETALL P keys:*` |
/// | `register_node` | `MULTI`: `SET P node:{id} … PX ttl`, `SADD P nodes` |
/// | `deregister_node` | `MULTI`: `DEL`, `SREM` |
/// | `nodes`, `placements`, `sessions` | script: `SMEMBERS` the index, `GET` each record, `SREM` the expired ids |
/// | `claim_stream` | script: `GET` the placement; if absent or held by the same session `SET … PX lease` and `SADD P placements`, else return the holder's node |
/// | `release_stream` | script: `GET`, compare the session id, `DEL` + `SREM` |
/// | `placement` | `GET P placement:{stream}` |
/// | `put_session` | `MULTI`: `SET P session:{id} … PX ttl`, `SADD P sessions` |
/// | `remove_session` | `MULTI`: `DEL`, `SREM` |
/// | `send_command` | `RPUSH P commands:{node}` |
/// | `take_commands` | `MULTI`: `LRANGE 0 -1`, `DEL` |
///
/// Stream key expiry (`expires_at`) is checked on every read against this
/// machine's clock; expired keys are also deleted by `keys` and replaced by
/// `create_key`. Registry records, placements and sessions expire in Redis
/// (`PX`). TTLs are clamped to 1 ms ..= [`MAX_TTL_MS`]. Command queues do not
/// expire.
///
/// Scripts build some key names from the prefix, so Redis Cluster is not
/// supported (one primary, made highly available by Sentinel).
///
/// # Errors
///
/// Besides the errors of each [`ControlPlane`] method:
/// [`ControlError::Unavailable`] for every failure to reach Redis (refused,
/// reset, timed out, `READONLY`, `LOADING`, authentication, …; a write
/// that timed out may still be applied by a server that was only slow);
/// [`ControlError::Corrupt`] for stored data that does not decode (bad
/// JSON, a key of the wrong Redis type) and, on writes, for values that
/// JSON cannot carry (a non-finite `f64` in [`NodeInfo`]). Stored data is
/// untrusted input: decoding never panics.
pub struct RedisControlPlane {
    link: Arc<Link>,
    scripts: Scripts,
    target: RedisTarget,
    prefix: String,
    /// The bound on one call.
    deadline: Duration,
}

impl std::fmt::Debug for RedisControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisControlPlane")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl RedisControlPlane {
    /// A control plane on `target`. Returns at once without waiting for
    /// Redis: a server is connected on first use, a Sentinel primary is
    /// looked up in the background (calls made before it is found fail
    /// with [`ControlError::Unavailable`]). Must be called inside a Tokio
    /// runtime; the connection's tasks run on it.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`] only for a target the `redis` crate
    /// cannot use at all (which [`RedisTarget::parse`] already rules out);
    /// never because Redis is unreachable.
    pub async fn connect(
        target: RedisTarget,
        options: RedisOptions,
    ) -> Result<Arc<Self>, ControlError> {
        let link = Link::new(&target, &options)
            .map_err(|e| ControlError::Unavailable(format!("redis {target}: {e}")))?;
        Ok(Arc::new(RedisControlPlane {
            link,
            scripts: Scripts::new(),
            target,
            deadline: options.connect_timeout + options.response_timeout,
            prefix: options.key_prefix,
        }))
    }

    /// Where this control plane connects (password redacted in `Display`).
    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// The address (`host:port`, or socket path) calls currently go to:
    /// the server, or the primary Sentinel named last; `None` before the
    /// first Sentinel lookup succeeded.
    pub fn primary(&self) -> Option<String> {
        self.link.primary()
    }

    /// `PING`: whether Redis answers now (for readiness checks).
    ///
    /// # Errors
    /// [`ControlError::Unavailable`].
    pub async fn ping(&self) -> Result<(), ControlError> {
        self.run("ping", |mut c| async move {
            ::redis::cmd("PING").query_async::<()>(&mut c).await
        })
        .await
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push_str(p);
        }
        k
    }

    /// Runs one call on the current connection within the deadline,
    /// mapping errors and telling the link about connection trouble.
    async fn run<T, F, Fut>(&self, op: &'static str, call: F) -> Result<T, ControlError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let work = async {
            let conn = self.link.manager().await?;
            call(conn).await.map_err(|e| {
                tracing::debug!(op, error = %e, "redis call failed");
                self.link.on_error(&e);
                map_error(op, &e)
            })
        };
        match tokio::time::timeout(self.deadline, work).await {
            Ok(result) => result,
            Err(_) => {
                tracing::debug!(op, deadline = ?self.deadline, "redis call timed out");
                self.link.on_deadline();
                Err(ControlError::Unavailable(format!(
                    "redis {op}: no answer within {:?}",
                    self.deadline
                )))
            }
        }
    }
}

/// Connection and server trouble is `Unavailable` (retry later); data that
/// does not have the shape we wrote is `Corrupt`.
fn map_error(op: &str, e: &RedisError) -> ControlError {
    // A key of the wrong Redis type: `WRONGTYPE`, also inside a pipeline
    // or transaction (where `code()` does not show it).
    let wrong_type = e.code() == Some("WRONGTYPE")
        || e.clone()
            .into_server_errors()
            .is_some_and(|errs| errs.iter().any(|(_, err)| err.code() == "WRONGTYPE"));
    let corrupt =
        matches!(e.kind(), ErrorKind::Parse | ErrorKind::UnexpectedReturnType) || wrong_type;
    if corrupt {
        ControlError::Corrupt(format!("redis {op}: {e}"))
    } else {
        ControlError::Unavailable(format!("redis {op}: {e}"))
    }
}

/// The `redis` crate builds its TLS configuration with rustls' process-wide
/// crypto provider, and panics when there is none and the linked rustls
/// features do not name one. A process that installed a provider keeps
/// it; otherwise `ring` is installed.
pub(crate) fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: there is one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A client for one server URL; for `rediss://`, with the crypto provider
/// ensured and `ca_pem` (if any) as the only trusted root.
pub(crate) fn client_for(url: &str, ca_pem: Option<&[u8]>) -> RedisResult<::redis::Client> {
    if !url.to_ascii_lowercase().starts_with("rediss:") {
        return ::redis::Client::open(url);
    }
    ensure_crypto_provider();
    match ca_pem {
        None => ::redis::Client::open(url),
        Some(pem) => ::redis::Client::build_with_tls(
            url,
            ::redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
    }
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, ControlError> {
    serde_json::to_vec(value).map_err(|e| ControlError::Corrupt(format!("{what}: {e}")))
}

/// Decodes one stored value (untrusted: any bytes).
fn decode<T: DeserializeOwned>(what: &str, raw: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(raw).map_err(|e| ControlError::Corrupt(format!("{what}: {e}")))
}

fn decode_all<T: DeserializeOwned>(what: &str, raws: &[Vec<u8>]) -> Result<Vec<T>, ControlError> {
    raws.iter().map(|raw| decode(what, raw)).collect()
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_TTL_MS)
}

/// JSON has no NaN or infinity (`serde_json` would write `null`, which does
/// not read back as a number): refuse to store them.
fn check_finite(node: &NodeInfo) -> Result<(), ControlError> {
    let (lat, lon) = node.location.unwrap_or((0.0, 0.0));
    for (field, v) in [
        ("load.cpu", node.load.cpu),
        ("load.load", node.load.load),
        ("location", lat),
        ("location", lon),
    ] {
        if !v.is_finite() {
            return Err(ControlError::Corrupt(format!(
                "node {}: {field} is not a finite number",
                node.id
            )));
        }
    }
    Ok(())
}

impl ControlPlane for RedisControlPlane {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn create_key<'a>(&'a self, key: &'a StreamKey) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let json = encode("stream key", key)?;
            let created: i64 = self
                .run("create_key", |mut c| async move {
                    self.scripts
                        .create_key
                        .key(self.key(&["key-streams"]))
                        .key(self.key(&["keys:", &key.stream]))
                        .arg(&key.id)
                        .arg(&key.stream)
                        .arg(json)
                        .arg(now_millis())
                        .arg(self.key(&["keys:"]))
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            match created {
                1 => Ok(()),
                _ => Err(ControlError::Exists(key.id.clone())),
            }
        })
    }

    fn revoke_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let revoked: i64 = self
                .run("revoke_key", |mut c| async move {
                    self.scripts
                        .revoke_key
                        .key(self.key(&["key-streams"]))
                        .arg(id)
                        .arg(self.key(&["keys:"]))
                        .arg(now_millis())
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            match revoked {
                1 => Ok(()),
                _ => Err(ControlError::NotFound(id.to_owned())),
            }
        })
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<StreamKey>, ControlError>> {
        Box::pin(async move {
            let raws: Vec<Vec<u8>> = self
                .run("keys", |mut c| async move {
                    self.scripts
                        .list_keys
                        .key(self.key(&["key-streams"]))
                        .arg(self.key(&["keys:"]))
                        .arg(now_millis())
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            let now = now_millis();
            let mut keys: Vec<StreamKey> = decode_all("stream key", &raws)?;
            keys.retain(|k| !k.expired(now));
            keys.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(keys)
        })
    }

    fn keys_for_stream<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StreamKey>, ControlError>> {
        Box::pin(async move {
            let mut pipe = ::redis::pipe();
            pipe.cmd("HGETALL").arg(self.key(&["keys:", stream]));
            if stream != "*" {
                pipe.cmd("HGETALL").arg(self.key(&["keys:*"]));
            }
            let hashes: Vec<Vec<(Vec<u8>, Vec<u8>)>> = self
                .run("keys_for_stream", |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await?;
            let now = now_millis();
            let mut keys = Vec::new();
            for (_, raw) in hashes.iter().flatten() {
                let key: StreamKey = decode("stream key", raw)?;
                // A key filed under the wrong hash opens nothing it was not
                // made for.
                if key.matches(stream) && !key.expired(now) {
                    keys.push(key);
                }
            }
            keys.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(keys)
        })
    }

    fn register_node<'a>(
        &'a self,
        node: &'a NodeInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            check_finite(node)?;
            let json = encode("node", node)?;
            let mut pipe = ::redis::pipe();
            pipe.atomic()
                .cmd("SET")
                .arg(self.key(&["node:", &node.id]))
                .arg(json)
                .arg("PX")
                .arg(ttl_ms(ttl))
                .ignore()
                .cmd("SADD")
                .arg(self.key(&["nodes"]))
                .arg(&node.id)
                .ignore();
            self.run("register_node", |mut c| async move {
                pipe.query_async::<()>(&mut c).await
            })
            .await
        })
    }

    fn deregister_node<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let mut pipe = ::redis::pipe();
            pipe.atomic()
                .cmd("DEL")
                .arg(self.key(&["node:", id]))
                .ignore()
                .cmd("SREM")
                .arg(self.key(&["nodes"]))
                .arg(id)
                .ignore();
            self.run("deregister_node", |mut c| async move {
                pipe.query_async::<()>(&mut c).await
            })
            .await
        })
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, ControlError>> {
        Box::pin(async move {
            let raws = self.list_records("nodes", "nodes", "node:").await?;
            let mut nodes: Vec<NodeInfo> = decode_all("node", &raws)?;
            nodes.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(nodes)
        })
    }

    fn claim_stream<'a>(
        &'a self,
        placement: &'a Placement,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let json = encode("placement", placement)?;
            let (outcome, holder): (i64, Vec<u8>) = self
                .run("claim_stream", |mut c| async move {
                    self.scripts
                        .claim
                        .key(self.key(&["placement:", &placement.stream]))
                        .key(self.key(&["placements"]))
                        .arg(&placement.session_id)
                        .arg(json)
                        .arg(ttl_ms(ttl))
                        .arg(&placement.stream)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            match outcome {
                1 => Ok(()),
                0 => Err(ControlError::AlreadyLive {
                    stream: placement.stream.clone(),
                    node: String::from_utf8_lossy(&holder).into_owned(),
                }),
                _ => Err(ControlError::Corrupt(format!(
                    "placement of {}: the holder's record does not decode",
                    placement.stream
                ))),
            }
        })
    }

    fn release_stream<'a>(
        &'a self,
        stream: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            self.run("release_stream", |mut c| async move {
                self.scripts
                    .release
                    .key(self.key(&["placement:", stream]))
                    .key(self.key(&["placements"]))
                    .arg(session_id)
                    .arg(stream)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(drop)
        })
    }

    fn placement<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<Placement>, ControlError>> {
        Box::pin(async move {
            let raw: Option<Vec<u8>> = self
                .run("placement", |mut c| async move {
                    ::redis::cmd("GET")
                        .arg(self.key(&["placement:", stream]))
                        .query_async(&mut c)
                        .await
                })
                .await?;
            raw.map(|raw| decode("placement", &raw)).transpose()
        })
    }

    fn placements(&self) -> BoxFuture<'_, Result<Vec<Placement>, ControlError>> {
        Box::pin(async move {
            let raws = self
                .list_records("placements", "placements", "placement:")
                .await?;
            let mut placements: Vec<Placement> = decode_all("placement", &raws)?;
            placements.sort_by(|a, b| a.stream.cmp(&b.stream));
            Ok(placements)
        })
    }

    fn put_session<'a>(
        &'a self,
        session: &'a Session,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let json = encode("session", session)?;
            let mut pipe = ::redis::pipe();
            pipe.atomic()
                .cmd("SET")
                .arg(self.key(&["session:", &session.id]))
                .arg(json)
                .arg("PX")
                .arg(ttl_ms(ttl))
                .ignore()
                .cmd("SADD")
                .arg(self.key(&["sessions"]))
                .arg(&session.id)
                .ignore();
            self.run("put_session", |mut c| async move {
                pipe.query_async::<()>(&mut c).await
            })
            .await
        })
    }

    fn remove_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let mut pipe = ::redis::pipe();
            pipe.atomic()
                .cmd("DEL")
                .arg(self.key(&["session:", id]))
                .ignore()
                .cmd("SREM")
                .arg(self.key(&["sessions"]))
                .arg(id)
                .ignore();
            self.run("remove_session", |mut c| async move {
                pipe.query_async::<()>(&mut c).await
            })
            .await
        })
    }

    fn sessions(&self) -> BoxFuture<'_, Result<Vec<Session>, ControlError>> {
        Box::pin(async move {
            let raws = self
                .list_records("sessions", "sessions", "session:")
                .await?;
            let mut sessions: Vec<Session> = decode_all("session", &raws)?;
            sessions.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(sessions)
        })
    }

    fn send_command<'a>(
        &'a self,
        node_id: &'a str,
        command: &'a NodeCommand,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let json = encode("command", command)?;
            self.run("send_command", |mut c| async move {
                ::redis::cmd("RPUSH")
                    .arg(self.key(&["commands:", node_id]))
                    .arg(json)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(drop)
        })
    }

    fn take_commands<'a>(
        &'a self,
        node_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<NodeCommand>, ControlError>> {
        Box::pin(async move {
            let queue = self.key(&["commands:", node_id]);
            let mut pipe = ::redis::pipe();
            pipe.atomic()
                .cmd("LRANGE")
                .arg(&queue)
                .arg(0)
                .arg(-1)
                .cmd("DEL")
                .arg(&queue)
                .ignore();
            let (raws,): (Vec<Vec<u8>>,) = self
                .run("take_commands", |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await?;
            decode_all("command", &raws)
        })
    }
}

impl RedisControlPlane {
    /// The JSON of every live record under an index set (one script call).
    async fn list_records(
        &self,
        op: &'static str,
        index: &str,
        record_prefix: &str,
    ) -> Result<Vec<Vec<u8>>, ControlError> {
        self.run(op, |mut c| async move {
            self.scripts
                .list_records
                .key(self.key(&[index]))
                .arg(self.key(&[record_prefix]))
                .invoke_async(&mut c)
                .await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_clamped() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_micros(10)), 1);
        assert_eq!(ttl_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }

    #[test]
    fn garbage_decodes_to_corrupt_never_panics() {
        // A small deterministic generator of hostile byte strings: random
        // bytes, truncated and mutated valid records.
        let key = StreamKey {
            id: "k1".into(),
            stream: "s".into(),
            secret: "x".into(),
            scope: crate::Scope::Both,
            expires_at: Some(5),
            created_at: 1,
        };
        let valid = serde_json::to_vec(&key).unwrap();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5_000 {
            let mut raw = valid.clone();
            match next() % 3 {
                0 => raw.truncate(usize::try_from(next() % 64).unwrap()),
                1 => {
                    let i = usize::try_from(next()).unwrap() % raw.len();
                    raw[i] = u8::try_from(next() & 0xff).unwrap();
                }
                _ => {
                    raw = (0..next() % 40)
                        .map(|_| u8::try_from(next() & 0xff).unwrap())
                        .collect();
                }
            }
            for r in [
                decode::<StreamKey>("k", &raw).map(drop),
                decode::<NodeInfo>("n", &raw).map(drop),
                decode::<Placement>("p", &raw).map(drop),
                decode::<Session>("s", &raw).map(drop),
                decode::<NodeCommand>("c", &raw).map(drop),
            ] {
                assert!(matches!(r, Ok(()) | Err(ControlError::Corrupt(_))));
            }
        }
    }

    #[test]
    fn non_finite_loads_are_refused() {
        let mut node = NodeInfo {
            certificate_sha256: Vec::new(),
            id: "n".into(),
            region: "r".into(),
            location: Some((1.0, f64::INFINITY)),
            urls: Default::default(),
            load: Default::default(),
            draining: false,
            started_at: 0,
            heartbeat_at: 0,
        };
        assert!(matches!(check_finite(&node), Err(ControlError::Corrupt(_))));
        node.location = None;
        node.load.cpu = f64::NAN;
        assert!(matches!(check_finite(&node), Err(ControlError::Corrupt(_))));
        node.load.cpu = 0.5;
        assert_eq!(check_finite(&node), Ok(()));
    }
}
