//! Cache keys: the path plus the LL-HLS delivery directives as the origin
//! reads them, nothing else. The rationale is on [`cache_key`], where the
//! public docs show it.

use livestack_hls::{DeliveryDirectives, DirectiveError, SkipRequest};

/// Builds the cache key (an origin-relative path and query) for a viewer
/// request to `path` with `query` (without the `?`). The key is also the
/// request the edge sends upstream, so the origin reads exactly what the
/// cache keyed.
///
/// **Media playlists** (`*.m3u8` other than the multivariant
/// `index.m3u8`): the key is `path` plus the LL-HLS delivery directives
/// `_HLS_msn`, `_HLS_part` and `_HLS_skip` (RFC 8216bis §6.2.5) *as the
/// origin reads them*: parsed by the origin's own parser
/// ([`DeliveryDirectives::parse`]: names and values percent-decoded,
/// decimal integers) and written back canonically, in that order, decimal
/// without leading zeros. So `_HLS_msn=5`, `_HLS_msn=05` and `_HLS_msn=%35`
/// are one entry and one origin request, and a viewer cannot bypass
/// request coalescing by spelling the same directive differently.
///
/// **Every other path** (the multivariant playlist, init segments,
/// segments, parts): the key is `path` alone. The origin ignores delivery
/// directives there, so they must not split the cache either.
///
/// Why nothing else is in the key: above all the viewer's access token
/// (`token`, a CTA-5007 `CAT`, ...) must not be. Every viewer has a
/// different one, and keying on it would turn N viewers blocked on the same
/// part into N origin requests, the very storm the cache exists to absorb.
/// The edge verifies the token *before* it asks the cache, so a cached
/// response is only ever handed to an authorized viewer, and the origin
/// (inside the private network) does not need it. Unknown parameters
/// (cache busters, analytics tags) are dropped for the same reason.
///
/// `strip` names directives to leave out of the key (and so out of the
/// upstream request), e.g. `&["_HLS_skip"]` for an edge that must see full
/// playlists. Non-directive names are dropped anyway, so listing the token
/// (`&["token"]`) only states intent.
///
/// # Errors
/// The origin's [`DirectiveError`] for a media playlist request whose
/// directives the origin would refuse with 400 (RFC 8216bis §6.2.5.2): a
/// value that is not a decimal integer in range, an unknown `_HLS_skip`
/// value, a repeated directive, `_HLS_part` without `_HLS_msn`. The edge
/// answers those itself, with the same status and reason.
///
/// ```
/// use livestack_edge_cache::cache_key;
///
/// let key = cache_key(
///     "/live/a/video.m3u8",
///     Some("token=abc&_HLS_part=2&_HLS_msn=05"),
///     &["token"],
/// );
/// assert_eq!(key.unwrap(), "/live/a/video.m3u8?_HLS_msn=5&_HLS_part=2");
/// assert_eq!(
///     cache_key("/live/a/video/part5.2.m4s", Some("token=abc&_HLS_msn=5"), &["token"]).unwrap(),
///     "/live/a/video/part5.2.m4s"
/// );
/// assert!(cache_key("/live/a/video.m3u8", Some("_HLS_msn=x"), &[]).is_err());
/// ```
pub fn cache_key(
    path: &str,
    query: Option<&str>,
    strip: &[&str],
) -> Result<String, DirectiveError> {
    let media_playlist = path.ends_with(".m3u8") && !path.ends_with("/index.m3u8");
    if !media_playlist {
        return Ok(path.to_owned());
    }
    let d = DeliveryDirectives::parse(query)?;
    let mut key = String::with_capacity(path.len() + 40);
    key.push_str(path);
    let mut sep = '?';
    let mut push = |name: &str, value: &dyn std::fmt::Display| {
        if !strip.contains(&name) {
            use std::fmt::Write;
            // Writing into a String cannot fail.
            let _ = write!(key, "{sep}{name}={value}");
            sep = '&';
        }
    };
    if let Some(msn) = d.msn {
        push("_HLS_msn", &msn);
    }
    if let Some(part) = d.part {
        push("_HLS_part", &part);
    }
    match d.skip {
        SkipRequest::No => {}
        SkipRequest::Yes => push("_HLS_skip", &"YES"),
        SkipRequest::V2 => push("_HLS_skip", &"v2"),
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::cache_key;

    fn key(path: &str, query: Option<&str>) -> String {
        cache_key(path, query, &["token"]).expect("valid directives")
    }

    #[test]
    fn keeps_only_directives_in_canonical_order() {
        let cases: &[(Option<&str>, &str)] = &[
            (None, "/p.m3u8"),
            (Some(""), "/p.m3u8"),
            (Some("token=t"), "/p.m3u8"),
            (Some("_HLS_msn=3"), "/p.m3u8?_HLS_msn=3"),
            (
                Some("_HLS_skip=YES&_HLS_part=1&x=2&_HLS_msn=3&token=t"),
                "/p.m3u8?_HLS_msn=3&_HLS_part=1&_HLS_skip=YES",
            ),
            (Some("_HLS_skip=v2"), "/p.m3u8?_HLS_skip=v2"),
            // Names are case-sensitive: an unknown name is dropped.
            (Some("_hls_msn=3"), "/p.m3u8"),
            (Some("&&_HLS_msn=3&&"), "/p.m3u8?_HLS_msn=3"),
        ];
        for (query, want) in cases {
            assert_eq!(key("/p.m3u8", *query), *want, "{query:?}");
        }
    }

    #[test]
    fn one_directive_spelled_many_ways_is_one_key() {
        for query in [
            "_HLS_msn=5&_HLS_part=2",
            "_HLS_msn=05&_HLS_part=002",
            "_HLS_msn=%35&_HLS_part=%32",
            "%5FHLS_msn=5&_HLS%5Fpart=2",
            "_HLS_part=2&token=x&_HLS_msn=5&cb=123",
        ] {
            assert_eq!(
                key("/v.m3u8", Some(query)),
                "/v.m3u8?_HLS_msn=5&_HLS_part=2",
                "{query}"
            );
        }
        assert_eq!(
            key("/v.m3u8", Some("_HLS_skip=%59ES")),
            "/v.m3u8?_HLS_skip=YES"
        );
    }

    #[test]
    fn what_the_origin_refuses_is_an_error() {
        for query in [
            "_HLS_msn=abc",
            "_HLS_msn",
            "_HLS_msn=1&_HLS_msn=2",
            "_HLS_msn=+1",
            "_HLS_msn=99999999999999999999999",
            "_HLS_part=1",
            "_HLS_skip=no",
        ] {
            assert!(cache_key("/v.m3u8", Some(query), &[]).is_err(), "{query}");
        }
    }

    #[test]
    fn media_files_and_the_multivariant_playlist_ignore_directives() {
        for path in [
            "/live/a/index.m3u8",
            "/live/a/video/part5.2.m4s",
            "/live/a/video/seg5.m4s",
            "/live/a/video/init0.mp4",
        ] {
            assert_eq!(key(path, Some("_HLS_msn=5&_HLS_part=2&token=t")), path);
            // Even malformed: the origin does not read them there.
            assert_eq!(key(path, Some("_HLS_msn=x")), path);
        }
    }

    #[test]
    fn token_does_not_fragment() {
        let a = key("/v.m3u8", Some("_HLS_msn=3&_HLS_part=1&token=a"));
        let b = key("/v.m3u8", Some("token=b&_HLS_part=1&_HLS_msn=3"));
        assert_eq!(a, b);
    }

    #[test]
    fn strip_can_remove_a_directive() {
        assert_eq!(
            cache_key("/v.m3u8", Some("_HLS_msn=3&_HLS_skip=YES"), &["_HLS_skip"]).unwrap(),
            "/v.m3u8?_HLS_msn=3"
        );
    }
}
