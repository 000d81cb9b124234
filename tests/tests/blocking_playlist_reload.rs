//! Blocking playlist reload (RFC 8216bis §6.2.5.2): a request for the next
//! part is answered within one part target of that part's completion; a
//! request too far ahead gets 400; malformed directives get 400.

use std::time::Duration;

use livestack_test_harness::{
    VideoCodec, encode_source,
    hls::{HttpClient, MediaPlaylist},
    publish, start_origin, workdir,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_part_is_answered_within_one_part_target() {
    let dir = workdir();
    let source = encode_source(dir.path(), VideoCodec::H264, 8);
    let origin = start_origin(|_| {}).await;
    let base = format!("http://{}/live/blk", origin.http_addr);
    let mut ffmpeg = publish(origin.srt_addr, "live/blk", &source);

    // The origin's own record of when each part became available is the
    // reference (same process).
    let stream = loop {
        if let Some(s) = origin.streams.get("blk") {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let client = HttpClient::new();
    let mut pl = loop {
        let r = client.get(&format!("{base}/video.m3u8")).await;
        if r.status == 200 {
            break MediaPlaylist::parse(std::str::from_utf8(&r.body).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Too far ahead: more than two segments beyond the last one.
    let (last_msn, _) = pl.last_part().expect("a part");
    let r = client
        .get(&format!("{base}/video.m3u8?_HLS_msn={}", last_msn + 3))
        .await;
    assert_eq!(r.status, 400, "msn too far ahead");
    let r = client.get(&format!("{base}/video.m3u8?_HLS_part=1")).await;
    assert_eq!(r.status, 400, "_HLS_part without _HLS_msn");
    let r = client.get(&format!("{base}/video.m3u8?_HLS_msn=abc")).await;
    assert_eq!(r.status, 400, "non-numeric _HLS_msn");

    let part_target = Duration::from_secs_f64(pl.part_target.expect("PART-TARGET"));
    let mut delays = Vec::new();
    while !pl.endlist && delays.len() < 20 {
        let (msn, part) = pl.last_part().expect("a part");
        let r = client
            .get(&format!(
                "{base}/video.m3u8?_HLS_msn={msn}&_HLS_part={}",
                part + 1
            ))
            .await;
        assert_eq!(r.status, 200);
        pl = MediaPlaylist::parse(std::str::from_utf8(&r.body).unwrap());
        let got = pl.last_part().expect("a part");
        assert!(got > (msn, part), "the answer holds a newer part");
        if pl.endlist {
            break;
        }
        // When the origin made the part available (recorded by the origin
        // as it applied the part, in this process).
        let at = stream
            .snapshot()
            .rendition(livestack_origin::packager::Rendition::VIDEO)
            .and_then(|v| v.available_at(got.0, got.1))
            .expect("the origin recorded when the part became available");
        delays.push(r.received.saturating_duration_since(at));
    }
    assert!(delays.len() >= 10, "followed {} parts", delays.len());
    for d in &delays {
        assert!(
            *d <= part_target,
            "a blocking reload was answered {d:?} after its part completed (part target {part_target:?}); all: {delays:?}"
        );
    }

    // A preload-hinted part request is held until the part is complete.
    let hint = pl.preload_hint.clone().expect("preload hint");
    let r = client.get(&format!("{base}/{hint}")).await;
    assert_eq!(r.status, 200, "hinted part {hint}");
    assert!(!r.body.is_empty());

    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}
