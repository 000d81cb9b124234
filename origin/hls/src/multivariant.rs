//! The Multivariant Playlist (RFC 8216bis §4.4.6).

use std::fmt;

use crate::text::Quoted;

/// One Variant Stream (`EXT-X-STREAM-INF`, RFC 8216bis §4.4.6.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// URI of the variant's Media Playlist, relative to the Multivariant
    /// Playlist (e.g. `"video.m3u8"`). Must not contain CR or LF (dropped).
    pub uri: String,
    /// `BANDWIDTH`: peak segment bit rate in bits per second, including the
    /// audio rendition's (§4.4.6.2 REQUIRED).
    pub bandwidth: u64,
    /// `AVERAGE-BANDWIDTH`: average segment bit rate in bits per second.
    pub average_bandwidth: Option<u64>,
    /// `CODECS`: every RFC 6381 codec of the variant **and** of its audio
    /// group, comma-separated, e.g. `"avc1.64001f,mp4a.40.2"` (§6.2.4 MUST
    /// include every media format). Omitted when empty.
    pub codecs: String,
    /// `RESOLUTION`: video width × height in pixels.
    pub resolution: Option<(u32, u32)>,
    /// `FRAME-RATE`: maximum video frame rate in frames per second, rendered
    /// with three decimals; omitted unless finite and positive.
    pub frame_rate: Option<f64>,
    /// `AUDIO`: the `GROUP-ID` of the [`AudioRendition`]s to play with it.
    pub audio_group: Option<String>,
}

/// One audio Rendition (`EXT-X-MEDIA:TYPE=AUDIO`, RFC 8216bis §4.4.6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioRendition {
    /// `GROUP-ID`, referenced by [`Variant::audio_group`].
    pub group_id: String,
    /// `NAME`: human-readable, unique within the group.
    pub name: String,
    /// `URI` of the rendition's Media Playlist, relative to the Multivariant
    /// Playlist (e.g. `"audio.m3u8"`).
    pub uri: String,
    /// `DEFAULT=YES`: play this one unless the user chose otherwise.
    /// `AUTOSELECT=YES` is always emitted (§4.4.6.1: MUST be YES when
    /// `DEFAULT=YES`).
    pub default: bool,
    /// `LANGUAGE`: RFC 5646 language tag, e.g. `"en"`.
    pub language: Option<String>,
    /// `CHANNELS`: the number of audio channels, e.g. 2.
    pub channels: Option<u8>,
}

/// Renders the Multivariant Playlist: `EXT-X-INDEPENDENT-SEGMENTS`
/// (§4.4.2.1; CMAF segments start with a key frame), one `EXT-X-MEDIA` per
/// audio rendition, then one `EXT-X-STREAM-INF` plus URI line per variant,
/// in the given orders. No `EXT-X-VERSION` tag: nothing here needs more than
/// version 1 (§6.2.1: SHOULD NOT be greater than required).
///
/// Text values must not contain `"`, CR or LF; such characters are dropped.
pub fn render_multivariant(variants: &[Variant], audio: &[AudioRendition]) -> String {
    Multivariant { variants, audio }.to_string()
}

struct Multivariant<'a> {
    variants: &'a [Variant],
    audio: &'a [AudioRendition],
}

impl fmt::Display for Multivariant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "#EXTM3U")?;
        writeln!(f, "#EXT-X-INDEPENDENT-SEGMENTS")?;
        for rendition in self.audio {
            write!(
                f,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID={},NAME={}",
                Quoted(&rendition.group_id),
                Quoted(&rendition.name)
            )?;
            if let Some(language) = &rendition.language {
                write!(f, ",LANGUAGE={}", Quoted(language))?;
            }
            let default = if rendition.default { "YES" } else { "NO" };
            write!(f, ",DEFAULT={default},AUTOSELECT=YES")?;
            if let Some(channels) = rendition.channels {
                write!(f, ",CHANNELS=\"{channels}\"")?;
            }
            writeln!(f, ",URI={}", Quoted(&rendition.uri))?;
        }
        for variant in self.variants {
            write!(f, "#EXT-X-STREAM-INF:BANDWIDTH={}", variant.bandwidth)?;
            if let Some(average) = variant.average_bandwidth {
                write!(f, ",AVERAGE-BANDWIDTH={average}")?;
            }
            if !variant.codecs.is_empty() {
                write!(f, ",CODECS={}", Quoted(&variant.codecs))?;
            }
            if let Some((width, height)) = variant.resolution {
                write!(f, ",RESOLUTION={width}x{height}")?;
            }
            if let Some(rate) = variant.frame_rate.filter(|r| r.is_finite() && *r > 0.0) {
                write!(f, ",FRAME-RATE={rate:.3}")?;
            }
            if let Some(group) = &variant.audio_group {
                write!(f, ",AUDIO={}", Quoted(group))?;
            }
            writeln!(f)?;
            for piece in variant.uri.split(['\r', '\n']) {
                f.write_str(piece)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let audio = [
            AudioRendition {
                group_id: "aac".into(),
                name: "English".into(),
                uri: "audio_en.m3u8".into(),
                default: true,
                language: Some("en".into()),
                channels: Some(2),
            },
            AudioRendition {
                group_id: "aac".into(),
                name: "Commentary".into(),
                uri: "audio_cm.m3u8".into(),
                default: false,
                language: None,
                channels: None,
            },
        ];
        let variants = [
            Variant {
                uri: "video_720.m3u8".into(),
                bandwidth: 3_200_000,
                average_bandwidth: Some(2_800_000),
                codecs: "avc1.64001f,mp4a.40.2".into(),
                resolution: Some((1280, 720)),
                frame_rate: Some(30_000.0 / 1_001.0),
                audio_group: Some("aac".into()),
            },
            Variant {
                uri: "video_360.m3u8".into(),
                bandwidth: 900_000,
                average_bandwidth: None,
                codecs: "avc1.42c01e,mp4a.40.2".into(),
                resolution: None,
                frame_rate: Some(f64::NAN),
                audio_group: None,
            },
        ];
        let want = "\
#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio_en.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"Commentary\",DEFAULT=NO,AUTOSELECT=YES,URI=\"audio_cm.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=3200000,AVERAGE-BANDWIDTH=2800000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"aac\"
video_720.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS=\"avc1.42c01e,mp4a.40.2\"
video_360.m3u8
";
        assert_eq!(render_multivariant(&variants, &audio), want);
    }

    #[test]
    fn hostile_strings_cannot_inject_lines() {
        let audio = [AudioRendition {
            group_id: "a\"\n#EXT-X-ENDLIST".into(),
            name: "n".into(),
            uri: "u".into(),
            default: true,
            language: None,
            channels: None,
        }];
        let variants = [Variant {
            uri: "v.m3u8\n#EXT-X-ENDLIST".into(),
            bandwidth: 1,
            average_bandwidth: None,
            codecs: String::new(),
            resolution: None,
            frame_rate: None,
            audio_group: None,
        }];
        let text = render_multivariant(&variants, &audio);
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.lines().all(|l| l != "#EXT-X-ENDLIST"));
    }
}
