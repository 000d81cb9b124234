//! H.265 / HEVC elementary stream parsing (ITU-T H.265).
//!
//! NAL unit headers (§7.3.1.2), the parts of the sequence parameter set
//! (§7.3.2.2) that packaging needs — `profile_tier_level` (§7.3.3), chroma
//! format, conformance-window-cropped size, bit depths — the
//! HEVCDecoderConfigurationRecord of ISO/IEC 14496-15 §8.3.3.1 and the
//! `hvc1` codec string of ISO/IEC 14496-15 Annex E.3.

use std::fmt::Write as _;

use bytes::Bytes;

use crate::bits::{BitReader, BitsError, rbsp_from_nal};
use crate::model::{VideoCodec, VideoParams};

/// `nal_unit_type` of the first IRAP type, BLA_W_LP (Table 7-1).
pub const NAL_BLA_W_LP: u8 = 16;
/// `nal_unit_type` of IDR_W_RADL (Table 7-1).
pub const NAL_IDR_W_RADL: u8 = 19;
/// `nal_unit_type` of CRA_NUT (Table 7-1).
pub const NAL_CRA: u8 = 21;
/// `nal_unit_type` of the last (reserved) IRAP type, RSV_IRAP_VCL23.
pub const NAL_IRAP_LAST: u8 = 23;
/// `nal_unit_type` of a video parameter set (Table 7-1).
pub const NAL_VPS: u8 = 32;
/// `nal_unit_type` of a sequence parameter set (Table 7-1).
pub const NAL_SPS: u8 = 33;
/// `nal_unit_type` of a picture parameter set (Table 7-1).
pub const NAL_PPS: u8 = 34;
/// `nal_unit_type` of an access unit delimiter (Table 7-1).
pub const NAL_AUD: u8 = 35;
/// `nal_unit_type` of filler data (Table 7-1).
pub const NAL_FD: u8 = 38;

/// Errors parsing H.265 syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum H265Error {
    /// The NAL unit is shorter than its 2-byte header.
    #[error("NAL unit shorter than its header")]
    ShortNal,
    /// `forbidden_zero_bit` was 1 (§7.4.2.2).
    #[error("forbidden_zero_bit set")]
    ForbiddenBit,
    /// The NAL unit is not of the expected type.
    #[error("expected nal_unit_type {expected}, got {actual}")]
    WrongNalType {
        /// The type that was required.
        expected: u8,
        /// The type found.
        actual: u8,
    },
    /// The bitstream ended early or held an over-long Exp-Golomb code.
    #[error("SPS bitstream: {0}")]
    Bits(#[from] BitsError),
    /// A syntax element is outside the range the spec allows.
    #[error("{0} out of range")]
    OutOfRange(&'static str),
    /// Parameter sets cannot be stored in a decoder configuration record:
    /// one kind missing, more than 65535 of a kind, or one longer than
    /// 65535 bytes.
    #[error("parameter sets do not fit an HEVCDecoderConfigurationRecord")]
    ConfigRecord,
}

/// An H.265 NAL unit header (§7.3.1.2), two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalHeader {
    /// `nal_unit_type`, 0..=63 (Table 7-1).
    pub nal_unit_type: u8,
    /// `nuh_layer_id`, 0..=63; 0 for single-layer streams.
    pub nuh_layer_id: u8,
    /// `nuh_temporal_id_plus1`, 1..=7.
    pub temporal_id_plus1: u8,
}

impl NalHeader {
    /// Parses the two header bytes of a NAL unit.
    ///
    /// # Errors
    /// [`H265Error::ShortNal`], [`H265Error::ForbiddenBit`],
    /// [`H265Error::OutOfRange`] for `nuh_temporal_id_plus1 == 0`.
    pub fn parse(nal: &[u8]) -> Result<NalHeader, H265Error> {
        let [b0, b1, ..] = *nal else {
            return Err(H265Error::ShortNal);
        };
        if b0 & 0x80 != 0 {
            return Err(H265Error::ForbiddenBit);
        }
        let temporal_id_plus1 = b1 & 0x07;
        if temporal_id_plus1 == 0 {
            return Err(H265Error::OutOfRange("nuh_temporal_id_plus1"));
        }
        Ok(NalHeader {
            nal_unit_type: (b0 >> 1) & 0x3F,
            nuh_layer_id: ((b0 & 1) << 5) | (b1 >> 3),
            temporal_id_plus1,
        })
    }

    /// True for an intra random access point picture (types 16..=23,
    /// §3.73): BLA, IDR or CRA, where decoding can start.
    pub fn is_irap(self) -> bool {
        (NAL_BLA_W_LP..=NAL_IRAP_LAST).contains(&self.nal_unit_type)
    }
}

/// The `nal_unit_type` of a NAL unit, or `None` when empty.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3F)
}

/// The general profile, tier and level of `profile_tier_level()` (§7.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileTierLevel {
    /// `general_profile_space`, 0..=3 (0 in conforming streams).
    pub profile_space: u8,
    /// `general_tier_flag`: false Main tier, true High tier.
    pub tier_flag: bool,
    /// `general_profile_idc`: 1 Main, 2 Main 10, 3 Main Still Picture,
    /// 4 format range extensions, ...
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag j in bit `31 - j`.
    pub compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` through
    /// `general_inbld_flag`/reserved bit, as 6 bytes in stream order.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc`: level × 30 (e.g. 93 for level 3.1).
    pub level_idc: u8,
}

impl ProfileTierLevel {
    /// Parses `profile_tier_level(1, max_sub_layers_minus1)` (§7.3.3),
    /// skipping the sub-layer fields.
    ///
    /// # Errors
    /// [`BitsError`] on truncation.
    pub fn parse(
        r: &mut BitReader<'_>,
        max_sub_layers_minus1: u8,
    ) -> Result<ProfileTierLevel, BitsError> {
        let profile_space = r.read_u8(2)?;
        let tier_flag = r.read_flag()?;
        let profile_idc = r.read_u8(5)?;
        let compatibility_flags = r.read_u32(32)?;
        let mut constraint_flags = [0u8; 6];
        for b in &mut constraint_flags {
            *b = r.read_u8(8)?;
        }
        let level_idc = r.read_u8(8)?;
        let n = usize::from(max_sub_layers_minus1);
        let mut profile_present = [false; 8];
        let mut level_present = [false; 8];
        for i in 0..n.min(8) {
            profile_present[i] = r.read_flag()?;
            level_present[i] = r.read_flag()?;
        }
        if n > 0 {
            for _ in n..8 {
                r.skip_bits(2)?; // reserved_zero_2bits
            }
        }
        for i in 0..n.min(8) {
            if profile_present[i] {
                // profile_space(2) tier(1) idc(5) compat(32) flags(48)
                r.skip_bits(88)?;
            }
            if level_present[i] {
                r.skip_bits(8)?; // sub_layer_level_idc
            }
        }
        Ok(ProfileTierLevel {
            profile_space,
            tier_flag,
            profile_idc,
            compatibility_flags,
            constraint_flags,
            level_idc,
        })
    }

    /// The codec string `hvc1.<space><idc>.<compat>.<tier><level>[.<c>]*`
    /// of ISO/IEC 14496-15 Annex E.3: profile space as `''`/`A`/`B`/`C`
    /// followed by the decimal profile idc; the compatibility flags in
    /// reverse bit order as hex without leading zeros; `L` or `H` and the
    /// decimal level idc; then each constraint byte in hex, trailing zero
    /// bytes omitted. Example: `hvc1.1.6.L93.B0`.
    pub fn codec_string(&self) -> String {
        let space = match self.profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let tier = if self.tier_flag { 'H' } else { 'L' };
        let mut s = format!(
            "hvc1.{space}{}.{:X}.{tier}{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            self.level_idc
        );
        let used = self
            .constraint_flags
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |i| i + 1);
        for b in self.constraint_flags.iter().take(used) {
            let _ = write!(s, ".{b:X}");
        }
        s
    }
}

/// The fields of an H.265 sequence parameter set (§7.3.2.2) that
/// packaging needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    /// `sps_video_parameter_set_id`, 0..=15.
    pub vps_id: u8,
    /// `sps_max_sub_layers_minus1`, 0..=6.
    pub max_sub_layers_minus1: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// The general profile, tier and level.
    pub ptl: ProfileTierLevel,
    /// `sps_seq_parameter_set_id`, 0..=15.
    pub seq_parameter_set_id: u32,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag` (4:4:4 only).
    pub separate_colour_plane: bool,
    /// Picture width in luma samples after the conformance window.
    pub width: u32,
    /// Picture height in luma samples after the conformance window.
    pub height: u32,
    /// Luma bit depth in bits (8 + `bit_depth_luma_minus8`).
    pub bit_depth_luma: u8,
    /// Chroma bit depth in bits (8 + `bit_depth_chroma_minus8`).
    pub bit_depth_chroma: u8,
}

impl Sps {
    /// Parses an SPS NAL unit (2-byte header included, emulation prevention
    /// bytes still present) up to the bit depths.
    ///
    /// # Errors
    /// [`H265Error::WrongNalType`] if it is not an SPS, [`H265Error::Bits`]
    /// on truncation, [`H265Error::OutOfRange`] for values outside the
    /// spec's ranges.
    pub fn parse(nal: &[u8]) -> Result<Sps, H265Error> {
        let header = NalHeader::parse(nal)?;
        if header.nal_unit_type != NAL_SPS {
            return Err(H265Error::WrongNalType {
                expected: NAL_SPS,
                actual: header.nal_unit_type,
            });
        }
        // Bounded slicing: a NAL shorter than its header gives an empty RBSP, refused by the SPS parser.
        let rbsp = rbsp_from_nal(nal.get(2..).unwrap_or_default());
        let mut r = BitReader::new(&rbsp);
        let vps_id = r.read_u8(4)?;
        let max_sub_layers_minus1 = r.read_u8(3)?;
        if max_sub_layers_minus1 > 6 {
            return Err(H265Error::OutOfRange("sps_max_sub_layers_minus1"));
        }
        let temporal_id_nesting = r.read_flag()?;
        let ptl = ProfileTierLevel::parse(&mut r, max_sub_layers_minus1)?;
        let seq_parameter_set_id = r.read_ue()?;
        if seq_parameter_set_id > 15 {
            return Err(H265Error::OutOfRange("sps_seq_parameter_set_id"));
        }
        let chroma_format_idc = r.read_ue()?;
        if chroma_format_idc > 3 {
            return Err(H265Error::OutOfRange("chroma_format_idc"));
        }
        let separate_colour_plane = chroma_format_idc == 3 && r.read_flag()?;
        let pic_width = u64::from(r.read_ue()?);
        let pic_height = u64::from(r.read_ue()?);
        let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
        if r.read_flag()? {
            left = r.read_ue()?.into();
            right = r.read_ue()?.into();
            top = r.read_ue()?.into();
            bottom = r.read_ue()?.into();
        }
        let bit_depth_luma_minus8 = r.read_ue()?;
        let bit_depth_chroma_minus8 = r.read_ue()?;
        if bit_depth_luma_minus8 > 8 || bit_depth_chroma_minus8 > 8 {
            return Err(H265Error::OutOfRange("bit_depth_minus8"));
        }
        // §7.4.3.2.1: offsets are in units of SubWidthC / SubHeightC
        // (Table 6-1; 1 when ChromaArrayType is 0).
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let width = pic_width
            .checked_sub(sub_w * (left + right))
            .filter(|w| *w > 0)
            .and_then(|w| u32::try_from(w).ok())
            .ok_or(H265Error::OutOfRange("picture width"))?;
        let height = pic_height
            .checked_sub(sub_h * (top + bottom))
            .filter(|h| *h > 0)
            .and_then(|h| u32::try_from(h).ok())
            .ok_or(H265Error::OutOfRange("picture height"))?;
        Ok(Sps {
            vps_id,
            max_sub_layers_minus1,
            temporal_id_nesting,
            ptl,
            seq_parameter_set_id,
            chroma_format_idc: chroma_format_idc as u8,
            separate_colour_plane,
            width,
            height,
            bit_depth_luma: 8 + bit_depth_luma_minus8 as u8,
            bit_depth_chroma: 8 + bit_depth_chroma_minus8 as u8,
        })
    }
}

/// Builds an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1),
/// the payload of the `hvcC` box: general profile/tier/level from the first
/// SPS, `lengthSizeMinusOne = 3`, and three arrays (VPS, SPS, PPS) each
/// with `array_completeness = 1` (all parameter sets are in the record, so
/// the sample entry is `hvc1`).
///
/// `min_spatial_segmentation_idc`, `parallelismType`, `avgFrameRate` and
/// `constantFrameRate` are written as 0 (unknown).
///
/// # Errors
/// [`H265Error::ConfigRecord`] when a kind is missing or does not fit;
/// SPS parse errors.
pub fn hevc_decoder_config(
    vps: &[&[u8]],
    sps: &[&[u8]],
    pps: &[&[u8]],
) -> Result<Vec<u8>, H265Error> {
    let first = sps.first().ok_or(H265Error::ConfigRecord)?;
    if vps.is_empty() || pps.is_empty() {
        return Err(H265Error::ConfigRecord);
    }
    let s = Sps::parse(first)?;
    let mut out = Vec::with_capacity(64);
    out.push(1); // configurationVersion
    out.push((s.ptl.profile_space << 6) | (u8::from(s.ptl.tier_flag) << 5) | s.ptl.profile_idc);
    out.extend_from_slice(&s.ptl.compatibility_flags.to_be_bytes());
    out.extend_from_slice(&s.ptl.constraint_flags);
    out.push(s.ptl.level_idc);
    out.extend_from_slice(&[0xF0, 0x00]); // reserved '1111', min_spatial_segmentation_idc 0
    out.push(0xFC); // reserved '111111', parallelismType 0
    out.push(0xFC | (s.chroma_format_idc & 3));
    out.push(0xF8 | ((s.bit_depth_luma - 8) & 7));
    out.push(0xF8 | ((s.bit_depth_chroma - 8) & 7));
    out.extend_from_slice(&[0, 0]); // avgFrameRate
    // constantFrameRate(2) = 0, numTemporalLayers(3), temporalIdNested(1),
    // lengthSizeMinusOne(2) = 3.
    out.push(((s.max_sub_layers_minus1 + 1) << 3) | (u8::from(s.temporal_id_nesting) << 2) | 3);
    out.push(3); // numOfArrays
    for (nal_type, nals) in [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)] {
        out.push(0x80 | nal_type); // array_completeness = 1, reserved 0
        let count = u16::try_from(nals.len()).map_err(|_| H265Error::ConfigRecord)?;
        out.extend_from_slice(&count.to_be_bytes());
        for nal in nals {
            let len = u16::try_from(nal.len()).map_err(|_| H265Error::ConfigRecord)?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
    Ok(out)
}

/// Builds the [`VideoParams`] of an H.265 track from one VPS, SPS and PPS
/// NAL unit (without start codes). `frame_rate` is `None`: the SPS VUI
/// lies behind syntax this parser does not walk.
///
/// # Errors
/// As [`Sps::parse`] and [`hevc_decoder_config`].
pub fn video_params(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<VideoParams, H265Error> {
    let parsed = Sps::parse(sps)?;
    let config = hevc_decoder_config(&[vps], &[sps], &[pps])?;
    Ok(VideoParams {
        codec: VideoCodec::H265,
        width: parsed.width,
        height: parsed.height,
        frame_rate: None,
        codec_string: parsed.ptl.codec_string(),
        decoder_config: Bytes::from(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x265 (ffmpeg 7, `-c:v libx265 -pix_fmt yuv420p`), 320x240: Main
    /// profile, level 2 (`general_level_idc` 60).
    const X265_VPS_320X240: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
    ];
    const X265_SPS_320X240: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10,
    ];
    const X265_PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    /// x265 1366x768: coded 1368 wide, conformance window crops 2 columns.
    const X265_SPS_1366X768: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x78, 0xa0, 0x02, 0xac, 0x80, 0x30, 0x1d, 0x79, 0x65, 0x66, 0x92, 0x4c, 0xaf,
        0x01, 0x68, 0x08, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x40,
    ];

    /// x265 `-pix_fmt yuv420p10le`, 640x360: Main 10, level 2.1 (63).
    const X265_SPS_MAIN10_640X360: &[u8] = &[
        0x42, 0x01, 0x01, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3f, 0xa0, 0x05, 0x02, 0x01, 0x69, 0x36, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0,
        0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x10,
    ];

    /// x265 `temporal-layers=1`: `sps_max_sub_layers_minus1 = 1`, so the
    /// sub-layer part of profile_tier_level must be skipped.
    const X265_SPS_TWO_SUBLAYERS: &[u8] = &[
        0x42, 0x01, 0x02, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0x00, 0x00, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0x8a, 0xcd, 0x24,
        0x99, 0x5e, 0x02, 0xd0, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x01, 0x90,
        0x80,
    ];

    /// x265 without `-pix_fmt` on RGB input: Main 4:4:4 (format range
    /// extensions, profile 4), chroma_format_idc 3.
    const X265_SPS_REXT_444: &[u8] = &[
        0x42, 0x01, 0x01, 0x04, 0x08, 0x00, 0x00, 0x03, 0x00, 0x9e, 0x08, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x3c, 0x90, 0x01, 0x41, 0x01, 0xe2, 0xcb, 0x2b, 0x34, 0x92, 0x65, 0x78, 0x0b, 0x70,
        0x20, 0x20, 0x00, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x06, 0x42,
    ];

    #[test]
    fn nal_header() {
        let h = NalHeader::parse(&[0x26, 0x01]).expect("IDR_W_RADL header");
        assert_eq!(h.nal_unit_type, NAL_IDR_W_RADL);
        assert!(h.is_irap());
        assert_eq!(h.temporal_id_plus1, 1);
        assert!(!NalHeader::parse(&[0x02, 0x01]).expect("TRAIL_R").is_irap());
        assert!(NalHeader::parse(&[0x2A, 0x01]).expect("CRA").is_irap());
        assert_eq!(NalHeader::parse(&[0x26]), Err(H265Error::ShortNal));
        assert_eq!(
            NalHeader::parse(&[0xA6, 0x01]),
            Err(H265Error::ForbiddenBit)
        );
        assert_eq!(nal_type(X265_VPS_320X240), Some(NAL_VPS));
        assert_eq!(nal_type(X265_PPS), Some(NAL_PPS));
    }

    #[test]
    fn sps_main_320x240() {
        let sps = Sps::parse(X265_SPS_320X240).expect("valid SPS");
        assert_eq!(sps.ptl.profile_idc, 1);
        assert_eq!(sps.ptl.compatibility_flags, 0x6000_0000);
        assert_eq!(sps.ptl.level_idc, 60);
        assert_eq!(sps.chroma_format_idc, 1);
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!((sps.bit_depth_luma, sps.bit_depth_chroma), (8, 8));
        assert_eq!(sps.ptl.codec_string(), "hvc1.1.6.L60.90");
    }

    #[test]
    fn sps_conformance_window() {
        let sps = Sps::parse(X265_SPS_1366X768).expect("valid SPS");
        assert_eq!((sps.width, sps.height), (1366, 768));
        assert_eq!(sps.ptl.codec_string(), "hvc1.1.6.L120.90");
    }

    #[test]
    fn sps_main10() {
        let sps = Sps::parse(X265_SPS_MAIN10_640X360).expect("valid SPS");
        assert_eq!((sps.width, sps.height), (640, 360));
        assert_eq!((sps.bit_depth_luma, sps.bit_depth_chroma), (10, 10));
        assert_eq!(sps.ptl.codec_string(), "hvc1.2.4.L63.90");
    }

    #[test]
    fn sps_sub_layers_skipped() {
        let sps = Sps::parse(X265_SPS_TWO_SUBLAYERS).expect("valid SPS");
        assert_eq!(sps.max_sub_layers_minus1, 1);
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.ptl.level_idc, 60);
    }

    #[test]
    fn sps_rext_444() {
        let sps = Sps::parse(X265_SPS_REXT_444).expect("valid SPS");
        assert_eq!(sps.chroma_format_idc, 3);
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.ptl.codec_string(), "hvc1.4.10.L60.9E.8");
    }

    /// `hvc1.1.6.L93.B0` is the example of ISO/IEC 14496-15 Annex E.3; the
    /// second covers profile space, High tier and an inner zero byte.
    #[test]
    fn codec_string_spec_examples() {
        let ptl = ProfileTierLevel {
            profile_space: 0,
            tier_flag: false,
            profile_idc: 1,
            compatibility_flags: 0x6000_0000,
            constraint_flags: [0xB0, 0, 0, 0, 0, 0],
            level_idc: 93,
        };
        assert_eq!(ptl.codec_string(), "hvc1.1.6.L93.B0");
        let ptl = ProfileTierLevel {
            profile_space: 1,
            tier_flag: true,
            profile_idc: 4,
            compatibility_flags: 0x0A00_0000,
            constraint_flags: [0x90, 0x00, 0x23, 0, 0, 0],
            level_idc: 120,
        };
        assert_eq!(ptl.codec_string(), "hvc1.A4.50.H120.90.0.23");
    }

    #[test]
    fn hvcc_record() {
        let rec = hevc_decoder_config(&[X265_VPS_320X240], &[X265_SPS_320X240], &[X265_PPS])
            .expect("record");
        let head: [u8; 23] = [
            1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 60, 0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0,
            0, 0x0F, 3,
        ];
        assert_eq!(rec[..23], head);
        assert_eq!(rec[23..26], [0xA0, 0, 1]);
        assert_eq!(rec[26..28], (X265_VPS_320X240.len() as u16).to_be_bytes());
        let total = 23 + 3 * 5 + X265_VPS_320X240.len() + X265_SPS_320X240.len() + X265_PPS.len();
        assert_eq!(rec.len(), total);
        assert_eq!(
            hevc_decoder_config(&[], &[X265_SPS_320X240], &[X265_PPS]),
            Err(H265Error::ConfigRecord)
        );
    }

    #[test]
    fn sps_truncations_never_panic() {
        for len in 0..X265_SPS_320X240.len() {
            let r = Sps::parse(&X265_SPS_320X240[..len]);
            if len < 20 {
                assert!(r.is_err(), "len {len}");
            }
        }
    }
}
