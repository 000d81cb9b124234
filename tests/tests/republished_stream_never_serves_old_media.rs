//! A publisher reconnects under the same name with other encoding
//! parameters (720p, then 480p), viewed through the edge, whose cache keeps
//! init, part and segment URIs as `immutable` (issue 9):
//!
//! - the publisher comes back within the reconnect grace, so the first
//!   session's playlists never end: a viewer that reloads them and stops at
//!   `EXT-X-ENDLIST` (as hls.js does) stays across the change, sees the
//!   Media Sequence Numbers go on and an `EXT-X-DISCONTINUITY` where the new
//!   session starts, and each side of it decodes cleanly at its own
//!   resolution;
//! - no URI of the first session appears in the second, and none names two
//!   different bodies;
//! - a viewer that joins after the change decodes 480p only, every frame;
//! - at the origin, the first session's media URIs answer 404.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use bytes::Bytes;
use livestack_test_harness::{
    VideoCodec, count_frames, decode_errors, encode_source_sized,
    hls::{HttpClient, MediaPlaylist, follow, join},
    publish,
    registry::play_token,
    start_edge, start_origin, workdir,
};

/// `(width, height)` of the first video stream of a file, by ffprobe.
fn resolution(path: &Path) -> (u32, u32) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let (w, h) = text
        .trim()
        .split_once(',')
        .unwrap_or_else(|| panic!("no resolution for {path:?}: {text:?}"));
    (w.parse().expect("width"), h.parse().expect("height"))
}

/// One segment as a reloading viewer saw it.
#[derive(Debug, Clone)]
struct Seen {
    uri: String,
    map: String,
    discontinuity: bool,
}

/// Reloads `url` every 200 ms (a refusal, e.g. a held reload released when
/// the session changed, is retried, as players do) until the first
/// playlist with `EXT-X-ENDLIST`, which must be the second session's: the
/// first one's never ends, the publisher came back within the grace.
/// Records every segment by MSN and downloads each URI once.
async fn stay(client: &HttpClient, url: &str) -> (BTreeMap<u64, Seen>, BTreeMap<String, Bytes>) {
    let mut segments: BTreeMap<u64, Seen> = BTreeMap::new();
    let mut bodies: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut first_session: Option<String> = None;
    let mut gone: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second session never ended"
        );
        let r = client.get(url).await;
        if r.status == 200 {
            let text = String::from_utf8(r.body.to_vec()).expect("utf-8");
            let pl = MediaPlaylist::parse(&text);
            for seg in &pl.segments {
                let (Some(uri), Some(map)) = (&seg.uri, &seg.map) else {
                    continue;
                };
                first_session.get_or_insert_with(|| session_dir(uri).to_owned());
                let seen = Seen {
                    uri: uri.clone(),
                    map: map.clone(),
                    discontinuity: seg.discontinuity,
                };
                let before = segments.entry(seg.msn).or_insert_with(|| seen.clone());
                assert_eq!(
                    (&before.uri, &before.map),
                    (&seen.uri, &seen.map),
                    "MSN {} named other media after a reload:\n{text}",
                    seg.msn
                );
                for u in [uri, map] {
                    if !bodies.contains_key(u) && !gone.contains(u) {
                        let got = client.get(&join(url, u)).await;
                        // A playlist of the first session, still cached for
                        // a second at the edge after the second began, may
                        // list what the origin no longer has: a 404, as a
                        // player sees it too, never other bytes.
                        if got.status == 404 && Some(session_dir(u)) == first_session.as_deref() {
                            gone.push(u.clone());
                            continue;
                        }
                        assert_eq!(got.status, 200, "GET {u}");
                        bodies.insert(u.clone(), got.body);
                    }
                }
            }
            let last = pl.segments.last().and_then(|s| s.uri.as_deref());
            if pl.endlist {
                let (Some(last), Some(first)) = (last, &first_session) else {
                    panic!("an ended playlist without segments:\n{text}");
                };
                assert_ne!(
                    session_dir(last),
                    first,
                    "the first session ended before its publisher came back:\n{text}"
                );
                return (segments, bodies);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes the init of the first segment then every segment of `run`.
fn assemble(dir: &Path, name: &str, run: &[&Seen], bodies: &BTreeMap<String, Bytes>) -> PathBuf {
    let path = dir.join(name);
    let first = run.first().expect("a non-empty run");
    let mut bytes = bodies[&first.map].to_vec();
    for seen in run {
        assert_eq!(seen.map, first.map, "one init section per run");
        // Segments of the first session that were gone by the time the
        // viewer asked are skipped, as a player skips them.
        if let Some(body) = bodies.get(&seen.uri) {
            bytes.extend_from_slice(body);
        }
    }
    std::fs::write(&path, bytes).expect("write");
    path
}

/// The session directory of a media URI (`video/SESSION/seg3.m4s` →
/// `video/SESSION`), the query (the edge's token) dropped.
fn session_dir(uri: &str) -> &str {
    let path = uri.split('?').next().unwrap_or(uri);
    &path[..path.rfind('/').expect("a directory")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republished_stream_never_serves_the_old_sessions_media() {
    let dir = workdir();
    let hd = encode_source_sized(dir.path(), VideoCodec::H264, 6, (1280, 720));
    let sd = encode_source_sized(dir.path(), VideoCodec::H264, 6, (854, 480));
    let sd_frames = count_frames(&sd, "v");
    let origin = start_origin(|c| {
        c.hls.reconnect_grace = livestack_origin::config::HlsConfig::default().reconnect_grace;
    })
    .await;
    let edge = start_edge(origin.http_addr).await;
    let token = play_token("rc");
    let client = HttpClient::new();
    let video = format!("http://{}/live/rc/video.m3u8?token={token}", edge.http_addr);

    // The viewer that stays, reloading through both sessions.
    let staying = {
        let (client, video) = (client.clone(), video.clone());
        tokio::spawn(async move { stay(&client, &video).await })
    };

    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/rc,m=publish", &hd);
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    // The publisher is gone; within the grace the playlist stays open.
    let at_origin = format!("http://{}/live/rc/video.m3u8", origin.http_addr);
    let r = client.get(&at_origin).await;
    let text = String::from_utf8(r.body.to_vec()).expect("utf-8");
    assert_eq!(r.status, 200, "{text}");
    assert!(!text.contains("#EXT-X-ENDLIST"), "ended at once:\n{text}");
    let old = MediaPlaylist::parse(&text);
    let old_init = old.segments[0].map.clone().expect("a map");
    let old_session = session_dir(&old_init).to_owned();

    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/rc,m=publish", &sd);
    // A viewer that joins the new session, through the edge.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get(&video).await;
        let text = String::from_utf8(r.body.to_vec()).expect("utf-8");
        // The edge may answer from its cache for a second more: wait for
        // the new session's playlist.
        if r.status == 200 && !text.contains(&format!("\"{old_session}/")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new session");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let joined = follow(&client, &video, Duration::from_secs(60)).await;
    assert!(ffmpeg.wait().expect("ffmpeg").success());
    let (segments, bodies) = staying.await.expect("staying viewer");

    // The new viewer: 480p only, every frame, one init section.
    let first_seen = joined.segments.keys().next().copied().expect("segments");
    assert!(
        first_seen > old.segments.last().expect("old segments").msn,
        "the new session continues the MSNs: {first_seen} after {:?}\n{}",
        old.segments.last().map(|s| s.msn),
        joined.playlist_texts[0]
    );
    assert_eq!(joined.inits.len(), 1, "{:?}", joined.inits.keys());
    let file = dir.path().join("joined.mp4");
    let mut bytes = joined.inits.values().next().expect("init").to_vec();
    for (_, seg) in joined.segments.values() {
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&file, bytes).expect("write");
    assert_eq!(resolution(&file), (854, 480));
    assert_eq!(count_frames(&file, "v"), sd_frames, "every frame of 480p");
    assert_eq!(decode_errors(&file), "");

    // The staying viewer: increasing MSNs, one discontinuity where the
    // session changes, and each side decodes on its own.
    let all: Vec<(&u64, &Seen)> = segments.iter().collect();
    let change = all
        .iter()
        .position(|(_, s)| session_dir(&s.uri) != session_dir(&all[0].1.uri))
        .expect("the staying viewer saw both sessions");
    let (before, after) = all.split_at(change);
    assert!(
        after[0].1.discontinuity,
        "EXT-X-DISCONTINUITY at MSN {}",
        after[0].0
    );
    assert!(
        after[1..].iter().all(|(_, s)| !s.discontinuity)
            && before.iter().all(|(_, s)| !s.discontinuity),
        "one discontinuity only"
    );
    let before: Vec<&Seen> = before.iter().map(|(_, s)| *s).collect();
    let after: Vec<&Seen> = after.iter().map(|(_, s)| *s).collect();
    assert!(
        after
            .iter()
            .all(|s| session_dir(&s.uri) == session_dir(&after[0].uri)),
        "two sessions only"
    );
    let hd_file = assemble(dir.path(), "before.mp4", &before, &bodies);
    let sd_file = assemble(dir.path(), "after.mp4", &after, &bodies);
    assert_eq!(resolution(&hd_file), (1280, 720));
    assert_eq!(resolution(&sd_file), (854, 480));
    assert_eq!(decode_errors(&hd_file), "");
    assert_eq!(decode_errors(&sd_file), "");
    // No URI of the new session was one of the old.
    assert!(
        after
            .iter()
            .all(|s| !before.iter().any(|b| b.uri == s.uri || b.map == s.map))
    );

    // The origin no longer serves the first session's media; the edge may
    // still have it cached, and then only with the same bytes.
    let old_url = join(&at_origin, &old_init);
    assert_eq!(client.get(&old_url).await.status, 404, "GET {old_url}");
    let through_edge = client.get(&join(&video, &before[0].map)).await;
    if through_edge.status == 200 {
        assert_eq!(through_edge.body, bodies[&before[0].map]);
    } else {
        assert_eq!(through_edge.status, 404);
    }
}
