//! Test sources encoded once with ffmpeg and cached.
//!
//! Files live in `$TMPDIR/livestack-bench/`, named after every encoding
//! parameter, so a second run reuses them (delete the directory to force a
//! new encode). Sources are `testsrc2` video (libx264 `veryfast`, constant
//! GOP, no scene-cut keyframes, 2 B-frames, average bitrate with a
//! maxrate/bufsize cap of one second) and a 440 Hz sine in AAC, in MPEG-TS.

use std::{collections::HashMap, path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};
use livestack_media::{
    ingest::{IngestEvent, TsIngest},
    model::Timescale,
};
use livestack_origin::fanout::MediaEvent;

/// What to encode.
#[derive(Debug, Clone)]
pub struct EncodeSpec {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Length of the file, seconds.
    pub seconds: u32,
    /// Video bitrate, kbit/s (also the maxrate; bufsize = 1 s of it).
    pub video_kbps: u32,
    /// Audio (AAC) bitrate, kbit/s.
    pub audio_kbps: u32,
    /// Keyframe interval, seconds.
    pub gop_secs: u32,
}

impl EncodeSpec {
    fn file_name(&self) -> String {
        format!(
            "testsrc2-{}x{}-{}fps-{}s-v{}k-a{}k-gop{}s.ts",
            self.width,
            self.height,
            self.fps,
            self.seconds,
            self.video_kbps,
            self.audio_kbps,
            self.gop_secs
        )
    }

    /// The ffmpeg arguments that encode this spec into `out`.
    pub fn ffmpeg_args(&self, out: &str) -> Vec<String> {
        let gop = (self.gop_secs * self.fps).to_string();
        let v = format!("{}k", self.video_kbps);
        [
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &format!(
                "testsrc2=size={}x{}:rate={}",
                self.width, self.height, self.fps
            ),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &self.seconds.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "2",
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-sc_threshold",
            "0",
            "-b:v",
            &v,
            "-maxrate",
            &v,
            "-bufsize",
            &v,
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            &format!("{}k", self.audio_kbps),
            "-f",
            "mpegts",
            out,
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// The encoded file for `spec`, encoding it first when not cached.
pub fn encoded(spec: &EncodeSpec) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join("livestack-bench");
    std::fs::create_dir_all(&dir).context("create cache dir")?;
    let path = dir.join(spec.file_name());
    if path.is_file() {
        return Ok(path);
    }
    let tmp = dir.join(format!("{}.{}.part", spec.file_name(), std::process::id()));
    let args = spec.ffmpeg_args(&tmp.to_string_lossy());
    eprintln!("encoding {}: ffmpeg {}", path.display(), args.join(" "));
    let status = Command::new("ffmpeg")
        .args(&args)
        .status()
        .context("run ffmpeg (is it installed?)")?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!("ffmpeg failed to encode {}", path.display());
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Overall bitrate of a media file in bit/s, as ffprobe reports it
/// (container overhead included).
pub fn bitrate(path: &std::path::Path) -> Result<u64> {
    livestack_test_harness::bit_rate(path).context("ffprobe reported no bit_rate")
}

/// A demuxed event with its due time (90 kHz, stream clock: the frame's
/// DTS, never before the previous event's).
pub struct Paced {
    /// Due time, 90 kHz ticks.
    pub due: i64,
    /// The event, as the fan-out takes it.
    pub event: MediaEvent,
    /// True for a video frame.
    pub video: bool,
}

/// Demuxes an MPEG-TS file (as SRT ingest would, 1316-byte chunks) into
/// fan-out events with their due times, for benchmarks that publish in
/// real time.
///
/// # Errors
/// Unreadable file, a frame time that does not rebase, no video.
pub fn demux_paced(path: &std::path::Path) -> Result<Vec<Paced>> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let mut ingest = TsIngest::new();
    let mut raw = Vec::new();
    for chunk in data.chunks(1316) {
        ingest.push(chunk);
        while let Some(e) = ingest.poll_event() {
            raw.push(e);
        }
    }
    ingest.finish();
    while let Some(e) = ingest.poll_event() {
        raw.push(e);
    }
    let mut is_video: HashMap<u32, bool> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    let mut last_due = i64::MIN;
    for e in raw {
        match e {
            IngestEvent::Track { id, params } => {
                is_video.insert(id, params.is_video());
                out.push(Paced {
                    due: last_due.max(0),
                    event: MediaEvent::Track { id, params },
                    video: false,
                });
            }
            IngestEvent::Frame { id, frame } => {
                let video = is_video[&id];
                // Keep the demuxer's order: never due before the previous.
                let due = frame
                    .dts
                    .rebase(Timescale::MPEG_TS)
                    .with_context(|| format!("frame of track {id} at {}", frame.dts))?
                    .ticks()
                    .max(last_due);
                last_due = due;
                out.push(Paced {
                    due,
                    event: MediaEvent::Frame { id, frame },
                    video,
                });
            }
            _ => {}
        }
    }
    if !out.iter().any(|t| t.video) {
        bail!("no video frames demuxed from {}", path.display());
    }
    Ok(out)
}
