//! The origin connection: a pooled HTTP/1.1 client and one buffered GET.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri, header, uri::PathAndQuery};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};

use crate::{CacheConfig, CacheError};

/// Idle keep-alive connections are closed after this long. Blocking
/// requests come in bursts once per part; anything idle for longer than a
/// few segments is not coming back soon.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that describe one connection, not the response (RFC 9110
/// §7.6.1), plus `content-length`: the body is complete and the edge may
/// rewrite it (manifests), so whoever serves it sets the length.
const HOP_BY_HOP: [header::HeaderName; 8] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::CONTENT_LENGTH,
];

/// A complete origin response.
pub(crate) struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The pooled client and where the origin is.
pub(crate) struct Origin {
    client: Client<HttpConnector, Empty<Bytes>>,
    base: Uri,
    timeout: Duration,
    max_body: usize,
    extra_headers: HeaderMap,
}

impl Origin {
    /// A client for `config.origin`: HTTP/1.1 with a keep-alive pool, no
    /// limit on connections per host (every held blocking request needs
    /// its own), TCP_NODELAY (playlists and parts are small, latency bound).
    pub fn new(config: &CacheConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_keepalive(Some(Duration::from_secs(30)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self {
            client,
            base: config.origin.clone(),
            timeout: config.request_timeout,
            max_body: config.max_bytes,
            extra_headers: config.origin_headers.clone(),
        }
    }

    /// The configured origin's base URI.
    pub fn base(&self) -> &Uri {
        &self.base
    }

    /// The absolute origin URI for an origin-relative `key`: the configured
    /// scheme and authority, the configured path prefix (if any), then key.
    #[cfg(test)]
    pub fn uri(&self, key: &str) -> Result<Uri, CacheError> {
        join(&self.base, key)
    }

    /// GETs `uri` and buffers the whole body, within the request timeout.
    pub async fn get(&self, uri: Uri) -> Result<Fetched, CacheError> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = uri;
        request.headers_mut().insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("livestack-edge-cache/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in &self.extra_headers {
            request.headers_mut().insert(name, value.clone());
        }
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    CacheError::Connect(Arc::new(e))
                } else {
                    CacheError::Transport(Arc::new(e))
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        CacheError::TooLarge {
                            limit: self.max_body,
                        }
                    } else {
                        CacheError::Transport(Arc::from(e))
                    }
                })?
                .to_bytes();
            let mut headers = parts.headers;
            strip_hop_by_hop(&mut headers);
            Ok(Fetched {
                status: parts.status,
                headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(CacheError::Timeout(self.timeout)))
    }
}

/// The absolute URI for an origin-relative `key` under `base`: its scheme
/// and authority, its path prefix (if any), then key.
pub(crate) fn join(base: &Uri, key: &str) -> Result<Uri, CacheError> {
    if !key.starts_with('/') {
        return Err(CacheError::InvalidKey);
    }
    let prefix = base.path().trim_end_matches('/');
    let path: PathAndQuery = format!("{prefix}{key}")
        .parse()
        .map_err(|_| CacheError::InvalidKey)?;
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path);
    Uri::from_parts(parts).map_err(|_| CacheError::InvalidKey)
}

/// Removes the hop-by-hop headers, including those `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(base: &str) -> Origin {
        Origin::new(&CacheConfig::new(base.parse().unwrap()))
    }

    #[tokio::test]
    async fn uri_joins_base_and_key() {
        let o = origin("http://127.0.0.1:8080");
        assert_eq!(
            o.uri("/live/a/video.m3u8?_HLS_msn=5").unwrap(),
            "http://127.0.0.1:8080/live/a/video.m3u8?_HLS_msn=5"
        );
        let o = origin("http://origin.internal/prefix/");
        assert_eq!(
            o.uri("/live/a/part1.0.m4s").unwrap(),
            "http://origin.internal/prefix/live/a/part1.0.m4s"
        );
        assert!(matches!(o.uri("live/a"), Err(CacheError::InvalidKey)));
        assert!(matches!(o.uri("/a b"), Err(CacheError::InvalidKey)));
        assert!(matches!(o.uri(""), Err(CacheError::InvalidKey)));
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("connection", "keep-alive, x-conn"),
            ("keep-alive", "timeout=5"),
            ("x-conn", "1"),
            ("transfer-encoding", "chunked"),
            ("content-length", "12"),
            ("content-type", "video/mp4"),
            ("cache-control", "max-age=1"),
        ] {
            h.insert(
                header::HeaderName::from_static(n),
                HeaderValue::from_static(v),
            );
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["cache-control", "content-type"]);
    }
}
