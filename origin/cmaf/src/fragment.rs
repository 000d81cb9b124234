//! Movie fragments (`moof` + `mdat`) and the segment type box.

use bytes::Bytes;

use crate::writer::BoxWriter;
use crate::{Error, FragmentTrack, Sample};

/// `sample_flags` of a sync sample (ISO/IEC 14496-12 §8.8.3.1):
/// `is_leading` 0, `sample_depends_on` 2 (depends on no other sample),
/// `sample_is_non_sync_sample` 0.
pub(crate) const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;

/// `sample_flags` of any other sample: `sample_depends_on` 1 (depends on
/// others), `sample_is_non_sync_sample` 1.
pub(crate) const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// `tfhd` flag `default-base-is-moof` (ISO/IEC 14496-12 §8.8.7.1): data
/// offsets count from the first byte of the enclosing `moof`, as CMAF
/// (ISO/IEC 23000-19) requires.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

/// `trun` flags, ISO/IEC 14496-12 §8.8.8.1.
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_SAMPLE_DURATION: u32 = 0x00_0100;
const TRUN_SAMPLE_SIZE: u32 = 0x00_0200;
const TRUN_SAMPLE_FLAGS: u32 = 0x00_0400;
const TRUN_SAMPLE_CTO: u32 = 0x00_0800;

/// `styp` brands: `cmfs`, a CMAF segment (ISO/IEC 23000-19), and `msdh`,
/// a DASH media segment (ISO/IEC 23009-1), which it also is. No `msix`: we write no `sidx`.
const STYP_MAJOR_BRAND: &[u8; 4] = b"cmfs";
const STYP_COMPATIBLE_BRANDS: [&[u8; 4]; 2] = [b"cmfs", b"msdh"];

/// The `sample_flags` of `sample`.
fn sample_flags(sample: &Sample) -> u32 {
    if sample.keyframe {
        SYNC_SAMPLE_FLAGS
    } else {
        NON_SYNC_SAMPLE_FLAGS
    }
}

/// A `styp` box (ISO/IEC 14496-12 §8.16.2) to put in front of the first
/// fragment of a CMAF segment (ISO/IEC 23000-19); optional for HLS.
pub fn styp() -> Bytes {
    let mut w = BoxWriter::with_capacity(24);
    w.boxed(b"styp", |w| {
        w.bytes(STYP_MAJOR_BRAND);
        w.u32(0); // minor_version
        for brand in STYP_COMPATIBLE_BRANDS {
            w.bytes(brand);
        }
    });
    w.finish()
}

/// One movie fragment (ISO/IEC 14496-12 §8.8.4; a CMAF fragment or chunk,
/// ISO/IEC 23000-19): a `moof` followed by one `mdat` that holds
/// every track's sample data, tracks in the order given.
///
/// The `moof` holds an `mfhd` with `sequence_number` (§8.8.5; start at 1 and
/// increase by one per fragment) and, for each track with samples, a `traf`
/// (§8.8.6) made of
/// - `tfhd` (§8.8.7) with `default-base-is-moof` and no other defaults,
/// - `tfdt` version 1 (§8.8.12) with the 64-bit `base_media_decode_time`,
/// - `trun` version 1 (§8.8.8) with a data offset and, per sample, duration,
///   size, flags and (unless all are zero) the signed composition offset.
///
/// Tracks without samples get no `traf`. When no track has samples, or on
/// any [`try_fragment`] error (sizes beyond what `trun` can express), the
/// result is an empty [`Bytes`].
pub fn fragment(sequence_number: u32, tracks: &[FragmentTrack<'_>]) -> Bytes {
    // Documented contract: input the box format cannot carry gives an empty Bytes; callers that must know use the try_ variant.
    try_fragment(sequence_number, tracks).unwrap_or_default()
}

/// [`fragment`], reporting input it cannot express as an [`Error`]. No
/// samples at all is not an error: the result is an empty [`Bytes`].
pub fn try_fragment(sequence_number: u32, tracks: &[FragmentTrack<'_>]) -> Result<Bytes, Error> {
    let tracks: Vec<&FragmentTrack<'_>> = tracks.iter().filter(|t| !t.samples.is_empty()).collect();
    if tracks.is_empty() {
        return Ok(Bytes::new());
    }

    // Validate every size before writing, totalling the mdat payload.
    let mut data_len: u64 = 0;
    let mut moof_len: usize = 8 + 16;
    for track in &tracks {
        let track_id = track.track_id;
        let count = track.samples.len();
        if u32::try_from(count).is_err() {
            return Err(Error::TooManySamples { track_id, count });
        }
        for (index, sample) in track.samples.iter().enumerate() {
            let len = sample.data.len();
            if u32::try_from(len).is_err() {
                return Err(Error::SampleTooLarge {
                    track_id,
                    index,
                    len,
                });
            }
            data_len += len as u64;
        }
        moof_len = moof_len.saturating_add(8 + 16 + 20 + 20 + 16 * count);
    }
    // An mdat of 4 GiB or more needs the 64-bit largesize header (§4.2).
    let mdat_header_len: u64 = if data_len + 8 > u32::MAX.into() {
        16
    } else {
        8
    };

    let capacity =
        usize::try_from(data_len).map_or(usize::MAX, |d| d.saturating_add(moof_len + 16));
    let mut w = BoxWriter::with_capacity(capacity);
    let mut data_offset_at = Vec::with_capacity(tracks.len());
    w.boxed(b"moof", |w| {
        w.full_box(b"mfhd", 0, 0, |w| w.u32(sequence_number));
        for track in &tracks {
            w.boxed(b"traf", |w| {
                w.full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |w| {
                    w.u32(track.track_id);
                });
                w.full_box(b"tfdt", 1, 0, |w| w.u64(track.base_media_decode_time));
                data_offset_at.push(write_trun(w, track.samples));
            });
        }
    });

    // Every run starts after the moof, the mdat header and the runs of the
    // tracks before it.
    let mut offset = w.len() as u64 + mdat_header_len;
    for (track, at) in tracks.iter().zip(data_offset_at) {
        let data_offset = i32::try_from(offset).map_err(|_| Error::DataOffsetOverflow {
            track_id: track.track_id,
        })?;
        w.patch_i32(at, data_offset);
        offset += track
            .samples
            .iter()
            .map(|s| s.data.len() as u64)
            .sum::<u64>();
    }

    // mdat, §8.1.1.
    if mdat_header_len == 8 {
        // data_len + 8 <= u32::MAX, checked above.
        w.u32((data_len + 8) as u32);
        w.bytes(b"mdat");
    } else {
        w.u32(1);
        w.bytes(b"mdat");
        w.u64(data_len + 16);
    }
    for track in &tracks {
        for sample in track.samples {
            w.bytes(&sample.data);
        }
    }
    Ok(w.finish())
}

/// Writes a `trun` version 1 for `samples` with a zero `data_offset` and
/// returns the position of that field, to be patched once the size of the
/// `moof` is known. The sample count and sizes were checked to fit 32 bits.
fn write_trun(w: &mut BoxWriter, samples: &[Sample]) -> usize {
    let with_cto = samples.iter().any(|s| s.composition_offset != 0);
    let mut flags = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE | TRUN_SAMPLE_FLAGS;
    if with_cto {
        flags |= TRUN_SAMPLE_CTO;
    }
    let mut data_offset_at = 0;
    w.full_box(b"trun", 1, flags, |w| {
        w.u32(samples.len() as u32);
        data_offset_at = w.len();
        w.i32(0);
        for sample in samples {
            w.u32(sample.duration);
            w.u32(sample.data.len() as u32);
            w.u32(sample_flags(sample));
            if with_cto {
                w.i32(sample.composition_offset);
            }
        }
    });
    data_offset_at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(duration: u32, cto: i32, keyframe: bool, data: &'static [u8]) -> Sample {
        Sample {
            duration,
            composition_offset: cto,
            keyframe,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn sample_flags_values() {
        assert_eq!(sample_flags(&sample(1, 0, true, b"")), 0x0200_0000);
        assert_eq!(sample_flags(&sample(1, 0, false, b"")), 0x0101_0000);
    }

    #[test]
    fn styp_bytes() {
        assert_eq!(&styp()[..], b"\0\0\0\x18stypcmfs\0\0\0\0cmfsmsdh");
    }

    #[test]
    fn no_samples_is_empty() {
        assert!(fragment(1, &[]).is_empty());
        let t = FragmentTrack {
            track_id: 1,
            base_media_decode_time: 0,
            samples: &[],
        };
        assert_eq!(try_fragment(1, &[t]), Ok(Bytes::new()));
    }

    /// A two-sample video run with B-frame offsets, byte for byte.
    #[test]
    fn video_fragment_bytes() {
        let samples = [
            sample(3600, 7200, true, b"\x01\x02\x03"),
            sample(3600, -3600, false, b"\x04\x05"),
        ];
        let frag = fragment(
            5,
            &[FragmentTrack {
                track_id: 1,
                base_media_decode_time: 0x1_0000_0002,
                samples: &samples,
            }],
        );
        let expected: &[u8] = &[
            0, 0, 0, 0x78, b'm', b'o', b'o', b'f', //
            0, 0, 0, 0x10, b'm', b'f', b'h', b'd', 0, 0, 0, 0, 0, 0, 0, 5, //
            0, 0, 0, 0x60, b't', b'r', b'a', b'f', //
            0, 0, 0, 0x10, b't', b'f', b'h', b'd', 0, 0x02, 0, 0, 0, 0, 0, 1, //
            0, 0, 0, 0x14, b't', b'f', b'd', b't', 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, //
            0, 0, 0, 0x34, b't', b'r', b'u', b'n', 1, 0, 0x0f, 0x01, // v1, flags 0xf01
            0, 0, 0, 2, // sample_count
            0, 0, 0, 0x80, // data_offset = 0x78 (moof) + 8 (mdat header)
            0, 0, 0x0e, 0x10, 0, 0, 0, 3, 0x02, 0, 0, 0, 0, 0, 0x1c, 0x20, //
            0, 0, 0x0e, 0x10, 0, 0, 0, 2, 0x01, 0x01, 0, 0, 0xff, 0xff, 0xf1, 0xf0, //
            0, 0, 0, 0x0d, b'm', b'd', b'a', b't', 1, 2, 3, 4, 5,
        ];
        assert_eq!(&frag[..], expected);
    }

    /// Audio-like runs (no composition offsets) leave the cto field out; the
    /// second track's data offset skips the first track's data; an empty
    /// track gets no traf.
    #[test]
    fn two_tracks_without_cto() {
        let a = [sample(1024, 0, true, b"\xaa\xaa")];
        let b = [
            sample(1024, 0, true, b"\xbb"),
            sample(1024, 0, true, b"\xcc"),
        ];
        let frag = fragment(
            1,
            &[
                FragmentTrack {
                    track_id: 1,
                    base_media_decode_time: 0,
                    samples: &a,
                },
                FragmentTrack {
                    track_id: 3,
                    base_media_decode_time: 0,
                    samples: &[],
                },
                FragmentTrack {
                    track_id: 2,
                    base_media_decode_time: 0,
                    samples: &b,
                },
            ],
        );
        // moof = 8 + mfhd 16 + traf (8 + 16 + 20 + trun (12 + 8 + 12 n)) × 2.
        let moof_len = 8 + 16 + (8 + 16 + 20 + 20 + 12) + (8 + 16 + 20 + 20 + 24);
        assert_eq!(frag.len(), moof_len + 8 + 4);
        assert_eq!(frag.windows(4).filter(|w| w == b"traf").count(), 2);
        let truns: Vec<usize> = frag
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == b"trun")
            .map(|(i, _)| i)
            .collect();
        // version 1, flags 0x000701: no composition offsets.
        assert_eq!(&frag[truns[0] + 4..truns[0] + 8], &[1, 0, 0x07, 0x01]);
        let offset = |at: usize| {
            i32::from_be_bytes(frag[at + 12..at + 16].try_into().expect("4 bytes")) as usize
        };
        assert_eq!(offset(truns[0]), moof_len + 8);
        assert_eq!(offset(truns[1]), moof_len + 8 + 2);
        assert_eq!(&frag[offset(truns[1])..], b"\xbb\xcc");
    }
}
