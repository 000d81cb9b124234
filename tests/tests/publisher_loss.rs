//! A publisher that vanishes mid-GOP (killed, no SRT shutdown) ends the
//! stream cleanly: the playlists get EXT-X-ENDLIST once SRT notices the
//! peer is gone, every listed segment is still served, and the origin keeps
//! accepting the next publisher of the same name.

use std::time::{Duration, Instant};

use livestack_test_harness::{
    VideoCodec, encode_source,
    hls::{HttpClient, MediaPlaylist},
    publish, start_origin, workdir,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_publisher_ends_the_stream_and_the_name_is_free_again() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 20);
    let origin = start_origin(|_| {}).await;
    let client = HttpClient::new();
    let url = format!("http://{}/live/gone/video.m3u8", origin.http_addr);

    let mut ffmpeg = publish(origin.srt_addr, "live/gone", &source);
    // Wait until the stream plays, then kill the publisher mid-GOP.
    let start = Instant::now();
    let pl = loop {
        let r = client.get(&url).await;
        if r.status == 200 {
            let pl = MediaPlaylist::parse(std::str::from_utf8(&r.body).unwrap());
            if pl.segments.iter().any(|s| s.uri.is_some()) {
                break pl;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "stream never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!pl.endlist);
    tokio::time::sleep(Duration::from_millis(700)).await;
    ffmpeg.kill().expect("kill ffmpeg");
    let _ = ffmpeg.wait();

    // SRT's peer-idle timeout is 5 s; allow generous slack.
    let ended = loop {
        let r = client.get(&url).await;
        assert_eq!(r.status, 200, "the ended stream lingers");
        let pl = MediaPlaylist::parse(std::str::from_utf8(&r.body).unwrap());
        if pl.endlist {
            break pl;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no EXT-X-ENDLIST after the publisher died"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        ended.preload_hint.is_none(),
        "no preload hint after the end"
    );
    for seg in &ended.segments {
        let uri = seg
            .uri
            .as_ref()
            .expect("every segment is complete after the end");
        let r = client
            .get(&format!("http://{}/live/gone/{uri}", origin.http_addr))
            .await;
        assert_eq!(r.status, 200, "{uri}");
    }

    // The name is free again: a new publisher goes live.
    let mut again = publish(origin.srt_addr, "live/gone", &source);
    let start = Instant::now();
    loop {
        let r = client.get(&url).await;
        if r.status == 200 {
            let pl = MediaPlaylist::parse(std::str::from_utf8(&r.body).unwrap());
            if !pl.endlist && pl.segments.iter().any(|s| s.uri.is_some()) {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "republish never went live"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = again.kill();
    let _ = again.wait();
}
