//! What is stored and for how long: immutable media until evicted, a
//! playlist for its max-age, one entry per set of delivery directives, and
//! an LRU bound on bytes.

mod support;

use std::time::Duration;

use livestack_clock::ManualClock;
use livestack_edge_cache::Outcome;
use support::FakeOrigin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_part_is_a_hit_the_second_time() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let clock = ManualClock::new();
    let cache = origin.cache(|c| c.clock = clock.shared());
    let key = "/live/a/video/part3.1.m4s";
    let first = cache.get(key).await.unwrap();
    assert_eq!(first.outcome, Outcome::Miss);
    let second = cache.get(key).await.unwrap();
    assert_eq!(second.outcome, Outcome::Hit);
    assert_eq!(second.body, first.body);
    assert_eq!(origin.count(key), 1, "no new origin request");
    assert_eq!(
        second.headers.get("cache-control").unwrap(),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        second.headers.get("content-type").unwrap(),
        "application/octet-stream"
    );
    assert_eq!(second.headers.get("age").unwrap(), "0");
    clock.advance(Duration::from_secs(42));
    let aged = cache.get(key).await.unwrap();
    assert_eq!(aged.outcome, Outcome::Hit, "immutable: still fresh");
    assert_eq!(aged.headers.get("age").unwrap(), "42");
    assert!(
        first.headers.get("age").is_none(),
        "a miss is the origin's own"
    );
    assert!(second.headers.get("content-length").is_none());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.origin_requests), (2, 1, 1));
    assert_eq!(stats.entries, 1);
    assert!(stats.bytes > first.body.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_playlist_is_refetched_after_its_max_age() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let clock = ManualClock::new();
    let cache = origin.cache(|c| c.clock = clock.shared());
    let key = "/live/a/video.m3u8";
    let first = cache.get(key).await.unwrap();
    for _ in 0..20 {
        let r = cache.get(key).await.unwrap();
        assert_eq!(r.outcome, Outcome::Hit);
        assert_eq!(r.body, first.body);
    }
    clock.advance(Duration::from_millis(999));
    assert_eq!(cache.get(key).await.unwrap().outcome, Outcome::Hit);
    assert_eq!(origin.count(key), 1, "one origin fetch per second");
    clock.advance(Duration::from_millis(1));
    let later = cache.get(key).await.unwrap();
    assert_eq!(later.outcome, Outcome::Miss);
    assert_ne!(later.body, first.body, "a new origin answer");
    assert_eq!(origin.count(key), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_directives_are_different_entries() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let cache = origin.cache(|_| {});
    let keys = [
        "/live/a/video.m3u8",
        "/live/a/video.m3u8?_HLS_msn=3",
        "/live/a/video.m3u8?_HLS_msn=3&_HLS_part=1",
        "/live/a/video.m3u8?_HLS_msn=3&_HLS_part=2",
        "/live/a/video.m3u8?_HLS_msn=4&_HLS_part=1",
        "/live/a/video.m3u8?_HLS_msn=3&_HLS_part=1&_HLS_skip=YES",
        "/live/a/audio.m3u8?_HLS_msn=3&_HLS_part=1",
    ];
    let mut bodies = Vec::new();
    for key in keys {
        let r = cache.get(key).await.unwrap();
        assert_eq!(r.outcome, Outcome::Miss, "{key}");
        bodies.push(r.body);
    }
    for (key, body) in keys.iter().zip(&bodies) {
        assert_eq!(origin.count(key), 1, "{key}");
        let r = cache.get(key).await.unwrap();
        assert_eq!(r.outcome, Outcome::Hit, "{key}");
        assert_eq!(r.body, *body, "{key}");
    }
    let mut distinct = bodies.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), keys.len());
    assert_eq!(cache.stats().entries, keys.len() as u64);
    assert_eq!(origin.seen().len(), keys.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_recently_used_bytes_are_evicted() {
    const MAX: usize = 16 * 1024;
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let cache = origin.cache(|c| c.max_bytes = MAX);
    // ~1.5 KiB bodies (under MAX / 8 with headers and bookkeeping): about
    // eight fit.
    let key = |i: usize| format!("/big/1500/{i}.m4s");
    for i in 0..8 {
        assert_eq!(cache.get(&key(i)).await.unwrap().outcome, Outcome::Miss);
    }
    assert_eq!(cache.stats().evictions, 0, "eight fit");
    // Touch 0: 1 becomes the least recently used.
    assert_eq!(cache.get(&key(0)).await.unwrap().outcome, Outcome::Hit);
    assert_eq!(cache.get(&key(8)).await.unwrap().outcome, Outcome::Miss);
    let stats = cache.stats();
    assert_eq!(stats.evictions, 1);
    assert!(stats.bytes <= MAX as u64, "{} bytes", stats.bytes);
    assert_eq!(cache.get(&key(0)).await.unwrap().outcome, Outcome::Hit);
    assert_eq!(
        cache.get(&key(1)).await.unwrap().outcome,
        Outcome::Miss,
        "evicted"
    );
    assert_eq!(origin.count(&key(1)), 2);

    // Many more: the bound holds throughout.
    for i in 100..200 {
        cache.get(&key(i)).await.unwrap();
        let stats = cache.stats();
        assert!(stats.bytes <= MAX as u64, "{} bytes", stats.bytes);
        assert!(stats.entries <= 8);
    }
    assert!(cache.stats().evictions >= 100);

    // Larger than MAX / 8: served, never stored.
    let big = "/big/4000/x.m4s";
    for _ in 0..2 {
        let r = cache.get(big).await.unwrap();
        assert_eq!((r.outcome, r.body.len()), (Outcome::Miss, 4000));
    }
    assert_eq!(origin.count(big), 2);

    // Larger than MAX: not even buffered.
    let huge = "/big/20000/x.m4s";
    assert!(matches!(
        cache.get(huge).await,
        Err(livestack_edge_cache::CacheError::TooLarge { limit: MAX })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entry_count_is_bounded_too() {
    let origin = FakeOrigin::start(Duration::ZERO).await;
    let cache = origin.cache(|c| c.max_entries = 3);
    for i in 0..10 {
        cache
            .get(&format!("/live/a/video/part{i}.0.m4s"))
            .await
            .unwrap();
    }
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.evictions), (3, 7));
}
