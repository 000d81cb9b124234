//! Prometheus metrics of the origin (text exposition format at `/metrics`).

use prometheus_client::{
    encoding::text::{encode_eof, encode_registry},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Label set: a list of `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// Every metric the origin exports. Cheap to clone handles live inside.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// SRT connection attempts by `result` (`accepted` or a reject reason).
    pub srt_connections: Family<Labels, Counter>,
    /// Publishers currently connected.
    pub publishers: Gauge,
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
    pub frames: Family<Labels, Counter>,
    /// Frames dropped before packaging (no keyframe to start from).
    pub frames_dropped: Counter,
    /// Events a slow consumer missed (it resyncs at the next keyframe).
    pub consumer_lagged_events: Counter,
    /// Publish sessions ended abnormally, by `reason`.
    pub sessions_ended: Family<Labels, Counter>,
    /// Parts published, by `rendition`.
    pub parts: Family<Labels, Counter>,
    /// Segments completed, by `rendition`.
    pub segments: Family<Labels, Counter>,
    /// HTTP responses by `route` and `status`.
    pub http_responses: Family<Labels, Counter>,
    /// Requests currently held by blocking playlist reload or a preload hint.
    pub blocked_requests: Gauge,
    /// Response body bytes sent by the HTTP server (media egress).
    pub http_sent_bytes: Counter,
    /// Registry heartbeats by `result` (`ok`/`error`).
    pub heartbeats: Family<Labels, Counter>,
    /// 1 while the node is draining.
    pub node_draining: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `livestack_origin_`
    /// prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("livestack_origin");
        let m = Self {
            srt_connections: Family::default(),
            publishers: Gauge::default(),
            ingest_bytes: Counter::default(),
            ts_packets: Counter::default(),
            ts_cc_errors: Counter::default(),
            ts_resync_bytes: Counter::default(),
            parse_errors: Counter::default(),
            unsupported_streams: Family::default(),
            frames: Family::default(),
            frames_dropped: Counter::default(),
            consumer_lagged_events: Counter::default(),
            sessions_ended: Family::default(),
            parts: Family::default(),
            segments: Family::default(),
            http_responses: Family::default(),
            blocked_requests: Gauge::default(),
            http_sent_bytes: Counter::default(),
            heartbeats: Family::default(),
            node_draining: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "srt_connections",
            "SRT connection attempts by result",
            m.srt_connections.clone(),
        );
        r.register("publishers", "Publishers connected", m.publishers.clone());
        r.register(
            "ingest_bytes",
            "Bytes received from publishers",
            m.ingest_bytes.clone(),
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
