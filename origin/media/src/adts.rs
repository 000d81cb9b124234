//! AAC in ADTS framing (ISO/IEC 14496-3 §1.A.2, Audio Data Transport
//! Stream), as carried in MPEG-TS with stream_type 0x0F.
//!
//! Parses the fixed and variable ADTS headers, skips the optional CRC, and
//! derives the AudioSpecificConfig (§1.6.2.1) and RFC 6381 codec string
//! that ISO BMFF packaging needs.

use bytes::Bytes;

use crate::model::{AudioCodec, AudioParams, Timescale};

/// Length of an ADTS header without CRC, in bytes.
pub const HEADER_LEN: usize = 7;

/// AAC samples per raw_data_block (per channel), the AAC frame length.
pub const SAMPLES_PER_FRAME: u32 = 1024;

/// Sampling frequencies by `sampling_frequency_index`, in Hz (ISO/IEC
/// 14496-3 §1.6.3.4, Table 1.18). Indices 13 and 14 are reserved, 15 is an
/// escape not allowed in ADTS.
pub const SAMPLING_FREQUENCIES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// Errors parsing ADTS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdtsError {
    /// Fewer bytes than a header (7, or 9 with CRC).
    #[error("truncated ADTS header")]
    ShortHeader,
    /// The 12-bit syncword `0xFFF` is missing.
    #[error("no ADTS syncword")]
    NoSync,
    /// `layer` is not 0.
    #[error("ADTS layer {0} is not 0")]
    BadLayer(u8),
    /// `sampling_frequency_index` is reserved (13, 14) or the escape (15).
    #[error("reserved sampling_frequency_index {0}")]
    BadSamplingFrequency(u8),
    /// `channel_configuration` 0 (channels described by an in-band
    /// program_config_element) is not supported.
    #[error("channel_configuration 0 (PCE) is not supported")]
    UnsupportedChannelConfig,
    /// More than one raw_data_block per ADTS frame is not supported.
    #[error("{0} raw data blocks per ADTS frame are not supported")]
    MultipleRawDataBlocks(u8),
    /// `aac_frame_length` is smaller than the header.
    #[error("aac_frame_length {0} smaller than the header")]
    BadFrameLength(u16),
    /// The frame is longer than the remaining data.
    #[error("ADTS frame truncated: needs {needed} bytes, {available} available")]
    Truncated {
        /// `aac_frame_length`.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
}

/// An ADTS header (`adts_fixed_header` + `adts_variable_header`,
/// ISO/IEC 14496-3 §1.A.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// `ID`: false MPEG-4, true MPEG-2.
    pub mpeg2: bool,
    /// `protection_absent`: false when a 16-bit CRC follows the header.
    pub protection_absent: bool,
    /// `profile_ObjectType` (0 Main, 1 LC, 2 SSR, 3 LTP); the MPEG-4
    /// audio object type is this plus one.
    pub profile: u8,
    /// `sampling_frequency_index`, 0..=12 (Table 1.18).
    pub sampling_frequency_index: u8,
    /// `channel_configuration`, 1..=7 (Table 1.19).
    pub channel_configuration: u8,
    /// `aac_frame_length`: header, CRC and payload, in bytes.
    pub frame_length: u16,
    /// `number_of_raw_data_blocks_in_frame` (always 0 here: one block).
    pub raw_data_blocks: u8,
}

impl AdtsHeader {
    /// Parses the header at the start of `data`.
    ///
    /// # Errors
    /// [`AdtsError`] for missing sync, reserved or unsupported values.
    pub fn parse(data: &[u8]) -> Result<AdtsHeader, AdtsError> {
        let h: &[u8; HEADER_LEN] = data
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(AdtsError::ShortHeader)?;
        if h[0] != 0xFF || h[1] & 0xF0 != 0xF0 {
            return Err(AdtsError::NoSync);
        }
        let layer = (h[1] >> 1) & 0x03;
        if layer != 0 {
            return Err(AdtsError::BadLayer(layer));
        }
        let sampling_frequency_index = (h[2] >> 2) & 0x0F;
        if usize::from(sampling_frequency_index) >= SAMPLING_FREQUENCIES.len() {
            return Err(AdtsError::BadSamplingFrequency(sampling_frequency_index));
        }
        let channel_configuration = ((h[2] & 0x01) << 2) | (h[3] >> 6);
        if channel_configuration == 0 {
            return Err(AdtsError::UnsupportedChannelConfig);
        }
        let frame_length =
            (u16::from(h[3] & 0x03) << 11) | (u16::from(h[4]) << 3) | u16::from(h[5] >> 5);
        let raw_data_blocks = h[6] & 0x03;
        if raw_data_blocks != 0 {
            return Err(AdtsError::MultipleRawDataBlocks(raw_data_blocks + 1));
        }
        let header = AdtsHeader {
            mpeg2: h[1] & 0x08 != 0,
            protection_absent: h[1] & 0x01 != 0,
            profile: h[2] >> 6,
            sampling_frequency_index,
            channel_configuration,
            frame_length,
            raw_data_blocks,
        };
        if usize::from(frame_length) < header.header_len() {
            return Err(AdtsError::BadFrameLength(frame_length));
        }
        Ok(header)
    }

    /// Header length in bytes: 7, or 9 with the CRC (`crc_check`).
    pub fn header_len(&self) -> usize {
        if self.protection_absent {
            HEADER_LEN
        } else {
            HEADER_LEN + 2
        }
    }

    /// Sample rate in Hz; 0 for a `sampling_frequency_index` outside Table
    /// 1.18 (only possible in a header built by hand).
    pub fn sample_rate(&self) -> u32 {
        SAMPLING_FREQUENCIES
            .get(usize::from(self.sampling_frequency_index))
            .copied()
            .unwrap_or(0)
    }

    /// Channel count: the configuration, except 7 means 8 channels (7.1,
    /// Table 1.19).
    pub fn channels(&self) -> u8 {
        if self.channel_configuration == 7 {
            8
        } else {
            self.channel_configuration
        }
    }

    /// MPEG-4 audio object type: `profile + 1` (2 for AAC-LC).
    pub fn audio_object_type(&self) -> u8 {
        self.profile + 1
    }

    /// The 2-byte AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1):
    /// `audioObjectType(5) samplingFrequencyIndex(4)
    /// channelConfiguration(4)` and a GASpecificConfig of
    /// `frameLengthFlag = 0` (1024 samples), `dependsOnCoreCoder = 0`,
    /// `extensionFlag = 0`.
    pub fn audio_specific_config(&self) -> [u8; 2] {
        let aot = self.audio_object_type() & 0x1F;
        let sfi = self.sampling_frequency_index & 0x0F;
        let ch = self.channel_configuration & 0x0F;
        [(aot << 3) | (sfi >> 1), ((sfi & 1) << 7) | (ch << 3)]
    }

    /// RFC 6381 codec string `mp4a.40.<aot>` (e.g. `mp4a.40.2` for LC).
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.audio_object_type())
    }

    /// The sample rate as the track's timescale (ISO/IEC 14496-12 `mdhd`):
    /// `None` only for a `sampling_frequency_index` outside Table 1.18,
    /// which [`AdtsHeader::parse`] never returns.
    pub fn timescale(&self) -> Option<Timescale> {
        Timescale::new(self.sample_rate())
    }

    /// The [`AudioParams`] of a track carrying this stream.
    ///
    /// # Errors
    /// [`AdtsError::BadSamplingFrequency`] when the header (built by hand,
    /// not parsed) has no sample rate.
    pub fn audio_params(&self) -> Result<AudioParams, AdtsError> {
        let sample_rate = self.timescale().ok_or(AdtsError::BadSamplingFrequency(
            self.sampling_frequency_index,
        ))?;
        Ok(AudioParams {
            codec: AudioCodec::Aac,
            sample_rate,
            channels: self.channels(),
            samples_per_frame: SAMPLES_PER_FRAME,
            codec_string: self.codec_string(),
            decoder_config: Bytes::copy_from_slice(&self.audio_specific_config()),
            language: None,
        })
    }
}

/// One ADTS frame: its header and raw_data_block (without header and
/// CRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsFrame<'a> {
    /// The parsed header.
    pub header: AdtsHeader,
    /// The raw_data_block.
    pub payload: &'a [u8],
}

/// Iterator over the ADTS frames of a buffer (e.g. one PES payload, which
/// may hold several frames), see [`frames`].
#[derive(Debug, Clone)]
pub struct AdtsFrames<'a> {
    data: &'a [u8],
}

/// Iterates over the ADTS frames in `data`.
///
/// A bad header yields one `Err` and the iterator moves on to the next
/// syncword, so garbage between frames is skipped; a truncated last frame
/// yields [`AdtsError::Truncated`] and ends the iteration. The CRC is
/// skipped, not checked.
pub fn frames(data: &[u8]) -> AdtsFrames<'_> {
    AdtsFrames { data }
}

impl<'a> Iterator for AdtsFrames<'a> {
    type Item = Result<AdtsFrame<'a>, AdtsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        match AdtsHeader::parse(self.data) {
            Ok(header) => {
                let len = usize::from(header.frame_length);
                let Some(frame) = self.data.get(..len) else {
                    let available = self.data.len();
                    self.data = &[];
                    return Some(Err(AdtsError::Truncated {
                        needed: len,
                        available,
                    }));
                };
                // Bounded slicing: past the end is an empty slice, which the next header check refuses.
                self.data = self.data.get(len..).unwrap_or_default();
                // Bounded slicing: past the end is an empty slice, which the next header check refuses.
                let payload = frame.get(header.header_len()..).unwrap_or_default();
                Some(Ok(AdtsFrame { header, payload }))
            }
            Err(AdtsError::ShortHeader) => {
                self.data = &[];
                Some(Err(AdtsError::ShortHeader))
            }
            Err(e) => {
                // Resynchronise: the next 0xFFF after the current byte.
                let skip = self
                    .data
                    .windows(2)
                    .skip(1)
                    .position(|w| w[0] == 0xFF && w[1] & 0xF0 == 0xF0)
                    .map_or(self.data.len(), |p| p + 1);
                // Bounded slicing: past the end is an empty slice, which the next header check refuses.
                self.data = self.data.get(skip..).unwrap_or_default();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ADTS header written by ffmpeg's AAC encoder: MPEG-4, no CRC, LC,
    /// 48 kHz (index 3), stereo, frame length 0x17 bytes (header + 16).
    const HEADER_48K_STEREO: [u8; 7] = [0xFF, 0xF1, 0x4C, 0x80, 0x02, 0xFF, 0xFC];

    fn frame_with(header: [u8; 7], payload: &[u8]) -> Vec<u8> {
        let mut f = header.to_vec();
        let len = 7 + payload.len();
        f[3] = (f[3] & 0xFC) | ((len >> 11) as u8 & 0x03);
        f[4] = (len >> 3) as u8;
        f[5] = (f[5] & 0x1F) | (((len & 7) as u8) << 5);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn header_fields() {
        let h = AdtsHeader::parse(&HEADER_48K_STEREO).expect("valid header");
        assert!(!h.mpeg2);
        assert!(h.protection_absent);
        assert_eq!(h.profile, 1);
        assert_eq!(h.sample_rate(), 48_000);
        assert_eq!(h.channels(), 2);
        assert_eq!(h.frame_length, 0x17);
        assert_eq!(h.codec_string(), "mp4a.40.2");
        // AOT 2, index 3, 2 channels: 00010 0011 0010 000 = 0x11 0x90.
        assert_eq!(h.audio_specific_config(), [0x11, 0x90]);
    }

    /// AudioSpecificConfig values well known from MP4 files.
    #[test]
    fn asc_table() {
        for (sfi, ch, asc) in [
            (4u8, 2u8, [0x12, 0x10]),
            (4, 1, [0x12, 0x08]),
            (3, 1, [0x11, 0x88]),
        ] {
            let h = AdtsHeader {
                mpeg2: false,
                protection_absent: true,
                profile: 1,
                sampling_frequency_index: sfi,
                channel_configuration: ch,
                frame_length: 7,
                raw_data_blocks: 0,
            };
            assert_eq!(h.audio_specific_config(), asc);
        }
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            AdtsHeader::parse(&[0xFF, 0xF1]),
            Err(AdtsError::ShortHeader)
        );
        assert_eq!(
            AdtsHeader::parse(&[0xFF, 0xE1, 0x4C, 0x80, 0x02, 0xFF, 0xFC]),
            Err(AdtsError::NoSync)
        );
        assert_eq!(
            AdtsHeader::parse(&[0xFF, 0xF1, 0x74, 0x80, 0x02, 0xFF, 0xFC]),
            Err(AdtsError::BadSamplingFrequency(13))
        );
        assert_eq!(
            AdtsHeader::parse(&[0xFF, 0xF1, 0x4C, 0x00, 0x02, 0xFF, 0xFC]),
            Err(AdtsError::UnsupportedChannelConfig)
        );
        assert_eq!(
            AdtsHeader::parse(&[0xFF, 0xF1, 0x4C, 0x80, 0x00, 0x1F, 0xFC]),
            Err(AdtsError::BadFrameLength(0))
        );
    }

    #[test]
    fn several_frames_crc_and_garbage() {
        let mut data = frame_with(HEADER_48K_STEREO, &[1, 2, 3]);
        // CRC-protected frame: protection_absent = 0, two CRC bytes.
        let mut crc_header = HEADER_48K_STEREO;
        crc_header[1] = 0xF0;
        data.extend(frame_with(crc_header, &[0xCC, 0xCC, 9, 9]));
        data.extend_from_slice(&[0x00, 0x12, 0x34]); // garbage
        data.extend(frame_with(HEADER_48K_STEREO, &[7]));
        data.extend_from_slice(&frame_with(HEADER_48K_STEREO, &[5; 10])[..12]);
        let got: Vec<_> = frames(&data).collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[0].as_ref().map(|f| f.payload), Ok(&[1u8, 2, 3][..]));
        assert_eq!(got[1].as_ref().map(|f| f.payload), Ok(&[9u8, 9][..]));
        assert_eq!(got[2], Err(AdtsError::NoSync));
        assert_eq!(got[3].as_ref().map(|f| f.payload), Ok(&[7u8][..]));
        assert_eq!(
            got[4],
            Err(AdtsError::Truncated {
                needed: 17,
                available: 12
            })
        );
    }
}
