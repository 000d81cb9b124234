//! Two origins in one control plane, one edge in front of both: ffmpeg
//! publishes over SRT to origin B (which the registry places the stream
//! on) and to origin A (unplaced). A viewer whose location is nearer A is
//! proxied to B, the node that holds the stream, and every frame plays
//! through the edge. When the placement moves to A, the edge follows
//! within two registry refresh intervals and serves A's playlists, never
//! B's cached ones, and every frame plays again.

use std::time::{Duration, Instant};

use livestack_control::MemoryControlPlane;
use livestack_edge_server::ORIGIN_NODE_HEADER;
use livestack_test_harness::{
    VideoCodec, count_frames, encode_source,
    hls::{Fetched, Followed, HttpClient, follow},
    publish,
    registry::{
        PARIS, WASHINGTON, heartbeat, metric, move_placement, node, place, play_token,
        spawn_heartbeats,
    },
    start_edge_with, start_origin, workdir,
};

const REFRESH: Duration = Duration::from_millis(250);

fn served_by(r: &Fetched) -> Option<&str> {
    r.headers
        .get(ORIGIN_NODE_HEADER)
        .map(|v| v.to_str().expect("ascii node id"))
}

/// The video frames of a followed rendition (init + every segment), as
/// ffprobe decodes them.
fn frames(dir: &std::path::Path, name: &str, f: &Followed) -> u64 {
    let file = dir.join(name);
    let mut bytes = f.inits.values().next().expect("an init segment").to_vec();
    for (_, seg) in f.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).expect("write");
    count_frames(&file, "v")
}

/// The `EXT-X-PROGRAM-DATE-TIME` lines: they tell one origin's playlist
/// from another's for the same source (each stamps its own ingest time).
fn dates(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PROGRAM-DATE-TIME"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_follow_the_stream_to_the_node_that_holds_it() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 8);
    let published = count_frames(&source, "v");
    let a = start_origin(|_| {}).await;
    let b = start_origin(|_| {}).await;
    let control = MemoryControlPlane::new();
    let nodes = vec![
        node("origin-a", "eu-west", PARIS, a.http_addr),
        node("origin-b", "us-east", WASHINGTON, b.http_addr),
    ];
    heartbeat(&*control, &nodes).await;
    let beats = spawn_heartbeats(control.clone(), nodes);
    // The edge's configured origin is A: only routing sends viewers to B.
    let edge = start_edge_with(a.http_addr, |c| {
        c.control = Some(control.clone());
        c.registry_refresh = REFRESH;
    })
    .await;

    // The placement is in the edge's snapshot before either origin has the
    // stream (origin-a, nearer the viewer, gets it too).
    place(&*control, "cam", "origin-b").await;
    let metrics = format!("http://{}/metrics", edge.http_addr);
    let placed = Instant::now();
    while metric(
        std::str::from_utf8(&HttpClient::new().get(&metrics).await.body).expect("utf-8"),
        "livestack_edge_registry_placements",
    ) < 1.0
    {
        assert!(placed.elapsed() < Duration::from_secs(5), "no snapshot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut on_b = publish(b.srt_addr, "#!::r=live/cam,m=publish", &source);
    let mut on_a = publish(a.srt_addr, "#!::r=live/cam,m=publish", &source);

    // A viewer in Paris, next to origin-a's region.
    let viewer = HttpClient::new().with_header("x-client-location", "48.85,2.35");
    let tok = play_token("cam");
    let base = format!("http://{}/live/cam", edge.http_addr);
    let index = format!("{base}/index.m3u8?token={tok}");
    let mut ready = None;
    for _ in 0..150 {
        let r = viewer.get(&index).await;
        if r.status == 200 {
            ready = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = ready.expect("the stream never became available through the edge");
    assert_eq!(served_by(&r), Some("origin-b"), "placement beats distance");

    let video = format!("{base}/video.m3u8?token={tok}");
    let limit = Duration::from_secs(60);
    let from_b = follow(&viewer, &video, limit).await;
    assert!(on_b.wait().expect("ffmpeg").success());
    assert_eq!(
        frames(dir.path(), "via-edge-from-b.mp4", &from_b),
        published,
        "every frame from origin-b through the edge"
    );
    let r = viewer.get(&video).await;
    assert_eq!(served_by(&r), Some("origin-b"));
    let segment = from_b.playlists.last().expect("a playlist").segments[0]
        .uri
        .clone()
        .expect("a segment");
    let r = viewer.get(&format!("{base}/{segment}")).await;
    assert_eq!((r.status, served_by(&r)), (200, Some("origin-b")));

    // The stream moves to origin-a (its publisher there has the whole
    // source too; its ended playlists linger).
    assert!(on_a.wait().expect("ffmpeg").success());
    let direct = HttpClient::new();
    let text = |r: Fetched| String::from_utf8(r.body.to_vec()).expect("utf-8");
    let a_playlist = text(
        direct
            .get(&format!("http://{}/live/cam/video.m3u8", a.http_addr))
            .await,
    );
    let b_playlist = text(
        direct
            .get(&format!("http://{}/live/cam/video.m3u8", b.http_addr))
            .await,
    );
    move_placement(&*control, "cam", "origin-b", "origin-a").await;
    let moved = Instant::now();
    let after = loop {
        let r = viewer.get(&video).await;
        if served_by(&r) == Some("origin-a") {
            break r;
        }
        assert!(
            moved.elapsed() < Duration::from_secs(10),
            "the edge never followed the placement"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = moved.elapsed();
    println!("the edge followed the placement in {took:?} (refresh {REFRESH:?})");
    assert!(
        took <= 2 * REFRESH,
        "took {took:?}, more than two refresh intervals"
    );
    // A's playlist, not B's cached one.
    let after = text(after);
    assert_eq!(dates(&after), dates(&a_playlist));
    if dates(&a_playlist) != dates(&b_playlist) {
        assert_ne!(dates(&after), dates(&b_playlist));
    }

    let from_a = follow(&viewer, &video, limit).await;
    assert_eq!(
        frames(dir.path(), "via-edge-from-a.mp4", &from_a),
        published,
        "every frame from origin-a through the edge"
    );
    let segment = from_a.playlists.last().expect("a playlist").segments[0]
        .uri
        .clone()
        .expect("a segment");
    let r = viewer.get(&format!("{base}/{segment}")).await;
    assert_eq!((r.status, served_by(&r)), (200, Some("origin-a")));
    beats.abort();
}
