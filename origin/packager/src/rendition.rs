//! Rendition identity and naming.

use std::fmt;

/// What a rendition carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RenditionKind {
    /// A video track: one `EXT-X-STREAM-INF` variant each.
    Video,
    /// An audio track (a language, a commentary): one `EXT-X-MEDIA
    /// TYPE=AUDIO` entry each, all in one group.
    Audio,
}

/// One rendition of a broadcast: a track packaged into its own media
/// playlist.
///
/// Renditions are numbered per kind in the order their tracks appeared
/// (`index` 0 is the first video or the first audio track). The number gives
/// the rendition's stable name in URIs ([`Rendition::name`]): `video` and
/// `audio` for the first of each kind (the URIs every player and test has
/// always used), then `video1`, `video2`, … and `audio1`, `audio2`, … .
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rendition {
    /// Video or audio.
    pub kind: RenditionKind,
    /// Position among the broadcast's renditions of that kind, from 0.
    pub index: u16,
}

impl Rendition {
    /// The first video rendition (`video.m3u8`).
    pub const VIDEO: Rendition = Rendition {
        kind: RenditionKind::Video,
        index: 0,
    };
    /// The first audio rendition (`audio.m3u8`).
    pub const AUDIO: Rendition = Rendition {
        kind: RenditionKind::Audio,
        index: 0,
    };

    /// A rendition of `kind` at position `index`.
    pub const fn new(kind: RenditionKind, index: u16) -> Self {
        Self { kind, index }
    }

    /// True for a video rendition.
    pub fn is_video(self) -> bool {
        self.kind == RenditionKind::Video
    }

    /// The rendition's name in URIs: `video`, `audio`, `video1`, `audio2`, …
    /// (see the type docs). Its media playlist is `NAME.m3u8` and its files
    /// live under `NAME/`.
    pub fn name(self) -> RenditionName {
        RenditionName(self)
    }

    /// Parses a name made by [`Rendition::name`]; `None` for anything else
    /// (including `video0`, so that every rendition has exactly one name).
    pub fn parse(name: &str) -> Option<Rendition> {
        let (kind, rest) = if let Some(rest) = name.strip_prefix("video") {
            (RenditionKind::Video, rest)
        } else if let Some(rest) = name.strip_prefix("audio") {
            (RenditionKind::Audio, rest)
        } else {
            return None;
        };
        if rest.is_empty() {
            return Some(Rendition::new(kind, 0));
        }
        if rest.starts_with('0') || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let index: u16 = rest.parse().ok()?;
        Some(Rendition::new(kind, index))
    }
}

/// The URI name of a [`Rendition`], formatted without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenditionName(Rendition);

impl fmt::Display for RenditionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0.kind {
            RenditionKind::Video => "video",
            RenditionKind::Audio => "audio",
        };
        f.write_str(kind)?;
        if self.0.index > 0 {
            write!(f, "{}", self.0.index)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_keep_the_historic_uris() {
        assert_eq!(Rendition::VIDEO.name().to_string(), "video");
        assert_eq!(Rendition::AUDIO.name().to_string(), "audio");
        let a2 = Rendition::new(RenditionKind::Audio, 2);
        assert_eq!(a2.name().to_string(), "audio2");
        for r in [Rendition::VIDEO, Rendition::AUDIO, a2] {
            assert_eq!(Rendition::parse(&r.name().to_string()), Some(r));
        }
        for bad in [
            "video0",
            "audio01",
            "audiox",
            "vid",
            "",
            "audio-1",
            "video99999",
        ] {
            assert_eq!(Rendition::parse(bad), None, "{bad}");
        }
    }
}
