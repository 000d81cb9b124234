//! The relay track format: how one origin carries a broadcast of the media
//! model to another over Media over QUIC, losslessly.
//!
//! The `hang` format the web players read keeps one timestamp per frame
//! (the presentation time), which cannot carry a decoding order with
//! B-frames, nor the parameters a CMAF packager needs (timescale, channel
//! count, language). Origin-to-origin relay therefore uses its own tracks
//! in the MoQ broadcast, read only by other livestack origins:
//!
//! - [`CATALOG_TRACK`] (`livestack/catalog`): one group per change, one
//!   frame: the JSON [`Catalog`], `{"version":1,"tracks":[256,257]}`, the
//!   ids of the broadcast's tracks.
//! - one track per media track, named [`track_name`]
//!   (`livestack/ID`). A MoQ group is a group of the media model (a video
//!   group starts at a keyframe; audio groups span a bounded media time).
//!   Frame 0 of every group is the track's parameters (JSON, see
//!   [`encode_params`]), so a subscriber that joins at any group, or after
//!   a dropped group, knows them before the first media frame, in order
//!   with a mid-stream change (a new resolution). Frames 1.. are access
//!   units ([`encode_frame`]): a fixed header, then the payload exactly as
//!   [`Frame::data`] holds it.
//!
//! Frame header, all integers big-endian (29 bytes, 37 with a duration):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | format version, [`FRAME_VERSION`] (1) |
//! | 1 | flags: bit 0 keyframe, bit 1 duration present; others 0 |
//! | 4 | timescale (ticks per second, non-zero) |
//! | 8 | DTS, signed ticks |
//! | 8 | PTS, signed ticks |
//! | 8 | duration in ticks, signed, only with flag bit 1 |
//!
//! Every decoder refuses what it does not understand (unknown version or
//! flags, zero timescale, short input, unknown codec) with a
//! [`RelayFormatError`]; none panics on input (fuzz target `relay_track`).

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::model::{
    AudioCodec, AudioParams, Frame, MediaTime, TrackParams, VideoCodec, VideoParams,
};
use crate::time::Timescale;

/// Name of the catalog track.
pub const CATALOG_TRACK: &str = "livestack/catalog";

/// Prefix of every relay track name.
pub const TRACK_PREFIX: &str = "livestack/";

/// Version byte of [`encode_frame`]'s header.
pub const FRAME_VERSION: u8 = 1;

/// Version of the [`Catalog`] and parameter records.
pub const CATALOG_VERSION: u32 = 1;

/// Largest catalog or parameter record a decoder accepts (bytes).
pub const MAX_RECORD: usize = 64 * 1024;

/// Tracks a catalog may list.
pub const MAX_TRACKS: usize = 64;

const FLAG_KEYFRAME: u8 = 1;
const FLAG_DURATION: u8 = 2;
const HEADER: usize = 1 + 1 + 4 + 8 + 8;

/// The relay track carrying media track `id`: `livestack/ID`.
pub fn track_name(id: u32) -> String {
    format!("{TRACK_PREFIX}{id}")
}

/// Why relayed bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayFormatError {
    /// Fewer bytes than the header needs.
    #[error("frame of {0} bytes is shorter than its header")]
    Short(usize),
    /// A frame version this decoder does not know.
    #[error("unknown frame format version {0}")]
    Version(u8),
    /// Flag bits this decoder does not know.
    #[error("unknown frame flags {0:#04x}")]
    Flags(u8),
    /// A zero timescale.
    #[error("zero timescale")]
    Timescale,
    /// A record larger than [`MAX_RECORD`] or with more than
    /// [`MAX_TRACKS`] tracks.
    #[error("record too large")]
    TooLarge,
    /// A catalog or parameter record that is not the JSON this module
    /// writes, or names an unknown codec or version.
    #[error("bad record: {0}")]
    Record(String),
}

/// The catalog: the ids of the broadcast's media tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// [`CATALOG_VERSION`].
    pub version: u32,
    /// Track ids, each relayed as [`track_name`].
    pub tracks: Vec<u32>,
}

impl Catalog {
    /// A catalog of `tracks`.
    pub fn new(tracks: Vec<u32>) -> Self {
        Self {
            version: CATALOG_VERSION,
            tracks,
        }
    }

    /// The JSON bytes.
    pub fn encode(&self) -> Bytes {
        json(self)
    }

    /// Parses a catalog.
    ///
    /// # Errors
    /// [`RelayFormatError::TooLarge`] past [`MAX_RECORD`] bytes or
    /// [`MAX_TRACKS`] tracks, [`RelayFormatError::Record`] for anything
    /// but a version-1 catalog.
    pub fn decode(data: &[u8]) -> Result<Self, RelayFormatError> {
        if data.len() > MAX_RECORD {
            return Err(RelayFormatError::TooLarge);
        }
        let c: Catalog =
            serde_json::from_slice(data).map_err(|e| RelayFormatError::Record(e.to_string()))?;
        if c.version != CATALOG_VERSION {
            return Err(RelayFormatError::Record(format!(
                "catalog version {}",
                c.version
            )));
        }
        if c.tracks.len() > MAX_TRACKS {
            return Err(RelayFormatError::TooLarge);
        }
        Ok(c)
    }
}

/// The JSON form of [`TrackParams`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum ParamsRecord {
    Video {
        version: u32,
        codec: String,
        width: u32,
        height: u32,
        frame_rate: Option<(u32, u32)>,
        codec_string: String,
        /// Base64 (RFC 4648 §4, padded).
        decoder_config: String,
    },
    Audio {
        version: u32,
        codec: String,
        sample_rate: u32,
        channels: u8,
        samples_per_frame: u32,
        codec_string: String,
        /// Base64 (RFC 4648 §4, padded).
        decoder_config: String,
        language: Option<String>,
    },
}

/// The JSON bytes of a record of this module.
fn json<T: Serialize>(record: &T) -> Bytes {
    // serde_json fails only on maps with non-string keys or a failing
    // `Serialize` impl; these records are derived structs of strings,
    // numbers and options, so the empty fallback is never taken.
    Bytes::from(serde_json::to_vec(record).unwrap_or_default())
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The parameter record of a track (frame 0 of each of its groups).
pub fn encode_params(params: &TrackParams) -> Bytes {
    let record = match params {
        TrackParams::Video(v) => ParamsRecord::Video {
            version: CATALOG_VERSION,
            codec: match v.codec {
                VideoCodec::H264 => "h264",
                VideoCodec::H265 => "h265",
            }
            .to_owned(),
            width: v.width,
            height: v.height,
            frame_rate: v.frame_rate,
            codec_string: v.codec_string.clone(),
            decoder_config: b64().encode(&v.decoder_config),
        },
        TrackParams::Audio(a) => ParamsRecord::Audio {
            version: CATALOG_VERSION,
            codec: match a.codec {
                AudioCodec::Aac => "aac",
                AudioCodec::Opus => "opus",
            }
            .to_owned(),
            sample_rate: a.sample_rate.get(),
            channels: a.channels,
            samples_per_frame: a.samples_per_frame,
            codec_string: a.codec_string.clone(),
            decoder_config: b64().encode(&a.decoder_config),
            language: a.language.clone(),
        },
    };
    json(&record)
}

/// Parses a parameter record.
///
/// # Errors
/// [`RelayFormatError::TooLarge`] past [`MAX_RECORD`] bytes,
/// [`RelayFormatError::Timescale`] for a zero sample rate,
/// [`RelayFormatError::Record`] for bad JSON, an unknown version or codec,
/// or bad base64.
pub fn decode_params(data: &[u8]) -> Result<TrackParams, RelayFormatError> {
    if data.len() > MAX_RECORD {
        return Err(RelayFormatError::TooLarge);
    }
    let record: ParamsRecord =
        serde_json::from_slice(data).map_err(|e| RelayFormatError::Record(e.to_string()))?;
    let config = |s: &str| {
        b64()
            .decode(s)
            .map(Bytes::from)
            .map_err(|e| RelayFormatError::Record(format!("decoder_config: {e}")))
    };
    let version = |v: u32| {
        if v == CATALOG_VERSION {
            Ok(())
        } else {
            Err(RelayFormatError::Record(format!("record version {v}")))
        }
    };
    Ok(match record {
        ParamsRecord::Video {
            version: v,
            codec,
            width,
            height,
            frame_rate,
            codec_string,
            decoder_config,
        } => {
            version(v)?;
            TrackParams::Video(VideoParams {
                codec: match codec.as_str() {
                    "h264" => VideoCodec::H264,
                    "h265" => VideoCodec::H265,
                    other => return Err(RelayFormatError::Record(format!("video codec {other}"))),
                },
                width,
                height,
                frame_rate,
                codec_string,
                decoder_config: config(&decoder_config)?,
            })
        }
        ParamsRecord::Audio {
            version: v,
            codec,
            sample_rate,
            channels,
            samples_per_frame,
            codec_string,
            decoder_config,
            language,
        } => {
            version(v)?;
            TrackParams::Audio(AudioParams {
                codec: match codec.as_str() {
                    "aac" => AudioCodec::Aac,
                    "opus" => AudioCodec::Opus,
                    other => return Err(RelayFormatError::Record(format!("audio codec {other}"))),
                },
                sample_rate: Timescale::new(sample_rate).ok_or(RelayFormatError::Timescale)?,
                channels,
                samples_per_frame,
                codec_string,
                decoder_config: config(&decoder_config)?,
                language,
            })
        }
    })
}

/// One access unit as a relay frame: the header of the module docs, then
/// the payload (one copy of it).
///
/// # Errors
/// [`crate::model::TimeError`] when the frame's times are on different
/// clocks (PTS and duration are rebased onto the DTS's).
pub fn encode_frame(frame: &Frame) -> Result<Bytes, crate::model::TimeError> {
    let timescale = frame.dts.timescale();
    let pts = frame.pts.rebase(timescale)?;
    let duration = frame.duration.map(|d| d.rebase(timescale)).transpose()?;
    let mut out = BytesMut::with_capacity(HEADER + 8 + frame.data.len());
    out.put_u8(FRAME_VERSION);
    let mut flags = 0;
    if frame.keyframe {
        flags |= FLAG_KEYFRAME;
    }
    if duration.is_some() {
        flags |= FLAG_DURATION;
    }
    out.put_u8(flags);
    out.put_u32(timescale.get());
    out.put_i64(frame.dts.ticks());
    out.put_i64(pts.ticks());
    if let Some(d) = duration {
        out.put_i64(d.ticks());
    }
    out.put_slice(&frame.data);
    Ok(out.freeze())
}

/// Parses a relay frame; the payload is a slice of `data` (no copy).
///
/// # Errors
/// [`RelayFormatError::Short`], [`RelayFormatError::Version`],
/// [`RelayFormatError::Flags`], [`RelayFormatError::Timescale`].
pub fn decode_frame(data: Bytes) -> Result<Frame, RelayFormatError> {
    let short = || RelayFormatError::Short(data.len());
    let header = data.get(..HEADER).ok_or_else(short)?;
    let version = header[0];
    if version != FRAME_VERSION {
        return Err(RelayFormatError::Version(version));
    }
    let flags = header[1];
    if flags & !(FLAG_KEYFRAME | FLAG_DURATION) != 0 {
        return Err(RelayFormatError::Flags(flags));
    }
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let be64 = |b: &[u8]| i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let timescale = Timescale::new(be32(&header[2..6])).ok_or(RelayFormatError::Timescale)?;
    let dts = MediaTime::new(be64(&header[6..14]), timescale);
    let pts = MediaTime::new(be64(&header[14..22]), timescale);
    let (duration, start) = if flags & FLAG_DURATION != 0 {
        let d = data.get(HEADER..HEADER + 8).ok_or_else(short)?;
        (Some(MediaTime::new(be64(d), timescale)), HEADER + 8)
    } else {
        (None, HEADER)
    };
    Ok(Frame {
        pts,
        dts,
        duration,
        keyframe: flags & FLAG_KEYFRAME != 0,
        data: data.slice(start..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video() -> TrackParams {
        TrackParams::Video(VideoParams {
            codec: VideoCodec::H264,
            width: 1280,
            height: 720,
            frame_rate: Some((30000, 1001)),
            codec_string: "avc1.64001f".into(),
            decoder_config: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff]),
        })
    }

    fn audio() -> TrackParams {
        TrackParams::Audio(AudioParams {
            codec: AudioCodec::Aac,
            sample_rate: Timescale::new(48_000).unwrap(),
            channels: 2,
            samples_per_frame: 1024,
            codec_string: "mp4a.40.2".into(),
            decoder_config: Bytes::from_static(&[0x11, 0x90]),
            language: Some("eng".into()),
        })
    }

    #[test]
    fn params_round_trip() {
        for p in [video(), audio()] {
            assert_eq!(decode_params(&encode_params(&p)).unwrap(), p);
        }
    }

    #[test]
    fn frames_round_trip_with_b_frame_offsets() {
        let ts = Timescale::MPEG_TS;
        let f = Frame {
            pts: MediaTime::new(9_000 + 6_000, ts),
            dts: MediaTime::new(9_000, ts),
            duration: None,
            keyframe: true,
            data: Bytes::from_static(b"\0\0\0\x02\x65\x88"),
        };
        assert_eq!(decode_frame(encode_frame(&f).unwrap()).unwrap(), f);
        let a = Frame {
            pts: MediaTime::new(-1024, Timescale::HZ_48000),
            dts: MediaTime::new(-1024, Timescale::HZ_48000),
            duration: Some(MediaTime::new(1024, Timescale::HZ_48000)),
            keyframe: true,
            data: Bytes::from_static(b"aac"),
        };
        assert_eq!(decode_frame(encode_frame(&a).unwrap()).unwrap(), a);
    }

    #[test]
    fn bad_frames_are_refused_with_a_reason() {
        let ts = Timescale::MPEG_TS;
        let f = Frame {
            pts: MediaTime::new(1, ts),
            dts: MediaTime::new(1, ts),
            duration: Some(MediaTime::new(3000, ts)),
            keyframe: false,
            data: Bytes::new(),
        };
        let good = encode_frame(&f).unwrap();
        assert_eq!(
            decode_frame(good.slice(..10)),
            Err(RelayFormatError::Short(10))
        );
        // Duration flag set but the duration cut off.
        assert_eq!(
            decode_frame(good.slice(..HEADER + 4)),
            Err(RelayFormatError::Short(HEADER + 4))
        );
        let mut v = good.to_vec();
        v[0] = 2;
        assert_eq!(
            decode_frame(Bytes::from(v.clone())),
            Err(RelayFormatError::Version(2))
        );
        v[0] = 1;
        v[1] = 0x80;
        assert_eq!(
            decode_frame(Bytes::from(v.clone())),
            Err(RelayFormatError::Flags(0x80))
        );
        v[1] = 0;
        v[2..6].copy_from_slice(&[0; 4]);
        assert_eq!(
            decode_frame(Bytes::from(v)),
            Err(RelayFormatError::Timescale)
        );
    }

    #[test]
    fn bad_records_are_refused() {
        assert!(matches!(
            decode_params(b"{\"kind\":\"video\"}"),
            Err(RelayFormatError::Record(_))
        ));
        let zero_rate = String::from_utf8(encode_params(&audio()).to_vec())
            .unwrap()
            .replace("48000", "0");
        assert_eq!(
            decode_params(zero_rate.as_bytes()),
            Err(RelayFormatError::Timescale)
        );
        let vp9 = String::from_utf8(encode_params(&video()).to_vec())
            .unwrap()
            .replace("h264", "vp9");
        assert!(matches!(
            decode_params(vp9.as_bytes()),
            Err(RelayFormatError::Record(_))
        ));
        assert_eq!(
            Catalog::decode(&Catalog::new(vec![256, 257]).encode()).unwrap(),
            Catalog::new(vec![256, 257])
        );
        assert!(Catalog::decode(b"{\"version\":2,\"tracks\":[]}").is_err());
        let many = Catalog::new((0..=MAX_TRACKS as u32).collect()).encode();
        assert_eq!(Catalog::decode(&many), Err(RelayFormatError::TooLarge));
    }
}
