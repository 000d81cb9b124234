//! Playlists rendered by the origin (`livestack-hls`) go through the edge
//! with the token on every URI and nothing else changed.

use std::time::Duration;

use bytes::Bytes;
use livestack_hls::{
    AudioRendition, MediaPlaylist, PlaylistConfig, RenditionReport, SkipRequest, Variant,
    render_multivariant,
};
use livestack_manifest::{RewriteOptions, rewrite};

const TOKEN: &str = "token=eyJhbGciOiJIUzI1NiJ9.e30.c2ln";

fn opts() -> RewriteOptions {
    RewriteOptions {
        token_query: Some(TOKEN.into()),
        ..RewriteOptions::default()
    }
}

/// Every URI of a playlist: URI lines and quoted `URI="…"` attributes.
fn uris(text: &str) -> Vec<&str> {
    let mut uris = Vec::new();
    for line in text.lines() {
        if !line.starts_with('#') {
            if !line.trim().is_empty() {
                uris.push(line.trim());
            }
            continue;
        }
        for piece in line
            .split(",URI=\"")
            .skip(1)
            .chain(line.split(":URI=\"").skip(1))
        {
            // split always yields one item.
            uris.push(piece.split('"').next().unwrap_or_default());
        }
    }
    uris
}

/// Checks the rewrite of an origin playlist; returns the URI count.
fn check(input: &str) -> usize {
    let out = rewrite(input, &opts()).expect("origin playlists are valid");
    let before = uris(input);
    let after = uris(&out);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            *a,
            format!("{b}?{TOKEN}"),
            "every origin URI is relative and query-less"
        );
    }
    assert_eq!(out.matches(TOKEN).count(), before.len());
    assert_eq!(out.replace(&format!("?{TOKEN}"), ""), input);
    before.len()
}

#[test]
fn live_media_playlist_with_parts_hint_and_reports() {
    let mut playlist = MediaPlaylist::new(PlaylistConfig {
        target_duration: Duration::from_secs(2),
        part_target: Duration::from_millis(500),
        uri_prefix: "video/".into(),
        window_segments: 10,
        ..PlaylistConfig::default()
    })
    .expect("valid config");
    playlist.set_init(Bytes::from_static(b"init"));
    let mut now_ms = 1_795_273_200_000;
    for segment in 0..12 {
        for part in 0..4 {
            playlist.push_part(
                Bytes::from_static(b"part"),
                Duration::from_millis(500),
                part == 0,
                now_ms,
            );
            now_ms += 500;
        }
        if segment < 11 {
            playlist.close_segment();
        }
    }
    let reports = [RenditionReport {
        uri: "audio.m3u8".into(),
        last_msn: 11,
        last_part: 3,
    }];
    let text = playlist.render(SkipRequest::No, &reports);
    assert!(text.contains("#EXT-X-PRELOAD-HINT:") && text.contains("#EXT-X-RENDITION-REPORT:"));
    assert!(text.contains("#EXT-X-MAP:") && text.contains("#EXT-X-PART:"));
    let count = check(&text);
    // map + 10 segments + parts of the segments within 3 target
    // durations (2 closed + the open one: 12) + hint + report.
    assert_eq!(count, 1 + 10 + 12 + 1 + 1, "{text}");

    playlist.end();
    check(&playlist.render(SkipRequest::No, &[]));
}

#[test]
fn multivariant_playlist() {
    let audio = [AudioRendition {
        group_id: "aac".into(),
        name: "English".into(),
        uri: "audio.m3u8".into(),
        default: true,
        language: Some("en".into()),
        channels: Some(2),
    }];
    let variants = [
        Variant {
            uri: "video.m3u8".into(),
            bandwidth: 3_200_000,
            average_bandwidth: None,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            resolution: Some((1280, 720)),
            frame_rate: Some(30.0),
            audio_group: Some("aac".into()),
        },
        Variant {
            uri: "video_360.m3u8".into(),
            bandwidth: 900_000,
            average_bandwidth: None,
            codecs: "avc1.42c01e,mp4a.40.2".into(),
            resolution: Some((640, 360)),
            frame_rate: None,
            audio_group: Some("aac".into()),
        },
    ];
    let text = render_multivariant(&variants, &audio);
    assert_eq!(check(&text), 3);
    let filtered = rewrite(
        &text,
        &RewriteOptions {
            max_height: Some(480),
            ..opts()
        },
    )
    .unwrap();
    assert!(!filtered.contains("video.m3u8"));
    assert!(filtered.contains(&format!("video_360.m3u8?{TOKEN}\n")));
}
