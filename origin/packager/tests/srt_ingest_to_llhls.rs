//! The ingest → LL-HLS path under a simulated SRT network (see
//! `harness/mod.rs`): a real ffmpeg MPEG-TS (H.264 with B-frames, AAC),
//! looped into 10 s of live stream, cut into SRT payloads, delivered with
//! seeded loss and jitter, demuxed and packaged. No sockets, no sleeps, no
//! clock reads: each run takes milliseconds and repeats exactly.

mod harness;

use std::time::Duration;

use harness::{Delivery, Network, Run, SRT_PAYLOAD, config, loop_ts, parse_playlist, run};
use livestack_packager::Rendition;

/// `origin/media/tests/data/h264_aac.ts`: 2 s, 320x240 at 25 fps, GOP 25
/// (1 s), 2 B-frames; 48 kHz stereo AAC. See that folder's README.
const H264_AAC: &[u8] = include_bytes!("../../media/tests/data/h264_aac.ts");
/// Video frames in the file (ffprobe `-count_packets`).
const VIDEO_FRAMES_PER_LOOP: usize = 50;
/// AAC frames in the file (ffprobe `-count_packets`).
const AUDIO_FRAMES_PER_LOOP: usize = 95;
/// The file's video duration in 90 kHz ticks: 50 frames of 3600.
const PERIOD: u64 = 50 * 3600;
/// Repetitions: 10 s of stream.
const LOOPS: u64 = 5;
/// PIDs of ffmpeg's elementary streams, the track ids.
const VIDEO: u32 = 0x100;
const AUDIO: u32 = 0x101;

fn source() -> Vec<u8> {
    loop_ts(H264_AAC, LOOPS, PERIOD)
}

/// A perfect network that sends the stream in real time (constant bit
/// rate over its 10 s).
fn network(ts: &[u8]) -> Network {
    let payloads = u32::try_from(ts.len().div_ceil(SRT_PAYLOAD)).expect("a short stream");
    Network {
        packet_interval: Duration::from_secs(2 * LOOPS) / payloads,
        ..Network::perfect()
    }
}

/// Every playlist ever published parses, lists no part longer than its
/// PART-TARGET and no segment whose duration rounds above its
/// EXT-X-TARGETDURATION; parts
/// are numbered in order: the next index in the same segment, or index 0
/// of a later one.
fn check_playlists_and_numbering(run: &Run) {
    assert!(!run.history.is_empty());
    for (name, text) in &run.history {
        let facts = parse_playlist(text);
        for part in &facts.parts {
            assert!(
                *part <= facts.part_target,
                "{name}: part of {part} s\n{text}"
            );
        }
        // RFC 8216bis §4.4.3.1: EXTINF rounded to the nearest integer.
        for segment in &facts.segments {
            assert!(
                segment.round() <= facts.target_duration,
                "{name}: segment of {segment} s\n{text}"
            );
        }
    }
    for r in [Rendition::VIDEO, Rendition::AUDIO] {
        let parts = run.parts_of(r);
        for w in parts.windows(2) {
            let ((m1, i1), (m2, i2)) = (w[0].part, w[1].part);
            assert!(
                (m2 == m1 && i2 == i1 + 1) || (m2 > m1 && i2 == 0),
                "{r:?}: part {:?} after {:?}",
                w[1].part,
                w[0].part
            );
        }
    }
}

/// Samples packaged in rendition `r`.
fn samples(run: &Run, r: Rendition) -> usize {
    run.parts_of(r).iter().map(|p| p.samples).sum()
}

#[test]
fn every_frame_of_a_clean_stream_lands_in_a_part() {
    let ts = source();
    let run = run(&ts, &network(&ts), config());
    assert_eq!(run.net.sent, ts.len().div_ceil(SRT_PAYLOAD));
    assert_eq!((run.net.lost, run.net.late), (0, 0));
    assert_eq!(run.ingest.cc_errors, 0, "the loop seams are seamless");
    assert!(run.losses.is_empty());
    let loops = LOOPS as usize;
    assert_eq!(run.frames_in[&VIDEO], VIDEO_FRAMES_PER_LOOP * loops);
    // The looped source leaves out the audio PES that would overlap the
    // next repetition (the file has 2.027 s of audio for 2 s of video).
    let audio_per_loop = run.frames_in[&AUDIO] / loops;
    assert_eq!(audio_per_loop * loops, run.frames_in[&AUDIO]);
    assert!(
        (75..AUDIO_FRAMES_PER_LOOP).contains(&audio_per_loop),
        "{audio_per_loop}"
    );
    assert_eq!(samples(&run, Rendition::VIDEO), run.frames_in[&VIDEO]);
    assert_eq!(samples(&run, Rendition::AUDIO), run.frames_in[&AUDIO]);
    assert_eq!(run.packager.frames_dropped, 0);
    assert_eq!(run.packager.discontinuities, 0);
    assert_eq!(run.packager.timing_errors, 0);
    assert_eq!(run.packager.parts_dropped, 0);
    check_playlists_and_numbering(&run);

    let video = parse_playlist(&run.playlist(Rendition::VIDEO));
    assert!(video.ended);
    assert_eq!(video.media_sequence, 0, "the window holds every segment");
    assert_eq!(video.discontinuities, 0);
    // One segment per 1 s GOP.
    assert_eq!(video.segments.len(), 2 * loops, "{video:?}");
    assert!(
        video.segments.iter().all(|s| (s - 1.0).abs() < 1e-9),
        "{video:?}"
    );
    let audio = parse_playlist(&run.playlist(Rendition::AUDIO));
    assert!(audio.ended);
    assert_eq!(audio.segments.len(), video.segments.len());
    // Audio parts carry the numbers of the video parts they align with.
    // (Audio has no part where the looped source has an audio gap at a
    // seam: AAC frames do not tile its 2 s of video.)
    let numbers = |r| run.parts_of(r).iter().map(|p| p.part).collect::<Vec<_>>();
    let (video_numbers, audio_numbers) = (numbers(Rendition::VIDEO), numbers(Rendition::AUDIO));
    assert!(audio_numbers.len() * 10 >= video_numbers.len() * 9);
    assert!(
        audio_numbers.iter().all(|n| video_numbers.contains(n)),
        "{audio_numbers:?} vs {video_numbers:?}"
    );
    let multivariant = run
        .broadcast
        .multivariant()
        .expect("a multivariant playlist");
    assert!(multivariant.contains("\nvideo.m3u8\n"), "{multivariant}");
    assert!(
        multivariant.contains("URI=\"audio.m3u8\""),
        "{multivariant}"
    );
}

/// Whole SRT payloads lost (or too late for SRT's latency) show up as
/// continuity-counter gaps; the origin reports each as a loss, which closes
/// the open part and segment and starts the next segment after an
/// EXT-X-DISCONTINUITY (video waits for its next keyframe). The stream
/// resumes at the first keyframe that arrives intact, and every playlist
/// stays valid. (Continuity counters, ISO/IEC 13818-1 §2.4.3.3, miss a gap
/// of exactly 16·k packets of one PID; the origin does not read SRT's own
/// sequence numbers, so such a loss is not reported as one.)
#[test]
fn lost_payloads_become_discontinuities_and_the_stream_goes_on() {
    let ts = source();
    let base = network(&ts);
    let mut cases: Vec<Network> = Vec::new();
    for loss_per_mille in [20, 50, 200] {
        for seed in 1..=4 {
            cases.push(Network {
                seed,
                loss_per_mille,
                ..base.clone()
            });
        }
    }
    // No loss, but jitter beyond the SRT latency: late payloads are dropped
    // (about one in thirteen).
    cases.push(Network {
        seed: 9,
        jitter: Duration::from_millis(130),
        ..base.clone()
    });
    let mut resumed = 0;
    for net in &cases {
        let run = run(&ts, net, config());
        let what = format!("{net:?}: {:?}", run.net);
        assert!(run.net.lost + run.net.late > 0, "{what}");
        assert!(run.ingest.cc_errors > 0, "{what}");
        check_playlists_and_numbering(&run);
        for (id, r) in [(VIDEO, Rendition::VIDEO), (AUDIO, Rendition::AUDIO)] {
            assert!(samples(&run, r) <= run.frames_in[&id], "{what}");
            let facts = parse_playlist(&run.playlist(r));
            assert!(facts.ended, "{what}");
            // Several losses in one gap share one tag.
            assert!(
                facts.discontinuities as u64 <= run.packager.discontinuities,
                "{what}"
            );
            let losses = run.losses.get(&id).cloned().unwrap_or_default();
            let Some(&first_loss) = losses.first() else {
                continue;
            };
            // A keyframe after the loss, followed by a second without
            // another loss, starts parts again.
            let quiet = |k: Duration| {
                !losses
                    .iter()
                    .any(|l| *l >= k && *l <= k + Duration::from_secs(1))
            };
            let restart = run
                .keyframes
                .get(&id)
                .and_then(|k| k.iter().copied().find(|k| *k > first_loss && quiet(*k)));
            let last_part = run.parts_of(r).last().map(|p| p.at);
            let end = run.parts.last().map(|p| p.at).unwrap_or_default();
            if let Some(k) = restart
                && k + Duration::from_secs(1) < end
            {
                resumed += 1;
                assert!(
                    last_part.is_some_and(|p| p > k),
                    "{r:?}: no part after the keyframe at {k:?}; {what}"
                );
                // A loss before the rendition's first part leaves nothing
                // to be discontinuous with.
                let produced_before = run.parts_of(r).first().is_some_and(|p| p.at <= first_loss);
                if produced_before {
                    assert!(facts.discontinuities >= 1, "{r:?}: {what}");
                    assert!(
                        facts.segments_after_last_discontinuity >= 1,
                        "{r:?}: {what}"
                    );
                }
            }
        }
    }
    assert!(resumed > cases.len(), "most runs resume: {resumed}");
}

#[test]
fn the_same_seed_gives_byte_identical_playlists() {
    let ts = source();
    let net = Network {
        seed: 7,
        loss_per_mille: 50,
        jitter: Duration::from_millis(200),
        delivery: Delivery::OnArrival,
        ..network(&ts)
    };
    let a = run(&ts, &net, config());
    let b = run(&ts, &net, config());
    assert!(a.net.lost > 0);
    assert_eq!(a.transcript(), b.transcript());
    assert_eq!(a.broadcast.multivariant(), b.broadcast.multivariant());
    let other = run(&ts, &Network { seed: 8, ..net }, config());
    assert_ne!(
        a.transcript(),
        other.transcript(),
        "another seed, other losses"
    );
}

/// SRT hands every payload over one latency after it was sent, so jitter
/// within the latency changes nothing at all: not the cut, not the
/// program-date-time.
#[test]
fn jitter_within_the_srt_latency_changes_nothing() {
    let ts = source();
    let clean = run(&ts, &network(&ts), config());
    for seed in 1..=3 {
        let net = Network {
            seed,
            jitter: Duration::from_millis(100),
            ..network(&ts)
        };
        let jittery = run(&ts, &net, config());
        assert_eq!(jittery.net.late, 0);
        assert_eq!(jittery.transcript(), clean.transcript(), "seed {seed}");
    }
}

/// Time of day of an `EXT-X-PROGRAM-DATE-TIME` line, milliseconds.
fn pdt_ms(line: &str) -> i64 {
    let value = line
        .strip_prefix("#EXT-X-PROGRAM-DATE-TIME:")
        .expect("a program-date-time");
    let (_, time) = value.split_once('T').expect("date and time");
    let time = time.strip_suffix('Z').expect("UTC");
    let mut fields = time.split(':');
    let mut next = || fields.next().expect("h:m:s");
    let (h, m): (i64, i64) = (
        next().parse().expect("hours"),
        next().parse().expect("minutes"),
    );
    let s: f64 = next().parse().expect("seconds");
    (h * 60 + m) * 60_000 + (s * 1000.0).round() as i64
}

/// Without a latency buffer, payloads are handed over as they arrive (in
/// order). Cutting depends on media time only, so parts, segments and
/// their numbering are the same; program-date-time is anchored at the
/// arrival of the first frame and then follows media time, so every
/// EXT-X-PROGRAM-DATE-TIME moves by the same amount: that first delay.
#[test]
fn jitter_without_a_latency_buffer_only_moves_program_date_time() {
    let ts = source();
    let on_arrival = Network {
        delivery: Delivery::OnArrival,
        ..network(&ts)
    };
    let clean = run(&ts, &on_arrival, config());
    let strip = |run: &Run| -> (String, Vec<i64>) {
        let mut text = String::new();
        let mut pdt = Vec::new();
        for line in run.transcript().lines() {
            if line.starts_with("#EXT-X-PROGRAM-DATE-TIME:") {
                pdt.push(pdt_ms(line));
            } else {
                text.push_str(line);
                text.push('\n');
            }
        }
        (text, pdt)
    };
    let (clean_text, clean_pdt) = strip(&clean);
    assert!(!clean_pdt.is_empty());
    for seed in 1..=3 {
        let net = Network {
            seed,
            jitter: Duration::from_millis(100),
            ..on_arrival.clone()
        };
        let jittery = run(&ts, &net, config());
        let (text, pdt) = strip(&jittery);
        assert_eq!(text, clean_text, "seed {seed}");
        assert_eq!(pdt.len(), clean_pdt.len());
        let shift = pdt[0] - clean_pdt[0];
        assert!((0..=100).contains(&shift), "seed {seed}: {shift} ms");
        assert!(
            pdt.iter().zip(&clean_pdt).all(|(j, c)| j - c == shift),
            "seed {seed}: program-date-time moves by one constant"
        );
    }
}
