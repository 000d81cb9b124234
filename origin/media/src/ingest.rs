//! MPEG-TS → media model: tracks and frames from transport stream bytes.
//!
//! [`TsIngest`] is sans-IO, in the quinn-proto / str0m shape: call
//! [`TsIngest::push`] with received bytes (any chunking), then drain
//! [`TsIngest::poll_event`] until it returns `None`. Every push must be
//! followed by a complete drain; events are queued until then. At the end of
//! the input call [`TsIngest::finish`] (and drain again) to get the last
//! unbounded video PES.
//!
//! Per elementary stream (track id = the PID):
//! - **H.264 / H.265**: each PES is taken as one access unit (what ffmpeg,
//!   OBS and hardware encoders send). Parameter sets (SPS/PPS/VPS) are moved
//!   out of the frame into the decoder configuration, and a new
//!   [`IngestEvent::Track`] precedes the first frame whenever they change.
//!   Access unit delimiters and filler data are removed, everything else
//!   (SEI included) is kept, converted to 4-byte length prefixes
//!   (ISO/IEC 14496-15 §4.3). A frame is a keyframe when it holds an IDR
//!   slice (H.264) or IRAP picture (H.265). Frames before the first keyframe
//!   and before the parameter sets are dropped and counted. Timestamps stay
//!   in 90 kHz; a missing DTS means DTS = PTS.
//! - **AAC (ADTS)**: each ADTS frame becomes one frame of 1024 samples in
//!   the sample-rate timescale; the PES PTS is converted from 90 kHz and the
//!   following frames of the same PES are 1024 samples apart.
//! - **Anything else** (Opus included, for now) is reported once as
//!   [`IngestEvent::Unsupported`].
//!
//! Timestamps are unwrapped across the 33-bit PTS wrap (ISO/IEC 13818-1
//! §2.4.3.7) per track: each is mapped to the value ≡ raw (mod 2³³) closest
//! to the track's previous DTS, so they keep increasing through the wrap.
//! They start at the stream's own values (no rebasing, so tracks stay in
//! sync and DTS is non-negative in practice) and are `i64`, so `pts − dts`
//! and values just before a wrap stay representable.
//!
//! Malformed input never panics and never stops the stream: broken pieces
//! are dropped and counted in [`IngestStats`]. Memory per PID is bounded by
//! the demuxer's PES cap ([`crate::ts::MAX_PES_LEN`]).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::adts;
use crate::annexb::{split_annexb, to_length_prefixed};
use crate::model::{Frame, TrackParams, VideoCodec, VideoParams};
use crate::time::{MediaTime, Timescale};
use crate::ts::{Pes, StreamKind, Timestamp33, TsDemuxer, TsEvent};
use crate::{h264, h265};

/// The modulus of PTS/DTS values: 2³³ ticks of 90 kHz (about 26.5 hours).
const WRAP: i64 = Timestamp33::MODULUS as i64;

/// Output of [`TsIngest`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestEvent {
    /// The parameters of track `id` became known or changed. Always emitted
    /// before the first [`IngestEvent::Frame`] that uses them.
    Track {
        /// Track id: the elementary stream's PID.
        id: u32,
        /// Codec, size/rate and decoder configuration.
        params: TrackParams,
    },
    /// One access unit of track `id`, timestamps in the track's timescale.
    Frame {
        /// Track id: the elementary stream's PID.
        id: u32,
        /// The access unit.
        frame: Frame,
    },
    /// The PMT announced a stream this crate cannot package. Reported once
    /// per PID; its data is ignored.
    Unsupported {
        /// The elementary stream's PID.
        id: u32,
        /// Its `stream_type` (ISO/IEC 13818-1 Table 2-34).
        stream_type: u8,
    },
    /// Data of track `id` was lost (continuity counter gap); the partial
    /// PES was dropped. Following frames continue without waiting for a
    /// keyframe, so decoders may show errors until the next one.
    Discontinuity {
        /// Track id: the elementary stream's PID.
        id: u32,
    },
}

/// Counters of a [`TsIngest`]. All only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestStats {
    /// Transport packets processed.
    pub packets: u64,
    /// Bytes pushed.
    pub bytes: u64,
    /// Bytes skipped while looking for packet sync.
    pub resync_bytes_skipped: u64,
    /// Continuity counter errors.
    pub cc_errors: u64,
    /// PES packets dropped (partial on loss, truncated, oversized or with a
    /// bad header).
    pub pes_dropped: u64,
    /// Video frames dropped because no keyframe (or no parameter sets) had
    /// been seen yet on their track.
    pub frames_dropped_before_keyframe: u64,
    /// Malformed packets, sections, PES headers, parameter sets, ADTS
    /// headers, and PES without timestamps or with timestamps that no
    /// longer fit 64-bit ticks once unwrapped, that were skipped.
    pub parse_errors: u64,
}

/// Per-track timestamp unwrapping state.
#[derive(Debug, Default)]
struct Unwrapper {
    /// The last unwrapped DTS, in 90 kHz ticks.
    reference: Option<i64>,
}

impl Unwrapper {
    /// The value ≡ `raw` (mod 2³³) closest to the reference; `None` when
    /// it does not fit 64 bits (after some 10⁹ wraps).
    fn extend(&self, raw: Timestamp33) -> Option<i64> {
        // Below 2³³: exact.
        let raw = raw.ticks() as i64;
        let Some(reference) = self.reference else {
            return Some(raw);
        };
        let v = reference
            .checked_sub(reference.rem_euclid(WRAP))?
            .checked_add(raw)?;
        // |v − reference| < 2³³: no overflow.
        if v - reference > WRAP / 2 {
            v.checked_sub(WRAP)
        } else if reference - v > WRAP / 2 {
            v.checked_add(WRAP)
        } else {
            Some(v)
        }
    }

    /// Unwraps a (pts, dts) pair and advances the reference to the DTS.
    /// `None` (the reference is then forgotten: the track restarts from
    /// the coded values) when a value no longer fits 64 bits.
    fn pts_dts(
        &mut self,
        pts: Timestamp33,
        dts: Option<Timestamp33>,
    ) -> Option<(MediaTime, MediaTime)> {
        let unwrapped = self.extend(dts.unwrap_or(pts)).and_then(|dts| {
            self.reference = Some(dts);
            Some((self.extend(pts)?, dts))
        });
        if unwrapped.is_none() {
            self.reference = None;
        }
        unwrapped.map(|(pts, dts)| (MediaTime::from_90khz(pts), MediaTime::from_90khz(dts)))
    }
}

#[derive(Debug)]
struct VideoTrack {
    codec: VideoCodec,
    vps: Option<Vec<u8>>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    params: Option<VideoParams>,
    seen_keyframe: bool,
    clock: Unwrapper,
}

impl VideoTrack {
    /// A track of `codec` before its parameter sets and first keyframe.
    fn new(codec: VideoCodec) -> Self {
        Self {
            codec,
            vps: None,
            sps: None,
            pps: None,
            params: None,
            seen_keyframe: false,
            clock: Unwrapper::default(),
        }
    }
}

#[derive(Debug, Default)]
struct AudioTrack {
    params: Option<crate::model::AudioParams>,
    /// ISO 639-2 code from the PMT, copied into the track parameters.
    language: Option<String>,
    clock: Unwrapper,
    /// PTS of the frame expected next, in the sample-rate timescale.
    next_pts: Option<MediaTime>,
}

#[derive(Debug)]
enum Track {
    Video(Box<VideoTrack>),
    Audio(AudioTrack),
    Ignored,
}

/// MPEG-TS ingest: transport stream bytes in, [`IngestEvent`]s out. See the
/// module docs.
#[derive(Debug)]
pub struct TsIngest {
    demux: TsDemuxer,
    tracks: HashMap<u16, Track>,
    /// PIDs already reported as unsupported.
    reported: Vec<u16>,
    events: VecDeque<IngestEvent>,
    stats: IngestStats,
    /// Parse errors found here (the demuxer counts its own).
    own_parse_errors: u64,
}

impl Default for TsIngest {
    fn default() -> Self {
        Self::new()
    }
}

impl TsIngest {
    /// An ingest waiting for its first PAT.
    pub fn new() -> Self {
        TsIngest {
            demux: TsDemuxer::new(),
            tracks: HashMap::new(),
            reported: Vec::new(),
            events: VecDeque::new(),
            stats: IngestStats::default(),
            own_parse_errors: 0,
        }
    }

    /// Feeds transport stream bytes, in chunks of any size. Drain
    /// [`poll_event`](Self::poll_event) afterwards.
    pub fn push(&mut self, bytes: &[u8]) {
        self.demux.push(bytes);
        self.process();
    }

    /// Signals the end of the input, flushing the PES still being
    /// reassembled (an unbounded video PES ends only here or at the next
    /// one). Drain [`poll_event`](Self::poll_event) afterwards.
    pub fn finish(&mut self) {
        self.demux.finish();
        self.process();
    }

    /// Takes the next event, or `None` when all input so far is consumed.
    pub fn poll_event(&mut self) -> Option<IngestEvent> {
        self.events.pop_front()
    }

    /// The counters.
    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }

    fn process(&mut self) {
        while let Some(event) = self.demux.poll_event() {
            match event {
                TsEvent::Stream {
                    pid,
                    stream_type,
                    kind,
                    language,
                } => self.on_stream(pid, stream_type, kind, language),
                TsEvent::Pes(pes) => self.on_pes(pes),
                TsEvent::Discontinuity { pid } => {
                    if matches!(
                        self.tracks.get(&pid),
                        Some(Track::Video(_) | Track::Audio(_))
                    ) {
                        self.events
                            .push_back(IngestEvent::Discontinuity { id: pid.into() });
                    }
                }
            }
        }
        let d = self.demux.stats();
        self.stats.packets = d.packets;
        self.stats.bytes = d.bytes;
        self.stats.resync_bytes_skipped = d.resync_bytes_skipped;
        self.stats.cc_errors = d.cc_errors;
        self.stats.pes_dropped = d.pes_dropped;
        self.stats.parse_errors = d.parse_errors + self.own_parse_errors;
    }

    fn on_stream(
        &mut self,
        pid: u16,
        stream_type: u8,
        kind: StreamKind,
        language: Option<[u8; 3]>,
    ) {
        let track = match kind {
            StreamKind::H264 | StreamKind::H265 => {
                Track::Video(Box::new(VideoTrack::new(if kind == StreamKind::H264 {
                    VideoCodec::H264
                } else {
                    VideoCodec::H265
                })))
            }
            StreamKind::AacAdts => Track::Audio(AudioTrack {
                // Three ASCII letters (checked by the demuxer).
                language: language.map(|l| l.iter().map(|&c| char::from(c)).collect()),
                ..AudioTrack::default()
            }),
            _ => {
                if !self.reported.contains(&pid) {
                    self.reported.push(pid);
                    self.events.push_back(IngestEvent::Unsupported {
                        id: pid.into(),
                        stream_type,
                    });
                }
                Track::Ignored
            }
        };
        self.tracks.insert(pid, track);
    }

    fn on_pes(&mut self, pes: Pes) {
        match self.tracks.get_mut(&pes.pid) {
            Some(Track::Video(v)) => {
                let out = video_pes(v, &pes, &mut self.stats, &mut self.own_parse_errors);
                self.events.extend(out);
            }
            Some(Track::Audio(a)) => {
                let out = audio_pes(a, &pes, &mut self.own_parse_errors);
                self.events.extend(out);
            }
            _ => {}
        }
    }
}

/// Turns one video PES (one access unit) into events.
fn video_pes(
    v: &mut VideoTrack,
    pes: &Pes,
    stats: &mut IngestStats,
    parse_errors: &mut u64,
) -> Vec<IngestEvent> {
    let id = u32::from(pes.pid);
    let Some(pts) = pes.pts else {
        *parse_errors += 1;
        return Vec::new();
    };
    let Some((pts, dts)) = v.clock.pts_dts(pts, pes.dts) else {
        *parse_errors += 1;
        return Vec::new();
    };
    access_unit(
        v,
        id,
        split_annexb(&pes.data),
        (pts, dts),
        stats,
        parse_errors,
    )
}

/// One access unit of `v` (its NAL units, any order) at `pts`/`dts`:
/// parameter sets move into the track's parameters (a `Track` event when
/// they change), AUDs and filler go, the rest becomes one length-prefixed
/// frame, dropped before the first keyframe or parameters.
fn access_unit<'a>(
    v: &mut VideoTrack,
    id: u32,
    nals: impl IntoIterator<Item = &'a [u8]>,
    (pts, dts): (MediaTime, MediaTime),
    stats: &mut IngestStats,
    parse_errors: &mut u64,
) -> Vec<IngestEvent> {
    let mut out = Vec::new();
    let mut keep: Vec<&[u8]> = Vec::new();
    let mut keyframe = false;
    let mut has_vcl = false;
    let mut ps_changed = false;
    let mut store = |slot: &mut Option<Vec<u8>>, nal: &[u8]| {
        if slot.as_deref() != Some(nal) {
            *slot = Some(nal.to_vec());
            ps_changed = true;
        }
    };
    for nal in nals {
        match v.codec {
            VideoCodec::H265 => {
                let Ok(header) = h265::NalHeader::parse(nal) else {
                    *parse_errors += 1;
                    continue;
                };
                match header.nal_unit_type {
                    h265::NAL_VPS => store(&mut v.vps, nal),
                    h265::NAL_SPS => store(&mut v.sps, nal),
                    h265::NAL_PPS => store(&mut v.pps, nal),
                    h265::NAL_AUD | h265::NAL_FD => {}
                    t => {
                        keyframe |= header.is_irap();
                        has_vcl |= t < 32;
                        keep.push(nal);
                    }
                }
            }
            _ => {
                let Ok(header) = h264::NalHeader::parse(nal) else {
                    *parse_errors += 1;
                    continue;
                };
                match header.nal_unit_type {
                    h264::NAL_SPS => store(&mut v.sps, nal),
                    h264::NAL_PPS => store(&mut v.pps, nal),
                    h264::NAL_AUD | h264::NAL_FILLER => {}
                    t => {
                        keyframe |= header.is_idr();
                        has_vcl |= (1..=5).contains(&t);
                        keep.push(nal);
                    }
                }
            }
        }
    }

    if ps_changed {
        let params = match (v.codec, &v.vps, &v.sps, &v.pps) {
            (VideoCodec::H265, Some(vps), Some(sps), Some(pps)) => {
                Some(h265::video_params(vps, sps, pps).map_err(|_| ()))
            }
            (VideoCodec::H265, ..) => None,
            (_, _, Some(sps), Some(pps)) => Some(h264::video_params(sps, pps).map_err(|_| ())),
            _ => None,
        };
        match params {
            Some(Ok(p)) if v.params.as_ref() != Some(&p) => {
                v.params = Some(p.clone());
                out.push(IngestEvent::Track {
                    id,
                    params: TrackParams::Video(p),
                });
            }
            Some(Err(())) => *parse_errors += 1,
            _ => {}
        }
    }

    if !has_vcl {
        return out;
    }
    if v.params.is_none() || !(v.seen_keyframe || keyframe) {
        stats.frames_dropped_before_keyframe += 1;
        return out;
    }
    v.seen_keyframe = true;
    out.push(IngestEvent::Frame {
        id,
        frame: Frame {
            pts,
            dts,
            duration: None,
            keyframe,
            data: Bytes::from(to_length_prefixed(keep)),
        },
    });
    out
}

/// One H.264 or H.265 video track whose access units arrive whole, each
/// with its timestamps (Media over QUIC ingest), rather than in a
/// transport stream: the per-access-unit half of [`TsIngest`], with the
/// same rules (parameter sets out of band, AUDs and filler removed,
/// 4-byte length prefixes, frames before the first keyframe dropped).
///
/// Input shapes: Annex B with in-band parameter sets (`avc3`/`hev1`,
/// [`push_annexb`](Self::push_annexb)), or length-prefixed NAL units with
/// an out-of-band `avcC` record (`avc1`, [`set_avc_config`](Self::set_avc_config)
/// then [`push_length_prefixed`](Self::push_length_prefixed)).
#[derive(Debug)]
pub struct AccessUnitIngest {
    id: u32,
    track: VideoTrack,
    /// Bytes of each NAL unit's length prefix (from the `avcC` record).
    length_size: usize,
    stats: IngestStats,
    parse_errors: u64,
}

impl AccessUnitIngest {
    /// A track with id `id` of `codec`.
    pub fn new(id: u32, codec: VideoCodec) -> Self {
        Self {
            id,
            track: VideoTrack::new(codec),
            length_size: 4,
            stats: IngestStats::default(),
            parse_errors: 0,
        }
    }

    /// Takes the parameter sets of an `AVCDecoderConfigurationRecord`
    /// (ISO/IEC 14496-15 §5.3.3.1) and its NAL length size; the `Track`
    /// event follows if they are new.
    ///
    /// # Errors
    /// [`h264::H264Error`] for a truncated record or an unusable SPS.
    pub fn set_avc_config(&mut self, record: &[u8]) -> Result<Vec<IngestEvent>, h264::H264Error> {
        let (length_size, sps, pps) = h264::avcc_parameter_sets(record)?;
        self.length_size = length_size;
        let nals: Vec<&[u8]> = sps.into_iter().chain(pps).collect();
        let ts = MediaTime::from_90khz(0);
        Ok(access_unit(
            &mut self.track,
            self.id,
            nals,
            (ts, ts),
            &mut self.stats,
            &mut self.parse_errors,
        ))
    }

    /// One Annex B access unit.
    pub fn push_annexb(&mut self, data: &[u8], pts: MediaTime, dts: MediaTime) -> Vec<IngestEvent> {
        access_unit(
            &mut self.track,
            self.id,
            split_annexb(data),
            (pts, dts),
            &mut self.stats,
            &mut self.parse_errors,
        )
    }

    /// One access unit of length-prefixed NAL units (the size set by
    /// [`set_avc_config`](Self::set_avc_config), 4 by default). A
    /// truncated unit ends the access unit there and is counted as a parse
    /// error.
    pub fn push_length_prefixed(
        &mut self,
        data: &[u8],
        pts: MediaTime,
        dts: MediaTime,
    ) -> Vec<IngestEvent> {
        let mut nals = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let Some((len, body)) = read_length(rest, self.length_size) else {
                self.parse_errors += 1;
                break;
            };
            let Some(nal) = body.get(..len) else {
                self.parse_errors += 1;
                break;
            };
            nals.push(nal);
            rest = &body[len..];
        }
        access_unit(
            &mut self.track,
            self.id,
            nals,
            (pts, dts),
            &mut self.stats,
            &mut self.parse_errors,
        )
    }

    /// Frames dropped before the first keyframe (and parse errors in
    /// [`IngestStats::parse_errors`]).
    pub fn stats(&self) -> IngestStats {
        IngestStats {
            parse_errors: self.parse_errors,
            ..self.stats.clone()
        }
    }
}

/// A big-endian length of `size` (1, 2 or 4) bytes and what follows it.
fn read_length(data: &[u8], size: usize) -> Option<(usize, &[u8])> {
    let (head, body) = (data.get(..size)?, data.get(size..)?);
    let len = head
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((len, body))
}

/// Turns one AAC PES (one or more ADTS frames) into events.
fn audio_pes(a: &mut AudioTrack, pes: &Pes, parse_errors: &mut u64) -> Vec<IngestEvent> {
    let mut out = Vec::new();
    let id = u32::from(pes.pid);
    let pes_pts = match pes.pts.map(|pts| a.clock.pts_dts(pts, None)) {
        Some(Some((pts, _))) => Some(pts),
        Some(None) => {
            *parse_errors += 1;
            return out;
        }
        None => None,
    };
    let mut index = 0i64;
    for frame in adts::frames(&pes.data) {
        let Ok(frame) = frame else {
            *parse_errors += 1;
            continue;
        };
        let Ok(mut params) = frame.header.audio_params() else {
            *parse_errors += 1;
            continue;
        };
        params.language.clone_from(&a.language);
        let rate = params.sample_rate;
        if a.params.as_ref() != Some(&params) {
            a.params = Some(params.clone());
            out.push(IngestEvent::Track {
                id,
                params: TrackParams::Audio(params),
            });
        }
        let spf = i64::from(adts::SAMPLES_PER_FRAME);
        let pts = audio_frame_pts(pes_pts, a.next_pts, index, rate);
        index += 1;
        let Some((pts, next)) = pts.and_then(|p| Some((p, p.checked_add_ticks(spf).ok()?))) else {
            // No time at all, or one beyond 64 bits of ticks.
            *parse_errors += 1;
            continue;
        };
        a.next_pts = Some(next);
        out.push(IngestEvent::Frame {
            id,
            frame: Frame {
                pts,
                dts: pts,
                duration: Some(MediaTime::new(spf, rate)),
                keyframe: true,
                data: Bytes::copy_from_slice(frame.payload),
            },
        });
    }
    out
}

/// The PTS of ADTS frame `index` of a PES on the sample clock `rate`: the
/// PES PTS (90 kHz) rebased, plus the frames before it in the PES; without
/// a PES PTS, where the previous frame ended. `None` without either, or
/// when the result does not fit 64 bits.
fn audio_frame_pts(
    pes_pts: Option<MediaTime>,
    next_pts: Option<MediaTime>,
    index: i64,
    rate: Timescale,
) -> Option<MediaTime> {
    let spf = i64::from(adts::SAMPLES_PER_FRAME);
    match (pes_pts, next_pts) {
        (Some(p90), _) => p90
            .rebase(rate)
            .ok()?
            .checked_add_ticks(index.checked_mul(spf)?)
            .ok(),
        (None, Some(next)) => next.rebase(rate).ok(),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::test_util::*;
    use crate::ts::{STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264};

    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        v
    }

    fn drain(i: &mut TsIngest) -> Vec<IngestEvent> {
        std::iter::from_fn(|| i.poll_event()).collect()
    }

    fn header() -> Vec<u8> {
        let mut v = pat(0x1000, 0);
        v.extend(pmt(
            0x1000,
            0,
            &[
                (STREAM_TYPE_H264, 0x100, &[]),
                (STREAM_TYPE_AAC_ADTS, 0x101, &[]),
                (0x86, 0x102, &[]),
            ],
        ));
        v
    }

    /// `pts_dts` on raw values (taken modulo 2³³), as 90 kHz ticks.
    fn unwrap(u: &mut Unwrapper, pts: u64, dts: Option<u64>) -> (i64, i64) {
        let (pts, dts) = u
            .pts_dts(Timestamp33::wrapping(pts), dts.map(Timestamp33::wrapping))
            .expect("fits 64 bits");
        assert_eq!(pts.timescale(), Timescale::MPEG_TS);
        (pts.ticks(), dts.ticks())
    }

    #[test]
    fn unwrap_across_33_bits() {
        let mut u = Unwrapper::default();
        let near_end = (1u64 << 33) - 3000;
        assert_eq!(
            unwrap(&mut u, near_end + 6000, Some(near_end)),
            (WRAP + 3000, WRAP - 3000)
        );
        // PTS and DTS both after the wrap now.
        assert_eq!(unwrap(&mut u, 3000, Some(0)), (WRAP + 3000, WRAP));
        assert_eq!(unwrap(&mut u, 9000, Some(6000)), (WRAP + 9000, WRAP + 6000));
        // A B-frame PTS slightly before the reference stays before it.
        let mut u = Unwrapper::default();
        assert_eq!(unwrap(&mut u, 100, Some(100)), (100, 100));
        assert_eq!(unwrap(&mut u, WRAP as u64 - 50, None), (-50, -50));
    }

    #[test]
    fn unwrapping_beyond_64_bits_is_an_error_and_restarts() {
        let mut u = Unwrapper {
            reference: Some(i64::MAX - 10),
        };
        // The next wrap would pass i64::MAX.
        let raw = Timestamp33::wrapping((i64::MAX - 10) as u64 + WRAP as u64 / 4);
        assert_eq!(u.pts_dts(raw, None), None);
        assert_eq!(u.reference, None);
        let (pts, _) = u
            .pts_dts(raw, None)
            .expect("restarted from the coded value");
        assert_eq!(pts.ticks(), raw.ticks() as i64);
    }

    #[test]
    fn audio_pts_comes_from_the_pes_or_the_previous_frame() {
        let rate = Timescale::HZ_48000;
        let p90 = MediaTime::from_90khz(90_000);
        assert_eq!(
            audio_frame_pts(Some(p90), None, 2, rate),
            Some(MediaTime::new(48_000 + 2048, rate))
        );
        let next = MediaTime::new(500, rate);
        assert_eq!(audio_frame_pts(None, Some(next), 0, rate), Some(next));
        assert_eq!(audio_frame_pts(None, None, 0, rate), None);
        assert_eq!(audio_frame_pts(Some(p90), None, i64::MAX, rate), None);
    }

    #[test]
    fn video_params_keyframe_gating_and_au_conversion() {
        let mut s = header();
        let mut cc = 0;
        let aud: &[u8] = &[0x09, 0xF0];
        let p_slice: &[u8] = &[0x41, 0x9A, 0x01];
        let idr: &[u8] = &[0x65, 0x88, 0x84];
        let sei: &[u8] = &[0x06, 0x05, 0x01, 0x80];
        // Non-IDR before anything: dropped.
        s.extend(packetize(
            0x100,
            &mut cc,
            &pes(0xE0, Some(900), None, &annexb(&[aud, p_slice]), false),
        ));
        // IDR with parameter sets.
        s.extend(packetize(
            0x100,
            &mut cc,
            &pes(
                0xE0,
                Some(10_800),
                Some(7200),
                &annexb(&[aud, SPS, PPS, sei, idr]),
                false,
            ),
        ));
        s.extend(packetize(
            0x100,
            &mut cc,
            &pes(
                0xE0,
                Some(14_400),
                Some(10_800),
                &annexb(&[aud, p_slice]),
                false,
            ),
        ));
        let mut ingest = TsIngest::new();
        ingest.push(&s);
        ingest.finish();
        let events = drain(&mut ingest);
        assert_eq!(
            events[0],
            IngestEvent::Unsupported {
                id: 0x102,
                stream_type: 0x86
            }
        );
        let IngestEvent::Track {
            id: 0x100,
            params: TrackParams::Video(vp),
        } = &events[1]
        else {
            panic!("expected video track, got {events:?}");
        };
        assert_eq!(
            (vp.width, vp.height, vp.codec_string.as_str()),
            (320, 240, "avc1.64000d")
        );
        let IngestEvent::Frame { id: 0x100, frame } = &events[2] else {
            panic!("expected frame, got {events:?}");
        };
        assert!(frame.keyframe);
        assert_eq!(
            (frame.pts, frame.dts, frame.duration),
            (
                MediaTime::from_90khz(10_800),
                MediaTime::from_90khz(7200),
                None
            )
        );
        assert_eq!(frame.composition_offset(), Ok(MediaTime::from_90khz(3600)));
        let mut expected = vec![0, 0, 0, 4];
        expected.extend_from_slice(sei);
        expected.extend_from_slice(&[0, 0, 0, 3]);
        expected.extend_from_slice(idr);
        assert_eq!(frame.data, expected);
        let IngestEvent::Frame { frame, .. } = &events[3] else {
            panic!("expected frame, got {events:?}");
        };
        assert!(!frame.keyframe);
        assert_eq!(events.len(), 4);
        assert_eq!(ingest.stats().frames_dropped_before_keyframe, 1);
    }

    #[test]
    fn audio_frames_in_one_pes() {
        // Two ADTS frames (LC, 48 kHz, stereo) in one PES at PTS 90 000.
        let mut es = Vec::new();
        for payload in [&[1u8, 2][..], &[3]] {
            let len = 7 + payload.len();
            es.extend_from_slice(&[
                0xFF,
                0xF1,
                0x4C,
                0x80,
                (len >> 3) as u8,
                ((len & 7) << 5) as u8 | 0x1F,
                0xFC,
            ]);
            es.extend_from_slice(payload);
        }
        let mut s = header();
        let mut cc = 0;
        s.extend(packetize(
            0x101,
            &mut cc,
            &pes(0xC0, Some(90_000), None, &es, true),
        ));
        // A PES without PTS continues from the last frame.
        s.extend(packetize(
            0x101,
            &mut cc,
            &pes(0xC0, None, None, &es[..9], true),
        ));
        let mut ingest = TsIngest::new();
        ingest.push(&s);
        let events = drain(&mut ingest);
        let IngestEvent::Track {
            id: 0x101,
            params: TrackParams::Audio(ap),
        } = &events[1]
        else {
            panic!("expected audio track, got {events:?}");
        };
        assert_eq!(
            (ap.sample_rate, ap.channels, &ap.decoder_config[..]),
            (Timescale::HZ_48000, 2, &[0x11, 0x90][..])
        );
        let frames: Vec<&Frame> = events
            .iter()
            .filter_map(|e| match e {
                IngestEvent::Frame { frame, .. } => Some(frame),
                _ => None,
            })
            .collect();
        let pts: Vec<MediaTime> = frames.iter().map(|f| f.pts).collect();
        let at = |ticks| MediaTime::new(ticks, Timescale::HZ_48000);
        assert_eq!(pts, vec![at(48_000), at(49_024), at(50_048)]);
        assert!(pts.iter().all(|p| p.timescale() == Timescale::HZ_48000));
        assert_eq!(&frames[0].data[..], &[1, 2]);
        assert!(
            frames
                .iter()
                .all(|f| f.keyframe && f.duration == Some(at(1024)) && f.dts == f.pts)
        );
    }

    #[test]
    fn access_units_in_both_shapes_give_the_same_track_and_frames() {
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x21];
        let p: &[u8] = &[0x41, 0x9a, 0x02];
        let t = |n| MediaTime::from_90khz(n);

        // avc3: Annex B, parameter sets in band, an AUD to drop.
        let mut a = AccessUnitIngest::new(1, VideoCodec::H264);
        assert!(
            a.push_annexb(&annexb(&[p]), t(0), t(0)).is_empty(),
            "no params yet"
        );
        let first = a.push_annexb(&annexb(&[&[0x09, 0xf0], SPS, PPS, idr]), t(3000), t(3000));
        let second = a.push_annexb(&annexb(&[p]), t(6000), t(6000));
        assert_eq!(a.stats().frames_dropped_before_keyframe, 1);

        // avc1: the avcC record, then length-prefixed units.
        let record = h264::avc_decoder_config(&[SPS], &[PPS]).unwrap();
        let mut b = AccessUnitIngest::new(1, VideoCodec::H264);
        let track = b.set_avc_config(&record).unwrap();
        let prefixed = |nal: &[u8]| {
            let mut v = (nal.len() as u32).to_be_bytes().to_vec();
            v.extend_from_slice(nal);
            v
        };
        let mut frames = b.push_length_prefixed(&prefixed(idr), t(3000), t(3000));
        frames.extend(b.push_length_prefixed(&prefixed(p), t(6000), t(6000)));
        assert_eq!(track.len(), 1);
        assert_eq!(first[0], track[0], "same parameters either way");
        assert_eq!(&first[1..], &frames[..1]);
        assert_eq!(second, frames[1..]);
        let IngestEvent::Frame { frame, .. } = &frames[0] else {
            panic!("a frame");
        };
        assert!(frame.keyframe);
        assert_eq!(&frame.data[..], &prefixed(idr)[..]);

        // A unit longer than what is left: cut there, counted.
        let mut cut = prefixed(p);
        cut.truncate(5);
        assert!(b.push_length_prefixed(&cut, t(9000), t(9000)).is_empty());
        assert_eq!(b.stats().parse_errors, 1);
    }

    #[test]
    fn avcc_records_are_checked() {
        let record = h264::avc_decoder_config(&[SPS], &[PPS]).unwrap();
        let (size, sps, pps) = h264::avcc_parameter_sets(&record).unwrap();
        assert_eq!((size, sps, pps), (4, vec![SPS], vec![PPS]));
        for len in 0..record.len() - 4 {
            assert!(
                h264::avcc_parameter_sets(&record[..len]).is_err(),
                "cut at {len}"
            );
        }
        let mut v2 = record.clone();
        v2[0] = 2;
        assert!(h264::avcc_parameter_sets(&v2).is_err());
    }

    #[test]
    fn sps_change_emits_new_track_before_frame() {
        let sps2: &[u8] = &[
            0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00,
            0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
        ];
        let idr: &[u8] = &[0x65, 0x88, 0x84];
        let mut s = header();
        let mut cc = 0;
        for (i, sps) in [SPS, SPS, sps2].into_iter().enumerate() {
            let pts = 3600 * i as u64;
            s.extend(packetize(
                0x100,
                &mut cc,
                &pes(0xE0, Some(pts), None, &annexb(&[sps, PPS, idr]), true),
            ));
        }
        let mut ingest = TsIngest::new();
        ingest.push(&s);
        let kinds: Vec<&str> = drain(&mut ingest)
            .iter()
            .map(|e| match e {
                IngestEvent::Track { .. } => "track",
                IngestEvent::Frame { .. } => "frame",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            ["other", "track", "frame", "frame", "track", "frame"]
        );
    }
}
