//! Refusals of the gateway and the one place that turns them (and
//! `livestack-signaling`'s answers) into `wasi:http` responses. Every
//! refusal carries the reason header and a one-line text body; never a
//! stack trace, never token bytes.

use livestack_signaling::{REASON_HEADER, Refusal as SignalingRefusal};
use wstd::http::{Body, Response};

/// Why the gateway refused a request.
#[derive(Debug)]
pub enum Refusal {
    /// A token refusal, shared with signaling so that `/live/` and
    /// WHIP/WHEP answer alike, and with the native edge through
    /// [`livestack_tokens::TokenError::status`] (401 `invalid_token`, 403
    /// `insufficient_scope`, 400 `invalid_request`, RFC 6750 §3.1).
    Token(SignalingRefusal),
    /// No token in the `token` query parameter nor in the
    /// `CTA-Common-Access-Token` header → 401 with a bare Bearer challenge.
    MissingToken,
    /// The method is not served on this path → 405 with `Allow`.
    MethodNotAllowed(&'static str),
    /// Nothing is served at this path → 404.
    NotFound,
    /// The request cannot be served as sent (an unreadable body) → 400.
    BadRequest(&'static str),
    /// The configuration is unusable → 500 (an operator error).
    Config(String),
    /// The origin could not be reached, or broke off → 502 (RFC 9110
    /// §15.6.3).
    OriginUnreachable,
    /// The origin's playlist could not be rewritten → 502.
    BadPlaylist(String),
}

impl From<SignalingRefusal> for Refusal {
    fn from(refusal: SignalingRefusal) -> Self {
        Self::Token(refusal)
    }
}

/// The response for `refusal`.
pub fn refuse(refusal: &Refusal) -> Response<Body> {
    let (status, reason, text, extra): (u16, &str, String, Option<(&str, String)>) = match refusal {
        Refusal::Token(r) => return from_signaling(r.response()),
        Refusal::MissingToken => return from_signaling(SignalingRefusal::MissingToken.response()),
        Refusal::MethodNotAllowed(allow) => (
            405,
            "method-not-allowed",
            "method not allowed".into(),
            Some(("allow", (*allow).to_owned())),
        ),
        Refusal::NotFound => (404, "not-found", "not found".into(), None),
        Refusal::BadRequest(why) => (400, "bad-request", format!("bad request: {why}"), None),
        Refusal::Config(why) => (500, "config", format!("gateway misconfigured: {why}"), None),
        Refusal::OriginUnreachable => {
            (502, "origin-unreachable", "origin unreachable".into(), None)
        }
        Refusal::BadPlaylist(why) => (
            502,
            "bad-playlist",
            format!("bad playlist from origin: {why}"),
            None,
        ),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(REASON_HEADER, reason)
        .header("access-control-allow-origin", "*")
        .header("cache-control", "no-store")
        .header("content-type", "text/plain; charset=utf-8");
    if let Some((name, value)) = extra {
        builder = builder.header(name, value);
    }
    finish(builder, format!("{}\n", printable(&text)).into_bytes())
}

/// A CORS preflight answer for `allow`.
pub fn preflight(allow: &'static str) -> Response<Body> {
    let builder = Response::builder()
        .status(204)
        .header("allow", allow)
        .header("access-control-allow-origin", "*")
        .header("access-control-allow-methods", allow)
        .header(
            "access-control-allow-headers",
            "authorization, content-type, cta-common-access-token",
        )
        .header("access-control-max-age", "600");
    finish(builder, Vec::new())
}

/// Converts a `livestack-signaling` answer. Header values the `http` crate
/// refuses (none are produced by signaling) are dropped rather than
/// failing the answer.
pub fn from_signaling(answer: livestack_signaling::Response) -> Response<Body> {
    let mut builder = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        if wstd::http::HeaderValue::from_str(value).is_ok()
            && wstd::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
        {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    finish(builder, answer.body)
}

/// Builds the response; a status or header the `http` crate refuses turns
/// into a bare 500 (an invariant of this module, not of user input).
fn finish(builder: wstd::http::response::Builder, body: Vec<u8>) -> Response<Body> {
    builder.body(Body::from(body)).unwrap_or_else(|_| {
        let mut response = Response::new(Body::from("internal error\n"));
        *response.status_mut() = wstd::http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

/// Printable ASCII only, so that a message can never smuggle a header or
/// control sequence into logs.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}
