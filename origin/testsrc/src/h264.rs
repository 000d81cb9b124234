//! A tiny lossless H.264 Constrained Baseline encoder (ITU-T H.264 (08/2021)).
//!
//! It never transforms or entropy-codes a residual. Every macroblock is one
//! of three kinds:
//!
//! * **I_16x16_2_0_0** (I slice `mb_type` 3, §7.4.5 Table 7-11): Intra 16x16
//!   DC prediction, no coded residual. Used for background macroblocks of IDR
//!   pictures whose left and top neighbours show background on the shared
//!   edge, so DC prediction (§8.3.3.3, §8.3.4.1-3) yields exactly 128.
//! * **I_PCM** (`mb_type` 25 in I slices, 5 + 25 = 30 in P slices): raw
//!   samples, exact. Used for everything else in IDR pictures and for every
//!   changed macroblock of P pictures.
//! * **P_Skip**: unchanged macroblocks of P pictures (`mb_skip_run`). Their
//!   motion vector is always zero, so they copy the co-located samples of the
//!   previous picture; see [`encode_slice`] for the §8.4.1.1 argument.
//!
//! Deblocking is disabled per slice (`disable_deblocking_filter_idc` = 1), so
//! decoded pictures equal the encoder's [`Picture`] bit for bit.

use crate::bits::BitWriter;
use crate::picture::Picture;

/// `profile_idc` 66, Baseline (Annex A.2.1).
pub(crate) const PROFILE_IDC: u8 = 66;
/// `constraint_set0_flag` and `constraint_set1_flag` set: Constrained
/// Baseline (A.2.1.1), the byte after the profile in `avc1.42C0xx`.
pub(crate) const CONSTRAINT_FLAGS: u8 = 0xC0;

/// `nal_unit_type` values (Table 7-1).
const NAL_SLICE_NON_IDR: u8 = 1;
const NAL_SLICE_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

/// Level limits of Table A-1 used to pick `level_idc`: (level_idc,
/// MaxMBPS, MaxFS). Level 1b is skipped (it needs constraint_set3_flag).
const LEVELS: [(u8, u64, u64); 18] = [
    (10, 1_485, 99),
    (11, 3_000, 396),
    (12, 6_000, 396),
    (13, 11_880, 396),
    (20, 11_880, 396),
    (21, 19_800, 792),
    (22, 20_250, 1_620),
    (30, 40_500, 1_620),
    (31, 108_000, 3_600),
    (32, 216_000, 5_120),
    (40, 245_760, 8_192),
    (41, 245_760, 8_192),
    (42, 522_240, 8_704),
    (50, 589_824, 22_080),
    (51, 983_040, 36_864),
    (52, 2_073_600, 36_864),
    (60, 4_177_920, 139_264),
    (61, 8_355_840, 139_264),
];

/// The smallest level whose MaxFS, MaxMBPS and the per-dimension limit
/// `sqrt(8 * MaxFS)` (A.3.1 item f) admit `mb_w` × `mb_h` macroblocks at
/// `fps_num / fps_den` frames per second; `None` if no level does.
pub(crate) fn choose_level(mb_w: u64, mb_h: u64, fps_num: u64, fps_den: u64) -> Option<u8> {
    let frame_mbs = mb_w * mb_h;
    LEVELS.iter().find_map(|&(idc, max_mbps, max_fs)| {
        let fits_fs = frame_mbs <= max_fs && mb_w * mb_w <= 8 * max_fs && mb_h * mb_h <= 8 * max_fs;
        // frame_mbs * fps <= MaxMBPS, in integers.
        let fits_rate = u128::from(frame_mbs) * u128::from(fps_num)
            <= u128::from(max_mbps) * u128::from(fps_den);
        (fits_fs && fits_rate).then_some(idc)
    })
}

/// Static stream parameters shared by the SPS, PPS and slices.
#[derive(Debug, Clone)]
pub(crate) struct StreamConfig {
    /// Display width (even).
    pub(crate) width: u32,
    /// Display height (even).
    pub(crate) height: u32,
    /// Frame rate numerator.
    pub(crate) fps_num: u32,
    /// Frame rate denominator.
    pub(crate) fps_den: u32,
    /// `level_idc`.
    pub(crate) level_idc: u8,
    /// log2(MaxFrameNum), 4..=16.
    pub(crate) log2_max_frame_num: u32,
}

impl StreamConfig {
    fn mb_width(&self) -> u32 {
        self.width.div_ceil(16)
    }

    fn mb_height(&self) -> u32 {
        self.height.div_ceil(16)
    }
}

/// Wraps an RBSP into a NAL unit (§7.3.1): the header byte, then the
/// payload with emulation prevention: a 0x03 byte is inserted after every
/// two zero bytes that are followed by a byte ≤ 0x03 (§7.4.1.1).
pub(crate) fn nal_unit(nal_ref_idc: u8, nal_unit_type: u8, rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 2);
    out.push((nal_ref_idc & 3) << 5 | (nal_unit_type & 0x1F));
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// The sequence parameter set NAL unit (§7.3.2.1.1, VUI per Annex E.1.1).
pub(crate) fn sps(c: &StreamConfig) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.u(8, PROFILE_IDC.into());
    w.u(8, CONSTRAINT_FLAGS.into()); // constraint_set0..5 flags + reserved_zero_2bits
    w.u(8, c.level_idc.into());
    w.ue(0); // seq_parameter_set_id
    w.ue(c.log2_max_frame_num - 4); // log2_max_frame_num_minus4
    w.ue(2); // pic_order_cnt_type 2: output order = decoding order
    w.ue(1); // max_num_ref_frames
    w.bit(false); // gaps_in_frame_num_value_allowed_flag
    w.ue(c.mb_width() - 1); // pic_width_in_mbs_minus1
    w.ue(c.mb_height() - 1); // pic_height_in_map_units_minus1
    w.bit(true); // frame_mbs_only_flag
    w.bit(true); // direct_8x8_inference_flag
    // Frame cropping in units of CropUnitX = SubWidthC = 2 and
    // CropUnitY = SubHeightC * (2 - frame_mbs_only_flag) = 2 (§7.4.2.1.1).
    let crop_right = (c.mb_width() * 16 - c.width) / 2;
    let crop_bottom = (c.mb_height() * 16 - c.height) / 2;
    let cropping = crop_right != 0 || crop_bottom != 0;
    w.bit(cropping); // frame_cropping_flag
    if cropping {
        w.ue(0); // frame_crop_left_offset
        w.ue(crop_right);
        w.ue(0); // frame_crop_top_offset
        w.ue(crop_bottom);
    }
    w.bit(true); // vui_parameters_present_flag
    // vui_parameters() (E.1.1)
    w.bit(true); // aspect_ratio_info_present_flag
    w.u(8, 1); // aspect_ratio_idc 1: square samples
    w.bit(false); // overscan_info_present_flag
    w.bit(true); // video_signal_type_present_flag
    w.u(3, 5); // video_format: unspecified
    w.bit(false); // video_full_range_flag: nominal 16..235
    w.bit(true); // colour_description_present_flag
    w.u(8, 1); // colour_primaries: BT.709
    w.u(8, 1); // transfer_characteristics: BT.709
    w.u(8, 1); // matrix_coefficients: BT.709
    w.bit(false); // chroma_loc_info_present_flag
    w.bit(true); // timing_info_present_flag
    // A frame lasts two ticks (E.2.1): fps = time_scale / (2 * num_units_in_tick).
    w.u(32, c.fps_den.into()); // num_units_in_tick
    w.u(32, 2 * u64::from(c.fps_num)); // time_scale
    w.bit(true); // fixed_frame_rate_flag
    w.bit(false); // nal_hrd_parameters_present_flag
    w.bit(false); // vcl_hrd_parameters_present_flag
    w.bit(false); // pic_struct_present_flag
    w.bit(true); // bitstream_restriction_flag
    w.bit(true); // motion_vectors_over_pic_boundaries_flag
    w.ue(0); // max_bytes_per_pic_denom: no limit (I_PCM pictures are large)
    w.ue(0); // max_bits_per_mb_denom: no limit
    w.ue(15); // log2_max_mv_length_horizontal
    w.ue(15); // log2_max_mv_length_vertical
    w.ue(0); // max_num_reorder_frames: output immediately
    w.ue(1); // max_dec_frame_buffering
    w.rbsp_trailing_bits();
    nal_unit(3, NAL_SPS, &w.finish())
}

/// The picture parameter set NAL unit (§7.3.2.2).
pub(crate) fn pps() -> Vec<u8> {
    let mut w = BitWriter::new();
    w.ue(0); // pic_parameter_set_id
    w.ue(0); // seq_parameter_set_id
    w.bit(false); // entropy_coding_mode_flag: CAVLC
    w.bit(false); // bottom_field_pic_order_in_frame_present_flag
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.bit(false); // weighted_pred_flag
    w.u(2, 0); // weighted_bipred_idc
    w.se(0); // pic_init_qp_minus26
    w.se(0); // pic_init_qs_minus26
    w.se(0); // chroma_qp_index_offset
    w.bit(true); // deblocking_filter_control_present_flag
    w.bit(false); // constrained_intra_pred_flag
    w.bit(false); // redundant_pic_cnt_present_flag
    w.rbsp_trailing_bits();
    nal_unit(3, NAL_PPS, &w.finish())
}

/// The AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1) for one
/// SPS and one PPS with 4-byte NAL unit lengths.
pub(crate) fn avc_decoder_configuration_record(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(11 + sps.len() + pps.len());
    out.push(1); // configurationVersion
    out.extend_from_slice(&sps[1..4]); // AVCProfileIndication, profile_compatibility, AVCLevelIndication
    out.push(0xFC | 3); // reserved '111111' + lengthSizeMinusOne = 3
    out.push(0xE0 | 1); // reserved '111' + numOfSequenceParameterSets = 1
    out.extend_from_slice(
        &u16::try_from(sps.len())
            .expect("SPS fits u16")
            .to_be_bytes(),
    );
    out.extend_from_slice(sps);
    out.push(1); // numOfPictureParameterSets
    out.extend_from_slice(
        &u16::try_from(pps.len())
            .expect("PPS fits u16")
            .to_be_bytes(),
    );
    out.extend_from_slice(pps);
    out
}

/// Per-picture slice header values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SliceParams {
    /// An IDR picture (I slice) rather than a P picture.
    pub(crate) idr: bool,
    /// `frame_num` (already reduced modulo MaxFrameNum).
    pub(crate) frame_num: u32,
    /// `idr_pic_id` (IDR only; consecutive IDRs differ).
    pub(crate) idr_pic_id: u32,
}

/// How one macroblock is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MbKind {
    /// I_16x16_2_0_0: DC prediction, no residual.
    Intra16x16Dc,
    /// I_PCM.
    Pcm,
    /// P_Skip.
    Skip,
}

/// `coeff_token` for TotalCoeff = 0, TrailingOnes = 0 (Table 9-5), by nC.
fn write_coeff_token_zero(w: &mut BitWriter, nc: u32) {
    match nc {
        0..=1 => w.u(1, 0b1),
        2..=3 => w.u(2, 0b11),
        4..=7 => w.u(4, 0b1111),
        // 8 <= nC: the 6-bit fixed-length code 0000 11.
        _ => w.u(6, 0b00_0011),
    }
}

/// nC for the Intra16x16DCLevel block of macroblock (`mx`, `my`) (§9.2.1
/// with luma4x4BlkIdx = 0: blkA is block 5 of the left macroblock, blkB
/// block 10 of the one above). For an I_PCM neighbour nN = 16; for an
/// I_16x16 neighbour with CodedBlockPatternLuma 0 (all AC levels zero) nN =
/// 0; unavailable neighbours (outside the picture; one slice per picture)
/// do not count.
fn intra16x16_dc_nc(kinds: &[MbKind], mb_w: usize, mx: usize, my: usize) -> u32 {
    let n = |k: MbKind| if k == MbKind::Pcm { 16 } else { 0 };
    let a = (mx > 0).then(|| n(kinds[my * mb_w + mx - 1]));
    let b = (my > 0).then(|| n(kinds[(my - 1) * mb_w + mx]));
    match (a, b) {
        (Some(na), Some(nb)) => (na + nb + 1) >> 1,
        (Some(na), None) => na,
        (None, Some(nb)) => nb,
        (None, None) => 0,
    }
}

/// Chooses the macroblock kinds of a picture.
///
/// IDR: a background macroblock is I_16x16 DC only when the edge samples its
/// DC predictions read — the right column of the left neighbour and the
/// bottom row of the one above, in all three planes — are background too;
/// otherwise, and for every macroblock with content, I_PCM.
///
/// P: unchanged since `prev` → P_Skip, changed → I_PCM.
fn choose_kinds(pic: &Picture, prev: Option<&Picture>) -> Vec<MbKind> {
    let (mb_w, mb_h) = (pic.mb_width(), pic.mb_height());
    let mut kinds = Vec::with_capacity(mb_w * mb_h);
    for my in 0..mb_h {
        for mx in 0..mb_w {
            let kind = match prev {
                Some(prev) if pic.mb_equal(prev, mx, my) => MbKind::Skip,
                Some(_) => MbKind::Pcm,
                None => {
                    let dc_exact = pic.mb_is_background(mx, my)
                        && (mx == 0 || pic.mb_right_edge_is_background(mx - 1, my))
                        && (my == 0 || pic.mb_bottom_edge_is_background(mx, my - 1));
                    if dc_exact {
                        MbKind::Intra16x16Dc
                    } else {
                        MbKind::Pcm
                    }
                }
            };
            kinds.push(kind);
        }
    }
    kinds
}

/// Encodes `pic` as one slice NAL unit: an IDR I slice when `prev` is
/// `None`, otherwise a P slice predicting from `prev` (the previous decoded
/// picture, identical to the previous encoded [`Picture`]).
///
/// P_Skip motion (§8.4.1.1): mvL0 is 0 when mbAddrA or mbAddrB is
/// unavailable, or when either has refIdxL0 0 with a zero motion vector;
/// otherwise it is the §8.4.1.3 prediction. Every macroblock here is either
/// intra (I_PCM, which §8.4.1.3.2 treats as refIdxL0N = −1 with mvL0N = 0) or
/// P_Skip. By induction in decoding order every earlier P_Skip has mv 0, so:
/// if A or B is a P_Skip the first rule gives 0; if both are intra, then of
/// A, B and C (or D) at most C/D has refIdxL0 0 — if exactly one does its
/// vector (0) is taken, otherwise the median of three zero vectors is 0.
/// Hence every P_Skip copies the co-located macroblock, and unchanged
/// macroblocks decode exactly.
pub(crate) fn encode_slice(
    c: &StreamConfig,
    s: SliceParams,
    pic: &Picture,
    prev: Option<&Picture>,
) -> Vec<u8> {
    assert_eq!(s.idr, prev.is_none(), "an IDR picture has no reference");
    let kinds = choose_kinds(pic, prev);
    let mb_w = pic.mb_width();
    let mut w = BitWriter::new();
    // slice_header() (§7.3.3)
    w.ue(0); // first_mb_in_slice
    w.ue(if s.idr { 7 } else { 5 }); // slice_type: I / P, all slices of the picture
    w.ue(0); // pic_parameter_set_id
    w.u(c.log2_max_frame_num, s.frame_num.into()); // frame_num
    if s.idr {
        w.ue(s.idr_pic_id);
    }
    // pic_order_cnt_type 2: no POC syntax.
    if !s.idr {
        w.bit(false); // num_ref_idx_active_override_flag
        w.bit(false); // ref_pic_list_modification_flag_l0
    }
    // dec_ref_pic_marking() (§7.3.3.3), nal_ref_idc != 0
    if s.idr {
        w.bit(false); // no_output_of_prior_pics_flag
        w.bit(false); // long_term_reference_flag
    } else {
        w.bit(false); // adaptive_ref_pic_marking_mode_flag: sliding window
    }
    w.se(0); // slice_qp_delta
    w.ue(1); // disable_deblocking_filter_idc: off, keeps I_PCM edges exact

    // slice_data() (§7.3.4), CAVLC.
    let mut samples = Vec::with_capacity(384);
    let mut skip_run = 0u32;
    for (addr, &kind) in kinds.iter().enumerate() {
        let (mx, my) = (addr % mb_w, addr / mb_w);
        match kind {
            MbKind::Skip => skip_run += 1,
            MbKind::Intra16x16Dc => {
                // macroblock_layer(): I slices have no mb_skip_run.
                w.ue(3); // mb_type I_16x16_2_0_0
                w.ue(0); // intra_chroma_pred_mode: DC
                w.se(0); // mb_qp_delta
                // residual_luma(): Intra16x16DCLevel with TotalCoeff 0; no
                // AC (CodedBlockPatternLuma 0), no chroma (…Chroma 0).
                write_coeff_token_zero(&mut w, intra16x16_dc_nc(&kinds, mb_w, mx, my));
            }
            MbKind::Pcm => {
                if !s.idr {
                    w.ue(skip_run); // mb_skip_run
                    skip_run = 0;
                }
                w.ue(if s.idr { 25 } else { 5 + 25 }); // mb_type I_PCM
                w.align_zero(); // pcm_alignment_zero_bit
                pic.mb_samples(mx, my, &mut samples);
                w.bytes(&samples); // pcm_sample_luma[256], pcm_sample_chroma[128]
            }
        }
    }
    if skip_run > 0 {
        w.ue(skip_run); // trailing mb_skip_run; more_rbsp_data() is then false
    }
    w.rbsp_trailing_bits(); // rbsp_slice_trailing_bits() without cabac_zero_words
    let nal_type = if s.idr {
        NAL_SLICE_IDR
    } else {
        NAL_SLICE_NON_IDR
    };
    nal_unit(3, nal_type, &w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_prevention() {
        assert_eq!(
            nal_unit(3, 1, &[0, 0, 0, 0, 0, 3, 0, 0, 4, 0, 0]),
            vec![0x61, 0, 0, 3, 0, 0, 3, 0, 3, 0, 0, 4, 0, 0]
        );
    }

    #[test]
    fn levels_table_a_1() {
        // 640x368 at 30 fps: 920 MBs, 27 600 MB/s → level 3.
        assert_eq!(choose_level(40, 23, 30, 1), Some(30));
        // 1280x720 at 30: 3 600 MBs, 108 000 MB/s → 3.1; at 60 → 3.2.
        assert_eq!(choose_level(80, 45, 30, 1), Some(31));
        assert_eq!(choose_level(80, 45, 60, 1), Some(32));
        // 1920x1088 at 30 → 4.
        assert_eq!(choose_level(120, 68, 30, 1), Some(40));
        // 176x144 at 15 → 1 (99 MBs, 1485 MB/s).
        assert_eq!(choose_level(11, 9, 15, 1), Some(10));
        assert_eq!(choose_level(1000, 1000, 30, 1), None);
    }

    #[test]
    fn coeff_token_nc() {
        use MbKind::*;
        let kinds = [Pcm, Intra16x16Dc, Intra16x16Dc, Pcm];
        assert_eq!(intra16x16_dc_nc(&kinds, 2, 0, 0), 0);
        assert_eq!(intra16x16_dc_nc(&kinds, 2, 1, 0), 16); // only A (PCM)
        assert_eq!(intra16x16_dc_nc(&kinds, 2, 0, 1), 16); // only B (PCM)
        let kinds = [Intra16x16Dc, Pcm, Intra16x16Dc, Intra16x16Dc];
        assert_eq!(intra16x16_dc_nc(&kinds, 2, 1, 1), 8); // (0 + 16 + 1) >> 1
        let kinds = [Pcm, Pcm, Pcm, Intra16x16Dc];
        assert_eq!(intra16x16_dc_nc(&kinds, 2, 1, 1), 16);
        let mut w = BitWriter::new();
        write_coeff_token_zero(&mut w, 8);
        write_coeff_token_zero(&mut w, 4);
        write_coeff_token_zero(&mut w, 2);
        write_coeff_token_zero(&mut w, 0);
        w.u(3, 0);
        // 000011 1111 11 1 000
        assert_eq!(w.finish(), vec![0b0000_1111, 0b1111_1000]);
    }

    /// A drawn block makes its own macroblocks I_PCM and, where its ink
    /// touches the right column or bottom row, the neighbours too; the
    /// remaining background stays I_16x16 with nC from I_PCM neighbours.
    #[test]
    fn idr_kinds_around_content() {
        use MbKind::*;
        let mut pic = Picture::new(64, 48);
        pic.fill_luma(18, 18, 12, 12, 200); // inside MB (1, 1), off its right/bottom edges
        pic.fill_luma(36, 2, 8, 14, 200); // MB (2, 0), touching its bottom row
        let kinds = choose_kinds(&pic, None);
        #[rustfmt::skip]
        let want = [
            Intra16x16Dc, Intra16x16Dc, Pcm, Intra16x16Dc,
            Intra16x16Dc, Pcm, Pcm, Intra16x16Dc,
            Intra16x16Dc, Intra16x16Dc, Intra16x16Dc, Intra16x16Dc,
        ];
        assert_eq!(kinds, want);
        assert_eq!(intra16x16_dc_nc(&kinds, 4, 3, 0), 16); // A = PCM, no B
        assert_eq!(intra16x16_dc_nc(&kinds, 4, 3, 1), 8); // A = PCM, B = I_16x16
        assert_eq!(intra16x16_dc_nc(&kinds, 4, 1, 2), 8); // B = PCM, A = I_16x16
        // P: only the changed macroblock is coded.
        let mut next = pic.clone();
        next.fill_luma(0, 32, 2, 2, 40);
        let kinds = choose_kinds(&next, Some(&pic));
        assert_eq!(kinds.iter().filter(|&&k| k == Pcm).count(), 1);
        assert_eq!(kinds[8], Pcm);
    }

    #[test]
    fn sps_is_constrained_baseline() {
        let c = StreamConfig {
            width: 640,
            height: 360,
            fps_num: 30,
            fps_den: 1,
            level_idc: 30,
            log2_max_frame_num: 5,
        };
        let sps = sps(&c);
        assert_eq!(&sps[..4], &[0x67, 66, 0xC0, 30]);
        let avcc = avc_decoder_configuration_record(&sps, &pps());
        assert_eq!(&avcc[..6], &[1, 66, 0xC0, 30, 0xFF, 0xE1]);
    }
}
