//! One client address cannot park requests without bound (issue 9): with
//! `max_held_requests_per_address` = 3, three blocking playlist reloads
//! from 127.0.0.1 wait for the next part, a fourth is answered at once with
//! 429 and `Retry-After`, and the three waiting ones get their playlist when
//! the part arrives. The edge applies the same cap to its own viewers'
//! addresses (an edge's requests to the origin all come from one address,
//! so the origin's cap cannot tell its viewers apart).

use std::time::Duration;

use livestack_test_harness::{
    VideoCodec, encode_source,
    hls::{HttpClient, MediaPlaylist},
    publish,
    registry::play_token,
    start_edge_with, start_origin, workdir,
};

/// Against `url` (a media playlist; `token`, if any, sent with every
/// request as the `token` query parameter): three blocking reloads of the next segment from
/// this address wait (`waiting()` reaches 3), a fourth is refused at once
/// with 429 and `Retry-After: 1` (`refused()` becomes 1), the three get
/// the playlist holding that segment, and then the places are free again.
async fn a_fourth_is_refused(
    url: &str,
    token: Option<&str>,
    waiting: impl Fn() -> usize,
    refused: impl Fn() -> u64,
) {
    // `url` with the query `params` (and the token).
    let with = |params: &str| {
        let token = token.map(|t| format!("token={t}"));
        let query: Vec<&str> = [Some(params), token.as_deref()]
            .into_iter()
            .flatten()
            .filter(|p| !p.is_empty())
            .collect();
        if query.is_empty() {
            url.to_owned()
        } else {
            format!("{url}?{}", query.join("&"))
        }
    };
    let client = HttpClient::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let r = client.get(&with("")).await;
        if r.status == 200 {
            break String::from_utf8(r.body.to_vec()).expect("utf-8");
        }
        assert!(tokio::time::Instant::now() < deadline, "no stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The segment after the open one: about a segment away, so the
    // requests are held for a while.
    let (msn, _) = MediaPlaylist::parse(&text).last_part().expect("parts");
    let blocking = with(&format!("_HLS_msn={}", msn + 1));

    let held: Vec<_> = (0..3)
        .map(|_| {
            let (client, blocking) = (client.clone(), blocking.clone());
            tokio::spawn(async move { client.get(&blocking).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while waiting() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the three requests never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = client.get(&blocking).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(refused(), 1);
    for h in held {
        let r = h.await.expect("held request");
        assert_eq!(r.status, 200, "a held request is answered");
        let pl = MediaPlaylist::parse(std::str::from_utf8(&r.body).expect("utf-8"));
        assert!(
            pl.segments
                .iter()
                .any(|s| s.msn == msn + 1 && s.uri.is_some())
        );
    }
    // The places are free again.
    let r = client.get(&with(&format!("_HLS_msn={}", msn + 2))).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_held_request_from_one_address_is_refused() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 20);
    let origin = start_origin(|c| c.limits.max_held_requests_per_address = 3).await;
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/held,m=publish", &source);
    let url = format!("http://{}/live/held/video.m3u8", origin.http_addr);
    a_fourth_is_refused(
        &url,
        None,
        || origin.metrics.blocked_requests.get() as usize,
        || origin.metrics.held_requests_refused.get(),
    )
    .await;
    ffmpeg.kill().expect("kill ffmpeg");
    let _ = ffmpeg.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_held_request_from_one_address_is_refused_at_the_edge() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 20);
    let origin = start_origin(|_| {}).await;
    let edge = start_edge_with(origin.http_addr, |c| {
        c.listener.max_held_requests_per_address = 3;
    })
    .await;
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/eheld,m=publish", &source);
    let url = format!("http://{}/live/eheld/video.m3u8", edge.http_addr);
    let token = play_token("eheld");
    let loopback = "127.0.0.1".parse().expect("addr");
    a_fourth_is_refused(
        &url,
        Some(&token),
        || edge.held_requests(loopback),
        || edge.metrics.held_requests_refused.get(),
    )
    .await;
    assert_eq!(edge.held_requests(loopback), 0, "the places are free again");
    ffmpeg.kill().expect("kill ffmpeg");
    let _ = ffmpeg.wait();
}
