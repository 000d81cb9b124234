//! Cache keys: the path plus the LL-HLS delivery directives, nothing else.
//! The rationale is on [`cache_key`], where the public docs show it.

/// The delivery directives, in the canonical order they appear in a key.
const DIRECTIVES: [&str; 3] = ["_HLS_msn", "_HLS_part", "_HLS_skip"];

/// Builds the cache key (an origin-relative path and query) for a viewer
/// request to `path` with `query` (without the `?`).
///
/// The key keeps `path` as it is and, from the query, only the LL-HLS
/// delivery directives `_HLS_msn`, `_HLS_part` and `_HLS_skip`, in that
/// order whatever order the viewer sent them in (so `?_HLS_part=1&_HLS_msn=3`
/// and `?_HLS_msn=3&_HLS_part=1` share one entry). Values are kept verbatim,
/// not parsed: a malformed directive still reaches the origin, which answers
/// it with 400 (RFC 8216bis §6.2.5.2), and a repeated one is kept repeated.
/// Every other parameter is dropped.
///
/// Why the directives are in the key: a media playlist request carrying
/// delivery directives (RFC 8216bis §6.2.5.1) asks for a different resource
/// than the same path without them. A blocking request for `(msn, part)`
/// (§6.2.5.2) is answered once that part exists, a `_HLS_skip` request with
/// a delta update (§6.2.5.3); each is its own entry.
///
/// Why nothing else is: above all the viewer's access token (`token`, a
/// CTA-5007 `CAT`, ...) must not be in the key. Every viewer has a
/// different one, and keying on it would turn N viewers blocked on the same
/// part into N origin requests, the very storm the cache exists to absorb.
/// The edge verifies the token *before* it asks the cache, so a cached
/// response is only ever handed to an authorized viewer, and the origin
/// (inside the private network) does not need it. Unknown parameters
/// (cache busters, analytics tags) are dropped for the same reason: they
/// would fragment the cache without changing the answer.
///
/// `strip` names parameters to drop explicitly. Non-directive parameters are
/// dropped anyway, so listing the token (`&["token"]`) only states intent;
/// listing a directive removes it too, e.g. `&["_HLS_skip"]` for an edge
/// that must see full playlists (one that rewrites the rendition list).
/// Names are compared exactly (they are case-sensitive in HLS).
///
/// ```
/// use livestack_edge_cache::cache_key;
///
/// let key = cache_key(
///     "/live/a/video.m3u8",
///     Some("token=abc&_HLS_part=2&_HLS_msn=5"),
///     &["token"],
/// );
/// assert_eq!(key, "/live/a/video.m3u8?_HLS_msn=5&_HLS_part=2");
/// assert_eq!(cache_key("/live/a/video/part5.2.m4s", Some("token=abc"), &["token"]),
///            "/live/a/video/part5.2.m4s");
/// ```
pub fn cache_key(path: &str, query: Option<&str>, strip: &[&str]) -> String {
    let pairs: Vec<(&str, &str)> = query
        // No query and an empty query are the same key.
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let mut key = String::with_capacity(path.len() + 40);
    key.push_str(path);
    let mut sep = '?';
    for directive in DIRECTIVES.iter().filter(|d| !strip.contains(d)) {
        for (_, value) in pairs.iter().filter(|(name, _)| name == directive) {
            key.push(sep);
            key.push_str(directive);
            key.push('=');
            key.push_str(value);
            sep = '&';
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::cache_key;

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
            // Verbatim values, even malformed ones: the origin answers 400.
            (Some("_HLS_msn=abc"), "/p.m3u8?_HLS_msn=abc"),
            (Some("_HLS_msn"), "/p.m3u8?_HLS_msn="),
            (
                Some("_HLS_msn=1&_HLS_msn=2"),
                "/p.m3u8?_HLS_msn=1&_HLS_msn=2",
            ),
            // Names are case-sensitive.
            (Some("_hls_msn=3"), "/p.m3u8"),
            (Some("&&_HLS_msn=3&&"), "/p.m3u8?_HLS_msn=3"),
        ];
        for (query, want) in cases {
            assert_eq!(cache_key("/p.m3u8", *query, &["token"]), *want, "{query:?}");
        }
    }

    #[test]
    fn token_does_not_fragment() {
        let a = cache_key("/v.m3u8", Some("_HLS_msn=3&_HLS_part=1&token=a"), &[]);
        let b = cache_key("/v.m3u8", Some("token=b&_HLS_part=1&_HLS_msn=3"), &[]);
        assert_eq!(a, b);
    }

    #[test]
    fn strip_can_remove_a_directive() {
        assert_eq!(
            cache_key("/v.m3u8", Some("_HLS_msn=3&_HLS_skip=YES"), &["_HLS_skip"]),
            "/v.m3u8?_HLS_msn=3"
        );
    }
}
