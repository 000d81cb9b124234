//! AAC-LC audio: a silent frame built bit by bit, and a short beep clip.
//!
//! The beep (`assets/beep.aac`, 1127 bytes) is a 100 ms 1 kHz sine, mono,
//! 48 kHz, encoded once with FFmpeg's native AAC-LC encoder:
//!
//! ```text
//! ffmpeg -f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=0.1" \
//!     -ac 1 -c:a aac -b:a 64k -f adts beep.aac
//! ```
//!
//! It is kept in ADTS form and split into raw_data_blocks at start-up. Its
//! first frame is the encoder's priming (1024 samples of delay) and its last
//! frames flush the MDCT overlap, so the clip starts and ends in silence and
//! can be spliced between silent frames.

use bytes::Bytes;

use crate::bits::BitWriter;

/// Output sample rate in Hz, also the audio timescale.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per AAC-LC frame (frameLengthFlag 0).
pub const SAMPLES_PER_FRAME: u32 = 1024;
/// `samplingFrequencyIndex` of 48 000 Hz (ISO/IEC 14496-3 §1.6.3.3, Table 1.18).
const SAMPLING_FREQUENCY_INDEX: u8 = 3;
/// `channelConfiguration` 1: one channel, front centre (Table 1.19).
const CHANNEL_CONFIGURATION: u8 = 1;
/// Audio Object Type 2: AAC LC.
const AOT_AAC_LC: u8 = 2;
/// The encoder delay of the beep clip, in samples (FFmpeg's AAC encoder
/// primes with one frame).
pub(crate) const BEEP_PRIMING_SAMPLES: u32 = 1024;

static BEEP_ADTS: &[u8] = include_bytes!("../assets/beep.aac");

/// The AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) of the stream:
/// audioObjectType 2, samplingFrequencyIndex 3, channelConfiguration 1,
/// then GASpecificConfig (§4.4.1) with frameLengthFlag,
/// dependsOnCoreCoder and extensionFlag all 0: `11 88`.
pub(crate) fn audio_specific_config() -> Vec<u8> {
    let mut w = BitWriter::new();
    w.u(5, AOT_AAC_LC.into());
    w.u(4, SAMPLING_FREQUENCY_INDEX.into());
    w.u(4, CHANNEL_CONFIGURATION.into());
    w.bit(false); // frameLengthFlag: 1024 samples
    w.bit(false); // dependsOnCoreCoder
    w.bit(false); // extensionFlag
    w.finish()
}

/// One silent raw_data_block (ISO/IEC 14496-3 §4.4.2.1) for mono: a
/// single_channel_element whose individual_channel_stream has no
/// scale-factor bands, then ID_END. 32 bits, `01 40 20 07`:
///
/// | field                          | bits | value                 |
/// |--------------------------------|------|-----------------------|
/// | id_syn_ele                     | 3    | 0 (ID_SCE)            |
/// | element_instance_tag           | 4    | 0                     |
/// | global_gain                    | 8    | 160 (unused)          |
/// | ics_reserved_bit               | 1    | 0                     |
/// | window_sequence                | 2    | 0 (ONLY_LONG)         |
/// | window_shape                   | 1    | 1 (KBD, as FFmpeg's long windows) |
/// | max_sfb                        | 6    | 0: no section, scale factor or spectral data |
/// | predictor_data_present         | 1    | 0                     |
/// | pulse / tns / gain_control present | 3 | 0                    |
/// | id_syn_ele                     | 3    | 7 (ID_END)            |
pub(crate) fn silent_frame() -> Vec<u8> {
    let mut w = BitWriter::new();
    w.u(3, 0); // ID_SCE
    w.u(4, 0); // element_instance_tag
    w.u(8, 160); // global_gain
    w.bit(false); // ics_reserved_bit
    w.u(2, 0); // window_sequence ONLY_LONG_SEQUENCE
    w.bit(true); // window_shape KBD
    w.u(6, 0); // max_sfb
    w.bit(false); // predictor_data_present
    w.bit(false); // pulse_data_present
    w.bit(false); // tns_data_present
    w.bit(false); // gain_control_data_present
    w.u(3, 7); // ID_END
    w.align_zero(); // byte_alignment()
    w.finish()
}

/// The beep clip as raw_data_blocks.
///
/// # Panics
/// If the compiled-in asset is not the mono 48 kHz AAC-LC ADTS stream it is
/// documented to be (a build invariant, checked by the unit tests).
pub(crate) fn beep_frames() -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut rest = BEEP_ADTS;
    while !rest.is_empty() {
        assert!(
            rest.len() >= 7 && rest[0] == 0xFF && rest[1] & 0xF0 == 0xF0,
            "beep asset: ADTS syncword"
        );
        let protection_absent = rest[1] & 1 == 1;
        let profile = rest[2] >> 6; // audioObjectType − 1
        let sf_index = (rest[2] >> 2) & 0xF;
        let channels = ((rest[2] & 1) << 2) | (rest[3] >> 6);
        let frame_length = (usize::from(rest[3] & 3) << 11)
            | (usize::from(rest[4]) << 3)
            | usize::from(rest[5] >> 5);
        let blocks = (rest[6] & 3) + 1;
        assert!(
            profile + 1 == AOT_AAC_LC
                && sf_index == SAMPLING_FREQUENCY_INDEX
                && channels == CHANNEL_CONFIGURATION
                && blocks == 1,
            "beep asset: mono 48 kHz AAC-LC, one raw_data_block per ADTS frame"
        );
        let header = if protection_absent { 7 } else { 9 };
        assert!(
            frame_length > header && frame_length <= rest.len(),
            "beep asset: ADTS frame_length"
        );
        frames.push(Bytes::copy_from_slice(&rest[header..frame_length]));
        rest = &rest[frame_length..];
    }
    frames
}

/// Wraps one raw_data_block of this source's audio (mono 48 kHz AAC-LC) in a
/// 7-byte ADTS header (ISO/IEC 14496-3 §1.A.2, no CRC), e.g. to write a
/// `.aac` file that players and FFmpeg read directly.
///
/// # Panics
/// If `raw` is longer than an ADTS frame can describe (8184 bytes).
pub fn adts_frame(raw: &[u8]) -> Vec<u8> {
    let len = raw.len() + 7;
    assert!(len < 1 << 13, "ADTS frame_length is 13 bits");
    let mut w = BitWriter::new();
    w.u(12, 0xFFF); // syncword
    w.bit(false); // ID: MPEG-4
    w.u(2, 0); // layer
    w.bit(true); // protection_absent
    w.u(2, u64::from(AOT_AAC_LC - 1)); // profile_ObjectType
    w.u(4, SAMPLING_FREQUENCY_INDEX.into());
    w.bit(false); // private_bit
    w.u(3, CHANNEL_CONFIGURATION.into());
    w.bit(false); // original_copy
    w.bit(false); // home
    w.bit(false); // copyright_identification_bit
    w.bit(false); // copyright_identification_start
    w.u(13, len as u64); // aac_frame_length
    w.u(11, 0x7FF); // adts_buffer_fullness: variable rate
    w.u(2, 0); // number_of_raw_data_blocks_in_frame − 1
    let mut out = w.finish();
    out.extend_from_slice(raw);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_specific_config_mono_48k_lc() {
        assert_eq!(audio_specific_config(), vec![0x11, 0x88]);
    }

    #[test]
    fn silent_frame_bits() {
        assert_eq!(silent_frame(), vec![0x01, 0x40, 0x20, 0x07]);
    }

    #[test]
    fn beep_asset_parses_and_round_trips() {
        let frames = beep_frames();
        assert_eq!(frames.len(), 6);
        let rebuilt: Vec<u8> = frames.iter().flat_map(|f| adts_frame(f)).collect();
        // The asset has no CRC and buffer fullness 0x7FF, so re-wrapping is exact.
        assert_eq!(rebuilt, BEEP_ADTS);
    }
}
