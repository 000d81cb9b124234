//! `GET /live/NAME/...`: verify the viewer's token, fetch the same path from
//! the origin (wasi:http outgoing-handler), rewrite playlists so that every
//! URI carries the token, and answer with the origin's status,
//! `Content-Type` and `Cache-Control`.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use livestack_manifest::RewriteOptions;
use livestack_tokens::{TOKEN_HEADER, TOKEN_PARAM, decode_query_component};
use wstd::http::{
    Body, Client, Error, HeaderValue, Method, Request, Response, StatusCode,
    body::{
        Frame, HttpBody,
        util::{Empty, combinators::UnsyncBoxBody},
    },
};

use crate::{
    answer::{self, Refusal},
    auth,
    config::Config,
};

/// Largest playlist the gateway buffers for rewriting, in bytes (the
/// manifest crate's default bound).
const MAX_PLAYLIST_BYTES: usize = livestack_manifest::DEFAULT_MAX_INPUT_BYTES;

/// Handles one `/live/` request.
pub async fn handle(request: Request<Body>, config: &Config) -> Response<Body> {
    match serve(request, config).await {
        Ok(response) => response,
        Err(refusal) => answer::refuse(&refusal),
    }
}

async fn serve(request: Request<Body>, config: &Config) -> Result<Response<Body>, Refusal> {
    let method = request.method().clone();
    if method == Method::OPTIONS {
        return Ok(answer::preflight("GET, HEAD, OPTIONS"));
    }
    if method != Method::GET && method != Method::HEAD {
        return Err(Refusal::MethodNotAllowed("GET, HEAD, OPTIONS"));
    }
    let path = request.uri().path().to_owned();
    // No query and an empty query are the same request.
    let query = request.uri().query().unwrap_or_default().to_owned();
    // The extractor the native edge uses too: a percent-encoded token
    // passes here exactly as there.
    let header = request
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    let token = livestack_tokens::request_token(Some(query.as_str()), header)
        .ok_or(Refusal::MissingToken)?
        .into_owned();

    let kept = strip_param(&query, TOKEN_PARAM);
    let url = request_url(&request, &path, &kept);
    auth::verify_play(config, &token, &url)?;

    let origin = config
        .origin
        .as_deref()
        .ok_or(Refusal::Config("LIVESTACK_ORIGIN is not set".into()))?;
    let target = if kept.is_empty() {
        format!("{origin}{path}")
    } else {
        format!("{origin}{path}?{kept}")
    };
    let mut upstream = Request::builder().method(method.clone()).uri(&target);
    if let Some(credential) = &config.origin_credential {
        upstream = upstream.header(
            livestack_tokens::EDGE_CREDENTIAL_HEADER,
            credential.as_str(),
        );
    }
    // The empty request body as a stream that ends at once, not
    // `Body::empty()`: wstd 0.6.8 writes an empty body with one zero-length
    // write, and fails the whole exchange ("connection reset") when the
    // host has already closed the body stream, which `wasmtime serve`
    // 48.0.8 does once hyper has sent a GET's head (it sends no body for
    // GET). A stream that ends writes nothing and only finishes the body,
    // which the host accepts in any state.
    let upstream = upstream
        .body(Body::from_http_body(Empty::<Bytes>::new()))
        .map_err(|_| Refusal::Config("LIVESTACK_ORIGIN is not a valid URL".into()))?;
    let mut origin_response = Client::new()
        .send(upstream)
        .await
        .map_err(|_| Refusal::OriginUnreachable)?;

    let status = origin_response.status();
    let mut response = Response::builder().status(status);
    for name in [
        "content-type",
        "cache-control",
        "age",
        "last-modified",
        "etag",
    ] {
        if let Some(value) = origin_response.headers().get(name) {
            response = response.header(name, value.clone());
        }
    }
    response = response.header("access-control-allow-origin", "*");

    let is_playlist = path.ends_with(".m3u8");
    if status == StatusCode::OK && is_playlist && method == Method::GET {
        let body = origin_response
            .body_mut()
            .contents()
            .await
            .map_err(|_| Refusal::OriginUnreachable)?;
        if body.len() > MAX_PLAYLIST_BYTES {
            return Err(Refusal::BadPlaylist("playlist too large".into()));
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| Refusal::BadPlaylist("playlist is not UTF-8".into()))?;
        let options = RewriteOptions {
            token_query: Some(livestack_tokens::token_query(&token)),
            ..RewriteOptions::default()
        };
        let rewritten = livestack_manifest::rewrite(text, &options)
            .map_err(|e| Refusal::BadPlaylist(e.to_string()))?;
        return response
            .body(Body::from(rewritten))
            .map_err(|_| Refusal::BadPlaylist("response headers".into()));
    }
    // Media (init, parts, segments) and non-200 answers stream through
    // unchanged: the gateway never buffers media.
    let body = DataOnly(origin_response.into_body().into_boxed_body());
    response
        .body(Body::from_http_body(body))
        .map_err(|_| Refusal::OriginUnreachable)
}

/// The origin's body without its trailers frame. Passing the incoming body
/// through as is makes wstd forward the (empty) trailers, which jco's WASI
/// shim refuses when finishing the outgoing body ("trailers unsupported"),
/// trapping the instance; and it would splice the streams, which that shim
/// also fails at. Data frames are forwarded as they arrive.
struct DataOnly(UnsyncBoxBody<Bytes, Error>);

impl HttpBody for DataOnly {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        loop {
            match Pin::new(&mut self.0).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) if !frame.is_data() => {}
                other => return other,
            }
        }
    }
}

/// The absolute URL the client asked for, as a CAT `catu` claim is matched
/// against it (CTA-5007 §4.6.2): scheme, authority (`Host`), path and the
/// query without the token parameter (`kept`).
fn request_url(request: &Request<Body>, path: &str, kept: &str) -> String {
    let uri = request.uri();
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get("host")
                .and_then(|h: &HeaderValue| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "localhost".to_owned());
    if kept.is_empty() {
        format!("{scheme}://{host}{path}")
    } else {
        format!("{scheme}://{host}{path}?{kept}")
    }
}

/// `query` without any `name=...` pair (names compared decoded, as
/// [`livestack_tokens::query_param`] finds them), order and encoding of the
/// others kept (`_HLS_msn`, `_HLS_part`, `_HLS_skip` reach the origin as
/// sent).
pub fn strip_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            !pair.is_empty()
                && decode_query_component(pair.split_once('=').map_or(*pair, |(k, _)| k)) != name
        })
        .collect::<Vec<_>>()
        .join("&")
}
