//! Single flight: every request for a key that arrives while its origin
//! fetch is in flight shares that one fetch, whatever its outcome: a held
//! blocking reload, a token per viewer, an error status, a dead origin, a
//! timeout, or the first viewer going away.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use livestack_edge_cache::{CacheError, CachedResponse, OriginCache, Outcome, cache_key};
use support::FakeOrigin;
use tokio::net::TcpListener;

const BLOCKING: &str = "/live/a/video.m3u8?_HLS_msn=3&_HLS_part=1";

/// Runs `n` concurrent gets of `key(i)` and returns their results in order.
async fn concurrent(
    cache: &Arc<OriginCache>,
    n: usize,
    key: impl Fn(usize) -> String,
) -> Vec<Result<CachedResponse, CacheError>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let cache = cache.clone();
            let key = key(i);
            tokio::spawn(async move { cache.get(&key).await })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("get does not panic"));
    }
    out
}

/// As [`concurrent`], with `origin` holding its responses until all `n`
/// requests have joined a flight (counted by the cache as misses or
/// coalesced), so that none can arrive after its flight landed, however
/// slowly the machine starts them.
async fn concurrent_held(
    origin: &FakeOrigin,
    cache: &Arc<OriginCache>,
    n: usize,
    key: impl Fn(usize) -> String,
) -> Vec<Result<CachedResponse, CacheError>> {
    origin.set_held(true);
    let before = joined(cache);
    let requests = concurrent(cache, n, key);
    let release = async {
        wait_for_joined(cache, before + n as u64).await;
        origin.set_held(false);
    };
    let (results, ()) = tokio::join!(requests, release);
    results
}

/// Requests that started or joined an origin fetch so far.
fn joined(cache: &OriginCache) -> u64 {
    let stats = cache.stats();
    stats.misses + stats.coalesced
}

/// Polls the cache until `n` requests have started or joined a fetch.
async fn wait_for_joined(cache: &OriginCache, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while joined(cache) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} requests joined",
            joined(cache)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A loopback address nothing listens on (bound, then released).
async fn unused_addr() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

fn outcomes(results: &[Result<CachedResponse, CacheError>], want: Outcome) -> usize {
    results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.outcome == want))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_blocked_viewers_cost_one_origin_request() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let cache = origin.cache(|_| {});

    let results = concurrent_held(&origin, &cache, 500, |_| BLOCKING.to_owned()).await;
    assert_eq!(origin.count(BLOCKING), 1);
    let first = results[0].as_ref().expect("a response");
    assert_eq!(first.status, 200);
    assert!(first.body.starts_with(b"#EXTM3U"));
    for r in &results {
        let r = r.as_ref().expect("a response");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, first.body, "identical bodies");
        assert_eq!(
            r.headers.get("cache-control").unwrap(),
            "public, max-age=30"
        );
    }
    assert_eq!(outcomes(&results, Outcome::Miss), 1);
    assert_eq!(outcomes(&results, Outcome::Coalesced), 499);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.coalesced, stats.hits), (1, 499, 0));
    assert_eq!(stats.origin_requests, 1);

    // Stored for its max-age: the next viewer is a hit.
    let again = cache.get(BLOCKING).await.unwrap();
    assert_eq!(again.outcome, Outcome::Hit);
    assert_eq!(again.body, first.body);
    assert_eq!(origin.count(BLOCKING), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_per_viewer_does_not_fragment_the_flight() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let cache = origin.cache(|_| {});
    let results = concurrent_held(&origin, &cache, 500, |i| {
        // Each viewer its own token, and some send the directives in
        // another order.
        let query = if i % 2 == 0 {
            format!("_HLS_msn=3&_HLS_part=1&token=viewer-{i}")
        } else {
            // Another spelling of the same directives (leading zeros,
            // percent-encoding): the origin reads the same numbers.
            format!("token=viewer-{i}&_HLS_part=%31&_HLS_msn=03")
        };
        cache_key("/live/a/video.m3u8", Some(&query), &["token"]).expect("valid directives")
    })
    .await;
    assert_eq!(origin.count(BLOCKING), 1);
    assert_eq!(
        origin.seen(),
        [BLOCKING],
        "the token never reaches the origin"
    );
    let body = &results[0].as_ref().unwrap().body;
    assert!(results.iter().all(|r| r.as_ref().unwrap().body == *body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_parts_and_segments_are_coalesced() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let cache = origin.cache(|_| {});
    for key in ["/live/a/video/part4.0.m4s", "/live/a/video/segment3.m4s"] {
        let results = concurrent_held(&origin, &cache, 200, |_| key.to_owned()).await;
        assert_eq!(origin.count(key), 1, "{key}");
        assert!(results.iter().all(|r| r.as_ref().unwrap().status == 200));
        assert_eq!(outcomes(&results, Outcome::Coalesced), 199);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_are_shared_in_flight_but_not_stored() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let cache = origin.cache(|_| {});
    for (key, status) in [("/status/503", 503), ("/status/404", 404)] {
        let results = concurrent_held(&origin, &cache, 100, |_| key.to_owned()).await;
        assert_eq!(origin.count(key), 1, "{key}: one origin request in flight");
        for r in &results {
            let r = r.as_ref().expect("an error status is a response");
            assert_eq!(r.status, status);
        }
        // Not stored: the next request goes to the origin again.
        let r = cache.get(key).await.unwrap();
        assert_eq!((r.status.as_u16(), r.outcome), (status, Outcome::Miss));
        assert_eq!(origin.count(key), 2, "{key}");
    }
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(cache.stats().origin_errors, 0, "a status is not an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_origin_fails_every_waiter_then_recovers() {
    let addr = unused_addr().await;
    let cache = OriginCache::new(livestack_edge_cache::CacheConfig::new(
        format!("http://{addr}").parse().unwrap(),
    ));
    let results = concurrent(&cache, 100, |_| BLOCKING.to_owned()).await;
    for r in &results {
        assert!(
            matches!(r, Err(CacheError::Connect(_))),
            "connect error for every waiter, got {r:?}"
        );
    }
    let stats = cache.stats();
    assert!(stats.origin_errors >= 1);
    assert_eq!(stats.origin_errors, stats.origin_requests);
    // (A refused connection fails within microseconds, so how many of the
    // 100 overlap is up to the scheduler; the timeout test below proves
    // that a failure is shared with every waiter of its flight.)
    assert_eq!(stats.entries, 0, "nothing stored for a failure");

    // The origin comes back on the same address: the next request works.
    let origin = FakeOrigin::start_on(addr, Duration::ZERO).await;
    let r = cache.get(BLOCKING).await.expect("recovered");
    assert_eq!((r.status.as_u16(), r.outcome), (200, Outcome::Miss));
    assert_eq!(origin.count(BLOCKING), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_origin_times_out_every_waiter_once() {
    // An origin that does not answer until the test ends.
    let origin = FakeOrigin::start(Duration::ZERO).await;
    origin.set_held(true);
    let cache = origin.cache(|c| c.request_timeout = Duration::from_millis(300));
    let results = concurrent(&cache, 100, |_| BLOCKING.to_owned()).await;
    for r in &results {
        assert!(
            matches!(r, Err(CacheError::Timeout(t)) if *t == Duration::from_millis(300)),
            "timeout for every waiter, got {r:?}"
        );
    }
    assert_eq!(origin.count(BLOCKING), 1);
    assert_eq!(cache.stats().origin_errors, 1);
    // A failure is not stored: the next request asks again.
    let _ = cache.get(BLOCKING).await;
    assert_eq!(origin.count(BLOCKING), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_viewer_leaving_does_not_cancel_the_fetch() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    origin.set_held(true);
    let cache = origin.cache(|_| {});
    // The first viewer starts the fetch and gives up after 50 ms.
    let first = tokio::time::timeout(Duration::from_millis(50), cache.get(BLOCKING)).await;
    assert!(first.is_err(), "still held");
    let second = async {
        let r = cache.get(BLOCKING).await.unwrap();
        assert_eq!(r.outcome, Outcome::Coalesced);
    };
    let release = async {
        wait_for_joined(&cache, 2).await;
        origin.set_held(false);
    };
    tokio::join!(second, release);
    assert_eq!(origin.count(BLOCKING), 1);
}

#[tokio::test]
async fn a_key_that_is_not_a_path_is_rejected() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let cache = origin.cache(|_| {});
    for key in ["live/a/video.m3u8", "http://elsewhere/x", "/a b"] {
        assert!(
            matches!(cache.get(key).await, Err(CacheError::InvalidKey)),
            "{key}"
        );
    }
    assert!(origin.seen().is_empty());
}

/// The single-flight table is bounded per origin: with room for two
/// flights, a third distinct key is refused at once (the edge answers 503
/// with Retry-After), viewers joining a flight are not counted, and the
/// places come back when the flights land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flights_beyond_the_per_origin_cap_are_refused_not_held() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let cache = origin.cache(|c| c.max_in_flight_per_origin = 2);
    origin.set_held(true);
    let held: Vec<_> = (0..2)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(
                async move { cache.get(&format!("/live/a/video.m3u8?_HLS_msn={i}")).await },
            )
        })
        .collect();
    wait_for_joined(&cache, 2).await;
    // Joining a flight is fine.
    let joiner = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get("/live/a/video.m3u8?_HLS_msn=0").await })
    };
    wait_for_joined(&cache, 3).await;
    // A third flight is not.
    let refused = cache.get("/live/a/video.m3u8?_HLS_msn=9").await;
    assert!(matches!(refused, Err(CacheError::Busy)), "{refused:?}");
    assert_eq!(cache.stats().busy, 1);
    origin.set_held(false);
    for h in held {
        assert_eq!(h.await.expect("task").expect("response").status, 200);
    }
    assert_eq!(joiner.await.expect("task").expect("response").status, 200);
    let again = cache.get("/live/a/video.m3u8?_HLS_msn=9").await;
    assert_eq!(again.expect("a place again").status, 200);
}
