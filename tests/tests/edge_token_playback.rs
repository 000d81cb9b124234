//! Through the edge: ffmpeg publishes over SRT to the origin; a client
//! with a CTA-5007 token follows the LL-HLS playlists at the edge; every
//! URI of every playlist carries the token; every frame published arrives;
//! a percent-encoded token is the same token; requests without a token, or
//! with another stream's token, are refused (with the gateway's statuses);
//! and 500 viewers blocked on the next part cost the origin a handful of
//! requests.

use std::time::Duration;

use livestack_test_harness::{
    EDGE_TEST_KEYS, VideoCodec, count_frames, encode_source,
    hls::{HttpClient, follow},
    publish, start_edge, start_origin, workdir,
};
use livestack_tokens::{Access, KeySet, MintRequest, mint_cat};

fn token(stream: &str) -> String {
    let keys: KeySet = EDGE_TEST_KEYS.parse().expect("keys");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let req = MintRequest::for_stream(stream, Access::Play, now, 600, b"e2e-1".to_vec())
        .expect("mint request");
    mint_cat(&req, &keys).expect("mint")
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_with_a_token_get_every_frame_through_the_edge() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 10);
    let published = count_frames(&source, "v");
    let origin = start_origin(|_| {}).await;
    let edge = start_edge(origin.http_addr).await;
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/e2e,m=publish", &source);

    let client = HttpClient::new();
    let tok = token("e2e");
    let base = format!("http://{}/live/e2e", edge.http_addr);
    // Wait for the stream through the edge.
    let mut ready = false;
    for _ in 0..150 {
        let r = client.get(&format!("{base}/index.m3u8?token={tok}")).await;
        if r.status == 200 {
            let text = String::from_utf8(r.body.to_vec()).unwrap();
            assert!(text.contains(&format!("video.m3u8?token={tok}")), "{text}");
            // It carries this viewer's token: no shared cache may keep it
            // for another (RFC 9111 §5.2.2.7), and the token header varies it.
            let cache = r.headers["cache-control"].to_str().unwrap();
            assert!(cache.starts_with("private"), "{cache}");
            assert_eq!(r.headers["vary"], livestack_tokens::TOKEN_HEADER);
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "stream never became available through the edge");

    // Refusals: no token, another stream's token, a tampered token.
    let r = client.get(&format!("{base}/video.m3u8")).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key("x-livestack-reason"));
    let other = token("other");
    let r = client
        .get(&format!("{base}/video.m3u8?token={other}"))
        .await;
    assert_eq!(
        r.status, 403,
        "a token for another stream never opens this one"
    );
    // The reason the gateway component gives too (tests/gateway_on_standard_hosts.rs).
    assert_eq!(r.headers["x-livestack-reason"], "wrong-resource");
    // The same token with every byte percent-encoded is the same token (as
    // on the gateway), and the playlist carries it in its canonical form.
    let encoded: String = tok.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = client
        .get(&format!("{base}/index.m3u8?token={encoded}"))
        .await;
    assert_eq!(r.status, 200, "percent-encoded token");
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(text.contains(&format!("video.m3u8?token={tok}")), "{text}");
    let mut tampered = tok.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let r = client
        .get(&format!("{base}/video.m3u8?token={tampered}"))
        .await;
    assert_eq!(r.status, 401, "tampered token");
    assert_eq!(r.headers["x-livestack-reason"], "bad-signature");

    let limit = Duration::from_secs(60);
    let (video_url, audio_url) = (
        format!("{base}/video.m3u8?token={tok}"),
        format!("{base}/audio.m3u8?token={tok}"),
    );
    // Coalescing: 500 viewers blocked on the same next part at once.
    let origin_metrics = format!("http://{}/metrics", origin.http_addr);
    let before = metric(
        std::str::from_utf8(&client.get(&origin_metrics).await.body).unwrap(),
        "livestack_origin_http_responses_total{route=\"playlist\"",
    );
    let first = livestack_test_harness::hls::MediaPlaylist::parse(
        std::str::from_utf8(&client.get(&video_url).await.body).unwrap(),
    );
    let (msn, part) = first.last_part().expect("a part");
    // A directive the origin would refuse is refused at the edge.
    let r = client.get(&format!("{video_url}&_HLS_msn=x{msn}")).await;
    assert_eq!(r.status, 400, "malformed _HLS_msn");
    // Three spellings of the same directives (`5`, `05`, `%35`): the
    // origin reads them as one request, so the edge keys them as one.
    let percent =
        |n: u64| -> String { n.to_string().bytes().map(|b| format!("%{b:02X}")).collect() };
    let spellings = [
        format!("{video_url}&_HLS_msn={msn}&_HLS_part={}", part + 1),
        format!("{video_url}&_HLS_msn=0{msn}&_HLS_part=00{}", part + 1),
        format!(
            "{video_url}&_HLS_msn={}&_HLS_part={}",
            percent(msn),
            percent(u64::from(part + 1))
        ),
    ];
    let waits: Vec<_> = (0..500)
        .map(|i| {
            let c = client.clone();
            let u = spellings[i % spellings.len()].clone();
            tokio::spawn(async move { c.get(&u).await.status })
        })
        .collect();
    for w in waits {
        assert_eq!(w.await.unwrap(), 200);
    }
    let after = metric(
        std::str::from_utf8(&client.get(&origin_metrics).await.body).unwrap(),
        "livestack_origin_http_responses_total{route=\"playlist\"",
    );
    // One coalesced blocking request, plus the odd non-blocking refresh.
    assert!(
        after - before <= 5.0,
        "500 blocked viewers caused {} origin playlist requests",
        after - before
    );

    let (video, audio) = tokio::join!(
        follow(&client, &video_url, limit),
        follow(&client, &audio_url, limit)
    );
    assert!(ffmpeg.wait().unwrap().success());
    for f in [&video, &audio] {
        for pl in &f.playlists {
            assert!(!pl.uris.is_empty());
            for uri in &pl.uris {
                assert!(
                    uri.contains(&format!("token={tok}")),
                    "URI without the token: {uri}"
                );
            }
        }
    }
    let file = dir.path().join("edge-video.mp4");
    let mut bytes = video.inits.values().next().unwrap().to_vec();
    for (_, seg) in video.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).unwrap();
    assert_eq!(
        count_frames(&file, "v"),
        published,
        "every frame through the edge"
    );
    let edge_metrics = String::from_utf8(
        client
            .get(&format!("http://{}/metrics", edge.http_addr))
            .await
            .body
            .to_vec(),
    )
    .unwrap();
    assert!(
        edge_metrics
            .contains("livestack_edge_component_calls_total{component=\"tokens\",outcome=\"ok\"}"),
        "{edge_metrics}"
    );
    // The 500 waiters, in three spellings, were answered by one fetch:
    // coalesced while it was in flight, cache hits after it landed.
    let shared = metric(
        &edge_metrics,
        "livestack_edge_cache_total{outcome=\"coalesced\"}",
    ) + metric(&edge_metrics, "livestack_edge_cache_total{outcome=\"hit\"}");
    assert!(shared >= 499.0, "{edge_metrics}");
}
