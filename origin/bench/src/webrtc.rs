//! WebRTC peers for the benchmarks, on str0m (the SFU's own stack, on the
//! client side): a WHIP publisher sending H.264 and Opus from files in real
//! time, each video frame tagged with an SEI that carries its number, and
//! WHEP viewers that count what they receive. Real ICE, DTLS-SRTP and RTP
//! on loopback UDP; offers POSTed with hyper.
//!
//! A viewer counts from the RTP header, which SRTP leaves in the clear
//! (RFC 3711 §3.1): packets, bytes, sequence gaps, and frames (a video
//! frame ends at its marker bit) with the frames missing judged from the
//! RTP time steps (the source has a constant frame rate). In
//! [`Decrypt::Full`] mode every datagram also goes through str0m (SRTP
//! decryption, depacketization, RTCP receiver reports), which is what a
//! real viewer costs; in [`Decrypt::ControlOnly`] mode RTP packets are
//! counted and not decrypted (str0m still gets STUN, DTLS and RTCP), which
//! lets one generator core watch more viewers than it could decrypt for.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use str0m::{
    Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig,
    change::{SdpAnswer, SdpPendingOffer},
    format::Codec,
    media::{Direction, MediaData, MediaKind, MediaTime, Mid, Pt},
    net::{Protocol, Receive},
};
use tokio::{net::UdpSocket, sync::watch};

/// Video frames per second of the sources.
pub const FPS: u32 = 30;
/// RTP ticks (90 kHz) between two video frames.
pub const VIDEO_STEP: u32 = 90_000 / FPS;
/// RTP ticks (48 kHz) between two Opus packets (20 ms).
pub const AUDIO_STEP: u32 = 960;

/// What to encode.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Length, seconds (the publisher loops it).
    pub seconds: u32,
    /// Video bit rate (also the maxrate; bufsize = 1 s of it), kbit/s.
    pub video_kbps: u32,
    /// Opus bit rate, kbit/s.
    pub audio_kbps: u32,
    /// Keyframe interval, seconds.
    pub gop_secs: u32,
}

/// A source loaded in memory: Annex B access units and Opus packets.
#[derive(Debug)]
pub struct Source {
    /// Video access units (Annex B, SPS/PPS before every IDR), in order.
    pub video: Vec<AccessUnit>,
    /// Opus packets of 20 ms, in order.
    pub audio: Vec<Vec<u8>>,
    /// Bits per second of the payloads (video + audio).
    pub bps: f64,
}

/// One H.264 access unit.
#[derive(Debug)]
pub struct AccessUnit {
    /// Annex B bytes.
    pub data: Vec<u8>,
    /// Contains an IDR slice.
    pub keyframe: bool,
}

/// Encodes (once, cached in `$TMPDIR/livestack-bench/`) and loads `spec`:
/// ffmpeg's `testsrc2` in libx264 (baseline, `-tune zerolatency`, no
/// B-frames, constant GOP, SPS/PPS repeated at each keyframe) as raw Annex
/// B, and a 440 Hz sine in libopus (20 ms frames) in Ogg.
///
/// # Errors
/// ffmpeg failing, unreadable output.
pub fn source(spec: &SourceSpec) -> Result<Source> {
    let dir = std::env::temp_dir().join("livestack-bench");
    std::fs::create_dir_all(&dir).context("create cache dir")?;
    let stem = format!(
        "webrtc-{}x{}-{}fps-{}s-v{}k-a{}k-gop{}s",
        spec.width, spec.height, FPS, spec.seconds, spec.video_kbps, spec.audio_kbps, spec.gop_secs
    );
    let h264 = dir.join(format!("{stem}.h264"));
    let opus = dir.join(format!("{stem}.opus"));
    let gop = (spec.gop_secs * FPS).to_string();
    let v = format!("{}k", spec.video_kbps);
    let video_args: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={}x{}:rate={FPS}", spec.width, spec.height),
        "-t",
        &spec.seconds.to_string(),
        "-c:v",
        "libx264",
        "-profile:v",
        "baseline",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-bf",
        "0",
        "-g",
        &gop,
        "-keyint_min",
        &gop,
        "-sc_threshold",
        "0",
        "-b:v",
        &v,
        "-maxrate",
        &v,
        "-bufsize",
        &v,
        "-x264-params",
        "repeat-headers=1",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "h264",
    ]
    .map(str::to_owned)
    .to_vec();
    encode_once(&h264, &video_args)?;
    let audio_args: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &spec.seconds.to_string(),
        "-ac",
        "2",
        "-c:a",
        "libopus",
        "-b:a",
        &format!("{}k", spec.audio_kbps),
        "-frame_duration",
        "20",
        "-application",
        "lowdelay",
        "-f",
        "ogg",
    ]
    .map(str::to_owned)
    .to_vec();
    encode_once(&opus, &audio_args)?;
    let video = access_units(&std::fs::read(&h264)?);
    let audio = ogg_packets(&std::fs::read(&opus)?)?;
    if video.is_empty() || !video[0].keyframe || audio.is_empty() {
        bail!("unusable sources {} / {}", h264.display(), opus.display());
    }
    let bytes: usize = video.iter().map(|a| a.data.len()).sum::<usize>()
        + audio.iter().map(Vec::len).sum::<usize>();
    let bps = bytes as f64 * 8.0 / (video.len() as f64 / f64::from(FPS));
    Ok(Source { video, audio, bps })
}

fn encode_once(out: &Path, args: &[String]) -> Result<()> {
    if out.is_file() {
        return Ok(());
    }
    let tmp = PathBuf::from(format!("{}.{}.part", out.display(), std::process::id()));
    eprintln!("encoding {}", out.display());
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&tmp)
        .status()
        .context("run ffmpeg (is it installed?)")?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!("ffmpeg failed to encode {}", out.display());
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// The NAL units of an Annex B stream (without start codes).
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |n| n - 3);
        // A 4-byte start code's leading zero belongs to no unit.
        while end > s && data[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        out.push(&data[s..end]);
    }
    out
}

/// Splits an Annex B elementary stream into access units: a new one at an
/// AUD, SPS, PPS or SEI after a slice, or at a slice whose
/// `first_mb_in_slice` is 0 after a slice (ITU-T H.264 §7.4.1.2.3).
fn access_units(stream: &[u8]) -> Vec<AccessUnit> {
    let mut out = Vec::new();
    let mut cur = AccessUnit {
        data: Vec::new(),
        keyframe: false,
    };
    let mut has_slice = false;
    for nal in nal_units(stream) {
        let Some(&first) = nal.first() else { continue };
        let t = first & 0x1f;
        let slice = t == 1 || t == 5;
        let starts_new = has_slice
            && (matches!(t, 6..=9) || (slice && nal.get(1).is_some_and(|b| b & 0x80 != 0)));
        if starts_new {
            out.push(std::mem::replace(
                &mut cur,
                AccessUnit {
                    data: Vec::new(),
                    keyframe: false,
                },
            ));
            has_slice = false;
        }
        if t == 9 {
            continue;
        }
        if slice && !has_slice {
            // The frame's tag goes right before its first slice.
            cur.data.extend_from_slice(TAG_PLACEHOLDER);
        }
        cur.data.extend_from_slice(&[0, 0, 0, 1]);
        cur.data.extend_from_slice(nal);
        has_slice |= slice;
        cur.keyframe |= t == 5;
    }
    if has_slice {
        out.push(cur);
    }
    out
}

/// The UUID of the benchmark's SEI (`user_data_unregistered`, payload type
/// 5, ITU-T H.264 §D.1.6): no two zero bytes in a row, so no emulation
/// prevention is ever needed.
const TAG_UUID: [u8; 16] = *b"livestack-g2g-v1";

/// Where a frame's tag goes in a loaded access unit, and its length: an
/// SEI NAL with the UUID and 16 hex digits of the frame number.
const TAG_PLACEHOLDER: &[u8] = &[0; TAG_LEN];
const TAG_LEN: usize = 4 + 1 + 2 + 16 + 16 + 1;

/// Writes frame number `n`'s tag over the placeholder in `au`.
pub fn tag(au: &mut [u8], n: u64) {
    let Some(at) = au.windows(TAG_LEN).position(|w| w == TAG_PLACEHOLDER) else {
        return;
    };
    let mut sei = Vec::with_capacity(TAG_LEN);
    sei.extend_from_slice(&[0, 0, 0, 1, 0x06, 5, 32]);
    sei.extend_from_slice(&TAG_UUID);
    sei.extend_from_slice(format!("{n:016x}").as_bytes());
    sei.push(0x80);
    au[at..at + TAG_LEN].copy_from_slice(&sei);
}

/// The frame number of a tagged access unit, if it carries a tag.
pub fn read_tag(au: &[u8]) -> Option<u64> {
    let at = au.windows(16).position(|w| w == TAG_UUID)?;
    let hex = std::str::from_utf8(au.get(at + 16..at + 32)?).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// The packets of an Ogg Opus stream (RFC 7845), without the two header
/// packets.
fn ogg_packets(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut packets = Vec::new();
    let mut cur = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 27 || &rest[..4] != b"OggS" {
            bail!("not an Ogg page");
        }
        let segments = usize::from(rest[26]);
        let table = rest.get(27..27 + segments).context("short Ogg page")?;
        let mut body = &rest[27 + segments..];
        for &len in table {
            let len = usize::from(len);
            let seg = body.get(..len).context("short Ogg page body")?;
            cur.extend_from_slice(seg);
            body = &body[len..];
            if len < 255 {
                packets.push(std::mem::take(&mut cur));
            }
        }
        let used = 27 + segments + table.iter().map(|l| usize::from(*l)).sum::<usize>();
        rest = &rest[used..];
    }
    Ok(packets.into_iter().skip(2).collect())
}

/// POSTs an SDP offer to `path` on `http`; returns the `Location` and the
/// answer.
///
/// # Errors
/// Connection errors, a status other than 201.
pub async fn post_offer(http: SocketAddr, path: &str, offer: String) -> Result<(String, String)> {
    let (status, location, body) = request(http, Method::POST, path, offer).await?;
    if status != StatusCode::CREATED {
        bail!(
            "POST {path}: {status} {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    Ok((location, String::from_utf8(body.to_vec())?))
}

/// DELETEs a WHIP/WHEP session at `location`.
///
/// # Errors
/// Connection errors.
pub async fn delete(http: SocketAddr, location: &str) -> Result<StatusCode> {
    Ok(request(http, Method::DELETE, location, String::new())
        .await?
        .0)
}

async fn request(
    http: SocketAddr,
    method: Method,
    path: &str,
    body: String,
) -> Result<(StatusCode, String, Bytes)> {
    let stream = tokio::net::TcpStream::connect(http).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, http.to_string())
        .header(header::CONTENT_TYPE, "application/sdp")
        .body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, location, body))
}

/// Installs str0m's crypto provider for the process (once).
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// One str0m peer on its own UDP socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    /// The mids of its video and audio.
    mids: (Mid, Mid),
}

impl Peer {
    /// A peer whose offer has `direction` video and audio (H.264, Opus).
    async fn offer(direction: Direction) -> Result<(Self, String, SdpPendingOffer)> {
        install_crypto();
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        // A keyframe burst must not overflow the socket (loopback drops
        // there, not in the network).
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        let mut change = rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, direction, None, None, None);
        let audio = change.add_media(MediaKind::Audio, direction, None, None, None);
        let (offer, pending) = change.apply().context("no offer")?;
        let peer = Self {
            rtc,
            socket,
            local,
            mids: (video, audio),
        };
        Ok((peer, offer.to_sdp_string(), pending))
    }

    fn accept(&mut self, pending: SdpPendingOffer, answer: &str) -> Result<()> {
        let answer = SdpAnswer::from_sdp_string(answer)?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        Ok(())
    }

    /// Drains the output: sends datagrams, hands events to `on_event`;
    /// returns the next timeout.
    fn drain(&mut self, mut on_event: impl FnMut(Event)) -> Result<Instant> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => on_event(e),
            }
        }
    }

    fn input(&mut self, data: &[u8], source: SocketAddr) -> Result<()> {
        let Ok(contents) = data.try_into() else {
            return Ok(());
        };
        self.rtc.handle_input(Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        ))?;
        Ok(())
    }
}

/// Frame numbers → when the publisher handed them to str0m.
pub type SentLog = Arc<Mutex<Vec<Option<Instant>>>>;

/// Publishes `source` over WHIP to `http` as `name` in real time, looping,
/// until `stop` turns true; records each video frame's send time by frame
/// number in `sent` (frames carry the number in their SEI tag). Ends with
/// a DELETE.
///
/// # Errors
/// Signaling or str0m errors, ICE disconnecting.
pub async fn publish(
    http: SocketAddr,
    name: &str,
    source: Arc<Source>,
    sent: SentLog,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let (mut peer, offer, pending) = Peer::offer(Direction::SendOnly).await?;
    let (location, answer) = post_offer(http, &format!("/whip/{name}"), offer).await?;
    peer.accept(pending, &answer)?;
    let mut connected = false;
    // The offerer's own media: no MediaAdded event for them.
    let (video, audio) = (Some(peer.mids.0), Some(peer.mids.1));
    let mut pts: Option<(Pt, Pt)> = None;
    let mut start: Option<Instant> = None;
    let (mut vn, mut an) = (0u64, 0u64);
    let mut buf = vec![0u8; 2048];
    let mut gone = false;
    loop {
        let timeout = peer.drain(|e| match e {
            Event::Connected => connected = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => gone = true,
            _ => {}
        })?;
        if gone {
            bail!("the publisher's ICE disconnected");
        }
        if pts.is_none()
            && connected
            && let (Some(v), Some(a)) = (video, audio)
        {
            let vpt = find_pt(&mut peer.rtc, v, Codec::H264)?;
            let apt = find_pt(&mut peer.rtc, a, Codec::Opus)?;
            pts = Some((vpt, apt));
            start = Some(Instant::now() + Duration::from_millis(20));
        }
        let mut next = timeout;
        if let (Some(start), Some((vpt, apt)), Some(v), Some(a)) = (start, pts, video, audio) {
            let now = Instant::now();
            let video_due = start + Duration::from_micros(vn * 1_000_000 / u64::from(FPS));
            let audio_due = start + Duration::from_millis(an * 20);
            if video_due <= now {
                let au = &source.video[(vn % source.video.len() as u64) as usize];
                let mut data = au.data.clone();
                tag(&mut data, vn);
                let writer = peer.rtc.writer(v).context("video writer")?;
                {
                    let mut log = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    let i = usize::try_from(vn)?;
                    if log.len() <= i {
                        log.resize(i + 1, None);
                    }
                    log[i] = Some(Instant::now());
                }
                writer.write(
                    vpt,
                    now,
                    MediaTime::from_90khz(vn * u64::from(VIDEO_STEP)),
                    data,
                )?;
                vn += 1;
                continue;
            }
            if audio_due <= now {
                let packet = &source.audio[(an % source.audio.len() as u64) as usize];
                let writer = peer.rtc.writer(a).context("audio writer")?;
                writer.write(
                    apt,
                    now,
                    MediaTime::new(
                        an * u64::from(AUDIO_STEP),
                        str0m::media::Frequency::FORTY_EIGHT_KHZ,
                    ),
                    packet.clone(),
                )?;
                an += 1;
                continue;
            }
            next = next.min(video_due).min(audio_due);
        }
        tokio::select! {
            r = peer.socket.recv_from(&mut buf) => {
                let (n, from) = r?;
                peer.input(&buf[..n], from)?;
            }
            () = tokio::time::sleep_until(next.into()) => {
                peer.rtc.handle_input(Input::Timeout(Instant::now()))?;
            }
            _ = stop.changed() => break,
        }
    }
    let _ = delete(http, &location).await;
    Ok(())
}

fn find_pt(rtc: &mut Rtc, mid: Mid, codec: Codec) -> Result<Pt> {
    let writer = rtc.writer(mid).context("writer")?;
    writer
        .payload_params()
        .find(|p| {
            p.spec().codec == codec
                && (codec != Codec::H264 || p.spec().format.packetization_mode == Some(1))
        })
        .map(|p| p.pt())
        .with_context(|| format!("{codec:?} not negotiated"))
}

/// How a viewer treats media packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decrypt {
    /// Through str0m: SRTP decrypted, frames depacketized, RTCP sent.
    Full,
    /// Counted from the clear RTP header only; str0m gets the rest.
    ControlOnly,
}

/// What one viewer received (shared with its task; relaxed atomics).
#[derive(Debug, Default)]
pub struct ViewerCounters {
    /// ICE and DTLS done.
    pub connected: AtomicBool,
    /// RTP packets (video and audio).
    pub packets: AtomicU64,
    /// Bytes of those datagrams.
    pub bytes: AtomicU64,
    /// Packets missing from the sequences (per SSRC).
    pub seq_lost: AtomicU64,
    /// Video frames complete (marker bit).
    pub video_frames: AtomicU64,
    /// Video frames missing (RTP time steps of more than one frame).
    pub video_missing: AtomicU64,
    /// Opus packets.
    pub audio_frames: AtomicU64,
    /// Opus packets missing (RTP time steps of more than 20 ms).
    pub audio_missing: AtomicU64,
    /// Frames str0m delivered (in [`Decrypt::Full`] mode).
    pub decrypted_frames: AtomicU64,
}

/// Per-SSRC sequence and time state.
#[derive(Default)]
struct Track {
    ssrc: u32,
    seq: Option<u16>,
    last_time: Option<u32>,
}

/// Counts one RTP packet of `data` into `c`; false if it is not RTP.
fn count_rtp(data: &[u8], video_pts: &[u8], tracks: &mut [Track; 2], c: &ViewerCounters) -> bool {
    // RFC 7983: 128..=191 is RTP or RTCP; RTCP packet types 192..=223
    // (RFC 5761 §4).
    if data.len() < 12 || !(128..=191).contains(&data[0]) || (192..=223).contains(&data[1]) {
        return false;
    }
    let pt = data[1] & 0x7f;
    let marker = data[1] & 0x80 != 0;
    let seq = u16::from_be_bytes([data[2], data[3]]);
    let time = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    let video = video_pts.contains(&pt);
    let track = &mut tracks[usize::from(!video)];
    if track.ssrc != ssrc {
        *track = Track {
            ssrc,
            ..Track::default()
        };
    }
    c.packets.fetch_add(1, Ordering::Relaxed);
    c.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    if let Some(last) = track.seq {
        let step = seq.wrapping_sub(last);
        if step == 0 || step > 0x8000 {
            // A duplicate or a late packet: no new loss.
            return true;
        }
        if step > 1 {
            c.seq_lost.fetch_add(u64::from(step - 1), Ordering::Relaxed);
        }
    }
    track.seq = Some(seq);
    let (frame_step, frames, missing) = if video {
        (VIDEO_STEP, &c.video_frames, &c.video_missing)
    } else {
        (AUDIO_STEP, &c.audio_frames, &c.audio_missing)
    };
    if !video || marker {
        frames.fetch_add(1, Ordering::Relaxed);
        if let Some(last) = track.last_time {
            let step = time.wrapping_sub(last);
            if step < 0x8000_0000 && step > frame_step + frame_step / 2 {
                let n = (step + frame_step / 2) / frame_step;
                missing.fetch_add(u64::from(n.saturating_sub(1)), Ordering::Relaxed);
            }
        }
        track.last_time = Some(time);
    }
    true
}

/// The payload types an SDP answer gives H.264.
fn h264_pts(answer: &str) -> Vec<u8> {
    answer
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter(|l| l.to_ascii_lowercase().contains("h264/90000"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Plays `name` over WHEP from `http` until `stop` turns true, counting
/// into `counters`; `on_frame` sees every frame str0m delivers (only in
/// [`Decrypt::Full`] mode). Ends with a DELETE.
///
/// # Errors
/// Signaling or str0m errors, ICE disconnecting.
pub async fn view(
    http: SocketAddr,
    name: &str,
    mode: Decrypt,
    counters: Arc<ViewerCounters>,
    mut on_frame: impl FnMut(&MediaData),
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let (mut peer, offer, pending) = Peer::offer(Direction::RecvOnly).await?;
    let (location, answer) = post_offer(http, &format!("/whep/{name}"), offer).await?;
    peer.accept(pending, &answer)?;
    let video_pts = h264_pts(&answer);
    let mut tracks: [Track; 2] = Default::default();
    let mut buf = vec![0u8; 2048];
    let mut gone = false;
    let result = loop {
        let timeout = match peer.drain(|e| match e {
            Event::Connected => counters.connected.store(true, Ordering::Relaxed),
            Event::MediaData(d) => {
                counters.decrypted_frames.fetch_add(1, Ordering::Relaxed);
                on_frame(&d);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => gone = true,
            _ => {}
        }) {
            Ok(t) => t,
            Err(e) => break Err(e),
        };
        if gone {
            break Err(anyhow::anyhow!("the viewer's ICE disconnected"));
        }
        tokio::select! {
            r = peer.socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let mut handle = |peer: &mut Peer, data: &[u8], from| {
                    let rtp = count_rtp(data, &video_pts, &mut tracks, &counters);
                    if rtp && mode == Decrypt::ControlOnly {
                        return Ok(());
                    }
                    peer.input(data, from)
                };
                if let Err(e) = handle(&mut peer, &buf[..n], from) {
                    break Err(e);
                }
                // What else is there, before the next drain.
                let mut failed = None;
                for _ in 0..32 {
                    let Ok((n, from)) = peer.socket.try_recv_from(&mut buf) else { break };
                    if let Err(e) = handle(&mut peer, &buf[..n], from) {
                        failed = Some(e);
                        break;
                    }
                }
                if let Some(e) = failed {
                    break Err(e);
                }
            }
            () = tokio::time::sleep_until(timeout.into()) => {
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(Instant::now())) {
                    break Err(e.into());
                }
            }
            _ = stop.changed() => break Ok(()),
        }
    };
    let _ = delete(http, &location).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_access_units_split_at_first_slices() {
        let sps = [0x67, 0x42, 0xc0, 0x1f];
        let pps = [0x68, 0xce];
        let idr_a = [0x65, 0x88, 0x01];
        let idr_b = [0x65, 0x08, 0x02]; // first_mb_in_slice != 0: same frame
        let p = [0x41, 0x9a, 0x03];
        let mut stream = Vec::new();
        for nal in [&sps[..], &pps, &idr_a, &idr_b, &p] {
            stream.extend_from_slice(&[0, 0, 0, 1]);
            stream.extend_from_slice(nal);
        }
        let mut aus = access_units(&stream);
        assert_eq!(aus.len(), 2);
        assert!(aus[0].keyframe && !aus[1].keyframe);
        tag(&mut aus[1].data, 0x1234);
        assert_eq!(read_tag(&aus[1].data), Some(0x1234));
        let nals = nal_units(&aus[1].data);
        assert_eq!(nals.len(), 2, "the SEI, then the slice");
        assert_eq!(nals[0][0], 0x06);
        assert_eq!(nals[1], &p[..]);
    }
}
