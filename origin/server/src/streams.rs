//! Live streams: the registry of broadcasts the origin serves, each with its
//! LL-HLS playlists, and the packager task that feeds them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use livestack_hls::{MediaPlaylist, PlaylistConfig};
use livestack_media::model::TrackParams;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::{
    config::HlsConfig,
    fanout::{BroadcastConsumer, MediaEvent, Received},
    metrics::Metrics,
    packager::{Packager, PackagerConfig, PackagerOutput, Rendition},
};

/// One rendition of a live stream.
#[derive(Debug)]
pub struct RenditionState {
    /// The playlist, parts and segments.
    pub playlist: MediaPlaylist,
    /// The track's parameters (codec string, resolution, ...).
    pub params: TrackParams,
    /// Highest segment bitrate seen, bit/s (0 before the first segment).
    pub peak_bps: u64,
    /// Bytes and media time of the open segment, for `peak_bps`.
    seg_bytes: u64,
    seg_time: Duration,
    /// Bytes and media time of everything so far, for the average.
    total_bytes: u64,
    total_time: Duration,
    /// The rendered playlist (full, delta update) for the current state:
    /// every viewer blocked on the same part gets the same text, so it is
    /// rendered once per change, not once per response.
    rendered: [Option<bytes::Bytes>; 2],
    /// When the newest parts became available (at most [`AVAILABILITY_LOG`]
    /// entries), for the part-delivery metric and tests.
    available: std::collections::VecDeque<((u64, u32), std::time::Instant)>,
}

/// Parts whose availability time is remembered per rendition.
pub const AVAILABILITY_LOG: usize = 64;

impl RenditionState {
    /// When part `(msn, index)` became available in this process, if it is
    /// among the last [`AVAILABILITY_LOG`] parts.
    pub fn available_at(&self, msn: u64, index: u32) -> Option<std::time::Instant> {
        self.available
            .iter()
            .rev()
            .find(|(p, _)| *p == (msn, index))
            .map(|(_, t)| *t)
    }

    /// The media playlist text for the current state, rendered at most once
    /// per change of the stream (`reports` must be the other renditions'
    /// current reports; they only change when the stream changes too).
    pub fn playlist_text(
        &mut self,
        skip: livestack_hls::SkipRequest,
        reports: &[livestack_hls::RenditionReport],
    ) -> bytes::Bytes {
        let slot = usize::from(skip != livestack_hls::SkipRequest::No);
        if let Some(b) = &self.rendered[slot] {
            return b.clone();
        }
        let text = bytes::Bytes::from(self.playlist.render(skip, reports));
        self.rendered[slot] = Some(text.clone());
        text
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

/// The mutable state of one stream, behind [`Stream::lock`].
#[derive(Debug, Default)]
pub struct StreamState {
    /// The video rendition, once its first init segment exists.
    pub video: Option<RenditionState>,
    /// The audio rendition, once its first init segment exists.
    pub audio: Option<RenditionState>,
    /// PART-TARGET of each rendition.
    pub part_target: HashMap<Rendition, Duration>,
    /// The publisher is gone; playlists carry EXT-X-ENDLIST.
    pub ended: bool,
    /// Video frame rate measured from timestamps (used when the SPS has no
    /// timing information).
    pub measured_frame_rate: Option<f64>,
}

impl StreamState {
    /// The rendition's state.
    pub fn rendition(&self, r: Rendition) -> Option<&RenditionState> {
        match r {
            Rendition::Video => self.video.as_ref(),
            Rendition::Audio => self.audio.as_ref(),
        }
    }

    /// The rendition's state, mutable.
    pub fn rendition_mut(&mut self, r: Rendition) -> Option<&mut RenditionState> {
        match r {
            Rendition::Video => self.video.as_mut(),
            Rendition::Audio => self.audio.as_mut(),
        }
    }

    /// True when a client can start and the multivariant playlist is final:
    /// every rendition has a part. A broadcast whose audio has not shown up
    /// by the end of the first video segment is taken as video-only (MPEG-TS
    /// muxers interleave audio well within that).
    pub fn ready(&self) -> bool {
        let parts = |r: &Option<RenditionState>| r.as_ref().and_then(|r| r.playlist.last_part());
        match (parts(&self.video), parts(&self.audio)) {
            (Some(_), Some(_)) => true,
            (Some((msn, _)), None) => self.audio.is_none() && msn >= 1,
            (None, Some(_)) => self.video.is_none(),
            (None, None) => false,
        }
    }
}

/// One live (or recently ended) stream.
#[derive(Debug)]
pub struct Stream {
    /// The broadcast NAME.
    pub name: String,
    state: Mutex<StreamState>,
    /// Bumped on every change.
    version: watch::Sender<u64>,
    /// Bumped on changes of the video / audio rendition (and at the end), so
    /// a request held on one rendition is not woken by the other's parts.
    rendition_version: [watch::Sender<u64>; 2],
}

impl Stream {
    /// Locks the state. Never held across an await.
    pub fn lock(&self) -> MutexGuard<'_, StreamState> {
        self.state.lock().expect("stream state poisoned")
    }

    /// A receiver that changes whenever the playlists change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// A receiver that changes whenever rendition `r` changes or the stream
    /// ends.
    pub fn watch_rendition(&self, r: Rendition) -> watch::Receiver<u64> {
        self.rendition_version[r as usize].subscribe()
    }

    /// Wakes the waiters of the renditions in `changed` (and of any change).
    fn bump(&self, changed: [bool; 2]) {
        for (i, c) in changed.into_iter().enumerate() {
            if c {
                self.rendition_version[i].send_modify(|v| *v += 1);
            }
        }
        self.version.send_modify(|v| *v += 1);
    }
}

/// Every stream this origin serves.
#[derive(Debug)]
pub struct Streams {
    map: Mutex<HashMap<String, Arc<Stream>>>,
    hls: HlsConfig,
    metrics: Arc<Metrics>,
}

impl Streams {
    /// An empty registry.
    pub fn new(hls: HlsConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::default(),
            hls,
            metrics,
        })
    }

    /// The stream called `name`, if live or lingering after its end.
    pub fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.map
            .lock()
            .expect("streams poisoned")
            .get(name)
            .cloned()
    }

    /// Names of the streams that are live now.
    pub fn live_names(&self) -> Vec<String> {
        let map = self.map.lock().expect("streams poisoned");
        let mut names: Vec<String> = map
            .values()
            .filter(|s| !s.lock().ended)
            .map(|s| s.name.clone())
            .collect();
        names.sort();
        names
    }

    /// The HLS settings.
    pub fn hls_config(&self) -> &HlsConfig {
        &self.hls
    }

    /// Starts serving `name` from `consumer` (replacing an ended stream of
    /// the same name) and runs its packager until the broadcast ends.
    pub fn start(self: &Arc<Self>, name: &str, consumer: BroadcastConsumer) -> Arc<Stream> {
        let stream = Arc::new(Stream {
            name: name.to_owned(),
            state: Mutex::default(),
            version: watch::channel(0).0,
            rendition_version: [watch::channel(0).0, watch::channel(0).0],
        });
        self.map
            .lock()
            .expect("streams poisoned")
            .insert(name.to_owned(), stream.clone());
        let this = self.clone();
        let s = stream.clone();
        tokio::spawn(async move {
            this.run_packager(&s, consumer).await;
            tokio::time::sleep(this.hls.linger).await;
            let mut map = this.map.lock().expect("streams poisoned");
            if map.get(&s.name).is_some_and(|cur| Arc::ptr_eq(cur, &s)) {
                map.remove(&s.name);
                debug!(stream = %s.name, "forgotten after linger");
            }
        });
        stream
    }

    fn packager_config(&self) -> PackagerConfig {
        PackagerConfig {
            part_target: self.hls.part_target,
            segment_target: self.hls.segment_target,
            max_segment: self.target_duration(),
        }
    }

    /// EXT-X-TARGETDURATION: twice the segment target, whole seconds.
    pub fn target_duration(&self) -> Duration {
        Duration::from_secs((self.hls.segment_target * 2).as_secs_f64().ceil() as u64)
    }

    async fn run_packager(&self, stream: &Stream, mut consumer: BroadcastConsumer) {
        let mut packager = Packager::new(self.packager_config());
        loop {
            let event = match consumer.recv().await {
                Received::Event(e) => e,
                Received::Lagged(n) => {
                    warn!(stream = %stream.name, missed = n, "packager fell behind; resyncing at next keyframe");
                    self.metrics.consumer_lagged_events.inc_by(n);
                    for id in packager.track_ids() {
                        packager.handle_loss(id);
                    }
                    self.apply(stream, &mut packager);
                    continue;
                }
                Received::Closed => MediaEvent::End,
            };
            match event {
                MediaEvent::Track { id, params } => packager.handle_track(id, params),
                MediaEvent::Frame { id, frame } => {
                    packager.handle_frame(id, frame, unix_ms(SystemTime::now()))
                }
                MediaEvent::Loss { id } => packager.handle_loss(id),
                MediaEvent::End => {
                    packager.finish();
                    self.apply(stream, &mut packager);
                    {
                        let mut guard = stream.lock();
                        let st = &mut *guard;
                        for r in [&mut st.video, &mut st.audio].into_iter().flatten() {
                            r.playlist.end();
                            r.rendered = [None, None];
                        }
                        st.ended = true;
                    }
                    stream.bump([true, true]);
                    info!(stream = %stream.name, "stream ended");
                    return;
                }
            }
            self.apply(stream, &mut packager);
        }
    }

    /// Applies the packager's outputs to the playlists and wakes waiters.
    fn apply(&self, stream: &Stream, packager: &mut Packager) {
        let mut changed = [false; 2];
        let mut st = stream.lock();
        for r in [Rendition::Video, Rendition::Audio] {
            st.part_target.insert(r, packager.part_target(r));
        }
        if let Some(rate) = packager.measured_frame_rate() {
            st.measured_frame_rate = Some(rate);
        }
        while let Some(out) = packager.poll_output() {
            let rendition = match &out {
                PackagerOutput::Init { rendition, .. }
                | PackagerOutput::Part { rendition, .. }
                | PackagerOutput::SegmentEnd { rendition }
                | PackagerOutput::Discontinuity { rendition } => *rendition,
            };
            changed[rendition as usize] = true;
            match out {
                PackagerOutput::Init { rendition, data } => {
                    let Some(params) = packager.params(rendition).cloned() else {
                        continue;
                    };
                    let part_target = packager.part_target(rendition);
                    match st.rendition_mut(rendition) {
                        Some(r) => {
                            r.params = params;
                            r.playlist.set_init(data);
                        }
                        None => {
                            let config = PlaylistConfig {
                                target_duration: self.target_duration(),
                                part_target,
                                window_segments: self.hls.window_segments,
                                retain_extra_segments: 3,
                                uri_prefix: format!("{}/", rendition.name()),
                                ..PlaylistConfig::default()
                            };
                            // The origin config was validated at start, so
                            // this only fails on a broken invariant.
                            let mut playlist = MediaPlaylist::new(config)
                                .expect("playlist config derived from a validated origin config");
                            playlist.set_init(data);
                            let state = RenditionState {
                                playlist,
                                params,
                                peak_bps: 0,
                                seg_bytes: 0,
                                seg_time: Duration::ZERO,
                                total_bytes: 0,
                                total_time: Duration::ZERO,
                                rendered: [None, None],
                                available: std::collections::VecDeque::new(),
                            };
                            match rendition {
                                Rendition::Video => st.video = Some(state),
                                Rendition::Audio => st.audio = Some(state),
                            }
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
                    if let Some(r) = st.rendition_mut(rendition) {
                        let len = data.len() as u64;
                        r.seg_bytes += len;
                        r.seg_time += duration;
                        r.total_bytes += len;
                        r.total_time += duration;
                        r.playlist
                            .push_part(data, duration, independent, program_date_time_ms);
                        if let Some(p) = r.playlist.last_part() {
                            if r.available.len() == AVAILABILITY_LOG {
                                r.available.pop_front();
                            }
                            r.available.push_back((p, std::time::Instant::now()));
                        }
                        self.metrics
                            .parts
                            .get_or_create(&vec![("rendition", rendition.name().to_owned())])
                            .inc();
                    }
                }
                PackagerOutput::SegmentEnd { rendition } => {
                    if let Some(r) = st.rendition_mut(rendition) {
                        let secs = r.seg_time.as_secs_f64();
                        if secs > 0.5 {
                            let bps = (r.seg_bytes as f64 * 8.0 / secs) as u64;
                            r.peak_bps = r.peak_bps.max(bps);
                        }
                        r.seg_bytes = 0;
                        r.seg_time = Duration::ZERO;
                        r.playlist.close_segment();
                        self.metrics
                            .segments
                            .get_or_create(&vec![("rendition", rendition.name().to_owned())])
                            .inc();
                    }
                }
                PackagerOutput::Discontinuity { rendition } => {
                    if let Some(r) = st.rendition_mut(rendition) {
                        r.playlist.discontinuity();
                    }
                }
            }
        }
        if changed.contains(&true) {
            // Playlists (and the rendition reports in the other one) changed.
            let state = &mut *st;
            for r in [&mut state.video, &mut state.audio].into_iter().flatten() {
                r.rendered = [None, None];
            }
            drop(st);
            stream.bump(changed);
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
