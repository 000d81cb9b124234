//! MPEG-2 transport stream demultiplexer (ISO/IEC 13818-1 §2.4).
//!
//! Sans-IO: [`TsDemuxer::push`] takes bytes in chunks of any size (SRT
//! delivers 1316 = 7 × 188 byte messages, but nothing here relies on it),
//! then [`TsDemuxer::poll_event`] yields [`TsEvent`]s until `None`.
//!
//! What it does:
//! - finds packet boundaries by the sync byte `0x47`, and after garbage
//!   resynchronises at the first position where `0x47` repeats 188 bytes
//!   later (bytes skipped are counted);
//! - parses adaptation fields (§2.4.3.4) for the `discontinuity_indicator`
//!   and `random_access_indicator`;
//! - follows PAT (§2.4.4.3) → PMT (§2.4.4.8) → elementary streams, with
//!   section reassembly across packets and CRC_32 checking (Annex A);
//! - checks `continuity_counter` per PID (§2.4.3.3): one duplicate packet is
//!   allowed and dropped, any other gap is a loss that drops the partial PES
//!   and yields [`TsEvent::Discontinuity`];
//! - reassembles PES packets (§2.4.3.6), including unbounded video PES
//!   (`PES_packet_length == 0`, flushed by the next
//!   `payload_unit_start_indicator`), and parses the 33-bit PTS/DTS with their
//!   marker bits.
//!
//! Memory is bounded: a PES is capped at [`MAX_PES_LEN`] bytes (larger ones
//! are dropped and counted), a PSI section at 4 KiB, and the partial packet
//! buffer holds less than two packets beyond the last pushed chunk.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::time::MediaTime;

/// Size of a transport stream packet in bytes (§2.4.3.2).
pub const PACKET_LEN: usize = 188;
/// The `sync_byte` opening every packet (§2.4.3.3).
pub const SYNC_BYTE: u8 = 0x47;
/// PID of the program association table.
pub const PID_PAT: u16 = 0x0000;
/// PID of null packets, which are ignored.
pub const PID_NULL: u16 = 0x1FFF;
/// Largest PES packet (header included) that is reassembled, in bytes:
/// 8 MiB. Larger ones are dropped and counted in [`TsStats::pes_dropped`].
pub const MAX_PES_LEN: usize = 8 << 20;
/// Largest PSI section buffer in bytes; a PAT or PMT section is at most
/// 1024 bytes (§2.4.4.4, §2.4.4.9).
const MAX_SECTION_BUF: usize = 4096;

/// `stream_type` of H.264 video (Table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// `stream_type` of H.265 video (Table 2-34).
pub const STREAM_TYPE_H265: u8 = 0x24;
/// `stream_type` of AAC audio with ADTS transport syntax (Table 2-34).
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;
/// `stream_type` of PES packets with private data (Table 2-34), used for
/// Opus with a registration descriptor `Opus`.
pub const STREAM_TYPE_PRIVATE_PES: u8 = 0x06;

/// Errors of individual syntax structures. The demuxer never returns them:
/// it counts them in [`TsStats::parse_errors`] and moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsError {
    /// A PES packet does not begin with `packet_start_code_prefix` `00 00 01`.
    #[error("PES start code missing")]
    PesStartCode,
    /// The PES header is longer than the data.
    #[error("PES header truncated")]
    PesHeaderTruncated,
    /// The `'10'` bits before the PES header flags are wrong.
    #[error("bad PES header marker bits")]
    PesHeaderMarker,
    /// `PTS_DTS_flags == '01'`, which is forbidden (§2.4.3.7).
    #[error("forbidden PTS_DTS_flags 01")]
    ForbiddenPtsDtsFlags,
    /// A PTS or DTS `marker_bit` is 0.
    #[error("PTS/DTS marker bit not set")]
    TimestampMarker,
    /// A PSI section failed its CRC_32 (Annex A).
    #[error("PSI section CRC mismatch")]
    SectionCrc,
    /// A PSI section is shorter than its fixed fields or its loops overrun.
    #[error("malformed PSI section")]
    SectionMalformed,
}

/// What an elementary stream carries, from its `stream_type` and
/// registration descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamKind {
    /// H.264 video, stream_type 0x1B.
    H264,
    /// H.265 video, stream_type 0x24.
    H265,
    /// AAC in ADTS, stream_type 0x0F.
    AacAdts,
    /// Opus, stream_type 0x06 with registration descriptor `Opus`
    /// (ETSI TS 102 366-like mapping of the Opus-in-TS spec).
    Opus,
    /// Anything else; its PES packets are not reassembled.
    Unsupported,
}

impl StreamKind {
    /// Classifies a PMT entry.
    pub fn classify(stream_type: u8, registration: Option<[u8; 4]>) -> StreamKind {
        match (stream_type, registration) {
            (STREAM_TYPE_H264, _) => StreamKind::H264,
            (STREAM_TYPE_H265, _) => StreamKind::H265,
            (STREAM_TYPE_AAC_ADTS, _) => StreamKind::AacAdts,
            (STREAM_TYPE_PRIVATE_PES, Some(r)) if &r == b"Opus" => StreamKind::Opus,
            _ => StreamKind::Unsupported,
        }
    }
}

/// A reassembled PES packet (§2.4.3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pes {
    /// The elementary stream's PID.
    pub pid: u16,
    /// What the stream carries.
    pub kind: StreamKind,
    /// `stream_id` of the PES header (0xE0.. video, 0xC0.. audio, 0xBD
    /// private).
    pub stream_id: u8,
    /// Presentation timestamp as coded (33 bits of 90 kHz, wrapping).
    pub pts: Option<Timestamp33>,
    /// Decoding timestamp as coded; only present together with a PTS.
    pub dts: Option<Timestamp33>,
    /// `random_access_indicator` of the first TS packet of this PES.
    pub random_access: bool,
    /// `PES_packet_data_byte`s: the elementary stream payload.
    pub data: Bytes,
}

/// Output of the [`TsDemuxer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TsEvent {
    /// A PMT announced an elementary stream, or changed its stream type.
    Stream {
        /// The elementary stream's PID.
        pid: u16,
        /// `stream_type` from the PMT (Table 2-34).
        stream_type: u8,
        /// The classification.
        kind: StreamKind,
        /// The ISO 639-2 language code of an ISO_639_language_descriptor
        /// (tag 0x0A, §2.6.18) in the stream's ES info, when present and
        /// made of ASCII letters (lower-cased, e.g. `eng`).
        language: Option<[u8; 3]>,
    },
    /// A complete PES packet of a supported stream.
    Pes(Pes),
    /// Continuity counter loss on an elementary stream: data was lost, the
    /// partial PES (if any) was dropped.
    Discontinuity {
        /// The elementary stream's PID.
        pid: u16,
    },
}

/// Counters of the demuxer. All only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsStats {
    /// Transport packets processed.
    pub packets: u64,
    /// Bytes pushed.
    pub bytes: u64,
    /// Bytes skipped while looking for packet sync.
    pub resync_bytes_skipped: u64,
    /// Continuity counter errors (losses and repeated duplicates).
    pub cc_errors: u64,
    /// PES packets dropped: partial on loss, truncated, or over
    /// [`MAX_PES_LEN`].
    pub pes_dropped: u64,
    /// Malformed packets, sections and PES headers that were skipped.
    pub parse_errors: u64,
}

/// A PTS or DTS field as coded in a PES header (ISO/IEC 13818-1
/// §2.4.3.7): 33 bits of the 90 kHz system clock, counting modulo 2³³
/// (about 26.5 hours), so that a later time may have a smaller value.
///
/// Kept apart from [`MediaTime`] because arithmetic on wrapping values is
/// wrong across the wrap: [`crate::ingest`] unwraps them per track into
/// media times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp33(u64);

impl Timestamp33 {
    /// 2³³: the modulus of PTS/DTS values, in 90 kHz ticks.
    pub const MODULUS: u64 = 1 << 33;

    /// The field of value `ticks`; `None` from 2³³ up.
    pub const fn new(ticks: u64) -> Option<Timestamp33> {
        if ticks < Self::MODULUS {
            Some(Timestamp33(ticks))
        } else {
            None
        }
    }

    /// `ticks` modulo 2³³: the field a 90 kHz clock of that value codes.
    pub const fn wrapping(ticks: u64) -> Timestamp33 {
        Timestamp33(ticks & (Self::MODULUS - 1))
    }

    /// The coded value, in 90 kHz ticks, below 2³³.
    pub const fn ticks(self) -> u64 {
        self.0
    }

    /// The coded value as a 90 kHz media time in `[0, 2³³)`, not unwrapped.
    pub const fn to_media_time(self) -> MediaTime {
        // Below 2³³, so the cast is exact.
        MediaTime::from_90khz(self.0 as i64)
    }
}

/// Parses a 5-byte PTS or DTS field (§2.4.3.7): 4 prefix bits, then
/// `[32..30]`, marker, `[29..15]`, marker, `[14..0]`, marker.
///
/// # Errors
/// [`TsError::TimestampMarker`] if a marker bit is 0.
pub fn parse_timestamp(b: [u8; 5]) -> Result<Timestamp33, TsError> {
    if b[0] & 1 == 0 || b[2] & 1 == 0 || b[4] & 1 == 0 {
        return Err(TsError::TimestampMarker);
    }
    // 3 + 8 + 7 + 8 + 7 = 33 bits.
    Ok(Timestamp33(
        (u64::from(b[0] >> 1) & 0x07) << 30
            | u64::from(b[1]) << 22
            | u64::from(b[2] >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4] >> 1),
    ))
}

/// The parsed header of a PES packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    /// `stream_id`.
    pub stream_id: u8,
    /// PTS as coded, when present.
    pub pts: Option<Timestamp33>,
    /// DTS as coded, when present.
    pub dts: Option<Timestamp33>,
    /// Offset of the first payload byte from the start of the packet.
    pub payload_offset: usize,
}

/// Parses the header of a PES packet (§2.4.3.6, Table 2-21) at the start of
/// `data`.
///
/// # Errors
/// [`TsError`] for a missing start code, truncation, wrong marker bits or
/// forbidden flags.
pub fn parse_pes_header(data: &[u8]) -> Result<PesHeader, TsError> {
    let [0, 0, 1, stream_id, _, _, rest @ ..] = data else {
        return Err(TsError::PesStartCode);
    };
    let stream_id = *stream_id;
    // Streams without the optional header (program_stream_map, padding,
    // private_stream_2, ECM, EMM, directory, DSMCC, H.222.1 type E).
    if matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xFF | 0xF2 | 0xF8
    ) {
        return Ok(PesHeader {
            stream_id,
            pts: None,
            dts: None,
            payload_offset: 6,
        });
    }
    let [b6, b7, header_len, opt @ ..] = rest else {
        return Err(TsError::PesHeaderTruncated);
    };
    if b6 & 0xC0 != 0x80 {
        return Err(TsError::PesHeaderMarker);
    }
    let header_len = usize::from(*header_len);
    let opt = opt.get(..header_len).ok_or(TsError::PesHeaderTruncated)?;
    let field = |at: usize| -> Result<Timestamp33, TsError> {
        let b: [u8; 5] = opt
            .get(at..at + 5)
            .and_then(|s| s.try_into().ok())
            .ok_or(TsError::PesHeaderTruncated)?;
        parse_timestamp(b)
    };
    let (pts, dts) = match b7 >> 6 {
        0b10 => (Some(field(0)?), None),
        0b11 => (Some(field(0)?), Some(field(5)?)),
        0b01 => return Err(TsError::ForbiddenPtsDtsFlags),
        _ => (None, None),
    };
    Ok(PesHeader {
        stream_id,
        pts,
        dts,
        payload_offset: 9 + header_len,
    })
}

/// CRC_32 of ISO/IEC 13818-1 Annex A (polynomial 0x04C11DB7, initial
/// value all ones, no reflection, no final XOR). Over a whole section
/// including its CRC field it is 0.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Continuity counter state of one PID.
#[derive(Debug, Clone, Copy)]
struct CcState {
    last: u8,
    duplicate_seen: bool,
}

/// Outcome of a continuity check.
enum Cc {
    Ok,
    Duplicate,
    Lost,
}

/// A PES being reassembled.
#[derive(Debug)]
struct PesBuf {
    data: Vec<u8>,
    random_access: bool,
}

impl PesBuf {
    /// `6 + PES_packet_length`, or `None` while unknown or unbounded (0).
    fn declared_len(&self) -> Option<usize> {
        match self.data.get(4..6) {
            Some(&[hi, lo]) if (hi, lo) != (0, 0) => {
                Some(6 + usize::from(u16::from_be_bytes([hi, lo])))
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
struct EsState {
    stream_type: u8,
    language: Option<[u8; 3]>,
    kind: StreamKind,
    pes: Option<PesBuf>,
}

#[derive(Debug, Default)]
struct SectionBuf {
    data: Vec<u8>,
    active: bool,
}

/// The MPEG-TS demultiplexer. See the module docs.
#[derive(Debug, Default)]
pub struct TsDemuxer {
    /// Unprocessed input: a partial packet, or bytes being searched for sync.
    buf: Vec<u8>,
    synced: bool,
    /// Section buffers of the PAT and every PMT PID.
    psi: HashMap<u16, SectionBuf>,
    streams: HashMap<u16, EsState>,
    cc: HashMap<u16, CcState>,
    events: VecDeque<TsEvent>,
    stats: TsStats,
}

impl TsDemuxer {
    /// A demuxer waiting for its first PAT.
    pub fn new() -> Self {
        let mut d = TsDemuxer::default();
        d.psi.insert(PID_PAT, SectionBuf::default());
        d
    }

    /// The counters.
    pub fn stats(&self) -> &TsStats {
        &self.stats
    }

    /// Takes the next event. Drain until `None` after every
    /// [`push`](Self::push) or [`finish`](Self::finish).
    pub fn poll_event(&mut self) -> Option<TsEvent> {
        self.events.pop_front()
    }

    /// Feeds transport stream bytes, in chunks of any size.
    pub fn push(&mut self, bytes: &[u8]) {
        self.stats.bytes += bytes.len() as u64;
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        let mut packet = [0u8; PACKET_LEN];
        loop {
            // Bounded slicing: past the end is an empty slice (truncated input), handled as "need more data".
            let rest = self.buf.get(pos..).unwrap_or_default();
            let Some(candidate) = rest.get(..PACKET_LEN) else {
                break;
            };
            // In sync, a sync byte is enough (so a good packet followed by
            // garbage is kept). Hunting, the next packet's sync byte must
            // confirm the position.
            let accept = candidate.first() == Some(&SYNC_BYTE)
                && (self.synced
                    || match rest.get(PACKET_LEN) {
                        Some(&next) => next == SYNC_BYTE,
                        None => break,
                    });
            if accept {
                packet.copy_from_slice(candidate);
                pos += PACKET_LEN;
                self.synced = true;
                self.handle_packet(&packet);
            } else {
                pos += 1;
                self.synced = false;
                self.stats.resync_bytes_skipped += 1;
            }
        }
        self.buf.drain(..pos);
    }

    /// Signals the end of the input: processes a last unconfirmed packet,
    /// counts a trailing partial packet as skipped, and flushes every PES
    /// being reassembled (unbounded ones are emitted, incomplete bounded ones
    /// dropped).
    pub fn finish(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut rest = buf.as_slice();
        while let Some(candidate) = rest.get(..PACKET_LEN) {
            let accept = candidate.first() == Some(&SYNC_BYTE)
                && rest.get(PACKET_LEN).is_none_or(|next| *next == SYNC_BYTE);
            match <[u8; PACKET_LEN]>::try_from(candidate) {
                Ok(p) if accept => {
                    self.handle_packet(&p);
                    // Bounded slicing: past the end is an empty slice (truncated input), handled as "need more data".
                    rest = rest.get(PACKET_LEN..).unwrap_or_default();
                }
                _ => {
                    self.stats.resync_bytes_skipped += 1;
                    // Bounded slicing: past the end is an empty slice (truncated input), handled as "need more data".
                    rest = rest.get(1..).unwrap_or_default();
                }
            }
        }
        self.stats.resync_bytes_skipped += rest.len() as u64;
        self.synced = false;
        let mut pids: Vec<u16> = self.streams.keys().copied().collect();
        pids.sort_unstable();
        for pid in pids {
            if let Some(pes) = self.streams.get_mut(&pid).and_then(|es| es.pes.take()) {
                self.complete_pes(pid, pes);
            }
        }
    }

    fn handle_packet(&mut self, p: &[u8; PACKET_LEN]) {
        self.stats.packets += 1;
        if p[1] & 0x80 != 0 {
            // transport_error_indicator: the packet is known to be damaged.
            self.stats.parse_errors += 1;
            return;
        }
        let pusi = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 0x03;
        let cc = p[3] & 0x0F;
        if pid == PID_NULL {
            return;
        }
        if afc == 0 {
            self.stats.parse_errors += 1;
            return;
        }
        let mut payload_start = 4;
        let mut discontinuity = false;
        let mut random_access = false;
        if afc & 0b10 != 0 {
            let af_len = usize::from(p[4]);
            let max = if afc == 0b11 { 182 } else { 183 };
            if af_len > max {
                self.stats.parse_errors += 1;
                return;
            }
            if af_len > 0 {
                discontinuity = p[5] & 0x80 != 0;
                random_access = p[5] & 0x40 != 0;
            }
            payload_start = 5 + af_len;
        }
        if afc & 0b01 == 0 {
            // No payload: the continuity counter does not advance (§2.4.3.3).
            return;
        }
        let is_psi = self.psi.contains_key(&pid);
        if !is_psi && !self.streams.contains_key(&pid) {
            return;
        }
        match self.check_cc(pid, cc, discontinuity) {
            Cc::Ok => {}
            Cc::Duplicate => return,
            Cc::Lost => {
                self.stats.cc_errors += 1;
                self.on_loss(pid);
            }
        }
        // Bounded slicing: past the end is an empty slice (truncated input), handled as "need more data".
        let payload = p.get(payload_start..).unwrap_or_default();
        if is_psi {
            self.handle_psi(pid, pusi, payload);
        } else {
            self.handle_pes_payload(pid, pusi, random_access, payload);
        }
    }

    /// §2.4.3.3: the counter increments by one per packet with payload;
    /// a packet may be sent twice (the duplicate is dropped); the
    /// discontinuity_indicator allows any value.
    fn check_cc(&mut self, pid: u16, cc: u8, discontinuity: bool) -> Cc {
        let fresh = CcState {
            last: cc,
            duplicate_seen: false,
        };
        let Some(state) = self.cc.get_mut(&pid) else {
            self.cc.insert(pid, fresh);
            return Cc::Ok;
        };
        if discontinuity {
            *state = fresh;
            return Cc::Ok;
        }
        if cc == state.last {
            if state.duplicate_seen {
                return Cc::Lost;
            }
            state.duplicate_seen = true;
            return Cc::Duplicate;
        }
        let expected = (state.last + 1) & 0x0F;
        *state = fresh;
        if cc == expected { Cc::Ok } else { Cc::Lost }
    }

    fn on_loss(&mut self, pid: u16) {
        if let Some(sb) = self.psi.get_mut(&pid) {
            sb.data.clear();
            sb.active = false;
            return;
        }
        if let Some(es) = self.streams.get_mut(&pid) {
            if es.pes.take().is_some() {
                self.stats.pes_dropped += 1;
            }
            self.events.push_back(TsEvent::Discontinuity { pid });
        }
    }

    fn handle_pes_payload(&mut self, pid: u16, pusi: bool, random_access: bool, payload: &[u8]) {
        let Some(es) = self.streams.get_mut(&pid) else {
            return;
        };
        if es.kind == StreamKind::Unsupported {
            return;
        }
        let mut finished = None;
        if pusi {
            finished = es.pes.replace(PesBuf {
                data: Vec::new(),
                random_access,
            });
        }
        let mut complete = None;
        let mut overflow = false;
        if let Some(pes) = es.pes.as_mut() {
            if pes.data.len() + payload.len() > MAX_PES_LEN {
                overflow = true;
                es.pes = None;
            } else {
                pes.data.extend_from_slice(payload);
                if pes.declared_len().is_some_and(|len| pes.data.len() >= len) {
                    complete = es.pes.take();
                }
            }
        }
        if let Some(pes) = finished {
            self.complete_pes(pid, pes);
        }
        if overflow {
            self.stats.pes_dropped += 1;
        }
        if let Some(pes) = complete {
            self.complete_pes(pid, pes);
        }
    }

    /// Emits a finished PES, or drops it when short of its declared length
    /// or malformed.
    fn complete_pes(&mut self, pid: u16, mut pes: PesBuf) {
        let Some(kind) = self.streams.get(&pid).map(|es| es.kind) else {
            return;
        };
        if let Some(len) = pes.declared_len() {
            if pes.data.len() < len {
                self.stats.pes_dropped += 1;
                return;
            }
            pes.data.truncate(len);
        }
        let header = match parse_pes_header(&pes.data) {
            Ok(h) => h,
            Err(_) => {
                self.stats.parse_errors += 1;
                self.stats.pes_dropped += 1;
                return;
            }
        };
        let data = Bytes::from(pes.data);
        // parse_pes_header checked that the header fits; min() keeps the
        // slice panic-free regardless.
        let data = data.slice(header.payload_offset.min(data.len())..);
        self.events.push_back(TsEvent::Pes(Pes {
            pid,
            kind,
            stream_id: header.stream_id,
            pts: header.pts,
            dts: header.dts,
            random_access: pes.random_access,
            data,
        }));
    }

    fn handle_psi(&mut self, pid: u16, pusi: bool, payload: &[u8]) {
        let mut sections = Vec::new();
        let mut error = false;
        {
            let Some(sb) = self.psi.get_mut(&pid) else {
                return;
            };
            if pusi {
                let Some((&pointer, rest)) = payload.split_first() else {
                    return;
                };
                let pointer = usize::from(pointer);
                let (Some(before), Some(after)) = (rest.get(..pointer), rest.get(pointer..)) else {
                    sb.data.clear();
                    sb.active = false;
                    self.stats.parse_errors += 1;
                    return;
                };
                if sb.active {
                    sb.data.extend_from_slice(before);
                    error |= take_sections(sb, &mut sections);
                }
                sb.data.clear();
                sb.data.extend_from_slice(after);
                sb.active = true;
                error |= take_sections(sb, &mut sections);
            } else if sb.active {
                sb.data.extend_from_slice(payload);
                if sb.data.len() > MAX_SECTION_BUF {
                    sb.data.clear();
                    sb.active = false;
                    error = true;
                } else {
                    error |= take_sections(sb, &mut sections);
                }
            }
        }
        if error {
            self.stats.parse_errors += 1;
        }
        for section in sections {
            if let Err(_e) = self.handle_section(pid, &section) {
                self.stats.parse_errors += 1;
            }
        }
    }

    fn handle_section(&mut self, pid: u16, s: &[u8]) -> Result<(), TsError> {
        if s.len() < 12 || s.get(1).is_none_or(|b| b & 0x80 == 0) {
            return Err(TsError::SectionMalformed);
        }
        if crc32_mpeg2(s) != 0 {
            return Err(TsError::SectionCrc);
        }
        let table_id = s[0];
        let current_next = s[5] & 0x01 != 0;
        if !current_next {
            return Ok(());
        }
        let body = s.get(8..s.len() - 4).ok_or(TsError::SectionMalformed)?;
        match (pid, table_id) {
            (PID_PAT, 0x00) => {
                for entry in body.chunks_exact(4) {
                    let program = u16::from_be_bytes([entry[0], entry[1]]);
                    let pmt_pid = u16::from_be_bytes([entry[2], entry[3]]) & 0x1FFF;
                    if program != 0
                        && pmt_pid != PID_PAT
                        && pmt_pid != PID_NULL
                        && !self.streams.contains_key(&pmt_pid)
                    {
                        self.psi.entry(pmt_pid).or_default();
                    }
                }
                Ok(())
            }
            (_, 0x02) if pid != PID_PAT => self.handle_pmt(body),
            _ => Ok(()),
        }
    }

    /// `TS_program_map_section` body after `last_section_number`.
    fn handle_pmt(&mut self, body: &[u8]) -> Result<(), TsError> {
        let [_, _, pil_hi, pil_lo, rest @ ..] = body else {
            return Err(TsError::SectionMalformed);
        };
        let program_info_length = usize::from(u16::from_be_bytes([*pil_hi, *pil_lo]) & 0x0FFF);
        let mut es_loop = rest
            .get(program_info_length..)
            .ok_or(TsError::SectionMalformed)?;
        while let [stream_type, pid_hi, pid_lo, len_hi, len_lo, rest @ ..] = es_loop {
            let pid = u16::from_be_bytes([*pid_hi, *pid_lo]) & 0x1FFF;
            let info_len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]) & 0x0FFF);
            let info = rest.get(..info_len).ok_or(TsError::SectionMalformed)?;
            // Bounded slicing: past the end is an empty slice (truncated input), handled as "need more data".
            es_loop = rest.get(info_len..).unwrap_or_default();
            self.register_stream(pid, *stream_type, registration(info), language(info));
        }
        Ok(())
    }

    fn register_stream(
        &mut self,
        pid: u16,
        stream_type: u8,
        registration: Option<[u8; 4]>,
        language: Option<[u8; 3]>,
    ) {
        if pid == PID_PAT || pid == PID_NULL || self.psi.contains_key(&pid) {
            self.stats.parse_errors += 1;
            return;
        }
        if self
            .streams
            .get(&pid)
            .is_some_and(|es| es.stream_type == stream_type && es.language == language)
        {
            return;
        }
        let kind = StreamKind::classify(stream_type, registration);
        self.streams.insert(
            pid,
            EsState {
                stream_type,
                language,
                kind,
                pes: None,
            },
        );
        self.events.push_back(TsEvent::Stream {
            pid,
            stream_type,
            kind,
            language,
        });
    }
}

/// Moves complete sections out of a section buffer. Returns true on a
/// malformed section length (the buffer is then reset).
fn take_sections(sb: &mut SectionBuf, out: &mut Vec<Vec<u8>>) -> bool {
    loop {
        match sb.data.first() {
            None | Some(0xFF) => {
                // Stuffing after the last section, or nothing left.
                sb.data.clear();
                sb.active = false;
                return false;
            }
            Some(_) => {}
        }
        let Some(&[_, hi, lo]) = sb.data.get(..3) else {
            return false;
        };
        let section_length = usize::from(u16::from_be_bytes([hi, lo]) & 0x0FFF);
        if section_length > 1021 {
            sb.data.clear();
            sb.active = false;
            return true;
        }
        let total = 3 + section_length;
        if sb.data.len() < total {
            return false;
        }
        out.push(sb.data.drain(..total).collect());
    }
}

/// The `format_identifier` of a registration_descriptor (tag 5, §2.6.8)
/// among `descriptors`.
fn registration(mut descriptors: &[u8]) -> Option<[u8; 4]> {
    while let [tag, len, rest @ ..] = descriptors {
        let body = rest.get(..usize::from(*len))?;
        if *tag == 0x05
            && let Some(id) = body.get(..4).and_then(|b| b.try_into().ok())
        {
            return Some(id);
        }
        descriptors = rest.get(usize::from(*len)..)?;
    }
    None
}

/// The ISO_639_language_code of the first ISO_639_language_descriptor
/// (tag 0x0A, §2.6.18-19) among `descriptors`, lower-cased; `None` when
/// absent or not three ASCII letters.
fn language(mut descriptors: &[u8]) -> Option<[u8; 3]> {
    while let [tag, len, rest @ ..] = descriptors {
        let body = rest.get(..usize::from(*len))?;
        if *tag == 0x0A {
            let code: [u8; 3] = body.get(..3)?.try_into().ok()?;
            return code
                .iter()
                .all(u8::is_ascii_alphabetic)
                .then(|| code.map(|c| c.to_ascii_lowercase()));
        }
        descriptors = rest.get(usize::from(*len)..)?;
    }
    None
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Builders for hand-made transport streams.

    use super::*;

    /// One 188-byte packet: header, optional adaptation field with `flags`,
    /// payload, padded by adaptation field stuffing.
    pub fn packet(pid: u16, pusi: bool, cc: u8, af_flags: Option<u8>, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() <= 184);
        let mut p = vec![
            SYNC_BYTE,
            (u8::from(pusi) << 6) | (pid >> 8) as u8,
            pid as u8,
            0,
        ];
        let need_af = af_flags.is_some() || payload.len() < 184;
        if need_af {
            let af_len = 183 - payload.len();
            let afc = if payload.is_empty() { 0b10 } else { 0b11 };
            p[3] = (afc << 4) | (cc & 0x0F);
            p.push(af_len as u8);
            if af_len > 0 {
                p.push(af_flags.unwrap_or(0));
                p.resize(5 + af_len, 0xFF);
            }
        } else {
            p[3] = 0x10 | (cc & 0x0F);
        }
        p.extend_from_slice(payload);
        assert_eq!(p.len(), PACKET_LEN);
        p
    }

    /// A PSI section with syntax indicator, version 0, current, and CRC.
    pub fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![table_id, 0xB0 | (len >> 8) as u8, len as u8];
        s.extend_from_slice(&id.to_be_bytes());
        s.extend_from_slice(&[0xC1, 0, 0]);
        s.extend_from_slice(body);
        let crc = crc32_mpeg2(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    /// PAT packet with one program whose PMT is on `pmt_pid`.
    pub fn pat(pmt_pid: u16, cc: u8) -> Vec<u8> {
        let mut body = vec![0, 1];
        body.extend_from_slice(&(0xE000 | pmt_pid).to_be_bytes());
        let mut payload = vec![0];
        payload.extend(section(0x00, 1, &body));
        packet(PID_PAT, true, cc, None, &payload)
    }

    /// PMT packet listing `(stream_type, pid, es_info)` entries.
    pub fn pmt(pmt_pid: u16, cc: u8, streams: &[(u8, u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![0xE1, 0x00, 0xF0, 0x00];
        for (st, pid, info) in streams {
            body.push(*st);
            body.extend_from_slice(&(0xE000 | pid).to_be_bytes());
            body.extend_from_slice(&(0xF000 | info.len() as u16).to_be_bytes());
            body.extend_from_slice(info);
        }
        let mut payload = vec![0];
        payload.extend(section(0x02, 1, &body));
        packet(pmt_pid, true, cc, None, &payload)
    }

    /// 5-byte PTS/DTS field with prefix `prefix`.
    pub fn timestamp(prefix: u8, ts: u64) -> [u8; 5] {
        [
            (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
            (ts >> 22) as u8,
            (((ts >> 15) as u8) << 1) | 1,
            (ts >> 7) as u8,
            ((ts as u8) << 1) | 1,
        ]
    }

    /// A PES packet; `bounded` writes PES_packet_length, else 0.
    pub fn pes(
        stream_id: u8,
        pts: Option<u64>,
        dts: Option<u64>,
        data: &[u8],
        bounded: bool,
    ) -> Vec<u8> {
        let mut opt = Vec::new();
        let flags = match (pts, dts) {
            (Some(p), Some(d)) => {
                opt.extend(timestamp(3, p));
                opt.extend(timestamp(1, d));
                0xC0
            }
            (Some(p), None) => {
                opt.extend(timestamp(2, p));
                0x80
            }
            _ => 0,
        };
        let len = 3 + opt.len() + data.len();
        let len = if bounded { len as u16 } else { 0 };
        let mut v = vec![0, 0, 1, stream_id];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&[0x80, flags, opt.len() as u8]);
        v.extend(opt);
        v.extend_from_slice(data);
        v
    }

    /// Splits a PES into packets on `pid`, starting at continuity counter `cc`.
    pub fn packetize(pid: u16, cc: &mut u8, pes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, chunk) in pes.chunks(184).enumerate() {
            out.extend(packet(pid, i == 0, *cc, None, chunk));
            *cc = (*cc + 1) & 0x0F;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    fn drain(d: &mut TsDemuxer) -> Vec<TsEvent> {
        std::iter::from_fn(|| d.poll_event()).collect()
    }

    fn header_stream() -> Vec<u8> {
        let mut v = pat(0x1000, 0);
        v.extend(pmt(
            0x1000,
            0,
            &[
                (STREAM_TYPE_H264, 0x100, &[]),
                (STREAM_TYPE_AAC_ADTS, 0x101, &[]),
                (0x86, 0x102, &[]),
            ],
        ));
        v
    }

    #[test]
    fn crc_of_known_pat() {
        // PAT emitted by ffmpeg: program 1 → PMT PID 0x1000, CRC 2AB104B2.
        let pat = [
            0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00,
        ];
        assert_eq!(crc32_mpeg2(&pat), 0x2AB1_04B2);
        let mut with_crc = pat.to_vec();
        with_crc.extend_from_slice(&0x2AB1_04B2u32.to_be_bytes());
        assert_eq!(crc32_mpeg2(&with_crc), 0);
    }

    #[test]
    fn timestamps_roundtrip_and_markers() {
        for ts in [0, 1, 90_000, (1 << 32) + 12345, (1 << 33) - 1] {
            assert_eq!(
                parse_timestamp(timestamp(2, ts)).map(Timestamp33::ticks),
                Ok(ts)
            );
        }
        let mut bad = timestamp(2, 5);
        bad[2] &= 0xFE;
        assert_eq!(parse_timestamp(bad), Err(TsError::TimestampMarker));
    }

    #[test]
    fn pes_header_forms() {
        let h = parse_pes_header(&pes(0xE0, Some(900), Some(0), b"x", false)).expect("header");
        assert_eq!(
            (h.pts, h.dts, h.payload_offset),
            (Timestamp33::new(900), Timestamp33::new(0), 19)
        );
        let mut forbidden = pes(0xE0, None, None, b"x", true);
        forbidden[7] = 0x40;
        assert_eq!(
            parse_pes_header(&forbidden),
            Err(TsError::ForbiddenPtsDtsFlags)
        );
        assert_eq!(
            parse_pes_header(&[0, 0, 2, 0xE0, 0, 0]),
            Err(TsError::PesStartCode)
        );
        assert_eq!(
            parse_pes_header(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5, 0x21]),
            Err(TsError::PesHeaderTruncated)
        );
        let padding = parse_pes_header(&[0, 0, 1, 0xBE, 0, 1, 0xFF]).expect("padding stream");
        assert_eq!(padding.payload_offset, 6);
    }

    #[test]
    fn pat_pmt_streams() {
        let mut d = TsDemuxer::new();
        d.push(&header_stream());
        d.finish();
        let events = drain(&mut d);
        assert_eq!(
            events,
            vec![
                TsEvent::Stream {
                    pid: 0x100,
                    stream_type: 0x1B,
                    kind: StreamKind::H264,
                    language: None
                },
                TsEvent::Stream {
                    pid: 0x101,
                    stream_type: 0x0F,
                    kind: StreamKind::AacAdts,
                    language: None
                },
                TsEvent::Stream {
                    pid: 0x102,
                    stream_type: 0x86,
                    kind: StreamKind::Unsupported,
                    language: None
                },
            ]
        );
        assert_eq!(d.stats().parse_errors, 0);
        assert_eq!(d.stats().packets, 2);
    }

    #[test]
    fn opus_registration() {
        let mut d = TsDemuxer::new();
        let mut v = pat(0x1000, 0);
        v.extend(pmt(
            0x1000,
            0,
            &[(0x06, 0x103, &[0x05, 0x04, b'O', b'p', b'u', b's'])],
        ));
        d.push(&v);
        d.finish();
        assert_eq!(
            drain(&mut d),
            vec![TsEvent::Stream {
                pid: 0x103,
                stream_type: 6,
                kind: StreamKind::Opus,
                language: None
            }]
        );
    }

    /// Two AAC streams with ISO_639_language_descriptors (§2.6.18: tag
    /// 0x0A, then per language a 3-byte code and an audio_type byte), as
    /// ffmpeg writes for `-metadata:s:a:N language=...`.
    #[test]
    fn language_descriptors() {
        let mut d = TsDemuxer::new();
        let mut v = pat(0x1000, 0);
        v.extend(pmt(
            0x1000,
            0,
            &[
                (
                    STREAM_TYPE_AAC_ADTS,
                    0x101,
                    &[0x0A, 0x04, b'e', b'n', b'g', 0],
                ),
                (
                    STREAM_TYPE_AAC_ADTS,
                    0x102,
                    &[0x0A, 0x04, b'F', b'R', b'A', 0],
                ),
                // Not letters: ignored; truncated: ignored.
                (
                    STREAM_TYPE_AAC_ADTS,
                    0x103,
                    &[0x0A, 0x04, b'1', b'2', b'3', 0],
                ),
                (STREAM_TYPE_AAC_ADTS, 0x104, &[0x0A, 0x02, b'd', b'e']),
            ],
        ));
        d.push(&v);
        d.finish();
        let languages: Vec<_> = drain(&mut d)
            .into_iter()
            .map(|e| match e {
                TsEvent::Stream { language, .. } => language,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(languages, [Some(*b"eng"), Some(*b"fra"), None, None]);
    }

    #[test]
    fn bad_crc_is_ignored_and_counted() {
        let mut v = pat(0x1000, 0);
        v[187] ^= 0x01; // last CRC byte
        let mut d = TsDemuxer::new();
        d.push(&v);
        d.finish();
        assert!(drain(&mut d).is_empty());
        assert_eq!(d.stats().parse_errors, 1);
    }

    /// Bounded PES are emitted as soon as complete; unbounded video PES at
    /// the next payload_unit_start_indicator; byte-wise pushing gives the
    /// same result.
    #[test]
    fn pes_reassembly_any_chunking() {
        let mut stream = header_stream();
        let mut vcc = 0;
        let mut acc = 0;
        let video1 = vec![0xAB; 1000];
        stream.extend(packetize(
            0x100,
            &mut vcc,
            &pes(0xE0, Some(3600), Some(0), &video1, false),
        ));
        stream.extend(packetize(
            0x101,
            &mut acc,
            &pes(0xC0, Some(1000), None, b"audio", true),
        ));
        stream.extend(packetize(
            0x100,
            &mut vcc,
            &pes(0xE0, Some(7200), None, b"v2", false),
        ));
        for chunk in [1usize, 7, 188, 1316, stream.len()] {
            let mut d = TsDemuxer::new();
            for c in stream.chunks(chunk) {
                d.push(c);
            }
            d.finish();
            let pes: Vec<Pes> = drain(&mut d)
                .into_iter()
                .filter_map(|e| match e {
                    TsEvent::Pes(p) => Some(p),
                    _ => None,
                })
                .collect();
            assert_eq!(pes.len(), 3, "chunk {chunk}");
            assert_eq!(
                (pes[0].pid, pes[0].pts, &pes[0].data[..]),
                (0x101, Timestamp33::new(1000), &b"audio"[..])
            );
            assert_eq!(
                (pes[1].pid, pes[1].pts, pes[1].dts),
                (0x100, Timestamp33::new(3600), Timestamp33::new(0))
            );
            assert_eq!(pes[1].data, video1);
            assert_eq!(
                (pes[2].pts, &pes[2].data[..]),
                (Timestamp33::new(7200), &b"v2"[..])
            );
            assert_eq!(d.stats().resync_bytes_skipped, 0);
            assert_eq!(d.stats().cc_errors, 0);
        }
    }

    #[test]
    fn resync_after_garbage() {
        let mut stream = vec![0x47, 0x00, 0x12, 0x47, 0x47];
        stream.extend(header_stream());
        stream.extend_from_slice(&[0x00; 100]);
        let mut cc = 0;
        stream.extend(packetize(
            0x101,
            &mut cc,
            &pes(0xC0, Some(1), None, b"a", true),
        ));
        let mut d = TsDemuxer::new();
        d.push(&stream);
        d.finish();
        let events = drain(&mut d);
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(d.stats().resync_bytes_skipped, 105);
        assert_eq!(d.stats().packets, 3);
    }

    #[test]
    fn cc_duplicate_allowed_once_loss_detected() {
        let mut stream = header_stream();
        let payload = pes(0xC0, Some(1), None, &[7; 300], true);
        let mut cc = 0;
        let packets = packetize(0x101, &mut cc, &payload);
        // First packet, its duplicate, second packet: fine.
        stream.extend_from_slice(&packets[..188]);
        stream.extend_from_slice(&packets[..188]);
        stream.extend_from_slice(&packets[188..]);
        // Next PES loses its second packet.
        let packets = packetize(0x101, &mut cc, &payload);
        stream.extend_from_slice(&packets[..188]);
        let third = packetize(0x101, &mut cc, &payload);
        stream.extend_from_slice(&third);
        let mut d = TsDemuxer::new();
        d.push(&stream);
        d.finish();
        let events = drain(&mut d);
        let n_pes = events
            .iter()
            .filter(|e| matches!(e, TsEvent::Pes(_)))
            .count();
        assert_eq!(n_pes, 2, "{events:?}");
        assert!(events.contains(&TsEvent::Discontinuity { pid: 0x101 }));
        assert_eq!(d.stats().cc_errors, 1);
        assert_eq!(d.stats().pes_dropped, 1);
    }

    #[test]
    fn discontinuity_indicator_resets_cc() {
        let mut stream = header_stream();
        stream.extend(packet(
            0x101,
            true,
            5,
            None,
            &pes(0xC0, Some(1), None, b"a", true),
        ));
        stream.extend(packet(
            0x101,
            true,
            9,
            Some(0x80),
            &pes(0xC0, Some(2), None, b"b", true),
        ));
        let mut d = TsDemuxer::new();
        d.push(&stream);
        assert_eq!(d.stats().cc_errors, 0);
        assert_eq!(
            drain(&mut d)
                .iter()
                .filter(|e| matches!(e, TsEvent::Pes(_)))
                .count(),
            2
        );
    }

    #[test]
    fn oversized_pes_dropped() {
        let mut stream = header_stream();
        let mut cc = 0;
        let big = vec![0u8; MAX_PES_LEN + 1000];
        stream.extend(packetize(
            0x100,
            &mut cc,
            &pes(0xE0, Some(1), None, &big, false),
        ));
        stream.extend(packetize(
            0x100,
            &mut cc,
            &pes(0xE0, Some(2), None, b"ok", false),
        ));
        let mut d = TsDemuxer::new();
        d.push(&stream);
        d.finish();
        let pes: Vec<_> = drain(&mut d)
            .into_iter()
            .filter(|e| matches!(e, TsEvent::Pes(_)))
            .collect();
        assert_eq!(pes.len(), 1);
        assert_eq!(d.stats().pes_dropped, 1);
    }
}
