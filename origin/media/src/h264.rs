//! H.264 / AVC elementary stream parsing (ITU-T H.264).
//!
//! NAL unit headers (§7.3.1), sequence parameter sets (§7.3.2.1.1, with the
//! VUI timing info of Annex E.1.1), the AVCDecoderConfigurationRecord of
//! ISO/IEC 14496-15 §5.3.3.1 and the RFC 6381 `avc1.PPCCLL` codec string.

use bytes::Bytes;

use crate::bits::{BitReader, BitsError, rbsp_from_nal};
use crate::model::{VideoCodec, VideoParams};

/// `nal_unit_type` of a non-IDR coded slice (Table 7-1).
pub const NAL_SLICE: u8 = 1;
/// `nal_unit_type` of a coded slice of an IDR picture (Table 7-1).
pub const NAL_IDR: u8 = 5;
/// `nal_unit_type` of supplemental enhancement information (Table 7-1).
pub const NAL_SEI: u8 = 6;
/// `nal_unit_type` of a sequence parameter set (Table 7-1).
pub const NAL_SPS: u8 = 7;
/// `nal_unit_type` of a picture parameter set (Table 7-1).
pub const NAL_PPS: u8 = 8;
/// `nal_unit_type` of an access unit delimiter (Table 7-1).
pub const NAL_AUD: u8 = 9;
/// `nal_unit_type` of filler data (Table 7-1).
pub const NAL_FILLER: u8 = 12;

/// Errors parsing H.264 syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum H264Error {
    /// The NAL unit is empty.
    #[error("empty NAL unit")]
    EmptyNal,
    /// `forbidden_zero_bit` was 1 (§7.4.1).
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
    /// none given, too many (31 SPS / 255 PPS) or longer than 65535 bytes.
    #[error("parameter sets do not fit an AVCDecoderConfigurationRecord")]
    ConfigRecord,
}

/// A NAL unit header (H.264 §7.3.1), one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalHeader {
    /// `nal_ref_idc`, 0..=3: nonzero if the NAL is used for reference.
    pub nal_ref_idc: u8,
    /// `nal_unit_type`, 0..=31 (Table 7-1).
    pub nal_unit_type: u8,
}

impl NalHeader {
    /// Parses the header from the first byte of a NAL unit.
    ///
    /// # Errors
    /// [`H264Error::EmptyNal`], [`H264Error::ForbiddenBit`].
    pub fn parse(nal: &[u8]) -> Result<NalHeader, H264Error> {
        let b = *nal.first().ok_or(H264Error::EmptyNal)?;
        if b & 0x80 != 0 {
            return Err(H264Error::ForbiddenBit);
        }
        Ok(NalHeader {
            nal_ref_idc: (b >> 5) & 0x03,
            nal_unit_type: b & 0x1F,
        })
    }

    /// True for a coded slice of an IDR picture (type 5), where decoding can
    /// start.
    pub fn is_idr(self) -> bool {
        self.nal_unit_type == NAL_IDR
    }
}

/// The `nal_unit_type` of a NAL unit, or `None` when empty.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1F)
}

/// The fields of a sequence parameter set (H.264 §7.3.2.1.1) that
/// packaging needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc` (Annex A): 66 Baseline, 77 Main, 100 High, ...
    pub profile_idc: u8,
    /// The byte holding `constraint_set0_flag` (MSB) .. `constraint_set5_flag`
    /// and the two reserved zero bits.
    pub constraint_flags: u8,
    /// `level_idc`: level × 10 (e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id`, 0..=31.
    pub seq_parameter_set_id: u32,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4
    /// (1 when absent, for non-high profiles).
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag` (4:4:4 only).
    pub separate_colour_plane: bool,
    /// Luma bit depth in bits (8 + `bit_depth_luma_minus8`).
    pub bit_depth_luma: u8,
    /// Chroma bit depth in bits (8 + `bit_depth_chroma_minus8`).
    pub bit_depth_chroma: u8,
    /// `pic_order_cnt_type`, 0..=2.
    pub pic_order_cnt_type: u8,
    /// `frame_mbs_only_flag`: false when the stream may contain fields.
    pub frame_mbs_only: bool,
    /// Picture width in luma samples after the cropping window.
    pub width: u32,
    /// Frame height in luma samples after the cropping window.
    pub height: u32,
    /// Frame rate `(time_scale, 2 × num_units_in_tick)` reduced, in frames
    /// per second, from the VUI timing info (Annex E.2.1) when present.
    pub frame_rate: Option<(u32, u32)>,
}

/// Profiles whose SPS carries `chroma_format_idc` and the bit depths
/// (§7.3.2.1.1).
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Skips one `scaling_list()` (§7.3.2.1.1.1) of `size` coefficients.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), H264Error> {
    let mut last_scale: i32 = 8;
    let mut next_scale: i32 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.read_se()?;
            if !(-128..=127).contains(&delta) {
                return Err(H264Error::OutOfRange("delta_scale"));
            }
            next_scale = (last_scale + delta + 256).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Reduces `num/den` and returns it when both fit `u32` and are nonzero.
pub(crate) fn reduced_rate(num: u64, den: u64) -> Option<(u32, u32)> {
    if num == 0 || den == 0 {
        return None;
    }
    let g = gcd(num, den);
    Some((u32::try_from(num / g).ok()?, u32::try_from(den / g).ok()?))
}

impl Sps {
    /// Parses an SPS NAL unit (header byte included, emulation prevention
    /// bytes still present).
    ///
    /// # Errors
    /// [`H264Error::WrongNalType`] if it is not an SPS, [`H264Error::Bits`]
    /// on truncation, [`H264Error::OutOfRange`] for values outside the
    /// spec's ranges or a picture size that does not fit `u32`.
    pub fn parse(nal: &[u8]) -> Result<Sps, H264Error> {
        let header = NalHeader::parse(nal)?;
        if header.nal_unit_type != NAL_SPS {
            return Err(H264Error::WrongNalType {
                expected: NAL_SPS,
                actual: header.nal_unit_type,
            });
        }
        // Bounded slicing: a NAL shorter than its header gives an empty RBSP, refused by the SPS parser.
        let rbsp = rbsp_from_nal(nal.get(1..).unwrap_or_default());
        let mut r = BitReader::new(&rbsp);
        let profile_idc = r.read_u8(8)?;
        let constraint_flags = r.read_u8(8)?;
        let level_idc = r.read_u8(8)?;
        let seq_parameter_set_id = r.read_ue()?;
        if seq_parameter_set_id > 31 {
            return Err(H264Error::OutOfRange("seq_parameter_set_id"));
        }
        let mut chroma_format_idc = 1u32;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma_minus8 = 0u32;
        let mut bit_depth_chroma_minus8 = 0u32;
        if has_chroma_info(profile_idc) {
            chroma_format_idc = r.read_ue()?;
            if chroma_format_idc > 3 {
                return Err(H264Error::OutOfRange("chroma_format_idc"));
            }
            if chroma_format_idc == 3 {
                separate_colour_plane = r.read_flag()?;
            }
            bit_depth_luma_minus8 = r.read_ue()?;
            bit_depth_chroma_minus8 = r.read_ue()?;
            if bit_depth_luma_minus8 > 6 || bit_depth_chroma_minus8 > 6 {
                return Err(H264Error::OutOfRange("bit_depth_minus8"));
            }
            let _qpprime_y_zero_transform_bypass = r.read_flag()?;
            if r.read_flag()? {
                // seq_scaling_matrix_present_flag
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.read_flag()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        let log2_max_frame_num_minus4 = r.read_ue()?;
        if log2_max_frame_num_minus4 > 12 {
            return Err(H264Error::OutOfRange("log2_max_frame_num_minus4"));
        }
        let pic_order_cnt_type = r.read_ue()?;
        match pic_order_cnt_type {
            0 => {
                let log2_max_poc_lsb_minus4 = r.read_ue()?;
                if log2_max_poc_lsb_minus4 > 12 {
                    return Err(H264Error::OutOfRange("log2_max_pic_order_cnt_lsb_minus4"));
                }
            }
            1 => {
                let _delta_pic_order_always_zero = r.read_flag()?;
                let _offset_for_non_ref_pic = r.read_se()?;
                let _offset_for_top_to_bottom_field = r.read_se()?;
                let cycle = r.read_ue()?;
                if cycle > 255 {
                    return Err(H264Error::OutOfRange(
                        "num_ref_frames_in_pic_order_cnt_cycle",
                    ));
                }
                for _ in 0..cycle {
                    let _offset_for_ref_frame = r.read_se()?;
                }
            }
            2 => {}
            _ => return Err(H264Error::OutOfRange("pic_order_cnt_type")),
        }
        let _max_num_ref_frames = r.read_ue()?;
        let _gaps_in_frame_num_allowed = r.read_flag()?;
        let pic_width_in_mbs = u64::from(r.read_ue()?) + 1;
        let pic_height_in_map_units = u64::from(r.read_ue()?) + 1;
        let frame_mbs_only = r.read_flag()?;
        if !frame_mbs_only {
            let _mb_adaptive_frame_field = r.read_flag()?;
        }
        let _direct_8x8_inference = r.read_flag()?;
        let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
        if r.read_flag()? {
            crop_l = r.read_ue()?.into();
            crop_r = r.read_ue()?.into();
            crop_t = r.read_ue()?.into();
            crop_b = r.read_ue()?.into();
        }
        // §7.4.2.1.1: ChromaArrayType, SubWidthC / SubHeightC (Table 6-1).
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
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let crop_unit_x = sub_w;
        let crop_unit_y = sub_h * field_factor;
        let full_w = pic_width_in_mbs * 16;
        let full_h = field_factor * pic_height_in_map_units * 16;
        let width = full_w
            .checked_sub(crop_unit_x * (crop_l + crop_r))
            .filter(|w| *w > 0)
            .and_then(|w| u32::try_from(w).ok())
            .ok_or(H264Error::OutOfRange("picture width"))?;
        let height = full_h
            .checked_sub(crop_unit_y * (crop_t + crop_b))
            .filter(|h| *h > 0)
            .and_then(|h| u32::try_from(h).ok())
            .ok_or(H264Error::OutOfRange("picture height"))?;

        // VUI (Annex E.1.1): only as far as timing_info. A truncated VUI
        // just means "no frame rate".
        let frame_rate = if r.read_flag().unwrap_or(false) {
            parse_vui_frame_rate(&mut r).ok().flatten()
        } else {
            None
        };

        Ok(Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            seq_parameter_set_id,
            chroma_format_idc: chroma_format_idc as u8,
            separate_colour_plane,
            bit_depth_luma: 8 + bit_depth_luma_minus8 as u8,
            bit_depth_chroma: 8 + bit_depth_chroma_minus8 as u8,
            pic_order_cnt_type: pic_order_cnt_type as u8,
            frame_mbs_only,
            width,
            height,
            frame_rate,
        })
    }

    /// The RFC 6381 codec string `avc1.PPCCLL`: hex of `profile_idc`, the
    /// constraint flags byte and `level_idc` (RFC 6381 §3.3, ISO/IEC
    /// 14496-15 Annex E).
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// Reads the VUI up to `timing_info` (H.264 Annex E.1.1) and returns the
/// frame rate `time_scale / (2 × num_units_in_tick)` (E.2.1).
fn parse_vui_frame_rate(r: &mut BitReader<'_>) -> Result<Option<(u32, u32)>, BitsError> {
    if r.read_flag()? {
        // aspect_ratio_info_present_flag
        let aspect_ratio_idc = r.read_u8(8)?;
        if aspect_ratio_idc == 255 {
            r.skip_bits(32)?; // sar_width, sar_height
        }
    }
    if r.read_flag()? {
        r.skip_bits(1)?; // overscan_appropriate_flag
    }
    if r.read_flag()? {
        // video_signal_type_present_flag
        r.skip_bits(4)?; // video_format, video_full_range_flag
        if r.read_flag()? {
            r.skip_bits(24)?; // colour_primaries, transfer, matrix
        }
    }
    if r.read_flag()? {
        r.read_ue()?; // chroma_sample_loc_type_top_field
        r.read_ue()?; // chroma_sample_loc_type_bottom_field
    }
    if r.read_flag()? {
        let num_units_in_tick = r.read_bits(32)?;
        let time_scale = r.read_bits(32)?;
        return Ok(reduced_rate(time_scale, 2 * num_units_in_tick));
    }
    Ok(None)
}

/// Builds an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1),
/// the payload of the `avcC` box, with `lengthSizeMinusOne = 3`.
///
/// Profile, compatibility and level come from the first SPS. For
/// `profile_idc` 100, 110, 122 and 144 the record carries the extension
/// fields (`chroma_format`, bit depths, zero SPS-ext NAL units).
///
/// # Errors
/// [`H264Error::ConfigRecord`] when there is no SPS, more than 31 SPS or
/// 255 PPS, or a parameter set over 65535 bytes; SPS parse errors.
pub fn avc_decoder_config(sps: &[&[u8]], pps: &[&[u8]]) -> Result<Vec<u8>, H264Error> {
    let first = sps.first().ok_or(H264Error::ConfigRecord)?;
    let parsed = Sps::parse(first)?;
    if sps.len() > 31 || pps.len() > 255 {
        return Err(H264Error::ConfigRecord);
    }
    let mut out = vec![
        1, // configurationVersion
        parsed.profile_idc,
        parsed.constraint_flags,
        parsed.level_idc,
        0xFC | 3,               // reserved '111111', lengthSizeMinusOne
        0xE0 | sps.len() as u8, // reserved '111', numOfSequenceParameterSets
    ];
    let put = |out: &mut Vec<u8>, nal: &[u8]| -> Result<(), H264Error> {
        let len = u16::try_from(nal.len()).map_err(|_| H264Error::ConfigRecord)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
        Ok(())
    };
    for s in sps {
        put(&mut out, s)?;
    }
    out.push(pps.len() as u8);
    for p in pps {
        put(&mut out, p)?;
    }
    if matches!(parsed.profile_idc, 100 | 110 | 122 | 144) {
        out.push(0xFC | (parsed.chroma_format_idc & 3));
        out.push(0xF8 | ((parsed.bit_depth_luma - 8) & 7));
        out.push(0xF8 | ((parsed.bit_depth_chroma - 8) & 7));
        out.push(0); // numOfSequenceParameterSetExt
    }
    Ok(out)
}

/// The parameter sets of an `AVCDecoderConfigurationRecord` (ISO/IEC
/// 14496-15 §5.3.3.1) and the byte size of the NAL unit length prefixes it
/// declares (1, 2 or 4): `(length_size, sps, pps)`, slices of `record`.
///
/// # Errors
/// [`H264Error::ConfigRecord`] for a version other than 1, a length size
/// of 3, no SPS, or a record that ends inside a parameter set.
pub fn avcc_parameter_sets(record: &[u8]) -> Result<AvccParameterSets<'_>, H264Error> {
    let bad = || H264Error::ConfigRecord;
    let head = record.get(..6).ok_or_else(bad)?;
    if head[0] != 1 {
        return Err(bad());
    }
    let length_size = usize::from(head[4] & 3) + 1;
    if length_size == 3 {
        return Err(bad());
    }
    /// `count` length-prefixed parameter sets from the front of `rest`.
    fn take<'r>(rest: &mut &'r [u8], count: usize) -> Result<Vec<&'r [u8]>, H264Error> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let len = rest.get(..2).ok_or(H264Error::ConfigRecord)?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let nal = rest.get(2..2 + len).ok_or(H264Error::ConfigRecord)?;
            out.push(nal);
            *rest = &rest[2 + len..];
        }
        Ok(out)
    }
    let mut rest = &record[6..];
    let sps = take(&mut rest, usize::from(head[5] & 0x1F))?;
    if sps.is_empty() {
        return Err(bad());
    }
    let count = usize::from(*rest.first().ok_or_else(bad)?);
    rest = &rest[1..];
    let pps = take(&mut rest, count)?;
    Ok((length_size, sps, pps))
}

/// What [`avcc_parameter_sets`] returns: the NAL length size, the SPS and
/// the PPS NAL units.
pub type AvccParameterSets<'a> = (usize, Vec<&'a [u8]>, Vec<&'a [u8]>);

/// Builds the [`VideoParams`] of an H.264 track from one SPS and one PPS
/// NAL unit (without start codes).
///
/// # Errors
/// As [`Sps::parse`] and [`avc_decoder_config`].
pub fn video_params(sps: &[u8], pps: &[u8]) -> Result<VideoParams, H264Error> {
    let parsed = Sps::parse(sps)?;
    let config = avc_decoder_config(&[sps], &[pps])?;
    Ok(VideoParams {
        codec: VideoCodec::H264,
        width: parsed.width,
        height: parsed.height,
        frame_rate: parsed.frame_rate,
        codec_string: parsed.codec_string(),
        decoder_config: Bytes::from(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPS emitted by x264 (ffmpeg 7, `-c:v libx264 -profile:v high`,
    /// 320x240, 25 fps): High profile, level 1.3, VUI timing 25 fps.
    pub(crate) const X264_SPS_320X240: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
    ];

    /// SPS emitted by x264 for 1280x720 High profile, 30 fps (level 3.1).
    const X264_SPS_1280X720: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
    ];

    /// SPS emitted by x264 for 1920x1080 (coded 1088, cropped by 8 rows).
    const X264_SPS_1920X1080: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00,
        0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58,
    ];

    /// Baseline SPS (x264 `-profile:v baseline`, 640x360, 30 fps): no
    /// chroma info, crops 368 → 360.
    const X264_SPS_BASELINE_640X360: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
        0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
    ];

    /// x264 `-pix_fmt yuv422p`: High 4:2:2 profile (122), chroma_format_idc 2.
    const X264_SPS_HIGH422_320X240: &[u8] = &[
        0x67, 0x7a, 0x00, 0x0d, 0xbc, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
    ];

    /// x264 `-flags +ildct`, 720x576: frame_mbs_only_flag = 0 (field
    /// coding), so heights count in pairs of macroblock rows.
    const X264_SPS_INTERLACED_720X576: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xb4, 0x24, 0xd8, 0x08, 0x80, 0x00, 0x00, 0x03,
        0x00, 0x80, 0x00, 0x00, 0x19, 0x0f, 0x8a, 0x14, 0xcb,
    ];

    #[test]
    fn nal_header() {
        assert_eq!(
            NalHeader::parse(&[0x65]),
            Ok(NalHeader {
                nal_ref_idc: 3,
                nal_unit_type: 5
            })
        );
        assert!(NalHeader::parse(&[0x65]).is_ok_and(NalHeader::is_idr));
        assert_eq!(NalHeader::parse(&[0xE5]), Err(H264Error::ForbiddenBit));
        assert_eq!(NalHeader::parse(&[]), Err(H264Error::EmptyNal));
    }

    #[test]
    fn sps_320x240_high() {
        let sps = Sps::parse(X264_SPS_320X240).expect("valid SPS");
        assert_eq!(sps.profile_idc, 100);
        assert_eq!(sps.level_idc, 13);
        assert_eq!(sps.chroma_format_idc, 1);
        assert_eq!(sps.bit_depth_luma, 8);
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.frame_rate, Some((25, 1)));
        assert!(sps.frame_mbs_only);
        assert_eq!(sps.codec_string(), "avc1.64000d");
    }

    #[test]
    fn sps_1280x720_high() {
        let sps = Sps::parse(X264_SPS_1280X720).expect("valid SPS");
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.codec_string(), "avc1.64001f");
        assert_eq!(sps.frame_rate, Some((30, 1)));
    }

    #[test]
    fn sps_1920x1080_cropped() {
        let sps = Sps::parse(X264_SPS_1920X1080).expect("valid SPS");
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.codec_string(), "avc1.640028");
    }

    #[test]
    fn sps_baseline() {
        let sps = Sps::parse(X264_SPS_BASELINE_640X360).expect("valid SPS");
        assert_eq!(sps.profile_idc, 66);
        assert_eq!((sps.width, sps.height), (640, 360));
        assert_eq!(sps.codec_string(), "avc1.42c01e");
        assert_eq!(sps.frame_rate, Some((30, 1)));
    }

    #[test]
    fn sps_high422_and_interlaced() {
        let sps = Sps::parse(X264_SPS_HIGH422_320X240).expect("valid SPS");
        assert_eq!((sps.profile_idc, sps.chroma_format_idc), (122, 2));
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.codec_string(), "avc1.7a000d");
        let rec =
            avc_decoder_config(&[X264_SPS_HIGH422_320X240], &[&[0x68, 0xeb]]).expect("record");
        assert_eq!(rec[rec.len() - 4..], [0xFE, 0xF8, 0xF8, 0x00]);

        let sps = Sps::parse(X264_SPS_INTERLACED_720X576).expect("valid SPS");
        assert!(!sps.frame_mbs_only);
        assert_eq!((sps.width, sps.height), (720, 576));
        assert_eq!(sps.frame_rate, Some((25, 1)));
    }

    #[test]
    fn sps_truncations_are_errors() {
        for len in 0..X264_SPS_320X240.len() {
            // Never panics; without the mandatory fields it is an error, a
            // cut inside the VUI only loses the frame rate.
            let r = Sps::parse(&X264_SPS_320X240[..len]);
            if len <= 6 {
                assert!(r.is_err(), "len {len} parsed: {r:?}");
            }
        }
        assert!(matches!(
            Sps::parse(&[0x68, 0xEB]),
            Err(H264Error::WrongNalType { .. })
        ));
    }

    #[test]
    fn avcc_high_has_extension() {
        let pps = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
        let rec = avc_decoder_config(&[X264_SPS_320X240], &[&pps]).expect("record");
        let mut expected = vec![1, 0x64, 0x00, 0x0d, 0xFF, 0xE1, 0x00, 25];
        expected.extend_from_slice(X264_SPS_320X240);
        expected.extend_from_slice(&[1, 0x00, 6]);
        expected.extend_from_slice(&pps);
        expected.extend_from_slice(&[0xFD, 0xF8, 0xF8, 0x00]);
        assert_eq!(rec, expected);

        let rec = avc_decoder_config(&[X264_SPS_BASELINE_640X360], &[&pps]).expect("record");
        assert_eq!(
            rec.len(),
            6 + 2 + X264_SPS_BASELINE_640X360.len() + 1 + 2 + pps.len()
        );
        assert_eq!(
            avc_decoder_config(&[], &[&pps]),
            Err(H264Error::ConfigRecord)
        );
    }
}
