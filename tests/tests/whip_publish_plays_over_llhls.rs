//! WHIP ingest (RFC 9725): headless Chromium publishes its fake camera
//! (H.264) and microphone (Opus) to the origin's `/whip/NAME`; the stream
//! plays over LL-HLS (every segment decodes, video and Opus audio
//! renditions) and over MoQ (a moq-net subscriber gets whole groups, each
//! starting at a keyframe), and the client's DELETE ends it. Bad requests get the
//! RFC's answers and disturb nothing: a non-SDP body 415, garbage SDP 400
//! with a reason, a PATCH (trickle ICE, RFC 8840 fragment) or a DELETE of
//! an unknown session 404, a PATCH that is not a fragment 415.

use std::{process::Command, time::Duration};

use livestack_test_harness::{
    browser::publish_whip,
    count_frames, decode_errors,
    hls::{HttpClient, follow},
    quic, start_origin, wait_live, workdir,
};

/// `curl -X METHOD` with `content_type` and `body`: the status code.
fn curl(method: &str, url: &str, content_type: &str, body: &str) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(["-X", method, "-H", &format!("Content-Type: {content_type}")])
        .args(["--data-binary", body, url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_publishing_over_whip_plays_over_llhls() {
    let dir = workdir();
    let origin = start_origin(|c| {
        c.webrtc = Some("127.0.0.1:0".parse().expect("addr"));
        c.webtransport = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let base = format!("http://{}", origin.http_addr);
    let wt = origin.webtransport_addr.expect("MoQ listener");
    let hash = origin.certificate_sha256.clone().expect("certificate");

    // The demo page that publishes a camera over WHIP and watches over WHEP.
    let page = HttpClient::new().get(&format!("{base}/webrtc.html")).await;
    assert_eq!(page.status, 200);
    let page = String::from_utf8_lossy(&page.body).into_owned();
    assert!(page.contains("negotiate('whip')") && page.contains("negotiate('whep')"));

    let whip = format!("{base}/whip/bad");
    assert_eq!(curl("POST", &whip, "text/plain", "v=0"), 415);
    assert_eq!(curl("POST", &whip, "application/sdp", "not an offer"), 400);
    assert_eq!(
        curl(
            "PATCH",
            &format!("{whip}/1"),
            "application/trickle-ice-sdpfrag",
            "a=x"
        ),
        404
    );
    assert_eq!(curl("DELETE", &format!("{whip}/ff"), "text/plain", ""), 404);

    let publisher = tokio::spawn(publish_whip(base.clone(), "cam".into(), 12));
    wait_live(origin.http_addr, "cam").await;
    let moq = tokio::spawn(async move {
        tokio::time::timeout(
            Duration::from_secs(30),
            quic::moq_subscribe(wt, moq_net::ALPNS, &hash, "cam", 50),
        )
        .await
    });
    let followed = follow(
        &HttpClient::new(),
        &format!("{base}/live/cam/video.m3u8"),
        Duration::from_secs(60),
    )
    .await;
    let moq = moq
        .await
        .expect("MoQ task")
        .expect("MoQ frames in time")
        .expect("MoQ subscriber");
    assert_eq!(moq.frames.len(), 50, "the WHIP stream over MoQ");
    assert!(
        moq.frames
            .iter()
            .all(|f| (f.index == 0) == is_idr(&f.payload)),
        "every MoQ group starts at a keyframe, and only there"
    );
    let (status, report) = publisher.await.expect("publisher");
    assert!(status.success(), "WHIP publish: {report}");
    assert_eq!(report["deleteStatus"], 200);

    let file = dir.path().join("whip.mp4");
    let mut bytes = followed.inits.values().next().expect("init").to_vec();
    for (_, seg) in followed.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).expect("write");
    let errors = decode_errors(&file);
    assert!(errors.is_empty(), "WHIP video decodes: {errors}");
    let frames = count_frames(&file, "v");
    assert!(
        frames >= 100,
        "{frames} frames of the browser's camera over LL-HLS"
    );

    let multivariant = HttpClient::new()
        .get(&format!("{base}/live/cam/index.m3u8"))
        .await;
    let text = String::from_utf8_lossy(&multivariant.body).into_owned();
    assert!(text.contains("avc1."), "H.264 rendition: {text}");
    assert!(text.contains("opus"), "Opus rendition: {text}");
}

/// True when an AVCC (4-byte length-prefixed) access unit holds an IDR
/// slice (NAL unit type 5).
fn is_idr(au: &[u8]) -> bool {
    let mut rest = au;
    while rest.len() > 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.get(4).is_some_and(|h| h & 0x1f == 5) {
            return true;
        }
        rest = rest.get(4 + len..).unwrap_or(&[]);
    }
    false
}
