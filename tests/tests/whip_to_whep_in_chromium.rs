//! WebRTC in and out: headless Chromium publishes its fake camera and
//! microphone over WHIP, a second page plays the stream over WHEP from the
//! same origin (H.264 passed through, Opus passed through): `getStats()`
//! shows decoded video frames at the camera's size and received audio
//! packets; the origin forwarded a keyframe request (PLI) to the publisher
//! when the viewer connected; both DELETEs answer 200. Screenshot kept in
//! `tests/artifacts/whep-viewer.png`. WHEP for an unknown stream is 404.

use std::process::Command;

use livestack_test_harness::{artifacts_dir, browser::whip_to_whep, start_origin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_publish_plays_over_whep() {
    let origin = start_origin(|c| {
        c.webrtc = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let base = format!("http://{}", origin.http_addr);
    let unknown = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(["-X", "POST", "-H", "Content-Type: application/sdp"])
        .args(["--data-binary", "v=0", &format!("{base}/whep/nobody")])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&unknown.stdout), "404");

    let shot = artifacts_dir().join("whep-viewer.png");
    let (status, report) = whip_to_whep(base, "cam".into(), 8, shot.clone(), None).await;
    assert!(status.success(), "WHIP → WHEP: {report}");
    assert!(
        report["framesDecoded"].as_u64().unwrap_or(0) >= 50,
        "WHEP viewer decoded frames: {report}"
    );
    assert_eq!(report["width"], 640, "{report}");
    assert!(
        report["audioPackets"].as_u64().unwrap_or(0) > 0,
        "Opus reached the viewer: {report}"
    );
    assert!(
        report["pliCount"].as_u64().unwrap_or(0) >= 1,
        "the viewer's start asked the WHIP publisher for a keyframe: {report}"
    );
    assert!(shot.is_file(), "screenshot kept");
}
