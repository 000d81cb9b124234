//! Delivery Directives: the `_HLS_` query parameters of a Media Playlist
//! request (RFC 8216bis §6.2.5).
//!
//! The query string is attacker-controlled: parsing never panics, rejects
//! what the server must answer with 400, and ignores what it may ignore.

use std::borrow::Cow;
use std::time::Duration;

/// `_HLS_skip`: whether the client asks for a Playlist Delta Update
/// (RFC 8216bis §6.2.5.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SkipRequest {
    /// No `_HLS_skip` directive: render the full Playlist.
    #[default]
    No,
    /// `_HLS_skip=YES`: skip Media Segments older than the Skip Boundary
    /// (`CAN-SKIP-UNTIL`).
    Yes,
    /// `_HLS_skip=v2`: also skip old `EXT-X-DATERANGE` tags. This crate emits
    /// no date ranges and does not advertise `CAN-SKIP-DATERANGES`, so this
    /// renders exactly like [`SkipRequest::Yes`].
    V2,
}

/// The Delivery Directives of one Media Playlist request
/// (RFC 8216bis §6.2.5.1 `_HLS_skip`, §6.2.5.2 `_HLS_msn` / `_HLS_part`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryDirectives {
    /// `_HLS_msn`: block until the Playlist holds this Media Sequence Number
    /// (§6.2.5.2). `None`: an ordinary, non-blocking request.
    pub msn: Option<u64>,
    /// `_HLS_part`: with `msn`, block until this Part Index of segment `msn`
    /// exists (§6.2.5.2). Always `None` when `msn` is `None`.
    pub part: Option<u32>,
    /// `_HLS_skip` (§6.2.5.1).
    pub skip: SkipRequest,
}

/// Why a request's Delivery Directives are invalid. Every variant maps to
/// HTTP 400 Bad Request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectiveError {
    /// `_HLS_part` without `_HLS_msn`: RFC 8216bis §6.2.5.2 "the Server MUST
    /// return Bad Request, such as HTTP 400".
    #[error("_HLS_part given without _HLS_msn")]
    PartWithoutMsn,
    /// `_HLS_msn` or `_HLS_part` is not a decimal-integer (RFC 8216bis §4.2)
    /// that fits its type (`u64` for `_HLS_msn`, `u32` for `_HLS_part`).
    #[error("{name} is not a decimal integer in range")]
    InvalidNumber {
        /// The directive's name.
        name: &'static str,
    },
    /// `_HLS_skip` is neither `YES` nor `v2` (RFC 8216bis §6.2.5.1).
    #[error("_HLS_skip must be YES or v2")]
    InvalidSkip,
    /// A directive appears more than once, so its meaning is ambiguous.
    #[error("{name} given more than once")]
    Duplicate {
        /// The directive's name.
        name: &'static str,
    },
}

const MSN: &str = "_HLS_msn";
const PART: &str = "_HLS_part";
const SKIP: &str = "_HLS_skip";

impl DeliveryDirectives {
    /// Parses the query string of a Media Playlist request (without the `?`);
    /// `None` or an empty string means no directives.
    ///
    /// Parameters other than `_HLS_msn`, `_HLS_part` and `_HLS_skip` are
    /// ignored (tokens, cache busters, future `_HLS_` directives). Names and
    /// values are percent-decoded (RFC 3986 §2.1: `%XX` only, `+` is not a
    /// space; a malformed escape is kept literally). Numbers are RFC 8216bis §4.2 decimal-integers: ASCII
    /// digits only, no sign, and must fit `u64` (`_HLS_msn`) or `u32`
    /// (`_HLS_part`).
    ///
    /// # Errors
    ///
    /// [`DirectiveError`] when the server must (or, per this crate, should)
    /// answer 400: `_HLS_part` without `_HLS_msn` (§6.2.5.2), a malformed
    /// number, an unknown `_HLS_skip` value, or a repeated directive.
    pub fn parse(query: Option<&str>) -> Result<Self, DirectiveError> {
        let mut directives = Self::default();
        let mut skip_seen = false;
        for pair in query.unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name);
            match name.as_ref() {
                MSN => {
                    if directives.msn.is_some() {
                        return Err(DirectiveError::Duplicate { name: MSN });
                    }
                    directives.msn = Some(parse_decimal(&percent_decode(value), MSN)?);
                }
                PART => {
                    if directives.part.is_some() {
                        return Err(DirectiveError::Duplicate { name: PART });
                    }
                    directives.part = Some(parse_decimal(&percent_decode(value), PART)?);
                }
                SKIP => {
                    if skip_seen {
                        return Err(DirectiveError::Duplicate { name: SKIP });
                    }
                    skip_seen = true;
                    directives.skip = match percent_decode(value).as_ref() {
                        "YES" => SkipRequest::Yes,
                        "v2" => SkipRequest::V2,
                        _ => return Err(DirectiveError::InvalidSkip),
                    };
                }
                _ => {}
            }
        }
        if directives.part.is_some() && directives.msn.is_none() {
            return Err(DirectiveError::PartWithoutMsn);
        }
        Ok(directives)
    }
}

/// An RFC 8216bis §4.2 decimal-integer: one or more ASCII digits.
fn parse_decimal<T: std::str::FromStr>(
    value: &str,
    name: &'static str,
) -> Result<T, DirectiveError> {
    // `FromStr` for integers accepts a leading `+`; the HLS grammar does not.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DirectiveError::InvalidNumber { name });
    }
    value
        .parse()
        .map_err(|_| DirectiveError::InvalidNumber { name })
}

/// RFC 3986 §2.1 percent-decoding of one query component, the behaviour
/// every livestack server reads a query with (the edge's
/// `decode_query_component` makes the same call): `%XX` becomes the byte
/// `0xXX`, a malformed escape is kept as is, `+` stays `+` (a query is not
/// `application/x-www-form-urlencoded`; no directive value contains `+` or
/// a space, so `+` only ever makes a value invalid), and invalid UTF-8
/// after decoding is replaced (it can never match a directive anyway).
fn percent_decode(s: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

/// How long a blocking Playlist request (`_HLS_msn`) may be held: three
/// Target Durations. RFC 8216bis §6.2.5.2: "A Server that cannot provide the
/// requested Playlist after blocking for more than three Target Durations
/// SHOULD return Service Unavailable, such as HTTP 503."
///
/// Pass the configured target duration; it is rounded up to whole seconds
/// first, as `EXT-X-TARGETDURATION` is (§4.4.3.1). Saturates instead of
/// overflowing.
pub fn blocking_timeout(target_duration: Duration) -> Duration {
    Duration::from_secs(whole_seconds_ceil(target_duration).saturating_mul(3))
}

/// `d` rounded up to whole seconds.
pub(crate) fn whole_seconds_ceil(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(
        msn: Option<u64>,
        part: Option<u32>,
        skip: SkipRequest,
    ) -> Result<DeliveryDirectives, DirectiveError> {
        Ok(DeliveryDirectives { msn, part, skip })
    }

    #[test]
    fn parse_table() {
        use DirectiveError as E;
        use SkipRequest as S;
        let bad_msn = Err(E::InvalidNumber { name: MSN });
        let bad_part = Err(E::InvalidNumber { name: PART });
        let table: &[(Option<&str>, Result<DeliveryDirectives, DirectiveError>)] = &[
            (None, ok(None, None, S::No)),
            (Some(""), ok(None, None, S::No)),
            (Some("&&"), ok(None, None, S::No)),
            (Some("_HLS_msn=12"), ok(Some(12), None, S::No)),
            (
                Some("_HLS_msn=12&_HLS_part=3"),
                ok(Some(12), Some(3), S::No),
            ),
            (
                Some("_HLS_part=3&_HLS_msn=12"),
                ok(Some(12), Some(3), S::No),
            ),
            (
                Some("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES"),
                ok(Some(12), Some(3), S::Yes),
            ),
            (Some("_HLS_skip=v2"), ok(None, None, S::V2)),
            (Some("token=abc&_HLS_msn=0&x"), ok(Some(0), None, S::No)),
            (Some("_HLS_foo=1&_HLS_msn=7"), ok(Some(7), None, S::No)),
            (Some("%5FHLS_msn=%31%32"), ok(Some(12), None, S::No)),
            // `=5` and `=%35` are the same value.
            (Some("_HLS_msn=5"), ok(Some(5), None, S::No)),
            (Some("_HLS_msn=%35"), ok(Some(5), None, S::No)),
            (
                Some("_HLS_msn=5&_HLS_part=%32"),
                ok(Some(5), Some(2), S::No),
            ),
            // `+` is not a space, and not a digit either.
            (Some("_HLS_msn=+5"), bad_msn.clone()),
            (Some("_HLS_msn=007"), ok(Some(7), None, S::No)),
            (
                Some("_HLS_msn=18446744073709551615"),
                ok(Some(u64::MAX), None, S::No),
            ),
            (
                Some("_HLS_msn=1&_HLS_part=4294967295"),
                ok(Some(1), Some(u32::MAX), S::No),
            ),
            // §6.2.5.2: _HLS_part without _HLS_msn is a 400.
            (Some("_HLS_part=3"), Err(E::PartWithoutMsn)),
            (Some("_HLS_part=3&_HLS_skip=YES"), Err(E::PartWithoutMsn)),
            // Malformed numbers.
            (Some("_HLS_msn="), bad_msn.clone()),
            (Some("_HLS_msn"), bad_msn.clone()),
            (Some("_HLS_msn=abc"), bad_msn.clone()),
            (Some("_HLS_msn=-1"), bad_msn.clone()),
            (Some("_HLS_msn=+1"), bad_msn.clone()),
            (Some("_HLS_msn=1.0"), bad_msn.clone()),
            (Some("_HLS_msn= 1"), bad_msn.clone()),
            (Some("_HLS_msn=%"), bad_msn.clone()),
            (Some("_HLS_msn=%zz"), bad_msn.clone()),
            (Some("_HLS_msn=%FF"), bad_msn.clone()),
            (Some("_HLS_msn=18446744073709551616"), bad_msn.clone()),
            (Some("_HLS_msn=99999999999999999999999999999999"), bad_msn),
            (Some("_HLS_msn=1&_HLS_part=4294967296"), bad_part.clone()),
            (Some("_HLS_msn=1&_HLS_part=x"), bad_part),
            // Skip values are case-sensitive enumerated strings.
            (Some("_HLS_skip=yes"), Err(E::InvalidSkip)),
            (Some("_HLS_skip="), Err(E::InvalidSkip)),
            (Some("_HLS_skip=V2"), Err(E::InvalidSkip)),
            // Repeats are ambiguous.
            (
                Some("_HLS_msn=1&_HLS_msn=2"),
                Err(E::Duplicate { name: MSN }),
            ),
            (
                Some("_HLS_msn=1&_HLS_part=1&_HLS_part=1"),
                Err(E::Duplicate { name: PART }),
            ),
            (
                Some("_HLS_skip=YES&_HLS_skip=YES"),
                Err(E::Duplicate { name: SKIP }),
            ),
        ];
        for (query, want) in table {
            assert_eq!(&DeliveryDirectives::parse(*query), want, "query {query:?}");
        }
    }

    #[test]
    fn parse_garbage_never_panics() {
        let inputs = [
            "%",
            "%%",
            "%%%%%",
            "=",
            "==",
            "&=&=",
            "_HLS_msn=%E2%82",
            "\u{1F600}=\u{1F600}",
            "_HLS_msn=\u{0660}",
            "%5F%48%4C%53_part=1",
            "a%",
        ];
        for input in inputs {
            let _ = DeliveryDirectives::parse(Some(input));
        }
        // Decoded name `_HLS_part` without msn.
        assert_eq!(
            DeliveryDirectives::parse(Some("%5F%48%4C%53_part=1")),
            Err(DirectiveError::PartWithoutMsn)
        );
    }

    #[test]
    fn blocking_timeout_is_three_target_durations() {
        assert_eq!(
            blocking_timeout(Duration::from_secs(4)),
            Duration::from_secs(12)
        );
        assert_eq!(
            blocking_timeout(Duration::from_millis(1_500)),
            Duration::from_secs(6)
        );
        assert_eq!(
            blocking_timeout(Duration::MAX),
            Duration::from_secs(u64::MAX)
        );
    }
}
