//! SRT ingest: the listener, access control at handshake, and one publish
//! session per caller feeding the MPEG-TS demuxer into a broadcast.
//!
//! The caller's `streamid` follows the SRT Access Control syntax
//! (`#!::r=live/NAME,m=publish,t=TOKEN`; see
//! [`livestack_media::srt_access`]) or is the plain `live/NAME`. Refusals
//! happen in the handshake with the reject codes of the SRT Access Control
//! spec (§"Rejection codes"): 2400 bad request (malformed streamid), 2401
//! unauthorized (no credential), 2403 forbidden (wrong credential), 2405 bad
//! mode (a play request: this listener ingests only), 2409 conflict (the
//! stream is already live), 2402 overload (this node already has
//! [`SrtConfig::max_publishers`]), 2503 down (control plane unavailable,
//! or the node is draining).
//!
//! A publisher is disconnected when it sends more than
//! [`SrtConfig::max_bitrate`] (beyond a [`BITRATE_BURST`] allowance), when
//! it sends 1 MiB without an MPEG-TS packet, or after 10 s of silence.
//! Memory per publisher is bounded by the demuxer (8 MiB of partial PES per
//! track) and the broadcast's relay log ([`fanout::LOG_BYTES`] and
//! [`fanout::LOG_EVENTS`]), and per stream by the playlist window.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use livestack_media::{
    ingest::{IngestEvent, IngestStats, TsIngest},
    srt_access::{Mode, StreamId},
};
use srt_protocol::{
    options::{KeySize, Passphrase},
    packet::{RejectReason, ServerRejectReason},
    settings::KeySettings,
};
use srt_tokio::{ConnectionRequest, SrtListener};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    cluster::{Node, Publish, PublishTicket, Refusal},
    config::{BITRATE_BURST, SrtConfig},
    control::ControlError,
    fanout::{self, MediaEvent},
    metrics::{FrameKind, FrameLabels, Metrics, SrtPacketKind, SrtPacketLabels},
    streams::Streams,
};

/// A publisher that sent this much without a single valid MPEG-TS packet is
/// disconnected: it is not sending MPEG-TS.
const GARBAGE_LIMIT: u64 = 1 << 20;
/// A publisher silent for this long is disconnected (SRT's own peer-idle
/// timeout is 5 s; this covers a caller that keeps the link alive but sends
/// no media).
const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the ingest needs from the rest of the origin.
pub struct IngestContext {
    /// Publish admission (authorization, placement, sessions) and kicks.
    pub node: Arc<Node>,
    /// Where packaged streams are served from.
    pub streams: Arc<Streams>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Connection counter (log and span field `conn`).
    pub next_connection: AtomicU64,
    /// The SRT settings: latency and the caps.
    pub limits: SrtConfig,
    /// Publishers from the handshake on (see [`SrtConfig::max_publishers`]).
    pub publishing: AtomicUsize,
}

/// One of the [`SrtConfig::max_publishers`] places, held from the handshake
/// to the end of the session.
pub(crate) struct PublisherSlot<'a>(&'a AtomicUsize);

impl<'a> PublisherSlot<'a> {
    pub(crate) fn take(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for PublisherSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A publisher's input-rate limit: a token bucket of `burst` seconds at
/// `bits_per_second`, refilled continuously. Sans IO: `now` is passed in.
#[derive(Debug, Clone)]
pub struct RateLimit {
    bytes_per_second: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    /// A full bucket at `now`.
    pub fn new(bits_per_second: u64, burst: Duration, now: Instant) -> Self {
        let bytes_per_second = bits_per_second as f64 / 8.0;
        let capacity = bytes_per_second * burst.as_secs_f64();
        Self {
            bytes_per_second,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes `bytes` at `now`; false when the input is above the limit
    /// (the bucket is empty).
    pub fn admit(&mut self, bytes: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.bytes_per_second).min(self.capacity);
        self.tokens -= bytes as f64;
        self.tokens >= 0.0
    }
}

/// Serves SRT on the bound UDP `socket` with receiver `latency`; returns
/// the bound address and a future that serves callers until dropped.
///
/// # Errors
/// The bind error.
pub async fn listen(
    socket: tokio::net::UdpSocket,
    ctx: Arc<IngestContext>,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()> + Send)> {
    let local = socket.local_addr()?;
    let (listener, mut incoming) = SrtListener::builder()
        .latency(ctx.limits.latency)
        .socket(socket)
        .bind(local)
        .await?;
    let serve = async move {
        let _listener = listener; // closing it would stop the accept loop
        while let Some(request) = incoming.incoming().next().await {
            let ctx = ctx.clone();
            tokio::spawn(async move { handle_request(request, ctx).await });
        }
    };
    Ok((local, serve))
}

fn reject_label(r: ServerRejectReason) -> &'static str {
    match r {
        ServerRejectReason::BadRequest => "bad_request",
        ServerRejectReason::Unauthorized => "unauthorized",
        ServerRejectReason::Forbidden => "forbidden",
        ServerRejectReason::BadMode => "bad_mode",
        ServerRejectReason::Conflict => "conflict",
        ServerRejectReason::Down => "unavailable",
        ServerRejectReason::Overload => "overload",
        _ => "other",
    }
}

async fn reject(request: ConnectionRequest, reason: ServerRejectReason, ctx: &IngestContext) {
    ctx.metrics
        .srt_connections
        .get_or_create(&vec![("result", reject_label(reason).to_owned())])
        .inc();
    if let Err(e) = request.reject(RejectReason::Server(reason)).await {
        debug!(error = %e, "sending the rejection failed");
    }
}

async fn handle_request(request: ConnectionRequest, ctx: Arc<IngestContext>) {
    let conn = ctx.next_connection.fetch_add(1, Ordering::Relaxed);
    let span = info_span!("srt", conn, session.id = tracing::field::Empty);
    async move {
        let Some(_slot) = PublisherSlot::take(&ctx.publishing, ctx.limits.max_publishers) else {
            warn!(
                max = ctx.limits.max_publishers,
                "rejected: this node has as many publishers as it takes"
            );
            return reject(request, ServerRejectReason::Overload, &ctx).await;
        };
        // No streamid parses as an empty one, which is refused (2400).
        let raw = request
            .stream_id()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let sid = match StreamId::parse(&raw) {
            Ok(s) => s,
            Err(e) => {
                warn!(reason = %e, "rejected: malformed streamid");
                return reject(request, ServerRejectReason::BadRequest, &ctx).await;
            }
        };
        if matches!(sid.mode, Some(Mode::Request)) {
            warn!(stream = %sid.resource, "rejected: SRT playback is not offered, only publish");
            return reject(request, ServerRejectReason::BadMode, &ctx).await;
        }
        let name = sid.broadcast_name().to_owned();
        let encrypted = request.key_size() != KeySize::Unspecified;
        let ticket = match ctx
            .node
            .begin_publish(
                &name,
                sid.token.as_deref(),
                Publish {
                    encrypted,
                    ..Publish::over("srt")
                },
            )
            .await
        {
            Ok(t) => t,
            Err(e) => {
                warn!(stream = %name, reason = %e, "rejected");
                let code = match e {
                    Refusal::Control(ControlError::Unauthorized { .. }) => {
                        ServerRejectReason::Unauthorized
                    }
                    Refusal::Control(ControlError::Forbidden { .. }) => {
                        ServerRejectReason::Forbidden
                    }
                    Refusal::Control(ControlError::AlreadyLive { .. }) => {
                        ServerRejectReason::Conflict
                    }
                    _ => ServerRejectReason::Down,
                };
                return reject(request, code, &ctx).await;
            }
        };
        tracing::Span::current().record("session.id", ticket.session_id.as_str());
        let key = ticket.passphrase.as_ref().map(|p| KeySettings {
            key_size: request.key_size(),
            passphrase: Passphrase::from(p.as_str()),
        });
        let socket = match request.accept(key).await {
            Ok(s) => s,
            Err(e) => {
                warn!(stream = %name, error = %e, "handshake failed after accept");
                ctx.node.end_publish(&ticket).await;
                ctx.metrics
                    .srt_connections
                    .get_or_create(&vec![("result", "handshake_failed".to_owned())])
                    .inc();
                return;
            }
        };
        ctx.metrics
            .srt_connections
            .get_or_create(&vec![("result", "accepted".to_owned())])
            .inc();
        info!(stream = %name, source = ?ticket.source, "publisher connected");
        ctx.metrics.publishers.inc();
        let reason = publish(socket, &name, &ticket, &ctx).await;
        ctx.metrics.publishers.dec();
        ctx.metrics
            .sessions_ended
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
        ctx.node.end_publish(&ticket).await;
        info!(stream = %name, reason, "publisher gone");
    }
    .instrument(span)
    .await
}

/// Reads the caller's MPEG-TS until it ends; returns why it ended.
async fn publish(
    mut socket: srt_tokio::SrtSocket,
    name: &str,
    ticket: &PublishTicket,
    ctx: &IngestContext,
) -> &'static str {
    let (producer, subscriber) = fanout::broadcast();
    ctx.streams.start(name, &subscriber);
    let mut demux = TsIngest::new();
    let mut reported = demux.stats().clone();
    let mut bytes_in: u64 = 0;
    let mut rate = RateLimit::new(ctx.limits.max_bitrate, BITRATE_BURST, Instant::now());
    let mut stats = socket.statistics().clone();
    let mut counted = SrtCounts::default();
    let reason = loop {
        let next = tokio::select! {
            next = tokio::time::timeout(STALL_TIMEOUT, socket.next()) => next,
            () = ticket.kick.notified() => break "kicked",
            Some(s) = stats.next() => {
                counted.report(&s, ctx);
                continue;
            }
        };
        let data = match next {
            Err(_) => break "stalled",
            Ok(None) => break "closed",
            Ok(Some(Err(e))) => {
                debug!(error = %e, "receive error");
                break "error";
            }
            Ok(Some(Ok((_, data)))) => data,
        };
        if !rate.admit(data.len(), Instant::now()) {
            warn!(
                stream = %name,
                max_bitrate = ctx.limits.max_bitrate,
                "publisher above the bit-rate limit; disconnecting"
            );
            break "bitrate_exceeded";
        }
        bytes_in += data.len() as u64;
        ticket
            .bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        ctx.metrics.ingest_bytes.inc_by(data.len() as u64);
        demux.push(&data);
        drain(&mut demux, &producer, name, ctx);
        let s = demux.stats().clone();
        report(&reported, &s, ctx);
        reported = s;
        if reported.packets == 0 && bytes_in > GARBAGE_LIMIT {
            warn!(stream = %name, bytes = bytes_in, "no MPEG-TS in the input; disconnecting");
            break "not_mpegts";
        }
    };
    // The last PES of a stream (length 0, video) ends only with the input.
    demux.finish();
    drain(&mut demux, &producer, name, ctx);
    report(&reported, demux.stats(), ctx);
    producer.send(MediaEvent::End);
    reason
}

/// The SRT packet counts of one socket already added to the metrics (its
/// statistics are totals since it opened).
#[derive(Default)]
struct SrtCounts {
    received: u64,
    retransmitted: u64,
    dropped: u64,
}

impl SrtCounts {
    fn report(&mut self, s: &srt_protocol::statistics::SocketStatistics, ctx: &IngestContext) {
        for (kind, seen, now) in [
            (SrtPacketKind::Received, &mut self.received, s.rx_data),
            (
                SrtPacketKind::Retransmitted,
                &mut self.retransmitted,
                s.rx_retransmit_data,
            ),
            (SrtPacketKind::Dropped, &mut self.dropped, s.rx_dropped_data),
        ] {
            if now > *seen {
                ctx.metrics
                    .srt_packets
                    .get_or_create(&SrtPacketLabels { kind })
                    .inc_by(now - *seen);
                *seen = now;
            }
        }
    }
}

/// Forwards the demuxer's events into the broadcast.
fn drain(
    demux: &mut TsIngest,
    producer: &fanout::BroadcastProducer,
    name: &str,
    ctx: &IngestContext,
) {
    while let Some(ev) = demux.poll_event() {
        match ev {
            IngestEvent::Track { id, params } => {
                info!(stream = %name, track = id, codec = params.codec_string(), "track");
                producer.send(MediaEvent::Track { id, params });
            }
            IngestEvent::Frame { id, frame } => {
                let kind = if frame.duration.is_some() {
                    FrameKind::Audio
                } else {
                    FrameKind::Video
                };
                ctx.metrics
                    .frames
                    .get_or_create(&FrameLabels { kind })
                    .inc();
                producer.send(MediaEvent::Frame { id, frame });
            }
            IngestEvent::Discontinuity { id } => producer.send(MediaEvent::Loss { id }),
            IngestEvent::Unsupported { id, stream_type } => {
                warn!(stream = %name, track = id, stream_type, "unsupported codec; track ignored");
                ctx.metrics
                    .unsupported_streams
                    .get_or_create(&vec![("stream_type", format!("0x{stream_type:02x}"))])
                    .inc();
            }
            _ => {}
        }
    }
}

/// Adds the demuxer's counter increments since `before` to the metrics.
fn report(before: &IngestStats, now: &IngestStats, ctx: &IngestContext) {
    let m = &ctx.metrics;
    m.ts_packets.inc_by(now.packets - before.packets);
    m.ts_cc_errors.inc_by(now.cc_errors - before.cc_errors);
    m.ts_resync_bytes
        .inc_by(now.resync_bytes_skipped - before.resync_bytes_skipped);
    m.parse_errors
        .inc_by((now.parse_errors + now.pes_dropped) - (before.parse_errors + before.pes_dropped));
    m.frames_dropped
        .inc_by(now.frames_dropped_before_keyframe - before.frames_dropped_before_keyframe);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_allows_the_rate_and_a_burst() {
        let t0 = Instant::now();
        // 8 kbit/s = 1,000 bytes/s, 2 s burst = 2,000 bytes.
        let mut r = RateLimit::new(8_000, Duration::from_secs(2), t0);
        assert!(r.admit(2_000, t0), "the burst");
        assert!(!r.admit(1, t0), "nothing more at once");
        let mut r = RateLimit::new(8_000, Duration::from_secs(2), t0);
        // Exactly the rate for a minute, in 100 ms steps.
        for i in 1..=600 {
            assert!(
                r.admit(100, t0 + Duration::from_millis(100 * i)),
                "step {i}"
            );
        }
        // Twice the rate empties the burst within about 2 s.
        let mut r = RateLimit::new(8_000, Duration::from_secs(2), t0);
        let cut = (1..=100)
            .find(|i| !r.admit(200, t0 + Duration::from_millis(100 * i)))
            .expect("cut");
        assert!((19..=21).contains(&cut), "cut after {cut} steps");
        // A clock that goes back gives nothing.
        let mut r = RateLimit::new(8_000, Duration::from_secs(2), t0 + Duration::from_secs(5));
        assert!(r.admit(2_000, t0));
        assert!(!r.admit(1, t0));
    }

    #[test]
    fn publisher_slots_are_capped_and_returned() {
        let count = AtomicUsize::new(0);
        let a = PublisherSlot::take(&count, 2).expect("first");
        let b = PublisherSlot::take(&count, 2).expect("second");
        assert!(PublisherSlot::take(&count, 2).is_none());
        drop(a);
        let c = PublisherSlot::take(&count, 2).expect("a freed place");
        drop((b, c));
        assert_eq!(count.load(Ordering::Relaxed), 0);
    }
}
