//! WHIP and WHEP through the edge, as a browser does them: headless
//! Chromium POSTs its offer to the edge with a viewer token (publish, then
//! play); the edge's signaling answers 307 to the origin node with a
//! session token it minted for that node; fetch follows (CORS preflight at
//! the origin), the origin verifies the session token (audience = its node
//! id) and answers 201. The viewer decodes the publisher's camera; both
//! DELETEs (with the client's token) answer 200. Without a token the edge
//! refuses (401), and so does the origin (publishing needs a key there).

use std::process::Command;

use livestack_control::MemoryControlPlane;
use livestack_test_harness::{
    EDGE_TEST_KEYS, artifacts_dir,
    browser::whip_to_whep,
    registry::{PARIS, heartbeat, node, place, spawn_heartbeats, token},
    start_edge_with, start_origin,
};
use livestack_tokens::Access;

const NODE: &str = "origin-webrtc";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_publishes_and_plays_webrtc_through_the_edge() {
    let origin = start_origin(|c| {
        c.webrtc = Some("127.0.0.1:0".parse().expect("addr"));
        c.cluster.node_id = NODE.into();
        c.access.session_keys = Some(EDGE_TEST_KEYS.into());
        // Publishing needs a credential: the edge's session token is one.
        c.auth.keys.push(livestack_origin::config::StreamKeyConfig {
            stream: "*".into(),
            key: "an-operator-publish-key".into(),
        });
    })
    .await;
    let control = MemoryControlPlane::new();
    let nodes = vec![node(NODE, "eu-west", PARIS, origin.http_addr)];
    heartbeat(&*control, &nodes).await;
    let beats = spawn_heartbeats(control.clone(), nodes);
    // The viewer side routes by placement: the stream is on this node.
    place(&*control, "cam", NODE).await;
    let edge = start_edge_with(origin.http_addr, |c| {
        c.control = Some(control.clone());
        c.registry_refresh = std::time::Duration::from_millis(250);
    })
    .await;
    let edge_base = format!("http://{}", edge.http_addr);
    let origin_base = format!("http://{}", origin.http_addr);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // No token: the edge refuses.
    let status = |args: &[&str]| {
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
            .args(args)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let offer_headers = [
        "-X",
        "POST",
        "-H",
        "Content-Type: application/sdp",
        "--data-binary",
        "v=0",
    ];
    let mut args = offer_headers.to_vec();
    let url = format!("{edge_base}/whip/cam");
    args.push(&url);
    assert_eq!(status(&args), "401");
    // The origin is not open to publishing without a credential either.
    let mut args = offer_headers.to_vec();
    let url = format!("{origin_base}/whip/cam");
    args.push(&url);
    assert_eq!(status(&args), "401");
    // A browser's preflight at the origin.
    assert_eq!(
        status(&[
            "-X",
            "OPTIONS",
            "-H",
            "Origin: http://example.test",
            "-H",
            "Access-Control-Request-Method: POST",
            &format!("{origin_base}/whip/cam"),
        ]),
        "204"
    );

    let shot = artifacts_dir().join("whep-through-edge.png");
    let tokens = (token("cam", Access::Publish), token("cam", Access::Play));
    let (status, report) =
        whip_to_whep(edge_base, "cam".into(), 6, shot.clone(), Some(tokens)).await;
    assert!(status.success(), "WHIP → WHEP through the edge: {report}");
    for key in ["whipUrl", "whepUrl"] {
        let url = report[key].as_str().unwrap_or("");
        assert!(
            url.starts_with(&format!("{origin_base}/")) && url.contains("token="),
            "{key}: the session was created at the origin with the edge's session token: {report}"
        );
    }
    assert!(
        report["framesDecoded"].as_u64().unwrap_or(0) >= 25,
        "the viewer decoded the camera: {report}"
    );
    assert_eq!(
        report["deleteStatus"],
        serde_json::json!([200, 200]),
        "{report}"
    );
    assert!(shot.is_file(), "screenshot kept");
    beats.abort();
}
