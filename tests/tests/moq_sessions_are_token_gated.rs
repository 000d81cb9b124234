//! Token-gated Media over QUIC: stream `vip` has a key (publish and play), stream
//! `free` none. Over MoQ, a session without a token sees `free` and never
//! `vip`; a WebTransport session with `?token=` sees `vip` when the token
//! is the play key or a session token the edge's signaling would mint for
//! this node (CTA-5007 CAT, `aud` = the node id), and not with a wrong
//! key, a token for another stream, or a token for another node. A MoQ
//! publish (moq-dev's CLI) of a stream with a publish key is refused with
//! a wrong token and admitted with the edge's publish session token.

use std::time::Duration;

use livestack_control::{ControlPlane, MemoryControlPlane, Scope, StreamKey};
use livestack_test_harness::{
    EDGE_TEST_KEYS, VideoCodec, encode_source, hls::HttpClient, moq_import_ts, publish,
    quic::MoqSubscriber, registry::metric, start_origin_in, wait_live, workdir,
};
use livestack_tokens::{Access, KeySet, MintRequest, mint_cat};

const PLAY_KEY: &str = "vip-play-key-0123456789abcdef";
const NODE: &str = "origin-token-test";

/// A session token as the edge's signaling mints it: stream, play, this
/// (or another) node as audience, five minutes.
fn session_token(stream: &str, node: &str) -> String {
    session_token_for(stream, node, Access::Play)
}

/// As [`session_token`], for `access`.
fn session_token_for(stream: &str, node: &str, access: Access) -> String {
    let keys: KeySet = EDGE_TEST_KEYS.parse().expect("keys");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let mut req = MintRequest::for_stream(stream, access, now, 300, b"session-1".to_vec())
        .expect("mint request");
    req.claims.aud = vec![node.to_owned()];
    mint_cat(&req, &keys).expect("mint")
}

/// Video frames of `name` a session gets within `wait`: `Err` when the
/// broadcast never resolves or its track is refused.
async fn frames(client: &MoqSubscriber, name: &str, wait: Duration) -> Result<usize, String> {
    tokio::time::timeout(wait, async {
        let broadcast = client.broadcast(name).await?;
        let mut video = MoqSubscriber::subscribe(&broadcast, "video").await?;
        let mut got = 0;
        while got < 10 {
            let Some(mut group) = video.recv_group().await.map_err(|e| e.to_string())? else {
                break;
            };
            while let Ok(Some(_)) = group.read_frame().await {
                got += 1;
            }
        }
        Ok(got)
    })
    .await
    .map_err(|_| format!("{name}: nothing within {wait:?}"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_sessions_see_what_their_token_opens() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 30);
    let control = MemoryControlPlane::new();
    control
        .create_key(&StreamKey {
            id: "k-vip".into(),
            stream: "vip".into(),
            secret: PLAY_KEY.into(),
            scope: Scope::Both,
            expires_at: None,
            created_at: 0,
        })
        .await
        .expect("play key");
    let origin = start_origin_in(control.clone() as std::sync::Arc<dyn ControlPlane>, |c| {
        c.webtransport = Some("127.0.0.1:0".parse().expect("addr"));
        c.cluster.node_id = NODE.into();
        c.access.session_keys = Some(EDGE_TEST_KEYS.into());
    })
    .await;
    let wt = origin.webtransport_addr.expect("MoQ listener");
    let hash = origin.certificate_sha256.clone().expect("hash");
    let mut vip = publish(
        origin.srt_addr,
        &format!("#!::r=live/vip,m=publish,t={PLAY_KEY}"),
        &source,
    );
    let mut free = publish(origin.srt_addr, "#!::r=live/free,m=publish", &source);
    wait_live(origin.http_addr, "free").await;
    // vip needs its key over HTTP too.
    let http = HttpClient::new();
    let vip_url = format!("http://{}/live/vip/index.m3u8", origin.http_addr);
    assert_eq!(http.get(&vip_url).await.status, 401);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = http.get(&format!("{vip_url}?token={PLAY_KEY}")).await;
        if r.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "vip not live: {} {:?}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let short = Duration::from_secs(3);
    let long = Duration::from_secs(20);

    // No token (raw QUIC and WebTransport alike): free plays, vip never
    // appears.
    let raw = MoqSubscriber::connect(wt, moq_net::ALPNS, &hash)
        .await
        .expect("raw QUIC session");
    assert!(
        frames(&raw, "free", long)
            .await
            .expect("free over raw QUIC")
            >= 10
    );
    assert!(
        frames(&raw, "vip", short).await.is_err(),
        "vip without a token"
    );
    let url = format!("https://{wt}/moq");
    let anonymous = MoqSubscriber::connect_webtransport(&url, &hash)
        .await
        .expect("WebTransport session");
    assert!(
        frames(&anonymous, "vip", short).await.is_err(),
        "vip without a token"
    );

    // The play key, and the edge's session token for this node: vip plays.
    for token in [PLAY_KEY.to_owned(), session_token("vip", NODE)] {
        let s = MoqSubscriber::connect_webtransport(&format!("{url}?token={token}"), &hash)
            .await
            .expect("WebTransport session with a token");
        assert!(
            frames(&s, "vip", long).await.expect("vip with its token") >= 10,
            "vip with {token:.12}…"
        );
        // A token session still sees the open streams.
        assert!(frames(&s, "free", long).await.expect("free with a token") >= 10);
    }

    // A wrong key, a token for another stream, a token for another node.
    for token in [
        "not-the-key-0123456789".to_owned(),
        session_token("free", NODE),
        session_token("vip", "another-origin"),
    ] {
        let s = MoqSubscriber::connect_webtransport(&format!("{url}?token={token}"), &hash)
            .await
            .expect("WebTransport session");
        assert!(
            frames(&s, "vip", short).await.is_err(),
            "vip refused with {token:.12}…"
        );
    }
    let _ = vip.kill();
    let _ = free.kill();
    let _ = (vip.wait(), free.wait());

    // Publishing `stage` (a publish key of its own) over MoQ: refused with
    // a wrong token, admitted with the edge's publish session token.
    control
        .create_key(&StreamKey {
            id: "k-stage".into(),
            stream: "stage".into(),
            secret: "stage-publish-key-0123456789".into(),
            scope: Scope::Publish,
            expires_at: None,
            created_at: 0,
        })
        .await
        .expect("publish key");
    let plain = dir.path().join("plain.ts");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&source)
        .args(["-c:v", "libx264", "-bf", "0", "-g", "25", "-c:a", "copy"])
        .args(["-t", "8", "-f", "mpegts"])
        .arg(&plain)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let metrics = || async {
        let body = http
            .get(&format!("http://{}/metrics", origin.http_addr))
            .await
            .body;
        String::from_utf8(body.to_vec()).expect("utf-8")
    };
    for (token, outcome) in [
        ("wrong-publish-key-0123456789".to_owned(), "forbidden"),
        (
            session_token_for("stage", NODE, Access::Publish),
            "accepted",
        ),
    ] {
        let (mut feed, mut import) = moq_import_ts(
            &format!("{url}?token={token}"),
            &hash,
            "stage",
            &plain,
            None,
        );
        let label = format!("livestack_origin_moq_publishes_total{{outcome=\"{outcome}\"}}");
        let deadline = tokio::time::Instant::now() + long;
        while metric(&metrics().await, &label) < 1.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {outcome} publish: {}",
                metrics()
                    .await
                    .lines()
                    .filter(|l| l.contains("moq_publishes"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if outcome == "accepted" {
            wait_live(origin.http_addr, "stage").await;
        }
        let _ = import.kill();
        let _ = feed.kill();
        let _ = (import.wait(), feed.wait());
    }
}
