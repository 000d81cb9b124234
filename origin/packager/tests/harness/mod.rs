//! A deterministic ingest → LL-HLS harness: a real MPEG-TS byte stream is
//! cut into SRT payloads (1316 bytes, 7 × 188), sent through a simulated
//! network with seeded loss and jitter, demuxed by
//! [`livestack_media::ingest::TsIngest`] and packaged by
//! [`livestack_packager::Broadcast`], the way the origin's SRT ingest and
//! stream owner drive them (`origin/server/src/srt.rs`, `streams.rs`).
//!
//! Nothing here sleeps or reads the clock to decide anything: time is a
//! simulated [`Duration`] since the start, handed to the sans-IO cores as
//! `now` (the wall clock for program-date-time is a fixed epoch plus that
//! time). The only real-time read is one [`Instant::now`] as the base of
//! the `Instant`s `Broadcast` stamps part availability with (an `Instant`
//! cannot be made otherwise); no output depends on it. The same input and
//! seed give byte-identical playlists, in milliseconds.
//!
//! The network model follows SRT (draft-sharabayko-srt, Timestamp-Based
//! Packet Delivery): the sender emits one payload every
//! [`Network::packet_interval`]; each is lost with probability
//! [`Network::loss_per_mille`] / 1000, or arrives after a uniformly random
//! delay up to [`Network::jitter`]. SRT delivers in order:
//! with [`Delivery::Tsbpd`] a payload is handed over exactly
//! [`Network::latency`] after it was sent, and one that arrives later than
//! that is dropped as too late (`TLPKTDROP`); with [`Delivery::OnArrival`]
//! it is handed over when it arrives, but never before its predecessor.
//! The model is in the spirit of str0m's `tests/common.rs` / `netem` and
//! quinn-proto's `Pair`: the whole run is a pure function of its inputs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use livestack_hls::SkipRequest;
use livestack_media::ingest::{IngestEvent, IngestStats, TsIngest};
use livestack_media::ts::{Timestamp33, parse_timestamp};
use livestack_packager::{
    Broadcast, BroadcastConfig, BroadcastEvent, PackagerConfig, PackagerStats, Rendition,
};

/// Bytes of an MPEG-TS packet (ISO/IEC 13818-1 §2.4.3.2).
pub const TS_PACKET: usize = 188;
/// Bytes of an SRT payload carrying MPEG-TS: 7 packets, the size every SRT
/// sender uses (it fits a 1500-byte MTU with the SRT and UDP/IP headers).
pub const SRT_PAYLOAD: usize = 7 * TS_PACKET;
/// The wall clock at simulated time zero, Unix milliseconds
/// (2023-11-14T22:13:20Z): fixed, so program-date-time is reproducible.
pub const EPOCH_UNIX_MS: i64 = 1_700_000_000_000;

/// A small deterministic generator (SplitMix64): no dependency, same
/// sequence on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// How the receiver hands payloads to the demuxer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// SRT's timestamp-based packet delivery: exactly `latency` after
    /// sending; later arrivals are dropped.
    Tsbpd,
    /// As soon as it arrives, in order (a receiver without a latency
    /// buffer).
    OnArrival,
}

/// The simulated path from the publisher to the origin.
#[derive(Debug, Clone)]
pub struct Network {
    /// Seed of the loss and jitter decisions.
    pub seed: u64,
    /// Payloads lost, per thousand.
    pub loss_per_mille: u64,
    /// Largest extra delay of a payload (uniform from zero).
    pub jitter: Duration,
    /// SRT receiver latency (TSBPD delay); 120 ms is SRT's default.
    pub latency: Duration,
    /// How payloads are handed over.
    pub delivery: Delivery,
    /// Time between two payloads at the sender (constant bit rate).
    pub packet_interval: Duration,
}

impl Network {
    /// A perfect network: no loss, no jitter, SRT delivery with the
    /// default 120 ms latency, a payload every 10 ms.
    pub fn perfect() -> Self {
        Self {
            seed: 0,
            loss_per_mille: 0,
            jitter: Duration::ZERO,
            latency: Duration::from_millis(120),
            delivery: Delivery::Tsbpd,
            packet_interval: Duration::from_millis(10),
        }
    }
}

/// What the network did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Payloads sent.
    pub sent: usize,
    /// Payloads lost on the way.
    pub lost: usize,
    /// Payloads that arrived after their TSBPD deadline and were dropped.
    pub late: usize,
}

/// One payload as the receiver hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Simulated time of the hand-over, since the start.
    pub at: Duration,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Sends `ts` through `net`: the payloads the receiver hands over, in
/// order, and what was lost.
pub fn transmit(ts: &[u8], net: &Network) -> (Vec<Delivered>, NetStats) {
    let mut rng = Rng::new(net.seed);
    let mut stats = NetStats::default();
    let mut out = Vec::new();
    let mut last_at = Duration::ZERO;
    let jitter_us = u64::try_from(net.jitter.as_micros()).expect("jitter below 500 000 years");
    for (index, bytes) in ts.chunks(SRT_PAYLOAD).enumerate() {
        stats.sent += 1;
        // Both decisions are drawn for every payload, so that the loss
        // pattern of a seed does not depend on the jitter and vice versa.
        let lost = rng.below(1000) < net.loss_per_mille;
        let delay = Duration::from_micros(rng.below(jitter_us + 1));
        if lost {
            stats.lost += 1;
            continue;
        }
        let sent_at = net.packet_interval * u32::try_from(index).expect("fewer than 2^32 payloads");
        let arrival = sent_at + delay;
        let at = match net.delivery {
            Delivery::Tsbpd if delay > net.latency => {
                stats.late += 1;
                continue;
            }
            Delivery::Tsbpd => sent_at + net.latency,
            Delivery::OnArrival => arrival.max(last_at),
        };
        last_at = at;
        out.push(Delivered {
            at,
            bytes: bytes.to_vec(),
        });
    }
    (out, stats)
}

/// Writes a 33-bit PTS/DTS into a 5-byte PES field, keeping its 4-bit
/// prefix and setting the marker bits (ISO/IEC 13818-1 §2.4.3.7).
fn write_timestamp(field: &mut [u8], t: Timestamp33) {
    let v = t.ticks();
    field[0] = (field[0] & 0xF0) | (((v >> 30) as u8 & 0x07) << 1) | 1;
    field[1] = (v >> 22) as u8;
    field[2] = (((v >> 15) as u8) << 1) | 1;
    field[3] = (v >> 7) as u8;
    field[4] = ((v as u8) << 1) | 1;
}

/// Adds `offset` (90 kHz, modulo 2³³) to the PTS and DTS of the PES header
/// starting at `pes` (a packet payload with `payload_unit_start_indicator`).
fn shift_pes(pes: &mut [u8], offset: u64) {
    // 00 00 01, stream_id (audio 0xC0.., video 0xE0..), length, flags,
    // PES_header_data_length, then PTS (and DTS) (§2.4.3.6, Table 2-21).
    if pes.len() < 9 || pes[..3] != [0, 0, 1] || !(0xC0..=0xEF).contains(&pes[3]) {
        return;
    }
    let fields = match pes[7] >> 6 {
        0b10 => 1,
        0b11 => 2,
        _ => 0,
    };
    for k in 0..fields {
        let at = 9 + 5 * k;
        let Some(field) = pes.get_mut(at..at + 5) else {
            return;
        };
        let bytes: [u8; 5] = (&*field).try_into().expect("5 bytes");
        let Ok(t) = parse_timestamp(bytes) else {
            return;
        };
        write_timestamp(field, Timestamp33::wrapping(t.ticks() + offset));
    }
}

/// The PES payload of a TS packet with `payload_unit_start_indicator`, or
/// `None` (no PES start, no payload).
fn pes_start(p: &[u8]) -> Option<&[u8]> {
    let afc = (p[3] >> 4) & 0x03;
    if p[1] & 0x40 == 0 || afc & 0b01 == 0 {
        return None;
    }
    let start = if afc & 0b10 != 0 {
        5 + usize::from(p[4])
    } else {
        4
    };
    p.get(start..)
}

/// The PTS of an audio PES (stream_id 0xC0..=0xDF) starting in packet `p`.
fn audio_pts(p: &[u8]) -> Option<u64> {
    let pes = pes_start(p)?;
    if pes.len() < 14 || pes[..3] != [0, 0, 1] || !(0xC0..=0xDF).contains(&pes[3]) {
        return None;
    }
    if pes[7] & 0x80 == 0 {
        return None;
    }
    let field: [u8; 5] = pes[9..14].try_into().ok()?;
    parse_timestamp(field).ok().map(Timestamp33::ticks)
}

/// Which packets of `ts` carry audio beyond `period` from the first audio
/// PES: the audio PES (and those after it) that would reach into the next
/// repetition. Without them a loop adds no overlapping audio (AAC
/// frames do not divide a video period: the source has 2.027 s of audio
/// for 2 s of video).
fn audio_beyond(ts: &[u8], period: u64) -> Vec<bool> {
    let packets: Vec<&[u8]> = ts.chunks(TS_PACKET).collect();
    let pid = |p: &[u8]| (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
    let mut starts: BTreeMap<u16, Vec<(usize, u64)>> = BTreeMap::new();
    for (i, p) in packets.iter().enumerate() {
        if let Some(pts) = audio_pts(p) {
            starts.entry(pid(p)).or_default().push((i, pts));
        }
    }
    let mut drop = vec![false; packets.len()];
    for (audio_pid, pes) in starts {
        // A PES ends where the next begins; the last one is taken to be as
        // long as the one before it.
        let seam = pes[0].1 + period;
        let ends: Vec<u64> = pes
            .windows(2)
            .map(|w| w[1].1)
            .chain(
                pes.len()
                    .checked_sub(2)
                    .map(|i| 2 * pes[i + 1].1 - pes[i].1),
            )
            .collect();
        let Some(first_dropped) = pes
            .iter()
            .zip(&ends)
            .find(|(_, end)| **end > seam)
            .map(|((i, _), _)| *i)
        else {
            continue;
        };
        for (i, p) in packets.iter().enumerate().skip(first_dropped) {
            if pid(p) == audio_pid {
                drop[i] = true;
            }
        }
    }
    drop
}

/// `ts` played `loops` times as one continuous live stream: repetition `k`
/// has its PTS and DTS shifted by `k × period` (90 kHz ticks) and every
/// continuity counter renumbered, so the demuxer sees neither a timestamp
/// jump nor a loss at the seams. `period` should be the source's video
/// duration, so that the frame cadence continues across the seams; audio
/// PES that would overlap the next repetition are left out (see
/// [`audio_beyond`]). PCRs are left alone (the demuxer does not use them).
pub fn loop_ts(ts: &[u8], loops: u64, period: u64) -> Vec<u8> {
    assert_eq!(ts.len() % TS_PACKET, 0, "whole TS packets");
    let beyond = audio_beyond(ts, period);
    let mut out = Vec::with_capacity(ts.len() * loops as usize);
    let mut cc: BTreeMap<u16, u8> = BTreeMap::new();
    for k in 0..loops {
        for (packet, _) in ts.chunks(TS_PACKET).zip(&beyond).filter(|(_, b)| !**b) {
            let mut p = packet.to_vec();
            assert_eq!(p[0], 0x47, "sync byte");
            let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
            let afc = (p[3] >> 4) & 0x03;
            if afc & 0b01 != 0 && pid != 0x1FFF {
                let next = cc.entry(pid).or_insert(p[3] & 0x0F);
                p[3] = (p[3] & 0xF0) | *next;
                *next = (*next + 1) & 0x0F;
                let pusi = p[1] & 0x40 != 0;
                let start = if afc & 0b10 != 0 {
                    5 + usize::from(p[4])
                } else {
                    4
                };
                if pusi && k > 0 && start < TS_PACKET {
                    shift_pes(&mut p[start..], k * period);
                }
            }
            out.extend_from_slice(&p);
        }
    }
    out
}

/// One part as the broadcast produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSeen {
    /// Its rendition.
    pub rendition: Rendition,
    /// `(media sequence number, part index)`.
    pub part: (u64, u32),
    /// Samples in its `trun`.
    pub samples: usize,
    /// Simulated time it was produced.
    pub at: Duration,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct Run {
    /// What the network did.
    pub net: NetStats,
    /// Frames the demuxer produced, per track id.
    pub frames_in: BTreeMap<u32, usize>,
    /// Times (simulated) of the demuxer's loss reports, per track id.
    pub losses: BTreeMap<u32, Vec<Duration>>,
    /// Times (simulated) the demuxer produced a keyframe, per track id.
    pub keyframes: BTreeMap<u32, Vec<Duration>>,
    /// Every part, in order.
    pub parts: Vec<PartSeen>,
    /// Every media playlist text published, in order (rendition name,
    /// text), as the origin renders on each `PlaylistChanged`.
    pub history: Vec<(String, String)>,
    /// The demuxer's counters.
    pub ingest: IngestStats,
    /// The packager's counters.
    pub packager: PackagerStats,
    /// The broadcast after the end of the input.
    pub broadcast: Broadcast,
}

impl Run {
    /// The final text of rendition `r`'s media playlist.
    pub fn playlist(&self, r: Rendition) -> String {
        let text = self
            .broadcast
            .media_playlist(r, SkipRequest::No)
            .expect("the rendition exists");
        String::from_utf8(text.to_vec()).expect("playlists are UTF-8")
    }

    /// The parts of rendition `r`, in order.
    pub fn parts_of(&self, r: Rendition) -> Vec<&PartSeen> {
        self.parts.iter().filter(|p| p.rendition == r).collect()
    }

    /// The texts every playlist had, in order of publication.
    pub fn transcript(&self) -> String {
        self.history
            .iter()
            .map(|(name, text)| format!("== {name}\n{text}"))
            .collect()
    }
}

/// The cutting parameters of the harness: 200 ms parts, 1 s segments (the
/// test stream has a 1 s GOP), a 2 s maximum and target duration, and a
/// window long enough to list every segment of a test run.
pub fn config() -> BroadcastConfig {
    BroadcastConfig {
        packager: PackagerConfig {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(1),
            max_segment: Duration::from_secs(2),
        },
        target_duration: Duration::from_secs(2),
        window_segments: 64,
        session: 1,
        continues: None,
    }
}

/// Samples in the `trun` of a single-track CMAF fragment (ISO/IEC 14496-12
/// §8.8.8: `sample_count` follows the box header and version/flags).
fn trun_samples(fragment: &[u8]) -> usize {
    let at = fragment
        .windows(4)
        .position(|w| w == b"trun")
        .expect("a fragment has a trun");
    let count: [u8; 4] = fragment[at + 8..at + 12].try_into().expect("4 bytes");
    u32::from_be_bytes(count) as usize
}

/// Drives `ts` through `net` into a fresh [`Broadcast`] with `config`.
pub fn run(ts: &[u8], net: &Network, config: BroadcastConfig) -> Run {
    let (delivered, net_stats) = transmit(ts, net);
    let base = Instant::now();
    let mut ingest = TsIngest::new();
    let mut driver = Driver {
        broadcast: Broadcast::new(config),
        frames_in: BTreeMap::new(),
        losses: BTreeMap::new(),
        keyframes: BTreeMap::new(),
        parts: Vec::new(),
        history: Vec::new(),
    };
    let mut now = Duration::ZERO;
    for d in delivered {
        now = d.at;
        ingest.push(&d.bytes);
        driver.drain(&mut ingest, base, now);
    }
    ingest.finish();
    driver.drain(&mut ingest, base, now);
    driver.broadcast.finish(base + now);
    driver.collect(now);
    Run {
        net: net_stats,
        frames_in: driver.frames_in,
        losses: driver.losses,
        keyframes: driver.keyframes,
        parts: driver.parts,
        history: driver.history,
        ingest: ingest.stats().clone(),
        packager: driver.broadcast.stats(),
        broadcast: driver.broadcast,
    }
}

struct Driver {
    broadcast: Broadcast,
    frames_in: BTreeMap<u32, usize>,
    losses: BTreeMap<u32, Vec<Duration>>,
    keyframes: BTreeMap<u32, Vec<Duration>>,
    parts: Vec<PartSeen>,
    history: Vec<(String, String)>,
}

impl Driver {
    /// Hands the demuxer's events to the broadcast as the origin's stream
    /// owner does, collecting what comes out after each.
    fn drain(&mut self, ingest: &mut TsIngest, base: Instant, now: Duration) {
        let instant = base + now;
        let unix_ms = EPOCH_UNIX_MS + i64::try_from(now.as_millis()).expect("a short run");
        while let Some(event) = ingest.poll_event() {
            match event {
                IngestEvent::Track { id, params } => {
                    self.broadcast.handle_track(id, params, instant);
                }
                IngestEvent::Frame { id, frame } => {
                    *self.frames_in.entry(id).or_default() += 1;
                    if frame.keyframe {
                        self.keyframes.entry(id).or_default().push(now);
                    }
                    self.broadcast.handle_frame(id, frame, unix_ms, instant);
                }
                IngestEvent::Discontinuity { id } => {
                    self.losses.entry(id).or_default().push(now);
                    self.broadcast.handle_loss(id, instant);
                }
                _ => {}
            }
            self.collect(now);
        }
    }

    /// Drains the broadcast's events: parts (with their sample counts) and
    /// the text of every changed playlist.
    fn collect(&mut self, now: Duration) {
        while let Some(event) = self.broadcast.poll_event() {
            match event {
                BroadcastEvent::Part {
                    rendition, part, ..
                } => {
                    let state = self.broadcast.rendition(rendition).expect("its rendition");
                    let livestack_hls::PartLookup::Available(data) =
                        state.playlist.part(part.0, part.1)
                    else {
                        panic!("part {part:?} of {rendition:?} is not available");
                    };
                    self.parts.push(PartSeen {
                        rendition,
                        part,
                        samples: trun_samples(&data),
                        at: now,
                    });
                }
                BroadcastEvent::PlaylistChanged { rendition } => {
                    let text = self
                        .broadcast
                        .media_playlist(rendition, SkipRequest::No)
                        .expect("a changed rendition exists");
                    self.history.push((
                        rendition.name().to_string(),
                        String::from_utf8(text.to_vec()).expect("playlists are UTF-8"),
                    ));
                }
                _ => {}
            }
        }
    }
}

/// What a media playlist says, read line by line (RFC 8216bis §4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistFacts {
    /// `EXT-X-TARGETDURATION`, seconds.
    pub target_duration: f64,
    /// `EXT-X-PART-INF:PART-TARGET`, seconds.
    pub part_target: f64,
    /// `EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// `EXTINF` of every listed segment, seconds.
    pub segments: Vec<f64>,
    /// `DURATION` of every listed `EXT-X-PART`, seconds.
    pub parts: Vec<f64>,
    /// `EXT-X-DISCONTINUITY` tags.
    pub discontinuities: usize,
    /// Segments listed after the last `EXT-X-DISCONTINUITY` (all when none).
    pub segments_after_last_discontinuity: usize,
    /// `EXT-X-ENDLIST` present.
    pub ended: bool,
}

/// The value after `name=` in an attribute list.
fn attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split([':', ','])
        .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
}

/// Reads `text` as a media playlist, panicking (with the text) on anything
/// malformed: a missing header, a duplicate or missing required tag, a
/// number that does not parse.
pub fn parse_playlist(text: &str) -> PlaylistFacts {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#EXTM3U"), "{text}");
    let number = |v: Option<&str>| -> f64 {
        v.and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a number in {text}"))
    };
    let mut facts = PlaylistFacts {
        target_duration: -1.0,
        part_target: -1.0,
        media_sequence: u64::MAX,
        segments: Vec::new(),
        parts: Vec::new(),
        discontinuities: 0,
        segments_after_last_discontinuity: 0,
        ended: false,
    };
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            facts.target_duration = number(Some(v));
        } else if line.starts_with("#EXT-X-PART-INF:") {
            facts.part_target = number(attribute(line, "PART-TARGET"));
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            facts.media_sequence = v.parse().expect("a media sequence number");
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            facts.segments.push(number(v.split(',').next()));
            facts.segments_after_last_discontinuity += 1;
        } else if line.starts_with("#EXT-X-PART:") {
            facts.parts.push(number(attribute(line, "DURATION")));
        } else if line == "#EXT-X-DISCONTINUITY" {
            facts.discontinuities += 1;
            facts.segments_after_last_discontinuity = 0;
        } else if line == "#EXT-X-ENDLIST" {
            facts.ended = true;
        }
    }
    assert!(
        facts.target_duration > 0.0,
        "EXT-X-TARGETDURATION in {text}"
    );
    assert!(facts.part_target > 0.0, "EXT-X-PART-INF in {text}");
    assert_ne!(
        facts.media_sequence,
        u64::MAX,
        "EXT-X-MEDIA-SEQUENCE in {text}"
    );
    facts
}
