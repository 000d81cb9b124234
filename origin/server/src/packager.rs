//! The CMAF packager: cuts a broadcast's frames into LL-HLS parts and
//! segments. Sans-IO: frames and the wall clock go in, [`PackagerOutput`]s
//! come out; the caller applies them to the playlists.
//!
//! Cutting rules (RFC 8216bis §4.4.4.9, Apple HLS authoring §9):
//! - The video track drives the boundaries. A part closes before the frame
//!   that would make it longer than the part target, so no part exceeds
//!   PART-TARGET. A segment closes at the first keyframe once it holds
//!   `segment_target` of media (one GOP per segment for GOPs at least that
//!   long), or before the frame that would make it exceed `max_segment`
//!   (EXT-X-TARGETDURATION) when keyframes are too far apart.
//! - The audio track (its own rendition) follows the video boundaries at
//!   audio-frame granularity, so parts and segments of both renditions carry
//!   the same media sequence numbers and part indexes and cover the same
//!   time ± half an audio frame. That is why the audio playlist advertises
//!   a PART-TARGET one audio frame longer (see [`Packager::part_target`]).
//!   An audio-only broadcast cuts by its own clock.
//! - A video frame's duration is the distance to the next frame's DTS, so the
//!   newest video frame is held until the next one arrives (one frame of
//!   latency, as in every muxer that does not guess durations).
//! - A timestamp jump (backwards, or forward by more than 5 s) or a lost
//!   stretch of input closes the segment and starts a new one after an
//!   EXT-X-DISCONTINUITY.

use std::{collections::VecDeque, time::Duration};

use bytes::Bytes;
use livestack_cmaf::{FragmentTrack, InitTrack, Sample};
use livestack_media::model::{Frame, Timescale, TrackParams};

/// The two renditions a broadcast is packaged into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rendition {
    /// The video track (`video.m3u8`).
    Video,
    /// The audio track (`audio.m3u8`).
    Audio,
}

impl Rendition {
    /// The rendition's name in URIs: `video` or `audio`.
    pub fn name(self) -> &'static str {
        match self {
            Rendition::Video => "video",
            Rendition::Audio => "audio",
        }
    }
}

/// Cutting parameters.
#[derive(Debug, Clone, Copy)]
pub struct PackagerConfig {
    /// Maximum part duration (PART-TARGET).
    pub part_target: Duration,
    /// A segment is cut at the first keyframe after this much media.
    pub segment_target: Duration,
    /// Hard maximum segment duration (EXT-X-TARGETDURATION).
    pub max_segment: Duration,
}

/// What the packager produced.
#[derive(Debug, Clone, PartialEq)]
pub enum PackagerOutput {
    /// A (new) init segment for a rendition; parts after it refer to it.
    Init {
        /// The rendition.
        rendition: Rendition,
        /// `ftyp` + `moov`.
        data: Bytes,
    },
    /// A complete part (one CMAF fragment, `moof` + `mdat`).
    Part {
        /// The rendition.
        rendition: Rendition,
        /// The fragment bytes.
        data: Bytes,
        /// Media duration of the part.
        duration: Duration,
        /// True when the part starts with a keyframe.
        independent: bool,
        /// Wall-clock time of the part's first sample, Unix epoch ms.
        program_date_time_ms: i64,
    },
    /// The rendition's open segment is complete.
    SegmentEnd {
        /// The rendition.
        rendition: Rendition,
    },
    /// The next segment of the rendition follows a discontinuity.
    Discontinuity {
        /// The rendition.
        rendition: Rendition,
    },
}

/// Counters the packager keeps (exported as metrics by the caller).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PackagerStats {
    /// Frames dropped because decoding could not start there (before the
    /// first keyframe, or after a discontinuity until the next keyframe).
    pub frames_dropped: u64,
    /// Timestamp discontinuities seen.
    pub discontinuities: u64,
    /// Frames of tracks beyond the first video and first audio track.
    pub extra_track_frames: u64,
}

/// Largest believable gap between two consecutive frames.
const MAX_FRAME_GAP: Duration = Duration::from_secs(5);
/// Audio buffered while waiting to learn whether a video track exists.
const AUDIO_ONLY_DECISION: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct TrackPack {
    id: u32,
    rendition: Rendition,
    params: TrackParams,
    timescale: Timescale,
    samples: Vec<Sample>,
    part_start: Option<i64>,
    part_dur: i64,
    part_independent: bool,
    seg_dur: i64,
    /// Video: the newest frame, waiting for its successor's DTS.
    pending: Option<Frame>,
    /// DTS expected next (last DTS + duration), for gap detection.
    next_dts: Option<i64>,
    last_dur: i64,
    sequence: u32,
    /// Waiting for a keyframe before anything is packaged.
    need_keyframe: bool,
}

impl TrackPack {
    fn new(id: u32, rendition: Rendition, params: TrackParams) -> Self {
        let timescale = params.timescale();
        let params_is_video = params.is_video();
        let last_dur = match &params {
            TrackParams::Video(v) => v
                .frame_rate
                .filter(|(n, d)| *n > 0 && *d > 0)
                .map(|(n, d)| i64::from(d) * 90_000 / i64::from(n))
                .unwrap_or(3000),
            TrackParams::Audio(a) => i64::from(a.samples_per_frame),
        };
        Self {
            id,
            rendition,
            params,
            timescale,
            samples: Vec::new(),
            part_start: None,
            part_dur: 0,
            part_independent: false,
            seg_dur: 0,
            pending: None,
            next_dts: None,
            last_dur,
            sequence: 0,
            // Audio frames are all keyframes; the flag only realigns audio
            // with video after a discontinuity.
            need_keyframe: params_is_video,
        }
    }

    fn ticks(&self, d: Duration) -> i64 {
        self.timescale.from_duration(d)
    }

    fn to_90k(&self, t: i64) -> i64 {
        self.timescale.convert(t, Timescale::MPEG_TS)
    }

    fn append(&mut self, frame: &Frame, duration: i64) {
        if self.part_start.is_none() {
            self.part_start = Some(frame.dts);
            self.part_independent = frame.keyframe;
        }
        let composition_offset = i32::try_from(frame.pts - frame.dts).unwrap_or(0);
        self.samples.push(Sample {
            duration: u32::try_from(duration).unwrap_or(0),
            composition_offset,
            keyframe: frame.keyframe,
            data: frame.data.clone(),
        });
        self.part_dur += duration;
        self.seg_dur += duration;
        self.last_dur = duration;
        self.next_dts = Some(frame.dts + duration);
    }
}

/// The packager of one broadcast. See the module docs for the rules.
#[derive(Debug)]
pub struct Packager {
    config: PackagerConfig,
    video: Option<TrackPack>,
    audio: Option<TrackPack>,
    /// Video boundaries (90 kHz, segment end?) the audio has not passed yet.
    cuts: VecDeque<(i64, bool)>,
    /// Media time (90 kHz) and wall clock (Unix ms) of the first packaged
    /// sample: program-date-time = wall + (dts - media) / 90.
    clock: Option<(i64, i64)>,
    /// Audio frames held while deciding whether the broadcast has video.
    audio_wait: Vec<Frame>,
    audio_only: bool,
    out: VecDeque<PackagerOutput>,
    stats: PackagerStats,
}

impl Packager {
    /// A packager with the given cutting parameters.
    pub fn new(config: PackagerConfig) -> Self {
        Self {
            config,
            video: None,
            audio: None,
            cuts: VecDeque::new(),
            clock: None,
            audio_wait: Vec::new(),
            audio_only: false,
            out: VecDeque::new(),
            stats: PackagerStats::default(),
        }
    }

    /// PART-TARGET to advertise for a rendition: the configured target for
    /// video; for audio that follows video boundaries, one audio frame more
    /// (audio parts align to video parts at audio-frame granularity).
    pub fn part_target(&self, rendition: Rendition) -> Duration {
        let base = self.config.part_target;
        match (rendition, &self.audio) {
            (Rendition::Audio, Some(a)) if !self.audio_only => {
                base + a.timescale.to_duration(a.last_dur)
            }
            _ => base,
        }
    }

    /// Frame rate measured from the video's decode timestamps (frames per
    /// second), for sources whose SPS carries no timing information.
    pub fn measured_frame_rate(&self) -> Option<f64> {
        let v = self.video.as_ref()?;
        (v.last_dur > 0 && v.pending.is_some()).then(|| 90_000.0 / v.last_dur as f64)
    }

    /// Ids of the tracks being packaged.
    pub fn track_ids(&self) -> Vec<u32> {
        [&self.video, &self.audio]
            .into_iter()
            .flatten()
            .map(|t| t.id)
            .collect()
    }

    /// The counters.
    pub fn stats(&self) -> PackagerStats {
        self.stats
    }

    /// Parameters of a rendition's track, once known.
    pub fn params(&self, rendition: Rendition) -> Option<&TrackParams> {
        match rendition {
            Rendition::Video => self.video.as_ref().map(|t| &t.params),
            Rendition::Audio => self.audio.as_ref().map(|t| &t.params),
        }
    }

    /// Next output, if any. Drain after every call that feeds the packager.
    pub fn poll_output(&mut self) -> Option<PackagerOutput> {
        self.out.pop_front()
    }

    /// A track's parameters became known or changed.
    pub fn handle_track(&mut self, id: u32, params: TrackParams) {
        let rendition = if params.is_video() {
            Rendition::Video
        } else {
            Rendition::Audio
        };
        let slot = match rendition {
            Rendition::Video => &mut self.video,
            Rendition::Audio => &mut self.audio,
        };
        match slot {
            Some(t) if t.id != id => return, // a second track of that kind: ignored
            Some(t) if t.params == params => return,
            _ => {}
        }
        let changed = slot.is_some();
        let mut track = TrackPack::new(id, rendition, params);
        if let Some(old) = slot.take() {
            // Finish what the old parameters described, then restart.
            let mut old = old;
            self.flush_track(&mut old);
            track.sequence = old.sequence;
        }
        let init = match livestack_cmaf::try_init_segment(&[InitTrack {
            track_id: 1,
            params: &track.params,
        }]) {
            Ok(init) => init,
            Err(e) => {
                // A codec configuration CMAF cannot carry: the track is not
                // packaged (its frames count as extra-track frames).
                tracing::warn!(error = %e, "track cannot be packaged as CMAF; ignored");
                return;
            }
        };
        self.out.push_back(PackagerOutput::Init {
            rendition,
            data: init,
        });
        if changed {
            self.out
                .push_back(PackagerOutput::Discontinuity { rendition });
        }
        match rendition {
            Rendition::Video => self.video = Some(track),
            Rendition::Audio => self.audio = Some(track),
        }
    }

    /// A frame of track `id`; `now_unix_ms` is the wall clock at arrival,
    /// used once to anchor program-date-time.
    pub fn handle_frame(&mut self, id: u32, frame: Frame, now_unix_ms: i64) {
        if self.video.as_ref().is_some_and(|t| t.id == id) {
            self.video_frame(frame, now_unix_ms);
        } else if self.audio.as_ref().is_some_and(|t| t.id == id) {
            self.audio_frame(frame, now_unix_ms);
        } else {
            self.stats.extra_track_frames += 1;
        }
    }

    /// The input lost data on track `id` (continuity error): the open part
    /// and segment are closed and the track waits for its next keyframe.
    pub fn handle_loss(&mut self, id: u32) {
        for slot in [&mut self.video, &mut self.audio] {
            if let Some(t) = slot.as_mut().filter(|t| t.id == id) {
                Self::close_part(&mut self.out, &mut self.cuts, self.clock, t, true, false);
                t.pending = None;
                t.need_keyframe = true;
                t.next_dts = None;
                self.stats.discontinuities += 1;
                self.out.push_back(PackagerOutput::Discontinuity {
                    rendition: t.rendition,
                });
            }
        }
    }

    /// The publisher is gone: flush everything (the last video frame gets
    /// the previous frame's duration) and close the open segments.
    pub fn finish(&mut self) {
        if let Some(mut v) = self.video.take() {
            self.flush_track(&mut v);
            self.video = Some(v);
        }
        if let Some(mut a) = self.audio.take() {
            self.flush_track(&mut a);
            self.audio = Some(a);
        }
    }

    fn flush_track(&mut self, t: &mut TrackPack) {
        if let Some(p) = t.pending.take() {
            let d = t.last_dur;
            t.append(&p, d);
        }
        let video = t.rendition == Rendition::Video;
        Self::close_part(&mut self.out, &mut self.cuts, self.clock, t, true, video);
    }

    fn video_frame(&mut self, frame: Frame, now_unix_ms: i64) {
        let Some(mut t) = self.video.take() else {
            return;
        };
        if t.need_keyframe && t.pending.is_none() {
            if !frame.keyframe {
                self.stats.frames_dropped += 1;
                self.video = Some(t);
                return;
            }
            t.need_keyframe = false;
        }
        if self.clock.is_none() {
            self.clock = Some((frame.dts, now_unix_ms));
        }
        if let Some(prev) = t.pending.take() {
            let gap = frame.dts - prev.dts;
            let jump = gap <= 0 || gap > t.ticks(MAX_FRAME_GAP);
            let dur = if jump { t.last_dur } else { gap };
            t.append(&prev, dur);
            if jump {
                self.stats.discontinuities += 1;
                Self::close_part(
                    &mut self.out,
                    &mut self.cuts,
                    self.clock,
                    &mut t,
                    true,
                    true,
                );
                self.out.push_back(PackagerOutput::Discontinuity {
                    rendition: Rendition::Video,
                });
                self.clock = Some((frame.dts, now_unix_ms));
                if let Some(a) = self.audio.as_mut() {
                    a.need_keyframe = true;
                    self.cuts.clear();
                }
                if !frame.keyframe {
                    t.need_keyframe = true;
                    self.stats.frames_dropped += 1;
                    self.video = Some(t);
                    return;
                }
            } else {
                // Decide whether `frame` starts a new part and/or segment.
                let est = t.last_dur;
                let seg_target = t.ticks(self.config.segment_target);
                let max_seg = t.ticks(self.config.max_segment);
                let part_target = t.ticks(self.config.part_target);
                // Half a frame of slack: encoders count GOPs in frames, so
                // a 2 s GOP at 25 fps may measure 1.96 s in timestamps.
                let segment_due = (frame.keyframe && t.seg_dur + est / 2 >= seg_target)
                    || t.seg_dur + est > max_seg;
                if segment_due {
                    Self::close_part(
                        &mut self.out,
                        &mut self.cuts,
                        self.clock,
                        &mut t,
                        true,
                        true,
                    );
                } else if t.part_dur + est > part_target {
                    Self::close_part(
                        &mut self.out,
                        &mut self.cuts,
                        self.clock,
                        &mut t,
                        false,
                        true,
                    );
                }
            }
        }
        t.pending = Some(frame);
        self.video = Some(t);
    }

    fn audio_frame(&mut self, frame: Frame, now_unix_ms: i64) {
        let has_video = self.video.is_some();
        let video_started = self.clock.is_some() && has_video;
        if !has_video && !self.audio_only {
            // Wait a little: video parameters may still be on their way.
            self.audio_wait.push(frame);
            let Some(a) = self.audio.as_ref() else {
                return;
            };
            let span = self.audio_wait.len() as i64 * a.last_dur;
            if span >= a.ticks(AUDIO_ONLY_DECISION) {
                self.audio_only = true;
                let held = std::mem::take(&mut self.audio_wait);
                for f in held {
                    self.audio_frame(f, now_unix_ms);
                }
            }
            return;
        }
        if has_video && !video_started {
            // Video exists but has not reached its first keyframe yet.
            self.audio_wait.push(frame);
            if self.audio_wait.len() > 500 {
                self.audio_wait.remove(0);
                self.stats.frames_dropped += 1;
            }
            return;
        }
        if !self.audio_wait.is_empty() {
            let held = std::mem::take(&mut self.audio_wait);
            for f in held {
                self.audio_frame_started(f, now_unix_ms);
            }
        }
        self.audio_frame_started(frame, now_unix_ms);
    }

    fn audio_frame_started(&mut self, frame: Frame, now_unix_ms: i64) {
        let Some(mut t) = self.audio.take() else {
            return;
        };
        let dur = frame
            .duration
            .map(i64::from)
            .filter(|d| *d > 0)
            .unwrap_or(t.last_dur);
        let half = dur / 2;
        if self.audio_only {
            if self.clock.is_none() {
                self.clock = Some((t.to_90k(frame.dts), now_unix_ms));
            }
            if let Some(next) = t.next_dts
                && (frame.dts < next - dur || frame.dts > next + t.ticks(MAX_FRAME_GAP))
            {
                self.stats.discontinuities += 1;
                Self::close_part(
                    &mut self.out,
                    &mut self.cuts,
                    self.clock,
                    &mut t,
                    true,
                    false,
                );
                self.out.push_back(PackagerOutput::Discontinuity {
                    rendition: Rendition::Audio,
                });
                self.clock = Some((t.to_90k(frame.dts), now_unix_ms));
            }
            let seg_target = t.ticks(self.config.segment_target);
            let part_target = t.ticks(self.config.part_target);
            if t.seg_dur + dur > seg_target {
                Self::close_part(
                    &mut self.out,
                    &mut self.cuts,
                    self.clock,
                    &mut t,
                    true,
                    false,
                );
            } else if t.part_dur + dur > part_target {
                Self::close_part(
                    &mut self.out,
                    &mut self.cuts,
                    self.clock,
                    &mut t,
                    false,
                    false,
                );
            }
        } else {
            let start90 = self.clock.map(|c| c.0).unwrap_or(0);
            let at90 = t.to_90k(frame.dts);
            let half90 = t.to_90k(half);
            if t.need_keyframe {
                // Start (or restart) aligned with the video's current start.
                if at90 < start90 - half90 {
                    self.stats.frames_dropped += 1;
                    self.audio = Some(t);
                    return;
                }
                t.need_keyframe = false;
            }
            while let Some(&(cut, segment_end)) = self.cuts.front() {
                if at90 + half90 < cut {
                    break;
                }
                self.cuts.pop_front();
                Self::close_part(
                    &mut self.out,
                    &mut VecDeque::new(),
                    self.clock,
                    &mut t,
                    segment_end,
                    false,
                );
            }
            // Bound the part if the video has stalled.
            let cap = t.ticks(self.config.part_target * 2);
            if t.part_dur + dur > cap {
                Self::close_part(
                    &mut self.out,
                    &mut VecDeque::new(),
                    self.clock,
                    &mut t,
                    false,
                    false,
                );
            }
        }
        t.append(&frame, dur);
        self.audio = Some(t);
    }

    /// Queues the open part of `t` as a [`PackagerOutput::Part`] (and a
    /// segment end). `record_cut`: video boundaries are remembered for audio.
    fn close_part(
        out: &mut VecDeque<PackagerOutput>,
        cuts: &mut VecDeque<(i64, bool)>,
        clock: Option<(i64, i64)>,
        t: &mut TrackPack,
        segment_end: bool,
        record_cut: bool,
    ) {
        if let Some(start) = t.part_start.take() {
            let samples = std::mem::take(&mut t.samples);
            t.sequence = t.sequence.wrapping_add(1);
            let fragment = livestack_cmaf::try_fragment(
                t.sequence,
                &[FragmentTrack {
                    track_id: 1,
                    // Unwrapped MPEG-TS timestamps start at or above zero.
                    base_media_decode_time: u64::try_from(start).unwrap_or(0),
                    samples: &samples,
                }],
            );
            let data = match fragment {
                Ok(d) if !d.is_empty() => d,
                other => {
                    // Only samples beyond the box size limits (4 GiB) get
                    // here; the part is dropped rather than served broken.
                    tracing::warn!(error = ?other.err(), "part cannot be written as CMAF; dropped");
                    t.part_dur = 0;
                    return;
                }
            };
            out.push_back(PackagerOutput::Part {
                rendition: t.rendition,
                data,
                duration: t.timescale.to_duration(t.part_dur),
                independent: t.part_independent,
                program_date_time_ms: clock
                    .map(|(media, wall)| wall + (t.to_90k(start) - media) / 90)
                    .unwrap_or(0),
            });
            if record_cut {
                cuts.push_back((t.to_90k(start + t.part_dur), segment_end));
            }
            t.part_dur = 0;
        }
        if segment_end && t.seg_dur > 0 {
            out.push_back(PackagerOutput::SegmentEnd {
                rendition: t.rendition,
            });
            t.seg_dur = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use livestack_media::model::{AudioCodec, AudioParams, VideoCodec, VideoParams};

    const V: u32 = 256;
    const A: u32 = 257;

    fn video_params() -> TrackParams {
        TrackParams::Video(VideoParams {
            codec: VideoCodec::H264,
            width: 640,
            height: 360,
            frame_rate: Some((25, 1)),
            codec_string: "avc1.64001e".into(),
            decoder_config: Bytes::from_static(&[1, 0x64, 0, 0x1e, 0xff, 0xe0, 0]),
        })
    }

    fn audio_params() -> TrackParams {
        TrackParams::Audio(AudioParams {
            codec: AudioCodec::Aac,
            sample_rate: 48_000,
            channels: 2,
            samples_per_frame: 1024,
            codec_string: "mp4a.40.2".into(),
            decoder_config: Bytes::from_static(&[0x11, 0x90]),
            language: None,
        })
    }

    fn packager() -> Packager {
        Packager::new(PackagerConfig {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(2),
            max_segment: Duration::from_secs(4),
        })
    }

    fn vframe(n: i64, gop: i64) -> Frame {
        Frame {
            pts: n * 3600 + 7200,
            dts: n * 3600,
            duration: None,
            keyframe: n % gop == 0,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        }
    }

    fn aframe(n: i64) -> Frame {
        Frame {
            pts: n * 1024,
            dts: n * 1024,
            duration: Some(1024),
            keyframe: true,
            data: Bytes::from_static(&[0x21]),
        }
    }

    /// (rendition, duration, independent) of every part, and segment ends.
    fn drain(p: &mut Packager) -> Vec<PackagerOutput> {
        std::iter::from_fn(|| p.poll_output()).collect()
    }

    fn parts(out: &[PackagerOutput], r: Rendition) -> Vec<(Duration, bool)> {
        out.iter()
            .filter_map(|o| match o {
                PackagerOutput::Part {
                    rendition,
                    duration,
                    independent,
                    ..
                } if *rendition == r => Some((*duration, *independent)),
                _ => None,
            })
            .collect()
    }

    fn segment_ends(out: &[PackagerOutput], r: Rendition) -> usize {
        out.iter()
            .filter(|o| matches!(o, PackagerOutput::SegmentEnd { rendition } if *rendition == r))
            .count()
    }

    #[test]
    fn parts_never_exceed_the_target_and_segments_follow_gops() {
        let mut p = packager();
        p.handle_track(V, video_params());
        // 10 s of 25 fps video with a 2 s GOP.
        for n in 0..250 {
            p.handle_frame(V, vframe(n, 50), 1_000 + n * 40);
        }
        p.finish();
        let out = drain(&mut p);
        assert!(matches!(
            out[0],
            PackagerOutput::Init {
                rendition: Rendition::Video,
                ..
            }
        ));
        let v = parts(&out, Rendition::Video);
        assert_eq!(v.len(), 50, "5 frames (200 ms) per part");
        assert!(v.iter().all(|(d, _)| *d == Duration::from_millis(200)));
        // Every segment (10 parts) starts with an independent part.
        for (i, (_, independent)) in v.iter().enumerate() {
            assert_eq!(*independent, i % 10 == 0, "part {i}");
        }
        assert_eq!(segment_ends(&out, Rendition::Video), 5);
    }

    #[test]
    fn long_gops_are_cut_at_the_target_duration() {
        let mut p = packager();
        p.handle_track(V, video_params());
        // A 10 s GOP: segments must still end by 4 s (EXT-X-TARGETDURATION).
        for n in 0..250 {
            p.handle_frame(V, vframe(n, 250), 0);
        }
        p.finish();
        let out = drain(&mut p);
        let mut seg = Duration::ZERO;
        for o in &out {
            match o {
                PackagerOutput::Part { duration, .. } => seg += *duration,
                PackagerOutput::SegmentEnd { .. } => {
                    assert!(seg <= Duration::from_secs(4), "segment of {seg:?}");
                    seg = Duration::ZERO;
                }
                _ => {}
            }
        }
        assert_eq!(segment_ends(&out, Rendition::Video), 3);
    }

    #[test]
    fn frames_before_the_first_keyframe_are_dropped() {
        let mut p = packager();
        p.handle_track(V, video_params());
        for n in 45..60 {
            p.handle_frame(V, vframe(n, 50), 0);
        }
        p.finish();
        assert_eq!(p.stats().frames_dropped, 5);
        let out = drain(&mut p);
        assert!(parts(&out, Rendition::Video)[0].1, "starts independent");
    }

    #[test]
    fn audio_follows_video_boundaries_with_the_same_numbering() {
        let mut p = packager();
        p.handle_track(V, video_params());
        p.handle_track(A, audio_params());
        // Interleave 4 s of audio and video by time (90 kHz vs 48 kHz).
        let (mut vn, mut an) = (0i64, 0i64);
        while vn < 100 {
            if an * 1024 * 90_000 / 48_000 <= vn * 3600 {
                p.handle_frame(A, aframe(an), 0);
                an += 1;
            } else {
                p.handle_frame(V, vframe(vn, 50), 0);
                vn += 1;
            }
        }
        p.finish();
        let out = drain(&mut p);
        let v = parts(&out, Rendition::Video);
        let a = parts(&out, Rendition::Audio);
        // Same number of complete parts up to the last video boundary, and
        // audio parts within one AAC frame of their video part.
        assert!(
            a.len() + 1 >= v.len(),
            "audio {} video {}",
            a.len(),
            v.len()
        );
        let frame = Duration::from_nanos(1024 * 1_000_000_000 / 48_000);
        for ((vd, _), (ad, _)) in v.iter().zip(&a).take(v.len() - 1) {
            let diff = if vd > ad { *vd - *ad } else { *ad - *vd };
            assert!(diff <= frame, "video part {vd:?} vs audio part {ad:?}");
            assert!(*ad <= p.part_target(Rendition::Audio));
        }
        assert_eq!(
            segment_ends(&out, Rendition::Video),
            segment_ends(&out, Rendition::Audio)
        );
    }

    #[test]
    fn a_timestamp_jump_starts_a_new_segment_after_a_discontinuity() {
        let mut p = packager();
        p.handle_track(V, video_params());
        for n in 0..20 {
            p.handle_frame(V, vframe(n, 10), 0);
        }
        // The publisher's clock jumps back (restarted encoder).
        for n in 0..20 {
            p.handle_frame(V, vframe(n, 10), 0);
        }
        p.finish();
        let out = drain(&mut p);
        assert_eq!(p.stats().discontinuities, 1);
        let disc = out
            .iter()
            .position(|o| matches!(o, PackagerOutput::Discontinuity { .. }))
            .expect("a discontinuity");
        assert!(
            matches!(out[disc - 1], PackagerOutput::SegmentEnd { .. }),
            "the segment closes before the discontinuity"
        );
    }

    #[test]
    fn audio_only_broadcasts_cut_by_their_own_clock() {
        let mut p = packager();
        p.handle_track(A, audio_params());
        for n in 0..200 {
            p.handle_frame(A, aframe(n), 0);
        }
        p.finish();
        let out = drain(&mut p);
        let a = parts(&out, Rendition::Audio);
        assert!(!a.is_empty());
        assert!(a.iter().all(|(d, _)| *d <= Duration::from_millis(200)));
        assert_eq!(p.part_target(Rendition::Audio), Duration::from_millis(200));
    }

    #[test]
    fn program_date_time_follows_media_time() {
        let mut p = packager();
        p.handle_track(V, video_params());
        for n in 0..20 {
            p.handle_frame(V, vframe(n, 10), 1_000_000 + n * 1000);
        }
        let out = drain(&mut p);
        let pdts: Vec<i64> = out
            .iter()
            .filter_map(|o| match o {
                PackagerOutput::Part {
                    program_date_time_ms,
                    ..
                } => Some(*program_date_time_ms),
                _ => None,
            })
            .collect();
        // Anchored at the first frame's arrival, then advancing by media time
        // (200 ms per part), not by arrival time.
        assert_eq!(pdts[..3], [1_000_000, 1_000_200, 1_000_400]);
    }
}
