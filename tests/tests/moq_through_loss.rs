//! Media over QUIC keeps playing through a lossy path (issue 10): ffmpeg
//! publishes over SRT; a moq-net subscriber reaches the origin's MoQ port
//! through the test support's userspace UDP impairment relay with 5 %
//! loss and 50 ms of delay each way (both directions impaired). It must
//! receive [`FRAMES`] video frames (several GOPs), each one whole: every
//! access unit parses as 4-byte-length-prefixed NAL units that fill it
//! exactly, and every group it reads starts with an IDR picture. QUIC
//! retransmits what is lost; a group that arrives too late is dropped
//! whole by moq-net, never delivered in pieces.

use std::time::Duration;

use livestack_test_harness::{
    VideoCodec, encode_source,
    impair::{Impairment, Relay},
    publish, quic, start_origin, wait_live, workdir,
};

/// Video frames the subscriber must read (25 fps: 8 s, four GOPs).
const FRAMES: usize = 200;

/// NAL unit types of an AVCC access unit; `None` if the lengths do not
/// fill it exactly (a corrupted frame).
fn nal_types(mut au: &[u8]) -> Option<Vec<u8>> {
    let mut types = Vec::new();
    while !au.is_empty() {
        let len = u32::from_be_bytes(au.get(..4)?.try_into().ok()?) as usize;
        let nal = au.get(4..4 + len)?;
        types.push(nal.first()? & 0x1f);
        au = &au[4 + len..];
    }
    Some(types)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_plays_through_five_percent_loss_and_50_ms() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 60);
    let origin =
        start_origin(|c| c.webtransport = Some("127.0.0.1:0".parse().expect("addr"))).await;
    let wt = origin.webtransport_addr.expect("MoQ listener");
    let hash = origin.certificate_sha256.clone().expect("certificate");
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/lossy,m=publish", &source);
    wait_live(origin.http_addr, "lossy").await;

    let relay = Relay::start(
        wt,
        Impairment {
            loss: 0.05,
            delay: Duration::from_millis(50),
            jitter: Duration::ZERO,
            seed: 10,
        },
    )
    .await;
    let report = tokio::time::timeout(
        Duration::from_secs(45),
        quic::moq_subscribe(relay.addr, moq_net::ALPNS, &hash, "lossy", FRAMES),
    )
    .await
    .expect("the subscriber did not get its frames through the lossy path in time")
    .expect("subscriber");
    let dropped = relay
        .downstream
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed)
        + relay
            .upstream
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{} frames in {} groups via {}; the relay dropped {dropped} datagrams",
        report.frames.len(),
        report.frames.last().map_or(0, |f| f.group) + 1 - report.frames[0].group,
        report.version
    );
    assert_eq!(report.frames.len(), FRAMES, "the stream stopped");
    assert!(
        dropped > 0,
        "the relay lost nothing: the test tested nothing"
    );
    for f in &report.frames {
        let types = nal_types(&f.payload).unwrap_or_else(|| {
            panic!(
                "a corrupted frame in group {} at index {}",
                f.group, f.index
            )
        });
        if f.index == 0 {
            assert!(
                types.contains(&5),
                "group {} does not start with an IDR picture: {types:?}",
                f.group
            );
        }
    }
    ffmpeg.kill().expect("kill ffmpeg");
    let _ = ffmpeg.wait();
}
