//! The state of one rendition's LL-HLS Media Playlist: parts, segments,
//! initialization sections, discontinuities, and the blocking-reload and
//! resource-lookup rules of RFC 8216bis §6.2.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::config::{ConfigError, PlaylistConfig};

/// One Partial Segment (RFC 8216bis §4.4.4.9).
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// The part's bytes. After its segment closes, a slice of the segment's
    /// buffer, so each byte is held once.
    pub(crate) data: Bytes,
    pub(crate) duration: Duration,
    pub(crate) independent: bool,
}

/// One Media Segment, open (still receiving parts) or complete.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) msn: u64,
    pub(crate) parts: Vec<Part>,
    /// Sum of the parts' durations; the `EXTINF` once complete.
    pub(crate) duration: Duration,
    /// Index of the initialization section (`init{n}.mp4`) it needs.
    pub(crate) init: Option<u32>,
    /// `EXT-X-DISCONTINUITY` applies to this segment.
    pub(crate) discontinuity: bool,
    /// Unix ms of its first part's first sample (`EXT-X-PROGRAM-DATE-TIME`).
    pub(crate) program_date_time_ms: i64,
    /// The whole segment (the parts concatenated); empty while open.
    pub(crate) data: Bytes,
}

impl Segment {
    /// Number of parts as a part index bound.
    pub(crate) fn part_count(&self) -> u32 {
        u32::try_from(self.parts.len()).unwrap_or(u32::MAX)
    }
}

/// Whether a blocking Playlist request can be answered now
/// (RFC 8216bis §6.2.5.2). See [`MediaPlaylist::check_block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockDecision {
    /// The Playlist already satisfies the request: render and respond.
    Ready,
    /// Hold the request and ask again after the next mutation of the
    /// playlist; after [`blocking_timeout`](crate::blocking_timeout) answer
    /// 503.
    Wait,
    /// The request is too far ahead of the live edge: answer 400 Bad Request
    /// at once (§6.2.5.2 SHOULD).
    TooFarAhead,
}

/// The answer to a Partial Segment request. See [`MediaPlaylist::part`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartLookup {
    /// The part exists: respond 200 with these bytes.
    Available(Bytes),
    /// The part is the one the `EXT-X-PRELOAD-HINT` points at and does not
    /// exist yet: hold the request and ask again after the next mutation.
    /// It becomes `Available`, or `NotFound` when the segment is closed
    /// before it (RFC 8216bis §6.2.6: a hinted resource that will not be
    /// published gets 404).
    Pending,
    /// Unknown, evicted, or never going to exist: 404 (RFC 8216bis §6.2.6).
    NotFound,
}

/// A rendition's entry in another rendition's Playlist
/// (`EXT-X-RENDITION-REPORT`, RFC 8216bis §4.4.5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// URI of the reported rendition's Media Playlist, relative to the
    /// Playlist being rendered (e.g. `"audio.m3u8"`). Must not contain `"`,
    /// CR or LF (they are dropped).
    pub uri: String,
    /// `LAST-MSN`: Media Sequence Number of the reported rendition's newest
    /// part's parent segment.
    pub last_msn: u64,
    /// `LAST-PART`: index of that newest part.
    pub last_part: u32,
}

/// One rendition's Low-Latency HLS Media Playlist (RFC 8216bis §4, §6.2),
/// sans IO: the caller feeds parts as the packager produces them, renders
/// the Playlist, and answers blocking and media requests from it. No clocks,
/// no sockets; "time" is only the media durations the caller passes in.
///
/// # Life cycle
///
/// [`set_init`](Self::set_init) → ([`push_part`](Self::push_part)… →
/// [`close_segment`](Self::close_segment))… → [`end`](Self::end). After
/// every mutation the caller re-checks its held requests
/// ([`check_block`](Self::check_block), [`part`](Self::part)).
/// Mutations after [`end`](Self::end) are ignored.
///
/// # Memory
///
/// Each media byte is held once: a part's bytes until its segment closes,
/// then one contiguous buffer per segment of which the parts are slices
/// (one copy per segment at close, so [`segment`](Self::segment) is O(1)).
/// Segments are dropped, parts included, once they are more than
/// `retain_extra_segments` past the Playlist window, so the worst case is
/// `(listed + retain_extra_segments + 1) × largest segment` bytes, where
/// `listed` is `window_segments`, or more while the window would otherwise
/// be shorter than three Target Durations, plus the retained
/// initialization sections (a few hundred bytes each).
#[derive(Debug, Clone)]
pub struct MediaPlaylist {
    pub(crate) config: PlaylistConfig,
    /// Complete segments, oldest first: the retained-only ones, then the
    /// `listed` ones in the Playlist.
    pub(crate) segments: VecDeque<Segment>,
    /// How many of the newest `segments` the Playlist lists.
    pub(crate) listed: usize,
    /// The segment receiving parts.
    pub(crate) open: Option<Segment>,
    /// MSN of the open segment, or of the next one to open.
    pub(crate) next_msn: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities that left the window.
    pub(crate) discontinuity_sequence: u64,
    /// The next opened segment gets `EXT-X-DISCONTINUITY`.
    pub(crate) pending_discontinuity: bool,
    /// Retained initialization sections by index, oldest first.
    pub(crate) inits: VecDeque<(u32, Bytes)>,
    /// Index of the initialization section for the next opened segment.
    pub(crate) current_init: Option<u32>,
    pub(crate) next_init_index: u32,
    pub(crate) ended: bool,
}

impl MediaPlaylist {
    /// An empty live Playlist.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if `config` breaks an invariant documented on
    /// [`PlaylistConfig`].
    pub fn new(config: PlaylistConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            next_msn: config.start_msn,
            segments: VecDeque::new(),
            listed: 0,
            open: None,
            discontinuity_sequence: config.start_discontinuity_sequence,
            pending_discontinuity: config.starts_discontinuous,
            inits: VecDeque::new(),
            current_init: None,
            next_init_index: 0,
            ended: false,
            config,
        })
    }

    /// The configuration this Playlist was created with.
    pub fn config(&self) -> &PlaylistConfig {
        &self.config
    }

    /// Sets the Media Initialization Section (`EXT-X-MAP`, RFC 8216bis
    /// §4.4.4.5) for the segments opened from now on.
    ///
    /// The same bytes again are a no-op. Different bytes get a new index
    /// (`init{n+1}.mp4`); if any segment was already produced, the open
    /// segment (if any) is closed, because its parts need the old section,
    /// and the next segment gets `EXT-X-DISCONTINUITY` (§6.2.1: changes in
    /// encoding parameters MUST be signalled with it).
    pub fn set_init(&mut self, init: Bytes) {
        if self.ended {
            return;
        }
        let current = self.current_init.and_then(|n| self.init(n));
        if current.as_ref() == Some(&init) {
            return;
        }
        let produced = self.open.is_some() || self.next_msn > self.config.start_msn;
        if produced {
            self.close_segment();
            self.pending_discontinuity = true;
        }
        let index = self.next_init_index;
        self.next_init_index = self.next_init_index.saturating_add(1);
        self.current_init = Some(index);
        self.inits.push_back((index, init));
        self.prune_inits();
    }

    /// Appends a complete Partial Segment (RFC 8216bis §4.4.4.9) to the open
    /// segment, opening one if none is open. A newly opened segment takes
    /// its `EXT-X-PROGRAM-DATE-TIME` from this part.
    ///
    /// - `duration`: the part's media duration; the caller guarantees it is
    ///   at most [`PlaylistConfig::part_target`], and that a segment's parts
    ///   add up to at most [`PlaylistConfig::target_duration`].
    /// - `independent`: the part starts with an independent frame
    ///   (`INDEPENDENT=YES`); a segment's first part should be.
    /// - `program_date_time_ms`: Unix time in milliseconds of the part's
    ///   first sample.
    pub fn push_part(
        &mut self,
        data: Bytes,
        duration: Duration,
        independent: bool,
        program_date_time_ms: i64,
    ) {
        if self.ended {
            return;
        }
        let segment = self.open.get_or_insert_with(|| Segment {
            msn: self.next_msn,
            parts: Vec::new(),
            duration: Duration::ZERO,
            init: self.current_init,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            program_date_time_ms,
            data: Bytes::new(),
        });
        segment.duration = segment.duration.saturating_add(duration);
        segment.parts.push(Part {
            data,
            duration,
            independent,
        });
    }

    /// Completes the open segment: its `EXTINF` is the sum of its parts'
    /// durations, it becomes downloadable as a whole, and the oldest
    /// segments leave the window and the retention as configured. No-op
    /// without an open segment.
    pub fn close_segment(&mut self) {
        let Some(mut segment) = self.open.take() else {
            return;
        };
        segment.data = concat_parts(&mut segment.parts);
        self.segments.push_back(segment);
        self.next_msn = self.next_msn.saturating_add(1);
        self.listed += 1;
        self.evict();
    }

    /// Marks a discontinuity (publisher gap, lost data, timestamp jump): the
    /// open segment, if any, is closed, and the next segment gets
    /// `EXT-X-DISCONTINUITY` (RFC 8216bis §4.4.4.3). When such a segment
    /// leaves the window, `EXT-X-DISCONTINUITY-SEQUENCE` is incremented
    /// (§6.2.2). No-op before the first segment.
    pub fn discontinuity(&mut self) {
        if self.ended {
            return;
        }
        let produced = self.open.is_some() || self.next_msn > self.config.start_msn;
        if produced {
            self.close_segment();
            self.pending_discontinuity = true;
        }
    }

    /// Ends the presentation: closes the open segment and adds
    /// `EXT-X-ENDLIST` (RFC 8216bis §4.4.3.4). The Playlist never changes
    /// again, so every blocking request becomes [`BlockDecision::Ready`]
    /// (§6.2.5.2: the server MUST ignore `_HLS_msn`/`_HLS_part` then), and
    /// pending part requests become [`PartLookup::NotFound`].
    pub fn end(&mut self) {
        self.close_segment();
        self.ended = true;
    }

    /// Whether [`end`](Self::end) was called.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The Media Sequence Number the next opened segment gets: after
    /// [`end`](Self::end), one past the last segment. A Playlist that
    /// continues this one under the same URL starts there
    /// ([`PlaylistConfig::start_msn`]), so MSNs never go back (RFC 8216bis
    /// §6.2.1: a client must be able to tell segments apart by MSN).
    pub fn next_msn(&self) -> u64 {
        match &self.open {
            Some(open) => open.msn.saturating_add(1),
            None => self.next_msn,
        }
    }

    /// The `EXT-X-DISCONTINUITY-SEQUENCE` a Playlist that continues this one
    /// should start with ([`PlaylistConfig::start_discontinuity_sequence`],
    /// together with [`PlaylistConfig::starts_discontinuous`]): this one's
    /// plus every `EXT-X-DISCONTINUITY` still listed or pending, since none
    /// of these segments are listed in the successor (RFC 8216bis §6.2.2:
    /// the sequence counts the discontinuity tags removed from the
    /// Playlist).
    pub fn next_discontinuity_sequence(&self) -> u64 {
        let listed = self
            .listed_segments()
            .chain(self.open.as_ref())
            .filter(|s| s.discontinuity)
            .count();
        self.discontinuity_sequence
            .saturating_add(u64::try_from(listed).unwrap_or(u64::MAX))
    }

    /// The newest complete part as `(msn, part index)`; `None` before the
    /// first part or once every segment was evicted. This is what
    /// `EXT-X-RENDITION-REPORT` reports (`LAST-MSN`, `LAST-PART`,
    /// RFC 8216bis §4.4.5.4).
    pub fn last_part(&self) -> Option<(u64, u32)> {
        let segment = self.open.as_ref().or(self.segments.back())?;
        let last = segment.part_count().checked_sub(1)?;
        Some((segment.msn, last))
    }

    /// True once at least one complete segment is listed. Players (hls.js)
    /// treat a Playlist holding only the open segment's parts as empty, so
    /// servers hold first requests until this is true.
    pub fn has_segment(&self) -> bool {
        self.listed > 0
    }

    /// The part the `EXT-X-PRELOAD-HINT` points at, as `(msn, part index)`:
    /// the next part of the open segment, or part 0 of the next segment.
    pub fn next_part(&self) -> (u64, u32) {
        match &self.open {
            Some(segment) => (segment.msn, segment.part_count()),
            None => (self.next_msn, 0),
        }
    }

    /// This Playlist's `EXT-X-RENDITION-REPORT` for another rendition's
    /// Playlist, `uri` being this Playlist's URI relative to that one.
    /// `None` before the first part.
    pub fn rendition_report(&self, uri: impl Into<String>) -> Option<RenditionReport> {
        let (last_msn, last_part) = self.last_part()?;
        Some(RenditionReport {
            uri: uri.into(),
            last_msn,
            last_part,
        })
    }

    /// Decides a blocking Playlist reload (RFC 8216bis §6.2.5.2) for
    /// `_HLS_msn=msn` and, if given, `_HLS_part=part`.
    ///
    /// - Without `part`: [`Ready`](BlockDecision::Ready) once a complete
    ///   segment with MSN ≥ `msn` is listed ("until the Playlist contains a
    ///   Media Segment with a Media Sequence Number of M or later").
    /// - With `part`: `Ready` once part `part` of segment `msn`, or a later
    ///   part, exists. A `part` beyond the last part of a complete segment
    ///   means part 0 of the next segment ("the Server MUST treat the
    ///   request as one for Part Index 0 of the following Parent Segment").
    /// - [`TooFarAhead`](BlockDecision::TooFarAhead) (400) when `msn` is
    ///   more than the last complete segment's MSN plus two, or `part` is
    ///   more than the [Advance Part
    ///   Limit](PlaylistConfig::advance_part_limit) parts past the newest
    ///   part; a part in a segment after the newest part's counts as at
    ///   least `part + 1` parts past.
    /// - After [`end`](Self::end): always `Ready` (§6.2.5.2 MUST ignore).
    ///
    /// Never panics or overflows, whatever the numbers.
    pub fn check_block(&self, msn: u64, part: Option<u32>) -> BlockDecision {
        if self.ended {
            return BlockDecision::Ready;
        }
        // The last complete segment is `next_msn - 1`; "plus two" is `next_msn + 1`.
        if msn > self.next_msn.saturating_add(1) {
            return BlockDecision::TooFarAhead;
        }
        let Some(part) = part else {
            let any_complete = self.next_msn > self.config.start_msn;
            return if any_complete && msn < self.next_msn {
                BlockDecision::Ready
            } else {
                BlockDecision::Wait
            };
        };
        let last = self.last_part();
        if let Some((last_msn, last_part)) = last
            && (msn < last_msn || (msn == last_msn && part <= last_part))
        {
            return BlockDecision::Ready;
        }
        // How far ahead of the newest part the request is, in parts.
        let ahead = match last {
            // Beyond the newest part of the open segment.
            Some((last_msn, last_part)) if msn == last_msn && self.open.is_some() => {
                u64::from(part - last_part)
            }
            // Beyond the last part of a complete segment: part 0 of the next.
            Some((last_msn, _)) if msn == last_msn => 1,
            // A later segment: at least its parts 0..=part.
            _ => u64::from(part) + 1,
        };
        if ahead > self.config.advance_part_limit() {
            BlockDecision::TooFarAhead
        } else {
            BlockDecision::Wait
        }
    }

    /// Looks up Partial Segment `index` of segment `msn` (part indexes start
    /// at 0 in every segment).
    ///
    /// Parts of retained segments are [`Available`](PartLookup::Available),
    /// the preload-hinted [`next_part`](Self::next_part) is
    /// [`Pending`](PartLookup::Pending) (RFC 8216bis §6.2.6: a hinted
    /// resource must be requestable), anything else is
    /// [`NotFound`](PartLookup::NotFound).
    pub fn part(&self, msn: u64, index: u32) -> PartLookup {
        let segment = match &self.open {
            Some(open) if open.msn == msn => Some(open),
            _ => self.complete_segment(msn),
        };
        if let Some(part) = segment.and_then(|s| s.parts.get(usize::try_from(index).ok()?)) {
            return PartLookup::Available(part.data.clone());
        }
        if !self.ended && self.next_part() == (msn, index) {
            return PartLookup::Pending;
        }
        PartLookup::NotFound
    }

    /// A complete, retained segment's bytes: its parts concatenated
    /// (O(1), shares the retained buffer). `None` for the open segment and
    /// for unknown or evicted ones.
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        self.complete_segment(msn).map(|s| s.data.clone())
    }

    /// Initialization section `n` (`init{n}.mp4`), while it is the current
    /// one or a retained segment needs it.
    pub fn init(&self, n: u32) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|(index, _)| *index == n)
            .map(|(_, data)| data.clone())
    }

    fn complete_segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.front()?.msn;
        let offset = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(offset)
    }

    /// Shrinks the window to `window_segments` (never below three Target
    /// Durations, RFC 8216bis §6.2.2 MUST) and the retention to
    /// `retain_extra_segments` past it.
    fn evict(&mut self) {
        let min_listed = Duration::from_secs(self.config.target_duration_secs().saturating_mul(3));
        let mut listed_duration: Duration = self.listed_segments().map(|s| s.duration).sum();
        while self.listed > self.config.window_segments {
            let oldest_index = self.segments.len() - self.listed;
            let Some(oldest) = self.segments.get(oldest_index) else {
                break;
            };
            let remaining = listed_duration.saturating_sub(oldest.duration);
            if remaining < min_listed {
                break;
            }
            listed_duration = remaining;
            if oldest.discontinuity {
                self.discontinuity_sequence = self.discontinuity_sequence.saturating_add(1);
            }
            self.listed -= 1;
        }
        let keep = self
            .listed
            .saturating_add(self.config.retain_extra_segments);
        while self.segments.len() > keep {
            self.segments.pop_front();
        }
        self.prune_inits();
    }

    /// Drops initialization sections no retained segment and no future
    /// segment needs (indexes only grow along the stream).
    fn prune_inits(&mut self) {
        let oldest_needed = self
            .segments
            .iter()
            .chain(self.open.as_ref())
            .filter_map(|s| s.init)
            .chain(self.current_init)
            .min();
        if let Some(oldest_needed) = oldest_needed {
            self.inits.retain(|(index, _)| *index >= oldest_needed);
        }
    }

    /// The complete segments listed in the Playlist, oldest first.
    pub(crate) fn listed_segments(&self) -> impl Iterator<Item = &Segment> + '_ {
        self.segments.iter().skip(self.segments.len() - self.listed)
    }
}

/// Concatenates the parts into one buffer and re-points each part at its
/// slice of it, so the bytes are held once.
fn concat_parts(parts: &mut [Part]) -> Bytes {
    if let [only] = parts {
        return only.data.clone();
    }
    let total = parts.iter().map(|p| p.data.len()).sum();
    let mut buf = BytesMut::with_capacity(total);
    for part in parts.iter() {
        buf.extend_from_slice(&part.data);
    }
    let whole = buf.freeze();
    let mut offset = 0;
    for part in parts.iter_mut() {
        let end = offset + part.data.len();
        part.data = whole.slice(offset..end);
        offset = end;
    }
    whole
}
