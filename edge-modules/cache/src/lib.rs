//! An LL-HLS-aware HTTP cache in front of the origin, used by the edge host
//! for every viewer request (DESIGN.md, data flow step 4).
//!
//! What makes it LL-HLS-aware:
//!
//! - **Keys carry the delivery directives.** A blocking playlist reload
//!   (RFC 8216bis §6.2.5.2, `_HLS_msn`/`_HLS_part`) or delta update
//!   (§6.2.5.3, `_HLS_skip`) is its own entry; the viewer's token is not in
//!   the key ([`cache_key`]).
//! - **Single flight.** All requests for one key that arrive while its
//!   origin fetch is in flight wait for that one fetch: the thousand viewers
//!   blocked on the next part cost the origin one held request, and so do
//!   the requests for a preload-hinted part (§4.4.5.3) that the origin holds
//!   until the part exists. This holds whether or not the response may be
//!   stored: `no-store` answers and errors are shared with every request
//!   that was already waiting, just not kept for later ones.
//! - **Freshness from the origin's `Cache-Control`.** Parts, segments and
//!   init segments are `immutable` with a one-year `max-age`: kept until
//!   evicted. A playlist without directives (`max-age=1`) is shared for one
//!   second; a blocking response (`max-age=30`) for thirty. Errors are not
//!   stored (see [`OriginCache::get`]).
//! - **A memory bound.** At most [`CacheConfig::max_bytes`] of responses
//!   (bodies, headers, keys and a fixed per-entry overhead) and
//!   [`CacheConfig::max_entries`] entries, least recently used evicted
//!   first; a response larger than an eighth of the budget is served but
//!   not stored, so one large object cannot flush the hot small ones.
//!
//! The structure follows the crate's habit of a pure core and a thin
//! driver: `key` (keys), `freshness` (RFC 9111 lifetimes) and `store` (the
//! LRU, which takes `now` from its caller) have no I/O; this module and
//! `origin` (the hyper client) are the tokio driver. The driver reads `now`
//! from [`CacheConfig::clock`], so tests age entries by advancing a manual
//! clock rather than by sleeping.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use livestack_edge_cache::{CacheConfig, OriginCache, cache_key};
//!
//! let cache = OriginCache::new(CacheConfig::new("http://127.0.0.1:8080".parse().unwrap()));
//! // The edge has verified `token` before asking the cache.
//! let key = cache_key("/live/a/video.m3u8", Some("_HLS_msn=5&_HLS_part=2&token=t"), &["token"])?;
//! let response = cache.get(&key).await?;
//! println!("{} {:?} {} bytes", response.status, response.outcome, response.body.len());
//! # Ok(()) }
//! ```

mod error;
mod freshness;
mod key;
mod origin;
mod store;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use tokio::sync::watch;
use tracing::{debug, trace, warn};

pub use error::{CacheError, Source};
pub use key::cache_key;

use livestack_clock::{SharedClock, SystemClock};
use store::{Entry, Inserted, Store};

/// Configuration of an [`OriginCache`].
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Base URI of the origin, e.g. `http://127.0.0.1:8080`; keys are
    /// appended to its path. Plain `http` only: the origin is reached inside
    /// the private network (an `https` base fails every request with
    /// [`CacheError::Connect`]).
    pub origin: Uri,
    /// Memory bound for stored responses, in bytes (bodies, headers, keys
    /// and 256 bytes of bookkeeping per entry). Least recently used entries
    /// are evicted to stay under it; a response charged more than
    /// `max_bytes / 8` is served but not stored. It also caps one origin
    /// body: a larger one is [`CacheError::TooLarge`]. Worst-case memory is
    /// this plus the responses in flight. Default 256 MiB.
    pub max_bytes: usize,
    /// Bound on the number of stored entries, LRU-evicted like bytes.
    /// Default 65 536.
    pub max_entries: usize,
    /// Time for one origin exchange, connection to last body byte. Must be
    /// longer than the origin's blocking-reload timeout (three target
    /// durations, RFC 8216bis §6.2.5.2: 12 s for the default 4 s target)
    /// and its first-part wait (8 s), or held requests fail here before
    /// the origin answers them. Default 15 s.
    pub request_timeout: Duration,
    /// The clock freshness and `Age` are judged by. Default the system
    /// clock; tests pass a [`ManualClock`](livestack_clock::ManualClock)
    /// and advance it instead of waiting for an entry to go stale.
    pub clock: SharedClock,
    /// Time to establish a TCP connection to the origin; a black-holed
    /// origin fails fast with [`CacheError::Connect`] instead of holding
    /// viewers for the whole request timeout. Default 2 s.
    pub connect_timeout: Duration,
    /// Headers sent to the origin with every request, such as the edge
    /// credential that opens a closed origin (the edge server sets it;
    /// mark secret values sensitive). Default none.
    pub origin_headers: http::HeaderMap,
    /// Distinct keys fetched from origins at once (the single-flight
    /// table; each is one origin request on one connection): a miss beyond
    /// it is [`CacheError::Busy`]. Requests that join a flight are not
    /// counted. Default 8,192.
    pub max_in_flight: usize,
    /// As [`max_in_flight`](Self::max_in_flight), per origin (scheme and
    /// authority of the upstream): bounds the connections and held
    /// requests this edge opens to one origin node. Keep it below the
    /// origins' `max_held_requests_per_address` (2,048 by default): an
    /// edge's requests all come from one address. Default 1,024.
    pub max_in_flight_per_origin: usize,
}

impl CacheConfig {
    /// The defaults (documented per field) for the origin at `origin`.
    pub fn new(origin: Uri) -> Self {
        Self {
            origin,
            max_bytes: 256 * 1024 * 1024,
            max_entries: 65_536,
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(2),
            origin_headers: http::HeaderMap::new(),
            max_in_flight: 8_192,
            max_in_flight_per_origin: 1_024,
            clock: SystemClock::shared(),
        }
    }
}

/// How a [`CachedResponse`] was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Served from a fresh stored entry; no origin request.
    Hit,
    /// This request started the origin fetch.
    Miss,
    /// This request joined an origin fetch another request had started.
    Coalesced,
}

/// A response for a viewer: the origin's, or a stored copy of it.
#[derive(Debug, Clone)]
pub struct CachedResponse {
    /// The origin's status; 4xx and 5xx included (they are responses, not
    /// [`CacheError`]s).
    pub status: StatusCode,
    /// The origin's headers (`content-type`, `cache-control`, ...), minus
    /// the hop-by-hop ones and `content-length` (the body is complete;
    /// whoever serves it sets the length). A [`Outcome::Hit`] adds `age`,
    /// the whole seconds since the origin answered (RFC 9111 §5.1), so a
    /// downstream cache or player does not extend the freshness lifetime.
    pub headers: HeaderMap,
    /// The complete body.
    pub body: Bytes,
    /// Whether it came from the store, a new fetch or a shared one.
    pub outcome: Outcome,
}

/// Counters since the cache was created (and two gauges, `bytes` and
/// `entries`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Requests served from the store.
    pub hits: u64,
    /// Requests that started an origin fetch.
    pub misses: u64,
    /// Requests that waited for a fetch another request started.
    pub coalesced: u64,
    /// Requests sent to the origin.
    pub origin_requests: u64,
    /// Origin requests that produced no response ([`CacheError`]); an error
    /// *status* is a response and not counted here.
    pub origin_errors: u64,
    /// Entries evicted to stay within the byte or entry bound (expired
    /// entries dropped on the way are not counted).
    pub evictions: u64,
    /// Misses refused with [`CacheError::Busy`] (in-flight caps).
    pub busy: u64,
    /// Bytes currently charged for stored entries (a gauge).
    pub bytes: u64,
    /// Entries currently stored (a gauge).
    pub entries: u64,
}

/// The outcome of one origin fetch, shared by every request waiting on it.
type Shared = Arc<Result<CachedResponse, CacheError>>;

/// What is stored and what is in flight, under one lock so a key is always
/// in at most one of them and never in neither while a fetch completes.
struct State {
    store: Store,
    /// One receiver per key being fetched; waiters clone it.
    in_flight: HashMap<String, watch::Receiver<Option<Shared>>>,
    /// Flights per origin (scheme and authority).
    per_origin: HashMap<String, usize>,
}

impl State {
    /// Ends the flight of `key` to `origin`: the key leaves the table and
    /// the origin's count.
    fn land(&mut self, key: &str, origin: &str) {
        if self.in_flight.remove(key).is_some()
            && let Some(n) = self.per_origin.get_mut(origin)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_origin.remove(origin);
            }
        }
    }
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    origin_requests: AtomicU64,
    origin_errors: AtomicU64,
    evictions: AtomicU64,
    busy: AtomicU64,
}

struct Inner {
    origin: origin::Origin,
    max_in_flight: usize,
    max_in_flight_per_origin: usize,
    clock: SharedClock,
    state: Mutex<State>,
    counters: Counters,
}

impl Inner {
    /// The state; a panic elsewhere while holding the lock cannot leave the
    /// store inconsistent in a way that matters more than refusing service.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The LL-HLS-aware cache in front of one origin (or, with
/// [`get_from`](OriginCache::get_from), of one upstream per request).
/// Cheap to share: every method takes `&self`; [`OriginCache::new`] hands
/// out an `Arc`.
pub struct OriginCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OriginCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl OriginCache {
    /// A cache in front of `config.origin`. No connection is made until the
    /// first [`get`](Self::get).
    pub fn new(config: CacheConfig) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::new(Inner {
                origin: origin::Origin::new(&config),
                max_in_flight: config.max_in_flight,
                max_in_flight_per_origin: config.max_in_flight_per_origin,
                clock: config.clock.clone(),
                state: Mutex::new(State {
                    store: Store::new(config.max_bytes, config.max_entries),
                    in_flight: HashMap::new(),
                    per_origin: HashMap::new(),
                }),
                counters: Counters::default(),
            }),
        })
    }

    /// The response for `key_path_and_query`, an origin-relative path and
    /// query such as `/live/a/video.m3u8?_HLS_msn=5&_HLS_part=2`, built with
    /// [`cache_key`] (the caller has already verified the viewer's token and
    /// must not pass it here: it would fragment the cache).
    ///
    /// A fresh stored entry is a [`Outcome::Hit`]. Otherwise, if a fetch
    /// for the key is in flight, this waits for it ([`Outcome::Coalesced`]);
    /// if not, it starts one ([`Outcome::Miss`]). The fetch runs in its own
    /// task, so a viewer that disconnects (dropping this future) does not
    /// cancel it for the others.
    ///
    /// A `200 OK` is stored for its `Cache-Control` lifetime (`s-maxage`,
    /// else `max-age`, minus `Age`); `no-store`, `no-cache`, `private` and
    /// every other status are not stored, 404 included: the origin marks
    /// errors `no-store`, and a cached 404 would hide a stream that starts a
    /// moment later. Error statuses are still shared with the requests
    /// already waiting.
    ///
    /// # Errors
    ///
    /// [`CacheError::InvalidKey`] if the key is not an origin-relative path;
    /// otherwise the fetch's error (timeout, connect, transport, too large),
    /// the same for every request that waited on it. Nothing is stored for a
    /// failed fetch: the next request tries the origin again.
    pub async fn get(&self, key_path_and_query: &str) -> Result<CachedResponse, CacheError> {
        let key = key_path_and_query;
        let uri = origin::join(self.inner.origin.base(), key)?;
        self.fetch(key, uri).await
    }

    /// As [`get`](Self::get), but from `upstream` (a base URI like
    /// [`CacheConfig::origin`], e.g. the HTTP base URL of the origin node
    /// that holds the stream) instead of the configured origin.
    ///
    /// The upstream is part of the cache key: responses from one node are
    /// stored, coalesced and served apart from another node's, so when a
    /// stream moves (a failover, a re-placement) the edge never serves the
    /// previous node's playlists or parts for the new node's. Entries are
    /// keyed by the absolute upstream URI (scheme, authority, path prefix,
    /// then the key), except for the configured origin, whose entries are
    /// the ones [`get`](Self::get) uses. Everything else (single flight,
    /// freshness, the memory bound, errors) is as for [`get`](Self::get);
    /// the same connection pool serves every upstream.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); [`CacheError::InvalidKey`] also when
    /// `upstream` and the key do not form a valid URI.
    pub async fn get_from(
        &self,
        upstream: &Uri,
        key_path_and_query: &str,
    ) -> Result<CachedResponse, CacheError> {
        let key = key_path_and_query;
        let uri = origin::join(upstream, key)?;
        if upstream == self.inner.origin.base() {
            return self.fetch(key, uri).await;
        }
        let stored_as = uri.to_string();
        self.fetch(&stored_as, uri).await
    }

    /// Single flight for `key` (the store key), fetching `uri` on a miss.
    async fn fetch(&self, key: &str, uri: Uri) -> Result<CachedResponse, CacheError> {
        let (mut rx, outcome) = {
            let now = self.inner.clock.now();
            let mut state = self.inner.state();
            if let Some(entry) = state.store.get(key, now) {
                self.inner.counters.hits.fetch_add(1, Relaxed);
                trace!(path = path_of(key), "cache hit");
                return Ok(hit(entry, now));
            }
            if let Some(rx) = state.in_flight.get(key) {
                self.inner.counters.coalesced.fetch_add(1, Relaxed);
                (rx.clone(), Outcome::Coalesced)
            } else {
                let origin = origin_of(&uri);
                let to_origin = state.per_origin.get(&origin).copied().unwrap_or(0);
                if state.in_flight.len() >= self.inner.max_in_flight
                    || to_origin >= self.inner.max_in_flight_per_origin
                {
                    self.inner.counters.busy.fetch_add(1, Relaxed);
                    debug!(
                        path = path_of(key),
                        origin, "refused: too many fetches in flight"
                    );
                    return Err(CacheError::Busy);
                }
                self.inner.counters.misses.fetch_add(1, Relaxed);
                let (tx, rx) = watch::channel(None);
                state.in_flight.insert(key.to_owned(), rx.clone());
                *state.per_origin.entry(origin.clone()).or_insert(0) += 1;
                let flight = Flight {
                    inner: self.inner.clone(),
                    key: key.to_owned(),
                    origin,
                    landed: false,
                };
                tokio::spawn(flight.run(uri, tx));
                (rx, Outcome::Miss)
            }
        };
        // The sender publishes exactly once, then drops; a closed channel
        // without a value means the fetch task was torn down.
        let shared = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|v| v.clone())
            .ok_or(CacheError::Abandoned)?;
        match &*shared {
            Ok(response) => Ok(CachedResponse {
                outcome,
                ..response.clone()
            }),
            Err(e) => Err(e.clone()),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        let (bytes, entries) = {
            let state = self.inner.state();
            (state.store.bytes(), state.store.len())
        };
        let c = &self.inner.counters;
        CacheStats {
            hits: c.hits.load(Relaxed),
            misses: c.misses.load(Relaxed),
            coalesced: c.coalesced.load(Relaxed),
            origin_requests: c.origin_requests.load(Relaxed),
            origin_errors: c.origin_errors.load(Relaxed),
            evictions: c.evictions.load(Relaxed),
            busy: c.busy.load(Relaxed),
            bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
            entries: u64::try_from(entries).unwrap_or(u64::MAX),
        }
    }
}

/// A stored entry as a response, with its `Age`.
fn hit(entry: &Entry, now: Instant) -> CachedResponse {
    let mut headers = entry.headers.clone();
    let age = now.saturating_duration_since(entry.stored_at).as_secs();
    headers.insert(header::AGE, HeaderValue::from(age));
    CachedResponse {
        status: entry.status,
        headers,
        body: entry.body.clone(),
        outcome: Outcome::Hit,
    }
}

/// Scheme and authority of an origin URI: what the per-origin flight count
/// is kept by.
fn origin_of(uri: &Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    )
}

/// The path of a key without its query, for logs: a caller that forgot to
/// strip the token must not get it logged.
fn path_of(key: &str) -> &str {
    key.split_once('?').map_or(key, |(p, _)| p)
}

/// One origin fetch for one key. Removes its in-flight entry when it lands,
/// or when dropped before (runtime shutdown), so a key never stays stuck.
struct Flight {
    inner: Arc<Inner>,
    key: String,
    origin: String,
    landed: bool,
}

impl Flight {
    async fn run(mut self, uri: Uri, tx: watch::Sender<Option<Shared>>) {
        let inner = self.inner.clone();
        inner.counters.origin_requests.fetch_add(1, Relaxed);
        let started = Instant::now();
        let result = inner.origin.get(uri).await;
        let now = inner.clock.now();
        let path = path_of(&self.key);
        let result = match result {
            Ok(fetched) => {
                debug!(
                    path,
                    status = fetched.status.as_u16(),
                    bytes = fetched.body.len(),
                    elapsed = ?started.elapsed(),
                    waiters = tx.receiver_count().saturating_sub(1),
                    "origin fetch"
                );
                let lifetime = freshness::freshness(fetched.status, &fetched.headers);
                let response = CachedResponse {
                    status: fetched.status,
                    headers: fetched.headers,
                    body: fetched.body,
                    outcome: Outcome::Miss,
                };
                let mut state = inner.state();
                if let Some(ttl) = lifetime {
                    let entry = Entry {
                        status: response.status,
                        headers: response.headers.clone(),
                        body: response.body.clone(),
                        stored_at: now,
                        expires: store::expiry(now, ttl),
                    };
                    match state.store.insert(&self.key, entry, now) {
                        Inserted::Stored { evicted } => {
                            inner.counters.evictions.fetch_add(evicted, Relaxed);
                        }
                        Inserted::TooLarge => {
                            debug!(path, bytes = response.body.len(), "too large to store");
                        }
                    }
                }
                state.land(&self.key, &self.origin);
                self.landed = true;
                Ok(response)
            }
            Err(e) => {
                inner.counters.origin_errors.fetch_add(1, Relaxed);
                warn!(path, error = %e, source = ?std::error::Error::source(&e), "origin fetch failed");
                inner.state().land(&self.key, &self.origin);
                self.landed = true;
                Err(e)
            }
        };
        tx.send_replace(Some(Arc::new(result)));
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if !self.landed {
            self.inner.state().land(&self.key, &self.origin);
        }
    }
}
