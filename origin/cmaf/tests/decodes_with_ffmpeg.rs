//! End to end: real H.264 and AAC from ffmpeg, packaged by the writer,
//! demuxed and decoded by ffprobe / ffmpeg without a single complaint.
//!
//! Needs `ffmpeg` and `ffprobe` on `PATH`; the tests fail (not skip) when
//! they are missing.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use bytes::Bytes;
use livestack_cmaf::{FragmentTrack, InitTrack, Sample, fragment, init_segment, styp};
use livestack_media::model::{
    AudioCodec, AudioParams, MediaTime, Timescale, TrackParams, VideoCodec, VideoParams,
};

const VIDEO_TIMESCALE: i64 = 90_000;
const AUDIO_RATE: u32 = 48_000;
const AAC_FRAME: u32 = 1024;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run `{program}`: {err}. These tests need ffmpeg and ffprobe on PATH \
             (e.g. `apt-get install ffmpeg`)"
            )
        })
}

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = run("ffmpeg", args);
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("livestack-cmaf-{name}"))
}

/// One H.264 access unit in ISOBMFF sample format, timestamps at 90 kHz.
struct VideoAu {
    dts: i64,
    pts: i64,
    duration: i64,
    keyframe: bool,
    data: Bytes,
}

/// Splits an Annex B byte stream at its start codes (ITU-T H.264 Annex B).
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(stream.len(), |&next| next - 3);
        let mut nal = &stream[start..end];
        // Drop the leading zero of a following 4-byte start code.
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        nals.push(nal);
    }
    nals
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).
fn avcc(sps: &[u8], pps: &[u8]) -> Bytes {
    let mut v = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    v.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    v.extend_from_slice(sps);
    v.push(1);
    v.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    v.extend_from_slice(pps);
    v.into()
}

/// Encodes 2 s of 320x240 25 fps test pattern with x264 and `bframes`
/// B-frames. A tee writes the Annex B stream and a `framecrc` listing with
/// each packet's dts, pts, duration and size from the same encode.
fn encode_h264(name: &str, bframes: u32) -> (Bytes, Vec<VideoAu>) {
    let h264 = tmp(&format!("{name}.h264"));
    let crc = tmp(&format!("{name}.crc"));
    let bf = bframes.to_string();
    let tee = format!("[f=h264]{}|[f=framecrc]{}", h264.display(), crc.display());
    ffmpeg(&[
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-bf",
        &bf,
        "-g",
        "25",
        "-threads",
        "1",
        "-map",
        "0:v",
        "-f",
        "tee",
        &tee,
    ]);
    let stream = std::fs::read(&h264).expect("read h264");
    let listing = std::fs::read_to_string(&crc).expect("read framecrc");

    let mut tb_den = 0;
    let mut packets = Vec::new();
    for line in listing.lines() {
        if let Some(tb) = line.strip_prefix("#tb 0: 1/") {
            tb_den = tb.trim().parse::<i64>().expect("time base");
        } else if !line.starts_with('#') {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let num = |i: usize| f[i].parse::<i64>().expect("framecrc number");
            packets.push((num(1), num(2), num(3), num(4) as usize));
        }
    }
    assert!(tb_den > 0, "no time base in framecrc");
    let ticks = |t: i64| t * VIDEO_TIMESCALE / tb_den;

    let (mut sps, mut pps) = (None, None);
    let mut aus = Vec::new();
    let mut at = 0;
    for (dts, pts, duration, size) in packets {
        let au = &stream[at..at + size];
        at += size;
        let mut data = Vec::with_capacity(size + 16);
        let mut keyframe = false;
        for nal in nal_units(au) {
            match nal[0] & 0x1F {
                7 => sps = Some(nal.to_vec()),
                8 => pps = Some(nal.to_vec()),
                9 => {} // access unit delimiter
                t => {
                    keyframe |= t == 5;
                    data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    data.extend_from_slice(nal);
                }
            }
        }
        aus.push(VideoAu {
            dts: ticks(dts),
            pts: ticks(pts),
            duration: ticks(duration),
            keyframe,
            data: data.into(),
        });
    }
    assert_eq!(at, stream.len(), "packet sizes cover the Annex B stream");
    let config = avcc(&sps.expect("an SPS"), &pps.expect("a PPS"));
    (config, aus)
}

/// Encodes 2 s of a 1 kHz sine, 48 kHz mono AAC-LC, as ADTS, and returns
/// the AudioSpecificConfig and the raw frames.
fn encode_aac() -> (Bytes, Vec<Bytes>) {
    let adts = ffmpeg(&[
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000",
        "-t",
        "2",
        "-c:a",
        "aac",
        "-f",
        "adts",
        "-",
    ]);
    let mut frames = Vec::new();
    let mut header = None;
    let mut at = 0;
    while at < adts.len() {
        let h = &adts[at..at + 7];
        assert_eq!((h[0], h[1] & 0xF6), (0xFF, 0xF0), "ADTS syncword at {at}");
        let protection_absent = h[1] & 1 == 1;
        // ISO/IEC 14496-3 §1.A.2.2: profile, sampling index, channel config.
        let fields = (
            h[2] >> 6,
            (h[2] >> 2) & 0x0F,
            ((h[2] & 1) << 2) | (h[3] >> 6),
        );
        assert_eq!(
            *header.get_or_insert(fields),
            fields,
            "constant ADTS header"
        );
        // frame_length: 13 bits at bits 30..43, header included.
        let len =
            (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        let header_len = if protection_absent { 7 } else { 9 };
        frames.push(Bytes::copy_from_slice(&adts[at + header_len..at + len]));
        at += len;
    }
    let (profile, freq, channels) = header.expect("ADTS frames");
    let aot = profile + 1;
    assert_eq!((aot, freq, channels), (2, 3, 1), "AAC-LC, 48 kHz, mono");
    // AudioSpecificConfig (§1.6.2.1): 5 bits AOT, 4 bits frequency index,
    // 4 bits channel configuration, 3 bits of GASpecificConfig zero.
    let asc = (u16::from(aot) << 11) | (u16::from(freq) << 7) | (u16::from(channels) << 3);
    (Bytes::copy_from_slice(&asc.to_be_bytes()), frames)
}

fn video_params(config: Bytes) -> TrackParams {
    TrackParams::Video(VideoParams {
        codec: VideoCodec::H264,
        width: 320,
        height: 240,
        frame_rate: Some((25, 1)),
        codec_string: format!("avc1.{:02x}{:02x}{:02x}", config[1], config[2], config[3]),
        decoder_config: config,
    })
}

fn audio_params(asc: Bytes) -> TrackParams {
    TrackParams::Audio(AudioParams {
        codec: AudioCodec::Aac,
        sample_rate: audio_timescale(),
        channels: 1,
        samples_per_frame: AAC_FRAME,
        codec_string: "mp4a.40.2".into(),
        decoder_config: asc,
        language: None,
    })
}

fn audio_timescale() -> Timescale {
    Timescale::new(AUDIO_RATE).expect("non-zero")
}

/// 90 kHz media time.
fn v90(ticks: i64) -> MediaTime {
    MediaTime::new(ticks, Timescale::MPEG_TS)
}

/// `n` AAC frames of media time.
fn aac_frames(n: usize) -> MediaTime {
    MediaTime::new(n as i64 * i64::from(AAC_FRAME), audio_timescale())
}

/// The samples of `aus`, with dts rebased so the first is 0.
fn video_samples(aus: &[VideoAu]) -> Vec<Sample> {
    aus.iter()
        .enumerate()
        .map(|(i, au)| Sample {
            duration: v90(aus.get(i + 1).map_or(au.duration, |next| next.dts - au.dts)),
            composition_offset: v90(au.pts - au.dts),
            keyframe: au.keyframe,
            data: au.data.clone(),
        })
        .collect()
}

fn audio_samples(frames: &[Bytes]) -> Vec<Sample> {
    frames
        .iter()
        .map(|data| Sample {
            duration: aac_frames(1),
            composition_offset: aac_frames(0),
            keyframe: true,
            data: data.clone(),
        })
        .collect()
}

/// Start indices of the groups of pictures (a fragment each).
fn gop_starts(aus: &[VideoAu]) -> Vec<usize> {
    assert!(aus[0].keyframe, "stream starts with an IDR picture");
    (0..aus.len()).filter(|&i| aus[i].keyframe).collect()
}

/// `ffprobe -count_frames` of one stream as key/value pairs; asserts that
/// ffprobe printed nothing on stderr at `-v error`.
fn probe_stream(file: &str, select: &str, entries: &str) -> HashMap<String, String> {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            select,
            "-show_entries",
            &format!("stream={entries}"),
            "-of",
            "default=noprint_wrappers=1",
            file,
        ],
    );
    assert!(out.status.success(), "ffprobe failed");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "ffprobe -v error must be silent"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `(pts, dts)` of every packet of one stream, in its time base.
fn probe_packets(file: &str, select: &str) -> Vec<(i64, i64)> {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            select,
            "-show_entries",
            "packet=pts,dts",
            "-of",
            "csv=p=0",
            file,
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe packets"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (pts, dts) = l.trim().split_once(',').expect("pts,dts");
            (pts.parse().expect("pts"), dts.parse().expect("dts"))
        })
        .collect()
}

/// Decodes every frame with ffmpeg; errors and warnings fail the test.
fn assert_decodes(file: &str) {
    let out = run("ffmpeg", &["-v", "warning", "-i", file, "-f", "null", "-"]);
    assert!(out.status.success(), "ffmpeg decode failed");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "decode warnings");
}

/// Writes `file` and checks its top-level layout: ftyp, moov, then
/// (styp?) moof + mdat pairs with contiguous offsets.
fn write_file(name: &str, parts: &[Bytes], fragments: usize) -> String {
    let file: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let kinds: Vec<[u8; 4]> = common::atoms(&file).iter().map(|a| a.kind).collect();
    assert_eq!(&kinds[..2], [*b"ftyp", *b"moov"]);
    let moofs = common::atoms(&file)
        .iter()
        .filter(|a| &a.kind == b"moof")
        .count();
    assert_eq!(moofs, fragments);
    let last = *common::atoms(&file).last().expect("boxes");
    assert_eq!(&last.kind, b"mdat");
    assert_eq!(last.offset + 8 + last.body.len(), file.len());
    let path = tmp(name);
    std::fs::write(&path, &file).expect("write mp4");
    path.to_str().expect("utf-8 path").to_owned()
}

fn video_only(name: &str, bframes: u32) {
    let (config, aus) = encode_h264(name, bframes);
    assert_eq!(aus.len(), 50);
    let params = video_params(config);
    let init = init_segment(&[InitTrack {
        track_id: 1,
        params: &params,
    }]);
    assert_eq!(
        common::find(&init, &[b"moov", b"mvex", b"trex"]).body.len(),
        24
    );

    let samples = video_samples(&aus);
    let dts0 = aus[0].dts;
    let starts = gop_starts(&aus);
    let mut parts = vec![init];
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(aus.len());
        parts.push(fragment(
            n as u32 + 1,
            &[FragmentTrack {
                track_id: 1,
                timescale: Timescale::MPEG_TS,
                base_media_decode_time: v90(aus[start].dts - dts0),
                samples: &samples[start..end],
            }],
        ));
    }
    let file = write_file(&format!("{name}.mp4"), &parts, starts.len());

    let s = probe_stream(&file, "v", "codec_name,width,height,nb_read_frames");
    assert_eq!(s["codec_name"], "h264");
    assert_eq!((s["width"].as_str(), s["height"].as_str()), ("320", "240"));
    assert_eq!(s["nb_read_frames"], "50");

    let expected: Vec<(i64, i64)> = aus.iter().map(|a| (a.pts - dts0, a.dts - dts0)).collect();
    assert_eq!(probe_packets(&file, "v"), expected);
    assert_decodes(&file);
}

#[test]
fn h264_without_b_frames() {
    video_only("h264-bf0", 0);
}

/// B-frames: positive composition offsets through `trun` version 1.
#[test]
fn h264_with_b_frames() {
    video_only("h264-bf2", 2);
}

#[test]
fn aac() {
    let (asc, frames) = encode_aac();
    assert!(frames.len() > 90, "about 2 s of 1024-sample frames");
    let params = audio_params(asc);
    let samples = audio_samples(&frames);
    let mut parts = vec![init_segment(&[InitTrack {
        track_id: 1,
        params: &params,
    }])];
    // Fragments of 20 frames.
    for (n, chunk) in samples.chunks(20).enumerate() {
        parts.push(fragment(
            n as u32 + 1,
            &[FragmentTrack {
                track_id: 1,
                timescale: audio_timescale(),
                base_media_decode_time: aac_frames(n * 20),
                samples: chunk,
            }],
        ));
    }
    let file = write_file("aac.mp4", &parts, frames.len().div_ceil(20));

    let s = probe_stream(&file, "a", "codec_name,sample_rate,channels,nb_read_frames");
    assert_eq!(s["codec_name"], "aac");
    assert_eq!(s["sample_rate"], "48000");
    assert_eq!(s["channels"], "1");
    assert_eq!(s["nb_read_frames"], frames.len().to_string());
    assert_decodes(&file);
}

/// Video and audio in the same fragments, each fragment a video GOP plus
/// the audio of the same time span, each preceded by a `styp`: exercises
/// the data offset of a second track.
#[test]
fn h264_and_aac_muxed() {
    let (config, aus) = encode_h264("av", 2);
    let (asc, frames) = encode_aac();
    let video = video_params(config);
    let audio = audio_params(asc);
    let mut parts = vec![init_segment(&[
        InitTrack {
            track_id: 1,
            params: &video,
        },
        InitTrack {
            track_id: 2,
            params: &audio,
        },
    ])];

    let vsamples = video_samples(&aus);
    let asamples = audio_samples(&frames);
    let dts0 = aus[0].dts;
    let starts = gop_starts(&aus);
    let mut next_audio = 0;
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied();
        // Audio frames that start before the next GOP (all for the last).
        let end_time = end.map(|e| aus[e].dts - dts0);
        let audio_end = match end_time {
            Some(t) => (next_audio..asamples.len())
                .find(|&k| {
                    (k as i64 * i64::from(AAC_FRAME)) * VIDEO_TIMESCALE / i64::from(AUDIO_RATE) >= t
                })
                .unwrap_or(asamples.len()),
            None => asamples.len(),
        };
        parts.push(styp());
        parts.push(fragment(
            n as u32 + 1,
            &[
                FragmentTrack {
                    track_id: 1,
                    timescale: Timescale::MPEG_TS,
                    base_media_decode_time: v90(aus[start].dts - dts0),
                    samples: &vsamples[start..end.unwrap_or(aus.len())],
                },
                FragmentTrack {
                    track_id: 2,
                    timescale: audio_timescale(),
                    base_media_decode_time: aac_frames(next_audio),
                    samples: &asamples[next_audio..audio_end],
                },
            ],
        ));
        next_audio = audio_end;
    }
    let file = write_file("av.mp4", &parts, starts.len());

    let v = probe_stream(&file, "v", "codec_name,nb_read_frames");
    assert_eq!(
        (v["codec_name"].as_str(), v["nb_read_frames"].as_str()),
        ("h264", "50")
    );
    let a = probe_stream(&file, "a", "codec_name,nb_read_frames");
    assert_eq!(a["codec_name"], "aac");
    assert_eq!(a["nb_read_frames"], frames.len().to_string());
    assert_decodes(&file);
}
