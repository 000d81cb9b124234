//! Names of the media resources a [`MediaPlaylist`](crate::MediaPlaylist)
//! lists, and their parsing for request routing.

use std::fmt;

/// One media resource of a rendition, named relative to
/// [`PlaylistConfig::uri_prefix`](crate::PlaylistConfig::uri_prefix).
///
/// | resource | name |
/// |---|---|
/// | Media Initialization Section `n` (`EXT-X-MAP`) | `init{n}.mp4` |
/// | complete Media Segment `msn` | `seg{msn}.m4s` |
/// | Partial Segment `index` of segment `msn` (`EXT-X-PART`) | `part{msn}.{index}.m4s` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `init{n}.mp4`: see [`MediaPlaylist::init`](crate::MediaPlaylist::init).
    Init(u32),
    /// `seg{msn}.m4s`: see [`MediaPlaylist::segment`](crate::MediaPlaylist::segment).
    Segment(u64),
    /// `part{msn}.{index}.m4s`: see [`MediaPlaylist::part`](crate::MediaPlaylist::part).
    Part {
        /// Media Sequence Number of the parent segment.
        msn: u64,
        /// Part index within the parent segment, from 0.
        index: u32,
    },
}

impl Resource {
    /// Parses a resource name as produced by [`Resource`]'s `Display` (the
    /// part of the request path after the URI prefix). Numbers are ASCII
    /// digits only; anything else is `None` (answer 404). Never panics.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(n) = name
            .strip_prefix("init")
            .and_then(|r| r.strip_suffix(".mp4"))
        {
            return digits(n).map(Self::Init);
        }
        if let Some(msn) = name
            .strip_prefix("seg")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            return digits(msn).map(Self::Segment);
        }
        let rest = name.strip_prefix("part")?.strip_suffix(".m4s")?;
        let (msn, index) = rest.split_once('.')?;
        Some(Self::Part {
            msn: digits(msn)?,
            index: digits(index)?,
        })
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Init(n) => write!(f, "init{n}.mp4"),
            Self::Segment(msn) => write!(f, "seg{msn}.m4s"),
            Self::Part { msn, index } => write!(f, "part{msn}.{index}.m4s"),
        }
    }
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let table: &[(&str, Option<Resource>)] = &[
            ("init0.mp4", Some(Resource::Init(0))),
            ("init12.mp4", Some(Resource::Init(12))),
            ("seg0.m4s", Some(Resource::Segment(0))),
            (
                "seg18446744073709551615.m4s",
                Some(Resource::Segment(u64::MAX)),
            ),
            ("part12.3.m4s", Some(Resource::Part { msn: 12, index: 3 })),
            ("seg18446744073709551616.m4s", None),
            ("part1.4294967296.m4s", None),
            ("seg.m4s", None),
            ("seg+1.m4s", None),
            ("seg-1.m4s", None),
            ("part1.m4s", None),
            ("part1.2.3.m4s", None),
            ("part.1.m4s", None),
            ("init1.m4s", None),
            ("seg1.mp4", None),
            ("", None),
            ("playlist.m3u8", None),
        ];
        for &(name, want) in table {
            assert_eq!(Resource::parse(name), want, "{name:?}");
            if let Some(resource) = want {
                assert_eq!(resource.to_string(), name);
            }
        }
    }
}
