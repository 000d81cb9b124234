//! Sans-IO CMAF / LL-HLS packaging of a live broadcast with any number of
//! renditions.
//!
//! Frames and `now` go in, playlists, parts and segments come out; no tasks,
//! no sockets, no clock reads (the caller passes the wall clock for
//! program-date-time and an [`std::time::Instant`] that stamps part
//! availability). The origin runs one [`Broadcast`] per stream in one task;
//! HTTP handlers only serve what it produced.
//!
//! - [`Packager`] (module [`cutter`]) cuts each track's frames into CMAF
//!   parts and segments, all renditions aligned on the first video track.
//! - [`Broadcast`] owns the cutter, one [`livestack_hls::MediaPlaylist`] per
//!   [`Rendition`] with its bit-rate accounting, and renders the media and
//!   multivariant playlists (RFC 8216bis §4.4.6: audio renditions grouped
//!   by `EXT-X-MEDIA`, one `EXT-X-STREAM-INF` per video rendition).
//! - [`Rendition`] identifies a rendition by kind and index; its URI name is
//!   `video`, `audio`, then `video1`, `audio1`, … in track order.

pub mod broadcast;
pub mod cutter;
pub mod rendition;

pub use broadcast::{
    AUDIO_GROUP, AVAILABILITY_LOG, Broadcast, BroadcastConfig, BroadcastEvent, Continuation,
    RenditionSnapshot, RenditionState,
};
pub use cutter::{MAX_TRACKS, Packager, PackagerConfig, PackagerOutput, PackagerStats};
pub use rendition::{Rendition, RenditionKind, RenditionName};
