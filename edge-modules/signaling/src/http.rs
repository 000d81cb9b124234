//! The HTTP message types [`handle`](crate::handle) works on, and small
//! helpers over them (header lookup, bearer credentials, query parameters,
//! CORS). No parsing beyond what the decisions need.

use std::borrow::Cow;

/// Name of the response header that carries a machine-readable reason for
/// every refusal (`missing-token`, `expired`, `not-live`, ...), so that a
/// client, a log pipeline or a test can tell refusals apart without reading
/// the body. Lower case, like every header name this crate writes.
pub const REASON_HEADER: &str = "x-livestack-reason";

/// The Bearer realm named in `WWW-Authenticate` challenges (RFC 6750 §3).
pub const REALM: &str = "livestack";

/// Headers a browser may send cross-origin (CORS preflight answer). WHIP
/// and WHEP clients send `Authorization` and `Content-Type: application/sdp`
/// (RFC 9725 §4.2 and its section on authentication).
const CORS_ALLOW_HEADERS: &str = "authorization, content-type";

/// Response headers a browser script may read.
const CORS_EXPOSE_HEADERS: &str = "location, retry-after, www-authenticate, x-livestack-reason";

/// A signaling request as the edge received it. The body itself is not
/// needed: the edge never parses the SDP offer (no media and no ICE flow
/// through it), it only checks the size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Method, upper case as sent (`POST`, `OPTIONS`, `GET`, ...).
    pub method: String,
    /// Request target: path and optional query (`/whip/cam1?x=1`).
    pub path: String,
    /// Request headers in arrival order; names are matched
    /// case-insensitively.
    pub headers: Vec<(String, String)>,
    /// Length of the request body, in bytes.
    pub body_len: u64,
}

impl Request {
    /// The first value of header `name` (ASCII case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(p, _)| p)
    }

    /// The value of query parameter `name`, the first occurrence,
    /// percent-decoded as every livestack server reads a query
    /// ([`livestack_tokens::query_param`]: RFC 3986, `+` is not a space).
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        let (_, query) = self.path.split_once('?')?;
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        livestack_tokens::query_param(query, name)
    }

    /// The bearer credentials ([`bearer`](Self::bearer)), else the non-empty
    /// [`TOKEN_PARAM`](livestack_tokens::TOKEN_PARAM) query parameter,
    /// decoded like on `/live/`, so a percent-encoded token passes here as
    /// it does there.
    pub fn bearer_or_query_token(&self) -> Option<Cow<'_, str>> {
        self.bearer().map(Cow::Borrowed).or_else(|| {
            self.query_param(livestack_tokens::TOKEN_PARAM)
                .filter(|t| !t.is_empty())
        })
    }

    /// The credentials of an `Authorization: Bearer <token>` header
    /// (RFC 6750 §2.1; the scheme name is case-insensitive, RFC 9110
    /// §11.1). `None` if the header is absent, of another scheme, or empty.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    /// The media type of `Content-Type` without parameters, lower case.
    pub fn media_type(&self) -> Option<String> {
        let value = self.header("content-type")?;
        // split always yields one item.
        let media = value.split(';').next().unwrap_or_default().trim();
        Some(media.to_ascii_lowercase())
    }
}

/// The answer to a signaling request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code (RFC 9110 §15).
    pub status: u16,
    /// Response headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Response body: JSON for WebTransport set-up, a one-line plain-text
    /// explanation on refusals, empty otherwise.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, the CORS headers every answer carries and
    /// `Cache-Control: no-store` (a session set-up answer is personal and
    /// single-use).
    pub(crate) fn new(status: u16) -> Self {
        Self {
            status,
            headers: vec![
                ("access-control-allow-origin".into(), "*".into()),
                (
                    "access-control-expose-headers".into(),
                    CORS_EXPOSE_HEADERS.into(),
                ),
                ("cache-control".into(), "no-store".into()),
            ],
            body: Vec::new(),
        }
    }

    /// The CORS preflight answer for an endpoint that takes `allow`.
    pub(crate) fn preflight(allow: &str) -> Self {
        Self::new(204)
            .with("allow", allow)
            .with("access-control-allow-methods", allow)
            .with("access-control-allow-headers", CORS_ALLOW_HEADERS)
            .with("access-control-max-age", "600")
    }

    /// Adds a header.
    pub(crate) fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a plain-text body.
    pub(crate) fn text(mut self, text: &str) -> Self {
        self.headers
            .push(("content-type".into(), "text/plain; charset=utf-8".into()));
        self.body = format!("{text}\n").into_bytes();
        self
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body_len: 0,
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(
            req("/", &[("Authorization", "bearer abc")]).bearer(),
            Some("abc")
        );
        assert_eq!(
            req("/", &[("authorization", "Bearer  abc ")]).bearer(),
            Some("abc")
        );
        assert_eq!(req("/", &[("authorization", "Bearer ")]).bearer(), None);
        assert_eq!(req("/", &[("authorization", "Basic YTpi")]).bearer(), None);
        assert_eq!(req("/", &[]).bearer(), None);
    }

    #[test]
    fn query_params_and_path() {
        let r = req("/wt/cam?access=publish&token=t.k#frag", &[]);
        assert_eq!(r.path_only(), "/wt/cam");
        assert_eq!(r.query_param("access").as_deref(), Some("publish"));
        assert_eq!(r.query_param("token").as_deref(), Some("t.k"));
        assert_eq!(r.query_param("missing"), None);
        assert_eq!(req("/wt/cam", &[]).query_param("token"), None);
        // `=5` and `=%35` are the same value.
        let plain = req("/wt/cam?token=5", &[]);
        let encoded = req("/wt/cam?token=%35", &[]);
        assert_eq!(plain.query_param("token"), encoded.query_param("token"));
        assert_eq!(encoded.bearer_or_query_token().as_deref(), Some("5"));
    }

    #[test]
    fn media_type_drops_parameters() {
        let r = req("/", &[("Content-Type", "Application/SDP; charset=utf-8")]);
        assert_eq!(r.media_type().as_deref(), Some("application/sdp"));
    }
}
