//! The SRT ingest's caps (issue 9): a publisher above the bit-rate limit
//! is cut with a clear reason, and publishers beyond the node's cap are
//! refused in the handshake with 2402 (overload) while the one on air keeps
//! publishing.

use std::time::Duration;

use livestack_test_harness::{
    VideoCodec, bit_rate, encode_source,
    hls::{HttpClient, follow},
    publish,
    registry::metric,
    start_origin, workdir,
};

/// Waits until the origin's metric `prefix` reaches `want`; returns the
/// whole metrics text.
async fn wait_metric(
    client: &HttpClient,
    origin: std::net::SocketAddr,
    prefix: &str,
    want: f64,
) -> String {
    let url = format!("http://{origin}/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = String::from_utf8_lossy(&client.get(&url).await.body).into_owned();
        if metric(&text, prefix) >= want {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{prefix} never reached {want}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_above_the_bit_rate_limit_is_cut() {
    const LIMIT: u64 = 100_000;
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 20);
    let rate = bit_rate(&source).expect("ffprobe reports the source's bit rate");
    assert!(
        rate > 2 * LIMIT,
        "the source ({rate} bit/s) is well above the limit"
    );
    let origin = start_origin(|c| c.srt_options.max_bitrate = LIMIT).await;
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/fat,m=publish", &source);
    let client = HttpClient::new();
    let text = wait_metric(
        &client,
        origin.http_addr,
        "livestack_origin_sessions_ended_total{reason=\"bitrate_exceeded\"}",
        1.0,
    )
    .await;
    assert_eq!(metric(&text, "livestack_origin_publishers "), 0.0, "{text}");
    // The publisher learns it from the closed connection, long before its
    // 20 s are sent.
    let status = ffmpeg.wait().expect("ffmpeg");
    assert!(
        !status.success(),
        "ffmpeg should fail on the cut connection"
    );
    // The stream ended; a playlist that existed says so.
    let r = client
        .get(&format!("http://{}/live/fat/video.m3u8", origin.http_addr))
        .await;
    if r.status == 200 {
        assert!(String::from_utf8_lossy(&r.body).contains("#EXT-X-ENDLIST"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_beyond_the_cap_are_refused_and_the_one_on_air_plays_on() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 8);
    let origin = start_origin(|c| c.srt_options.max_publishers = 1).await;
    let client = HttpClient::new();
    let mut on_air = publish(origin.srt_addr, "#!::r=live/first,m=publish", &source);
    let url = format!("http://{}/live/first/video.m3u8", origin.http_addr);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while client.get(&url).await.status != 200 {
        assert!(tokio::time::Instant::now() < deadline, "first never played");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let viewer = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move { follow(&client, &url, Duration::from_secs(60)).await })
    };
    // Two more, on other names: both refused in the handshake.
    for name in ["second", "third"] {
        let mut refused = publish(
            origin.srt_addr,
            &format!("#!::r=live/{name},m=publish"),
            &source,
        );
        let status = refused.wait().expect("ffmpeg");
        assert!(!status.success(), "{name} was refused");
    }
    let text = wait_metric(
        &client,
        origin.http_addr,
        "livestack_origin_srt_connections_total{result=\"overload\"}",
        2.0,
    )
    .await;
    assert_eq!(
        metric(
            &text,
            "livestack_origin_srt_connections_total{result=\"accepted\"}"
        ),
        1.0,
        "{text}"
    );
    assert!(on_air.wait().expect("ffmpeg").success());
    let followed = viewer.await.expect("viewer");
    assert!(followed.playlists.last().is_some_and(|p| p.endlist));
    assert!(!followed.segments.is_empty());
    // The place is free again.
    let mut next = publish(origin.srt_addr, "#!::r=live/second,m=publish", &source);
    let url = format!("http://{}/live/second/video.m3u8", origin.http_addr);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while client.get(&url).await.status != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "second never played"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    next.kill().expect("kill ffmpeg");
    let _ = next.wait();
}
