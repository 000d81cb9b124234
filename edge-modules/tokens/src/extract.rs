//! Where a token travels in an HTTP request, and how a query string is
//! decoded: the one extractor the native edge, the gateway component and
//! the origin share, so that a token passes (or fails) on each of them
//! alike however the client encoded it.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// The query parameter a token travels in (`?token=...`), on requests and
/// in every URI of a rewritten playlist.
pub const TOKEN_PARAM: &str = "token";

/// The request header a CAT may travel in instead of the query (CTA-5007
/// §4.4 names `CTA-Common-Access-Token`), lower case as HTTP/2 and the
/// `http` crate spell header names.
pub const TOKEN_HEADER: &str = "cta-common-access-token";

/// The request header an edge presents its origin credential in: a secret
/// shared by the edges and the origins of one deployment (from a file or
/// the environment on both sides), the pattern CDNs document for locking an
/// origin to its CDN (a custom origin header with a secret value). An
/// origin that receives it intact serves the request without a viewer
/// token: the edge has already verified one. Only meaningful inside the
/// private network or over TLS; never sent to viewers.
pub const EDGE_CREDENTIAL_HEADER: &str = "x-livestack-edge-credential";

/// Shortest accepted edge credential, in bytes (128 bits of a random
/// base64 or hex string, at least).
pub const MIN_EDGE_CREDENTIAL_LEN: usize = 24;

/// Whether a presented edge credential equals the configured one, in
/// constant time for equal lengths (the length is not a secret).
pub fn edge_credential_matches(presented: &[u8], configured: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    presented.len() == configured.len() && bool::from(presented.ct_eq(configured))
}

/// Decodes one query component (a parameter name or value).
///
/// RFC 3986 §2.1 percent-decoding and nothing else (the `percent-encoding`
/// crate's `percent_decode_str`):
///
/// * `%XX` (hex digits of either case) becomes the byte `0xXX`; a `%` not
///   followed by two hex digits is kept as it is.
/// * `+` stays `+`, it is **not** a space. Only
///   `application/x-www-form-urlencoded` (HTML form submissions) reads `+`
///   as a space, and no token, delivery directive or stream key comes from
///   a form. Tokens are base64url (RFC 4648 §5: `-` and `_`, never `+`), so
///   for them the choice changes nothing; an origin play key is operator
///   text and may contain `+`: reading `+` literally makes `?token=a+b` and
///   `?token=a%2Bb` present the same credential, whereas form decoding
///   would turn the first into `a b`, a key nobody configured. Either way a
///   client's choice of what to escape never changes the outcome.
/// * Bytes that are not UTF-8 after decoding become U+FFFD; such a value
///   can never equal a token, directive or key, so it is refused later
///   rather than here.
///
/// Borrows when there is nothing to decode.
pub fn decode_query_component(component: &str) -> Cow<'_, str> {
    percent_decode_str(component).decode_utf8_lossy()
}

/// Every byte but the RFC 3986 §2.3 unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) is escaped in a query component we write.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes `component` for a query: every byte but the RFC 3986 §2.3
/// unreserved characters becomes `%XX` (upper-case hex), so
/// [`decode_query_component`] gives `component` back, and a `+`, `&`, `=`
/// or `#` can never split or end the parameter. A base64url token comes
/// out unchanged.
pub fn encode_query_component(component: &str) -> Cow<'_, str> {
    utf8_percent_encode(component, QUERY_COMPONENT).into()
}

/// `token=<token>`, the token encoded with [`encode_query_component`]: the
/// query parameter a rewritten playlist appends to every URI.
///
/// ```
/// assert_eq!(livestack_tokens::token_query("a+b/c"), "token=a%2Bb%2Fc");
/// ```
pub fn token_query(token: &str) -> String {
    format!("{TOKEN_PARAM}={}", encode_query_component(token))
}

/// The decoded value of the first parameter called `name` in `query`
/// (without the leading `?`), both sides decoded with
/// [`decode_query_component`] before comparing; a parameter without `=`
/// has the empty value.
///
/// ```
/// use livestack_tokens::query_param;
/// assert_eq!(query_param("a=1&token=x%2Ey", "token").as_deref(), Some("x.y"));
/// assert_eq!(query_param("a=1", "token"), None);
/// ```
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_query_component(key) == name).then(|| decode_query_component(value))
    })
}

/// The token a request presents: the [`TOKEN_PARAM`] query parameter
/// (decoded with [`decode_query_component`]), else the [`TOKEN_HEADER`]
/// header value with surrounding whitespace trimmed (not percent-decoded:
/// header values are not URL-encoded, and a CAT is base64url). An empty
/// value counts as absent, so `?token=` falls back to the header.
///
/// `query` is the request's query without the `?`; `header` the value of
/// [`TOKEN_HEADER`], if present and text. `None`: the request carries no
/// token (RFC 6750 §3.1: answer 401 without an error code).
///
/// ```
/// use livestack_tokens::request_token;
/// assert_eq!(request_token(Some("token=%35"), None).as_deref(), Some("5"));
/// assert_eq!(request_token(Some("token="), Some(" c.a.t ")).as_deref(), Some("c.a.t"));
/// assert_eq!(request_token(None, None), None);
/// ```
pub fn request_token<'a>(query: Option<&'a str>, header: Option<&'a str>) -> Option<Cow<'a, str>> {
    query
        .and_then(|q| query_param(q, TOKEN_PARAM))
        .filter(|t| !t.is_empty())
        .or_else(|| {
            header
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(Cow::Borrowed)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_rfc_3986_percent_decoding_only() {
        for (raw, decoded) in [
            ("5", "5"),
            ("%35", "5"),
            ("x%2Ey", "x.y"),
            ("x%2ey", "x.y"),
            ("a+b", "a+b"),
            ("a%2Bb", "a+b"),
            ("a%20b", "a b"),
            ("%", "%"),
            ("%4", "%4"),
            ("%zz%4", "%zz%4"),
            ("%C3%A9", "é"),
            ("%ff", "\u{fffd}"),
            ("", ""),
        ] {
            assert_eq!(decode_query_component(raw), decoded, "{raw}");
        }
        assert!(matches!(
            decode_query_component("abc"),
            Cow::Borrowed("abc")
        ));
    }

    #[test]
    fn encoding_escapes_all_but_unreserved_and_round_trips() {
        assert_eq!(encode_query_component("a.b-c_d~e+f/"), "a.b-c_d~e%2Bf%2F");
        assert_eq!(
            encode_query_component("a b&c=d#é"),
            "a%20b%26c%3Dd%23%C3%A9"
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln-_";
        assert!(matches!(encode_query_component(jwt), Cow::Borrowed(t) if t == jwt));
        for text in ["a+b", "%35", "x y", "é&=#%", ""] {
            let encoded = encode_query_component(text);
            assert_eq!(decode_query_component(&encoded), text);
        }
    }

    #[test]
    fn plain_and_percent_encoded_values_are_the_same_parameter() {
        assert_eq!(query_param("x=1&n=5", "n"), query_param("x=1&n=%35", "n"));
        assert_eq!(query_param("n=%35", "n").as_deref(), Some("5"));
        // Names are decoded too (`%74oken` is `token`).
        assert_eq!(query_param("%74oken=abc", "token").as_deref(), Some("abc"));
        // First occurrence wins; a bare name has the empty value.
        assert_eq!(query_param("n=1&n=2", "n").as_deref(), Some("1"));
        assert_eq!(query_param("flag&n=1", "flag").as_deref(), Some(""));
        assert_eq!(query_param("", "n"), None);
        assert_eq!(query_param("nn=1", "n"), None);
    }

    #[test]
    fn token_from_query_then_header() {
        type Case = (
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: [Case; 9] = [
            (Some("token=abc"), None, Some("abc")),
            (Some("token=a%2Eb%2Dc"), None, Some("a.b-c")),
            (Some("_HLS_msn=3&token=abc&_HLS_part=1"), None, Some("abc")),
            (Some("token=abc"), Some("hdr"), Some("abc")),
            (None, Some("hdr"), Some("hdr")),
            (Some("token="), Some(" hdr\t"), Some("hdr")),
            (Some("token="), None, None),
            (Some("x=1"), Some("  "), None),
            (None, None, None),
        ];
        for (query, header, want) in cases {
            assert_eq!(
                request_token(query, header).as_deref(),
                want,
                "{query:?} {header:?}"
            );
        }
    }

    /// What the native edge and the gateway both do with a request: a CAT
    /// sent plainly, percent-encoded byte by byte, or in the header is the
    /// same token and verifies.
    #[test]
    fn a_percent_encoded_token_verifies_like_the_plain_one() {
        use crate::{Access, KeySet, MintRequest, RequestUrl, VerifyOptions, mint_cat, verify};
        let keys = KeySet::parse("k1:HS256:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY").unwrap();
        let now = 1_750_000_000;
        let request = MintRequest::for_stream("cam1", Access::Play, now, 300, *b"t-1").unwrap();
        let cat = mint_cat(&request, &keys).unwrap();
        let encoded: String = cat.bytes().map(|b| format!("%{b:02X}")).collect();
        let mut options = VerifyOptions::new(now + 1);
        options.url = Some(RequestUrl::parse("https://edge.example/live/cam1/index.m3u8").unwrap());
        for (query, header) in [
            (format!("token={cat}"), None),
            (format!("_HLS_msn=1&token={encoded}"), None),
            (String::new(), Some(cat.as_str())),
        ] {
            let token = request_token(Some(query.as_str()), header).unwrap();
            assert_eq!(token, cat);
            verify(&token, &keys, &options).unwrap();
        }
    }
}
