//! The CMAF cutter: cuts a broadcast's frames into LL-HLS parts and
//! segments, one rendition per track. Sans-IO: frames and the wall clock go
//! in, [`PackagerOutput`]s come out; [`crate::Broadcast`] applies them to
//! the playlists.
//!
//! Cutting rules (RFC 8216bis §4.4.4.9, Apple HLS authoring §9):
//! - Every video track cuts by its own frames. A part closes before the
//!   frame that would make it longer than the part target, so no part
//!   exceeds PART-TARGET. A segment closes at the first keyframe once it
//!   holds `segment_target` of media (one GOP per segment for GOPs at least
//!   that long), or before the frame that would make it exceed
//!   `max_segment` (EXT-X-TARGETDURATION) when keyframes are too far apart.
//!   Renditions of one encoder ladder have aligned keyframes, so their
//!   segments align too.
//! - The first video track (the *lead*) drives every audio track: each audio
//!   rendition follows the lead's boundaries at audio-frame granularity, so
//!   parts and segments of all renditions carry the same media sequence
//!   numbers and part indexes and cover the same time ± half an audio frame.
//!   That is why audio playlists advertise a PART-TARGET one audio frame
//!   longer (see [`Packager::part_target`]). Audio is held until the lead
//!   closes its first part (and again after a lead discontinuity), so that
//!   audio muxed ahead of the video does not run past the first cut; while
//!   the video stalls, audio parts close at that advertised PART-TARGET and
//!   segments one audio frame after the maximum segment duration.
//!   An audio-only broadcast cuts each audio track by its own clock.
//! - A video frame's duration is the distance to the next frame's DTS, so the
//!   newest video frame is held until the next one arrives (one frame of
//!   latency, as in every muxer that does not guess durations).
//! - A timestamp jump (backwards, or forward by more than 5 s) or a lost
//!   stretch of input closes the segment and starts a new one after an
//!   EXT-X-DISCONTINUITY.

use std::{collections::VecDeque, time::Duration};

use bytes::Bytes;
use livestack_cmaf::{FragmentTrack, InitTrack, Sample};
use livestack_media::model::{Frame, MediaTime, TimeError, Timescale, TrackParams};

use crate::rendition::{Rendition, RenditionKind};

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

/// What the cutter produced.
#[derive(Debug, Clone, PartialEq)]
pub enum PackagerOutput {
    /// A (new) init segment for a rendition; parts after it refer to it.
    Init {
        /// The rendition.
        rendition: Rendition,
        /// The track's parameters the init segment describes.
        params: TrackParams,
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

impl PackagerOutput {
    /// The rendition the output belongs to.
    pub fn rendition(&self) -> Rendition {
        match self {
            PackagerOutput::Init { rendition, .. }
            | PackagerOutput::Part { rendition, .. }
            | PackagerOutput::SegmentEnd { rendition }
            | PackagerOutput::Discontinuity { rendition } => *rendition,
        }
    }
}

/// Counters the packager keeps (exported as metrics by the caller).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PackagerStats {
    /// Frames dropped because decoding could not start there (before the
    /// first keyframe, or after a discontinuity until the next keyframe).
    pub frames_dropped: u64,
    /// Timestamp discontinuities seen.
    pub discontinuities: u64,
    /// Frames of tracks that are not packaged: unknown ids, codecs CMAF
    /// cannot carry, tracks beyond [`MAX_TRACKS`].
    pub extra_track_frames: u64,
    /// Frames refused because CMAF cannot carry their times: a time that
    /// does not fit 64-bit ticks of the track's clock, a negative decode
    /// time (the `tfdt` `baseMediaDecodeTime` is unsigned, ISO/IEC 14496-12
    /// §8.8.12), a composition offset beyond the signed 32 bits of `trun`
    /// (§8.8.8), or durations that sum beyond 64 bits. Each is logged; the
    /// track continues as after a loss ([`Packager::handle_loss`]).
    pub timing_errors: u64,
    /// Parts left out because they could not be written as CMAF (sizes or
    /// times beyond what the boxes hold); each is logged.
    pub parts_dropped: u64,
}

/// Most tracks packaged per broadcast; frames of further tracks are counted
/// in [`PackagerStats::extra_track_frames`]. Bounds memory per broadcast.
pub const MAX_TRACKS: usize = 16;
/// Largest believable gap between two consecutive frames.
const MAX_FRAME_GAP: Duration = Duration::from_secs(5);
/// Audio buffered while waiting to learn whether a video track exists.
const AUDIO_ONLY_DECISION: Duration = Duration::from_secs(1);
/// Audio frames held per track while the video has not started.
const AUDIO_WAIT_FRAMES: usize = 500;
/// Frame rate assumed for a video track whose SPS has no timing info,
/// until frames arrive: 30 fps (the first frame's duration is only used
/// when no second one ever comes).
const DEFAULT_FRAME_RATE: (u32, u32) = (30, 1);

/// Why a frame or a part cannot be packaged. Logged and counted, never
/// returned: a publisher's bad timestamps must not stop the stream.
#[derive(Debug, thiserror::Error)]
enum PackError {
    /// A time computation has no answer (overflow, clocks mixed).
    #[error(transparent)]
    Time(#[from] TimeError),
    /// CMAF cannot write the part.
    #[error(transparent)]
    Cmaf(#[from] livestack_cmaf::Error),
    /// The decode time is negative: no `tfdt` can hold it.
    #[error("decode time {0} is negative")]
    NegativeDecodeTime(MediaTime),
    /// The composition offset does not fit the 32 bits of `trun`.
    #[error("composition offset {0} does not fit 32 bits")]
    CompositionOffset(MediaTime),
    /// A part closed before any media time anchored program-date-time.
    #[error("no media time anchors program-date-time yet")]
    NoClockAnchor,
    /// A part without samples (cannot happen: a part opens with a sample).
    #[error("empty part")]
    EmptyPart,
}

/// The cutting parameters on one track's clock.
#[derive(Debug, Clone, Copy)]
struct Limits {
    part_target: MediaTime,
    segment_target: MediaTime,
    max_segment: MediaTime,
    max_frame_gap: MediaTime,
    audio_only_decision: MediaTime,
}

impl Limits {
    fn new(config: &PackagerConfig, timescale: Timescale) -> Result<Self, TimeError> {
        let ticks = |d: Duration| MediaTime::from_duration(d, timescale);
        let part_target = ticks(config.part_target)?;
        Ok(Self {
            part_target,
            segment_target: ticks(config.segment_target)?,
            max_segment: ticks(config.max_segment)?,
            max_frame_gap: ticks(MAX_FRAME_GAP)?,
            audio_only_decision: ticks(AUDIO_ONLY_DECISION)?,
        })
    }
}

/// Half of `t`, rounded toward zero (a halving never overflows).
fn half(t: MediaTime) -> MediaTime {
    MediaTime::new(t.ticks() / 2, t.timescale())
}

/// `frame` with its times on `timescale` (the track's `mdhd` clock), after
/// checking that CMAF can carry them: a non-negative decode time and a
/// composition offset within 32 bits.
fn on_clock(frame: Frame, timescale: Timescale) -> Result<Frame, PackError> {
    let pts = frame.pts.rebase(timescale)?;
    let dts = frame.dts.rebase(timescale)?;
    let duration = frame.duration.map(|d| d.rebase(timescale)).transpose()?;
    if dts.is_negative() {
        return Err(PackError::NegativeDecodeTime(dts));
    }
    let offset = pts.checked_sub(dts)?;
    if i32::try_from(offset.ticks()).is_err() {
        return Err(PackError::CompositionOffset(offset));
    }
    Ok(Frame {
        pts,
        dts,
        duration,
        ..frame
    })
}

#[derive(Debug)]
struct TrackPack {
    id: u32,
    rendition: Rendition,
    params: TrackParams,
    /// The track's clock (its `mdhd` timescale); every time below is on it.
    timescale: Timescale,
    limits: Limits,
    samples: Vec<Sample>,
    part_start: Option<MediaTime>,
    part_dur: MediaTime,
    part_independent: bool,
    seg_dur: MediaTime,
    /// Video: the newest frame, waiting for its successor's DTS.
    pending: Option<Frame>,
    /// DTS expected next (last DTS + duration), for gap detection.
    next_dts: Option<MediaTime>,
    /// Duration of the newest sample; never negative.
    last_dur: MediaTime,
    sequence: u32,
    /// Waiting for a keyframe before anything is packaged.
    need_keyframe: bool,
    /// Audio: lead video boundaries (end time on the lead's clock, segment
    /// end?) not passed yet.
    cuts: VecDeque<(MediaTime, bool)>,
    /// Audio: frames held while deciding whether the broadcast has video,
    /// or until the video starts.
    wait: Vec<Frame>,
}

impl TrackPack {
    fn new(
        id: u32,
        rendition: Rendition,
        params: TrackParams,
        config: &PackagerConfig,
    ) -> Result<Self, TimeError> {
        let timescale = params.timescale();
        let params_is_video = params.is_video();
        let last_dur = match &params {
            TrackParams::Video(v) => {
                let (n, d) = v
                    .frame_rate
                    .filter(|(n, d)| *n > 0 && *d > 0)
                    .unwrap_or(DEFAULT_FRAME_RATE);
                // d ticks of an n Hz clock: one frame (n > 0 from the filter).
                let rate = Timescale::new(n).ok_or(TimeError::ZeroTimescale)?;
                MediaTime::new(d.into(), rate).rebase(timescale)?
            }
            TrackParams::Audio(a) => MediaTime::new(a.samples_per_frame.into(), timescale),
        };
        Ok(Self {
            id,
            rendition,
            params,
            timescale,
            limits: Limits::new(config, timescale)?,
            samples: Vec::new(),
            part_start: None,
            part_dur: MediaTime::zero(timescale),
            part_independent: false,
            seg_dur: MediaTime::zero(timescale),
            pending: None,
            next_dts: None,
            last_dur,
            sequence: 0,
            // Audio frames are all keyframes; the flag only realigns audio
            // with video after a discontinuity.
            need_keyframe: params_is_video,
            cuts: VecDeque::new(),
            wait: Vec::new(),
        })
    }

    fn is_lead(&self) -> bool {
        self.rendition == Rendition::VIDEO
    }

    /// Appends `frame` (on the track's clock, see [`on_clock`]) lasting
    /// `duration` (not negative) to the open part. Changes nothing on error.
    fn append(&mut self, frame: &Frame, duration: MediaTime) -> Result<(), TimeError> {
        let composition_offset = frame.composition_offset()?;
        let next_dts = frame.dts.checked_add(duration)?;
        let part_dur = self.part_dur.checked_add(duration)?;
        let seg_dur = self.seg_dur.checked_add(duration)?;
        if self.part_start.is_none() {
            self.part_start = Some(frame.dts);
            self.part_independent = frame.keyframe;
        }
        self.samples.push(Sample {
            duration,
            composition_offset,
            keyframe: frame.keyframe,
            data: frame.data.clone(),
        });
        self.part_dur = part_dur;
        self.seg_dur = seg_dur;
        self.last_dur = duration;
        self.next_dts = Some(next_dts);
        Ok(())
    }

    /// Queues the open part as a [`PackagerOutput::Part`] (and a segment
    /// end). Returns the boundary (end of the part on this track's clock,
    /// segment end?) when a part was closed, for the audio tracks to
    /// follow. A part that cannot be written is left out, logged and
    /// counted.
    fn close_part(
        &mut self,
        out: &mut VecDeque<PackagerOutput>,
        clock: Option<(MediaTime, i64)>,
        segment_end: bool,
        stats: &mut PackagerStats,
    ) -> Option<(MediaTime, bool)> {
        let mut cut = None;
        if let Some(start) = self.part_start.take() {
            let samples = std::mem::take(&mut self.samples);
            self.sequence = self.sequence.wrapping_add(1);
            match self.part(start, &samples, clock) {
                Ok((part, end)) => {
                    out.push_back(part);
                    cut = Some((end, segment_end));
                }
                Err(error) => {
                    // Only samples beyond the box size limits (4 GiB) or
                    // times beyond 64 bits get here; the part is dropped
                    // rather than served broken.
                    stats.parts_dropped += 1;
                    tracing::warn!(%error, rendition = %self.rendition.name(), "part cannot be written as CMAF; dropped");
                }
            }
            self.part_dur = MediaTime::zero(self.timescale);
        }
        if segment_end && self.seg_dur > MediaTime::zero(self.timescale) {
            out.push_back(PackagerOutput::SegmentEnd {
                rendition: self.rendition,
            });
            self.seg_dur = MediaTime::zero(self.timescale);
        }
        cut
    }

    /// The part starting at `start` made of `samples`, and its end time.
    fn part(
        &self,
        start: MediaTime,
        samples: &[Sample],
        clock: Option<(MediaTime, i64)>,
    ) -> Result<(PackagerOutput, MediaTime), PackError> {
        let data = livestack_cmaf::try_fragment(
            self.sequence,
            &[FragmentTrack {
                track_id: 1,
                timescale: self.timescale,
                base_media_decode_time: start,
                samples,
            }],
        )?;
        if data.is_empty() {
            return Err(PackError::EmptyPart);
        }
        let (media, wall) = clock.ok_or(PackError::NoClockAnchor)?;
        // program-date-time = wall + (start − media), in milliseconds.
        let since_anchor = start
            .rebase(media.timescale())?
            .checked_sub(media)?
            .rebase(Timescale::MILLIS)?;
        let program_date_time_ms = since_anchor.checked_add_ticks(wall)?.ticks();
        let part = PackagerOutput::Part {
            rendition: self.rendition,
            data,
            duration: self.part_dur.to_duration()?,
            independent: self.part_independent,
            program_date_time_ms,
        };
        Ok((part, start.checked_add(self.part_dur)?))
    }
}

/// The cutter of one broadcast, for any number of video and audio tracks.
/// See the module docs for the rules.
#[derive(Debug)]
pub struct Packager {
    config: PackagerConfig,
    /// Packaged tracks in order of appearance.
    tracks: Vec<TrackPack>,
    /// Media time (on the clock of the track that set it) and wall clock
    /// (Unix ms) of the first packaged sample: program-date-time = wall +
    /// (dts − media).
    clock: Option<(MediaTime, i64)>,
    audio_only: bool,
    /// The lead video has closed a part since it (re)started. Until then
    /// audio is held: audio muxed ahead of the video would otherwise fill
    /// its first part past the first cut.
    lead_cut: bool,
    /// The wall clock of the newest frame, Unix ms, for frames released at
    /// the end.
    last_unix_ms: i64,
    out: VecDeque<PackagerOutput>,
    stats: PackagerStats,
}

impl Packager {
    /// A packager with the given cutting parameters.
    pub fn new(config: PackagerConfig) -> Self {
        Self {
            config,
            tracks: Vec::new(),
            clock: None,
            audio_only: false,
            lead_cut: false,
            last_unix_ms: 0,
            out: VecDeque::new(),
            stats: PackagerStats::default(),
        }
    }

    /// The cutting parameters.
    pub fn config(&self) -> &PackagerConfig {
        &self.config
    }

    /// PART-TARGET to advertise for a rendition: the configured target for
    /// video; for audio that follows video boundaries, one audio frame more
    /// (audio parts align to video parts at audio-frame granularity).
    pub fn part_target(&self, rendition: Rendition) -> Duration {
        let base = self.config.part_target;
        match self.track_of(rendition) {
            Some(a) if !rendition.is_video() && !self.audio_only => {
                let frame = a
                    .last_dur
                    .to_duration()
                    .expect("last_dur is never negative: it is a positive gap, a positive frame duration or the frame-rate estimate");
                base + frame
            }
            _ => base,
        }
    }

    /// Frame rate measured from the lead video's decode timestamps (frames
    /// per second), for sources whose SPS carries no timing information.
    pub fn measured_frame_rate(&self) -> Option<f64> {
        let v = self.track_of(Rendition::VIDEO)?;
        let ticks = v.last_dur.ticks();
        (ticks > 0 && v.pending.is_some()).then(|| f64::from(v.timescale.get()) / ticks as f64)
    }

    /// Ids of the tracks being packaged.
    pub fn track_ids(&self) -> Vec<u32> {
        self.tracks.iter().map(|t| t.id).collect()
    }

    /// The counters.
    pub fn stats(&self) -> PackagerStats {
        self.stats
    }

    /// Parameters of a rendition's track, once known.
    pub fn params(&self, rendition: Rendition) -> Option<&TrackParams> {
        self.track_of(rendition).map(|t| &t.params)
    }

    /// Next output, if any. Drain after every call that feeds the packager.
    pub fn poll_output(&mut self) -> Option<PackagerOutput> {
        self.out.pop_front()
    }

    fn track_of(&self, rendition: Rendition) -> Option<&TrackPack> {
        self.tracks.iter().find(|t| t.rendition == rendition)
    }

    fn position(&self, id: u32) -> Option<usize> {
        self.tracks.iter().position(|t| t.id == id)
    }

    /// A track's parameters became known or changed. A new track id becomes
    /// the next rendition of its kind (see [`Rendition`]); new parameters
    /// of a known track continue its rendition after a discontinuity. A
    /// track id that changes kind is ignored, and so is a track CMAF
    /// cannot carry (logged).
    pub fn handle_track(&mut self, id: u32, params: TrackParams) {
        let kind = if params.is_video() {
            RenditionKind::Video
        } else {
            RenditionKind::Audio
        };
        let existing = self.position(id);
        let rendition = match existing {
            Some(i) if self.tracks[i].params == params => return,
            Some(i) if self.tracks[i].rendition.kind != kind => return,
            Some(i) => self.tracks[i].rendition,
            None if self.tracks.len() >= MAX_TRACKS => return,
            None => {
                let count = self
                    .tracks
                    .iter()
                    .filter(|t| t.rendition.kind == kind)
                    .count();
                let Ok(index) = u16::try_from(count) else {
                    return;
                };
                Rendition::new(kind, index)
            }
        };
        let init = match livestack_cmaf::try_init_segment(&[InitTrack {
            track_id: 1,
            params: &params,
        }]) {
            Ok(init) => init,
            Err(e) => {
                // A codec configuration CMAF cannot carry: the track is not
                // packaged (its frames count as extra-track frames).
                tracing::warn!(error = %e, "track cannot be packaged as CMAF; ignored");
                return;
            }
        };
        let mut track = match TrackPack::new(id, rendition, params.clone(), &self.config) {
            Ok(track) => track,
            Err(e) => {
                // A frame rate or cutting targets beyond 64-bit ticks of the
                // track's clock.
                tracing::warn!(error = %e, "track timing cannot be packaged; ignored");
                return;
            }
        };
        if let Some(i) = existing {
            // Finish what the old parameters described, then restart.
            self.flush_track(i);
            track.sequence = self.tracks[i].sequence;
            track.cuts = std::mem::take(&mut self.tracks[i].cuts);
            self.tracks[i] = track;
        } else {
            self.tracks.push(track);
        }
        self.out.push_back(PackagerOutput::Init {
            rendition,
            params,
            data: init,
        });
        if existing.is_some() {
            self.out
                .push_back(PackagerOutput::Discontinuity { rendition });
        }
    }

    /// A frame of track `id`; `now_unix_ms` is the wall clock at arrival,
    /// used once to anchor program-date-time.
    ///
    /// The frame's times are rebased onto the track's clock. A frame whose
    /// times CMAF cannot carry is refused (see
    /// [`PackagerStats::timing_errors`]): logged, counted, and the track
    /// continues as after [`handle_loss`](Self::handle_loss).
    pub fn handle_frame(&mut self, id: u32, frame: Frame, now_unix_ms: i64) {
        let Some(i) = self.position(id) else {
            self.stats.extra_track_frames += 1;
            return;
        };
        self.last_unix_ms = now_unix_ms;
        let result = match on_clock(frame, self.tracks[i].timescale) {
            Ok(frame) if self.tracks[i].rendition.is_video() => {
                self.video_frame(i, frame, now_unix_ms)
            }
            Ok(frame) => self.audio_frame(i, frame, now_unix_ms),
            Err(e) => Err(e),
        };
        if let Err(error) = result {
            self.stats.timing_errors += 1;
            tracing::warn!(%error, rendition = %self.tracks[i].rendition.name(), "frame times cannot be packaged; frame refused");
            self.handle_loss(id);
        }
    }

    /// The input lost data on track `id` (continuity error): the open part
    /// and segment are closed and the track waits for its next keyframe.
    pub fn handle_loss(&mut self, id: u32) {
        let Some(i) = self.position(id) else {
            return;
        };
        let t = &mut self.tracks[i];
        t.close_part(&mut self.out, self.clock, true, &mut self.stats);
        t.pending = None;
        t.need_keyframe = true;
        t.next_dts = None;
        let rendition = t.rendition;
        self.stats.discontinuities += 1;
        self.out
            .push_back(PackagerOutput::Discontinuity { rendition });
    }

    /// The publisher is gone: flush everything (the last video frame gets
    /// the previous frame's duration) and close the open segments.
    pub fn finish(&mut self) {
        // Video first: its last cut releases the audio still held.
        let (video, audio): (Vec<usize>, Vec<usize>) =
            (0..self.tracks.len()).partition(|&i| self.tracks[i].rendition.is_video());
        for i in video {
            self.flush_track(i);
        }
        let video_started = self.clock.is_some() && self.tracks.iter().any(|t| t.is_lead());
        for i in audio {
            if video_started {
                self.lead_cut = true;
                let held = std::mem::take(&mut self.tracks[i].wait);
                for f in held {
                    self.held_audio_frame(i, f, self.last_unix_ms);
                }
            }
            self.flush_track(i);
        }
    }

    fn flush_track(&mut self, i: usize) {
        let t = &mut self.tracks[i];
        if let Some(p) = t.pending.take() {
            let d = t.last_dur;
            if let Err(error) = t.append(&p, d) {
                self.stats.timing_errors += 1;
                tracing::warn!(%error, rendition = %t.rendition.name(), "last frame times cannot be packaged; frame refused");
            }
        }
        let cut = t.close_part(&mut self.out, self.clock, true, &mut self.stats);
        if t.is_lead() {
            self.push_cut(cut);
        }
    }

    /// Hands a lead video boundary to every audio track.
    fn push_cut(&mut self, cut: Option<(MediaTime, bool)>) {
        let Some(cut) = cut else {
            return;
        };
        self.lead_cut = true;
        for a in self.tracks.iter_mut().filter(|t| !t.rendition.is_video()) {
            a.cuts.push_back(cut);
        }
    }

    fn video_frame(&mut self, i: usize, frame: Frame, now_unix_ms: i64) -> Result<(), PackError> {
        let t = &mut self.tracks[i];
        let lead = t.is_lead();
        if t.need_keyframe && t.pending.is_none() {
            if !frame.keyframe {
                self.stats.frames_dropped += 1;
                return Ok(());
            }
            t.need_keyframe = false;
        }
        if self.clock.is_none() {
            self.clock = Some((frame.dts, now_unix_ms));
        }
        let mut cut = None;
        let mut realign_audio = false;
        if let Some(prev) = t.pending.take() {
            let gap = frame.dts.checked_sub(prev.dts)?;
            let jump = gap <= MediaTime::zero(t.timescale) || gap > t.limits.max_frame_gap;
            let dur = if jump { t.last_dur } else { gap };
            t.append(&prev, dur)?;
            if jump {
                self.stats.discontinuities += 1;
                t.close_part(&mut self.out, self.clock, true, &mut self.stats);
                self.out.push_back(PackagerOutput::Discontinuity {
                    rendition: t.rendition,
                });
                if lead {
                    self.clock = Some((frame.dts, now_unix_ms));
                    realign_audio = true;
                }
                if !frame.keyframe {
                    t.need_keyframe = true;
                    self.stats.frames_dropped += 1;
                    if realign_audio {
                        self.realign_audio();
                    }
                    return Ok(());
                }
            } else {
                // Decide whether `frame` starts a new part and/or segment.
                let est = t.last_dur;
                let limits = t.limits;
                // Half a frame of slack: encoders count GOPs in frames, so
                // a 2 s GOP at 25 fps may measure 1.96 s in timestamps.
                let segment_due = (frame.keyframe
                    && t.seg_dur.checked_add(half(est))? >= limits.segment_target)
                    || t.seg_dur.checked_add(est)? > limits.max_segment;
                if segment_due {
                    cut = t.close_part(&mut self.out, self.clock, true, &mut self.stats);
                } else if t.part_dur.checked_add(est)? > limits.part_target {
                    cut = t.close_part(&mut self.out, self.clock, false, &mut self.stats);
                }
            }
        }
        t.pending = Some(frame);
        if realign_audio {
            self.realign_audio();
        } else if lead {
            self.push_cut(cut);
        }
        Ok(())
    }

    /// After a lead video discontinuity: audio restarts aligned with the
    /// video's new start, held until its first cut.
    fn realign_audio(&mut self) {
        self.lead_cut = false;
        for a in self.tracks.iter_mut().filter(|t| !t.rendition.is_video()) {
            a.need_keyframe = true;
            a.cuts.clear();
        }
    }

    fn audio_frame(&mut self, i: usize, frame: Frame, now_unix_ms: i64) -> Result<(), PackError> {
        let has_video = self.tracks.iter().any(|t| t.rendition.is_video());
        // Audio follows the lead video once it cuts (see `lead_cut`).
        let video_started = self.clock.is_some() && has_video && self.lead_cut;
        if !has_video && !self.audio_only {
            // Wait a little: video parameters may still be on their way.
            let t = &mut self.tracks[i];
            t.wait.push(frame);
            // The span held so far, saturating: anything beyond 64 bits is
            // past the decision.
            let span = i64::try_from(t.wait.len())
                .ok()
                .and_then(|n| t.last_dur.ticks().checked_mul(n))
                .unwrap_or(i64::MAX);
            if MediaTime::new(span, t.timescale) >= t.limits.audio_only_decision {
                self.audio_only = true;
                for j in 0..self.tracks.len() {
                    let held = std::mem::take(&mut self.tracks[j].wait);
                    for f in held {
                        self.held_audio_frame(j, f, now_unix_ms);
                    }
                }
            }
            return Ok(());
        }
        if has_video && !video_started {
            // Video exists but has not reached its first keyframe, or not
            // closed its first part, yet.
            let t = &mut self.tracks[i];
            t.wait.push(frame);
            if t.wait.len() > AUDIO_WAIT_FRAMES {
                t.wait.remove(0);
                self.stats.frames_dropped += 1;
            }
            return Ok(());
        }
        if !self.tracks[i].wait.is_empty() {
            let held = std::mem::take(&mut self.tracks[i].wait);
            for f in held {
                self.held_audio_frame(i, f, now_unix_ms);
            }
        }
        self.audio_frame_started(i, frame, now_unix_ms)
    }

    /// [`Self::audio_frame_started`] for a frame that was held: an error is
    /// logged and counted here, as [`Self::handle_frame`] does.
    fn held_audio_frame(&mut self, i: usize, frame: Frame, now_unix_ms: i64) {
        if let Err(error) = self.audio_frame_started(i, frame, now_unix_ms) {
            self.stats.timing_errors += 1;
            tracing::warn!(%error, rendition = %self.tracks[i].rendition.name(), "frame times cannot be packaged; frame refused");
            self.handle_loss(self.tracks[i].id);
        }
    }

    fn audio_frame_started(
        &mut self,
        i: usize,
        frame: Frame,
        now_unix_ms: i64,
    ) -> Result<(), PackError> {
        let t = &mut self.tracks[i];
        let limits = t.limits;
        let zero = MediaTime::zero(t.timescale);
        let dur = frame.duration.filter(|d| *d > zero).unwrap_or(t.last_dur);
        if self.audio_only {
            if self.clock.is_none() {
                self.clock = Some((frame.dts, now_unix_ms));
            }
            if let Some(next) = t.next_dts
                && (frame.dts < next.checked_sub(dur)?
                    || frame.dts > next.checked_add(limits.max_frame_gap)?)
            {
                self.stats.discontinuities += 1;
                t.close_part(&mut self.out, self.clock, true, &mut self.stats);
                self.out.push_back(PackagerOutput::Discontinuity {
                    rendition: t.rendition,
                });
                if t.rendition == Rendition::AUDIO {
                    self.clock = Some((frame.dts, now_unix_ms));
                }
            }
            if t.seg_dur.checked_add(dur)? > limits.segment_target {
                t.close_part(&mut self.out, self.clock, true, &mut self.stats);
            } else if t.part_dur.checked_add(dur)? > limits.part_target {
                t.close_part(&mut self.out, self.clock, false, &mut self.stats);
            }
        } else {
            // The middle of this frame, compared exactly with the lead
            // video's times (another clock).
            let middle = frame.dts.checked_add(half(dur))?;
            if t.need_keyframe {
                // Start (or restart) aligned with the video's current start.
                if let Some((start, _)) = self.clock
                    && middle < start
                {
                    self.stats.frames_dropped += 1;
                    return Ok(());
                }
                t.need_keyframe = false;
            }
            while let Some(&(cut, segment_end)) = t.cuts.front() {
                if middle < cut {
                    break;
                }
                t.cuts.pop_front();
                t.close_part(&mut self.out, self.clock, segment_end, &mut self.stats);
            }
            // Bound the part if the video has stalled (or lost data and
            // waits for a keyframe): never beyond the PART-TARGET audio
            // advertises, one frame over the video's (RFC 8216bis
            // §4.4.4.9: a part MUST NOT exceed it).
            let cap = limits.part_target.checked_add(t.last_dur)?;
            // Likewise segments: one frame over the video's maximum at
            // most, so EXTINF still rounds to EXT-X-TARGETDURATION
            // (RFC 8216bis §4.4.3.1).
            let segment_cap = limits.max_segment.checked_add(t.last_dur)?;
            if t.seg_dur.checked_add(dur)? > segment_cap {
                t.close_part(&mut self.out, self.clock, true, &mut self.stats);
            } else if t.part_dur.checked_add(dur)? > cap {
                t.close_part(&mut self.out, self.clock, false, &mut self.stats);
            }
        }
        t.append(&frame, dur)?;
        Ok(())
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
            sample_rate: Timescale::HZ_48000,
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
            pts: MediaTime::from_90khz(n * 3600 + 7200),
            dts: MediaTime::from_90khz(n * 3600),
            duration: None,
            keyframe: n % gop == 0,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        }
    }

    fn samples(n: i64) -> MediaTime {
        MediaTime::new(n, Timescale::HZ_48000)
    }

    fn aframe(n: i64) -> Frame {
        Frame {
            pts: samples(n * 1024),
            dts: samples(n * 1024),
            duration: Some(samples(1024)),
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
                rendition: Rendition::VIDEO,
                ..
            }
        ));
        let v = parts(&out, Rendition::VIDEO);
        assert_eq!(v.len(), 50, "5 frames (200 ms) per part");
        assert!(v.iter().all(|(d, _)| *d == Duration::from_millis(200)));
        // Every segment (10 parts) starts with an independent part.
        for (i, (_, independent)) in v.iter().enumerate() {
            assert_eq!(*independent, i % 10 == 0, "part {i}");
        }
        assert_eq!(segment_ends(&out, Rendition::VIDEO), 5);
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
        assert_eq!(segment_ends(&out, Rendition::VIDEO), 3);
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
        assert!(parts(&out, Rendition::VIDEO)[0].1, "starts independent");
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
        let v = parts(&out, Rendition::VIDEO);
        let a = parts(&out, Rendition::AUDIO);
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
            assert!(*ad <= p.part_target(Rendition::AUDIO));
        }
        assert_eq!(
            segment_ends(&out, Rendition::VIDEO),
            segment_ends(&out, Rendition::AUDIO)
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
        let a = parts(&out, Rendition::AUDIO);
        assert!(!a.is_empty());
        assert!(a.iter().all(|(d, _)| *d <= Duration::from_millis(200)));
        assert_eq!(p.part_target(Rendition::AUDIO), Duration::from_millis(200));
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

    /// Times CMAF cannot carry are refused one frame at a time, counted, and
    /// the track goes on from its next keyframe; nothing panics and no
    /// time becomes zero.
    #[test]
    fn frames_with_unpackageable_times_are_refused_and_counted() {
        let mut p = packager();
        p.handle_track(V, video_params());
        for n in 0..10 {
            p.handle_frame(V, vframe(n, 5), 0);
        }
        // A negative decode time: no tfdt holds it.
        let mut negative = vframe(10, 5);
        negative.dts = MediaTime::from_90khz(-3600);
        p.handle_frame(V, negative, 0);
        assert_eq!(p.stats().timing_errors, 1);
        // A composition offset beyond the 32 bits of trun.
        let mut far = vframe(11, 5);
        far.pts = MediaTime::from_90khz(1 << 40);
        p.handle_frame(V, far, 0);
        assert_eq!(p.stats().timing_errors, 2);
        // A decode time at the end of 64 bits: its end overflows.
        let mut end = vframe(15, 5);
        end.dts = MediaTime::from_90khz(i64::MAX - 10);
        end.pts = end.dts;
        p.handle_frame(V, end, 0);
        p.handle_frame(V, vframe(16, 5), 0);
        // Times on a clock that does not fit the track's 64 bits.
        let mut huge = vframe(20, 5);
        huge.dts = MediaTime::new(i64::MAX / 2, Timescale::MILLIS);
        p.handle_frame(V, huge, 0);
        assert_eq!(p.stats().timing_errors, 4);
        // The stream goes on at the next keyframe.
        for n in 25..40 {
            p.handle_frame(V, vframe(n, 5), 0);
        }
        p.finish();
        let out = drain(&mut p);
        assert!(
            out.iter()
                .any(|o| matches!(o, PackagerOutput::Discontinuity { .. }))
        );
        let v = parts(&out, Rendition::VIDEO);
        assert!(v.len() >= 4, "{v:?}");
        assert_eq!(p.stats().parts_dropped, 0);
    }

    /// A frame on another clock is rebased onto the track's (90 kHz): the
    /// same media in milliseconds cuts the same parts.
    #[test]
    fn frames_on_another_clock_are_rebased() {
        let ms = |ticks| MediaTime::new(ticks, Timescale::MILLIS);
        let mut a = packager();
        let mut b = packager();
        a.handle_track(V, video_params());
        b.handle_track(V, video_params());
        for n in 0..50 {
            a.handle_frame(V, vframe(n, 25), 0);
            let f = vframe(n, 25);
            b.handle_frame(
                V,
                Frame {
                    pts: ms(n * 40 + 80),
                    dts: ms(n * 40),
                    ..f
                },
                0,
            );
        }
        a.finish();
        b.finish();
        assert_eq!(drain(&mut a), drain(&mut b));
        assert_eq!(b.stats().timing_errors, 0);
    }
}
