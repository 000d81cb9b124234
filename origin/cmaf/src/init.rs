//! The CMAF header (init segment): `ftyp` + `moov`.

use bytes::Bytes;
use livestack_media::model::{AudioCodec, AudioParams, TrackParams, VideoCodec, VideoParams};

use crate::writer::BoxWriter;
use crate::{Error, InitTrack};

/// `ftyp` brands.
///
/// - `iso6` (major and compatible): ISO/IEC 14496-12 brand that covers every
///   feature we use: `tfdt` version 1 and signed composition offsets in `trun`
///   version 1 (introduced with `iso4`), `default-base-is-moof` (`iso5`).
/// - `cmfc`: the CMAF structural brand (ISO/IEC 23000-19), declaring
///   the file a CMAF track.
/// - `isom`, `mp41`: the generic ISOBMFF / MP4 brands, for older parsers
///   that look for a brand they know before going on.
///
/// hls.js (MSE in Chromium and Firefox), Safari's native HLS and ffmpeg
/// accept this set; ffmpeg's own CMAF/DASH output uses the same family.
const MAJOR_BRAND: &[u8; 4] = b"iso6";
const COMPATIBLE_BRANDS: [&[u8; 4]; 4] = [b"iso6", b"cmfc", b"isom", b"mp41"];

/// The `moov` timescale (`mvhd`); only durations of the (empty) movie use it.
const MOVIE_TIMESCALE: u32 = 1000;

/// The unity transformation matrix of `mvhd` and `tkhd` (ISO/IEC 14496-12
/// §8.2.2.3), in 16.16 and 2.30 fixed point.
const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// `tkhd` flags: `track_enabled` | `track_in_movie` (ISO/IEC 14496-12 §8.3.2).
const TKHD_ENABLED_IN_MOVIE: u32 = 0x00_0003;

/// `mdhd` language `und` as three 5-bit `char - 0x60` values (ISO 639-2/T;
/// ISO/IEC 14496-12 §8.4.2.3).
const LANGUAGE_UND: u16 =
    ((b'u' - 0x60) as u16) << 10 | ((b'n' - 0x60) as u16) << 5 | (b'd' - 0x60) as u16;

/// Largest payload of an MPEG-4 descriptor with the 4-byte expandable size
/// (ISO/IEC 14496-1, expandable class size): 4 × 7 bits.
const MAX_DESCRIPTOR_LEN: usize = (1 << 28) - 1;

/// Bytes an `ES_Descriptor` adds around its AudioSpecificConfig, see
/// [`write_esds`].
const ESDS_OVERHEAD: usize = 32;

/// The sample entry of one track, checked before anything is written.
enum Entry<'a> {
    Avc(&'a VideoParams),
    Hevc(&'a VideoParams),
    Aac(&'a AudioParams),
    Opus(&'a AudioParams),
}

impl<'a> Entry<'a> {
    fn new(track: &InitTrack<'a>) -> Result<Self, Error> {
        let track_id = track.track_id;
        match track.params {
            TrackParams::Video(v) => match v.codec {
                VideoCodec::H264 => Ok(Entry::Avc(v)),
                VideoCodec::H265 => Ok(Entry::Hevc(v)),
                _ => Err(Error::UnsupportedCodec { track_id }),
            },
            TrackParams::Audio(a) => match a.codec {
                AudioCodec::Aac => {
                    let len = a.decoder_config.len();
                    if len > MAX_DESCRIPTOR_LEN - ESDS_OVERHEAD {
                        return Err(Error::DecoderConfigTooLarge { track_id, len });
                    }
                    Ok(Entry::Aac(a))
                }
                AudioCodec::Opus => Ok(Entry::Opus(a)),
                _ => Err(Error::UnsupportedCodec { track_id }),
            },
        }
    }
}

/// The CMAF header for `tracks`: `ftyp` + `moov` (ISO/IEC 14496-12 §4.3,
/// §8.2.1; the CMAF header of ISO/IEC 23000-19).
///
/// The `moov` holds an `mvhd`, one `trak` per track (in the given order) with
/// an empty sample table, and an `mvex` with one `trex` per track, so every
/// sample lives in movie fragments, see [`fragment`](crate::fragment).
///
/// Returns an empty [`Bytes`] when [`try_init_segment`] fails: a codec this
/// crate cannot describe, a track ID that is zero or repeated, or an
/// oversized AAC decoder configuration.
pub fn init_segment(tracks: &[InitTrack<'_>]) -> Bytes {
    // Documented contract: input the box format cannot carry gives an empty Bytes; callers that must know use the try_ variant.
    try_init_segment(tracks).unwrap_or_default()
}

/// [`init_segment`], reporting input it cannot express as an [`Error`].
pub fn try_init_segment(tracks: &[InitTrack<'_>]) -> Result<Bytes, Error> {
    let mut entries = Vec::with_capacity(tracks.len());
    for (i, track) in tracks.iter().enumerate() {
        let track_id = track.track_id;
        if track_id == 0 || tracks[..i].iter().any(|t| t.track_id == track_id) {
            return Err(Error::InvalidTrackId { track_id });
        }
        entries.push(Entry::new(track)?);
    }

    let config_len: usize = tracks.iter().map(|t| decoder_config(t.params).len()).sum();
    let mut w = BoxWriter::with_capacity(640 * tracks.len() + config_len + 64);
    write_ftyp(&mut w);
    w.boxed(b"moov", |w| {
        write_mvhd(w, tracks);
        for (track, entry) in tracks.iter().zip(&entries) {
            write_trak(w, track, entry);
        }
        w.boxed(b"mvex", |w| {
            for track in tracks {
                write_trex(w, track.track_id);
            }
        });
    });
    Ok(w.finish())
}

fn decoder_config(params: &TrackParams) -> &Bytes {
    match params {
        TrackParams::Video(v) => &v.decoder_config,
        TrackParams::Audio(a) => &a.decoder_config,
    }
}

/// `ftyp`, ISO/IEC 14496-12 §4.3.
fn write_ftyp(w: &mut BoxWriter) {
    w.boxed(b"ftyp", |w| {
        w.bytes(MAJOR_BRAND);
        w.u32(0); // minor_version
        for brand in COMPATIBLE_BRANDS {
            w.bytes(brand);
        }
    });
}

/// `mvhd` version 0, ISO/IEC 14496-12 §8.2.2.
fn write_mvhd(w: &mut BoxWriter, tracks: &[InitTrack<'_>]) {
    let max_id = tracks.iter().map(|t| t.track_id).max().unwrap_or(0);
    // 0xFFFFFFFF tells a writer adding tracks to search for a free ID.
    let next_track_id = max_id.saturating_add(1);
    w.full_box(b"mvhd", 0, 0, |w| {
        w.u32(0); // creation_time
        w.u32(0); // modification_time
        w.u32(MOVIE_TIMESCALE);
        w.u32(0); // duration: unknown, the movie is fragmented
        w.u32(0x0001_0000); // rate 1.0
        w.u16(0x0100); // volume 1.0
        w.zeros(2 + 8); // reserved
        write_matrix(w);
        w.zeros(6 * 4); // pre_defined
        w.u32(next_track_id);
    });
}

fn write_matrix(w: &mut BoxWriter) {
    for v in UNITY_MATRIX {
        w.u32(v);
    }
}

/// `trak`, ISO/IEC 14496-12 §8.3.1.
fn write_trak(w: &mut BoxWriter, track: &InitTrack<'_>, entry: &Entry<'_>) {
    w.boxed(b"trak", |w| {
        write_tkhd(w, track);
        w.boxed(b"mdia", |w| {
            write_mdhd(w, track.params.timescale().get());
            write_hdlr(w, track.params.is_video());
            w.boxed(b"minf", |w| {
                if track.params.is_video() {
                    // vmhd, §12.1.2: flags 1, graphicsmode copy, opcolor 0.
                    w.full_box(b"vmhd", 0, 1, |w| w.zeros(2 + 3 * 2));
                } else {
                    // smhd, §12.2.2: balance 0, reserved.
                    w.full_box(b"smhd", 0, 0, |w| w.zeros(2 + 2));
                }
                write_dinf(w);
                write_stbl(w, entry);
            });
        });
    });
}

/// `tkhd` version 0, ISO/IEC 14496-12 §8.3.2.
fn write_tkhd(w: &mut BoxWriter, track: &InitTrack<'_>) {
    let (volume, width, height) = match track.params {
        TrackParams::Video(v) => (0, dimension(v.width), dimension(v.height)),
        TrackParams::Audio(_) => (0x0100, 0, 0),
    };
    w.full_box(b"tkhd", 0, TKHD_ENABLED_IN_MOVIE, |w| {
        w.u32(0); // creation_time
        w.u32(0); // modification_time
        w.u32(track.track_id);
        w.u32(0); // reserved
        w.u32(0); // duration: unknown
        w.zeros(8); // reserved
        w.u16(0); // layer
        w.u16(0); // alternate_group
        w.u16(volume);
        w.u16(0); // reserved
        write_matrix(w);
        w.u32(u32::from(width) << 16); // 16.16 fixed point
        w.u32(u32::from(height) << 16);
    });
}

/// Picture dimensions are 16-bit in sample entries; larger values are not
/// valid H.264/H.265 sizes and saturate.
fn dimension(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// `mdhd` version 0, ISO/IEC 14496-12 §8.4.2.
fn write_mdhd(w: &mut BoxWriter, timescale: u32) {
    w.full_box(b"mdhd", 0, 0, |w| {
        w.u32(0); // creation_time
        w.u32(0); // modification_time
        w.u32(timescale);
        w.u32(0); // duration: unknown
        w.u16(LANGUAGE_UND); // pad bit 0 + language
        w.u16(0); // pre_defined
    });
}

/// `hdlr`, ISO/IEC 14496-12 §8.4.3.
fn write_hdlr(w: &mut BoxWriter, video: bool) {
    let (handler, name): (&[u8; 4], &[u8]) = if video {
        (b"vide", b"VideoHandler\0")
    } else {
        (b"soun", b"SoundHandler\0")
    };
    w.full_box(b"hdlr", 0, 0, |w| {
        w.u32(0); // pre_defined
        w.bytes(handler);
        w.zeros(3 * 4); // reserved
        w.bytes(name); // null-terminated UTF-8
    });
}

/// `dinf` with a `dref` holding one self-contained `url ` entry, ISO/IEC
/// 14496-12 §8.7.1-§8.7.2.
fn write_dinf(w: &mut BoxWriter) {
    w.boxed(b"dinf", |w| {
        w.full_box(b"dref", 0, 0, |w| {
            w.u32(1); // entry_count
            // Flag 1: the media data is in the same file as this box.
            w.full_box(b"url ", 0, 1, |_| {});
        });
    });
}

/// `stbl`, ISO/IEC 14496-12 §8.5.1: the sample description and the
/// mandatory sample tables, all empty (the samples are in fragments).
fn write_stbl(w: &mut BoxWriter, entry: &Entry<'_>) {
    w.boxed(b"stbl", |w| {
        // stsd, §8.5.2.
        w.full_box(b"stsd", 0, 0, |w| {
            w.u32(1); // entry_count
            write_sample_entry(w, entry);
        });
        // stts, §8.6.1.2: entry_count 0.
        w.full_box(b"stts", 0, 0, |w| w.u32(0));
        // stsc, §8.7.4: entry_count 0.
        w.full_box(b"stsc", 0, 0, |w| w.u32(0));
        // stsz, §8.7.3.2: sample_size 0, sample_count 0.
        w.full_box(b"stsz", 0, 0, |w| w.zeros(8));
        // stco, §8.7.5: entry_count 0.
        w.full_box(b"stco", 0, 0, |w| w.u32(0));
    });
}

fn write_sample_entry(w: &mut BoxWriter, entry: &Entry<'_>) {
    match entry {
        Entry::Avc(v) => write_visual_entry(w, b"avc1", b"avcC", v),
        Entry::Hevc(v) => write_visual_entry(w, b"hvc1", b"hvcC", v),
        Entry::Aac(a) => {
            write_audio_entry(w, b"mp4a", a.channels, a.sample_rate.get(), |w| {
                write_esds(w, &a.decoder_config);
            });
        }
        Entry::Opus(a) => {
            // Encapsulation of Opus in ISOBMFF §4.3.1: samplerate is 48000.
            write_audio_entry(w, b"Opus", a.channels, 48_000, |w| {
                // §4.3.2: dOps is a plain Box whose payload starts with
                // its own Version field.
                w.boxed(b"dOps", |w| w.bytes(&a.decoder_config));
            });
        }
    }
}

/// The `SampleEntry` fields, ISO/IEC 14496-12 §8.5.2.2.
fn write_sample_entry_header(w: &mut BoxWriter) {
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index: the `url ` entry
}

/// A `VisualSampleEntry` (ISO/IEC 14496-12 §12.1.3) `avc1` / `hvc1` with
/// its decoder configuration box `avcC` / `hvcC` (ISO/IEC 14496-15 §5.4.2,
/// §8.4.1). `hvc1` (not `hev1`) promises parameter sets only in `hvcC`,
/// which matches the in-band-free samples of the media model.
fn write_visual_entry(w: &mut BoxWriter, kind: &[u8; 4], config: &[u8; 4], v: &VideoParams) {
    w.boxed(kind, |w| {
        write_sample_entry_header(w);
        w.u16(0); // pre_defined
        w.u16(0); // reserved
        w.zeros(3 * 4); // pre_defined
        w.u16(dimension(v.width));
        w.u16(dimension(v.height));
        w.u32(0x0048_0000); // horizresolution 72 dpi
        w.u32(0x0048_0000); // vertresolution 72 dpi
        w.u32(0); // reserved
        w.u16(1); // frame_count
        w.zeros(32); // compressorname: empty Pascal string
        w.u16(0x0018); // depth: colour, no alpha
        w.i16(-1); // pre_defined
        w.boxed(config, |w| w.bytes(&v.decoder_config));
    });
}

/// An `AudioSampleEntry` version 0, ISO/IEC 14496-12 §12.2.3.
///
/// `samplerate` is 16.16 fixed point; rates above 65535 Hz do not fit and
/// are written as 0, the decoder takes the real rate from its configuration
/// (AudioSpecificConfig) and the media timescale.
fn write_audio_entry(
    w: &mut BoxWriter,
    kind: &[u8; 4],
    channels: u8,
    sample_rate: u32,
    config: impl FnOnce(&mut BoxWriter),
) {
    let rate = u16::try_from(sample_rate).map_or(0, |r| u32::from(r) << 16);
    w.boxed(kind, |w| {
        write_sample_entry_header(w);
        w.zeros(2 * 4); // reserved
        w.u16(channels.into());
        w.u16(16); // samplesize
        w.u16(0); // pre_defined
        w.u16(0); // reserved
        w.u32(rate);
        config(w);
    });
}

/// `esds` (ISO/IEC 14496-14): an `ES_Descriptor` (ISO/IEC 14496-1) with a
/// `DecoderConfigDescriptor` for MPEG-4 audio, whose `DecoderSpecificInfo`
/// is the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1), and the
/// `SLConfigDescriptor` with the MP4 predefined value 2.
///
/// `asc.len()` is at most `MAX_DESCRIPTOR_LEN - ESDS_OVERHEAD`, checked by
/// [`Entry::new`].
fn write_esds(w: &mut BoxWriter, asc: &[u8]) {
    const ES_DESCR_TAG: u8 = 0x03;
    const DECODER_CONFIG_DESCR_TAG: u8 = 0x04;
    const DEC_SPECIFIC_INFO_TAG: u8 = 0x05;
    const SL_CONFIG_DESCR_TAG: u8 = 0x06;
    /// objectTypeIndication: Audio ISO/IEC 14496-3.
    const OTI_MPEG4_AUDIO: u8 = 0x40;
    /// streamType 0x05 (AudioStream) << 2 | upStream 0 << 1 | reserved 1.
    const AUDIO_STREAM: u8 = 0x05 << 2 | 1;

    // Each descriptor: tag (1) + size (4) + payload.
    let dsi_len = asc.len();
    let dcd_len = 13 + 5 + dsi_len;
    let esd_len = 3 + (5 + dcd_len) + (5 + 1);
    debug_assert_eq!(esd_len, dsi_len + ESDS_OVERHEAD);

    w.full_box(b"esds", 0, 0, |w| {
        w.u8(ES_DESCR_TAG);
        w.bytes(&descriptor_len(esd_len));
        w.u16(0); // ES_ID: 0 in MP4 files (ISO/IEC 14496-14)
        w.u8(0); // no streamDependence, URL, OCR; streamPriority 0

        w.u8(DECODER_CONFIG_DESCR_TAG);
        w.bytes(&descriptor_len(dcd_len));
        w.u8(OTI_MPEG4_AUDIO);
        w.u8(AUDIO_STREAM);
        w.u24(0); // bufferSizeDB: unknown
        w.u32(0); // maxBitrate: unknown
        w.u32(0); // avgBitrate: 0 = variable bitrate

        w.u8(DEC_SPECIFIC_INFO_TAG);
        w.bytes(&descriptor_len(dsi_len));
        w.bytes(asc);

        w.u8(SL_CONFIG_DESCR_TAG);
        w.bytes(&descriptor_len(1));
        w.u8(2); // predefined: reserved for use in MP4 files
    });
}

/// The expandable size of an MPEG-4 descriptor (ISO/IEC 14496-1) in
/// its fixed 4-byte form, as most muxers write it. `len` is below 2^28.
fn descriptor_len(len: usize) -> [u8; 4] {
    debug_assert!(len <= MAX_DESCRIPTOR_LEN);
    let b = |shift: u32| ((len >> shift) & 0x7F) as u8;
    [0x80 | b(21), 0x80 | b(14), 0x80 | b(7), b(0)]
}

/// `trex`, ISO/IEC 14496-12 §8.8.3: sample description 1, no other
/// defaults (every `trun` carries its own values).
fn write_trex(w: &mut BoxWriter, track_id: u32) {
    w.full_box(b"trex", 0, 0, |w| {
        w.u32(track_id);
        w.u32(1); // default_sample_description_index
        w.u32(0); // default_sample_duration
        w.u32(0); // default_sample_size
        w.u32(0); // default_sample_flags
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use livestack_media::model::Timescale;

    fn aac(asc: &'static [u8]) -> TrackParams {
        TrackParams::Audio(AudioParams {
            codec: AudioCodec::Aac,
            sample_rate: Timescale::HZ_48000,
            channels: 1,
            samples_per_frame: 1024,
            codec_string: "mp4a.40.2".into(),
            decoder_config: Bytes::from_static(asc),
            language: None,
        })
    }

    /// Finds the first box of type `kind` anywhere in `data` by scanning for
    /// its type; good enough for the unique boxes these tests look at.
    fn find_box<'a>(data: &'a [u8], kind: &[u8; 4]) -> &'a [u8] {
        let at = data
            .windows(4)
            .position(|w| w == kind)
            .expect("box present")
            - 4;
        let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        &data[at..at + size]
    }

    #[test]
    fn ftyp_bytes() {
        let mut w = BoxWriter::default();
        write_ftyp(&mut w);
        assert_eq!(
            &w.finish()[..],
            b"\0\0\0\x20ftypiso6\0\0\0\0iso6cmfcisommp41"
        );
    }

    #[test]
    fn language_und() {
        assert_eq!(LANGUAGE_UND, 0x55C4);
    }

    #[test]
    fn descriptor_len_is_4_byte_expandable() {
        assert_eq!(descriptor_len(2), [0x80, 0x80, 0x80, 0x02]);
        assert_eq!(descriptor_len(0x1234), [0x80, 0x80, 0xA4, 0x34]);
        assert_eq!(descriptor_len(MAX_DESCRIPTOR_LEN), [0xFF, 0xFF, 0xFF, 0x7F]);
    }

    #[test]
    fn esds_bytes() {
        let mut w = BoxWriter::default();
        write_esds(&mut w, &[0x11, 0x88]);
        let expected: &[u8] = &[
            0, 0, 0, 0x33, b'e', b's', b'd', b's', 0, 0, 0, 0, // full box
            0x03, 0x80, 0x80, 0x80, 0x22, 0, 0, 0, // ES_Descriptor, ES_ID 0, flags
            0x04, 0x80, 0x80, 0x80, 0x14, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x80,
            0x80, 0x80, 0x02, 0x11, 0x88, // DecoderSpecificInfo
            0x06, 0x80, 0x80, 0x80, 0x01, 0x02, // SLConfigDescriptor
        ];
        assert_eq!(&w.finish()[..], expected);
    }

    #[test]
    fn trex_bytes() {
        let mut w = BoxWriter::default();
        write_trex(&mut w, 2);
        assert_eq!(
            &w.finish()[..],
            b"\0\0\0\x20trex\0\0\0\0\0\0\0\x02\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0"
        );
    }

    #[test]
    fn audio_entry_high_sample_rate_is_zero() {
        let mut w = BoxWriter::default();
        write_audio_entry(&mut w, b"mp4a", 2, 96_000, |_| {});
        let b = w.finish();
        assert_eq!(&b[8 + 8 + 8..], &[0, 2, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut w = BoxWriter::default();
        write_audio_entry(&mut w, b"mp4a", 1, 48_000, |_| {});
        assert_eq!(&w.finish()[8 + 8 + 8 + 8..], &[0xBB, 0x80, 0, 0]);
    }

    #[test]
    fn mdhd_and_hdlr_of_audio_track() {
        let params = aac(&[0x11, 0x88]);
        let init = init_segment(&[InitTrack {
            track_id: 1,
            params: &params,
        }]);
        assert_eq!(
            find_box(&init, b"mdhd"),
            b"\0\0\0\x20mdhd\0\0\0\0\0\0\0\0\0\0\0\0\0\0\xbb\x80\0\0\0\0\x55\xc4\0\0"
        );
        assert_eq!(
            find_box(&init, b"hdlr"),
            b"\0\0\0\x2dhdlr\0\0\0\0\0\0\0\0soun\0\0\0\0\0\0\0\0\0\0\0\0SoundHandler\0"
        );
        assert_eq!(
            find_box(&init, b"stsz"),
            b"\0\0\0\x14stsz\0\0\0\0\0\0\0\0\0\0\0\0"
        );
    }

    #[test]
    fn rejects_bad_track_ids() {
        let params = aac(&[0x11, 0x88]);
        let t = |track_id| InitTrack {
            track_id,
            params: &params,
        };
        assert_eq!(
            try_init_segment(&[t(0)]),
            Err(Error::InvalidTrackId { track_id: 0 })
        );
        assert_eq!(
            try_init_segment(&[t(1), t(2), t(1)]),
            Err(Error::InvalidTrackId { track_id: 1 })
        );
        assert!(init_segment(&[t(1), t(1)]).is_empty());
    }

    #[test]
    fn next_track_id_follows_the_largest() {
        let params = aac(&[0x11, 0x88]);
        let init = init_segment(&[
            InitTrack {
                track_id: 7,
                params: &params,
            },
            InitTrack {
                track_id: 3,
                params: &params,
            },
        ]);
        let mvhd = find_box(&init, b"mvhd");
        assert_eq!(mvhd.len(), 108);
        assert_eq!(&mvhd[104..], &[0, 0, 0, 8]);
    }
}
