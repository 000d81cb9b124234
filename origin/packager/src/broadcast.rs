//! The packaged state of one broadcast: the cutter, one LL-HLS media
//! playlist per rendition with its bit-rate accounting, and the
//! multivariant playlist that groups them.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::OnceLock,
    time::{Duration, Instant},
};

use bytes::Bytes;
use livestack_hls::{
    AudioRendition, MediaPlaylist, PlaylistConfig, RenditionReport, SkipRequest, Variant,
    render_multivariant,
};
use livestack_media::model::{Frame, TrackParams};

use crate::{
    cutter::{Packager, PackagerConfig, PackagerOutput, PackagerStats},
    rendition::{Rendition, RenditionKind},
};

/// `GROUP-ID` of the audio renditions in the multivariant playlist.
pub const AUDIO_GROUP: &str = "audio";

/// Parts whose availability time is remembered per rendition.
pub const AVAILABILITY_LOG: usize = 64;

/// Settings of a [`Broadcast`].
#[derive(Debug, Clone, Copy)]
pub struct BroadcastConfig {
    /// How frames are cut into parts and segments.
    pub packager: PackagerConfig,
    /// EXT-X-TARGETDURATION of every media playlist.
    pub target_duration: Duration,
    /// Segments listed in each media playlist (the live window).
    pub window_segments: usize,
    /// This publisher session's id, a URI component of every init, part
    /// and segment (`R/{session:x}/part{M}.{I}.m4s`): those URIs are served
    /// `immutable`, so a stream published again under the same name must
    /// never reuse one for other bytes. Callers pick a value no earlier
    /// session of the name had (the origin uses the start time in Unix
    /// milliseconds, bumped past its predecessor's).
    pub session: u64,
    /// The session this one continues under the same playlist URLs, if
    /// any: its media playlists then start at the predecessor's next Media
    /// Sequence Number with `EXT-X-DISCONTINUITY` (RFC 8216bis §6.2.1,
    /// §4.4.4.3), so a player that stayed across the reconnect resets its
    /// decoder instead of failing on new encoding parameters.
    pub continues: Option<Continuation>,
}

/// Where a broadcast that continues another one under the same URLs
/// starts: see [`BroadcastConfig::continues`] and
/// [`Broadcast::continuation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Continuation {
    /// The first Media Sequence Number of every media playlist: past every
    /// MSN the predecessor used in any rendition.
    pub next_msn: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` of every media playlist at its
    /// start: the predecessor's count plus its listed discontinuities
    /// (see [`livestack_hls::MediaPlaylist::next_discontinuity_sequence`]).
    pub discontinuity_sequence: u64,
}

/// What changed in a [`Broadcast`], drained with
/// [`Broadcast::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BroadcastEvent {
    /// A rendition appeared: its first init segment exists.
    RenditionAdded {
        /// The rendition.
        rendition: Rendition,
    },
    /// A part was appended to the rendition's playlist.
    Part {
        /// The rendition.
        rendition: Rendition,
        /// `(media sequence number, part index)` of the part.
        part: (u64, u32),
        /// Size of the part in bytes.
        bytes: usize,
    },
    /// A segment of the rendition was completed.
    Segment {
        /// The rendition.
        rendition: Rendition,
    },
    /// The rendition's media playlist changed (a part, a segment, a new
    /// init segment, the end). Sent at most once per rendition per input
    /// call, after the other events of that call. The text of every *other*
    /// playlist changes too (its rendition report of this one), but a
    /// client blocked on another rendition waits for that one's own
    /// change: re-render all, wake the waiters of this one.
    PlaylistChanged {
        /// The rendition.
        rendition: Rendition,
    },
}

/// One rendition of a broadcast.
#[derive(Debug)]
pub struct RenditionState {
    /// The playlist, parts and segments.
    pub playlist: MediaPlaylist,
    /// The track's parameters (codec string, resolution, language, ...).
    pub params: TrackParams,
    /// PART-TARGET advertised by the playlist.
    pub part_target: Duration,
    /// Highest segment bitrate seen, bit/s (0 before the first segment).
    pub peak_bps: u64,
    /// Bytes and media time of the open segment, for `peak_bps`.
    seg_bytes: u64,
    seg_time: Duration,
    /// Bytes and media time of everything so far, for the average.
    total_bytes: u64,
    total_time: Duration,
    /// When the newest parts became available (at most [`AVAILABILITY_LOG`]
    /// entries), for the part-delivery metric and tests.
    available: VecDeque<((u64, u32), Instant)>,
}

impl RenditionState {
    /// When part `(msn, index)` became available (the `now` passed with the
    /// input that completed it), if it is among the last
    /// [`AVAILABILITY_LOG`] parts.
    pub fn available_at(&self, msn: u64, index: u32) -> Option<Instant> {
        self.available
            .iter()
            .rev()
            .find(|(p, _)| *p == (msn, index))
            .map(|(_, t)| *t)
    }

    /// BANDWIDTH for the multivariant playlist: the peak segment bitrate, or
    /// before the first segment the running average plus 20 %.
    pub fn bandwidth(&self) -> u64 {
        if self.peak_bps > 0 {
            self.peak_bps
        } else {
            self.average_bps() * 6 / 5
        }
    }

    /// AVERAGE-BANDWIDTH: bits over media time of everything packaged.
    pub fn average_bps(&self) -> u64 {
        let secs = self.total_time.as_secs_f64();
        if secs <= 0.0 {
            return 0;
        }
        (self.total_bytes as f64 * 8.0 / secs) as u64
    }
}

/// An immutable copy of one rendition's state, for readers that must not
/// share the packager's mutable state (HTTP handlers): the playlist with
/// its parts and segments (reference-counted bytes, cheap to copy), the
/// other renditions' reports as of the copy, and the playlist text rendered
/// lazily at most once per snapshot and skip mode.
#[derive(Debug)]
pub struct RenditionSnapshot {
    /// The rendition.
    pub rendition: Rendition,
    /// The playlist, parts and segments.
    pub playlist: MediaPlaylist,
    /// The track's parameters.
    pub params: TrackParams,
    reports: Vec<RenditionReport>,
    available: VecDeque<((u64, u32), Instant)>,
    rendered: [OnceLock<Bytes>; 2],
}

impl RenditionSnapshot {
    /// The media playlist text: rendered by the first caller for `skip`,
    /// shared by every later one.
    pub fn playlist_text(&self, skip: SkipRequest) -> Bytes {
        let slot = usize::from(skip != SkipRequest::No);
        self.rendered[slot]
            .get_or_init(|| Bytes::from(self.playlist.render(skip, &self.reports)))
            .clone()
    }

    /// True once the playlist carries EXT-X-ENDLIST.
    pub fn ended(&self) -> bool {
        self.playlist.ended()
    }

    /// When part `(msn, index)` became available, if among the last
    /// [`AVAILABILITY_LOG`] parts (see [`RenditionState::available_at`]).
    pub fn available_at(&self, msn: u64, index: u32) -> Option<Instant> {
        self.available
            .iter()
            .rev()
            .find(|(p, _)| *p == (msn, index))
            .map(|(_, t)| *t)
    }
}

/// The packaged state of one broadcast: frames and `now` in, playlists,
/// parts and segments out. Sans-IO: no tasks, no sockets, no clock reads.
///
/// Drive it with [`handle_track`](Self::handle_track),
/// [`handle_frame`](Self::handle_frame), [`handle_loss`](Self::handle_loss)
/// and [`finish`](Self::finish); after each call drain
/// [`poll_event`](Self::poll_event) to learn which renditions changed, then
/// read them ([`media_playlist`](Self::media_playlist),
/// [`multivariant`](Self::multivariant), [`rendition`](Self::rendition)).
#[derive(Debug)]
pub struct Broadcast {
    config: BroadcastConfig,
    packager: Packager,
    renditions: BTreeMap<Rendition, RenditionState>,
    ended: bool,
    measured_frame_rate: Option<f64>,
    events: VecDeque<BroadcastEvent>,
}

impl Broadcast {
    /// An empty broadcast.
    pub fn new(config: BroadcastConfig) -> Self {
        Self {
            config,
            packager: Packager::new(config.packager),
            renditions: BTreeMap::new(),
            ended: false,
            measured_frame_rate: None,
            events: VecDeque::new(),
        }
    }

    /// A track's parameters became known or changed.
    pub fn handle_track(&mut self, id: u32, params: TrackParams, now: Instant) {
        self.packager.handle_track(id, params);
        self.apply(now);
    }

    /// A frame of track `id`. `now_unix_ms` (wall clock) anchors
    /// program-date-time; `now` stamps when parts became available.
    pub fn handle_frame(&mut self, id: u32, frame: Frame, now_unix_ms: i64, now: Instant) {
        self.packager.handle_frame(id, frame, now_unix_ms);
        self.apply(now);
    }

    /// Input of track `id` was lost; it resumes at its next keyframe.
    pub fn handle_loss(&mut self, id: u32, now: Instant) {
        self.packager.handle_loss(id);
        self.apply(now);
    }

    /// Input of every track was lost (the consumer fell behind).
    pub fn handle_loss_all(&mut self, now: Instant) {
        for id in self.packager.track_ids() {
            self.packager.handle_loss(id);
        }
        self.apply(now);
    }

    /// The publisher is gone: flushes the open parts and segments and ends
    /// every playlist (EXT-X-ENDLIST).
    pub fn finish(&mut self, now: Instant) {
        self.packager.finish();
        self.apply(now);
        for (r, state) in &mut self.renditions {
            state.playlist.end();
            self.events
                .push_back(BroadcastEvent::PlaylistChanged { rendition: *r });
        }
        self.ended = true;
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<BroadcastEvent> {
        self.events.pop_front()
    }

    /// The cutter's counters.
    pub fn stats(&self) -> PackagerStats {
        self.packager.stats()
    }

    /// True once [`finish`](Self::finish) was called.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The settings.
    pub fn config(&self) -> &BroadcastConfig {
        &self.config
    }

    /// A rendition's state.
    pub fn rendition(&self, r: Rendition) -> Option<&RenditionState> {
        self.renditions.get(&r)
    }

    /// Every rendition, videos first, each kind in index order.
    pub fn renditions(&self) -> impl Iterator<Item = (Rendition, &RenditionState)> {
        self.renditions.iter().map(|(r, s)| (*r, s))
    }

    /// Where a broadcast that continues this one under the same URLs
    /// starts (its [`BroadcastConfig::continues`]): past every rendition's
    /// MSNs and discontinuities, and past this one's own continuation, so a
    /// session that produced nothing does not move the sequence back.
    pub fn continuation(&self) -> Continuation {
        self.renditions
            .values()
            .fold(self.start(), |acc, r| Continuation {
                next_msn: acc.next_msn.max(r.playlist.next_msn()),
                discontinuity_sequence: acc
                    .discontinuity_sequence
                    .max(r.playlist.next_discontinuity_sequence()),
            })
    }

    /// Where this broadcast's playlists start: its predecessor's
    /// continuation, or, for a first session, MSN 0 and discontinuity
    /// sequence 0 (`Continuation::default`, the RFC 8216bis §4.4.3.2 and
    /// §4.4.3.3 defaults).
    fn start(&self) -> Continuation {
        self.config.continues.unwrap_or_default()
    }

    /// Video frame rate measured from timestamps (used when the SPS has no
    /// timing information).
    pub fn measured_frame_rate(&self) -> Option<f64> {
        self.measured_frame_rate
    }

    /// True when a client can start and the multivariant playlist is final:
    /// every rendition has a part. A broadcast whose audio has not shown up
    /// by the end of the first video segment is taken as video-only (MPEG-TS
    /// muxers interleave audio well within that).
    pub fn ready(&self) -> bool {
        if self.renditions.is_empty()
            || self
                .renditions
                .values()
                .any(|r| r.playlist.last_part().is_none())
        {
            return false;
        }
        let has_audio = self.renditions.keys().any(|r| !r.is_video());
        match self.renditions.get(&Rendition::VIDEO) {
            Some(v) if !has_audio => {
                let first = v.playlist.config().start_msn;
                v.playlist.last_part().is_some_and(|(msn, _)| msn > first)
            }
            _ => true,
        }
    }

    /// EXT-X-RENDITION-REPORTs of every rendition but `except` (RFC 8216bis
    /// §4.4.5.4), with URIs relative to the media playlists.
    pub fn rendition_reports(&self, except: Rendition) -> Vec<RenditionReport> {
        self.renditions
            .iter()
            .filter(|(r, _)| **r != except)
            .filter_map(|(r, s)| s.playlist.rendition_report(format!("{}.m3u8", r.name())))
            .collect()
    }

    /// The media playlist text of rendition `r`, with every other rendition's
    /// report. Callers should render once per
    /// [`BroadcastEvent::PlaylistChanged`] and keep the text: every viewer
    /// blocked on the same part gets the same bytes.
    pub fn media_playlist(&self, r: Rendition, skip: SkipRequest) -> Option<Bytes> {
        Some(self.snapshot(r)?.playlist_text(skip))
    }

    /// An immutable copy of rendition `r` (see [`RenditionSnapshot`]).
    pub fn snapshot(&self, r: Rendition) -> Option<RenditionSnapshot> {
        let state = self.renditions.get(&r)?;
        Some(RenditionSnapshot {
            rendition: r,
            playlist: state.playlist.clone(),
            params: state.params.clone(),
            reports: self.rendition_reports(r),
            available: state.available.clone(),
            rendered: [OnceLock::new(), OnceLock::new()],
        })
    }

    /// The multivariant playlist (RFC 8216bis §4.4.6): one `EXT-X-MEDIA
    /// TYPE=AUDIO` per audio rendition in group [`AUDIO_GROUP`] (`NAME`,
    /// `LANGUAGE` when the track declares one, the first one `DEFAULT=YES`,
    /// all `AUTOSELECT=YES`), one `EXT-X-STREAM-INF` per video rendition with
    /// `AUDIO` set to that group. An audio-only broadcast lists its first
    /// audio rendition as the variant (and the group when there are more).
    /// `None` before any rendition exists.
    pub fn multivariant(&self) -> Option<String> {
        let audio: Vec<(&Rendition, &RenditionState)> = self
            .renditions
            .iter()
            .filter(|(r, _)| r.kind == RenditionKind::Audio)
            .collect();
        let video: Vec<(&Rendition, &RenditionState)> = self
            .renditions
            .iter()
            .filter(|(r, _)| r.kind == RenditionKind::Video)
            .collect();
        let (first_audio_bw, first_audio_avg, audio_codecs) = {
            // The variant must declare every codec its audio group may use
            // and the bandwidth of the largest one (§4.4.6.2).
            let bw = audio.iter().map(|(_, s)| s.bandwidth()).max().unwrap_or(0);
            let avg = audio
                .iter()
                .map(|(_, s)| s.average_bps())
                .max()
                .unwrap_or(0);
            let mut codecs: Vec<&str> = Vec::new();
            for (_, s) in &audio {
                let c = s.params.codec_string();
                if !codecs.contains(&c) {
                    codecs.push(c);
                }
            }
            (bw, avg, codecs)
        };
        let group = !audio.is_empty() && (!video.is_empty() || audio.len() > 1);
        let audio_renditions: Vec<AudioRendition> = if group {
            audio
                .iter()
                .enumerate()
                .map(|(i, (r, s))| {
                    let (channels, language) = match &s.params {
                        TrackParams::Audio(p) => (Some(p.channels), p.language.clone()),
                        TrackParams::Video(_) => (None, None),
                    };
                    let name = match (&language, r.index) {
                        (Some(l), _) => l.clone(),
                        (None, 0) => "default".to_owned(),
                        (None, _) => r.name().to_string(),
                    };
                    AudioRendition {
                        group_id: AUDIO_GROUP.into(),
                        // NAME must be unique within the group.
                        name: if audio[..i].iter().any(|(_, o)| match &o.params {
                            TrackParams::Audio(p) => p.language.as_deref() == Some(&name),
                            TrackParams::Video(_) => false,
                        }) {
                            format!("{name} ({})", r.name())
                        } else {
                            name
                        },
                        uri: format!("{}.m3u8", r.name()),
                        default: i == 0,
                        language,
                        channels,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let audio_group = group.then(|| AUDIO_GROUP.to_owned());
        let mut variants = Vec::new();
        for (r, v) in &video {
            let (resolution, frame_rate) = match &v.params {
                TrackParams::Video(p) => (
                    Some((p.width, p.height)),
                    p.frame_rate
                        .filter(|(_, d)| *d > 0)
                        .map(|(n, d)| f64::from(n) / f64::from(d))
                        .or(self.measured_frame_rate.filter(|_| **r == Rendition::VIDEO)),
                ),
                TrackParams::Audio(_) => (None, None),
            };
            let mut codecs = vec![v.params.codec_string()];
            codecs.extend(&audio_codecs);
            let average = v.average_bps() + first_audio_avg;
            variants.push(Variant {
                uri: format!("{}.m3u8", r.name()),
                bandwidth: (v.bandwidth() + first_audio_bw).max(1),
                average_bandwidth: (average > 0).then_some(average),
                codecs: codecs.join(","),
                resolution,
                frame_rate,
                audio_group: audio_group.clone(),
            });
        }
        if video.is_empty() {
            let (r, a) = audio.first()?;
            let average = a.average_bps();
            variants.push(Variant {
                uri: format!("{}.m3u8", r.name()),
                bandwidth: first_audio_bw.max(1),
                average_bandwidth: (average > 0).then_some(average),
                codecs: audio_codecs.join(","),
                resolution: None,
                frame_rate: None,
                audio_group,
            });
        }
        Some(render_multivariant(&variants, &audio_renditions))
    }

    /// Applies the cutter's outputs to the playlists.
    fn apply(&mut self, now: Instant) {
        if let Some(rate) = self.packager.measured_frame_rate() {
            self.measured_frame_rate = Some(rate);
        }
        let mut changed: Vec<Rendition> = Vec::new();
        while let Some(out) = self.packager.poll_output() {
            let rendition = out.rendition();
            if !changed.contains(&rendition) {
                changed.push(rendition);
            }
            match out {
                PackagerOutput::Init {
                    rendition,
                    params,
                    data,
                } => {
                    let part_target = self.packager.part_target(rendition);
                    match self.renditions.get_mut(&rendition) {
                        Some(r) => {
                            r.params = params;
                            r.playlist.set_init(data);
                        }
                        None => {
                            let continues = self.start();
                            let config = PlaylistConfig {
                                target_duration: self.config.target_duration,
                                part_target,
                                window_segments: self.config.window_segments,
                                retain_extra_segments: 3,
                                uri_prefix: format!(
                                    "{}/{:x}/",
                                    rendition.name(),
                                    self.config.session
                                ),
                                start_msn: continues.next_msn,
                                start_discontinuity_sequence: continues.discontinuity_sequence,
                                starts_discontinuous: self.config.continues.is_some(),
                            };
                            let mut playlist = match MediaPlaylist::new(config) {
                                Ok(p) => p,
                                Err(e) => {
                                    tracing::warn!(error = %e, rendition = %rendition.name(), "invalid playlist settings; rendition not served");
                                    continue;
                                }
                            };
                            playlist.set_init(data);
                            self.renditions.insert(
                                rendition,
                                RenditionState {
                                    playlist,
                                    params,
                                    part_target,
                                    peak_bps: 0,
                                    seg_bytes: 0,
                                    seg_time: Duration::ZERO,
                                    total_bytes: 0,
                                    total_time: Duration::ZERO,
                                    available: VecDeque::new(),
                                },
                            );
                            self.events
                                .push_back(BroadcastEvent::RenditionAdded { rendition });
                        }
                    }
                }
                PackagerOutput::Part {
                    rendition,
                    data,
                    duration,
                    independent,
                    program_date_time_ms,
                } => {
                    if let Some(r) = self.renditions.get_mut(&rendition) {
                        let len = data.len();
                        r.seg_bytes += len as u64;
                        r.seg_time += duration;
                        r.total_bytes += len as u64;
                        r.total_time += duration;
                        r.playlist
                            .push_part(data, duration, independent, program_date_time_ms);
                        if let Some(p) = r.playlist.last_part() {
                            if r.available.len() == AVAILABILITY_LOG {
                                r.available.pop_front();
                            }
                            r.available.push_back((p, now));
                            self.events.push_back(BroadcastEvent::Part {
                                rendition,
                                part: p,
                                bytes: len,
                            });
                        }
                    }
                }
                PackagerOutput::SegmentEnd { rendition } => {
                    if let Some(r) = self.renditions.get_mut(&rendition) {
                        let secs = r.seg_time.as_secs_f64();
                        if secs > 0.5 {
                            let bps = (r.seg_bytes as f64 * 8.0 / secs) as u64;
                            r.peak_bps = r.peak_bps.max(bps);
                        }
                        r.seg_bytes = 0;
                        r.seg_time = Duration::ZERO;
                        r.playlist.close_segment();
                        self.events.push_back(BroadcastEvent::Segment { rendition });
                    }
                }
                PackagerOutput::Discontinuity { rendition } => {
                    if let Some(r) = self.renditions.get_mut(&rendition) {
                        r.playlist.discontinuity();
                    }
                }
            }
        }
        for rendition in changed {
            self.events
                .push_back(BroadcastEvent::PlaylistChanged { rendition });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livestack_media::model::{
        AudioCodec, AudioParams, MediaTime, Timescale, VideoCodec, VideoParams,
    };

    fn config() -> BroadcastConfig {
        BroadcastConfig {
            packager: PackagerConfig {
                part_target: Duration::from_millis(200),
                segment_target: Duration::from_secs(1),
                max_segment: Duration::from_secs(2),
            },
            target_duration: Duration::from_secs(2),
            window_segments: 6,
            session: 1,
            continues: None,
        }
    }

    fn video(width: u32) -> TrackParams {
        TrackParams::Video(VideoParams {
            codec: VideoCodec::H264,
            width,
            height: width * 9 / 16,
            frame_rate: Some((25, 1)),
            codec_string: "avc1.64001e".into(),
            decoder_config: Bytes::from_static(&[1, 0x64, 0, 0x1e, 0xff, 0xe0, 0]),
        })
    }

    fn audio(language: Option<&str>) -> TrackParams {
        TrackParams::Audio(AudioParams {
            codec: AudioCodec::Aac,
            sample_rate: Timescale::HZ_48000,
            channels: 2,
            samples_per_frame: 1024,
            codec_string: "mp4a.40.2".into(),
            decoder_config: Bytes::from_static(&[0x11, 0x90]),
            language: language.map(str::to_owned),
        })
    }

    /// Feeds `seconds` of 25 fps video (1 s GOP) on every id in `videos`
    /// and AAC on every id in `audios`, interleaved by time.
    fn feed(b: &mut Broadcast, videos: &[u32], audios: &[u32], seconds: i64) {
        let now = Instant::now();
        let (mut vn, mut an) = (0i64, 0i64);
        while vn < seconds * 25 {
            if an * 1024 * 90_000 / 48_000 <= vn * 3600 {
                for id in audios {
                    let at = MediaTime::new(an * 1024, Timescale::HZ_48000);
                    let f = Frame {
                        pts: at,
                        dts: at,
                        duration: Some(MediaTime::new(1024, Timescale::HZ_48000)),
                        keyframe: true,
                        data: Bytes::from_static(&[0x21]),
                    };
                    b.handle_frame(*id, f, 0, now);
                }
                an += 1;
            } else {
                for id in videos {
                    let f = Frame {
                        pts: MediaTime::from_90khz(vn * 3600),
                        dts: MediaTime::from_90khz(vn * 3600),
                        duration: None,
                        keyframe: vn % 25 == 0,
                        data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
                    };
                    b.handle_frame(*id, f, 0, now);
                }
                vn += 1;
            }
        }
    }

    #[test]
    fn two_languages_make_one_audio_group_with_aligned_parts() {
        let now = Instant::now();
        let mut b = Broadcast::new(config());
        b.handle_track(256, video(640), now);
        b.handle_track(257, audio(Some("eng")), now);
        b.handle_track(258, audio(Some("fra")), now);
        assert!(!b.ready());
        feed(&mut b, &[256], &[257, 258], 3);
        assert!(b.ready());
        let fra = Rendition::new(RenditionKind::Audio, 1);
        let names: Vec<String> = b.renditions().map(|(r, _)| r.name().to_string()).collect();
        assert_eq!(names, ["video", "audio", "audio1"]);
        // Same numbering in both languages.
        assert_eq!(
            b.rendition(Rendition::AUDIO)
                .and_then(|r| r.playlist.last_part()),
            b.rendition(fra).and_then(|r| r.playlist.last_part()),
        );
        let text = b.multivariant().expect("multivariant");
        assert!(text.contains(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"eng\",LANGUAGE=\"eng\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio.m3u8\""
        ), "{text}");
        assert!(text.contains(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"fra\",LANGUAGE=\"fra\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio1.m3u8\""
        ), "{text}");
        assert_eq!(text.matches("#EXT-X-STREAM-INF:").count(), 1, "{text}");
        assert!(text.contains("AUDIO=\"audio\"\nvideo.m3u8\n"), "{text}");
        // Each media playlist reports the two others.
        let pl = b
            .media_playlist(fra, SkipRequest::No)
            .expect("fra playlist");
        let pl = std::str::from_utf8(&pl).expect("utf-8");
        assert!(pl.contains("URI=\"audio1/1/init0.mp4\""), "{pl}");
        assert_eq!(pl.matches("#EXT-X-RENDITION-REPORT:").count(), 2, "{pl}");
    }

    /// A publisher reconnects with another resolution: the new session's
    /// URIs name the new session, its playlists continue the old MSNs with
    /// a discontinuity, so neither a cache nor a player that stayed can mix
    /// the two sessions' bytes.
    #[test]
    fn a_republished_broadcast_continues_under_new_uris() {
        let now = Instant::now();
        let mut old = Broadcast::new(config());
        old.handle_track(1, video(1280), now);
        feed(&mut old, &[1], &[], 3);
        old.finish(now);
        let last = old
            .rendition(Rendition::VIDEO)
            .and_then(|r| r.playlist.last_part())
            .expect("parts");
        let continues = old.continuation();
        assert_eq!(continues.next_msn, last.0 + 1);

        let mut new = Broadcast::new(BroadcastConfig {
            session: 0x2a,
            continues: Some(continues),
            ..config()
        });
        new.handle_track(1, video(640), now);
        feed(&mut new, &[1], &[], 3);
        assert!(new.ready());
        let text = new
            .media_playlist(Rendition::VIDEO, SkipRequest::No)
            .expect("playlist");
        let text = std::str::from_utf8(&text).expect("utf-8");
        assert!(
            text.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{}\n", continues.next_msn)),
            "{text}"
        );
        assert!(
            text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video/2a/init0.mp4\""),
            "{text}"
        );
        assert!(!text.contains("video/1/"), "{text}");
        // A third session continues past the second, not the first.
        assert!(new.continuation().next_msn > continues.next_msn);
        // One that produced nothing keeps its predecessor's place.
        let empty = Broadcast::new(BroadcastConfig {
            continues: Some(continues),
            ..config()
        });
        assert_eq!(empty.continuation(), continues);
    }

    #[test]
    fn every_video_rendition_is_a_variant() {
        let now = Instant::now();
        let mut b = Broadcast::new(config());
        b.handle_track(1, video(1280), now);
        b.handle_track(2, video(640), now);
        b.handle_track(3, audio(None), now);
        feed(&mut b, &[1, 2], &[3], 3);
        let text = b.multivariant().expect("multivariant");
        assert!(text.contains("RESOLUTION=1280x720"), "{text}");
        assert!(text.contains("RESOLUTION=640x360"), "{text}");
        assert!(text.contains("\nvideo.m3u8\n"), "{text}");
        assert!(text.contains("\nvideo1.m3u8\n"), "{text}");
        assert!(text.contains("NAME=\"default\""), "{text}");
        assert!(!text.contains("LANGUAGE="), "{text}");
        let v1 = Rendition::new(RenditionKind::Video, 1);
        assert_eq!(
            b.rendition(Rendition::VIDEO)
                .and_then(|r| r.playlist.last_part()),
            b.rendition(v1).and_then(|r| r.playlist.last_part()),
            "aligned keyframes give aligned numbering"
        );
    }

    #[test]
    fn snapshots_render_once_and_end_with_the_broadcast() {
        let now = Instant::now();
        let mut b = Broadcast::new(config());
        b.handle_track(1, video(640), now);
        feed(&mut b, &[1], &[], 2);
        let snap = b.snapshot(Rendition::VIDEO).expect("video");
        let a = snap.playlist_text(SkipRequest::No);
        let c = snap.playlist_text(SkipRequest::No);
        assert_eq!(a.as_ptr(), c.as_ptr(), "rendered once");
        assert!(!snap.ended());
        while b.poll_event().is_some() {}
        b.finish(now);
        let events: Vec<BroadcastEvent> = std::iter::from_fn(|| b.poll_event()).collect();
        assert!(events.contains(&BroadcastEvent::PlaylistChanged {
            rendition: Rendition::VIDEO
        }));
        assert!(b.snapshot(Rendition::VIDEO).expect("video").ended());
        assert!(b.ended());
    }
}
