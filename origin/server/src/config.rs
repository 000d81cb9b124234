//! Origin configuration: a TOML file, environment overrides and flags.
//!
//! Every key has a documented default, so an empty file (or none) gives a
//! working origin on loopback. Precedence, highest first: command-line flag,
//! environment variable (`LIVESTACK_*`), TOML file, default.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

/// Errors while loading the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown keys are refused
    /// so that a typo is never silently ignored).
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error, with line and column.
        source: toml::de::Error,
    },
    /// A value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole origin configuration (the `[origin]`-less top level of the TOML
/// file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    /// UDP address of the SRT listener. Default `127.0.0.1:9000`.
    pub srt: SocketAddr,
    /// TCP address of the plain-HTTP listener (HTTP/1.1 and cleartext HTTP/2
    /// by prior knowledge). Default `127.0.0.1:8080`.
    pub http: SocketAddr,
    /// Address of the HTTPS listener: HTTP/1.1 and HTTP/2 (ALPN) on TCP,
    /// HTTP/3 on UDP at the same port; `None` (the default) disables it.
    pub https: Option<SocketAddr>,
    /// UDP address of the Media over QUIC listener: WebTransport sessions
    /// at `/moq` and raw QUIC with the MoQ ALPNs (see [`crate::moq`]);
    /// `None` (the default) disables it.
    pub webtransport: Option<SocketAddr>,
    /// UDP address of WebRTC (WHIP ingest at `POST /whip/NAME` on the HTTP
    /// listeners, see [`crate::webrtc`]): one port for every session,
    /// ICE-lite. `None` (the default) disables it.
    pub webrtc: Option<SocketAddr>,
    /// The IP announced to WebRTC clients when it is not the bound one
    /// (NAT, cloud VMs). Default: the bound address.
    pub webrtc_public_ip: Option<std::net::IpAddr>,
    /// PEM certificate chain for HTTPS. With neither this nor `tls_key`, a
    /// self-signed certificate for `localhost` is generated at start.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<PathBuf>,
    /// SRT settings.
    #[serde(rename = "srt_options")]
    pub srt_options: SrtConfig,
    /// WebRTC settings (`[webrtc_options]`).
    pub webrtc_options: WebRtcConfig,
    /// LL-HLS packaging settings.
    pub hls: HlsConfig,
    /// Publish authorization.
    pub auth: AuthConfig,
    /// Who may read from the public listeners (`[access]`): open, or
    /// closed to all but the edges and token holders.
    pub access: AccessConfig,
    /// This node's identity in a deployment and its control-plane settings.
    pub cluster: ClusterConfig,
    /// The admin API listener.
    pub admin: AdminConfig,
    /// Limits of every HTTP listener (`[limits]`): header-read and TLS
    /// timeouts, connection caps in total and per client address, HTTP/2
    /// streams. Defaults in [`livestack_listener`].
    pub limits: livestack_listener::ListenerLimits,
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            srt: SocketAddr::from(([127, 0, 0, 1], 9000)),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            https: None,
            webtransport: None,
            webrtc: None,
            webrtc_public_ip: None,
            tls_cert: None,
            tls_key: None,
            srt_options: SrtConfig::default(),
            webrtc_options: WebRtcConfig::default(),
            hls: HlsConfig::default(),
            auth: AuthConfig::default(),
            access: AccessConfig::default(),
            cluster: ClusterConfig::default(),
            admin: AdminConfig::default(),
            limits: livestack_listener::ListenerLimits::default(),
        }
    }
}

/// This node in a deployment (`[cluster]`): identity, the control plane,
/// heartbeats and capacity.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Unique node id, e.g. `"origin-eu-west-1a"`. Default
    /// `origin-<hostname>`.
    pub node_id: String,
    /// Region name, the unit of geo-affinity routing. Default `"local"`.
    pub region: String,
    /// Latitude and longitude of the region in degrees (WGS 84), for
    /// geo routing; `None`: edges route by country table only.
    pub location: Option<(f64, f64)>,
    /// The control plane: `redis://host:port[/db]`, `rediss://...`,
    /// `redis+sentinel://host1:26379,host2:26379/SERVICE[/db]`. `None` (the
    /// default): the in-memory control plane, one box.
    pub redis: Option<String>,
    /// Base URL clients and edges use to reach this node's HTTP listener
    /// (no trailing slash). Default `http://<http address>`.
    pub public_url: Option<String>,
    /// Public SRT address (`srt://host:port`) reported in the registry.
    /// Default `srt://<srt address>`.
    pub public_srt: Option<String>,
    /// Registry heartbeat interval; stream placements are leases renewed
    /// with each heartbeat. Default 1 s; range 100 ms ..= 60 s.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Lifetime of the registry record and of the placement leases without
    /// a heartbeat: a node that stops is considered gone after this long.
    /// Default 3 s; at least twice `heartbeat_interval`.
    #[serde(with = "humantime_serde")]
    pub heartbeat_ttl: Duration,
    /// How long a stream's keys read from the control plane are reused for
    /// play authorization. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub auth_cache_ttl: Duration,
    /// How long cached keys may still authorize new publishers while the
    /// control plane is unreachable (0 s: never). Default 5 min.
    #[serde(with = "humantime_serde")]
    pub auth_grace: Duration,
    /// Capacity: live streams this node takes (load 1.0 at this many).
    /// Default 100.
    pub max_streams: u64,
    /// Capacity: viewers (distinct client connections). Default 10,000.
    pub max_viewers: u64,
    /// Capacity: HTTP egress, bits per second. Default 10 Gbit/s.
    pub max_egress_bps: u64,
    /// Origin-to-origin relay ([`crate::relay`]): a viewer asking for a
    /// stream another origin holds makes this node pull it over Media over
    /// QUIC. Default true (it needs a shared control plane and the holder's
    /// `webtransport` listener).
    pub relay: bool,
    /// A pulled stream without viewers for this long is let go (its
    /// upstream subscription ends). Default 10 s; range 1 s ..= 1 h.
    #[serde(with = "humantime_serde")]
    pub relay_idle: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        Self {
            node_id: format!("origin-{host}"),
            region: "local".to_owned(),
            location: None,
            redis: None,
            public_url: None,
            public_srt: None,
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_ttl: Duration::from_secs(3),
            auth_cache_ttl: Duration::from_secs(5),
            auth_grace: Duration::from_secs(300),
            max_streams: 100,
            max_viewers: 10_000,
            max_egress_bps: 10_000_000_000,
            relay: true,
            relay_idle: Duration::from_secs(10),
        }
    }
}

/// The admin API listener (`[admin]`): a separate listener, every call
/// bearer-token protected.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// TCP address. Default `127.0.0.1:9091`.
    pub listen: SocketAddr,
    /// The bearer token (at least 16 characters). `None` (the default):
    /// the admin listener does not start.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9091)),
            token: None,
        }
    }
}

/// SRT listener settings (`[srt_options]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SrtConfig {
    /// Receiver latency (TSBPD delay), e.g. `"120ms"`. The larger of this and
    /// the caller's value is used, as in libsrt. Default 120 ms (libsrt's
    /// default). Range 20 ms ..= 10 s.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// Publishers this node takes at once, counted from the handshake on
    /// (before authorization, so a flood of handshakes is capped too); one
    /// more is refused in the handshake with 2402 (SRT Access Control
    /// `SRT_REJX_OVERLOAD`: "the server is too heavily loaded"). Default
    /// 256 (one ingest of 6 Mbit/s costs about 1.25 % of a core here);
    /// at least 1.
    pub max_publishers: usize,
    /// A publisher's input rate limit in bits per second, with a burst
    /// allowance of [`BITRATE_BURST`] at that rate: a publisher that sends
    /// more is disconnected (session end reason `bitrate_exceeded`, logged
    /// and counted). Default 50 Mbit/s (a 4K HEVC contribution feed);
    /// at least 100 kbit/s.
    pub max_bitrate: u64,
}

/// How far above [`SrtConfig::max_bitrate`] a publisher may burst: this
/// much time's worth of bytes at the limit (a keyframe, a retransmission
/// burst after loss).
pub const BITRATE_BURST: Duration = Duration::from_secs(2);

impl Default for SrtConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(120),
            max_publishers: 256,
            max_bitrate: 50_000_000,
        }
    }
}

/// WebRTC settings (`[webrtc_options]`; the UDP address is `webrtc`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcConfig {
    /// WebRTC sessions (WHIP publishers and WHEP viewers together) this
    /// node holds at once; one more offer is answered 503 with
    /// `Retry-After`. Default 512
    /// ([`livestack_sfu::DEFAULT_MAX_SESSIONS`]): the WebRTC task uses one
    /// core, which served 500 viewers of a 1 Mbit/s stream without loss
    /// (`whep-load` in `origin/bench/RESULTS.md`); beyond it every viewer
    /// degrades. At least 1. Each viewer session holds up to about 1.2 MB
    /// of sent packets for retransmission.
    pub max_sessions: usize,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            max_sessions: livestack_sfu::DEFAULT_MAX_SESSIONS,
        }
    }
}

/// LL-HLS packaging settings (`[hls]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HlsConfig {
    /// Part target duration (EXT-X-PART-INF:PART-TARGET). Default 200 ms;
    /// range 50 ms ..= 2 s.
    #[serde(with = "humantime_serde")]
    pub part_target: Duration,
    /// Segment target: a segment is cut at the first keyframe after this much
    /// media, so a segment is one GOP when the GOP is at least this long.
    /// Segments without a keyframe in time are cut at twice this value
    /// (EXT-X-TARGETDURATION). Default 2 s; range 1 s ..= 10 s.
    #[serde(with = "humantime_serde")]
    pub segment_target: Duration,
    /// Segments listed in each media playlist (the live window). Default 10.
    pub window_segments: usize,
    /// How long an ended stream's playlists stay served (with EXT-X-ENDLIST)
    /// before the stream is forgotten. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// How long the playlists of a stream whose publisher is gone stay
    /// open (no `EXT-X-ENDLIST`) for the publisher to come back: a
    /// publisher that reconnects within it continues them (MSNs go on,
    /// `EXT-X-DISCONTINUITY`), and players that kept reloading (hls.js
    /// stops at `EXT-X-ENDLIST`) play on; after it the playlists end.
    /// Default 5 s (OBS reconnects after 2 s by default); 0 ends them at
    /// once; at most 60 s.
    #[serde(with = "humantime_serde")]
    pub reconnect_grace: Duration,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(2),
            window_segments: 10,
            linger: Duration::from_secs(30),
            reconnect_grace: Duration::from_secs(5),
        }
    }
}

/// Publish authorization (`[auth]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Stream keys. With none configured every publisher is accepted (and
    /// the origin warns at start).
    pub keys: Vec<StreamKeyConfig>,
}

/// Who may read from the public HTTP listeners (`[access]`).
///
/// Open (the default, for a single node or the demo): every stream without
/// a play key is served to anyone who reaches the origin, and `/streams`
/// and `/metrics` are public. Closed: the origin serves its edges and
/// token holders only —
///
/// | request | open | closed |
/// |---|---|---|
/// | `/live/…` with the edge credential | served | served |
/// | `/live/…` of a stream with play keys, valid `?token=` | served | served |
/// | `/live/…` of a stream without play keys, no credential | served | 401 |
/// | `/streams`, `/metrics` without the edge credential | served | 401 (metrics: on the admin listener) |
///
/// The edge credential is a shared secret the edges send in
/// [`EDGE_CREDENTIAL_HEADER`](livestack_tokens::EDGE_CREDENTIAL_HEADER):
/// never in the TOML (a file or the environment, see the CLI). With it, a
/// stream with play keys still plays through the edge (the edge verified
/// the viewer's token).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// Serve only the edges (edge credential) and token holders. Default
    /// false.
    pub closed: bool,
    /// The edge credential: at least
    /// [`MIN_EDGE_CREDENTIAL_LEN`](livestack_tokens::MIN_EDGE_CREDENTIAL_LEN)
    /// bytes. Not read from the TOML: `--edge-credential-file` or
    /// `LIVESTACK_EDGE_CREDENTIAL`. `None`: no request is an edge's.
    #[serde(skip)]
    pub edge_credential: Option<String>,
    /// Keys verifying the session tokens (CAT or JWT) the edges' signaling
    /// mints for this node (`aud` = the node id), in `livestack-tokens`
    /// key-config format (`kid:ALG:base64url`, comma-separated; public
    /// keys suffice for ES256/EdDSA). With them a `?token=` that is such a
    /// token opens its stream for play here: LL-HLS, MoQ sessions. Not
    /// read from the TOML: `--token-keys-file` or `LIVESTACK_TOKEN_KEYS`.
    #[serde(skip)]
    pub session_keys: Option<String>,
}

/// One stream key (`[[auth.keys]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamKeyConfig {
    /// The broadcast NAME (of `live/NAME`) the key opens, or `*` for all.
    pub stream: String,
    /// The secret: presented as the streamid token (`t=` / `token=`) or used
    /// as the SRT passphrase (then 10..=79 characters, per the SRT spec).
    pub key: String,
}

impl OriginConfig {
    /// Loads a TOML file; `None` gives the defaults.
    ///
    /// # Errors
    /// [`ConfigError::Read`] / [`ConfigError::Parse`].
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// The TOML error, for syntax errors and unknown keys.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks ranges that serde cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let h = &self.hls;
        if !(Duration::from_millis(50)..=Duration::from_secs(2)).contains(&h.part_target) {
            return Err(ConfigError::Invalid(
                "hls.part_target must be within 50ms..=2s".into(),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(10)).contains(&h.segment_target) {
            return Err(ConfigError::Invalid(
                "hls.segment_target must be within 1s..=10s".into(),
            ));
        }
        if h.part_target * 2 > h.segment_target {
            return Err(ConfigError::Invalid(
                "hls.segment_target must be at least twice hls.part_target".into(),
            ));
        }
        if h.window_segments < 3 {
            return Err(ConfigError::Invalid(
                "hls.window_segments must be at least 3".into(),
            ));
        }
        let l = self.srt_options.latency;
        if !(Duration::from_millis(20)..=Duration::from_secs(10)).contains(&l) {
            return Err(ConfigError::Invalid(
                "srt_options.latency must be within 20ms..=10s".into(),
            ));
        }
        if let Some(c) = &self.access.edge_credential
            && (c.len() < livestack_tokens::MIN_EDGE_CREDENTIAL_LEN
                || http::HeaderValue::from_str(c).is_err())
        {
            return Err(ConfigError::Invalid(format!(
                "the edge credential must be at least {} visible ASCII characters",
                livestack_tokens::MIN_EDGE_CREDENTIAL_LEN
            )));
        }
        if let Some(k) = &self.access.session_keys
            && let Err(e) = k.parse::<livestack_tokens::KeySet>()
        {
            // The message names the problem, never the key bytes.
            return Err(ConfigError::Invalid(format!("the token keys: {e}")));
        }
        if self.hls.reconnect_grace > Duration::from_secs(60) {
            return Err(ConfigError::Invalid(
                "hls.reconnect_grace must be at most 60s".into(),
            ));
        }
        if self.srt_options.max_publishers == 0 {
            return Err(ConfigError::Invalid(
                "srt_options.max_publishers must be at least 1".into(),
            ));
        }
        if self.webrtc_options.max_sessions == 0 {
            return Err(ConfigError::Invalid(
                "webrtc_options.max_sessions must be at least 1".into(),
            ));
        }
        if self.srt_options.max_bitrate < 100_000 {
            return Err(ConfigError::Invalid(
                "srt_options.max_bitrate must be at least 100000 (bit/s)".into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key must be given together".into(),
            ));
        }
        let c = &self.cluster;
        if c.node_id.is_empty()
            || c.region.is_empty()
            || !c
                .node_id
                .bytes()
                .chain(c.region.bytes())
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(ConfigError::Invalid(
                "cluster.node_id and cluster.region must be non-empty [A-Za-z0-9._-]".into(),
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&c.heartbeat_interval) {
            return Err(ConfigError::Invalid(
                "cluster.heartbeat_interval must be within 100ms..=60s".into(),
            ));
        }
        if c.heartbeat_ttl < c.heartbeat_interval * 2 {
            return Err(ConfigError::Invalid(
                "cluster.heartbeat_ttl must be at least twice cluster.heartbeat_interval".into(),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&c.relay_idle) {
            return Err(ConfigError::Invalid(
                "cluster.relay_idle must be within 1s..=1h".into(),
            ));
        }
        if let Some((lat, lon)) = c.location
            && !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
        {
            return Err(ConfigError::Invalid(
                "cluster.location must be [latitude -90..=90, longitude -180..=180]".into(),
            ));
        }
        if c.max_streams == 0 || c.max_viewers == 0 || c.max_egress_bps == 0 {
            return Err(ConfigError::Invalid(
                "cluster.max_* capacities must be positive".into(),
            ));
        }
        if self.admin.token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::Invalid(
                "admin.token must be at least 16 characters".into(),
            ));
        }
        for k in &self.auth.keys {
            if k.key.is_empty() || k.stream.is_empty() {
                return Err(ConfigError::Invalid(
                    "auth.keys entries need a non-empty stream and key".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_defaults() {
        let c = OriginConfig::from_toml("").unwrap();
        assert_eq!(c.http.port(), 8080);
        assert_eq!(c.hls.part_target, Duration::from_millis(200));
        c.validate().unwrap();
    }

    #[test]
    fn full_file() {
        let c = OriginConfig::from_toml(
            r#"
            srt = "0.0.0.0:9001"
            http = "0.0.0.0:8081"
            https = "0.0.0.0:8443"
            [srt_options]
            latency = "200ms"
            max_publishers = 8
            max_bitrate = 20000000

            [webrtc_options]
            max_sessions = 3000
            [hls]
            part_target = "250ms"
            segment_target = "4s"
            window_segments = 6
            [[auth.keys]]
            stream = "cam1"
            key = "s3cretkey42"
            "#,
        )
        .unwrap();
        assert_eq!(c.srt.port(), 9001);
        assert_eq!(c.hls.segment_target, Duration::from_secs(4));
        assert_eq!(c.auth.keys[0].stream, "cam1");
        assert_eq!(c.srt_options.max_publishers, 8);
        assert_eq!(c.srt_options.max_bitrate, 20_000_000);
        assert_eq!(c.webrtc_options.max_sessions, 3000);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_refused() {
        assert!(OriginConfig::from_toml("htpp = \"1.2.3.4:1\"").is_err());
    }

    #[test]
    fn out_of_range_is_refused() {
        let mut c = OriginConfig::default();
        c.hls.part_target = Duration::from_millis(10);
        assert!(c.validate().is_err());
    }
}
