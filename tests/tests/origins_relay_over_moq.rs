//! Origin-to-origin relay: two origins in two regions (and a third with
//! the wrong credential) in one real Redis control plane, an edge routing
//! viewers to their nearest region. ffmpeg publishes over SRT to origin A
//! (Paris), which the placement records; viewers ask origin B
//! (Washington), which pulls the stream from A over Media over QUIC
//! (WebTransport, A's self-signed certificate pinned by the hash A
//! advertises in the registry) and serves it over LL-HLS.
//!
//! - Three viewers on B: A serves exactly one relay session.
//! - The viewers leave: B lets the pull go after its idle time and A's
//!   relay session ends while A still has the stream.
//! - A viewer in Washington asks the edge (`routing.nearest-region-first`):
//!   it is sent to B, not to A that holds the stream; B pulls again;
//!   followed to the end, what B served decodes without error and has every frame of its time span
//!   (the relay carries decoding times: the source has B-frames).
//! - Origin C presents a wrong edge credential: A refuses its relay
//!   session (401), C answers 404, A and B are not disturbed.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use livestack_control::{ControlPlane, RedisControlPlane, RedisOptions, RedisTarget};
use livestack_edge_server::ORIGIN_NODE_HEADER;
use livestack_origin::Origin;
use livestack_test_harness::{
    VideoCodec, count_frames, decode_errors, encode_source,
    hls::{Followed, HttpClient, follow},
    publish,
    registry::{PARIS, WASHINGTON, metric, play_token},
    start_edge_with, start_origin_in, wait_live, workdir,
};

const CREDENTIAL: &str = "relay-test-edge-credential-0123456789";

async fn control(redis: &livestack_control::testing::RedisServer) -> Arc<dyn ControlPlane> {
    let target = RedisTarget::parse(&redis.url()).expect("redis url");
    RedisControlPlane::connect(target, RedisOptions::default())
        .await
        .expect("redis control plane")
}

async fn origin(
    redis: &livestack_control::testing::RedisServer,
    id: &str,
    (region, location): (&str, (f64, f64)),
    credential: &str,
) -> Origin {
    let id = id.to_owned();
    let region = region.to_owned();
    let credential = credential.to_owned();
    start_origin_in(control(redis).await, move |c| {
        c.webtransport = Some("127.0.0.1:0".parse().expect("addr"));
        c.cluster.node_id = id;
        c.cluster.region = region;
        c.cluster.location = Some(location);
        c.cluster.heartbeat_interval = Duration::from_millis(200);
        c.cluster.heartbeat_ttl = Duration::from_secs(2);
        c.cluster.relay_idle = Duration::from_secs(2);
        c.access.edge_credential = Some(credential);
    })
    .await
}

async fn metrics(o: &Origin) -> String {
    let body = HttpClient::new()
        .get(&format!("http://{}/metrics", o.http_addr))
        .await
        .body;
    String::from_utf8(body.to_vec()).expect("utf-8")
}

/// Polls `what` of origin `o`'s metrics until it equals `want` (30 s).
async fn wait_metric(o: &Origin, what: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = metric(&metrics(o).await, what);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} stayed {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fetches the multivariant and video playlists of `cam` on `http` every
/// 200 ms for `time`; returns how many answers were 200.
async fn view(http: std::net::SocketAddr, time: Duration) -> u32 {
    let client = HttpClient::new();
    let end = Instant::now() + time;
    let mut ok = 0;
    while Instant::now() < end {
        for path in ["index.m3u8", "video.m3u8"] {
            let r = client.get(&format!("http://{http}/live/cam/{path}")).await;
            if r.status == 200 {
                ok += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ok
}

/// The video of a followed rendition (init + segments) as one file.
fn concatenated(dir: &std::path::Path, f: &Followed) -> std::path::PathBuf {
    let file = dir.join("relayed.mp4");
    let mut bytes = f.inits.values().next().expect("an init segment").to_vec();
    for (_, seg) in f.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).expect("write");
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_published_to_one_origin_plays_on_another_through_one_relay_session() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 40);
    let redis = tokio::task::block_in_place(livestack_control::testing::RedisServer::start);
    let a = origin(&redis, "origin-a", ("eu-west", PARIS), CREDENTIAL).await;
    let b = origin(&redis, "origin-b", ("us-east", WASHINGTON), CREDENTIAL).await;
    let c = origin(
        &redis,
        "origin-c",
        ("eu-west", PARIS),
        "a-wrong-edge-credential-0123456789",
    )
    .await;
    let edge_control = control(&redis).await;
    let edge = start_edge_with(a.http_addr, |e| {
        e.control = Some(edge_control);
        e.registry_refresh = Duration::from_millis(200);
        e.module_config
            .insert("routing.nearest-region-first".into(), "true".into());
    })
    .await;

    let mut ffmpeg = publish(a.srt_addr, "#!::r=live/cam,m=publish", &source);
    wait_live(a.http_addr, "cam").await;

    // Three viewers on B at once: one relay session on A.
    let viewers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(view(b.http_addr, Duration::from_secs(6))))
        .collect();
    wait_metric(&a, "livestack_origin_relay_sessions ", 1.0).await;
    wait_metric(&b, "livestack_origin_relay_pulls ", 1.0).await;
    let mut max_sessions = 0.0f64;
    while viewers.iter().any(|v| !v.is_finished()) {
        max_sessions = max_sessions.max(metric(
            &metrics(&a).await,
            "livestack_origin_relay_sessions ",
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for v in viewers {
        assert!(v.await.expect("viewer") > 20, "B served the viewers");
    }
    assert_eq!(max_sessions, 1.0, "one relay session for three viewers");

    // Nobody watches on B: the pull ends, A's relay session with it, and
    // A still has the stream.
    wait_metric(&b, "livestack_origin_relay_pulls ", 0.0).await;
    wait_metric(&a, "livestack_origin_relay_sessions ", 0.0).await;
    assert_eq!(
        metric(
            &metrics(&b).await,
            "livestack_origin_relay_pulls_ended_total{outcome=\"idle\"}"
        ),
        1.0
    );
    let streams = HttpClient::new()
        .get(&format!("http://{}/streams", a.http_addr))
        .await;
    assert!(
        String::from_utf8_lossy(&streams.body).contains("\"cam\""),
        "A still serves the stream"
    );

    // The wrong credential: A refuses C's relay session, C answers 404.
    let refused = HttpClient::new()
        .get(&format!("http://{}/live/cam/index.m3u8", c.http_addr))
        .await;
    assert_eq!(refused.status, 404, "C cannot pull without the credential");
    wait_metric(
        &a,
        "livestack_origin_moq_sessions_total{outcome=\"unauthorized\"}",
        1.0,
    )
    .await;

    // A viewer in Washington, through the edge: sent to B, which pulls
    // again, and plays to the end.
    let viewer = HttpClient::new().with_header("x-client-location", "38.90,-77.04");
    let token = play_token("cam");
    let first = viewer
        .get(&format!(
            "http://{}/live/cam/index.m3u8?token={token}",
            edge.http_addr
        ))
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        first.headers.get(ORIGIN_NODE_HEADER).map(|v| v.as_bytes()),
        Some(&b"origin-b"[..]),
        "the edge sends the viewer to its own region's origin"
    );
    let followed = follow(
        &viewer,
        &format!(
            "http://{}/live/cam/video.m3u8?token={token}",
            edge.http_addr
        ),
        Duration::from_secs(90),
    )
    .await;
    let status = ffmpeg.wait().expect("ffmpeg");
    assert!(status.success(), "ffmpeg publish failed: {status}");
    assert!(followed.segments.len() >= 4, "segments relayed");
    let file = concatenated(dir.path(), &followed);
    let errors = decode_errors(&file);
    assert!(errors.is_empty(), "relayed video decodes: {errors}");
    // Every frame of the span B served: 25 fps, segment durations from
    // decoding times (a lost frame would leave its time in a segment).
    let frames = count_frames(&file, "v");
    let durations: std::collections::BTreeMap<u64, f64> = followed
        .playlists
        .iter()
        .flat_map(|p| p.segments.iter().map(|s| (s.msn, s.duration)))
        .collect();
    let span: f64 = followed
        .segments
        .keys()
        .map(|msn| {
            durations
                .get(msn)
                .copied()
                .expect("a followed segment's duration")
        })
        .sum();
    let expected = (span * 25.0).round() as u64;
    assert!(
        frames.abs_diff(expected) <= 1,
        "B served {frames} frames over {span:.3} s (expected {expected})"
    );
    assert!(
        frames >= 25 * 8,
        "at least 8 s relayed, got {frames} frames"
    );
    assert_eq!(
        metric(
            &metrics(&b).await,
            "livestack_origin_relay_frames_refused_total"
        ),
        0.0
    );
}
