//! One cache, several upstreams (`get_from`): each upstream's responses are
//! stored and coalesced apart, so a stream that moves to another node is
//! never served from the previous node's entries; the configured origin
//! shares its entries with `get`.

mod support;

use std::time::Duration;

use livestack_edge_cache::{CacheError, Outcome};
use support::FakeOrigin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_upstream_has_its_own_entries() {
    let a = FakeOrigin::start(Duration::ZERO).await;
    let b = FakeOrigin::start(Duration::ZERO).await;
    let cache = a.cache(|_| {});
    let base_a: http::Uri = format!("http://{}", a.addr).parse().unwrap();
    let base_b: http::Uri = format!("http://{}", b.addr).parse().unwrap();
    let key = "/live/a/video/part3.1.m4s";

    let from_b = cache.get_from(&base_b, key).await.unwrap();
    assert_eq!(from_b.outcome, Outcome::Miss);
    assert_eq!(
        cache.get_from(&base_b, key).await.unwrap().outcome,
        Outcome::Hit
    );
    assert_eq!((a.count(key), b.count(key)), (0, 1));

    // The same key from another upstream is another entry.
    let from_a = cache.get_from(&base_a, key).await.unwrap();
    assert_eq!(from_a.outcome, Outcome::Miss);
    assert_eq!((a.count(key), b.count(key)), (1, 1));

    // The configured origin's entries are those `get` uses.
    assert_eq!(cache.get(key).await.unwrap().outcome, Outcome::Hit);
    assert_eq!(cache.get(key).await.unwrap().body, from_a.body);
    assert_eq!(cache.stats().entries, 2);
    assert_eq!(b.seen(), [key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_one_upstream_are_coalesced() {
    let a = FakeOrigin::start(Duration::ZERO).await;
    let b = FakeOrigin::start(Duration::ZERO).await;
    b.set_held(true);
    let cache = a.cache(|_| {});
    let base_b: http::Uri = format!("http://{}", b.addr).parse().unwrap();
    let key = "/live/a/video.m3u8?_HLS_msn=5&_HLS_part=1";
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            let base = base_b.clone();
            tokio::spawn(async move { cache.get_from(&base, key).await.unwrap() })
        })
        .collect();
    // Release the held answer once all fifty have joined the flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cache.stats().misses + cache.stats().coalesced < 50 {
        assert!(std::time::Instant::now() < deadline, "{:?}", cache.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.set_held(false);
    let mut bodies = Vec::new();
    for t in tasks {
        bodies.push(t.await.unwrap().body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(b.count(key), 1, "one held request for fifty waiters");
    assert_eq!(a.count(key), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_a_connect_error() {
    let a = FakeOrigin::start(Duration::ZERO).await;
    let cache = a.cache(|_| {});
    // A port nothing listens on: bind one, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let dead: http::Uri = format!("http://{addr}").parse().unwrap();
    let err = cache
        .get_from(&dead, "/live/a/index.m3u8")
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::Connect(_)), "{err:?}");
    assert!(matches!(
        cache.get_from(&dead, "live/a").await,
        Err(CacheError::InvalidKey)
    ));
}
