//! The edge reads the origin registry from a real Redis (`redis-server`,
//! `RedisControlPlane`). When Redis dies, the edge keeps routing with its
//! last snapshot, longer than any heartbeat could stay fresh: viewers keep
//! getting every frame from the node that holds the stream, the failed
//! refreshes are counted and the snapshot age grows. When Redis is back,
//! refreshes succeed again.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use livestack_control::{
    ControlPlane, RedisControlPlane, RedisOptions, RedisTarget, testing::RedisServer,
};
use livestack_edge_server::{DEFAULT_MAX_HEARTBEAT_AGE, Edge, ORIGIN_NODE_HEADER};
use livestack_test_harness::{
    VideoCodec, count_frames, encode_source,
    hls::{Fetched, HttpClient, follow},
    publish,
    registry::{PARIS, WASHINGTON, heartbeat, metric, node, place, play_token, spawn_heartbeats},
    start_edge_with, start_origin, workdir,
};

const REFRESH: Duration = Duration::from_millis(250);

fn served_by(r: &Fetched) -> Option<&str> {
    r.headers
        .get(ORIGIN_NODE_HEADER)
        .map(|v| v.to_str().expect("ascii node id"))
}

async fn connect(redis: &RedisServer) -> Arc<dyn ControlPlane> {
    let target = RedisTarget::parse(&redis.url()).expect("redis url");
    RedisControlPlane::connect(target, RedisOptions::default())
        .await
        .expect("redis control plane")
}

async fn metrics(client: &HttpClient, edge: &Edge) -> String {
    let r = client
        .get(&format!("http://{}/metrics", edge.http_addr))
        .await;
    String::from_utf8(r.body.to_vec()).expect("utf-8 metrics")
}

fn failed_refreshes(text: &str) -> f64 {
    metric(
        text,
        "livestack_edge_registry_refresh_total{result=\"error\"}",
    ) + metric(
        text,
        "livestack_edge_registry_refresh_total{result=\"timeout\"}",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_keeps_serving_from_its_snapshot_while_redis_is_down() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 8);
    let published = count_frames(&source, "v");
    let mut redis = tokio::task::block_in_place(RedisServer::start);
    // The nodes' client and the edge's own.
    let nodes_side = connect(&redis).await;
    let edge_side = connect(&redis).await;
    let a = start_origin(|_| {}).await;
    let b = start_origin(|_| {}).await;
    let nodes = vec![
        node("origin-a", "eu-west", PARIS, a.http_addr),
        node("origin-b", "us-east", WASHINGTON, b.http_addr),
    ];
    heartbeat(&*nodes_side, &nodes).await;
    let beats = spawn_heartbeats(nodes_side.clone(), nodes);
    let edge = start_edge_with(a.http_addr, |c| {
        c.control = Some(edge_side);
        c.registry_refresh = REFRESH;
    })
    .await;

    let mut ffmpeg = publish(b.srt_addr, "#!::r=live/cam,m=publish", &source);
    place(&*nodes_side, "cam", "origin-b").await;
    let viewer = HttpClient::new().with_header("x-client-location", "48.85,2.35");
    let tok = play_token("cam");
    let base = format!("http://{}/live/cam", edge.http_addr);
    let video = format!("{base}/video.m3u8?token={tok}");
    let mut ready = false;
    for _ in 0..150 {
        let r = viewer.get(&video).await;
        if r.status == 200 {
            assert_eq!(served_by(&r), Some("origin-b"));
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the stream never became available through the edge");

    // Redis dies.
    tokio::task::block_in_place(|| redis.kill());
    let down = Instant::now();
    let client = HttpClient::new();
    let mut seen = false;
    while down.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(REFRESH).await;
        if failed_refreshes(&metrics(&client, &edge).await) >= 2.0 {
            seen = true;
            break;
        }
    }
    assert!(seen, "failed refreshes are counted");

    // Established and new viewers keep being served from the snapshot.
    let followed = follow(&viewer, &video, Duration::from_secs(60)).await;
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    let file = dir.path().join("during-outage.mp4");
    let mut bytes = followed.inits.values().next().expect("init").to_vec();
    for (_, seg) in followed.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).unwrap();
    assert_eq!(count_frames(&file, "v"), published, "every frame");

    // Longer than any heartbeat stays fresh: the snapshot still routes.
    let beyond = DEFAULT_MAX_HEARTBEAT_AGE + Duration::from_secs(2);
    if let Some(rest) = beyond.checked_sub(down.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let r = client
        .with_header("x-client-country", "DE")
        .get(&video)
        .await;
    assert_eq!((r.status, served_by(&r)), (200, Some("origin-b")));
    let text = metrics(&client, &edge).await;
    let age = metric(&text, "livestack_edge_registry_snapshot_age_seconds");
    assert!(
        age >= DEFAULT_MAX_HEARTBEAT_AGE.as_secs_f64(),
        "age {age}: {text}"
    );
    assert_eq!(metric(&text, "livestack_edge_registry_nodes"), 2.0);

    // Redis is back (with its data): refreshes succeed again.
    let ok = |t: &str| metric(t, "livestack_edge_registry_refresh_total{result=\"ok\"}");
    let before = ok(&text);
    tokio::task::block_in_place(|| redis.restart());
    let back = Instant::now();
    loop {
        let text = metrics(&client, &edge).await;
        if ok(&text) > before {
            assert!(metric(&text, "livestack_edge_registry_snapshot_age_seconds") < 5.0);
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "no successful refresh after Redis came back: {text}"
        );
        tokio::time::sleep(REFRESH).await;
    }
    beats.abort();
}
