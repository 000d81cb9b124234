//! `TsIngest` over real ffmpeg transport streams (see `tests/data/README.md`
//! for how they were made and measured), and its robustness against
//! garbage, truncation, packet loss and random bytes.

use livestack_media::ingest::{IngestEvent, IngestStats, TsIngest};
use livestack_media::model::{AudioCodec, Frame, MediaTime, Timescale, TrackParams, VideoCodec};

const H264_AAC: &[u8] = include_bytes!("data/h264_aac.ts");
const H265_AAC: &[u8] = include_bytes!("data/h265_aac.ts");

/// Both files: video on PID 0x100, audio on PID 0x101 (ffmpeg's defaults).
const VIDEO: u32 = 0x100;
const AUDIO: u32 = 0x101;

/// Encoded video frames in each file: `ffprobe -v error -select_streams v
/// -count_packets -show_entries stream=nb_read_packets` printed 50 for both.
const VIDEO_FRAMES: usize = 50;
/// AAC frames in `h264_aac.ts` (48 kHz stereo): ffprobe `-select_streams a
/// -count_packets` printed 95 (and `-show_frames` decoded 95).
const H264_FILE_AUDIO_FRAMES: usize = 95;
/// AAC frames in `h265_aac.ts` (44.1 kHz mono): ffprobe printed 88.
const H265_FILE_AUDIO_FRAMES: usize = 88;

/// Deterministic xorshift generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

struct Run {
    events: Vec<IngestEvent>,
    stats: IngestStats,
}

impl Run {
    fn new(data: &[u8], chunk: usize) -> Run {
        let mut ingest = TsIngest::new();
        let mut events = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            ingest.push(c);
            events.extend(std::iter::from_fn(|| ingest.poll_event()));
        }
        ingest.finish();
        events.extend(std::iter::from_fn(|| ingest.poll_event()));
        Run {
            events,
            stats: ingest.stats().clone(),
        }
    }

    fn frames(&self, track: u32) -> Vec<&Frame> {
        self.events
            .iter()
            .filter_map(|e| match e {
                IngestEvent::Frame { id, frame } if *id == track => Some(frame),
                _ => None,
            })
            .collect()
    }

    fn tracks(&self, track: u32) -> Vec<&TrackParams> {
        self.events
            .iter()
            .filter_map(|e| match e {
                IngestEvent::Track { id, params } if *id == track => Some(params),
                _ => None,
            })
            .collect()
    }
}

/// Splits a 4-byte length-prefixed sample into NAL units; panics if the
/// lengths do not exactly cover the data.
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let (nal, tail) = tail.split_at(len);
        out.push(nal);
        rest = tail;
    }
    out
}

fn check_av_file(
    run: &Run,
    codec: VideoCodec,
    codec_string: &str,
    keyframes: &[usize],
    audio_rate: u32,
    audio_channels: u8,
    audio_frames: usize,
) {
    // Track params: compare to what ffprobe reports (320x240, profile/level).
    let tracks = run.tracks(VIDEO);
    assert_eq!(tracks.len(), 1, "one video Track event");
    let TrackParams::Video(v) = tracks[0] else {
        panic!("video track has audio params");
    };
    assert_eq!(v.codec, codec);
    assert_eq!((v.width, v.height), (320, 240));
    assert_eq!(v.codec_string, codec_string);
    let tracks = run.tracks(AUDIO);
    assert_eq!(tracks.len(), 1, "one audio Track event");
    let TrackParams::Audio(a) = tracks[0] else {
        panic!("audio track has video params");
    };
    assert_eq!(a.codec, AudioCodec::Aac);
    assert_eq!(a.codec_string, "mp4a.40.2");
    assert_eq!(
        (a.sample_rate.get(), a.channels),
        (audio_rate, audio_channels)
    );

    // The Track event precedes the first frame of its track.
    let first_track = run
        .events
        .iter()
        .position(|e| matches!(e, IngestEvent::Track { id: VIDEO, .. }));
    let first_frame = run
        .events
        .iter()
        .position(|e| matches!(e, IngestEvent::Frame { id: VIDEO, .. }));
    assert!(first_track < first_frame);

    let video = run.frames(VIDEO);
    assert_eq!(video.len(), VIDEO_FRAMES);
    let keys: Vec<usize> = (0..video.len()).filter(|i| video[*i].keyframe).collect();
    assert_eq!(keys, keyframes);
    // B-frames: composition offsets present, DTS strictly increasing by one
    // frame (3600 ticks at 25 fps), PTS never before DTS.
    assert!(video.iter().any(|f| f.pts > f.dts));
    assert!(video.iter().all(|f| f.pts >= f.dts && f.duration.is_none()));
    assert!(video.iter().all(
        |f| f.dts.timescale() == Timescale::MPEG_TS && f.pts.timescale() == Timescale::MPEG_TS
    ));
    assert!(
        video
            .windows(2)
            .all(|w| w[1].dts.checked_sub(w[0].dts) == Ok(MediaTime::from_90khz(3600)))
    );
    // First frame as ffprobe reports it: pts 133200, dts 126000.
    assert_eq!(
        (video[0].pts, video[0].dts),
        (
            MediaTime::from_90khz(133_200),
            MediaTime::from_90khz(126_000)
        )
    );
    for f in &video {
        for nal in nal_units(&f.data) {
            let t = match codec {
                VideoCodec::H264 => nal[0] & 0x1F,
                _ => (nal[0] >> 1) & 0x3F,
            };
            let stripped: &[u8] = match codec {
                VideoCodec::H264 => &[7, 8, 9],
                _ => &[32, 33, 34, 35],
            };
            assert!(!stripped.contains(&t), "NAL type {t} left in a frame");
        }
    }

    let audio = run.frames(AUDIO);
    assert_eq!(audio.len(), audio_frames);
    assert!(
        audio.iter().all(|f| f.keyframe
            && f.duration.map(MediaTime::ticks) == Some(1024)
            && f.pts == f.dts)
    );
    // On the sample clock: one AAC frame apart, ± 1 sample of rounding.
    assert!(audio.iter().all(|f| f.pts.timescale().get() == audio_rate));
    assert!(audio.windows(2).all(|w| {
        w[1].pts
            .checked_sub(w[0].pts)
            .is_ok_and(|d| (d.ticks() - 1024).abs() <= 1)
    }));
    assert!(audio.iter().all(|f| !f.data.is_empty()));
}

#[test]
fn h264_bframes_and_aac() {
    let run = Run::new(H264_AAC, 1316);
    // ffprobe: profile=High level=13, so avc1.64000d; keyframes (flag K) at
    // decode-order packets 0 and 25.
    check_av_file(
        &run,
        VideoCodec::H264,
        "avc1.64000d",
        &[0, 25],
        48_000,
        2,
        H264_FILE_AUDIO_FRAMES,
    );
    let TrackParams::Video(v) = run.tracks(VIDEO)[0] else {
        unreachable!()
    };
    assert_eq!(v.frame_rate, Some((25, 1)));
    assert_eq!(v.decoder_config[..4], [1, 0x64, 0x00, 0x0d]);
    // First AAC packet: ffprobe pts 131280 (90 kHz) = 70016 samples at 48 kHz.
    let audio = run.frames(AUDIO);
    assert_eq!(
        Ok(audio[0].pts),
        MediaTime::from_90khz(131_280).rebase(Timescale::HZ_48000)
    );
    assert_eq!(audio[0].pts, MediaTime::new(70_016, Timescale::HZ_48000));
    assert_eq!(run.stats.parse_errors, 0);
    assert_eq!(run.stats.cc_errors, 0);
    assert_eq!(run.stats.resync_bytes_skipped, 0);
    assert_eq!(run.stats.frames_dropped_before_keyframe, 0);
    assert_eq!(run.stats.packets, H264_AAC.len() as u64 / 188);
}

#[test]
fn h265_bframes_and_aac() {
    let run = Run::new(H265_AAC, 1316);
    // ffprobe: profile=Main level=60; constraint byte 0x90 (progressive,
    // frame-only) from the SPS; keyframes at decode-order packets 0 and 23.
    check_av_file(
        &run,
        VideoCodec::H265,
        "hvc1.1.6.L60.90",
        &[0, 23],
        44_100,
        1,
        H265_FILE_AUDIO_FRAMES,
    );
    let TrackParams::Video(v) = run.tracks(VIDEO)[0] else {
        unreachable!()
    };
    // hvcC: version 1, Main profile, 3 arrays (VPS, SPS, PPS).
    assert_eq!(v.decoder_config[..2], [1, 0x01]);
    assert_eq!(v.decoder_config[22], 3);
    assert_eq!(run.stats.parse_errors, 0);
}

#[test]
fn chunking_does_not_matter() {
    let reference = Run::new(H264_AAC, H264_AAC.len());
    for chunk in [1, 100, 188, 1316, 4096] {
        assert_eq!(
            Run::new(H264_AAC, chunk).events,
            reference.events,
            "chunk {chunk}"
        );
    }
}

#[test]
fn garbage_prefix_and_infix_resync() {
    let mut rng = Rng(0x5EED);
    let mut data = rng.bytes(1000);
    data.extend_from_slice(&H265_AAC[..188 * 100]);
    // Garbage between packets, not starting with a sync byte.
    let mut infix = rng.bytes(77);
    infix[0] = 0x00;
    data.extend_from_slice(&infix);
    data.extend_from_slice(&H265_AAC[188 * 100..]);
    let run = Run::new(&data, 1316);
    let clean = Run::new(H265_AAC, 1316);
    assert_eq!(run.frames(VIDEO), clean.frames(VIDEO));
    assert_eq!(run.frames(AUDIO), clean.frames(AUDIO));
    assert_eq!(run.stats.resync_bytes_skipped, 1077);
    assert_eq!(run.stats.cc_errors, 0);
}

#[test]
fn truncated_input() {
    let full = Run::new(H264_AAC, 1316);
    for cut in [
        0,
        1,
        187,
        189,
        5000,
        H264_AAC.len() / 2 + 77,
        H264_AAC.len() - 1,
    ] {
        let run = Run::new(&H264_AAC[..cut], 1316);
        let v = run.frames(VIDEO).len();
        let a = run.frames(AUDIO).len();
        assert!(
            v <= VIDEO_FRAMES && a <= H264_FILE_AUDIO_FRAMES,
            "cut {cut}"
        );
        // What was delivered is a prefix of the full output.
        assert_eq!(
            run.frames(VIDEO)[..v.saturating_sub(1)],
            full.frames(VIDEO)[..v.saturating_sub(1)]
        );
    }
    // Cut mid-packet then the rest of the stream resumes after garbage.
    let mut data = H264_AAC[..188 * 50 + 100].to_vec();
    data.extend_from_slice(&H264_AAC[188 * 60..]);
    let run = Run::new(&data, 1316);
    assert!(run.stats.resync_bytes_skipped > 0);
    assert!(run.stats.cc_errors > 0);
    assert!(run.frames(VIDEO).len() > 30);
}

/// Index of the first video packet (PID 0x100) after packet `from` that
/// does not start a PES.
fn video_continuation_packet(data: &[u8], from: usize) -> usize {
    (from..data.len() / 188)
        .find(|i| {
            let p = &data[i * 188..];
            let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
            pid == 0x100 && p[1] & 0x40 == 0
        })
        .expect("a video continuation packet")
}

#[test]
fn packet_loss_drops_one_frame_and_is_reported() {
    let i = video_continuation_packet(H264_AAC, 120);
    let mut data = H264_AAC[..i * 188].to_vec();
    data.extend_from_slice(&H264_AAC[(i + 1) * 188..]);
    let run = Run::new(&data, 1316);
    assert_eq!(run.stats.cc_errors, 1);
    assert_eq!(run.stats.pes_dropped, 1);
    assert_eq!(run.frames(VIDEO).len(), VIDEO_FRAMES - 1);
    assert_eq!(run.frames(AUDIO).len(), H264_FILE_AUDIO_FRAMES);
    let discontinuities: Vec<_> = run
        .events
        .iter()
        .filter(|e| matches!(e, IngestEvent::Discontinuity { .. }))
        .collect();
    assert_eq!(discontinuities, [&IngestEvent::Discontinuity { id: VIDEO }]);
}

#[test]
fn duplicate_packet_is_dropped_once() {
    let i = video_continuation_packet(H264_AAC, 120);
    let mut data = H264_AAC[..(i + 1) * 188].to_vec();
    data.extend_from_slice(&H264_AAC[i * 188..]);
    let run = Run::new(&data, 1316);
    assert_eq!(run.stats.cc_errors, 0);
    assert_eq!(run.frames(VIDEO), Run::new(H264_AAC, 1316).frames(VIDEO));
}

#[test]
fn corrupted_continuity_counter() {
    let i = video_continuation_packet(H264_AAC, 120);
    let mut data = H264_AAC.to_vec();
    data[i * 188 + 3] ^= 0x05;
    let run = Run::new(&data, 1316);
    // The corrupted packet and the one after it are both out of sequence.
    assert_eq!(run.stats.cc_errors, 2);
    assert_eq!(run.frames(VIDEO).len(), VIDEO_FRAMES - 1);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0xDEAD_BEEF);
    let noise = rng.bytes(1 << 20);
    let run = Run::new(&noise, 1316);
    assert_eq!(run.stats.bytes, 1 << 20);
    // Noise with sync bytes every 188 bytes exercises the packet parser.
    let mut synced = rng.bytes(188 * 2000);
    for p in synced.chunks_mut(188) {
        p[0] = 0x47;
        p[1] &= 0x1F; // PID 0 and friends: PAT parsing
    }
    Run::new(&synced, 1000);
}

#[test]
fn mutated_streams_never_panic_and_keep_going() {
    for (seed, file) in [
        (1u64, H264_AAC),
        (2, H265_AAC),
        (3, H264_AAC),
        (4, H265_AAC),
    ] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut data = file.to_vec();
        for _ in 0..200 {
            let at = rng.below(data.len());
            data[at] = rng.next() as u8;
        }
        let run = Run::new(&data, 1 + rng.below(3000));
        // 200 flipped bytes out of ~250 packets leave most frames intact.
        assert!(
            run.frames(AUDIO).len() + run.frames(VIDEO).len() > 40,
            "seed {seed}"
        );
    }
}
