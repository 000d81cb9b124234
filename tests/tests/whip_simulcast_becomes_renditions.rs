//! Simulcast over WHIP (RFC 8853 RIDs): headless Chromium sends its
//! 1280x720 fake camera as three layers (`h`, `m`, `l`: full, half and
//! quarter size); the origin keeps each layer as its own video track, so
//! the LL-HLS multivariant playlist offers three video renditions at three
//! resolutions, and each rendition's segments decode.

use std::time::Duration;

use livestack_test_harness::{
    browser::publish_whip_with,
    count_frames, decode_errors,
    hls::{HttpClient, follow},
    start_origin, wait_live, workdir,
};

/// The `(RESOLUTION, URI)` of each `EXT-X-STREAM-INF` of a multivariant
/// playlist.
fn variants(playlist: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = playlist.lines();
    while let Some(line) = lines.next() {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let resolution = attrs
                .split(',')
                .find_map(|a| a.strip_prefix("RESOLUTION="))
                .unwrap_or("?")
                .to_owned();
            if let Some(uri) = lines.next() {
                out.push((resolution, uri.to_owned()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_simulcast_layers_play_as_three_llhls_renditions() {
    let dir = workdir();
    let origin = start_origin(|c| {
        c.webrtc = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let base = format!("http://{}", origin.http_addr);
    let publisher = tokio::spawn(publish_whip_with(base.clone(), "sim".into(), 14, true));
    wait_live(origin.http_addr, "sim").await;
    let client = HttpClient::new();
    // Every layer shows up (each after its first keyframe).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let found = loop {
        let m = client.get(&format!("{base}/live/sim/index.m3u8")).await;
        let text = String::from_utf8_lossy(&m.body).into_owned();
        let found = variants(&text);
        if found.len() >= 3 || tokio::time::Instant::now() > deadline {
            println!("{text}");
            break found;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut resolutions: Vec<&str> = found.iter().map(|(r, _)| r.as_str()).collect();
    resolutions.sort_unstable();
    resolutions.dedup();
    assert_eq!(
        resolutions.len(),
        3,
        "three renditions at three resolutions: {found:?}"
    );
    assert!(
        resolutions.contains(&"1280x720"),
        "the full-size layer: {found:?}"
    );

    // Each rendition followed to its end (the publisher stops after 14 s).
    let follows: Vec<_> = found
        .iter()
        .map(|(resolution, uri)| {
            let url =
                livestack_test_harness::hls::join(&format!("{base}/live/sim/index.m3u8"), uri);
            let resolution = resolution.clone();
            tokio::spawn(async move {
                let followed = follow(&HttpClient::new(), &url, Duration::from_secs(60)).await;
                (resolution, followed)
            })
        })
        .collect();
    for task in follows {
        let (resolution, followed) = task.await.expect("follow task");
        let file = dir.path().join(format!("{resolution}.mp4"));
        let mut bytes = followed.inits.values().next().expect("init").to_vec();
        for (_, seg) in followed.segments.values() {
            bytes.extend_from_slice(seg);
        }
        std::fs::write(&file, bytes).expect("write");
        let errors = decode_errors(&file);
        assert!(errors.is_empty(), "{resolution} decodes: {errors}");
        let frames = count_frames(&file, "v");
        println!("{resolution}: {frames} frames");
        assert!(frames > 0, "{resolution} has frames");
    }
    let (status, report) = publisher.await.expect("publisher");
    assert!(status.success(), "WHIP simulcast publish: {report}");
}
