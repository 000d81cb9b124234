//! ffmpeg publishes H.264 with two AAC tracks in two languages (MPEG-TS
//! ISO_639_language_descriptors `eng` and `fra`) over SRT; the multivariant
//! playlist lists both as audio renditions of one group (RFC 8216bis
//! §4.4.6.1) with their languages, and ffprobe decodes every audio frame
//! from each rendition's media playlist.

use std::{path::Path, process::Command, time::Duration};

use livestack_test_harness::{
    count_frames, decode_errors,
    hls::{Followed, HttpClient, follow},
    publish, require, start_origin, workdir,
};

/// 6 s of video, a 440 Hz English and an 880 Hz French AAC track.
fn encode_two_languages(dir: &Path) -> std::path::PathBuf {
    require("ffmpeg");
    let out = dir.join("two-languages.ts");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=f=440:sample_rate=48000"])
        .args(["-f", "lavfi", "-i", "sine=f=880:sample_rate=48000"])
        .args(["-map", "0", "-map", "1", "-map", "2"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "25"])
        .args([
            "-keyint_min",
            "25",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "64k"])
        .args(["-metadata:s:a:0", "language=eng"])
        .args(["-metadata:s:a:1", "language=fra"])
        .args(["-t", "6", "-f", "mpegts"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed to encode the source");
    out
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

/// The value of attribute `name` in an attribute list, unquoted.
fn attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[start..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next(),
        None => rest.split(',').next(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_audio_languages_both_play() {
    let dir = workdir();
    let source = encode_two_languages(dir.path());
    let published_audio = count_frames(&source, "a");
    assert!(published_audio > 200, "6 s of 48 kHz AAC");

    let origin = start_origin(|_| {}).await;
    let base = format!("http://{}/live/langs", origin.http_addr);
    let mut ffmpeg = publish(origin.srt_addr, "#!::r=live/langs,m=publish", &source);

    // The multivariant playlist is final once every rendition has a part;
    // poll until both languages are listed.
    let client = HttpClient::new();
    let mut index = String::new();
    for _ in 0..100 {
        let r = client.get(&format!("{base}/index.m3u8")).await;
        if r.status == 200 {
            index = String::from_utf8(r.body.to_vec()).expect("utf-8");
            if index.contains("LANGUAGE=\"eng\"") && index.contains("LANGUAGE=\"fra\"") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let media: Vec<&str> = index
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .collect();
    assert_eq!(media.len(), 2, "two audio renditions: {index}");
    let group = attribute(media[0], "GROUP-ID").expect("GROUP-ID");
    assert_eq!(attribute(media[1], "GROUP-ID"), Some(group), "{index}");
    assert_eq!(attribute(media[0], "LANGUAGE"), Some("eng"), "{index}");
    assert_eq!(attribute(media[1], "LANGUAGE"), Some("fra"), "{index}");
    assert_eq!(attribute(media[0], "DEFAULT"), Some("YES"), "{index}");
    assert_eq!(attribute(media[1], "DEFAULT"), Some("NO"), "{index}");
    let stream_inf: Vec<&str> = index
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(stream_inf.len(), 1, "one video rendition: {index}");
    assert_eq!(attribute(stream_inf[0], "AUDIO"), Some(group), "{index}");
    // The first audio rendition keeps the historic URI.
    let uris: Vec<&str> = media
        .iter()
        .map(|l| attribute(l, "URI").expect("URI"))
        .collect();
    assert_eq!(uris[0], "audio.m3u8", "{index}");
    assert_ne!(uris[0], uris[1], "{index}");

    let limit = Duration::from_secs(60);
    let (eng_url, fra_url) = (format!("{base}/{}", uris[0]), format!("{base}/{}", uris[1]));
    let (eng, fra) = tokio::join!(
        follow(&client, &eng_url, limit),
        follow(&client, &fra_url, limit),
    );
    let status = ffmpeg.wait().expect("ffmpeg exits");
    assert!(status.success(), "ffmpeg publisher failed");

    for (name, f) in [("eng", &eng), ("fra", &fra)] {
        assert_eq!(f.playlists[0].media_sequence, 0, "{name} joined late");
        let file = assemble(dir.path(), &format!("{name}.mp4"), f);
        assert_eq!(decode_errors(&file), "", "{name} decodes cleanly");
        assert_eq!(
            count_frames(&file, "a"),
            published_audio,
            "{name}: every audio frame"
        );
        let live = &f.playlists[f.playlists.len() / 2];
        assert!(
            live.rendition_reports.len() >= 2,
            "{name}: reports of the video and the other language"
        );
    }
}
