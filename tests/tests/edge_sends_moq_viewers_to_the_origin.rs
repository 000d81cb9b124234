//! The edge's WebTransport set-up sends a Media over QUIC viewer to the
//! origin that holds the stream, with what a browser needs to connect
//! (issue 10): an origin with `--webtransport` writes its MoQ URL
//! (`https://HOST:PORT/moq`) and the SHA-256 of its self-signed
//! certificate into its registry record; after ffmpeg publishes to it over
//! SRT, `GET /wt/NAME?token=T` at an edge that reads the same control plane
//! answers 200 with that URL and the hash as a `serverCertificateHashes`
//! entry (base64); and a moq-net subscriber that pins that hash and dials
//! that URL's address receives the stream's frames.

use std::time::{Duration, Instant};

use base64::Engine as _;
use livestack_control::{ControlPlane, MemoryControlPlane};
use livestack_origin::{Origin, config::OriginConfig};
use livestack_test_harness::{
    VideoCodec, encode_source, hls::HttpClient, publish, quic, registry::play_token,
    start_edge_with, workdir,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_answers_webtransport_setup_with_the_origins_moq_url_and_hash() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 30);
    let control = MemoryControlPlane::new();
    let mut config = OriginConfig {
        srt: "127.0.0.1:0".parse().expect("addr"),
        http: "127.0.0.1:0".parse().expect("addr"),
        webtransport: Some("127.0.0.1:0".parse().expect("addr")),
        ..OriginConfig::default()
    };
    config.hls.reconnect_grace = Duration::ZERO;
    config.cluster.node_id = "origin-moq".into();
    let dyn_control: std::sync::Arc<dyn ControlPlane> = control.clone();
    let origin = Origin::start(&config, dyn_control).await.expect("origin");
    let wt = origin.webtransport_addr.expect("MoQ listener");
    let hash = origin.certificate_sha256.clone().expect("certificate");
    let moq_url = format!("https://{wt}/moq");

    // 1. The registry record carries the MoQ URL and the certificate hash.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = control.nodes().await.expect("nodes");
        if let Some(n) = nodes.iter().find(|n| n.id == "origin-moq") {
            assert_eq!(n.urls.get("webtransport"), Some(&moq_url), "{n:?}");
            assert_eq!(n.certificate_sha256, vec![hash.clone()], "{n:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the origin never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 2. Live (and placed on this node) over SRT.
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/wtcam,m=publish", &source);
    let edge = start_edge_with(origin.http_addr, |c| {
        c.control = Some(control.clone());
        c.registry_refresh = Duration::from_millis(200);
    })
    .await;
    let client = HttpClient::new();
    let setup = format!(
        "http://{}/wt/wtcam?token={}",
        edge.http_addr,
        play_token("wtcam")
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let r = client.get(&setup).await;
        if r.status == 200 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "WebTransport set-up never answered 200: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON answer");
    assert_eq!(json["url"], moq_url.as_str(), "{json}");
    assert!(json["token"].is_string(), "{json}");
    let pinned = json["certificateHashes"][0]["value"]
        .as_str()
        .expect("a certificate hash");
    let pinned = base64::engine::general_purpose::STANDARD
        .decode(pinned)
        .expect("base64");
    let pinned: String = pinned.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(pinned, hash, "{json}");
    assert_eq!(json["certificateHashes"][0]["algorithm"], "sha-256");

    // 3. A subscriber that pins the answered hash gets the stream there.
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        quic::moq_subscribe(wt, moq_net::ALPNS, &pinned, "wtcam", 25),
    )
    .await
    .expect("no frames in time")
    .expect("subscriber");
    assert_eq!(report.frames.len(), 25);
    ffmpeg.kill().expect("kill ffmpeg");
    let _ = ffmpeg.wait();
}
