//! Scenario tests of [`MediaPlaylist`]: rendering golden strings, the
//! blocking-reload table of RFC 8216bis §6.2.5.2, part lookup, windowing,
//! discontinuities and the end of the stream.

use std::time::Duration;

use bytes::Bytes;

use crate::*;

/// 2026-11-21T15:00:00.000Z.
const T0: i64 = 1_795_273_200_000;
const HALF: Duration = Duration::from_millis(500);

/// Target duration 1 s, parts of 500 ms: Advance Part Limit 6, parts listed
/// for segments starting within 3 s of the end, `CAN-SKIP-UNTIL` 6 s.
fn config(window: usize, retain: usize) -> PlaylistConfig {
    PlaylistConfig {
        target_duration: Duration::from_secs(1),
        part_target: HALF,
        window_segments: window,
        retain_extra_segments: retain,
        uri_prefix: "v/".into(),
        ..PlaylistConfig::default()
    }
}

/// Pushes one 500 ms part whose bytes name it and whose PDT follows from
/// its position (each segment is two parts, 1 s).
fn push(playlist: &mut MediaPlaylist) {
    let (msn, index) = playlist.next_part();
    let data = Bytes::from(format!("[{msn}.{index}]"));
    let pdt = T0 + i64::try_from(msn).unwrap() * 1_000 + i64::from(index) * 500;
    playlist.push_part(data, HALF, index == 0, pdt);
}

/// Pushes two parts and closes the segment.
fn segment(playlist: &mut MediaPlaylist) {
    push(playlist);
    push(playlist);
    playlist.close_segment();
}

fn playlist(window: usize, retain: usize) -> MediaPlaylist {
    let mut playlist = MediaPlaylist::new(config(window, retain)).unwrap();
    playlist.set_init(Bytes::from_static(b"init-a"));
    playlist
}

#[test]
fn full_playlist_golden() {
    let mut p = playlist(6, 2);
    for _ in 0..5 {
        segment(&mut p);
    }
    push(&mut p);
    let report = RenditionReport {
        uri: "audio.m3u8".into(),
        last_msn: 5,
        last_part: 0,
    };
    let want = r#"#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-RENDITION-REPORT:URI="audio.m3u8",LAST-MSN=5,LAST-PART=0
#EXT-X-MAP:URI="v/init0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T15:00:00.000Z
#EXTINF:1.00000,
v/seg0.m4s
#EXTINF:1.00000,
v/seg1.m4s
#EXTINF:1.00000,
v/seg2.m4s
#EXT-X-PART:DURATION=0.50000,URI="v/part3.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="v/part3.1.m4s"
#EXTINF:1.00000,
v/seg3.m4s
#EXT-X-PART:DURATION=0.50000,URI="v/part4.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="v/part4.1.m4s"
#EXTINF:1.00000,
v/seg4.m4s
#EXT-X-PART:DURATION=0.50000,URI="v/part5.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="v/part5.1.m4s"
"#;
    assert_eq!(
        p.render(SkipRequest::No, std::slice::from_ref(&report)),
        want
    );
    // Nothing is older than the 6 s Skip Boundary: a skip request gets the
    // full Playlist.
    assert_eq!(p.render(SkipRequest::Yes, &[report]), want);
    assert_eq!(
        p.rendition_report("video.m3u8")
            .map(|r| (r.last_msn, r.last_part)),
        Some((5, 0))
    );
}

/// A 20-segment window with 10 complete segments: a discontinuity before
/// segment 1, a new initialization section (and so a discontinuity) before
/// segment 2, and a discontinuity before segment 6.
fn delta_scenario() -> MediaPlaylist {
    let mut p = playlist(20, 2);
    segment(&mut p);
    p.discontinuity();
    segment(&mut p);
    p.set_init(Bytes::from_static(b"init-b"));
    for _ in 2..6 {
        segment(&mut p);
    }
    p.discontinuity();
    for _ in 6..10 {
        segment(&mut p);
    }
    push(&mut p);
    p
}

#[test]
fn delta_update_golden() {
    let p = delta_scenario();
    // Complete segments end at 1..=10 s; the last ends at 10 s, so segments
    // ending more than 6 s earlier (0, 1, 2) are skipped with their
    // discontinuity tags. Segment 3 still gets the map and the date.
    let want = r#"#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-SKIP:SKIPPED-SEGMENTS=3
#EXT-X-MAP:URI="v/init1.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T15:00:03.000Z
#EXTINF:1.00000,
v/seg3.m4s
#EXTINF:1.00000,
v/seg4.m4s
#EXTINF:1.00000,
v/seg5.m4s
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T15:00:06.000Z
#EXTINF:1.00000,
v/seg6.m4s
#EXTINF:1.00000,
v/seg7.m4s
#EXT-X-PART:DURATION=0.50000,URI="v/part8.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="v/part8.1.m4s"
#EXTINF:1.00000,
v/seg8.m4s
#EXT-X-PART:DURATION=0.50000,URI="v/part9.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="v/part9.1.m4s"
#EXTINF:1.00000,
v/seg9.m4s
#EXT-X-PART:DURATION=0.50000,URI="v/part10.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="v/part10.1.m4s"
"#;
    assert_eq!(p.render(SkipRequest::Yes, &[]), want);
    assert_eq!(p.render(SkipRequest::V2, &[]), want);
}

#[test]
fn full_render_of_delta_scenario() {
    let p = delta_scenario();
    let want = r#"#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-MAP:URI="v/init0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T15:00:00.000Z
#EXTINF:1.00000,
v/seg0.m4s
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T15:00:01.000Z
#EXTINF:1.00000,
v/seg1.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="v/init1.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T15:00:02.000Z
#EXTINF:1.00000,
v/seg2.m4s
"#;
    let text = p.render(SkipRequest::No, &[]);
    assert!(text.starts_with(want), "{text}");
    // The rest is the delta update's segment section.
    let delta = p.render(SkipRequest::Yes, &[]);
    let tail = delta.split_once("v/seg3.m4s\n").unwrap().1;
    assert!(text.ends_with(tail));
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 3);
}

#[test]
fn delta_update_ignored_after_end() {
    let mut p = delta_scenario();
    p.end();
    let text = p.render(SkipRequest::Yes, &[]);
    assert!(!text.contains("#EXT-X-SKIP"), "{text}");
    assert!(text.contains("v/seg0.m4s\n"));
}

/// (msn, part) → decision.
type BlockTable<'a> = &'a [(u64, Option<u32>, BlockDecision)];

fn check_table(p: &MediaPlaylist, table: BlockTable<'_>, stage: &str) {
    for &(msn, part, want) in table {
        assert_eq!(
            p.check_block(msn, part),
            want,
            "{stage}: _HLS_msn={msn} _HLS_part={part:?}"
        );
    }
}

#[test]
fn blocking_table() {
    use BlockDecision::{Ready, TooFarAhead as Far, Wait};
    let mut p = MediaPlaylist::new(PlaylistConfig {
        start_msn: 10,
        ..config(6, 2)
    })
    .unwrap();
    assert_eq!(p.config().advance_part_limit(), 6);

    // Nothing yet: the "last segment" is 9, so up to MSN 11 may block.
    check_table(
        &p,
        &[
            (10, None, Wait),
            (11, None, Wait),
            (12, None, Far),
            (0, None, Wait),
            (10, Some(0), Wait),
            (10, Some(5), Wait),
            (10, Some(6), Far), // 7 parts ahead of nothing
            (11, Some(5), Wait),
            (11, Some(6), Far),
        ],
        "empty",
    );

    segment(&mut p); // 10: parts 0, 1
    segment(&mut p); // 11: parts 0, 1
    push(&mut p); // 12: part 0, open
    assert_eq!(p.last_part(), Some((12, 0)));
    assert_eq!(p.next_part(), (12, 1));
    check_table(
        &p,
        &[
            // Whole segments: ready once complete.
            (0, None, Ready),
            (10, None, Ready),
            (11, None, Ready),
            (12, None, Wait), // open, not complete
            (13, None, Wait), // last complete (11) + 2
            (14, None, Far),
            (u64::MAX, None, Far),
            // Parts of complete segments, and "or a later one".
            (0, Some(0), Ready),
            (11, Some(0), Ready),
            (11, Some(1), Ready),
            // Beyond the last part of complete segment 11: part 12.0, which exists.
            (11, Some(2), Ready),
            (11, Some(u32::MAX), Ready),
            // The open segment.
            (12, Some(0), Ready),
            (12, Some(1), Wait),
            (12, Some(6), Wait), // 6 ahead = the Advance Part Limit
            (12, Some(7), Far),
            (12, Some(u32::MAX), Far),
            // The segment after the open one: at least part + 1 ahead.
            (13, Some(0), Wait),
            (13, Some(5), Wait),
            (13, Some(6), Far),
            (14, Some(0), Far),
            (u64::MAX, Some(u32::MAX), Far),
        ],
        "open segment 12",
    );

    push(&mut p);
    p.close_segment(); // 12: parts 0, 1; nothing open
    assert_eq!(p.last_part(), Some((12, 1)));
    assert_eq!(p.next_part(), (13, 0));
    check_table(
        &p,
        &[
            (12, None, Ready),
            (13, None, Wait),
            (14, None, Wait),
            (15, None, Far),
            (12, Some(1), Ready),
            // Beyond the last part of complete segment 12: part 13.0, not yet there.
            (12, Some(2), Wait),
            (12, Some(u32::MAX), Wait),
            (13, Some(0), Wait),
            (13, Some(5), Wait),
            (13, Some(6), Far),
            (14, Some(0), Wait),
            (15, Some(0), Far),
        ],
        "segment 12 closed",
    );

    push(&mut p); // 13.0
    check_table(
        &p,
        &[
            (12, Some(2), Ready),
            (13, Some(0), Ready),
            (13, Some(1), Wait),
        ],
        "part 13.0",
    );

    // §6.2.5.2: once ended, _HLS_msn and _HLS_part are ignored.
    p.end();
    check_table(
        &p,
        &[
            (13, None, Ready),
            (14, Some(0), Ready),
            (15, None, Ready),
            (u64::MAX, Some(u32::MAX), Ready),
        ],
        "ended",
    );
}

#[test]
fn part_and_segment_lookup() {
    use PartLookup::{Available, NotFound, Pending};
    let bytes = |s: &str| Available(Bytes::from(s.to_owned()));
    let mut p = playlist(3, 1);
    for _ in 0..6 {
        segment(&mut p);
    }
    push(&mut p); // 6.0 open
    // Window 3 (segments 3..=5), retention 1 more (2); 0 and 1 are gone.
    let table: &[(u64, u32, PartLookup)] = &[
        (6, 0, bytes("[6.0]")),
        (6, 1, Pending), // the preload hint
        (6, 2, NotFound),
        (7, 0, NotFound),
        (5, 1, bytes("[5.1]")),
        (5, 2, NotFound),
        (2, 0, bytes("[2.0]")),
        (1, 1, NotFound),
        (0, 0, NotFound),
        (u64::MAX, u32::MAX, NotFound),
    ];
    for (msn, index, want) in table {
        assert_eq!(&p.part(*msn, *index), want, "part {msn}.{index}");
    }
    assert_eq!(p.segment(5), Some(Bytes::from_static(b"[5.0][5.1]")));
    assert_eq!(p.segment(2), Some(Bytes::from_static(b"[2.0][2.1]")));
    assert_eq!(p.segment(1), None);
    assert_eq!(
        p.segment(6),
        None,
        "open segments are not downloadable whole"
    );
    assert_eq!(p.segment(u64::MAX), None);

    // The hint moves to the next segment when this one closes early: a
    // request held for 6.1 now gets 404 (§6.2.6), and 7.0 is the hint.
    p.close_segment();
    assert_eq!(p.part(6, 1), NotFound);
    assert_eq!(p.part(7, 0), Pending);
    assert_eq!(p.segment(6), Some(Bytes::from_static(b"[6.0]")));

    p.end();
    assert_eq!(p.part(7, 0), NotFound);
    assert_eq!(p.part(6, 0), bytes("[6.0]"));
}

#[test]
fn parts_share_the_segment_buffer() {
    let mut p = playlist(3, 1);
    segment(&mut p);
    let whole = p.segment(0).unwrap();
    let PartLookup::Available(second) = p.part(0, 1) else {
        panic!("part 0.1 is retained");
    };
    assert_eq!(second, "[0.1]");
    // Same allocation: the part is a slice of the segment.
    assert_eq!(second.as_ptr(), whole[5..].as_ptr());
}

/// Reads `(msn, discontinuity sequence number)` of every listed segment, as
/// a client does (RFC 8216bis §6.2.1: the tag's value plus the
/// `EXT-X-DISCONTINUITY` tags before the segment's URI), and checks
/// `EXT-X-MEDIA-SEQUENCE` against the first URI.
fn client_view(text: &str) -> Vec<(u64, u64)> {
    let mut media_sequence = None;
    let mut dsn = 0;
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            media_sequence = Some(v.parse::<u64>().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
            dsn = v.parse().unwrap();
        } else if line == "#EXT-X-DISCONTINUITY" {
            dsn += 1;
        } else if let Some(Resource::Segment(msn)) =
            line.strip_prefix("v/").and_then(Resource::parse)
        {
            if out.is_empty() {
                assert_eq!(media_sequence, Some(msn), "{text}");
            }
            out.push((msn, dsn));
        }
    }
    out
}

#[test]
fn discontinuity_sequence_survives_scrolling() {
    let mut p = playlist(3, 0);
    let mut seen = std::collections::BTreeMap::new();
    let mut sequences = Vec::new();
    // Discontinuities before segments 1, 3 and 4 (4 by init change).
    for msn in 0..9_u64 {
        match msn {
            1 | 3 => p.discontinuity(),
            4 => p.set_init(Bytes::from_static(b"init-b")),
            _ => {}
        }
        segment(&mut p);
        let text = p.render(SkipRequest::No, &[]);
        for (msn, dsn) in client_view(&text) {
            let first = *seen.entry(msn).or_insert(dsn);
            assert_eq!(first, dsn, "segment {msn} changed DSN:\n{text}");
        }
        sequences.push(p.discontinuity_sequence);
    }
    // Listed segments after each close: [0], [0,1], [0..=2], then three at
    // a time; the counter grows as segments 1, 3 and 4 scroll out.
    assert_eq!(sequences, [0, 0, 0, 0, 1, 1, 2, 3, 3]);
    assert_eq!(seen.get(&0), Some(&0));
    assert_eq!(seen.get(&1), Some(&1));
    assert_eq!(seen.get(&8), Some(&3));
}

/// A publisher reconnects under the same URL: the new Playlist continues
/// the old one's Media Sequence and Discontinuity Sequence, and its first
/// segment carries `EXT-X-DISCONTINUITY`, so a client that reloads across
/// the change sees MSNs grow and one discontinuity (RFC 8216bis §6.2.1,
/// §6.2.2), never the same MSN for other media.
#[test]
fn a_continued_playlist_follows_its_predecessor() {
    let mut old = playlist(3, 0);
    segment(&mut old); // 0
    old.discontinuity();
    segment(&mut old); // 1, discontinuous
    push(&mut old); // 2, open
    old.end();
    assert_eq!(old.next_msn(), 3);
    let before = client_view(&old.render(SkipRequest::No, &[]));
    assert_eq!(before, [(0, 0), (1, 1), (2, 1)]);
    assert_eq!(old.next_discontinuity_sequence(), 1);

    let mut new = MediaPlaylist::new(PlaylistConfig {
        start_msn: old.next_msn(),
        start_discontinuity_sequence: old.next_discontinuity_sequence(),
        starts_discontinuous: true,
        ..config(3, 0)
    })
    .unwrap();
    new.set_init(Bytes::from_static(b"init-other"));
    assert!(!new.has_segment());
    assert_eq!(new.check_block(3, None), BlockDecision::Wait);
    segment(&mut new); // 3
    segment(&mut new); // 4
    let text = new.render(SkipRequest::No, &[]);
    assert!(
        text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP"),
        "first segment is discontinuous:\n{text}"
    );
    // Continues where the old one's last segment (2, DSN 1) ended.
    assert_eq!(client_view(&text), [(3, 2), (4, 2)]);
    // Once the tagged segment scrolls out, the counter takes it over.
    for _ in 0..4 {
        segment(&mut new);
    }
    let text = new.render(SkipRequest::No, &[]);
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:2\n"), "{text}");
}

#[test]
fn window_never_shorter_than_three_target_durations() {
    // Target 2 s but 1 s segments: a window of 1 still lists 6 s (§6.2.2).
    let mut p = MediaPlaylist::new(PlaylistConfig {
        target_duration: Duration::from_secs(2),
        ..config(1, 1)
    })
    .unwrap();
    for _ in 0..20 {
        segment(&mut p);
    }
    let listed = client_view(&p.render(SkipRequest::No, &[]));
    assert_eq!(listed.first(), Some(&(14, 0)));
    assert_eq!(listed.len(), 6);
    assert!(p.segment(13).is_some(), "retained one more");
    assert!(p.segment(12).is_none());
}

#[test]
fn init_change_new_map_and_discontinuity() {
    let mut p = playlist(6, 1);
    let a = Bytes::from_static(b"init-a");
    let b = Bytes::from_static(b"init-b");
    segment(&mut p);
    p.set_init(a.clone()); // unchanged: nothing happens
    push(&mut p); // 1.0
    // New codec parameters mid-segment: segment 1 is closed with one part.
    p.set_init(b.clone());
    assert_eq!(p.segment(1), Some(Bytes::from_static(b"[1.0]")));
    segment(&mut p); // 2, with init 1
    assert_eq!(p.init(0), Some(a));
    assert_eq!(p.init(1), Some(b.clone()));
    assert_eq!(p.init(2), None);
    let text = p.render(SkipRequest::No, &[]);
    let want_tail = r#"#EXT-X-MAP:URI="v/init0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T15:00:00.000Z
#EXT-X-PART:DURATION=0.50000,URI="v/part0.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="v/part0.1.m4s"
#EXTINF:1.00000,
v/seg0.m4s
#EXT-X-PART:DURATION=0.50000,URI="v/part1.0.m4s",INDEPENDENT=YES
#EXTINF:0.50000,
v/seg1.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="v/init1.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T15:00:02.000Z
#EXT-X-PART:DURATION=0.50000,URI="v/part2.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="v/part2.1.m4s"
#EXTINF:1.00000,
v/seg2.m4s
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="v/part3.0.m4s"
"#;
    assert!(text.ends_with(want_tail), "{text}");
    // Once segments 0 and 1 are evicted, init 0 is released.
    for _ in 0..10 {
        segment(&mut p);
    }
    assert_eq!(p.init(0), None);
    assert_eq!(p.init(1), Some(b));
}

#[test]
fn end_of_stream() {
    let mut p = playlist(6, 1);
    segment(&mut p);
    push(&mut p);
    p.end();
    assert!(p.ended());
    let want = r#"#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-RENDITION-REPORT:URI="a.m3u8",LAST-MSN=1,LAST-PART=0
#EXT-X-MAP:URI="v/init0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T15:00:00.000Z
#EXT-X-PART:DURATION=0.50000,URI="v/part0.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="v/part0.1.m4s"
#EXTINF:1.00000,
v/seg0.m4s
#EXT-X-PART:DURATION=0.50000,URI="v/part1.0.m4s",INDEPENDENT=YES
#EXTINF:0.50000,
v/seg1.m4s
#EXT-X-ENDLIST
"#;
    let report = p.rendition_report("a.m3u8").unwrap();
    assert_eq!(p.render(SkipRequest::Yes, &[report]), want);
    // Mutations after the end are ignored.
    let before = p.render(SkipRequest::No, &[]);
    push(&mut p);
    p.close_segment();
    p.discontinuity();
    p.set_init(Bytes::from_static(b"other"));
    p.end();
    assert_eq!(p.render(SkipRequest::No, &[]), before);
}

#[test]
fn empty_playlist_renders() {
    let p = MediaPlaylist::new(PlaylistConfig {
        start_msn: 7,
        ..config(3, 1)
    })
    .unwrap();
    let text = p.render(SkipRequest::Yes, &[]);
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:7\n"));
    assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v/part7.0.m4s\"\n"));
    assert_eq!(p.last_part(), None);
    assert_eq!(p.rendition_report("x"), None);
    assert_eq!(p.part(7, 0), PartLookup::Pending);
}

#[test]
fn rendered_part_durations_never_exceed_part_target() {
    for target_ns in [200_000_000_u64, 333_333_333, 333_340_000, 1_000_000_001] {
        let part_target = Duration::from_nanos(target_ns);
        let mut p = MediaPlaylist::new(PlaylistConfig {
            part_target,
            target_duration: Duration::from_secs(2),
            ..PlaylistConfig::default()
        })
        .unwrap();
        for delta in [0, 1, 4_999, 5_000, 9_999, 123_456] {
            let d = part_target.saturating_sub(Duration::from_nanos(delta));
            p.push_part(Bytes::new(), d, true, T0);
        }
        let text = p.render(SkipRequest::No, &[]);
        let secs = |s: &str| -> u64 {
            let (int, frac) = s.split_once('.').unwrap();
            int.parse::<u64>().unwrap() * 100_000 + frac.parse::<u64>().unwrap()
        };
        let target = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-PART-INF:PART-TARGET="))
            .map(secs)
            .unwrap();
        let mut parts = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("#EXT-X-PART:DURATION=") {
                let duration = secs(rest.split(',').next().unwrap());
                assert!(duration <= target, "{line} over target {target}: {text}");
                parts += 1;
            }
        }
        assert_eq!(parts, 6);
        // PART-HOLD-BACK is at least three rendered PART-TARGETs.
        let hold_back = text
            .lines()
            .find_map(|l| l.split_once("PART-HOLD-BACK=").map(|(_, v)| v))
            .unwrap();
        let (int, frac) = hold_back.split_once('.').unwrap();
        let hold_back = int.parse::<u64>().unwrap() * 100_000 + frac.parse::<u64>().unwrap() * 100;
        assert!(hold_back >= 3 * target, "{hold_back} < 3 × {target}");
    }
}

#[test]
fn config_errors_surface_from_new() {
    let err = MediaPlaylist::new(PlaylistConfig {
        window_segments: 0,
        ..PlaylistConfig::default()
    })
    .unwrap_err();
    assert_eq!(err, ConfigError::EmptyWindow);
}

/// Cross-checks rendered playlists with an independent parser, the Python
/// `m3u8` package, which the README's test command installs.
#[test]
fn python_m3u8_cross_check() {
    const SCRIPT: &str = r#"
import json, sys, m3u8
out = {}
for name, text in json.loads(sys.stdin.read()).items():
    p = m3u8.loads(text)
    if p.is_variant:
        out[name] = {
            "variants": [[v.uri, v.stream_info.bandwidth, v.stream_info.codecs,
                          v.stream_info.resolution and list(v.stream_info.resolution),
                          v.stream_info.frame_rate, v.stream_info.audio] for v in p.playlists],
            "media": [[m.type, m.group_id, m.name, m.default, m.autoselect, m.channels, m.uri]
                      for m in p.media],
        }
        continue
    out[name] = {
        "version": p.version,
        "target": p.target_duration,
        "msn": p.media_sequence,
        "dsn": p.discontinuity_sequence,
        "skip": p.skip.skipped_segments if p.skip else None,
        "can_skip_until": p.server_control.can_skip_until,
        "part_hold_back": p.server_control.part_hold_back,
        "part_target": p.part_inf.part_target,
        "segments": [[s.uri, s.duration, s.discontinuity,
                      s.program_date_time and s.program_date_time.isoformat(),
                      s.init_section and s.init_section.uri,
                      [[q.uri, q.duration, q.independent] for q in s.parts]]
                     for s in p.segments],
        "hint": [h.uri for h in p.preload_hint] if isinstance(p.preload_hint, list)
                else (p.preload_hint and p.preload_hint.uri),
        "reports": [[r.uri, r.last_msn, r.last_part] for r in p.rendition_reports],
        "endlist": p.is_endlist,
    }
print(json.dumps(out, sort_keys=True))
"#;
    let delta = delta_scenario();
    let mut ended = playlist(6, 1);
    segment(&mut ended);
    ended.end();
    let variants = [Variant {
        uri: "video.m3u8".into(),
        bandwidth: 3_200_000,
        average_bandwidth: Some(2_800_000),
        codecs: "avc1.64001f,mp4a.40.2".into(),
        resolution: Some((1280, 720)),
        frame_rate: Some(30.0),
        audio_group: Some("aac".into()),
    }];
    let audio = [AudioRendition {
        group_id: "aac".into(),
        name: "English".into(),
        uri: "audio.m3u8".into(),
        default: true,
        language: Some("en".into()),
        channels: Some(2),
    }];
    let report = RenditionReport {
        uri: "audio.m3u8".into(),
        last_msn: 10,
        last_part: 0,
    };
    let inputs = [
        (
            "full",
            delta.render(SkipRequest::No, std::slice::from_ref(&report)),
        ),
        ("delta", delta.render(SkipRequest::Yes, &[])),
        ("ended", ended.render(SkipRequest::No, &[])),
        ("multivariant", render_multivariant(&variants, &audio)),
    ];
    let json = format!(
        "{{{}}}",
        inputs
            .iter()
            .map(|(name, text)| format!("{name:?}:{:?}", text))
            .collect::<Vec<_>>()
            .join(",")
    );
    let child = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = child.expect("python3 is needed: run the README's test command");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'm3u8'"),
        "the m3u8 Python package is needed: run the README's test command"
    );
    assert!(output.status.success(), "{stderr}");
    let summary = String::from_utf8(output.stdout).unwrap();
    println!("{summary}");
    let expect = [
        // Full: 10 segments from 0, discontinuities on 1, 2 and 6, map
        // change on 2, parts on 8, 9 and the open 10, the hint, the report.
        r#""full": {"can_skip_until": 6.0, "dsn": 0, "endlist": false"#,
        r#""msn": 0, "part_hold_back": 1.5, "part_target": 0.5"#,
        r#"["v/seg0.m4s", 1.0, false, "2026-11-21T15:00:00+00:00", "v/init0.mp4", []]"#,
        r#"["v/seg1.m4s", 1.0, true, "2026-11-21T15:00:01+00:00", "v/init0.mp4", []]"#,
        r#"["v/seg2.m4s", 1.0, true, "2026-11-21T15:00:02+00:00", "v/init1.mp4", []]"#,
        r#"["v/seg6.m4s", 1.0, true, "2026-11-21T15:00:06+00:00", "v/init1.mp4", []]"#,
        r#"["v/seg9.m4s", 1.0, false, null, "v/init1.mp4", [["v/part9.0.m4s", 0.5, "YES"], ["v/part9.1.m4s", 0.5, null]]]"#,
        r#""reports": [["audio.m3u8", 10, 0]]"#,
        // Delta: 3 skipped, first listed is segment 3 with init 1.
        r#""skip": 3"#,
        r#"["v/seg3.m4s", 1.0, false, "2026-11-21T15:00:03+00:00", "v/init1.mp4", []]"#,
        r#""hint": "v/part10.1.m4s""#,
        // The open segment: its part, no URI yet.
        r#"[null, null, false, null, null, [["v/part10.0.m4s", 0.5, "YES"]]]"#,
        r#""ended": {"can_skip_until": 6.0, "dsn": 0, "endlist": true, "hint": null"#,
        r#""version": 9"#,
        // Multivariant.
        r#"["AUDIO", "aac", "English", "YES", "YES", "2", "audio.m3u8"]"#,
        r#"["video.m3u8", 3200000, "avc1.64001f,mp4a.40.2", [1280, 720], 30.0, "aac"]"#,
    ];
    for fragment in expect {
        assert!(
            summary.contains(fragment),
            "missing {fragment}\nin {summary}"
        );
    }
}
