//! Decodes the writer's output with an independent parser (`mp4-atom`) and
//! a hand-rolled box walker, and checks every field the writer sets.

mod common;

use bytes::Bytes;
use livestack_cmaf::{FragmentTrack, InitTrack, Sample, fragment, init_segment, styp};
use livestack_media::model::{
    AudioCodec, AudioParams, MediaTime, Timescale, TrackParams, VideoCodec, VideoParams,
};
use mp4_atom::{Codec, Decode, Ftyp, Mdat, Moof, Moov, Styp};

const SPS: &[u8] = &[
    0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 0xA0, 0x3D, 0xA1, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
    0x03, 0x00, 0x32, 0x0F, 0x16, 0x2E, 0x48,
];
const PPS: &[u8] = &[0x68, 0xCB, 0x83, 0xCB, 0x20];

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1) for SPS/PPS.
fn avcc() -> Bytes {
    let mut v = vec![1, SPS[1], SPS[2], SPS[3], 0xFF, 0xE1];
    v.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
    v.extend_from_slice(SPS);
    v.push(1);
    v.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
    v.extend_from_slice(PPS);
    v.into()
}

/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1), Main profile
/// level 3.1, with one dummy VPS, SPS and PPS.
fn hvcc() -> Bytes {
    let mut v = vec![
        1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0,
        0x0F, 3,
    ];
    for (nal_type, nal) in [
        (32u8, &[0x40, 0x01, 0x0C][..]),
        (33, &[0x42, 0x01, 0x01]),
        (34, &[0x44, 0x01]),
    ] {
        v.push(0x80 | nal_type);
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        v.extend_from_slice(nal);
    }
    v.into()
}

fn video(codec: VideoCodec, decoder_config: Bytes) -> TrackParams {
    TrackParams::Video(VideoParams {
        codec,
        width: 320,
        height: 240,
        frame_rate: Some((25, 1)),
        codec_string: "avc1.42c01e".into(),
        decoder_config,
    })
}

fn audio(codec: AudioCodec, channels: u8, decoder_config: &'static [u8]) -> TrackParams {
    TrackParams::Audio(AudioParams {
        codec,
        sample_rate: Timescale::HZ_48000,
        channels,
        samples_per_frame: 1024,
        codec_string: "mp4a.40.2".into(),
        decoder_config: Bytes::from_static(decoder_config),
        language: None,
    })
}

/// AAC-LC, 48 kHz, mono.
const ASC: &[u8] = &[0x11, 0x88];
/// Version 0, 2 channels, pre-skip 312, 48 kHz, gain 0, family 0.
const DOPS: &[u8] = &[0, 2, 0x01, 0x38, 0, 0, 0xBB, 0x80, 0, 0, 0];

#[test]
fn init_segment_h264_aac() {
    let v = video(VideoCodec::H264, avcc());
    let a = audio(AudioCodec::Aac, 1, ASC);
    let init = init_segment(&[
        InitTrack {
            track_id: 1,
            params: &v,
        },
        InitTrack {
            track_id: 2,
            params: &a,
        },
    ]);

    let mut buf = &init[..];
    let ftyp = Ftyp::decode(&mut buf).expect("ftyp");
    assert_eq!(ftyp.major_brand, b"iso6".into());
    assert_eq!(ftyp.minor_version, 0);
    assert!(ftyp.compatible_brands.contains(&b"cmfc".into()));
    let moov = Moov::decode(&mut buf).expect("moov");
    assert!(buf.is_empty(), "nothing after moov");

    assert_eq!(moov.mvhd.timescale, 1000);
    assert_eq!(moov.mvhd.duration, 0);
    assert_eq!(moov.mvhd.next_track_id, 3);
    assert_eq!(moov.trak.len(), 2);

    // Video track.
    let trak = &moov.trak[0];
    assert_eq!(trak.tkhd.track_id, 1);
    assert!(trak.tkhd.enabled);
    assert_eq!(trak.tkhd.width.integer(), 320);
    assert_eq!(trak.tkhd.height.integer(), 240);
    assert_eq!(trak.tkhd.volume.integer(), 0);
    assert_eq!(trak.mdia.mdhd.timescale, 90_000);
    assert_eq!(trak.mdia.mdhd.language, "und");
    assert_eq!(trak.mdia.hdlr.handler, b"vide".into());
    assert!(trak.mdia.minf.vmhd.is_some());
    assert_eq!(trak.mdia.minf.dinf.dref.urls.len(), 1);
    let stbl = &trak.mdia.minf.stbl;
    assert!(stbl.stts.entries.is_empty());
    assert!(stbl.stsc.entries.is_empty());
    assert!(stbl.stco.as_ref().expect("stco").entries.is_empty());
    let [Codec::Avc1(avc1)] = &stbl.stsd.codecs[..] else {
        panic!("expected one avc1 entry: {:?}", stbl.stsd.codecs);
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (320, 240));
    assert_eq!(avc1.visual.data_reference_index, 1);
    assert_eq!(avc1.visual.depth, 0x18);
    assert_eq!(avc1.avcc.sequence_parameter_sets, [SPS.to_vec()]);
    assert_eq!(avc1.avcc.picture_parameter_sets, [PPS.to_vec()]);
    assert_eq!(avc1.avcc.length_size, 4);

    // Audio track.
    let trak = &moov.trak[1];
    assert_eq!(trak.tkhd.track_id, 2);
    assert_eq!(trak.tkhd.volume.integer(), 1);
    assert_eq!(trak.mdia.mdhd.timescale, 48_000);
    assert_eq!(trak.mdia.hdlr.handler, b"soun".into());
    assert!(trak.mdia.minf.smhd.is_some());
    let [Codec::Mp4a(mp4a)] = &trak.mdia.minf.stbl.stsd.codecs[..] else {
        panic!("expected one mp4a entry");
    };
    assert_eq!(mp4a.audio.channel_count, 1);
    assert_eq!(mp4a.audio.sample_size, 16);
    assert_eq!(mp4a.audio.sample_rate.integer(), 48_000);
    let dc = &mp4a.esds.es_desc.dec_config;
    assert_eq!(dc.object_type_indication, 0x40);
    assert_eq!(dc.stream_type, 0x05);
    assert_eq!(dc.dec_specific.profile, 2);
    assert_eq!(dc.dec_specific.freq_index, 3);
    assert_eq!(dc.dec_specific.chan_conf, 1);

    let mvex = moov.mvex.as_ref().expect("mvex");
    let ids: Vec<u32> = mvex.trex.iter().map(|t| t.track_id).collect();
    assert_eq!(ids, [1, 2]);
    for trex in &mvex.trex {
        assert_eq!(trex.default_sample_description_index, 1);
        assert_eq!(trex.default_sample_duration, 0);
        assert_eq!(trex.default_sample_size, 0);
        assert_eq!(trex.default_sample_flags, 0);
    }

    // The decoder configurations round-trip byte for byte.
    let moov_body = common::child(&init, b"moov").body;
    let traks: Vec<_> = common::atoms(moov_body)
        .into_iter()
        .filter(|a| &a.kind == b"trak")
        .collect();
    let avc1 = sample_entry(traks[0].body);
    assert_eq!(&avc1.kind, b"avc1");
    let children = entry_children(avc1);
    assert_eq!(&children[0].kind, b"avcC");
    assert_eq!(children[0].body, &avcc()[..]);

    let mp4a = sample_entry(traks[1].body);
    let esds = entry_children(mp4a)[0];
    assert_eq!(&esds.kind, b"esds");
    // version/flags, ES_Descriptor (5 + 3), DecoderConfigDescriptor (5 + 13),
    // then DecoderSpecificInfo: tag 5, 4-byte size, payload.
    let dsi = &esds.body[4 + 8 + 18..];
    assert_eq!(&dsi[..5], &[0x05, 0x80, 0x80, 0x80, ASC.len() as u8]);
    assert_eq!(&dsi[5..5 + ASC.len()], ASC);
}

#[test]
fn init_segment_h265_opus() {
    let v = video(VideoCodec::H265, hvcc());
    let a = audio(AudioCodec::Opus, 2, DOPS);
    let init = init_segment(&[
        InitTrack {
            track_id: 10,
            params: &v,
        },
        InitTrack {
            track_id: 11,
            params: &a,
        },
    ]);
    let mut buf = &init[..];
    Ftyp::decode(&mut buf).expect("ftyp");
    let moov = Moov::decode(&mut buf).expect("moov");
    assert_eq!(moov.mvhd.next_track_id, 12);

    let [Codec::Hvc1(hvc1)] = &moov.trak[0].mdia.minf.stbl.stsd.codecs[..] else {
        panic!("expected one hvc1 entry");
    };
    assert_eq!((hvc1.visual.width, hvc1.visual.height), (320, 240));
    assert_eq!(hvc1.hvcc.general_profile_idc, 1);
    assert_eq!(hvc1.hvcc.general_level_idc, 93);
    assert_eq!(hvc1.hvcc.arrays.len(), 3);

    let [Codec::Opus(opus)] = &moov.trak[1].mdia.minf.stbl.stsd.codecs[..] else {
        panic!("expected one Opus entry");
    };
    assert_eq!(opus.audio.channel_count, 2);
    assert_eq!(opus.audio.sample_rate.integer(), 48_000);
    assert_eq!(opus.dops.output_channel_count, 2);
    assert_eq!(opus.dops.pre_skip, 312);
    assert_eq!(opus.dops.input_sample_rate, 48_000);

    let moov_body = common::child(&init, b"moov").body;
    let traks: Vec<_> = common::atoms(moov_body)
        .into_iter()
        .filter(|a| &a.kind == b"trak")
        .collect();
    let hvcc_box = entry_children(sample_entry(traks[0].body))[0];
    assert_eq!(&hvcc_box.kind, b"hvcC");
    assert_eq!(hvcc_box.body, &hvcc()[..]);
    let dops_box = entry_children(sample_entry(traks[1].body))[0];
    assert_eq!(&dops_box.kind, b"dOps");
    assert_eq!(dops_box.body, DOPS);
}

fn sample(
    timescale: Timescale,
    duration: i64,
    cto: i64,
    keyframe: bool,
    len: usize,
    fill: u8,
) -> Sample {
    Sample {
        duration: MediaTime::new(duration, timescale),
        composition_offset: MediaTime::new(cto, timescale),
        keyframe,
        data: vec![fill; len].into(),
    }
}

#[test]
fn fragment_fields_and_data_offsets() {
    let (v, a) = (Timescale::MPEG_TS, Timescale::HZ_48000);
    let video = [
        sample(v, 3600, 7200, true, 1000, 0xA1),
        sample(v, 3600, -3600, false, 300, 0xA2),
        sample(v, 3600, 0, false, 200, 0xA3),
    ];
    let audio = [
        sample(a, 1024, 0, true, 200, 0xB1),
        sample(a, 1024, 0, true, 210, 0xB2),
    ];
    let tracks = [
        FragmentTrack {
            track_id: 1,
            timescale: v,
            base_media_decode_time: MediaTime::new(90_000 * 3600 * 24 * 365, v), // > 2^32
            samples: &video,
        },
        FragmentTrack {
            track_id: 2,
            timescale: a,
            base_media_decode_time: MediaTime::new(48_000, a),
            samples: &audio,
        },
    ];
    let frag = fragment(42, &tracks);

    let mut buf = &frag[..];
    let moof = Moof::decode(&mut buf).expect("moof");
    let mdat = Mdat::decode(&mut buf).expect("mdat");
    assert!(buf.is_empty(), "nothing after mdat");
    assert_eq!(moof.mfhd.sequence_number, 42);
    assert_eq!(moof.traf.len(), 2);
    // Sample data starts after the mdat header.
    let mut data_start = common::child(&frag, b"mdat").offset + 8;
    for (traf, track) in moof.traf.iter().zip(&tracks) {
        assert_eq!(traf.tfhd.track_id, track.track_id);
        assert_eq!(traf.tfhd.base_data_offset, None);
        assert_eq!(traf.tfhd.default_sample_flags, None);
        assert_eq!(
            i64::try_from(traf.tfdt.as_ref().expect("tfdt").base_media_decode_time).ok(),
            Some(track.base_media_decode_time.ticks())
        );
        let [trun] = &traf.trun[..] else {
            panic!("one trun per traf");
        };
        assert_eq!(trun.entries.len(), track.samples.len());
        let offset = usize::try_from(trun.data_offset.expect("data offset")).unwrap();
        assert_eq!(offset, data_start, "track {}", track.track_id);
        for (entry, sample) in trun.entries.iter().zip(track.samples) {
            assert_eq!(entry.duration.map(i64::from), Some(sample.duration.ticks()));
            assert_eq!(entry.size, Some(sample.data.len() as u32));
            let flags = if sample.keyframe {
                0x0200_0000
            } else {
                0x0101_0000
            };
            assert_eq!(entry.flags, Some(flags));
            let cto = entry.cts.unwrap_or(0);
            assert_eq!(i64::from(cto), sample.composition_offset.ticks());
            // The data offset points at this track's bytes in the mdat.
            assert_eq!(
                &frag[data_start..data_start + sample.data.len()],
                &sample.data[..]
            );
            data_start += sample.data.len();
        }
    }
    assert_eq!(data_start, frag.len());
    let expected: Vec<u8> = tracks
        .iter()
        .flat_map(|t| t.samples.iter().flat_map(|s| s.data.iter().copied()))
        .collect();
    assert_eq!(mdat.data, expected);
    // Audio has no composition offsets, so the field is left out.
    assert!(moof.traf[1].trun[0].entries.iter().all(|e| e.cts.is_none()));
}

#[test]
fn styp_decodes() {
    let bytes = styp();
    let mut buf = &bytes[..];
    let styp = Styp::decode(&mut buf).expect("styp");
    assert_eq!(styp.major_brand, b"cmfs".into());
    assert_eq!(styp.compatible_brands, [b"cmfs".into(), b"msdh".into()]);
    assert!(buf.is_empty());
    assert_eq!(common::find(&bytes, &[b"styp"]).body.len(), 16);
}

/// The sample entry inside a `trak` box body: `mdia/minf/stbl/stsd`, skip
/// version/flags and entry_count.
pub fn sample_entry(trak: &[u8]) -> common::Atom<'_> {
    let stsd = common::find(trak, &[b"mdia", b"minf", b"stbl", b"stsd"]);
    assert_eq!(&stsd.body[..8], &[0, 0, 0, 0, 0, 0, 0, 1], "one entry");
    let entries = common::atoms(&stsd.body[8..]);
    assert_eq!(entries.len(), 1);
    entries[0]
}

/// Byte offset of the fields of a visual (78) or audio (28) sample entry,
/// where its child boxes start.
pub fn entry_children(entry: common::Atom<'_>) -> Vec<common::Atom<'_>> {
    let fields = match &entry.kind {
        b"avc1" | b"hvc1" => 78,
        b"mp4a" | b"Opus" => 28,
        other => panic!("unexpected sample entry {other:?}"),
    };
    common::atoms(&entry.body[fields..])
}
