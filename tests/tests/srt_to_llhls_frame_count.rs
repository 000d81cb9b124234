//! ffmpeg publishes H.264 (B-frames) or H.265 + AAC over SRT with a
//! streamid; a client follows the LL-HLS playlists while the stream is live
//! and downloads every part and segment; ffprobe then counts exactly the
//! frames that were published, with no decode errors.

use std::{path::Path, time::Duration};

use livestack_test_harness::{
    VideoCodec, count_frames, decode_errors, encode_source,
    hls::{Followed, HttpClient, follow},
    publish, start_origin, workdir,
};

/// Polls `url` until it answers 200; returns the body.
async fn wait_ok(client: &HttpClient, url: &str) -> String {
    for _ in 0..150 {
        let r = client.get(url).await;
        if r.status == 200 {
            return String::from_utf8(r.body.to_vec()).expect("utf-8");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered 200");
}

/// Writes init + every segment in order; returns the file.
fn assemble(dir: &Path, name: &str, f: &Followed) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut bytes = Vec::new();
    let mut current_map = None;
    for (map, seg) in f.segments.values() {
        if current_map.as_ref() != Some(map) {
            bytes.extend_from_slice(&f.inits[map]);
            current_map = Some(map.clone());
        }
        bytes.extend_from_slice(seg);
    }
    std::fs::write(&path, bytes).expect("write assembled file");
    path
}

/// Every segment equals the concatenation of its parts.
fn parts_make_segments(f: &Followed) -> usize {
    let mut checked = 0;
    for (msn, count) in &f.part_counts {
        let parts: Option<Vec<_>> = (0..*count).map(|i| f.parts.get(&(*msn, i))).collect();
        let Some(parts) = parts else { continue };
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(
            joined,
            f.segments[msn].1.to_vec(),
            "segment {msn} differs from its parts"
        );
        checked += 1;
    }
    checked
}

async fn every_frame_arrives(codec: VideoCodec, video_codec_prefix: &str) {
    let dir = workdir();
    let source = encode_source(dir.path(), codec, 10);
    let published_video = count_frames(&source, "v");
    let published_audio = count_frames(&source, "a");
    assert_eq!(published_video, 250, "10 s at 25 fps");

    let origin = start_origin(|_| {}).await;
    let base = format!("http://{}/live/e2e", origin.http_addr);
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/e2e,m=publish", &source);

    let client = HttpClient::new();
    let index = wait_ok(&client, &format!("{base}/index.m3u8")).await;
    assert!(index.contains("#EXT-X-STREAM-INF:"), "{index}");
    assert!(index.contains(video_codec_prefix), "{index}");
    assert!(index.contains("mp4a.40.2"), "{index}");
    assert!(index.contains("RESOLUTION=640x360"), "{index}");
    assert!(index.contains("FRAME-RATE=25.000"), "{index}");
    assert!(index.contains("#EXT-X-MEDIA:TYPE=AUDIO"), "{index}");

    let limit = Duration::from_secs(60);
    let (video_url, audio_url) = (format!("{base}/video.m3u8"), format!("{base}/audio.m3u8"));
    let (video, audio) = tokio::join!(
        follow(&client, &video_url, limit),
        follow(&client, &audio_url, limit),
    );
    let status = ffmpeg.wait().expect("ffmpeg exits");
    assert!(status.success(), "ffmpeg publisher failed");

    for (name, f) in [("video", &video), ("audio", &audio)] {
        // Joined at the start: nothing was missed before the first playlist.
        assert_eq!(f.playlists[0].media_sequence, 0, "{name} joined late");
        let first = &f.playlists[0];
        assert!(
            first.endlist || first.preload_hint.is_some(),
            "{name}: live playlists carry a preload hint"
        );
        let sc = first
            .server_control
            .as_deref()
            .expect("EXT-X-SERVER-CONTROL");
        assert!(sc.contains("CAN-BLOCK-RELOAD=YES"), "{sc}");
        assert!(sc.contains("PART-HOLD-BACK="), "{sc}");
        assert!(sc.contains("CAN-SKIP-UNTIL="), "{sc}");
        let msns: Vec<u64> = f.segments.keys().copied().collect();
        let expected: Vec<u64> = (0..msns.len() as u64).collect();
        assert_eq!(msns, expected, "{name}: every segment from 0 was fetched");
        assert!(
            parts_make_segments(f) >= 3,
            "{name}: parts were checked against segments"
        );
        assert!(
            f.blocking.len() >= 10,
            "{name}: the client followed with blocking reloads"
        );
    }
    // Every video segment starts with an independent part (GOP = segment).
    for pl in &video.playlists {
        for seg in &pl.segments {
            if let Some(first) = seg.parts.first() {
                assert!(
                    first.independent,
                    "segment {} starts without INDEPENDENT=YES",
                    seg.msn
                );
            }
        }
    }
    // Every live playlist has a program date time and rendition report.
    let live = &video.playlists[video.playlists.len() / 2];
    assert!(live.segments[0].program_date_time.is_some());
    assert!(
        !live.rendition_reports.is_empty(),
        "rendition report to audio"
    );

    let video_file = assemble(dir.path(), "video.mp4", &video);
    let audio_file = assemble(dir.path(), "audio.mp4", &audio);
    assert_eq!(decode_errors(&video_file), "", "video decodes cleanly");
    assert_eq!(decode_errors(&audio_file), "", "audio decodes cleanly");
    assert_eq!(
        count_frames(&video_file, "v"),
        published_video,
        "video frames"
    );
    assert_eq!(
        count_frames(&audio_file, "a"),
        published_audio,
        "audio frames"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_with_b_frames_and_aac_every_frame_arrives() {
    every_frame_arrives(VideoCodec::H264, "avc1.64").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_with_b_frames_and_aac_every_frame_arrives() {
    every_frame_arrives(VideoCodec::H265, "hvc1.").await;
}
