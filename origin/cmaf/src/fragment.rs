//! Movie fragments (`moof` + `mdat`) and the segment type box.

use bytes::Bytes;
use livestack_media::model::MediaTime;

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
/// any [`try_fragment`] error (sizes or times beyond what `tfdt` and `trun`
/// can express, times off the track's clock), the result is an empty
/// [`Bytes`].
pub fn fragment(sequence_number: u32, tracks: &[FragmentTrack<'_>]) -> Bytes {
    // Documented contract: input the box format cannot carry gives an empty Bytes; callers that must know use the try_ variant.
    try_fragment(sequence_number, tracks).unwrap_or_default()
}

/// The integer fields of one sample in a `trun`.
struct TrunEntry {
    duration: u32,
    size: u32,
    flags: u32,
    composition_offset: i32,
}

/// A track's `tfdt` and `trun` fields, converted from its media times.
struct Run {
    base_media_decode_time: u64,
    entries: Vec<TrunEntry>,
}

/// Converts a track's times and sizes into `tfdt` and `trun` fields, or
/// says which one does not fit (ISO/IEC 14496-12 §8.8.8, §8.8.12).
fn run_of(track: &FragmentTrack<'_>) -> Result<Run, Error> {
    let track_id = track.track_id;
    let on_clock = |value: MediaTime| {
        if value.timescale() == track.timescale {
            Ok(value.ticks())
        } else {
            Err(Error::WrongTimescale {
                track_id,
                value,
                timescale: track.timescale,
            })
        }
    };
    let count = track.samples.len();
    if u32::try_from(count).is_err() {
        return Err(Error::TooManySamples { track_id, count });
    }
    let base = track.base_media_decode_time;
    let base_media_decode_time =
        u64::try_from(on_clock(base)?).map_err(|_| Error::NegativeDecodeTime {
            track_id,
            value: base,
        })?;
    let mut entries = Vec::with_capacity(count);
    for (index, sample) in track.samples.iter().enumerate() {
        let len = sample.data.len();
        let size = u32::try_from(len).map_err(|_| Error::SampleTooLarge {
            track_id,
            index,
            len,
        })?;
        let value = sample.duration;
        let duration =
            u32::try_from(on_clock(value)?).map_err(|_| Error::SampleDurationOutOfRange {
                track_id,
                index,
                value,
            })?;
        let value = sample.composition_offset;
        let composition_offset =
            i32::try_from(on_clock(value)?).map_err(|_| Error::CompositionOffsetOutOfRange {
                track_id,
                index,
                value,
            })?;
        entries.push(TrunEntry {
            duration,
            size,
            flags: sample_flags(sample),
            composition_offset,
        });
    }
    Ok(Run {
        base_media_decode_time,
        entries,
    })
}

/// [`fragment`], reporting input it cannot express as an [`Error`]. No
/// samples at all is not an error: the result is an empty [`Bytes`].
///
/// # Errors
/// A sample too large or a track with too many samples for `trun`, a time
/// off the track's clock, a negative decode time, a duration or composition
/// offset outside the 32-bit `trun` fields, a data offset beyond 2 GiB.
pub fn try_fragment(sequence_number: u32, tracks: &[FragmentTrack<'_>]) -> Result<Bytes, Error> {
    let tracks: Vec<&FragmentTrack<'_>> = tracks.iter().filter(|t| !t.samples.is_empty()).collect();
    if tracks.is_empty() {
        return Ok(Bytes::new());
    }

    // Convert and validate every time and size before writing, totalling
    // the mdat payload.
    let mut runs = Vec::with_capacity(tracks.len());
    let mut data_len: u64 = 0;
    let mut moof_len: usize = 8 + 16;
    for track in &tracks {
        let run = run_of(track)?;
        data_len += run.entries.iter().map(|e| u64::from(e.size)).sum::<u64>();
        moof_len = moof_len.saturating_add(8 + 16 + 20 + 20 + 16 * run.entries.len());
        runs.push(run);
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
        for (track, run) in tracks.iter().zip(&runs) {
            w.boxed(b"traf", |w| {
                w.full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |w| {
                    w.u32(track.track_id);
                });
                w.full_box(b"tfdt", 1, 0, |w| w.u64(run.base_media_decode_time));
                data_offset_at.push(write_trun(w, &run.entries));
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

/// Writes a `trun` version 1 for `entries` with a zero `data_offset` and
/// returns the position of that field, to be patched once the size of the
/// `moof` is known. The entry count was checked to fit 32 bits.
fn write_trun(w: &mut BoxWriter, entries: &[TrunEntry]) -> usize {
    let with_cto = entries.iter().any(|e| e.composition_offset != 0);
    let mut flags = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE | TRUN_SAMPLE_FLAGS;
    if with_cto {
        flags |= TRUN_SAMPLE_CTO;
    }
    let mut data_offset_at = 0;
    w.full_box(b"trun", 1, flags, |w| {
        w.u32(entries.len() as u32);
        data_offset_at = w.len();
        w.i32(0);
        for e in entries {
            w.u32(e.duration);
            w.u32(e.size);
            w.u32(e.flags);
            if with_cto {
                w.i32(e.composition_offset);
            }
        }
    });
    data_offset_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use livestack_media::model::Timescale;

    const V: Timescale = Timescale::MPEG_TS;

    fn sample(duration: i64, cto: i64, keyframe: bool, data: &'static [u8]) -> Sample {
        Sample {
            duration: MediaTime::new(duration, V),
            composition_offset: MediaTime::new(cto, V),
            keyframe,
            data: Bytes::from_static(data),
        }
    }

    fn track(base: i64, samples: &[Sample]) -> FragmentTrack<'_> {
        FragmentTrack {
            track_id: 1,
            timescale: V,
            base_media_decode_time: MediaTime::new(base, V),
            samples,
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
        assert_eq!(try_fragment(1, &[track(0, &[])]), Ok(Bytes::new()));
    }

    /// A two-sample video run with B-frame offsets, byte for byte.
    #[test]
    fn video_fragment_bytes() {
        let samples = [
            sample(3600, 7200, true, b"\x01\x02\x03"),
            sample(3600, -3600, false, b"\x04\x05"),
        ];
        let frag = fragment(5, &[track(0x1_0000_0002, &samples)]);
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
                track(0, &a),
                FragmentTrack {
                    track_id: 3,
                    ..track(0, &[])
                },
                FragmentTrack {
                    track_id: 2,
                    ..track(0, &b)
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

    /// Times the `tfdt` and `trun` fields cannot hold are errors naming the
    /// sample, never zeros.
    #[test]
    fn times_that_do_not_fit_are_errors() {
        let ok = [sample(3600, 0, true, b"x")];
        assert!(try_fragment(1, &[track(0, &ok)]).is_ok_and(|b| !b.is_empty()));
        let at = |ticks| MediaTime::new(ticks, V);
        assert_eq!(
            try_fragment(1, &[track(-1, &ok)]),
            Err(Error::NegativeDecodeTime {
                track_id: 1,
                value: at(-1)
            })
        );
        let long = [sample(3600, 0, true, b"x"), sample(1 << 32, 0, false, b"y")];
        assert_eq!(
            try_fragment(1, &[track(0, &long)]),
            Err(Error::SampleDurationOutOfRange {
                track_id: 1,
                index: 1,
                value: at(1 << 32)
            })
        );
        let negative = [sample(-1, 0, true, b"x")];
        assert!(matches!(
            try_fragment(1, &[track(0, &negative)]),
            Err(Error::SampleDurationOutOfRange { index: 0, .. })
        ));
        let far = [sample(3600, i64::from(i32::MIN) - 1, true, b"x")];
        assert!(matches!(
            try_fragment(1, &[track(0, &far)]),
            Err(Error::CompositionOffsetOutOfRange { index: 0, .. })
        ));
        // The same second on another clock is still the wrong clock.
        let audio = Timescale::HZ_48000;
        let off_clock = [Sample {
            duration: MediaTime::new(1024, audio),
            ..sample(0, 0, true, b"x")
        }];
        assert_eq!(
            try_fragment(1, &[track(0, &off_clock)]),
            Err(Error::WrongTimescale {
                track_id: 1,
                value: MediaTime::new(1024, audio),
                timescale: V
            })
        );
        assert!(fragment(1, &[track(-1, &ok)]).is_empty());
    }
}
