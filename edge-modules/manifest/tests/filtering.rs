//! Variant filtering of Multivariant Playlists (RFC 8216bis §4.4.6.2,
//! §4.4.6.3), at playlist level.

use livestack_manifest::{Malformation, ManifestError, RewriteOptions, rewrite};

const MULTIVARIANT: &str = include_str!("data/multivariant.m3u8");

/// The URI lines of the `EXT-X-STREAM-INF` variants and the I-frame
/// playlists left in `text`, in order.
fn variants(text: &str) -> (Vec<&str>, Vec<&str>) {
    let mut streams = Vec::new();
    let mut iframes = Vec::new();
    let mut after_stream_inf = false;
    for line in text.lines() {
        if line.starts_with("#EXT-X-STREAM-INF:") {
            after_stream_inf = true;
        } else if let Some(rest) = line.strip_prefix("#EXT-X-I-FRAME-STREAM-INF:") {
            let uri = rest
                .split("URI=\"")
                .nth(1)
                .and_then(|u| u.split('"').next());
            // Test helper: a variant without URI is recorded as empty (asserted below).
            iframes.push(uri.unwrap_or_default());
        } else if after_stream_inf && !line.starts_with('#') && !line.is_empty() {
            streams.push(line);
            after_stream_inf = false;
        }
    }
    (streams, iframes)
}

#[test]
fn filter_table() {
    let all = [
        "video/360.m3u8",
        "http://origin:8080/live/video/720.m3u8",
        "video/1080.m3u8",
        "video/2160.m3u8?profile=main10",
    ];
    let iframes_all = [
        "video/360-iframes.m3u8",
        "video/1080-iframes.m3u8",
        "https://other-cdn.example/2160-iframes.m3u8",
    ];
    let table: [(&str, RewriteOptions, &[usize], &[usize]); 7] = [
        (
            "no filter",
            RewriteOptions::default(),
            &[0, 1, 2, 3],
            &[0, 1, 2],
        ),
        (
            "max_bandwidth 3.2 Mbit/s (inclusive)",
            RewriteOptions {
                max_bandwidth: Some(3_200_000),
                ..RewriteOptions::default()
            },
            &[0, 1],
            &[0, 1, 2],
        ),
        (
            "max_bandwidth 500 kbit/s",
            RewriteOptions {
                max_bandwidth: Some(500_000),
                ..RewriteOptions::default()
            },
            // Everything is above: the lowest-bandwidth variant stays.
            &[0],
            &[0],
        ),
        (
            "max_height 720",
            RewriteOptions {
                max_height: Some(720),
                ..RewriteOptions::default()
            },
            &[0, 1],
            &[0],
        ),
        (
            "avc1+mp4a only",
            RewriteOptions {
                allowed_codecs: vec!["avc1".into(), "mp4a".into()],
                ..RewriteOptions::default()
            },
            &[0, 1, 2],
            &[0, 1],
        ),
        (
            "hvc1+mp4a only",
            RewriteOptions {
                allowed_codecs: vec!["hvc1".into(), "mp4a".into()],
                ..RewriteOptions::default()
            },
            &[3],
            &[2],
        ),
        (
            "combined: max 8 Mbit/s and 1080p, baseline/main/high avc only",
            RewriteOptions {
                max_bandwidth: Some(8_000_000),
                max_height: Some(1080),
                allowed_codecs: vec!["avc1.42".into(), "avc1.64".into(), "mp4a.40.2".into()],
                ..RewriteOptions::default()
            },
            &[0, 1, 2],
            &[0, 1],
        ),
    ];
    for (name, opts, streams, iframes) in table {
        let out = rewrite(MULTIVARIANT, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (got_streams, got_iframes) = variants(&out);
        let want_streams: Vec<_> = streams.iter().map(|&i| all[i]).collect();
        let want_iframes: Vec<_> = iframes.iter().map(|&i| iframes_all[i]).collect();
        assert_eq!(got_streams, want_streams, "{name}");
        assert_eq!(got_iframes, want_iframes, "{name}");
        // Renditions and session tags are never filtered.
        assert_eq!(out.matches("#EXT-X-MEDIA:").count(), 3, "{name}");
        assert!(out.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n"), "{name}");
    }
}

#[test]
fn a_dropped_variant_takes_its_comment_lines_with_it() {
    let opts = RewriteOptions {
        max_height: Some(720),
        ..RewriteOptions::default()
    };
    let out = rewrite(MULTIVARIANT, &opts).unwrap();
    assert!(!out.contains("# the 1080p variant"));
    assert!(!out.contains("1080.m3u8\n"));
}

#[test]
fn fallback_keeps_the_lowest_bandwidth_variant_in_place_and_rewrites_it() {
    let input = "#EXTM3U\r\n\
        #EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080\r\n\
        hi.m3u8\r\n\
        #EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\r\n\
        mid.m3u8\r\n\
        #EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\r\n\
        mid-twin.m3u8\r\n\
        #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,RESOLUTION=1280x720,URI=\"if.m3u8\"\r\n\
        #EXT-X-ENDLIST-LIKE-UNKNOWN\r\n";
    let opts = RewriteOptions {
        token_query: Some("t=1".into()),
        max_height: Some(480),
        ..RewriteOptions::default()
    };
    assert_eq!(
        rewrite(input, &opts).unwrap(),
        "#EXTM3U\r\n\
        #EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\r\n\
        mid.m3u8?t=1\r\n\
        #EXT-X-ENDLIST-LIKE-UNKNOWN\r\n"
    );
}

#[test]
fn media_playlists_are_unaffected_by_filters() {
    let input = include_str!("data/ll-hls-media.m3u8");
    let opts = RewriteOptions {
        max_bandwidth: Some(1),
        max_height: Some(1),
        allowed_codecs: vec!["none".into()],
        ..RewriteOptions::default()
    };
    assert_eq!(rewrite(input, &opts).unwrap(), input);
}

#[test]
fn filters_need_a_valid_bandwidth() {
    let input = "#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nv.m3u8\n";
    let opts = RewriteOptions {
        max_height: Some(720),
        ..RewriteOptions::default()
    };
    assert_eq!(
        rewrite(input, &opts),
        Err(ManifestError::Malformed {
            line: 2,
            reason: Malformation::InvalidAttribute("BANDWIDTH")
        })
    );
    // Without a filter the attribute is not interpreted.
    assert_eq!(rewrite(input, &RewriteOptions::default()).unwrap(), input);
}
