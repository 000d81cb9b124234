//! Media Playlist text (RFC 8216bis §4.4), in the tag order of Apple's
//! Low-Latency HLS examples except for the rendition reports, which come
//! before the first segment (see [`MediaPlaylist::render`]).

use std::fmt;
use std::time::Duration;

use crate::directives::SkipRequest;
use crate::playlist::{MediaPlaylist, RenditionReport, Segment};
use crate::resource::Resource;
use crate::text::{ProgramDateTime, Quoted, Secs3, Secs5, units5_ceil, units5_round};

/// The `EXT-X-VERSION` of every Media Playlist (RFC 8216bis §4.4.1.2):
/// 9 because Playlist Delta Updates carry `EXT-X-SKIP`, which needs version
/// 9 or higher (§8); it is emitted on full Playlists too so the version a
/// client sees never changes between reloads.
pub const PROTOCOL_VERSION: u32 = 9;

/// `CAN-SKIP-UNTIL` in Target Durations (RFC 8216bis §4.4.3.8: the Skip
/// Boundary "MUST be at least six times the Target Duration").
const SKIP_BOUNDARY_TARGET_DURATIONS: u64 = 6;
/// `PART-HOLD-BACK` in Part Target Durations (RFC 8216bis §4.4.3.8: at
/// least two, SHOULD be at least three).
const PART_HOLD_BACK_PART_TARGETS: u128 = 3;
/// `EXT-X-PART` tags are listed for segments within this many Target
/// Durations of the end (RFC 8216bis §6.2.2: SHOULD be removed when
/// "greater than three Target Durations from the end of the Playlist").
const PART_LISTING_TARGET_DURATIONS: u64 = 3;

impl MediaPlaylist {
    /// Renders the Media Playlist.
    ///
    /// - `skip`: the request's `_HLS_skip` directive. With
    ///   [`SkipRequest::Yes`] or [`SkipRequest::V2`], complete segments whose
    ///   end is more than `CAN-SKIP-UNTIL` (6 Target Durations) before the
    ///   end of the last complete segment are replaced by
    ///   `EXT-X-SKIP:SKIPPED-SEGMENTS=n` (Playlist Delta Update,
    ///   RFC 8216bis §6.2.5.1, §4.4.5.2), and their `EXT-X-DISCONTINUITY`
    ///   tags with them; the first remaining segment still carries
    ///   `EXT-X-MAP` and `EXT-X-PROGRAM-DATE-TIME`. When nothing is that old,
    ///   or after [`end`](Self::end) (§6.2.5.1 MUST ignore), the full
    ///   Playlist is rendered.
    /// - `reports`: `EXT-X-RENDITION-REPORT` tags for the other renditions
    ///   (§4.4.5.4), rendered in the given order.
    ///
    /// Layout: header (`EXT-X-VERSION`, `EXT-X-TARGETDURATION`,
    /// `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=…,PART-HOLD-BACK=…`
    /// with `PART-HOLD-BACK` = 3 × `PART-TARGET`, `EXT-X-PART-INF`,
    /// `EXT-X-MEDIA-SEQUENCE`, `EXT-X-DISCONTINUITY-SEQUENCE` (always, even
    /// 0), the rendition reports, `EXT-X-SKIP` in a delta update), then per
    /// segment `EXT-X-DISCONTINUITY`, `EXT-X-MAP` (first
    /// segment and on change), `EXT-X-PROGRAM-DATE-TIME` (first segment and
    /// after each discontinuity), `EXT-X-PART` tags (segments starting
    /// within 3 Target Durations of the end, §6.2.2; always for the open
    /// segment), `EXTINF` and URI; then `EXT-X-PRELOAD-HINT` for
    /// [`next_part`](Self::next_part) while live (§4.4.5.3), and
    /// `EXT-X-ENDLIST` once ended. Durations have five decimals;
    /// part durations are rounded to nearest and `PART-TARGET` up, so a
    /// part within the target never renders above it.
    pub fn render(&self, skip: SkipRequest, reports: &[RenditionReport]) -> String {
        MediaRender {
            playlist: self,
            skip,
            reports,
        }
        .to_string()
    }

    /// How many of the listed complete segments a delta update replaces
    /// with `EXT-X-SKIP`.
    fn skippable_segments(&self, boundary: Duration) -> usize {
        let total: Duration = self.listed_segments().map(|s| s.duration).sum();
        let mut end = Duration::ZERO;
        let mut skipped = 0;
        for segment in self.listed_segments() {
            end = end.saturating_add(segment.duration);
            if total.saturating_sub(end) <= boundary {
                break;
            }
            skipped += 1;
        }
        skipped
    }
}

struct MediaRender<'a> {
    playlist: &'a MediaPlaylist,
    skip: SkipRequest,
    reports: &'a [RenditionReport],
}

/// Where a segment is in the rendering.
struct SegmentContext {
    /// First segment after the header (or after `EXT-X-SKIP`).
    first: bool,
    /// Its `EXT-X-PART` tags are listed.
    list_parts: bool,
    /// It is complete (has `EXTINF` and a URI).
    complete: bool,
}

impl fmt::Display for MediaRender<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let playlist = self.playlist;
        let config = &playlist.config;
        let target_secs = config.target_duration_secs();
        let skip_boundary = target_secs.saturating_mul(SKIP_BOUNDARY_TARGET_DURATIONS);
        let part_target_units = units5_ceil(config.part_target);
        // 10 µs units → ms, rounded up so the hold back stays ≥ 3 × PART-TARGET.
        let part_hold_back_ms = (part_target_units * PART_HOLD_BACK_PART_TARGETS).div_ceil(100);

        writeln!(f, "#EXTM3U")?;
        writeln!(f, "#EXT-X-VERSION:{PROTOCOL_VERSION}")?;
        writeln!(f, "#EXT-X-TARGETDURATION:{target_secs}")?;
        writeln!(
            f,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},PART-HOLD-BACK={}",
            Secs3(u128::from(skip_boundary) * 1_000),
            Secs3(part_hold_back_ms),
        )?;
        writeln!(
            f,
            "#EXT-X-PART-INF:PART-TARGET={}",
            Secs5(part_target_units)
        )?;

        let skipped = match self.skip {
            SkipRequest::Yes | SkipRequest::V2 if !playlist.ended => {
                playlist.skippable_segments(Duration::from_secs(skip_boundary))
            }
            _ => 0,
        };
        let media_sequence = playlist
            .listed_segments()
            .next()
            .map_or(playlist.next_msn, |s| s.msn);
        writeln!(f, "#EXT-X-MEDIA-SEQUENCE:{media_sequence}")?;
        writeln!(
            f,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            playlist.discontinuity_sequence
        )?;
        // Rendition reports go in the header, before the first Media
        // Segment, rather than after the last part as in Apple's examples.
        // RFC 8216bis does not constrain where this Media Metadata tag
        // appears (§4.4.5.4), and hls.js reads it anywhere (its parser
        // matches tags over the whole text). Shaka Player's text parser
        // (lib/hls/manifest_text_parser.js, `parseSegments_`) does not: once
        // it has seen the first Media Segment tag, it keeps as Playlist tags
        // only those of its MEDIA_PLAYLIST_TAGS set, which lacks
        // EXT-X-RENDITION-REPORT, and files every other tag under the
        // segment that follows; after the open segment's parts that is the
        // open segment itself, so the reports became tags of a Partial
        // Segment. Before the first segment every parser takes them for
        // Playlist tags. EXT-X-PRELOAD-HINT stays after the last part: it
        // announces the part that follows (§4.4.5.3), and Shaka files it
        // with the open segment's parts on purpose.
        for report in self.reports {
            writeln!(
                f,
                "#EXT-X-RENDITION-REPORT:URI={},LAST-MSN={},LAST-PART={}",
                Quoted(&report.uri),
                report.last_msn,
                report.last_part
            )?;
        }
        if skipped > 0 {
            writeln!(f, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")?;
        }

        // Parts are listed for segments that start within the part window
        // of the end of the Playlist (including the open segment's parts).
        let open_duration = playlist
            .open
            .as_ref()
            .map_or(Duration::ZERO, |s| s.duration);
        let mut to_end = playlist
            .listed_segments()
            .map(|s| s.duration)
            .sum::<Duration>()
            .saturating_add(open_duration);
        let part_window =
            Duration::from_secs(target_secs.saturating_mul(PART_LISTING_TARGET_DURATIONS));
        let mut last_init = None;
        let mut first = true;
        for (i, segment) in playlist.listed_segments().enumerate() {
            let list_parts = to_end <= part_window;
            to_end = to_end.saturating_sub(segment.duration);
            if i < skipped {
                continue;
            }
            let context = SegmentContext {
                first,
                list_parts,
                complete: true,
            };
            self.segment(f, segment, &context, &mut last_init)?;
            first = false;
        }
        if let Some(open) = &playlist.open {
            let context = SegmentContext {
                first,
                list_parts: true,
                complete: false,
            };
            self.segment(f, open, &context, &mut last_init)?;
        }

        let prefix = &config.uri_prefix;
        if !playlist.ended {
            let (msn, index) = playlist.next_part();
            writeln!(
                f,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{prefix}{}\"",
                Resource::Part { msn, index }
            )?;
        }
        if playlist.ended {
            writeln!(f, "#EXT-X-ENDLIST")?;
        }
        Ok(())
    }
}

impl MediaRender<'_> {
    fn segment(
        &self,
        f: &mut fmt::Formatter<'_>,
        segment: &Segment,
        context: &SegmentContext,
        last_init: &mut Option<u32>,
    ) -> fmt::Result {
        let prefix = &self.playlist.config.uri_prefix;
        if segment.discontinuity {
            writeln!(f, "#EXT-X-DISCONTINUITY")?;
        }
        if let Some(init) = segment.init
            && (context.first || *last_init != Some(init))
        {
            writeln!(f, "#EXT-X-MAP:URI=\"{prefix}{}\"", Resource::Init(init))?;
            *last_init = Some(init);
        }
        if context.first || segment.discontinuity {
            writeln!(
                f,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                ProgramDateTime(segment.program_date_time_ms)
            )?;
        }
        if context.list_parts {
            for (index, part) in (0u32..).zip(&segment.parts) {
                write!(
                    f,
                    "#EXT-X-PART:DURATION={},URI=\"{prefix}{}\"",
                    Secs5(units5_round(part.duration)),
                    Resource::Part {
                        msn: segment.msn,
                        index
                    }
                )?;
                if part.independent {
                    write!(f, ",INDEPENDENT=YES")?;
                }
                writeln!(f)?;
            }
        }
        if context.complete {
            writeln!(f, "#EXTINF:{},", Secs5(units5_round(segment.duration)))?;
            writeln!(f, "{prefix}{}", Resource::Segment(segment.msn))?;
        }
        Ok(())
    }
}
