//! The media model: broadcast → tracks → groups (GOPs) → frames.
//!
//! A *broadcast* is one published stream (`live/NAME`). It carries one or
//! more *tracks* (a video track, an audio track). Each track is a sequence of
//! *groups*: a group starts at a keyframe (an H.264 IDR / H.265 IRAP picture,
//! or any audio frame) and holds every frame up to the next one, so a
//! subscriber that joins at a group boundary can decode from there. A *frame*
//! is one access unit with its presentation and decoding timestamps.
//!
//! Timestamps are [`MediaTime`]s, tick counts that carry their
//! [`Timescale`] (ticks per second): 90 kHz for video (the MPEG-TS system
//! clock, ISO/IEC 13818-1 §2.4.3.7) and the sample rate for audio, so that
//! AAC frame durations (1024 samples) are exact. They are unwrapped (never
//! jump back at the 33-bit PTS wrap) and signed so that a composition
//! offset (pts − dts) can be expressed. See [`crate::time`] for the
//! checked conversions.

use bytes::Bytes;

pub use crate::time::{MediaTime, TimeError, Timescale};

/// Video codecs the pipeline understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    /// H.264 / AVC (ITU-T H.264, ISO/IEC 14496-10); sample entry `avc1`.
    H264,
    /// H.265 / HEVC (ITU-T H.265, ISO/IEC 23008-2); sample entry `hvc1`.
    H265,
}

/// Audio codecs the pipeline understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioCodec {
    /// MPEG-4 AAC (ISO/IEC 14496-3); sample entry `mp4a`.
    Aac,
    /// Opus (RFC 6716); sample entry `Opus` (Encapsulation of Opus in ISOBMFF).
    Opus,
}

/// Parameters of a video track, known once the first parameter sets were
/// parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    /// The codec.
    pub codec: VideoCodec,
    /// Coded picture width in pixels, after SPS cropping.
    pub width: u32,
    /// Coded picture height in pixels, after SPS cropping.
    pub height: u32,
    /// Nominal frame rate as `(numerator, denominator)` frames per second,
    /// from the SPS VUI timing info when present.
    pub frame_rate: Option<(u32, u32)>,
    /// RFC 6381 `CODECS` string, e.g. `avc1.64001f` or `hvc1.1.6.L93.B0`.
    pub codec_string: String,
    /// The decoder configuration record, i.e. the *payload* of the `avcC`
    /// box (AVCDecoderConfigurationRecord, ISO/IEC 14496-15 §5.3.3.1) or of
    /// the `hvcC` box (HEVCDecoderConfigurationRecord, §8.3.3.1).
    pub decoder_config: Bytes,
}

/// Parameters of an audio track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioParams {
    /// The codec.
    pub codec: AudioCodec,
    /// Output sample rate (samples per second); also the track's
    /// timescale, so never zero.
    pub sample_rate: Timescale,
    /// Channel count.
    pub channels: u8,
    /// Samples per frame: 1024 for AAC-LC, 960 (20 ms at 48 kHz) typical for Opus.
    pub samples_per_frame: u32,
    /// RFC 6381 `CODECS` string, e.g. `mp4a.40.2` or `opus`.
    pub codec_string: String,
    /// Decoder configuration: the AudioSpecificConfig (ISO/IEC 14496-3
    /// §1.6.2.1) for AAC, the `dOps` payload for Opus.
    pub decoder_config: Bytes,
    /// The language of the track when the source declares it: the ISO 639-2
    /// code (three lower-case letters, e.g. `eng`, `fra`) of an MPEG-TS
    /// ISO_639_language_descriptor (ISO/IEC 13818-1 §2.6.18). `None` when
    /// unknown.
    pub language: Option<String>,
}

/// What a track carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackParams {
    /// A video track.
    Video(VideoParams),
    /// An audio track.
    Audio(AudioParams),
}

impl TrackParams {
    /// The track's media clock: 90 kHz for video, the sample rate for audio.
    pub fn timescale(&self) -> Timescale {
        match self {
            TrackParams::Video(_) => Timescale::MPEG_TS,
            TrackParams::Audio(a) => a.sample_rate,
        }
    }

    /// The RFC 6381 codec string of the track.
    pub fn codec_string(&self) -> &str {
        match self {
            TrackParams::Video(v) => &v.codec_string,
            TrackParams::Audio(a) => &a.codec_string,
        }
    }

    /// True for a video track.
    pub fn is_video(&self) -> bool {
        matches!(self, TrackParams::Video(_))
    }
}

/// One access unit.
///
/// `data` is in the sample format of the ISO base media file format, ready to
/// be placed in an `mdat`: for H.264/H.265 a sequence of NAL units each
/// prefixed by a 4-byte big-endian length (ISO/IEC 14496-15 §4.3, with
/// `lengthSizeMinusOne = 3`), with access unit delimiters and in-band
/// parameter sets removed; for AAC one raw_data_block without ADTS header.
///
/// The times are on the track's clock ([`TrackParams::timescale`]): the
/// demuxer and the test source produce them so. A consumer that needs one
/// clock (the CMAF packager writes `mdhd` timescale ticks) rebases them with
/// [`MediaTime::rebase`] and treats a failure as bad input, never as zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Presentation timestamp (PTS).
    pub pts: MediaTime,
    /// Decoding timestamp (DTS); `pts − dts` is the composition offset
    /// (positive with B-frames), see [`Frame::composition_offset`].
    pub dts: MediaTime,
    /// Duration when the source knows it (audio: 1024 samples per AAC
    /// frame); `None` for video, where it is the distance to the next
    /// frame's `dts`.
    pub duration: Option<MediaTime>,
    /// True when decoding can start at this frame (IDR/IRAP, every audio
    /// frame). Starts a new group.
    pub keyframe: bool,
    /// The payload, see the type docs for its format.
    pub data: Bytes,
}

impl Frame {
    /// The composition offset `pts − dts` (ISO/IEC 14496-12 §8.6.1.3), on
    /// the frame's clock.
    ///
    /// # Errors
    /// [`TimeError::TimescaleMismatch`] when `pts` and `dts` are on
    /// different clocks, [`TimeError::ArithmeticOverflow`] when the
    /// difference does not fit 64 bits.
    pub fn composition_offset(&self) -> Result<MediaTime, TimeError> {
        self.pts.checked_sub(self.dts)
    }
}
