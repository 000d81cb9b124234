//! Any ingest feeds the Media over QUIC egress (issue 10): ffmpeg publishes
//! H.264 + AAC over SRT, and an independent MoQ implementation, the
//! `@moq/watch` web player (moq-dev's TypeScript moq-lite and hang, bundled
//! into the origin's `/moq.html`), plays it in headless Chromium over
//! WebTransport, trusting the origin's self-signed certificate through
//! `serverCertificateHashes`: its WebCodecs video decoder decodes frames
//! (at least [`FRAMES`]) and a screenshot lands in `tests/artifacts/`.
//!
//! Needs `node`, `/usr/bin/chromium`, ffmpeg and `npm ci` in
//! `tests/browser`; a missing one fails the test with a message saying so.
use livestack_test_harness::{
    VideoCodec, artifacts_dir, browser::play_moq, encode_source, hls::HttpClient, publish,
    registry::metric, start_origin, wait_live, workdir,
};

/// Decoded frames the player must report.
const FRAMES: u32 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_watch_in_chromium_plays_an_srt_stream() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 60);
    let origin =
        start_origin(|c| c.webtransport = Some("127.0.0.1:0".parse().expect("addr"))).await;
    assert!(origin.webtransport_addr.is_some());
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/moqcam,m=publish", &source);

    wait_live(origin.http_addr, "moqcam").await;
    let client = HttpClient::new();

    let page = format!("http://{}/moq.html?stream=moqcam", origin.http_addr);
    let screenshot = artifacts_dir().join("moq-watch-srt.png");
    let (status, report) = play_moq(page, screenshot.clone(), FRAMES).await;
    assert!(status.success(), "the MoQ player did not play: {report}");
    assert!(
        report["frames"].as_u64().unwrap_or(0) >= u64::from(FRAMES),
        "{report}"
    );
    assert_eq!(report["status"], "connected", "{report}");
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );

    // The egress kept up with the ingest.
    let metrics = String::from_utf8(
        client
            .get(&format!("http://{}/metrics", origin.http_addr))
            .await
            .body
            .to_vec(),
    )
    .expect("utf-8 metrics");
    assert!(
        metrics.contains("livestack_origin_moq_groups_skipped_total 0"),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "livestack_origin_moq_groups_skipped_total"),
        0.0
    );
    ffmpeg.kill().expect("kill ffmpeg");
    let _ = ffmpeg.wait();
}
