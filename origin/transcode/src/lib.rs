//! AAC-LC to Opus, for WebRTC viewers of streams published with AAC (SRT,
//! RTMP-style encoders): WebRTC carries Opus (RFC 7874 §3), not AAC.
//!
//! Sans-IO, like the rest of the media core: frames of the media model
//! ([`Frame`], AAC raw_data_blocks on the track's sample clock) go in,
//! [`OpusPacket`]s (20 ms, 48 kHz timeline) come out; no clock, no task, no
//! socket. The codecs are libraries, this crate is the glue:
//!
//! | step | library | spec |
//! |---|---|---|
//! | AAC-LC decode | `symphonia-codec-aac` (pure Rust) | ISO/IEC 14496-3 |
//! | resample to 48 kHz (when the source is not) | `rubato` (asynchronous sinc) | — |
//! | Opus encode, 20 ms frames | `opus-rs` (pure Rust port of libopus 1.6) | RFC 6716 |
//!
//! No C library and no cmake: the binary builds with only rustup and a C
//! compiler.
//!
//! # Timeline
//!
//! The Opus packets' times come from the AAC frames' presentation times, so
//! audio stays in step with the video of the same broadcast: the first
//! frame after a (re)start anchors the timeline (its PTS rebased to
//! 48 kHz), and packet *k* after it is at
//! `anchor + 960·k − resampler delay − encoder lookahead`, where the two
//! delays are what the resampler and the Opus encoder hold back (so a
//! decoded packet plays at the time of the input it holds). Packets are
//! exactly [`OPUS_FRAME_SAMPLES`] apart while the input is continuous.
//!
//! A frame whose PTS is more than half a frame away from where the previous
//! one ended (a gap, a jump, an SRT loss), a [`AacToOpus::discontinuity`]
//! call, or a frame the decoder refuses restarts the timeline: the decoder
//! and resampler are reset, the samples held for an incomplete 20 ms packet
//! are dropped, and the next good frame is a new anchor.
//!
//! # Bad input
//!
//! A frame the decoder refuses is an [`Err`] (count it), never a panic; the
//! libraries are also run under [`std::panic::catch_unwind`] so that a bug
//! in one of them costs the frame, not the process.
//!
//! # Cost
//!
//! One transcoder per broadcast, whatever the number of viewers (the
//! origin's WebRTC egress shares it). Memory: the codec states (tens of
//! KiB) plus at most one AAC frame and one Opus frame of PCM.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use livestack_media::model::{AudioCodec, AudioParams, Frame, MediaTime, Timescale};
use rubato::{
    Async, FixedAsync, Resampler, SincInterpolationParameters, WindowFunction,
    audioadapter_buffers::direct::InterleavedSlice,
};
use symphonia_codec_aac::AacDecoder;
use symphonia_core::{
    codecs::audio::{
        AudioCodecParameters, AudioDecoder, AudioDecoderOptions, well_known::CODEC_ID_AAC,
    },
    packet::PacketRef,
    units::{Duration as SymDuration, Timestamp},
};

/// Opus's clock: 48 kHz (RFC 7587 §4.1: the RTP clock rate is always
/// 48 000, whatever the coded bandwidth).
pub const OPUS_RATE: Timescale = Timescale::HZ_48000;

/// Samples per channel in one Opus packet: 20 ms at 48 kHz, the packet
/// duration browsers send and expect by default (RFC 7587 §6.1 `ptime`).
pub const OPUS_FRAME_SAMPLES: usize = 960;

/// Samples per channel of one AAC-LC frame (ISO/IEC 14496-3 §4.4.1,
/// GASpecificConfig `frameLengthFlag` 0); the decoder takes no other
/// length.
pub const AAC_FRAME_SAMPLES: usize = 1024;

/// The Opus encoder's lookahead at 48 kHz, in samples: what a decoder
/// skips at the start (the `pre-skip` of RFC 7845 §5.1; 4 ms of delay
/// compensation plus the 2.5 ms CELT overlap, as libopus).
pub const ENCODER_LOOKAHEAD: i64 = 312;

/// Largest Opus packet (RFC 6716 §3.2.1: 1275 bytes of frame data plus the
/// TOC byte).
pub const MAX_OPUS_PACKET: usize = 1276;

/// Opus bit rate for a stereo source (bit/s, variable bit rate).
pub const STEREO_BITRATE: i32 = 96_000;

/// Opus bit rate for a mono source (bit/s, variable bit rate).
pub const MONO_BITRATE: i32 = 48_000;

/// Opus encoder complexity (0 to 10; libopus defaults to 10 on a desktop
/// and 9 here): 5 keeps the quality of music at these bit rates close
/// while halving the encoder's CPU time.
pub const COMPLEXITY: i32 = 5;

/// Length of the resampler's windowed sinc filter (taps).
const SINC_LEN: usize = 128;

/// One Opus packet for an RTP payloader (RFC 7587).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusPacket {
    /// The packet: a TOC byte and one 20 ms frame (RFC 6716 §3.1, code 0).
    pub data: Bytes,
    /// Presentation time of its first sample, on the 48 kHz clock
    /// ([`OPUS_RATE`]); may be negative right after a timeline starting at
    /// zero (the delays are subtracted).
    pub pts: MediaTime,
    /// Samples per channel it holds (always [`OPUS_FRAME_SAMPLES`]).
    pub samples: usize,
}

/// Why a transcoder could not be made, or a frame was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscodeError {
    /// The track is not AAC.
    #[error("not an AAC track: {0:?}")]
    NotAac(AudioCodec),
    /// More than two channels: Opus in WebRTC is mono or stereo (RFC 7587
    /// §3.4 mapping family 0).
    #[error("{0} channels: only mono and stereo are transcoded")]
    Channels(u8),
    /// The decoder refused the track's AudioSpecificConfig (ISO/IEC 14496-3
    /// §1.6.2.1): not AAC-LC (HE-AAC with explicit SBR, 960-sample frames),
    /// or malformed.
    #[error("AAC configuration refused: {0}")]
    Config(String),
    /// The frame is not on the track's clock, or its time does not fit.
    #[error("frame time unusable: {0}")]
    Time(#[from] livestack_media::model::TimeError),
    /// The decoder refused the frame (corrupt or truncated
    /// raw_data_block), or produced other than one frame of audio; the
    /// timeline restarts at the next frame.
    #[error("AAC frame refused: {0}")]
    Decode(String),
    /// The resampler failed (a bug, not bad input: the frame is lost).
    #[error("resampler: {0}")]
    Resample(String),
    /// The Opus encoder failed (a bug, not bad input: the packet is lost).
    #[error("Opus encoder: {0}")]
    Encode(String),
    /// A library panicked on this frame; the transcoder was rebuilt.
    #[error("a codec library panicked on this frame: {0}")]
    Panic(&'static str),
}

/// The AAC-LC to Opus transcoder of one audio track. See the crate docs.
pub struct AacToOpus {
    params: AudioParams,
    channels: usize,
    decoder: AacDecoder,
    resampler: Option<Async<f32>>,
    encoder: opus_rs::OpusEncoder,
    /// Decoded source-rate PCM (interleaved) not yet resampled.
    decoded: Vec<f32>,
    /// 48 kHz PCM (interleaved) not yet encoded.
    pcm: Vec<f32>,
    /// Scratch: one resampler output chunk.
    resampled: Vec<f32>,
    /// Where the timeline stands, once anchored.
    timeline: Option<Timeline>,
    out: Vec<u8>,
}

/// The running timeline since the last (re)start.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    /// 48 kHz time of the next packet.
    next_packet: i64,
    /// Source-clock PTS the next AAC frame should have.
    next_frame: MediaTime,
}

impl std::fmt::Debug for AacToOpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacToOpus")
            .field("sample_rate", &self.params.sample_rate)
            .field("channels", &self.channels)
            .field("resampling", &self.resampler.is_some())
            .finish_non_exhaustive()
    }
}

impl AacToOpus {
    /// A transcoder for an AAC track with `params` (its AudioSpecificConfig
    /// in `decoder_config`, mono or stereo, any AAC sample rate).
    ///
    /// # Errors
    /// [`TranscodeError::NotAac`], [`TranscodeError::Channels`],
    /// [`TranscodeError::Config`] (the decoder refused the configuration),
    /// [`TranscodeError::Resample`] / [`TranscodeError::Encode`] when a
    /// library refuses its set-up.
    pub fn new(params: &AudioParams) -> Result<Self, TranscodeError> {
        if params.codec != AudioCodec::Aac {
            return Err(TranscodeError::NotAac(params.codec));
        }
        let channels = usize::from(params.channels);
        if !(1..=2).contains(&channels) {
            return Err(TranscodeError::Channels(params.channels));
        }
        let decoder = new_decoder(params)?;
        let resampler = new_resampler(params.sample_rate.get(), channels)?;
        let encoder = new_encoder(channels)?;
        Ok(Self {
            params: params.clone(),
            channels,
            decoder,
            resampler,
            encoder,
            decoded: Vec::with_capacity(2 * AAC_FRAME_SAMPLES * channels),
            pcm: Vec::with_capacity(2 * OPUS_FRAME_SAMPLES * channels),
            resampled: Vec::new(),
            timeline: None,
            out: vec![0; MAX_OPUS_PACKET],
        })
    }

    /// Channels of the Opus packets (1 or 2, as the source).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// True when the source is not at 48 kHz and is resampled.
    pub fn resamples(&self) -> bool {
        self.resampler.is_some()
    }

    /// Restarts the timeline at the next frame (the source lost frames, or
    /// the reader skipped some).
    pub fn discontinuity(&mut self) {
        self.timeline = None;
        self.decoder.reset();
        if let Some(r) = &mut self.resampler {
            r.reset();
        }
        // A fresh encoder too: its lookahead would otherwise carry the
        // audio from before the gap into the first packet after it.
        if let Ok(encoder) = new_encoder(self.channels) {
            self.encoder = encoder;
        }
        self.decoded.clear();
        self.pcm.clear();
    }

    /// Transcodes one AAC frame (a raw_data_block, times on the track's
    /// sample clock) and appends the Opus packets it completes to `out`
    /// (none or one at 44.1/48 kHz; a few at lower source rates).
    ///
    /// # Errors
    /// [`TranscodeError`]: the frame is skipped and the timeline restarts
    /// at the next one; nothing was appended.
    pub fn push(&mut self, frame: &Frame, out: &mut Vec<OpusPacket>) -> Result<(), TranscodeError> {
        let rate = self.params.sample_rate;
        let pts = frame.pts.rebase(rate)?;
        let continues = self.timeline.is_some_and(|t| {
            pts.checked_sub(t.next_frame)
                .is_ok_and(|d| d.ticks().unsigned_abs() <= (AAC_FRAME_SAMPLES / 2) as u64)
        });
        // Before the first frame (or after a restart) all is fresh already.
        if !continues && self.timeline.is_some() {
            self.discontinuity();
        }
        let timeline = match self.timeline {
            Some(t) => t,
            None => {
                let anchor = pts.rebase(OPUS_RATE)?.ticks();
                let delay = self
                    .resampler
                    .as_ref()
                    .map_or(0, |r| r.output_delay() as i64);
                Timeline {
                    next_packet: anchor - delay - ENCODER_LOOKAHEAD,
                    next_frame: pts,
                }
            }
        };
        let result = self.decode_resample_encode(frame, timeline, out);
        match result {
            Ok(t) => {
                self.timeline = Some(Timeline {
                    next_frame: pts.checked_add_ticks(AAC_FRAME_SAMPLES as i64)?,
                    ..t
                });
                Ok(())
            }
            Err(e) => {
                self.discontinuity();
                Err(e)
            }
        }
    }

    /// Decodes `frame` into [`Self::decoded`], resamples what it can into
    /// [`Self::pcm`] and encodes every complete 20 ms; returns the
    /// timeline advanced by the packets appended to `out`.
    fn decode_resample_encode(
        &mut self,
        frame: &Frame,
        mut timeline: Timeline,
        out: &mut Vec<OpusPacket>,
    ) -> Result<Timeline, TranscodeError> {
        self.decode(&frame.data)?;
        self.resample()?;
        let per_packet = OPUS_FRAME_SAMPLES * self.channels;
        let mut produced = Vec::new();
        while self.pcm.len() >= per_packet {
            let n = self.encode(per_packet)?;
            produced.push(OpusPacket {
                data: Bytes::copy_from_slice(&self.out[..n]),
                pts: MediaTime::new(timeline.next_packet, OPUS_RATE),
                samples: OPUS_FRAME_SAMPLES,
            });
            self.pcm.drain(..per_packet);
            timeline.next_packet += OPUS_FRAME_SAMPLES as i64;
        }
        out.append(&mut produced);
        Ok(timeline)
    }

    /// One raw_data_block decoded, appended to [`Self::decoded`].
    fn decode(&mut self, data: &[u8]) -> Result<(), TranscodeError> {
        let channels = self.channels;
        let decoder = &mut self.decoder;
        let decoded = &mut self.decoded;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let packet = PacketRef::new(
                0,
                Timestamp::ZERO,
                SymDuration::new(AAC_FRAME_SAMPLES as u64),
                data,
            );
            let buf = decoder
                .decode_ref(&packet)
                .map_err(|e| TranscodeError::Decode(e.to_string()))?;
            if buf.frames() != AAC_FRAME_SAMPLES || buf.spec().channels().count() != channels {
                return Err(TranscodeError::Decode(format!(
                    "{} samples of {} channels decoded, {AAC_FRAME_SAMPLES} of {channels} expected",
                    buf.frames(),
                    buf.spec().channels().count()
                )));
            }
            let start = decoded.len();
            decoded.resize(start + AAC_FRAME_SAMPLES * channels, 0.0);
            buf.copy_to_slice_interleaved::<f32, _>(&mut decoded[start..]);
            Ok(())
        }));
        match result {
            Ok(r) => r,
            Err(_) => {
                // The decoder's state is unknown after a panic: a new one.
                self.decoder = new_decoder(&self.params)?;
                Err(TranscodeError::Panic("AAC decoder"))
            }
        }
    }

    /// Moves [`Self::decoded`] to [`Self::pcm`], through the resampler
    /// when there is one (whole resampler chunks; the rest waits).
    fn resample(&mut self) -> Result<(), TranscodeError> {
        let ch = self.channels;
        let Some(resampler) = &mut self.resampler else {
            self.pcm.append(&mut self.decoded);
            return Ok(());
        };
        loop {
            let need = resampler.input_frames_next();
            if self.decoded.len() < need * ch {
                return Ok(());
            }
            let frames_out = resampler.output_frames_next();
            self.resampled.resize(frames_out * ch, 0.0);
            let input = InterleavedSlice::new(&self.decoded[..need * ch], ch, need)
                .map_err(|e| TranscodeError::Resample(e.to_string()))?;
            let mut output = InterleavedSlice::new_mut(&mut self.resampled, ch, frames_out)
                .map_err(|e| TranscodeError::Resample(e.to_string()))?;
            let (used, made) = resampler
                .process_into_buffer(&input, &mut output, None)
                .map_err(|e| TranscodeError::Resample(e.to_string()))?;
            self.decoded.drain(..used * ch);
            self.pcm.extend_from_slice(&self.resampled[..made * ch]);
        }
    }

    /// Encodes the first `len` samples of [`Self::pcm`] into
    /// [`Self::out`]; returns the packet's length.
    fn encode(&mut self, len: usize) -> Result<usize, TranscodeError> {
        for s in &mut self.pcm[..len] {
            // Decoded audio of a damaged frame can be anything.
            *s = if s.is_finite() {
                s.clamp(-1.0, 1.0)
            } else {
                0.0
            };
        }
        let encoder = &mut self.encoder;
        let pcm = &self.pcm[..len];
        let out = &mut self.out;
        match catch_unwind(AssertUnwindSafe(|| {
            encoder.encode(pcm, OPUS_FRAME_SAMPLES, out)
        })) {
            Ok(Ok(n)) if (1..=MAX_OPUS_PACKET).contains(&n) => Ok(n),
            Ok(Ok(n)) => Err(TranscodeError::Encode(format!("{n}-byte packet"))),
            Ok(Err(e)) => Err(TranscodeError::Encode(e.to_owned())),
            Err(_) => {
                self.encoder = new_encoder(self.channels)?;
                Err(TranscodeError::Panic("Opus encoder"))
            }
        }
    }
}

/// Symphonia's AAC-LC decoder for `params`' AudioSpecificConfig.
fn new_decoder(params: &AudioParams) -> Result<AacDecoder, TranscodeError> {
    let mut codec = AudioCodecParameters::new();
    codec.codec = CODEC_ID_AAC;
    codec
        .with_sample_rate(params.sample_rate.get())
        .with_extra_data(params.decoder_config.to_vec().into_boxed_slice());
    catch_unwind(|| AacDecoder::try_new(&codec, &AudioDecoderOptions::default()))
        .map_err(|_| TranscodeError::Panic("AAC decoder set-up"))?
        .map_err(|e| TranscodeError::Config(e.to_string()))
}

/// The resampler from `rate` to 48 kHz, `None` at 48 kHz. Fixed input of
/// one AAC frame per call.
fn new_resampler(rate: u32, channels: usize) -> Result<Option<Async<f32>>, TranscodeError> {
    if rate == OPUS_RATE.get() {
        return Ok(None);
    }
    let ratio = f64::from(OPUS_RATE.get()) / f64::from(rate);
    let params = SincInterpolationParameters::new(SINC_LEN, WindowFunction::BlackmanHarris2);
    Async::<f32>::new_sinc(
        ratio,
        1.0,
        &params,
        AAC_FRAME_SAMPLES,
        channels,
        FixedAsync::Input,
    )
    .map(Some)
    .map_err(|e| TranscodeError::Resample(e.to_string()))
}

/// The Opus encoder: 48 kHz, `channels`, general audio, VBR.
fn new_encoder(channels: usize) -> Result<opus_rs::OpusEncoder, TranscodeError> {
    let mut encoder = opus_rs::OpusEncoder::new(
        OPUS_RATE.get() as i32,
        channels,
        opus_rs::Application::Audio,
    )
    .map_err(|e| TranscodeError::Encode(e.to_owned()))?;
    encoder.bitrate_bps = if channels == 2 {
        STEREO_BITRATE
    } else {
        MONO_BITRATE
    };
    encoder.complexity = COMPLEXITY;
    encoder.use_cbr = false;
    Ok(encoder)
}

#[cfg(test)]
mod tests;
