//! Variant filtering (RFC 8216bis §4.4.6.2, §4.4.6.3).

use crate::attrs::AttrList;
use crate::{Malformation, RewriteOptions, Truncation};

/// The attributes of an `EXT-X-STREAM-INF` or `EXT-X-I-FRAME-STREAM-INF`
/// tag that filtering and rewriting look at.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct VariantAttrs<'a> {
    bandwidth: Option<&'a str>,
    resolution: Option<&'a str>,
    codecs: Option<&'a str>,
    /// `URI` value as input offsets (I-frame variants only).
    pub(crate) uri: Option<(usize, usize)>,
}

impl<'a> VariantAttrs<'a> {
    pub(crate) fn parse(list: AttrList<'a>) -> Result<Self, Truncation> {
        let mut attrs = Self::default();
        for attr in list {
            let attr = attr?;
            match attr.name {
                "BANDWIDTH" => attrs.bandwidth = Some(attr.value),
                "RESOLUTION" => attrs.resolution = Some(attr.value),
                "CODECS" => attrs.codecs = Some(attr.value),
                "URI" => attrs.uri = Some((attr.start, attr.start + attr.value.len())),
                _ => {}
            }
        }
        Ok(attrs)
    }

    /// `BANDWIDTH` in bits per second.
    pub(crate) fn bandwidth(&self) -> Result<u64, Malformation> {
        self.bandwidth
            .and_then(|b| b.trim().parse().ok())
            .ok_or(Malformation::InvalidAttribute("BANDWIDTH"))
    }

    /// The height of `RESOLUTION` (`<width>x<height>`, RFC 8216bis §4.2
    /// decimal-resolution), in pixels.
    fn height(&self) -> Result<Option<u32>, Malformation> {
        let Some(resolution) = self.resolution else {
            return Ok(None);
        };
        resolution
            .trim()
            .split_once(['x', 'X'])
            .and_then(|(w, h)| {
                w.parse::<u32>().ok()?;
                h.parse().ok()
            })
            .map(Some)
            .ok_or(Malformation::InvalidAttribute("RESOLUTION"))
    }

    /// Applies the filters of `opts`: true to keep the variant.
    pub(crate) fn keep(&self, opts: &RewriteOptions) -> Result<bool, Malformation> {
        let bandwidth = self.bandwidth()?;
        if opts.max_bandwidth.is_some_and(|max| bandwidth > max) {
            return Ok(false);
        }
        if let Some(max) = opts.max_height
            && self.height()?.is_some_and(|h| h > max)
        {
            return Ok(false);
        }
        if !opts.allowed_codecs.is_empty()
            && let Some(codecs) = self.codecs
        {
            let all_allowed = codecs
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .all(|codec| {
                    opts.allowed_codecs
                        .iter()
                        .any(|prefix| codec.starts_with(prefix.as_str()))
                });
            if !all_allowed {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(list: &str, opts: &RewriteOptions) -> Result<bool, Malformation> {
        VariantAttrs::parse(AttrList::new(list, 0))
            .unwrap()
            .keep(opts)
    }

    #[test]
    fn filter_table() {
        let v720 = r#"BANDWIDTH=3000000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720"#;
        let v1080hevc =
            r#"BANDWIDTH=6000000,CODECS="hvc1.2.4.L123.B0,mp4a.40.2",RESOLUTION=1920x1080"#;
        let audio_only = r#"BANDWIDTH=128000,CODECS="mp4a.40.2""#;
        let bare = "BANDWIDTH=500000";
        let bw = |max| RewriteOptions {
            max_bandwidth: Some(max),
            ..RewriteOptions::default()
        };
        let height = |max| RewriteOptions {
            max_height: Some(max),
            ..RewriteOptions::default()
        };
        let codecs = |list: &[&str]| RewriteOptions {
            allowed_codecs: list.iter().map(|s| s.to_string()).collect(),
            ..RewriteOptions::default()
        };
        let table: [(&str, RewriteOptions, bool); 14] = [
            (v720, bw(3_000_000), true),
            (v720, bw(2_999_999), false),
            (v1080hevc, bw(5_000_000), false),
            (bare, bw(500_000), true),
            (v720, height(720), true),
            (v720, height(719), false),
            (audio_only, height(1), true),
            (bare, height(1), true),
            (v720, codecs(&["avc1", "mp4a"]), true),
            (v1080hevc, codecs(&["avc1", "mp4a"]), false),
            (audio_only, codecs(&["mp4a"]), true),
            (v720, codecs(&["mp4a"]), false),
            (v720, codecs(&["avc1.64", "mp4a.40.2"]), true),
            (bare, codecs(&["avc1"]), true),
        ];
        for (list, opts, want) in table {
            assert_eq!(keep(list, &opts), Ok(want), "{list} {opts:?}");
        }
    }

    #[test]
    fn invalid_attributes() {
        let opts = RewriteOptions {
            max_height: Some(720),
            ..RewriteOptions::default()
        };
        for (list, attr) in [
            ("RESOLUTION=1x1", "BANDWIDTH"),
            ("BANDWIDTH=x", "BANDWIDTH"),
            ("BANDWIDTH=-1", "BANDWIDTH"),
            ("BANDWIDTH=1,RESOLUTION=1280", "RESOLUTION"),
            ("BANDWIDTH=1,RESOLUTION=x720", "RESOLUTION"),
        ] {
            assert_eq!(
                keep(list, &opts),
                Err(Malformation::InvalidAttribute(attr)),
                "{list}"
            );
        }
    }
}
