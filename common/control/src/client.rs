//! The node-side client: caching, a grace period, metrics and round-trip
//! counting on top of any [`ControlPlane`].
//!
//! Nodes cache what they read (`DESIGN.md`, "Control plane"):
//!
//! - **play** authorization reads the stream's keys from a local cache
//!   younger than [`ClientOptions::cache_ttl`] — zero round trips on a
//!   viewer join once cached; a key revoked elsewhere stops opening streams
//!   on this node within `cache_ttl`;
//! - **publish** authorization always reads fresh keys (publishes are rare
//!   and a revoked key must not publish again), one round trip;
//! - when the control plane is unreachable, publish authorization reads
//!   cached keys no older than [`ClientOptions::grace`] (the decision is
//!   then marked [`Source::Grace`]); older or never-read keys give
//!   [`ControlError::Unavailable`]: new work that cannot be authorized is
//!   refused with a clear reason. Play authorization reads cached keys of
//!   any age: a stream's keys are read when it goes live, and its viewers
//!   (whose every HLS request is authorized) must keep playing through an
//!   outage; revocations made meanwhile apply when it returns.
//!
//! Ages and expiries are read from the client's [`Clock`]
//! ([`ControlClient::with_clock`]; the system clock by default), so tests
//! pass a TTL or a grace period by advancing a
//! [`ManualClock`](crate::ManualClock).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::{
    Action, ControlError, ControlPlane, Grant, SharedClock, StreamKey, SystemClock, authorize,
};

/// Caching knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// How long a stream's keys are reused for play authorization without
    /// asking the control plane. Default 5 s.
    pub cache_ttl: Duration,
    /// How long cached keys may still authorize (publish or play) while the
    /// control plane is unreachable. Zero disables the grace period. Default
    /// 5 min.
    pub grace: Duration,
    /// Streams whose keys are cached at once. Every name a client asks
    /// about (an SRT handshake, a viewer's `/live/NAME/`) is cached, and
    /// names cost nothing to invent: above this, the oldest read is
    /// forgotten, so unauthenticated handshakes with made-up names cannot
    /// grow the node's memory. A forgotten stream is read again at its
    /// next request (during a control-plane outage it then has no grace).
    /// Default [`DEFAULT_MAX_CACHED_STREAMS`].
    pub max_cached_streams: usize,
}

/// Default of [`ClientOptions::max_cached_streams`]: well above the streams
/// one origin holds (`cluster.max_streams`, default 100) and their viewers'
/// names, small enough that the copy-on-write map stays cheap to copy.
pub const DEFAULT_MAX_CACHED_STREAMS: usize = 4_096;

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(5),
            grace: Duration::from_secs(300),
            max_cached_streams: DEFAULT_MAX_CACHED_STREAMS,
        }
    }
}

/// Where an authorization decision's keys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Read from the control plane for this decision.
    Fresh,
    /// The local cache, younger than [`ClientOptions::cache_ttl`].
    Cached,
    /// The local cache while the control plane is unreachable, within
    /// [`ClientOptions::grace`].
    Grace,
}

/// An authorization decision and where its keys came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// What the client gets.
    pub grant: Grant,
    /// Where the keys came from.
    pub source: Source,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    backend: &'static str,
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    backend: &'static str,
    op: &'static str,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

/// The client's metrics, under the `livestack_control_` prefix:
/// `operation_seconds{backend,op}` (histogram),
/// `errors_total{backend,op,kind}`, `cache_total{result=hit|miss|stale}`.
#[derive(Debug)]
struct ClientMetrics {
    registry: Registry,
    seconds: Family<OpLabels, Histogram>,
    errors: Family<ErrorLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
}

impl ClientMetrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("livestack_control");
        let seconds = Family::<OpLabels, Histogram>::new_with_constructor(|| {
            // 20 µs .. ~2.6 s.
            Histogram::new(exponential_buckets(0.000_02, 2.0, 18))
        });
        let errors = Family::<ErrorLabels, Counter>::default();
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "operation_seconds",
            "Control-plane operation latency, seconds",
            seconds.clone(),
        );
        registry.register("errors", "Control-plane operation errors", errors.clone());
        registry.register(
            "cache",
            "Authorization key-cache lookups by result",
            cache.clone(),
        );
        Self {
            registry,
            seconds,
            errors,
            cache,
        }
    }
}

#[derive(Debug, Clone)]
struct CachedKeys {
    keys: Arc<Vec<StreamKey>>,
    fetched: Instant,
}

/// A caching, measuring client of a [`ControlPlane`], shared by a node's
/// tasks (`Arc<ControlClient>`).
pub struct ControlClient {
    store: Arc<dyn ControlPlane>,
    options: ClientOptions,
    clock: SharedClock,
    /// Keys per stream, read without a lock on every play request; a
    /// fetch copies the map and swaps the copy in (one per stream per
    /// `cache_ttl`).
    keys: ArcSwap<HashMap<String, CachedKeys>>,
    metrics: ClientMetrics,
    round_trips: AtomicU64,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient")
            .field("backend", &self.store.backend())
            .field("options", &self.options)
            .field("round_trips", &self.round_trips())
            .finish_non_exhaustive()
    }
}

fn error_kind(e: &ControlError) -> &'static str {
    match e {
        ControlError::Unauthorized { .. } => "unauthorized",
        ControlError::Forbidden { .. } => "forbidden",
        ControlError::AlreadyLive { .. } => "already_live",
        ControlError::Exists(_) => "exists",
        ControlError::NotFound(_) => "not_found",
        ControlError::Unavailable(_) => "unavailable",
        ControlError::Corrupt(_) => "corrupt",
    }
}

impl ControlClient {
    /// A client of `store` on the system clock.
    pub fn new(store: Arc<dyn ControlPlane>, options: ClientOptions) -> Arc<Self> {
        Self::with_clock(store, options, SystemClock::shared())
    }

    /// A client of `store` reading time (cache ages, the grace period, key
    /// expiry) from `clock`.
    pub fn with_clock(
        store: Arc<dyn ControlPlane>,
        options: ClientOptions,
        clock: SharedClock,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            options,
            clock,
            keys: ArcSwap::default(),
            metrics: ClientMetrics::new(),
            round_trips: AtomicU64::new(0),
        })
    }

    /// The store itself (uncounted, unmeasured: prefer [`call`](Self::call)).
    pub fn store(&self) -> &Arc<dyn ControlPlane> {
        &self.store
    }

    /// The caching knobs.
    pub fn options(&self) -> ClientOptions {
        self.options
    }

    /// The clock this client reads; the node code built on the client
    /// takes its time from it too.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Control-plane operations issued through this client so far (each is
    /// at most one round trip on Redis).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Appends the client's metrics (Prometheus text format, no `# EOF`
    /// line) to `out`.
    pub fn encode_metrics(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = encode_registry(out, &self.metrics.registry);
    }

    /// Runs one store operation named `op`, timing it and counting it
    /// (and its error kind, if any) in the metrics.
    ///
    /// # Errors
    /// The operation's error.
    pub async fn call<'a, T>(
        &'a self,
        op: &'static str,
        f: impl FnOnce(&'a dyn ControlPlane) -> futures::future::BoxFuture<'a, Result<T, ControlError>>,
    ) -> Result<T, ControlError> {
        self.measure(op, f(self.store.as_ref())).await
    }

    async fn measure<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, ControlError>>,
    ) -> Result<T, ControlError> {
        let backend = self.store.backend();
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        // Latency is measured in real time: it describes the backend, and
        // no decision depends on it.
        let start = Instant::now();
        let result = fut.await;
        self.metrics
            .seconds
            .get_or_create(&OpLabels { backend, op })
            .observe(start.elapsed().as_secs_f64());
        if let Err(e) = &result {
            self.metrics
                .errors
                .get_or_create(&ErrorLabels {
                    backend,
                    op,
                    kind: error_kind(e),
                })
                .inc();
        }
        result
    }

    fn cached(&self, stream: &str) -> Option<CachedKeys> {
        self.keys.load().get(stream).cloned()
    }

    fn count_cache(&self, result: &'static str) {
        self.metrics
            .cache
            .get_or_create(&CacheLabels { result })
            .inc();
    }

    /// Decides whether `credential` allows `action` on `stream` (see
    /// [`authorize`] for the rules, and the module docs for caching).
    ///
    /// # Errors
    /// [`ControlError::Unauthorized`], [`ControlError::Forbidden`];
    /// [`ControlError::Unavailable`] when the control plane is unreachable
    /// and no cached keys within the grace period exist.
    pub async fn authorize(
        &self,
        action: Action,
        stream: &str,
        credential: Option<&str>,
        encrypted: bool,
    ) -> Result<Authorized, ControlError> {
        let cached = self.cached(stream);
        let age = |c: &CachedKeys| self.clock.now().saturating_duration_since(c.fetched);
        if action == Action::Play
            && let Some(c) = &cached
            && age(c) < self.options.cache_ttl
        {
            self.count_cache("hit");
            let now = self.clock.unix_millis();
            let grant = authorize(action, stream, credential, encrypted, &c.keys, now)?;
            return Ok(Authorized {
                grant,
                source: Source::Cached,
            });
        }
        match self
            .measure("keys_for_stream", self.store.keys_for_stream(stream))
            .await
        {
            Ok(keys) => {
                self.count_cache("miss");
                let keys = Arc::new(keys);
                let cached = CachedKeys {
                    keys: keys.clone(),
                    fetched: self.clock.now(),
                };
                let cap = self.options.max_cached_streams.max(1);
                self.keys.rcu(|map| {
                    let mut map = HashMap::clone(map);
                    if map.len() >= cap && !map.contains_key(stream) {
                        // Forget the oldest read (a linear scan of a map
                        // that is copied here anyway).
                        let oldest = map
                            .iter()
                            .min_by_key(|(_, c)| c.fetched)
                            .map(|(name, _)| name.clone());
                        if let Some(name) = oldest {
                            map.remove(&name);
                        }
                    }
                    map.insert(stream.to_owned(), cached.clone());
                    map
                });
                let now = self.clock.unix_millis();
                let grant = authorize(action, stream, credential, encrypted, &keys, now)?;
                Ok(Authorized {
                    grant,
                    source: Source::Fresh,
                })
            }
            Err(ControlError::Unavailable(why)) => match cached {
                Some(c) if action == Action::Play || age(&c) < self.options.grace => {
                    self.count_cache("stale");
                    let now = self.clock.unix_millis();
                    let grant = authorize(action, stream, credential, encrypted, &c.keys, now)?;
                    Ok(Authorized {
                        grant,
                        source: Source::Grace,
                    })
                }
                _ => Err(ControlError::Unavailable(why)),
            },
            Err(e) => Err(e),
        }
    }

    /// True when the keys last read for `stream` (by
    /// [`authorize`](Self::authorize)) held any key of its own or a `*` key.
    pub fn has_keys(&self, stream: &str) -> bool {
        self.cached(stream).is_some_and(|c| !c.keys.is_empty())
    }

    /// True when the keys last read for `stream` hold a key whose scope
    /// allows `action` (a stream with play keys is restricted to viewers
    /// presenting one).
    pub fn has_keys_for(&self, stream: &str, action: Action) -> bool {
        self.cached(stream)
            .is_some_and(|c| c.keys.iter().any(|k| k.scope.allows(action)))
    }

    /// True when `stream` is open for play by the keys cached for it, and
    /// the cache is younger than [`ClientOptions::cache_ttl`]: no key of
    /// the stream (or `*`) has a scope that allows [`Action::Play`], so
    /// any viewer, with or without a credential, may play. False when the
    /// stream has play keys or its keys are not cached fresh (then
    /// [`authorize`](Self::authorize) decides, reading them again).
    ///
    /// The hot path of every LL-HLS request: a lock-free map read, no
    /// allocation. Counted as a cache hit.
    pub fn play_is_open(&self, stream: &str) -> bool {
        let map = self.keys.load();
        let Some(c) = map.get(stream) else {
            return false;
        };
        let fresh = self.clock.now().saturating_duration_since(c.fetched) < self.options.cache_ttl;
        let open = fresh && !c.keys.iter().any(|k| k.scope.allows(Action::Play));
        if open {
            self.count_cache("hit");
        }
        open
    }

    /// Revokes a key through the store and drops this node's cached keys,
    /// so that the revocation takes effect here at once.
    ///
    /// # Errors
    /// As [`ControlPlane::revoke_key`].
    pub async fn revoke_key(&self, id: &str) -> Result<(), ControlError> {
        let r = self.measure("revoke_key", self.store.revoke_key(id)).await;
        if r.is_ok() {
            self.keys.store(Arc::default());
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use futures::future::BoxFuture;

    use super::*;
    use crate::{
        Clock, ManualClock, MemoryControlPlane, NodeCommand, NodeInfo, Placement, Scope, Session,
    };

    /// A memory store whose key reads fail with `Unavailable` while
    /// `down` is set: an outage the test switches on and off.
    struct Outage {
        inner: Arc<MemoryControlPlane>,
        down: AtomicBool,
    }

    impl Outage {
        fn check(&self) -> Result<(), ControlError> {
            if self.down.load(Ordering::Relaxed) {
                Err(ControlError::Unavailable("switched off".into()))
            } else {
                Ok(())
            }
        }
    }

    impl ControlPlane for Outage {
        fn backend(&self) -> &'static str {
            "outage"
        }
        fn create_key<'a>(&'a self, k: &'a StreamKey) -> BoxFuture<'a, Result<(), ControlError>> {
            self.inner.create_key(k)
        }
        fn revoke_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
            self.inner.revoke_key(id)
        }
        fn keys(&self) -> BoxFuture<'_, Result<Vec<StreamKey>, ControlError>> {
            self.inner.keys()
        }
        fn keys_for_stream<'a>(
            &'a self,
            stream: &'a str,
        ) -> BoxFuture<'a, Result<Vec<StreamKey>, ControlError>> {
            match self.check() {
                Ok(()) => self.inner.keys_for_stream(stream),
                Err(e) => Box::pin(std::future::ready(Err(e))),
            }
        }
        fn register_node<'a>(
            &'a self,
            n: &'a NodeInfo,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<(), ControlError>> {
            self.inner.register_node(n, ttl)
        }
        fn deregister_node<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
            self.inner.deregister_node(id)
        }
        fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, ControlError>> {
            self.inner.nodes()
        }
        fn claim_stream<'a>(
            &'a self,
            p: &'a Placement,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<(), ControlError>> {
            self.inner.claim_stream(p, ttl)
        }
        fn release_stream<'a>(
            &'a self,
            stream: &'a str,
            session_id: &'a str,
        ) -> BoxFuture<'a, Result<(), ControlError>> {
            self.inner.release_stream(stream, session_id)
        }
        fn placement<'a>(
            &'a self,
            stream: &'a str,
        ) -> BoxFuture<'a, Result<Option<Placement>, ControlError>> {
            self.inner.placement(stream)
        }
        fn placements(&self) -> BoxFuture<'_, Result<Vec<Placement>, ControlError>> {
            self.inner.placements()
        }
        fn put_session<'a>(
            &'a self,
            x: &'a Session,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<(), ControlError>> {
            self.inner.put_session(x, ttl)
        }
        fn remove_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
            self.inner.remove_session(id)
        }
        fn sessions(&self) -> BoxFuture<'_, Result<Vec<Session>, ControlError>> {
            self.inner.sessions()
        }
        fn send_command<'a>(
            &'a self,
            node_id: &'a str,
            c: &'a NodeCommand,
        ) -> BoxFuture<'a, Result<(), ControlError>> {
            self.inner.send_command(node_id, c)
        }
        fn take_commands<'a>(
            &'a self,
            node_id: &'a str,
        ) -> BoxFuture<'a, Result<Vec<NodeCommand>, ControlError>> {
            self.inner.take_commands(node_id)
        }
    }

    /// A client on a manual clock over a store that can be switched off.
    async fn on_manual_clock(
        options: ClientOptions,
        keys: &[StreamKey],
    ) -> (Arc<ControlClient>, Arc<Outage>, ManualClock) {
        let clock = ManualClock::new();
        let inner = MemoryControlPlane::with_clock(clock.shared());
        for k in keys {
            inner.create_key(k).await.unwrap();
        }
        let store = Arc::new(Outage {
            inner,
            down: AtomicBool::new(false),
        });
        let client = ControlClient::with_clock(store.clone(), options, clock.shared());
        (client, store, clock)
    }

    fn key(id: &str, stream: &str, secret: &str) -> StreamKey {
        StreamKey {
            id: id.into(),
            stream: stream.into(),
            secret: secret.into(),
            scope: Scope::Both,
            expires_at: None,
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn play_is_cached_publish_is_fresh() {
        let store = MemoryControlPlane::with_keys([key("k1", "a", "secret-of-a")]);
        let client = ControlClient::new(store, ClientOptions::default());
        let a = client
            .authorize(Action::Play, "a", Some("secret-of-a"), false)
            .await
            .unwrap();
        assert_eq!(a.source, Source::Fresh);
        let before = client.round_trips();
        for _ in 0..10 {
            let a = client
                .authorize(Action::Play, "a", Some("secret-of-a"), false)
                .await
                .unwrap();
            assert_eq!(a.source, Source::Cached);
        }
        assert_eq!(client.round_trips(), before, "play joins hit the cache");
        let p = client
            .authorize(Action::Publish, "a", Some("secret-of-a"), false)
            .await
            .unwrap();
        assert_eq!(p.source, Source::Fresh);
        assert_eq!(client.round_trips(), before + 1);
        client.revoke_key("k1").await.unwrap();
        assert!(matches!(
            client
                .authorize(Action::Play, "a", Some("secret-of-a"), false)
                .await,
            Err(ControlError::Forbidden { .. })
        ));
        let mut text = String::new();
        client.encode_metrics(&mut text);
        assert!(text.contains("livestack_control_operation_seconds_bucket"));
        assert!(text.contains("livestack_control_cache_total{result=\"hit\"} 10"));
    }

    #[tokio::test]
    async fn play_cache_expires_after_its_ttl() {
        let options = ClientOptions {
            cache_ttl: Duration::from_secs(5),
            grace: Duration::from_secs(300),
            ..ClientOptions::default()
        };
        let (client, _, clock) = on_manual_clock(options, &[key("k1", "a", "s-a")]).await;
        let play = async || {
            client
                .authorize(Action::Play, "a", Some("s-a"), false)
                .await
                .unwrap()
                .source
        };
        assert_eq!(play().await, Source::Fresh);
        clock.advance(Duration::from_millis(4_999));
        assert_eq!(play().await, Source::Cached, "younger than cache_ttl");
        clock.advance(Duration::from_millis(1));
        assert_eq!(play().await, Source::Fresh, "cache_ttl passed: read again");
        assert_eq!(play().await, Source::Cached);
    }

    #[tokio::test]
    async fn publish_uses_cached_keys_only_within_the_grace_period() {
        let options = ClientOptions {
            cache_ttl: Duration::from_secs(5),
            grace: Duration::from_secs(60),
            ..ClientOptions::default()
        };
        let (client, store, clock) = on_manual_clock(options, &[key("k1", "a", "s-a")]).await;
        let publish = async |stream: &str| {
            client
                .authorize(Action::Publish, stream, Some("s-a"), false)
                .await
        };
        assert_eq!(publish("a").await.unwrap().source, Source::Fresh);
        store.down.store(true, Ordering::Relaxed);
        clock.advance(Duration::from_secs(59));
        assert_eq!(publish("a").await.unwrap().source, Source::Grace);
        // Never read: nothing to fall back on.
        assert!(matches!(
            publish("b").await,
            Err(ControlError::Unavailable(_))
        ));
        clock.advance(Duration::from_secs(1));
        assert!(
            matches!(publish("a").await, Err(ControlError::Unavailable(_))),
            "the grace period is over"
        );
        // Viewers keep playing from keys of any age.
        let play = client
            .authorize(Action::Play, "a", Some("s-a"), false)
            .await
            .unwrap();
        assert_eq!(play.source, Source::Grace);
        store.down.store(false, Ordering::Relaxed);
        assert_eq!(publish("a").await.unwrap().source, Source::Fresh);
    }

    /// Issue 9: made-up names (unauthenticated SRT handshakes, viewers of
    /// streams that do not exist) leave at most `max_cached_streams`
    /// entries behind; the oldest read is forgotten first.
    #[tokio::test]
    async fn made_up_names_cannot_grow_the_key_cache() {
        let options = ClientOptions {
            max_cached_streams: 8,
            ..ClientOptions::default()
        };
        let (client, _, clock) = on_manual_clock(options, &[key("k1", "a", "s-a")]).await;
        let play = async |stream: &str, secret: &str| {
            client
                .authorize(Action::Play, stream, Some(secret), false)
                .await
        };
        assert_eq!(play("a", "s-a").await.unwrap().source, Source::Fresh);
        for i in 0..1_000 {
            clock.advance(Duration::from_millis(1));
            let _ = client
                .authorize(
                    Action::Publish,
                    &format!("made-up-{i}"),
                    Some("guess"),
                    false,
                )
                .await;
        }
        assert_eq!(client.keys.load().len(), 8, "bounded");
        assert!(client.cached("a").is_none(), "the oldest read went first");
        assert!(client.cached("made-up-999").is_some());
        // The forgotten stream is simply read again.
        assert_eq!(play("a", "s-a").await.unwrap().source, Source::Fresh);
    }

    #[tokio::test]
    async fn a_cached_key_stops_opening_the_stream_when_it_expires() {
        let (client, store, clock) = on_manual_clock(ClientOptions::default(), &[]).await;
        let mut k = key("k1", "a", "s-a");
        k.expires_at = Some(clock.unix_millis() + 2_000);
        store.inner.create_key(&k).await.unwrap();
        let play = async || {
            client
                .authorize(Action::Play, "a", Some("s-a"), false)
                .await
        };
        assert_eq!(play().await.unwrap().source, Source::Fresh);
        clock.advance(Duration::from_secs(2));
        assert!(
            matches!(play().await, Err(ControlError::Forbidden { .. })),
            "expired, though still cached"
        );
    }
}
