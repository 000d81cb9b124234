//! How long an origin response may be stored: a small, pure subset of
//! RFC 9111 (HTTP Caching) for a shared cache that never revalidates.

use std::time::Duration;

use http::{HeaderMap, StatusCode, header};

/// Freshness lifetimes are capped at 2^31 seconds (RFC 9111 §1.2.2).
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// How long a response with `status` and `headers` may be served from the
/// cache, or `None` when it must not be stored.
///
/// The rules, in order:
///
/// - Only `200 OK` is stored. Errors are never stored, 404 included: the
///   origin marks them `no-store`, and a cached 404 for a playlist would
///   hide a stream that starts (or a publisher that reconnects) a moment
///   later. Concurrent identical requests are still coalesced while in
///   flight, so a storm of requests for a missing stream costs one origin
///   request per round trip, and a 404 is cheap for the origin to produce.
///   `503` (blocking reload timed out) and `400` (too far ahead) are
///   likewise answers to *this* moment, not to the key.
/// - `no-store`, `no-cache` (which demands revalidation, RFC 9111
///   §5.2.2.4, and this cache does not revalidate) and `private` (§5.2.2.7)
///   mean not stored; so does a `Set-Cookie` (never shared between viewers).
/// - The lifetime is `s-maxage` if present (§5.2.2.10), else `max-age`
///   (§5.2.2.1), minus the `Age` the response already has (§4.2.3). An
///   invalid value makes the response stale (§4.2.1), i.e. not stored.
/// - No explicit lifetime means not stored: heuristic freshness (§4.2.2) has
///   no place in front of a live origin. `immutable` (RFC 8246) needs no
///   special case: the origin sends it with `max-age=31536000`, so parts,
///   segments and init segments stay until LRU eviction.
///
/// LL-HLS origin values this yields: playlists without directives
/// `max-age=1` → 1 s (all viewers polling one playlist share one origin
/// fetch per second), blocking responses `max-age=30` → 30 s (one entry per
/// `(msn, part)`), ended streams `max-age=60` → 60 s, media one year.
pub(crate) fn freshness(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::OK || headers.contains_key(header::SET_COOKIE) {
        return None;
    }
    let mut max_age = None;
    let mut s_maxage = None;
    let directives = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for directive in directives {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        let seconds = || value.and_then(delta_seconds);
        if name.eq_ignore_ascii_case("no-store")
            || name.eq_ignore_ascii_case("no-cache")
            || name.eq_ignore_ascii_case("private")
        {
            return None;
        } else if name.eq_ignore_ascii_case("max-age") {
            max_age = Some(seconds()?);
        } else if name.eq_ignore_ascii_case("s-maxage") {
            s_maxage = Some(seconds()?);
        }
    }
    let lifetime = s_maxage.or(max_age)?;
    let age = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(delta_seconds)
        .unwrap_or(0);
    let remaining = lifetime.saturating_sub(age);
    (remaining > 0).then(|| Duration::from_secs(remaining))
}

/// `delta-seconds` (RFC 9111 §1.2.2): digits only, saturating at 2^31.
fn delta_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        s.parse::<u64>()
            .map_or(MAX_DELTA_SECONDS, |v| v.min(MAX_DELTA_SECONDS)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(cc: &[&str], age: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in cc {
            h.append(header::CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        if let Some(a) = age {
            h.insert(header::AGE, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn origin_values() {
        let s = Duration::from_secs;
        let ok = StatusCode::OK;
        let table: &[(&[&str], Option<&str>, Option<Duration>)] = &[
            (&["public, max-age=1"], None, Some(s(1))),
            (&["public, max-age=30"], None, Some(s(30))),
            (&["public, max-age=60"], None, Some(s(60))),
            (
                &["public, max-age=31536000, immutable"],
                None,
                Some(s(31_536_000)),
            ),
            (&["no-store"], None, None),
            (&["no-cache"], None, None),
            (&["public, max-age=5", "no-cache"], None, None),
            (&["private, max-age=5"], None, None),
            (&[], None, None),
            (&["public"], None, None),
            (&["immutable"], None, None),
            (&["max-age=10, s-maxage=2"], None, Some(s(2))),
            (&["MAX-AGE=\"7\""], None, Some(s(7))),
            (&["max-age=-1"], None, None),
            (&["max-age=1x"], None, None),
            (&["max-age=99999999999999999999999"], None, Some(s(1 << 31))),
            (&["max-age=30"], Some("10"), Some(s(20))),
            (&["max-age=1"], Some("1"), None),
            (&["max-age=1"], Some("junk"), Some(s(1))),
        ];
        for (cc, age, want) in table {
            assert_eq!(freshness(ok, &with(cc, *age)), *want, "{cc:?} age {age:?}");
        }
    }

    #[test]
    fn errors_and_cookies_are_not_stored() {
        let h = with(&["public, max-age=30"], None);
        for status in [404, 400, 500, 503, 206, 204, 301] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(freshness(status, &h), None, "{status}");
        }
        let mut h = h;
        h.insert(header::SET_COOKIE, HeaderValue::from_static("a=b"));
        assert_eq!(freshness(StatusCode::OK, &h), None);
    }
}
