//! Sans-IO Low-Latency HLS playlists, per draft-pantos-hls-rfc8216bis
//! ("RFC 8216bis" below; section numbers as in draft 17 and later) and
//! Apple's HLS authoring specification.
//!
//! One [`MediaPlaylist`] per rendition holds the live window of CMAF
//! segments and their Partial Segments, renders the Media Playlist text
//! (full or Playlist Delta Update), and decides blocking Playlist reloads
//! and part requests. [`render_multivariant`] renders the Multivariant
//! Playlist. There is no networking, no clock and no task here: the caller
//! (the origin server) owns requests and timers and asks this crate after
//! every change.
//!
//! # Driving it
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use livestack_hls::{
//!     BlockDecision, DeliveryDirectives, MediaPlaylist, PartLookup, PlaylistConfig,
//! };
//!
//! let mut video = MediaPlaylist::new(PlaylistConfig {
//!     target_duration: Duration::from_secs(2),
//!     uri_prefix: "video/".into(),
//!     ..PlaylistConfig::default()
//! })?;
//! video.set_init(Bytes::from_static(b"ftyp+moov"));
//! video.push_part(Bytes::from_static(b"moof+mdat"), Duration::from_millis(200), true, 1_795_273_200_000);
//!
//! // GET video.m3u8?_HLS_msn=0&_HLS_part=1
//! let directives = DeliveryDirectives::parse(Some("_HLS_msn=0&_HLS_part=1"))?;
//! let msn = directives.msn.unwrap_or(0);
//! assert_eq!(video.check_block(msn, directives.part), BlockDecision::Wait);
//! // GET video/part0.1.m4s: the preload-hinted part, hold it.
//! assert_eq!(video.part(0, 1), PartLookup::Pending);
//!
//! video.push_part(Bytes::from_static(b"moof+mdat"), Duration::from_millis(200), false, 1_795_273_200_200);
//! assert_eq!(video.check_block(msn, directives.part), BlockDecision::Ready);
//! let text = video.render(directives.skip, &[]);
//! assert!(text.contains("#EXT-X-PART:DURATION=0.20000,URI=\"video/part0.1.m4s\"\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Status codes
//!
//! | outcome | HTTP |
//! |---|---|
//! | [`DirectiveError`] | 400 |
//! | [`BlockDecision::TooFarAhead`] | 400 |
//! | [`BlockDecision::Wait`] for longer than [`blocking_timeout`] | 503 |
//! | [`PartLookup::NotFound`], `None` from [`MediaPlaylist::segment`] / [`MediaPlaylist::init`], [`Resource::parse`] failing | 404 |

mod config;
mod directives;
mod multivariant;
mod playlist;
mod render;
mod resource;
mod text;

#[cfg(test)]
mod tests;

pub use config::{ConfigError, MAX_TARGET_DURATION, PlaylistConfig};
pub use directives::{DeliveryDirectives, DirectiveError, SkipRequest, blocking_timeout};
pub use multivariant::{AudioRendition, Variant, render_multivariant};
pub use playlist::{BlockDecision, MediaPlaylist, PartLookup, RenditionReport};
pub use render::PROTOCOL_VERSION;
pub use resource::Resource;
pub use text::format_program_date_time;
