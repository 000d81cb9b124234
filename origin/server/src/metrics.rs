//! Prometheus metrics of the origin (text exposition format at `/metrics`).

use prometheus_client::{
    encoding::{
        EncodeLabelSet, EncodeLabelValue, LabelValueEncoder,
        text::{encode_eof, encode_registry},
    },
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use livestack_packager::Rendition;

/// Label set of the rarely-updated families (per connection or session): a
/// list of `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// `kind` of an ingested frame: label value `video` or `audio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A video access unit.
    Video,
    /// An audio frame.
    Audio,
}

impl EncodeLabelValue for FrameKind {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        encoder.write_str(match self {
            FrameKind::Video => "video",
            FrameKind::Audio => "audio",
        })
    }
}

/// `Content-Type` of the metrics exposition (OpenMetrics 1.0 text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What an SRT data-packet count counts (the receiver side of the SRT
/// statistics, draft-sharabayko-srt §"SRT Statistics"). The receiver's
/// loss count (`pktRcvLossTotal`) is not among them: srt-protocol 0.4.4
/// does not maintain it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtPacketKind {
    /// Data packets received, retransmissions included (`pktRecvTotal`).
    Received,
    /// Retransmitted data packets received (`pktRcvRetransTotal`).
    Retransmitted,
    /// Data packets given up as too late for the latency window, never
    /// delivered (`pktRcvDropTotal`, TLPKTDROP).
    Dropped,
}

impl EncodeLabelValue for SrtPacketKind {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        encoder.write_str(match self {
            SrtPacketKind::Received => "received",
            SrtPacketKind::Retransmitted => "retransmitted",
            SrtPacketKind::Dropped => "dropped",
        })
    }
}

/// Labels of [`Metrics::srt_packets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SrtPacketLabels {
    /// What is counted.
    pub kind: SrtPacketKind,
}

/// Labels of [`Metrics::frames`]; built per frame without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FrameLabels {
    /// Video or audio.
    pub kind: FrameKind,
}

/// A rendition as a label value: its URI name (`video`, `audio1`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RenditionLabel(pub Rendition);

impl EncodeLabelValue for RenditionLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        write!(encoder, "{}", self.0.name())
    }
}

/// Labels of [`Metrics::parts`] and [`Metrics::segments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RenditionLabels {
    /// The rendition.
    pub rendition: RenditionLabel,
}

/// Labels of [`Metrics::http_responses`]; built per response without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    /// `playlist`, `part`, `segment`, `init` or `other`.
    pub route: &'static str,
    /// The status code.
    pub status: u16,
}

/// Every metric the origin exports. Cheap to clone handles live inside.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// SRT connection attempts by `result` (`accepted` or a reject reason).
    pub srt_connections: Family<Labels, Counter>,
    /// Publishers currently connected.
    pub publishers: Gauge,
    /// HTTP connections closed at accept by a cap (`reason`: `listener`,
    /// `address`), public listeners (HTTP, HTTPS and HTTP/3).
    pub http_connections_refused: Family<livestack_listener::RefusalLabels, Counter>,
    /// The same for the admin listener.
    pub admin_connections_refused: Family<livestack_listener::RefusalLabels, Counter>,
    /// The same for the Media over QUIC listener (refused before the QUIC
    /// handshake).
    pub moq_connections_refused: Family<livestack_listener::RefusalLabels, Counter>,
    /// Bytes received from publishers.
    pub ingest_bytes: Counter,
    /// MPEG-TS packets demuxed.
    pub ts_packets: Counter,
    /// MPEG-TS continuity-counter errors (lost or reordered packets).
    pub ts_cc_errors: Counter,
    /// Bytes skipped while resynchronising on garbage.
    pub ts_resync_bytes: Counter,
    /// Elementary-stream parse errors (bad NAL, bad ADTS, oversized PES).
    pub parse_errors: Counter,
    /// Streams of a codec the origin does not support, by `stream_type`.
    pub unsupported_streams: Family<Labels, Counter>,
    /// Frames ingested, by `kind` (`video`/`audio`).
    pub frames: Family<FrameLabels, Counter>,
    /// Requests refused with 429 because their client address held
    /// `max_held_requests_per_address` waiting requests already.
    pub held_requests_refused: Counter,
    /// MoQ sessions by `outcome` (`ended`, `timeout`, `not_found`,
    /// `bad_alpn`, `handshake_failed`, `bad_webtransport`, `moq_error`).
    pub moq_sessions: Family<Labels, Counter>,
    /// Groups the MoQ egress's relay consumers skipped because they fell
    /// behind the ingest.
    pub moq_groups_skipped: Counter,
    /// Groups moq-net dropped for subscribers that could not keep up (stale
    /// groups, summed over sessions, since start).
    pub moq_subscriber_groups_dropped: Gauge,
    /// Broadcasts MoQ sessions announced, by `outcome`: `accepted`,
    /// `unauthorized`, `forbidden`, `conflict` (live elsewhere),
    /// `over_capacity`, `unavailable` (control plane), `bad_catalog`,
    /// `bad_name`.
    pub moq_publishes: Family<Labels, Counter>,
    /// Frames of MoQ publishers refused: undecodable container, a
    /// timestamp not after the previous frame's (B-frames), an unusable
    /// track.
    pub moq_ingest_frames_refused: Counter,
    /// Relay sessions other origins hold open to this one now
    /// ([`crate::relay`]): one per stream each of them pulls.
    pub relay_sessions: Gauge,
    /// Streams this origin pulls from the origins that hold them now.
    pub relay_pulls: Gauge,
    /// Pulls ended, by `outcome` (`idle`: no viewers for `relay_idle`;
    /// `upstream_ended`: the publisher or the holder went away;
    /// `failed`: the holder could not be reached or refused).
    pub relay_pulls_ended: Family<Labels, Counter>,
    /// Relayed frames or parameter records refused as malformed.
    pub relay_frames_refused: Counter,
    /// AAC frames transcoded to Opus for WHEP viewers (once per broadcast,
    /// whatever the number of viewers; `crate::webrtc` audio).
    pub webrtc_audio_frames_transcoded: Counter,
    /// AAC frames the WHEP transcoder refused: undecodable (corrupt,
    /// truncated), or of a track it cannot take (not AAC-LC, more than two
    /// channels).
    pub webrtc_audio_frames_refused: Counter,
    /// Video frames with B-frame reordering (PTS ≠ DTS) sent to WHEP
    /// viewers, which browsers cannot play (publish without B-frames).
    pub webrtc_reordered_video_frames: Counter,
    /// SRT data packets of every publisher, by kind: received,
    /// retransmitted, dropped as too late (from each socket's
    /// statistics, once a second and at its end).
    pub srt_packets: Family<SrtPacketLabels, Counter>,
    /// Frames dropped before packaging (no keyframe to start from).
    pub frames_dropped: Counter,
    /// Events a slow consumer missed (it resyncs at the next keyframe).
    pub consumer_lagged_events: Counter,
    /// Whole groups (GOPs) a slow consumer skipped to catch up with the
    /// newest group.
    pub consumer_skipped_groups: Counter,
    /// Publish sessions ended abnormally, by `reason`.
    pub sessions_ended: Family<Labels, Counter>,
    /// Parts published, by `rendition`.
    pub parts: Family<RenditionLabels, Counter>,
    /// Segments completed, by `rendition`.
    pub segments: Family<RenditionLabels, Counter>,
    /// HTTP responses by `route` and `status`.
    pub http_responses: Family<HttpLabels, Counter>,
    /// Requests currently held by blocking playlist reload or a preload hint.
    pub blocked_requests: Gauge,
    /// Response body bytes sent by the HTTP server (media egress).
    pub http_sent_bytes: Counter,
    /// Registry heartbeats by `result` (`ok`/`error`).
    pub heartbeats: Family<Labels, Counter>,
    /// 1 while the node is draining.
    pub node_draining: Gauge,
    /// The `status="200"` series of [`Self::http_responses`] for each of
    /// [`HTTP_ROUTES`], resolved once: counting a successful response then
    /// takes no lock (a [`Family`] lookup read-locks the family).
    http_ok: [Counter; HTTP_ROUTES.len()],
}

/// The `route` label values of [`Metrics::http_responses`].
pub const HTTP_ROUTES: [&str; 5] = ["playlist", "part", "segment", "init", "other"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Counts one HTTP response of `route` (one of [`HTTP_ROUTES`]) with
    /// `status` in [`Self::http_responses`]; lock-free for 200.
    pub fn count_http_response(&self, route: &'static str, status: u16) {
        if status == 200
            && let Some(i) = HTTP_ROUTES.iter().position(|r| *r == route)
        {
            self.http_ok[i].inc();
            return;
        }
        self.http_responses
            .get_or_create(&HttpLabels { route, status })
            .inc();
    }

    /// Creates and registers every metric under the `livestack_origin_`
    /// prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("livestack_origin");
        let mut m = Self {
            srt_connections: Family::default(),
            publishers: Gauge::default(),
            http_connections_refused: Family::default(),
            admin_connections_refused: Family::default(),
            moq_connections_refused: Family::default(),
            ingest_bytes: Counter::default(),
            ts_packets: Counter::default(),
            ts_cc_errors: Counter::default(),
            ts_resync_bytes: Counter::default(),
            parse_errors: Counter::default(),
            unsupported_streams: Family::default(),
            frames: Family::default(),
            held_requests_refused: Counter::default(),
            moq_sessions: Family::default(),
            moq_groups_skipped: Counter::default(),
            moq_subscriber_groups_dropped: Gauge::default(),
            moq_publishes: Family::default(),
            moq_ingest_frames_refused: Counter::default(),
            relay_sessions: Gauge::default(),
            relay_pulls: Gauge::default(),
            relay_pulls_ended: Family::default(),
            relay_frames_refused: Counter::default(),
            webrtc_audio_frames_transcoded: Counter::default(),
            webrtc_audio_frames_refused: Counter::default(),
            webrtc_reordered_video_frames: Counter::default(),
            srt_packets: Family::default(),
            frames_dropped: Counter::default(),
            consumer_lagged_events: Counter::default(),
            consumer_skipped_groups: Counter::default(),
            sessions_ended: Family::default(),
            parts: Family::default(),
            segments: Family::default(),
            http_responses: Family::default(),
            blocked_requests: Gauge::default(),
            http_sent_bytes: Counter::default(),
            heartbeats: Family::default(),
            node_draining: Gauge::default(),
            http_ok: Default::default(),
            registry: Registry::default(),
        };
        for (route, counter) in HTTP_ROUTES.iter().zip(&mut m.http_ok) {
            *counter = m
                .http_responses
                .get_or_create(&HttpLabels { route, status: 200 })
                .clone();
        }
        let r = &mut registry;
        r.register(
            "srt_connections",
            "SRT connection attempts by result",
            m.srt_connections.clone(),
        );
        r.register("publishers", "Publishers connected", m.publishers.clone());
        r.register(
            "http_connections_refused",
            "HTTP connections closed at accept because a connection cap was reached, by cap",
            m.http_connections_refused.clone(),
        );
        r.register(
            "moq_connections_refused",
            "Media over QUIC connections refused before the handshake because a connection cap was reached, by cap",
            m.moq_connections_refused.clone(),
        );
        r.register(
            "admin_connections_refused",
            "Admin API connections closed at accept because a connection cap was reached, by cap",
            m.admin_connections_refused.clone(),
        );
        r.register(
            "ingest_bytes",
            "Bytes received from publishers",
            m.ingest_bytes.clone(),
        );
        r.register(
            "held_requests_refused",
            "Requests refused with 429: their address held the maximum of waiting requests",
            m.held_requests_refused.clone(),
        );
        r.register(
            "moq_sessions",
            "Media over QUIC sessions by outcome",
            m.moq_sessions.clone(),
        );
        r.register(
            "moq_groups_skipped",
            "Groups the MoQ egress skipped because its relay consumer fell behind",
            m.moq_groups_skipped.clone(),
        );
        r.register(
            "moq_subscriber_groups_dropped",
            "Groups dropped for MoQ subscribers that could not keep up, since start",
            m.moq_subscriber_groups_dropped.clone(),
        );
        r.register(
            "moq_publishes",
            "Broadcasts announced by MoQ publishers, by outcome",
            m.moq_publishes.clone(),
        );
        r.register(
            "moq_ingest_frames_refused",
            "Frames of MoQ publishers refused (bad container, non-increasing timestamps, unusable track)",
            m.moq_ingest_frames_refused.clone(),
        );
        r.register(
            "relay_sessions",
            "Relay sessions other origins hold open to this one (one per pulled stream)",
            m.relay_sessions.clone(),
        );
        r.register(
            "relay_pulls",
            "Streams this origin pulls from the origins holding them",
            m.relay_pulls.clone(),
        );
        r.register(
            "relay_pulls_ended",
            "Pulls from other origins ended, by outcome (idle, upstream_ended, failed)",
            m.relay_pulls_ended.clone(),
        );
        r.register(
            "relay_frames_refused",
            "Relayed frames or parameter records refused as malformed",
            m.relay_frames_refused.clone(),
        );
        r.register(
            "webrtc_audio_frames_transcoded",
            "AAC frames transcoded to Opus for WHEP viewers (one transcoder per broadcast)",
            m.webrtc_audio_frames_transcoded.clone(),
        );
        r.register(
            "webrtc_audio_frames_refused",
            "AAC frames the WHEP audio transcoder refused (undecodable, or a track it cannot take)",
            m.webrtc_audio_frames_refused.clone(),
        );
        r.register(
            "webrtc_reordered_video_frames",
            "Video frames with B-frames (PTS != DTS) sent to WHEP viewers, which browsers cannot play",
            m.webrtc_reordered_video_frames.clone(),
        );
        r.register(
            "srt_packets",
            "SRT data packets from publishers, by kind (received, retransmitted, dropped as too late)",
            m.srt_packets.clone(),
        );
        r.register(
            "ts_packets",
            "MPEG-TS packets demuxed",
            m.ts_packets.clone(),
        );
        r.register(
            "ts_cc_errors",
            "MPEG-TS continuity counter errors",
            m.ts_cc_errors.clone(),
        );
        r.register(
            "ts_resync_bytes",
            "Bytes skipped to resynchronise MPEG-TS",
            m.ts_resync_bytes.clone(),
        );
        r.register(
            "parse_errors",
            "Elementary stream parse errors",
            m.parse_errors.clone(),
        );
        r.register(
            "unsupported_streams",
            "Elementary streams of unsupported codecs",
            m.unsupported_streams.clone(),
        );
        r.register("frames", "Frames ingested", m.frames.clone());
        r.register(
            "frames_dropped",
            "Frames dropped before packaging",
            m.frames_dropped.clone(),
        );
        r.register(
            "consumer_lagged_events",
            "Events missed by slow consumers",
            m.consumer_lagged_events.clone(),
        );
        r.register(
            "consumer_skipped_groups",
            "Groups skipped by slow consumers",
            m.consumer_skipped_groups.clone(),
        );
        r.register(
            "sessions_ended",
            "Publish sessions ended, by reason",
            m.sessions_ended.clone(),
        );
        r.register("parts", "LL-HLS parts published", m.parts.clone());
        r.register("segments", "LL-HLS segments completed", m.segments.clone());
        r.register(
            "http_responses",
            "HTTP responses by route and status",
            m.http_responses.clone(),
        );
        r.register(
            "blocked_requests",
            "Requests held by blocking reload or preload hints",
            m.blocked_requests.clone(),
        );
        r.register(
            "http_sent_bytes",
            "Response body bytes sent by the HTTP server",
            m.http_sent_bytes.clone(),
        );
        r.register(
            "heartbeats",
            "Registry heartbeats by result",
            m.heartbeats.clone(),
        );
        r.register(
            "node_draining",
            "1 while the node is draining",
            m.node_draining.clone(),
        );
        Self { registry, ..m }
    }

    /// What `/metrics` answers (public and admin listeners): this
    /// registry followed by the control-plane client's families of `node`.
    pub fn exposition(&self, node: &crate::cluster::Node) -> String {
        self.encode_with(|out| node.client().encode_metrics(out))
    }

    /// The text exposition (OpenMetrics-compatible Prometheus format).
    pub fn encode(&self) -> String {
        self.encode_with(|_| {})
    }

    /// The text exposition with more metric families (another registry's
    /// `encode_registry` output) appended by `extra` before the final
    /// `# EOF`.
    pub fn encode_with(&self, extra: impl FnOnce(&mut String)) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        extra(&mut out);
        let _ = encode_eof(&mut out);
        out
    }
}
