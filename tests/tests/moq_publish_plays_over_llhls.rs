//! A Media over QUIC publish plays over LL-HLS: ffmpeg feeds MPEG-TS
//! (H.264 without B-frames, AAC) to moq-dev's own CLI (`moq` of
//! `moq-cli`, an independent MoQ implementation), which publishes it to
//! the origin's `/moq` WebTransport endpoint (the origin's self-signed
//! certificate pinned by its SHA-256). The origin ingests the hang
//! broadcast; an LL-HLS follower gets every video frame the source has,
//! decodable, and the audio rendition.
//!
//! Then a second publisher of the same name on another session is refused
//! (the first stays on air), counted as `conflict`.

use std::{process::Command, time::Duration};

use livestack_test_harness::{
    count_frames, decode_errors,
    hls::{HttpClient, follow},
    moq_import_ts,
    registry::metric,
    start_origin, wait_live, workdir,
};

/// Encodes `seconds` of testsrc (640x360, 25 fps, 1 s GOP, no B-frames) +
/// a sine (AAC, 48 kHz) into MPEG-TS.
fn encode(dir: &std::path::Path, seconds: u32) -> std::path::PathBuf {
    let out = dir.join("source.ts");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc=size=640x360:rate=25:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ))
        .args([
            "-c:v",
            "libx264",
            "-profile:v",
            "main",
            "-bf",
            "0",
            "-g",
            "25",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"])
        .args(["-f", "mpegts"])
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "encoding the source failed");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_published_over_moq_plays_over_llhls() {
    let dir = workdir();
    let source = encode(dir.path(), 10);
    let published = count_frames(&source, "v");
    let origin = start_origin(|c| {
        c.webtransport = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let wt = origin.webtransport_addr.expect("MoQ listener");
    let hash = origin.certificate_sha256.clone().expect("certificate hash");
    let url = format!("https://{wt}/moq");

    let (mut ffmpeg, mut moq) = moq_import_ts(&url, &hash, "cam", &source, None);
    wait_live(origin.http_addr, "cam").await;
    // Followed from the first segment on, while the rest goes on.
    let playlist = format!("http://{}/live/cam/video.m3u8", origin.http_addr);
    let following = tokio::spawn(async move {
        follow(&HttpClient::new(), &playlist, Duration::from_secs(60)).await
    });
    let metrics = || async {
        let body = HttpClient::new()
            .get(&format!("http://{}/metrics", origin.http_addr))
            .await
            .body;
        String::from_utf8(body.to_vec()).expect("utf-8")
    };
    assert_eq!(
        metric(
            &metrics().await,
            "livestack_origin_moq_publishes_total{outcome=\"accepted\"}"
        ),
        1.0
    );

    // A second publisher of the live name is refused; the first goes on.
    let (mut ffmpeg2, mut moq2) = moq_import_ts(&url, &hash, "cam", &source, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while metric(
        &metrics().await,
        "livestack_origin_moq_publishes_total{outcome=\"conflict\"}",
    ) < 1.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "second publisher not refused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = moq2.kill();
    let _ = ffmpeg2.kill();

    let client = HttpClient::new();
    let video = following.await.expect("follower");
    assert_eq!(
        video.segments.keys().next(),
        Some(&0),
        "from the first segment"
    );
    let _ = ffmpeg.wait();
    let _ = moq.kill();
    let _ = (moq.wait(), moq2.wait(), ffmpeg2.wait());

    let file = dir.path().join("video.mp4");
    let mut bytes = video.inits.values().next().expect("init").to_vec();
    for (_, seg) in video.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).expect("write");
    let errors = decode_errors(&file);
    assert!(errors.is_empty(), "decodes: {errors}");
    let received = count_frames(&file, "v");
    let m = metrics().await;
    assert_eq!(
        received,
        published,
        "every video frame of the source; segments {:?}; refused {}; durations {:?}",
        video.segments.keys().collect::<Vec<_>>(),
        metric(&m, "livestack_origin_moq_ingest_frames_refused_total"),
        video
            .playlists
            .last()
            .map(|p| p.segments.iter().map(|s| s.duration).collect::<Vec<_>>())
    );

    let multivariant = client
        .get(&format!("http://{}/live/cam/index.m3u8", origin.http_addr))
        .await;
    let text = String::from_utf8_lossy(&multivariant.body).into_owned();
    assert!(text.contains("mp4a.40.2"), "audio rendition: {text}");
    assert_eq!(
        metric(
            &metrics().await,
            "livestack_origin_moq_ingest_frames_refused_total"
        ),
        0.0
    );
}
