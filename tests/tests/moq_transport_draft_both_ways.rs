//! The IETF MoQ Transport dialect, both ways, with moq-dev's CLI (`moq`
//! 0.14.10) restricted to draft 16 (`--connect-version moq-transport-16`,
//! ALPN `moqt-16`) over WebTransport:
//!
//! - subscribe: an SRT-published stream exported as MPEG-TS over MoQT
//!   decodes without error and has frames;
//! - publish: MPEG-TS imported over MoQT plays over LL-HLS.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use livestack_test_harness::{
    VideoCodec, count_frames, decode_errors, encode_source, moq_import_ts, publish, require,
    start_origin, wait_live, workdir,
};

const DRAFT: &str = "moq-transport-16";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_transport_draft_16_subscribes_and_publishes() {
    require("moq");
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 20);
    let origin = start_origin(|c| {
        c.webtransport = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let wt = origin.webtransport_addr.expect("MoQ listener");
    let hash = origin.certificate_sha256.clone().expect("hash");
    let url = format!("https://{wt}/moq");

    // Subscribe over draft 16: the CLI writes what it gets as MPEG-TS.
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/srtcam,m=publish", &source);
    wait_live(origin.http_addr, "srtcam").await;
    let exported = dir.path().join("exported.ts");
    let mut export = Command::new("moq")
        .args(["--connect", &url, "--connect-tls-fingerprint", &hash])
        .args(["--connect-version", DRAFT])
        .args(["--broadcast", "srtcam", "export", "ts"])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&exported).expect("output file"))
        .spawn()
        .expect("spawn moq");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let _ = export.kill();
    let _ = export.wait();
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let frames = count_frames(&exported, "v");
    assert!(frames >= 50, "{frames} video frames exported over {DRAFT}");
    let errors = decode_errors(&exported);
    assert!(errors.is_empty(), "exported video decodes: {errors}");

    // Publish over draft 16 (no B-frames: hang carries one time per frame).
    let plain = dir.path().join("plain.ts");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&source)
        .args(["-c:v", "libx264", "-bf", "0", "-g", "25", "-c:a", "copy"])
        .args(["-t", "8", "-f", "mpegts"])
        .arg(&plain)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let (mut feed, mut import) = moq_import_ts(&url, &hash, "ietfcam", &plain, Some(DRAFT));
    wait_live(origin.http_addr, "ietfcam").await;
    let _ = feed.wait();
    let _ = import.kill();
    let _ = import.wait();
}
