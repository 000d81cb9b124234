//! A closed origin (issue 9, "the origin is open behind the edge"): it
//! serves its edges, which present the shared edge credential, and holders
//! of a play key; everyone else gets 401 for media, `/streams` and
//! `/metrics` (which stays on the admin listener). A stream given a play key
//! still plays through the edge, and an edge without the credential gets
//! nothing.

use std::{process::Command, time::Duration};

use livestack_test_harness::{
    VideoCodec, count_frames, encode_source,
    hls::{HttpClient, follow},
    publish,
    registry::play_token,
    start_edge_with, start_origin, workdir,
};
use livestack_tokens::EDGE_CREDENTIAL_HEADER;

const CREDENTIAL: &str = "edge-credential-for-the-e2e-test-0123456789";
const ADMIN_TOKEN: &str = "admin-token-for-the-e2e-test-0123";

/// Creates a play key for `stream` through the admin API; returns its
/// secret.
fn add_play_key(admin: std::net::SocketAddr, stream: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-X", "POST"])
        .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["-H", "Content-Type: application/json"])
        .args([
            "--data",
            &format!(
                r#"{{"stream":"{stream}","scope":"play","secret":"play-secret-0123456789abcdef"}}"#
            ),
        ])
        .arg(format!("http://{admin}/v1/keys"))
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("play-secret-0123456789abcdef"), "{body}");
    "play-secret-0123456789abcdef".to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_origin_serves_its_edges_and_token_holders_only() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 8);
    let published = count_frames(&source, "v");
    let origin = start_origin(|c| {
        c.access.closed = true;
        c.access.edge_credential = Some(CREDENTIAL.into());
        c.admin.listen = "127.0.0.1:0".parse().expect("addr");
        c.admin.token = Some(ADMIN_TOKEN.into());
    })
    .await;
    let admin = origin.admin_addr.expect("admin listener");
    let edge = start_edge_with(origin.http_addr, |c| {
        c.origin_credential = Some(CREDENTIAL.into());
    })
    .await;
    let edge_without = start_edge_with(origin.http_addr, |_| {}).await;
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/shut,m=publish", &source);

    let public = HttpClient::new();
    let as_edge = public.with_header(EDGE_CREDENTIAL_HEADER, CREDENTIAL);
    let wrong = public.with_header(
        EDGE_CREDENTIAL_HEADER,
        "edge-credential-for-the-e2e-test-WRONG-89",
    );
    let o = origin.http_addr;
    let index = format!("http://{o}/live/shut/index.m3u8");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while as_edge.get(&index).await.status != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream never played"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The public, and a wrong credential: nothing, not even the names.
    for client in [&public, &wrong] {
        for path in [
            "/live/shut/index.m3u8",
            "/live/shut/video.m3u8",
            "/streams",
            "/metrics",
        ] {
            let r = client.get(&format!("http://{o}{path}")).await;
            assert_eq!(r.status, 401, "GET {path}");
        }
    }
    // The edge's credential opens all of it.
    let r = as_edge.get(&format!("http://{o}/streams")).await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("\"shut\""));
    // Metrics for the operator: on the admin listener, with its token.
    let r = public.get(&format!("http://{admin}/metrics")).await;
    assert_eq!(r.status, 401);
    let operator = public.with_header("authorization", &format!("Bearer {ADMIN_TOKEN}"));
    let r = operator.get(&format!("http://{admin}/metrics")).await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("livestack_origin_publishers"));

    // A play key: its holders may read the origin directly; the edge's
    // viewers still play (the edge verified their own tokens).
    let secret = add_play_key(admin, "shut");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let direct = format!("http://{o}/live/shut/video.m3u8?token={secret}");
    while public.get(&direct).await.status != 200 {
        // The origin's key cache refreshes within its TTL.
        assert!(
            tokio::time::Instant::now() < deadline,
            "the play key never opened it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let token = play_token("shut");
    let through_edge = format!(
        "http://{}/live/shut/video.m3u8?token={token}",
        edge.http_addr
    );
    let followed = follow(&public, &through_edge, Duration::from_secs(60)).await;
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    let file = dir.path().join("edge.mp4");
    let mut bytes = followed.inits.values().next().expect("an init").to_vec();
    for (_, seg) in followed.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).expect("write");
    assert_eq!(
        count_frames(&file, "v"),
        published,
        "every frame through the edge"
    );

    // An edge without the credential gets nothing from this origin.
    let r = public
        .get(&format!(
            "http://{}/live/shut/video.m3u8?token={token}",
            edge_without.http_addr
        ))
        .await;
    assert_ne!(r.status, 200);

    // An edge refuses to start with a credential the origins would refuse.
    let mut config = livestack_edge_server::EdgeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        format!("http://{o}").parse().expect("origin url"),
        livestack_test_harness::EDGE_TEST_KEYS,
    );
    config.origin_credential = Some("too-short".into());
    assert!(matches!(
        livestack_edge_server::Edge::start(config).await,
        Err(livestack_edge_server::EdgeError::OriginCredential)
    ));
}
