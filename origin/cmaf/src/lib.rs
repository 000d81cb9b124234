//! CMAF / fragmented MP4 writer: pure functions from media parameters and
//! samples to bytes, no I/O.
//!
//! Implements the parts of ISO/IEC 14496-12 (ISO base media file format,
//! "ISOBMFF"), ISO/IEC 14496-15 (AVC and HEVC in ISOBMFF) and ISO/IEC
//! 23000-19 (CMAF) that a live packager needs:
//!
//! - [`init_segment`]: the CMAF header, `ftyp` + `moov` with one `trak` per
//!   track and an `mvex` that announces movie fragments.
//! - [`fragment`]: one movie fragment, `moof` + `mdat`, carrying a run of
//!   samples for each track.
//! - [`styp`]: the optional segment type box that may open a media segment.
//!
//! A media segment is `styp`? followed by one or more fragments; an LL-HLS
//! partial segment is usually a single fragment.
//!
//! The `try_` variants report input the format cannot express (a sample
//! larger than 4 GiB, a codec this crate cannot describe) as an [`Error`];
//! the plain functions return an empty [`Bytes`] instead.
//!
//! # Supported codecs
//!
//! H.264 (`avc1` + `avcC`), H.265 (`hvc1` + `hvcC`), AAC (`mp4a` + `esds`)
//! and Opus (`Opus` + `dOps`, Encapsulation of Opus in ISO Base Media File
//! Format §4.3). No edit list (`elst`) is written, so the container does
//! not trim the Opus pre-skip samples at the start of the track.

mod fragment;
mod init;
mod writer;

use bytes::Bytes;
use livestack_media::model::{MediaTime, Timescale, TrackParams};

pub use fragment::{fragment, styp, try_fragment};
pub use init::{init_segment, try_init_segment};

/// One track of an init segment.
#[derive(Debug, Clone, Copy)]
pub struct InitTrack<'a> {
    /// The `track_ID` (ISO/IEC 14496-12 §8.3.2), non-zero and unique within
    /// the init segment; fragments refer to the track by it.
    pub track_id: u32,
    /// Codec, dimensions / sample rate and decoder configuration.
    pub params: &'a TrackParams,
}

/// One sample (access unit) of a fragment.
///
/// Its times are on the track's clock ([`FragmentTrack::timescale`]); the
/// fragment writer turns them into the integer fields of `trun` (ISO/IEC
/// 14496-12 §8.8.8) and reports values those fields cannot hold as an
/// [`Error`], never as zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Duration: the distance to the next sample's decoding time. Written
    /// as the unsigned 32-bit `sample_duration`, so 0 ..= `u32::MAX` ticks.
    pub duration: MediaTime,
    /// Composition offset `pts − dts` (see
    /// [`livestack_media::model::Frame::composition_offset`]); may be
    /// negative: written as the signed 32-bit
    /// `sample_composition_time_offset` of `trun` version 1, so within
    /// `i32` ticks.
    pub composition_offset: MediaTime,
    /// True when decoding can start at this sample (a sync sample: IDR/IRAP
    /// picture, every audio frame).
    pub keyframe: bool,
    /// The sample payload, in the ISOBMFF sample format (length-prefixed NAL
    /// units for H.264/H.265, a raw AAC frame without ADTS header), see
    /// [`livestack_media::model::Frame`].
    pub data: Bytes,
}

/// One track's run of samples in a fragment.
#[derive(Debug, Clone, Copy)]
pub struct FragmentTrack<'a> {
    /// The `track_ID` of a track of the init segment.
    pub track_id: u32,
    /// The track's clock: the `timescale` of its `mdhd` in the init segment
    /// (ISO/IEC 14496-12 §8.4.2.3), i.e. [`TrackParams::timescale`]. Every
    /// time of this run must be on it; no time is rebased here.
    pub timescale: Timescale,
    /// Decoding time of the first sample, written as the unsigned 64-bit
    /// `tfdt` `baseMediaDecodeTime` (ISO/IEC 14496-12 §8.8.12), so not
    /// negative.
    pub base_media_decode_time: MediaTime,
    /// The samples, in decoding order.
    pub samples: &'a [Sample],
}

/// Input that the ISOBMFF structures cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A sample is larger than the 32-bit `sample_size` of `trun`
    /// (ISO/IEC 14496-12 §8.8.8).
    #[error("track {track_id}: sample {index} is {len} bytes, more than a trun can describe")]
    SampleTooLarge {
        /// The track of the sample.
        track_id: u32,
        /// Index of the sample in [`FragmentTrack::samples`].
        index: usize,
        /// Its size in bytes.
        len: usize,
    },
    /// A track has more samples than the 32-bit `sample_count` of `trun`.
    #[error("track {track_id}: {count} samples, more than a trun can describe")]
    TooManySamples {
        /// The track.
        track_id: u32,
        /// Its sample count.
        count: usize,
    },
    /// A track's first sample starts more than `i32::MAX` bytes after the
    /// start of the `moof`, beyond the reach of the signed 32-bit
    /// `data_offset` of `trun` (ISO/IEC 14496-12 §8.8.8).
    #[error("track {track_id}: data offset beyond 2 GiB from the moof")]
    DataOffsetOverflow {
        /// The track.
        track_id: u32,
    },
    /// A decoder configuration does not fit the 28-bit length of an MPEG-4
    /// descriptor (ISO/IEC 14496-1).
    #[error("track {track_id}: decoder configuration of {len} bytes is too large")]
    DecoderConfigTooLarge {
        /// The track.
        track_id: u32,
        /// Size of the decoder configuration in bytes.
        len: usize,
    },
    /// A track ID is zero or used twice in one init segment
    /// (ISO/IEC 14496-12 §8.3.2: `track_ID` is unique and never zero).
    #[error("track ID {track_id} is zero or repeated")]
    InvalidTrackId {
        /// The offending ID.
        track_id: u32,
    },
    /// A time of the track is not on the track's clock
    /// ([`FragmentTrack::timescale`]).
    #[error("track {track_id}: {value} is not on the track's clock of {timescale}")]
    WrongTimescale {
        /// The track.
        track_id: u32,
        /// The time.
        value: MediaTime,
        /// The track's timescale.
        timescale: Timescale,
    },
    /// The base media decode time is negative: the unsigned `tfdt`
    /// `baseMediaDecodeTime` (ISO/IEC 14496-12 §8.8.12) cannot hold it.
    #[error("track {track_id}: decode time {value} is negative, no tfdt can hold it")]
    NegativeDecodeTime {
        /// The track.
        track_id: u32,
        /// The decode time.
        value: MediaTime,
    },
    /// A sample duration is negative or longer than the 32-bit
    /// `sample_duration` of `trun` (ISO/IEC 14496-12 §8.8.8).
    #[error("track {track_id}: sample {index} has duration {value}, outside a trun's 32 bits")]
    SampleDurationOutOfRange {
        /// The track.
        track_id: u32,
        /// Index of the sample in [`FragmentTrack::samples`].
        index: usize,
        /// The duration.
        value: MediaTime,
    },
    /// A composition offset does not fit the signed 32-bit
    /// `sample_composition_time_offset` of `trun` version 1 (ISO/IEC
    /// 14496-12 §8.8.8).
    #[error(
        "track {track_id}: sample {index} has composition offset {value}, outside a trun's 32 bits"
    )]
    CompositionOffsetOutOfRange {
        /// The track.
        track_id: u32,
        /// Index of the sample in [`FragmentTrack::samples`].
        index: usize,
        /// The offset.
        value: MediaTime,
    },
    /// The track's codec has no sample entry in this crate.
    #[error("track {track_id}: codec not supported by the CMAF writer")]
    UnsupportedCodec {
        /// The track.
        track_id: u32,
    },
}
