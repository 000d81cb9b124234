//! Per-rendition playlist configuration.

use std::time::Duration;

use crate::directives::whole_seconds_ceil;
use crate::text::is_playlist_safe;

/// Largest accepted [`PlaylistConfig::target_duration`]: one hour. Real
/// target durations are a few seconds; the bound keeps every derived value
/// (`CAN-SKIP-UNTIL`, blocking timeout) far from overflow.
pub const MAX_TARGET_DURATION: Duration = Duration::from_secs(3_600);

/// Configuration of one rendition's [`MediaPlaylist`](crate::MediaPlaylist).
///
/// Build it with struct-update syntax from [`Default`]:
///
/// ```
/// # use std::time::Duration;
/// # use livestack_hls::PlaylistConfig;
/// let config = PlaylistConfig {
///     target_duration: Duration::from_secs(2),
///     uri_prefix: "video/".into(),
///     ..PlaylistConfig::default()
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistConfig {
    /// Upper bound of every segment's duration. `EXT-X-TARGETDURATION` is
    /// this rounded **up** to whole seconds (RFC 8216bis §4.4.3.1); the
    /// caller guarantees no segment is longer. All "N Target Durations"
    /// rules below use the rounded value. Default 4 s; at most
    /// [`MAX_TARGET_DURATION`].
    pub target_duration: Duration,
    /// `EXT-X-PART-INF:PART-TARGET` (RFC 8216bis §4.4.3.7): upper bound of
    /// every part's duration; the caller guarantees no part is longer.
    /// Rendered rounded up to 10 µs. Default 200 ms; must be non-zero and at
    /// most `target_duration`.
    pub part_target: Duration,
    /// Complete segments listed in the Playlist (the live window). More are
    /// listed while fewer would make the Playlist shorter than three Target
    /// Durations (RFC 8216bis §6.2.2 MUST). Default 6.
    ///
    /// Delta updates (`_HLS_skip`) only skip segments more than
    /// `CAN-SKIP-UNTIL` (6 Target Durations) before the end, so with the
    /// default window they never skip anything; use a window well above 6
    /// Target Durations of media to benefit from them.
    pub window_segments: usize,
    /// Segments kept downloadable (segment and part URIs) after they leave
    /// the Playlist, for clients that fetched an older Playlist
    /// (RFC 8216bis §6.2.2 Availability Duration). Default 2.
    pub retain_extra_segments: usize,
    /// Prepended verbatim to every media URI in the Playlist:
    /// `"video/"` gives `video/seg12.m4s`. Default empty. Must not contain
    /// `"`, CR or LF.
    pub uri_prefix: String,
    /// Media Sequence Number of the first segment (RFC 8216bis §4.4.3.2).
    /// Default 0. A server restarting a stream under the same URL should
    /// continue past the previous MSN so it never decreases (see
    /// [`MediaPlaylist::next_msn`](crate::MediaPlaylist::next_msn)).
    pub start_msn: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` before any segment left the window
    /// (RFC 8216bis §4.4.3.3). Default 0. A continued stream starts from
    /// its predecessor's
    /// [`next_discontinuity_sequence`](crate::MediaPlaylist::next_discontinuity_sequence),
    /// so the Discontinuity Sequence Numbers of its segments keep growing
    /// for a client that reloads across the change.
    pub start_discontinuity_sequence: u64,
    /// The first segment carries `EXT-X-DISCONTINUITY` (RFC 8216bis
    /// §4.4.4.3): set when this Playlist continues another one under the
    /// same URL (a publisher reconnected, possibly with other encoding
    /// parameters), so a client that stayed resets its decoder instead of
    /// feeding it the new session's media as if it followed on. Default
    /// false.
    pub starts_discontinuous: bool,
}

impl Default for PlaylistConfig {
    fn default() -> Self {
        Self {
            target_duration: Duration::from_secs(4),
            part_target: Duration::from_millis(200),
            window_segments: 6,
            retain_extra_segments: 2,
            uri_prefix: String::new(),
            start_msn: 0,
            start_discontinuity_sequence: 0,
            starts_discontinuous: false,
        }
    }
}

/// Why a [`PlaylistConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `target_duration` is zero or above [`MAX_TARGET_DURATION`].
    #[error("target duration must be in (0, {}] s", MAX_TARGET_DURATION.as_secs())]
    TargetDuration,
    /// `part_target` is zero or longer than `target_duration`
    /// (RFC 8216bis §4.4.3.7: parts are subdivisions of segments).
    #[error("part target must be non-zero and at most the target duration")]
    PartTarget,
    /// `window_segments` is zero.
    #[error("the live window must list at least one segment")]
    EmptyWindow,
    /// `uri_prefix` contains `"`, CR or LF, which cannot appear in a
    /// quoted-string or URI line (RFC 8216bis §4.2).
    #[error("uri prefix contains a quote or line break")]
    UriPrefix,
}

impl PlaylistConfig {
    /// Checks the invariants documented on each field.
    ///
    /// # Errors
    ///
    /// The first violated invariant.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.target_duration.is_zero() || self.target_duration > MAX_TARGET_DURATION {
            return Err(ConfigError::TargetDuration);
        }
        if self.part_target.is_zero() || self.part_target > self.target_duration {
            return Err(ConfigError::PartTarget);
        }
        if self.window_segments == 0 {
            return Err(ConfigError::EmptyWindow);
        }
        if !is_playlist_safe(&self.uri_prefix) {
            return Err(ConfigError::UriPrefix);
        }
        Ok(())
    }

    /// `EXT-X-TARGETDURATION` in whole seconds (RFC 8216bis §4.4.3.1).
    pub fn target_duration_secs(&self) -> u64 {
        whole_seconds_ceil(self.target_duration)
    }

    /// The Advance Part Limit of RFC 8216bis §6.2.5.2: "three divided by the
    /// Part Target Duration if the Part Target Duration is less than one
    /// second, or three otherwise" (rounded up: 0.33334 s gives 9). A
    /// blocking request more than this many parts past the newest part gets
    /// 400. 200 ms gives 15.
    pub fn advance_part_limit(&self) -> u64 {
        const THREE_SECONDS_NANOS: u128 = 3_000_000_000;
        if self.part_target >= Duration::from_secs(1) || self.part_target.is_zero() {
            return 3;
        }
        let limit = THREE_SECONDS_NANOS.div_ceil(self.part_target.as_nanos());
        u64::try_from(limit).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_table() {
        let base = PlaylistConfig::default();
        assert_eq!(base.validate(), Ok(()));
        let table: &[(PlaylistConfig, ConfigError)] = &[
            (
                PlaylistConfig {
                    target_duration: Duration::ZERO,
                    ..base.clone()
                },
                ConfigError::TargetDuration,
            ),
            (
                PlaylistConfig {
                    target_duration: Duration::from_secs(3_601),
                    ..base.clone()
                },
                ConfigError::TargetDuration,
            ),
            (
                PlaylistConfig {
                    part_target: Duration::ZERO,
                    ..base.clone()
                },
                ConfigError::PartTarget,
            ),
            (
                PlaylistConfig {
                    part_target: Duration::from_secs(5),
                    ..base.clone()
                },
                ConfigError::PartTarget,
            ),
            (
                PlaylistConfig {
                    window_segments: 0,
                    ..base.clone()
                },
                ConfigError::EmptyWindow,
            ),
            (
                PlaylistConfig {
                    uri_prefix: "a\"b".into(),
                    ..base.clone()
                },
                ConfigError::UriPrefix,
            ),
        ];
        for (config, want) in table {
            assert_eq!(config.validate(), Err(want.clone()), "{config:?}");
        }
    }

    #[test]
    fn advance_part_limit_table() {
        let table: &[(u64, u64)] = &[
            (200, 15),
            (250, 12),
            (333, 10), // 3 / 0.333 = 9.009
            (334, 9),  // 3 / 0.334 = 8.98
            (500, 6),
            (999, 4),
            (1_000, 3),
            (2_000, 3),
        ];
        for &(ms, want) in table {
            let config = PlaylistConfig {
                part_target: Duration::from_millis(ms),
                ..PlaylistConfig::default()
            };
            assert_eq!(config.advance_part_limit(), want, "part target {ms} ms");
        }
    }

    #[test]
    fn target_duration_rounds_up() {
        for (ms, want) in [(2_000, 2), (2_001, 3), (1_500, 2), (4_000, 4)] {
            let config = PlaylistConfig {
                target_duration: Duration::from_millis(ms),
                ..PlaylistConfig::default()
            };
            assert_eq!(config.target_duration_secs(), want, "{ms} ms");
        }
    }
}
