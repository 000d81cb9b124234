//! Simulcast layer selection from the bandwidth estimate: headless
//! Chromium publishes its 720p fake camera in three layers over WHIP; a
//! second page plays it over WHEP through a UDP relay whose origin →
//! viewer direction the test caps (a shaper, like `tc tbf`). Uncapped, the
//! viewer gets the 1280-wide layer; capped at 250 kbit/s, str0m's TWCC
//! estimate falls and the origin moves the viewer to a lower layer, which
//! keeps decoding; cap lifted, probing finds the bandwidth again and the
//! viewer is moved back up. Screenshot in `tests/artifacts/simulcast.png`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use livestack_test_harness::{
    artifacts_dir,
    browser::simulcast_through_relay,
    impair::{Impairment, Relay},
    start_origin,
};

/// The viewer's decoded width and frame count at a wall-clock time.
#[derive(Debug, Clone, Copy)]
struct Sample {
    t: u64,
    width: u64,
    frames: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_moves_down_a_layer_under_a_cap_and_back_up_without() {
    let origin = start_origin(|c| {
        c.webrtc = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let relay = Relay::start(origin.webrtc_addr.expect("WebRTC"), Impairment::NONE).await;
    let base = format!("http://{}", origin.http_addr);
    let shot = artifacts_dir().join("simulcast.png");
    let script = tokio::spawn(simulcast_through_relay(
        base,
        "layers".into(),
        relay.addr,
        60,
        shot.clone(),
    ));

    // The viewer's first datagram through the relay starts the schedule.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while relay
        .upstream
        .forwarded
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline && !script.is_finished(),
            "the viewer never reached the relay"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    let capped = now_ms();
    relay.set_downstream_rate(250_000);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let uncapped = now_ms();
    relay.set_downstream_rate(0);

    let (status, report) = script.await.expect("script");
    assert!(status.success(), "simulcast viewer: {report}");
    let samples: Vec<Sample> = report["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| Sample {
            t: s["t"].as_u64().unwrap_or(0),
            width: s["width"].as_u64().unwrap_or(0),
            frames: s["frames"].as_u64().unwrap_or(0),
        })
        .collect();
    let phase = |from: u64, to: u64| -> Vec<Sample> {
        samples
            .iter()
            .copied()
            .filter(|s| s.t >= from && s.t < to)
            .collect()
    };
    let before = phase(0, capped);
    let during = phase(capped, uncapped);
    let after = phase(uncapped, u64::MAX);
    println!("before {before:?}\nduring {during:?}\nafter {after:?}");
    assert!(
        before.iter().any(|s| s.width == 1280),
        "uncapped, the full-size layer: {before:?}"
    );
    // Within the capped span (the estimate takes a few seconds to fall),
    // a lower layer, still decoding.
    let lower: Vec<&Sample> = during
        .iter()
        .filter(|s| s.width > 0 && s.width < 1280)
        .collect();
    assert!(!lower.is_empty(), "capped, a lower layer: {during:?}");
    let (first, last) = (lower[0], lower[lower.len() - 1]);
    assert!(
        last.frames > first.frames,
        "the lower layer keeps playing: {during:?}"
    );
    assert!(
        after.iter().any(|s| s.width == 1280),
        "cap lifted, back to the full-size layer: {after:?}"
    );
    assert!(shot.is_file(), "screenshot kept");
}
