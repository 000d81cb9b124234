//! Sans-IO media pipeline shared by the origin and the SFU.
//!
//! Nothing in this crate opens a socket, reads a clock or spawns a task: the
//! caller feeds bytes in and drains typed events out (the quinn-proto / str0m
//! shape). The layers are:
//!
//! - [`model`]: the media model every consumer shares — broadcast → tracks →
//!   groups (GOPs) → frames, with timestamps in a per-track timescale.
//! - [`time`]: [`time::MediaTime`], ticks that carry their
//!   [`time::Timescale`], with checked conversions.
//! - [`ingest`]: [`ingest::TsIngest`], MPEG-TS bytes (as received over SRT)
//!   in, [`model`] tracks and frames out.
//! - [`ts`]: the MPEG-TS demultiplexer underneath it (ISO/IEC 13818-1).
//! - [`h264`], [`h265`], [`adts`]: elementary stream parsing — parameter
//!   sets, decoder configuration records, RFC 6381 codec strings.
//! - [`annexb`], [`bits`]: Annex B NAL unit framing, and the Exp-Golomb bit
//!   reader the parameter set parsers use.
//! - [`srt_access`]: the SRT Access Control `streamid`
//!   (`#!::r=live/NAME,m=publish,...`).
//!
//! Every parser returns an error per concern (one `thiserror` enum per
//! module) and never panics on input; the fuzz targets in `fuzz/` check it.

pub mod adts;
pub mod annexb;
pub mod bits;
pub mod h264;
pub mod h265;
pub mod ingest;
pub mod model;
pub mod relay_track;
pub mod srt_access;
pub mod time;
pub mod ts;
