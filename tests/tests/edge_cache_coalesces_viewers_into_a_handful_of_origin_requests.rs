//! Through the cache to the real origin: ffmpeg publishes over SRT, then
//! 500 viewers (each with its own token) block on the next part, and 500
//! ask for the preload-hinted part before it exists. The origin's own
//! metrics show it answered a handful of requests, not a thousand.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use livestack_edge_cache::{CacheConfig, CachedResponse, OriginCache, cache_key};
use livestack_test_harness::{
    VideoCodec, encode_source,
    hls::{HttpClient, MediaPlaylist},
    publish, start_origin, workdir,
};

/// Sum of `livestack_origin_http_responses_total` for `route`, any status.
async fn responses(client: &HttpClient, metrics: &str, route: &str) -> u64 {
    let r = client.get(metrics).await;
    assert_eq!(r.status, 200);
    let label = format!("route=\"{route}\"");
    std::str::from_utf8(&r.body)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("livestack_origin_http_responses_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// 500 concurrent gets, each with its own viewer token stripped by
/// `cache_key`; all must succeed with one identical body.
async fn five_hundred(cache: &Arc<OriginCache>, path: &str, directives: &str) -> CachedResponse {
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let cache = cache.clone();
            let query = format!("{directives}&token=viewer-{i}");
            let key = cache_key(path, Some(&query), &["token"]).expect("valid directives");
            tokio::spawn(async move { cache.get(&key).await })
        })
        .collect();
    let mut first: Option<CachedResponse> = None;
    for t in tasks {
        let r = t.await.unwrap().expect("a response");
        assert_eq!(r.status, 200, "{path}?{directives}");
        match &first {
            Some(f) => assert_eq!(r.body, f.body, "identical bodies"),
            None => first = Some(r),
        }
    }
    first.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_viewers_on_the_next_part_cost_the_origin_a_handful() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 12);
    let origin = start_origin(|_| {}).await;
    let mut ffmpeg = publish(origin.srt_addr, "live/cached", &source);
    let cache = OriginCache::new(CacheConfig::new(
        format!("http://{}", origin.http_addr).parse().unwrap(),
    ));
    let client = HttpClient::new();
    let metrics = format!("http://{}/metrics", origin.http_addr);

    // The live playlist through the cache, once the origin has a segment.
    let deadline = Instant::now() + Duration::from_secs(20);
    let playlist = loop {
        let r = cache
            .get("/live/cached/video.m3u8")
            .await
            .expect("origin up");
        if r.status == 200 {
            break MediaPlaylist::parse(std::str::from_utf8(&r.body).unwrap());
        }
        assert!(Instant::now() < deadline, "no playlist: {}", r.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (msn, part) = playlist.last_part().expect("a part");

    // Blocking reload for the next part.
    let before = responses(&client, &metrics, "playlist").await;
    let next = five_hundred(
        &cache,
        "/live/cached/video.m3u8",
        &format!("_HLS_part={}&_HLS_msn={msn}", part + 1),
    )
    .await;
    let grown = responses(&client, &metrics, "playlist").await - before;
    assert!(
        grown <= 2,
        "500 blocked viewers cost {grown} origin playlist responses"
    );
    let next = MediaPlaylist::parse(std::str::from_utf8(&next.body).unwrap());
    assert!(
        next.last_part().expect("a part") > (msn, part),
        "a newer part"
    );
    let stats = cache.stats();
    eprintln!("blocking reload: {grown} origin playlist responses for 500 viewers; {stats:?}");
    assert!(stats.coalesced + stats.hits >= 498, "{stats:?}");

    // The preload-hinted part, requested before it exists: the origin
    // holds one request for all of them.
    let hint = next.preload_hint.clone().expect("a preload hint");
    let before = responses(&client, &metrics, "part").await;
    let part = five_hundred(&cache, &format!("/live/cached/{hint}"), "").await;
    assert!(!part.body.is_empty());
    let grown = responses(&client, &metrics, "part").await - before;
    eprintln!("preload hint {hint}: {grown} origin part responses for 500 viewers");
    assert!(
        grown <= 2,
        "500 viewers of the hinted part cost {grown} origin responses"
    );
    assert_eq!(
        part.headers.get("cache-control").unwrap(),
        "public, max-age=31536000, immutable"
    );

    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}
