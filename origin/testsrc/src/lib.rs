//! The built-in live source of `livestack demo`: real H.264 video showing a
//! running UTC clock, and AAC-LC audio with a beep on every second — without
//! any external tool or C library.
//!
//! Sans-IO: [`ClockSource`] has no clock, thread or socket. The caller (a
//! tokio task) calls [`ClockSource::next_video_frame`] every
//! [`ClockSource::video_frame_duration`], passing the wall clock to draw, and
//! [`ClockSource::next_audio_frame`] every
//! [`ClockSource::audio_frame_duration`]. Timestamps come from frame counts,
//! so both tracks start at 0 and never drift against each other.
//!
//! # Video
//!
//! A lossless Constrained Baseline H.264 stream (`avc1.42c0xx`, see the
//! `h264` module): background macroblocks of IDR pictures are Intra 16x16 DC
//! predicted with no residual, everything drawn is I_PCM, and P pictures
//! skip every unchanged macroblock. Picture: a mid-grey background,
//! `HH:MM:SS.mmm` in white, a frame counter below it and an orange bar
//! sweeping once per second. One IDR per keyframe interval (default 1 s).
//! The bit rate is dominated by the changing digits: about 3–4 Mbit/s at the
//! 640×360, 30 fps default.
//!
//! # Audio
//!
//! Mono 48 kHz AAC-LC: a 100 ms 1 kHz beep (a clip encoded once, see the
//! `aac` module) at the start of every second of the clock shown in the
//! video, silent frames otherwise.

mod aac;
mod bits;
mod font;
mod h264;
mod picture;

use std::time::Duration;

use bytes::Bytes;
use livestack_media::model::{
    AudioCodec, AudioParams, Frame, MediaTime, Timescale, TrackParams, VideoCodec, VideoParams,
};

pub use aac::{SAMPLE_RATE, SAMPLES_PER_FRAME, adts_frame};

/// The audio track's clock: [`SAMPLE_RATE`] ticks per second.
pub const AUDIO_TIMESCALE: Timescale = Timescale::HZ_48000;
const _: () = assert!(AUDIO_TIMESCALE.get() == SAMPLE_RATE);
pub use picture::{BACKGROUND_CHROMA, BACKGROUND_LUMA, Picture, TEXT_LUMA};

/// Configuration of a [`ClockSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockConfig {
    /// Picture width in pixels: even, 96..=8192. Default 640.
    pub width: u32,
    /// Picture height in pixels: even, 64..=8192. Default 360 (coded as 368
    /// with frame cropping).
    pub height: u32,
    /// Frame rate as `(numerator, denominator)` frames per second, e.g.
    /// `(30000, 1001)`. Default 30/1.
    pub frame_rate: (u32, u32),
    /// Distance between IDR pictures, rounded to whole frames (at least
    /// one). Default 1 s.
    pub keyframe_interval: Duration,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            width: 640,
            height: 360,
            frame_rate: (30, 1),
            keyframe_interval: Duration::from_secs(1),
        }
    }
}

/// Why a [`ClockConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Width or height is odd or out of range.
    #[error(
        "invalid picture size {width}x{height}: need even values, width 96..=8192, height 64..=8192"
    )]
    InvalidSize {
        /// The configured width.
        width: u32,
        /// The configured height.
        height: u32,
    },
    /// The frame rate is zero, has a zero denominator, or exceeds 1000 fps.
    #[error("invalid frame rate {num}/{den}")]
    InvalidFrameRate {
        /// Numerator.
        num: u32,
        /// Denominator.
        den: u32,
    },
    /// The keyframe interval is zero.
    #[error("keyframe interval must be positive")]
    InvalidKeyframeInterval,
    /// Size and frame rate exceed every H.264 level (ITU-T H.264 Table A-1).
    #[error("{width}x{height} at {num}/{den} fps exceeds every H.264 level")]
    NoLevel {
        /// The configured width.
        width: u32,
        /// The configured height.
        height: u32,
        /// Frame rate numerator.
        num: u32,
        /// Frame rate denominator.
        den: u32,
    },
}

/// Where the scene's elements go, fixed at construction.
#[derive(Debug, Clone)]
struct Layout {
    /// Font pixel size of the clock.
    scale: usize,
    /// Top-left of the clock text.
    clock: (usize, usize),
    /// Font pixel size of the frame counter.
    counter_scale: usize,
    /// Top-left of the frame counter.
    counter: (usize, usize),
    /// Bar: top-left of its track, track width, bar width and height.
    bar: (usize, usize, usize, usize, usize),
}

impl Layout {
    /// Centres the scene. The clock is 12 glyphs of 6×7 font pixels; below
    /// it, after 2 font pixels, the counter at half size, then the bar.
    fn new(width: usize, height: usize) -> Self {
        const CLOCK_CHARS: usize = 12;
        let scale = ((width - 16) / (CLOCK_CHARS * font::CELL_WIDTH))
            .min((height - 16) / 20)
            .max(1);
        let counter_scale = (scale / 2).max(1);
        let text_w = CLOCK_CHARS * font::CELL_WIDTH * scale - scale;
        let bar_h = 2 * scale;
        let block_h = font::GLYPH_HEIGHT * scale
            + 2 * scale
            + font::GLYPH_HEIGHT * counter_scale
            + 2 * scale
            + bar_h;
        let even = |v: usize| v & !1;
        let x0 = even(width.saturating_sub(text_w) / 2);
        let y0 = even(height.saturating_sub(block_h) / 2);
        let counter_y = y0 + (font::GLYPH_HEIGHT + 2) * scale;
        let bar_y = even(counter_y + font::GLYPH_HEIGHT * counter_scale + 2 * scale);
        Self {
            scale,
            clock: (x0, y0),
            counter_scale,
            counter: (x0, counter_y),
            bar: (x0, bar_y, even(text_w), 4 * scale, bar_h),
        }
    }
}

/// `HH:MM:SS.mmm` of a Unix time in milliseconds (UTC, no leap seconds).
fn clock_text(unix_ms: i64) -> String {
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// The demo's live source: a running-clock H.264 video track and an AAC-LC
/// audio track. See the crate docs for the contract.
#[derive(Debug)]
pub struct ClockSource {
    stream: h264::StreamConfig,
    layout: Layout,
    frames_per_gop: u64,
    sps: Bytes,
    pps: Bytes,
    avcc: Bytes,
    /// The previous picture, i.e. the decoder's reference picture.
    picture: Option<Picture>,
    /// Index of the next video frame.
    video_index: u64,
    /// IDR pictures emitted so far (drives `idr_pic_id`).
    idr_count: u64,
    /// Wall clock minus video media time of the latest video frame, in ms.
    wall_offset_ms: i64,
    silent: Bytes,
    beep: Vec<Bytes>,
    /// Index of the next audio frame.
    audio_index: u64,
    /// Next beep frame to emit while a beep plays.
    beep_pos: Option<usize>,
    /// Wall-clock second (Unix) of the latest beep or of the start.
    last_beep_second: Option<i64>,
}

impl ClockSource {
    /// Creates a source; nothing is encoded until the first call to
    /// [`ClockSource::next_video_frame`].
    ///
    /// # Errors
    /// [`ConfigError`] when the size, frame rate or keyframe interval is out
    /// of range.
    pub fn new(config: ClockConfig) -> Result<Self, ConfigError> {
        let ClockConfig {
            width,
            height,
            frame_rate: (num, den),
            keyframe_interval,
        } = config;
        if !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || !(96..=8192).contains(&width)
            || !(64..=8192).contains(&height)
        {
            return Err(ConfigError::InvalidSize { width, height });
        }
        if num == 0 || den == 0 || u64::from(num) > 1000 * u64::from(den) || num > u32::MAX / 2 {
            return Err(ConfigError::InvalidFrameRate { num, den });
        }
        if keyframe_interval.is_zero() {
            return Err(ConfigError::InvalidKeyframeInterval);
        }
        let level_idc = h264::choose_level(
            width.div_ceil(16).into(),
            height.div_ceil(16).into(),
            num.into(),
            den.into(),
        )
        .ok_or(ConfigError::NoLevel {
            width,
            height,
            num,
            den,
        })?;
        // Frames per GOP = round(interval × num / den).
        let frames_per_gop = {
            let n = keyframe_interval.as_nanos() * u128::from(num);
            let d = 1_000_000_000u128 * u128::from(den);
            u64::try_from((n + d / 2) / d).unwrap_or(u64::MAX).max(1)
        };
        // Enough frame_num bits that a GOP never wraps, within 4..=16.
        let log2_max_frame_num = (64 - (frames_per_gop - 1).leading_zeros()).clamp(4, 16);
        let stream = h264::StreamConfig {
            width,
            height,
            fps_num: num,
            fps_den: den,
            level_idc,
            log2_max_frame_num,
        };
        let sps = h264::sps(&stream);
        let pps = h264::pps();
        let avcc = h264::avc_decoder_configuration_record(&sps, &pps);
        Ok(Self {
            layout: Layout::new(width as usize, height as usize),
            stream,
            frames_per_gop,
            sps: sps.into(),
            pps: pps.into(),
            avcc: avcc.into(),
            picture: None,
            video_index: 0,
            idr_count: 0,
            wall_offset_ms: 0,
            silent: aac::silent_frame().into(),
            beep: aac::beep_frames(),
            audio_index: 0,
            beep_pos: None,
            last_beep_second: None,
        })
    }

    /// The video track: H.264, the configured size and frame rate, codec
    /// string `avc1.42c0LL` (Constrained Baseline at level `LL`) and the
    /// `avcC` payload carrying the SPS and PPS.
    pub fn video_params(&self) -> TrackParams {
        TrackParams::Video(VideoParams {
            codec: VideoCodec::H264,
            width: self.stream.width,
            height: self.stream.height,
            frame_rate: Some((self.stream.fps_num, self.stream.fps_den)),
            codec_string: format!(
                "avc1.{:02x}{:02x}{:02x}",
                h264::PROFILE_IDC,
                h264::CONSTRAINT_FLAGS,
                self.stream.level_idc
            ),
            decoder_config: self.avcc.clone(),
        })
    }

    /// The audio track: AAC-LC (`mp4a.40.2`), 48 kHz, mono, 1024 samples per
    /// frame; the decoder config is the AudioSpecificConfig `11 88`.
    pub fn audio_params(&self) -> TrackParams {
        TrackParams::Audio(AudioParams {
            codec: AudioCodec::Aac,
            sample_rate: AUDIO_TIMESCALE,
            channels: 1,
            samples_per_frame: SAMPLES_PER_FRAME,
            codec_string: "mp4a.40.2".to_owned(),
            decoder_config: aac::audio_specific_config().into(),
            language: None,
        })
    }

    /// Time between video frames (`den / num` seconds, truncated to whole
    /// nanoseconds).
    pub fn video_frame_duration(&self) -> Duration {
        Duration::from_nanos(
            u64::from(self.stream.fps_den) * 1_000_000_000 / u64::from(self.stream.fps_num),
        )
    }

    /// Time between audio frames: 1024 / 48 000 s ≈ 21.33 ms.
    pub fn audio_frame_duration(&self) -> Duration {
        MediaTime::new(SAMPLES_PER_FRAME.into(), AUDIO_TIMESCALE)
            .to_duration()
            .expect("a frame lasts a positive time")
    }

    /// The 90 kHz presentation time of video frame `n`: `n × 90000 × den /
    /// num`, rounded.
    fn video_pts(&self, n: u64) -> i64 {
        let num = u128::from(n) * 90_000 * u128::from(self.stream.fps_den);
        let den = u128::from(self.stream.fps_num);
        i64::try_from((num + den / 2) / den).expect("video pts fits i64")
    }

    /// Encodes the next video frame, showing `wall_clock_unix_ms` (Unix time
    /// in milliseconds, drawn as UTC `HH:MM:SS.mmm`).
    ///
    /// Frame `n` has `pts = dts = round(n × 90000 × den / num)`; frames at
    /// multiples of the keyframe interval are IDR pictures (`keyframe`). The
    /// data is one slice NAL unit with a 4-byte length prefix; the SPS and
    /// PPS are only in [`ClockSource::video_params`] (use
    /// [`ClockSource::to_annex_b`] for a raw `.h264` stream).
    pub fn next_video_frame(&mut self, wall_clock_unix_ms: i64) -> Frame {
        let n = self.video_index;
        self.video_index += 1;
        let pts = self.video_pts(n);
        self.wall_offset_ms = wall_clock_unix_ms - pts / 90;
        if n == 0 {
            // The beep schedule so far followed media time; restart it on
            // the wall clock without beeping at the jump.
            self.last_beep_second = None;
        }

        let pic = self.render(n, wall_clock_unix_ms);
        let gop_pos = n % self.frames_per_gop;
        let idr = gop_pos == 0;
        let params = h264::SliceParams {
            idr,
            frame_num: u32::try_from(gop_pos % (1 << self.stream.log2_max_frame_num))
                .expect("frame_num < 2^16"),
            idr_pic_id: u32::try_from(self.idr_count % 65_536).expect("idr_pic_id < 2^16"),
        };
        if idr {
            self.idr_count += 1;
        }
        let prev = if idr { None } else { self.picture.as_ref() };
        let nal = h264::encode_slice(&self.stream, params, &pic, prev);
        self.picture = Some(pic);

        let mut data = Vec::with_capacity(nal.len() + 4);
        data.extend_from_slice(
            &u32::try_from(nal.len())
                .expect("NAL unit < 4 GiB")
                .to_be_bytes(),
        );
        data.extend_from_slice(&nal);
        let pts = MediaTime::from_90khz(pts);
        Frame {
            pts,
            dts: pts,
            duration: None,
            keyframe: idr,
            data: data.into(),
        }
    }

    /// The picture of the latest video frame, exactly as a decoder outputs
    /// it (the encoding is lossless); `None` before the first frame.
    pub fn picture(&self) -> Option<&Picture> {
        self.picture.as_ref()
    }

    /// Draws frame `n` showing `unix_ms`.
    fn render(&self, n: u64, unix_ms: i64) -> Picture {
        let l = &self.layout;
        let mut pic = Picture::new(self.stream.width as usize, self.stream.height as usize);
        pic.draw_text(
            l.clock.0,
            l.clock.1,
            l.scale,
            &clock_text(unix_ms),
            TEXT_LUMA,
        );
        pic.draw_text(
            l.counter.0,
            l.counter.1,
            l.counter_scale,
            &format!("#{n}"),
            TEXT_LUMA,
        );
        // The bar sweeps its track once per (rounded) second of frames.
        let (bx, by, track_w, bar_w, bar_h) = l.bar;
        let period = u64::from(self.stream.fps_num.div_ceil(self.stream.fps_den)).max(2);
        let travel = track_w.saturating_sub(bar_w) as u64;
        let x = bx
            + usize::try_from((n % period) * travel / (period - 1))
                .expect("bar position fits usize");
        pic.fill_rect(x & !1, by, bar_w, bar_h, picture::BAR);
        pic
    }

    /// Returns the next audio frame: `pts = dts = 1024 × n` at 48 kHz,
    /// duration 1024, always a keyframe, data one raw_data_block.
    ///
    /// A beep starts when a second of the wall clock shown in the video
    /// begins: the wall clock of audio frame `n` is its media time plus the
    /// offset between the wall clock and media time of the latest video
    /// frame (zero before any), and the clip's priming frame is started one
    /// frame early so that the audible tone lines up with the tick.
    pub fn next_audio_frame(&mut self) -> Frame {
        let n = self.audio_index;
        self.audio_index += 1;
        let pts = i64::try_from(n * u64::from(SAMPLES_PER_FRAME)).expect("audio pts fits i64");
        let audible_ms =
            (pts + i64::from(aac::BEEP_PRIMING_SAMPLES)) * 1000 / i64::from(SAMPLE_RATE);
        let second = (audible_ms + self.wall_offset_ms).div_euclid(1000);
        match self.last_beep_second {
            None => self.last_beep_second = Some(second),
            Some(last) if second > last && self.beep_pos.is_none() => {
                self.last_beep_second = Some(second);
                self.beep_pos = Some(0);
            }
            Some(_) => {}
        }
        let data = match self.beep_pos {
            Some(i) => {
                let f = self.beep[i].clone();
                self.beep_pos = (i + 1 < self.beep.len()).then_some(i + 1);
                f
            }
            None => self.silent.clone(),
        };
        let pts = MediaTime::new(pts, AUDIO_TIMESCALE);
        Frame {
            pts,
            dts: pts,
            duration: Some(MediaTime::new(SAMPLES_PER_FRAME.into(), AUDIO_TIMESCALE)),
            keyframe: true,
            data,
        }
    }

    /// Converts a video frame of this source to Annex B byte stream format
    /// (ITU-T H.264 Annex B): a 4-byte start code before each NAL unit, and
    /// the SPS and PPS before every IDR picture.
    ///
    /// # Panics
    /// If `frame.data` is not 4-byte length-prefixed NAL units.
    pub fn to_annex_b(&self, frame: &Frame) -> Vec<u8> {
        const START: [u8; 4] = [0, 0, 0, 1];
        let mut out = Vec::with_capacity(frame.data.len() + self.sps.len() + self.pps.len() + 12);
        if frame.keyframe {
            for ps in [&self.sps, &self.pps] {
                out.extend_from_slice(&START);
                out.extend_from_slice(ps);
            }
        }
        let mut rest = &frame.data[..];
        while !rest.is_empty() {
            assert!(rest.len() >= 4, "truncated NAL unit length");
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            assert!(rest.len() >= 4 + len, "NAL unit length beyond the frame");
            out.extend_from_slice(&START);
            out.extend_from_slice(&rest[4..4 + len]);
            rest = &rest[4 + len..];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_text_formats_utc() {
        // 2024-01-02T12:34:56.789Z
        assert_eq!(clock_text(1_704_198_896_789), "12:34:56.789");
        assert_eq!(clock_text(-1), "23:59:59.999");
    }

    #[test]
    fn default_layout_and_params() {
        let src = ClockSource::new(ClockConfig::default()).expect("default config");
        let TrackParams::Video(v) = src.video_params() else {
            panic!("video")
        };
        assert_eq!((v.width, v.height, v.frame_rate), (640, 360, Some((30, 1))));
        assert_eq!(v.codec_string, "avc1.42c01e");
        assert_eq!(src.video_frame_duration(), Duration::from_nanos(33_333_333));
        let TrackParams::Audio(a) = src.audio_params() else {
            panic!("audio")
        };
        assert_eq!(&a.decoder_config[..], &[0x11, 0x88]);
        assert_eq!(src.layout.scale, 8);
    }

    #[test]
    fn digits_are_drawn_where_the_layout_says() {
        let mut src = ClockSource::new(ClockConfig::default()).expect("default config");
        src.next_video_frame(1_704_198_896_789); // 12:34:56.789
        let pic = src.picture().expect("a picture");
        let (x0, y0) = src.layout.clock;
        let s = src.layout.scale;
        let at = |glyph: usize, col: usize, row: usize| {
            pic.luma(x0 + glyph * 6 * s + col * s + s / 2, y0 + row * s + s / 2)
        };
        // '1' (glyph 0): column 2 is lit on every row, column 0 only on the last.
        for row in 0..7 {
            assert_eq!(at(0, 2, row), TEXT_LUMA, "row {row}");
        }
        assert_eq!(at(0, 0, 0), BACKGROUND_LUMA);
        assert_eq!(at(0, 0, 6), BACKGROUND_LUMA);
        // ':' (glyph 2): dots at columns 2-3, rows 1-2 and 4-5.
        assert_eq!(at(2, 2, 1), TEXT_LUMA);
        assert_eq!(at(2, 2, 3), BACKGROUND_LUMA);
        // '7' (glyph 9): top row fully lit.
        for col in 0..5 {
            assert_eq!(at(9, col, 0), TEXT_LUMA);
        }
        assert_eq!(pic.luma(2, 2), BACKGROUND_LUMA);
    }

    #[test]
    fn gop_structure_and_timestamps() {
        let mut src = ClockSource::new(ClockConfig::default()).expect("default config");
        let frames: Vec<Frame> = (0..61).map(|i| src.next_video_frame(i * 33)).collect();
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.keyframe, i % 30 == 0, "frame {i}");
            assert_eq!(f.pts, MediaTime::from_90khz(i as i64 * 3000));
            assert_eq!(f.dts, f.pts);
            let len = u32::from_be_bytes(f.data[..4].try_into().expect("4 bytes")) as usize;
            assert_eq!(len + 4, f.data.len());
            assert_eq!(f.data[4] & 0x1F, if f.keyframe { 5 } else { 1 });
        }
        let annex_b = src.to_annex_b(&frames[60]);
        assert_eq!(&annex_b[..5], &[0, 0, 0, 1, 0x67]);
    }

    #[test]
    fn audio_beeps_once_per_second() {
        let mut src = ClockSource::new(ClockConfig::default()).expect("default config");
        let silent = aac::silent_frame();
        let beep_len = aac::beep_frames().len();
        // Just under 10 s of audio (46.875 frames per second): 9 second boundaries.
        let frames: Vec<Frame> = (0..468).map(|_| src.next_audio_frame()).collect();
        let starts: Vec<i64> = frames
            .windows(2)
            .filter(|w| w[0].data[..] == silent[..] && w[1].data[..] != silent[..])
            .map(|w| w[1].pts.ticks())
            .collect();
        assert_eq!(starts.len(), 9, "{starts:?}");
        for (k, &pts) in starts.iter().enumerate() {
            // Started one frame before the second boundary (priming).
            let boundary = (k as i64 + 1) * 48_000;
            assert!(
                pts + 1024 >= boundary && pts < boundary,
                "beep {k} at {pts}"
            );
        }
        assert!(
            frames
                .iter()
                .all(|f| f.duration == Some(MediaTime::new(1024, AUDIO_TIMESCALE)) && f.keyframe)
        );
        assert_eq!(frames[10].pts, MediaTime::new(10 * 1024, AUDIO_TIMESCALE));
        assert!(beep_len > 1);
    }

    #[test]
    fn beep_follows_the_wall_clock_of_the_video() {
        let mut src = ClockSource::new(ClockConfig::default()).expect("default config");
        let silent = aac::silent_frame();
        for _ in 0..10 {
            src.next_audio_frame();
        }
        // Video starts at 12:34:56.300: the next tick is 700 ms of media time
        // after video frame 0.
        src.next_video_frame(1_704_198_896_300);
        let first_beep = (0..100)
            .map(|_| src.next_audio_frame())
            .find(|f| f.data[..] != silent[..])
            .expect("a beep within ~2 s");
        let tick = 700 * 48;
        let pts = first_beep.pts.ticks();
        assert!(pts + 1024 >= tick && pts < tick, "{pts}");
    }
}
