//! The admin HTTP API: a separate listener, every `/v1/*` call (except the
//! OpenAPI document) protected by a bearer token (RFC 6750 §2.1).
//!
//! The API is described by `deploy/openapi.json` (OpenAPI 3.1), served at
//! `/v1/openapi.json`. Bodies are JSON; errors are
//! `{"error": "<code>", "reason": "<sentence>"}` with codes
//! `unauthorized` (401), `not_found` (404), `bad_request` (400), `exists`
//! (409), `control_plane_unavailable` (503), `internal` (500).
//!
//! Routes:
//! - `GET /healthz`, `GET /v1/openapi.json` (no token);
//! - `GET /v1/nodes`; `POST|DELETE /v1/nodes/{id}/drain`;
//! - `GET /v1/streams`; `POST /v1/streams/{name}/kick`;
//! - `GET /v1/sessions`;
//! - `GET /v1/keys`; `POST /v1/keys`; `DELETE /v1/keys/{id}`;
//! - `GET /metrics` (OpenMetrics, as on the public listener, which a
//!   closed origin does not offer to the public).
//!
//! Commands for another node (drain, kick) go through the control plane's
//! node command queue and take effect at that node's next heartbeat; for
//! this node they take effect at once.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    cluster::Node,
    control::{ControlError, NodeCommand, Scope, StreamKey, UnixMillis, ct_eq, now_millis},
};

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("../../../deploy/openapi.json");

/// Largest request body accepted, bytes.
const MAX_BODY: usize = 16 * 1024;

/// What the admin handlers need.
#[derive(Debug)]
pub struct AdminState {
    /// This node.
    pub node: Arc<Node>,
    /// The bearer token.
    pub token: String,
    /// The origin's metrics, served at `/metrics` with the token (the
    /// place to scrape a closed origin).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Connection caps and timeouts of the admin listener.
    pub admission: Arc<livestack_listener::Admission>,
}

/// A stream key as the API lists it (never the secret).
#[derive(Debug, Serialize)]
struct KeyView<'a> {
    id: &'a str,
    stream: &'a str,
    scope: Scope,
    expires_at: Option<UnixMillis>,
    created_at: UnixMillis,
}

impl<'a> From<&'a StreamKey> for KeyView<'a> {
    fn from(k: &'a StreamKey) -> Self {
        Self {
            id: &k.id,
            stream: &k.stream,
            scope: k.scope,
            expires_at: k.expires_at,
            created_at: k.created_at,
        }
    }
}

/// `POST /v1/keys` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    stream: String,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    ttl_seconds: Option<u64>,
    #[serde(default)]
    secret: Option<String>,
}

/// `POST /v1/keys` answer: the key with its secret (shown once).
#[derive(Debug, Serialize)]
struct CreatedKey<'a> {
    #[serde(flatten)]
    key: KeyView<'a>,
    secret: &'a str,
}

/// Serves the admin API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(admitted) = state.admission.admit(peer.ip()) else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let builder = state.admission.limits().builder();
            let io = TokioIo::new(state.admission.limits().guard(tcp));
            let svc = service_fn(move |req| {
                let state = state.clone();
                // One span per call (exported with `--otlp-endpoint`); the
                // query is left out of it.
                let span = info_span!(
                    "admin",
                    http.request.method = %req.method(),
                    url.path = req.uri().path(),
                    client.address = %peer,
                );
                async move { Ok::<_, Infallible>(handle(req, &state, peer).await) }.instrument(span)
            });
            if let Err(e) = builder.serve_connection(io, svc).await {
                debug!(error = %e, peer = %livestack_listener::ClientAddr::from(peer), "admin connection ended with error");
            }
        });
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(status: StatusCode, code: &str, reason: &str) -> Response<Full<Bytes>> {
    let mut r = json(
        status,
        &serde_json::json!({ "error": code, "reason": reason }),
    );
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"livestack-admin\""),
        );
    }
    r
}

fn control_error(e: &ControlError) -> Response<Full<Bytes>> {
    match e {
        ControlError::Unavailable(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "control_plane_unavailable",
            &e.to_string(),
        ),
        ControlError::NotFound(_) => error(StatusCode::NOT_FOUND, "not_found", &e.to_string()),
        ControlError::Exists(_) => error(StatusCode::CONFLICT, "exists", &e.to_string()),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, value) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
        })
        .is_some_and(|presented| ct_eq(presented, token))
}

fn random_hex(bytes: usize) -> Result<String, ControlError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b)
        .map_err(|e| ControlError::Unavailable(format!("no system randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

async fn handle(
    req: Request<Incoming>,
    state: &AdminState,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match (&method, path.as_str()) {
        (&Method::GET, "/healthz") => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"ok\n")));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return r;
        }
        (&Method::GET, "/v1/openapi.json") => {
            let mut r = Response::new(Full::new(Bytes::from_static(OPENAPI.as_bytes())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return r;
        }
        _ => {}
    }
    if !authorized(&req, &state.token) {
        warn!(peer = %livestack_listener::ClientAddr::from(peer), %method, %path, "admin call refused: missing or wrong bearer token");
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer <admin token>)",
        );
    }
    let resp = route(req, &method, &path, state).await;
    info!(peer = %livestack_listener::ClientAddr::from(peer), %method, %path, status = resp.status().as_u16(), "admin call");
    resp
}

async fn route(
    req: Request<Incoming>,
    method: &Method,
    path: &str,
    state: &AdminState,
) -> Response<Full<Bytes>> {
    let node = &state.node;
    let client = node.client();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (&Method::GET, ["metrics"]) => {
            let mut r = Response::new(Full::new(Bytes::from(state.metrics.exposition(node))));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            r
        }
        (&Method::GET, ["v1", "nodes"]) => match client.call("nodes", |s| s.nodes()).await {
            Ok(n) => json(StatusCode::OK, &n),
            Err(e) => control_error(&e),
        },
        (&Method::POST | &Method::DELETE, ["v1", "nodes", id, "drain"]) => {
            let draining = method == Method::POST;
            if *id == node.id() {
                node.set_draining(draining);
                // Publish the new state now rather than at the next beat.
                node.heartbeat().await;
            } else {
                match client.call("nodes", |s| s.nodes()).await {
                    Ok(nodes) if nodes.iter().any(|n| n.id == *id) => {}
                    Ok(_) => {
                        return error(StatusCode::NOT_FOUND, "not_found", "no such node");
                    }
                    Err(e) => return control_error(&e),
                }
                let cmd = NodeCommand::Drain { draining };
                if let Err(e) = client
                    .call("send_command", |s| s.send_command(id, &cmd))
                    .await
                {
                    return control_error(&e);
                }
            }
            json(
                StatusCode::ACCEPTED,
                &serde_json::json!({ "node_id": id, "draining": draining }),
            )
        }
        (&Method::GET, ["v1", "streams"]) => {
            match client.call("placements", |s| s.placements()).await {
                Ok(p) => json(StatusCode::OK, &p),
                Err(e) => control_error(&e),
            }
        }
        (&Method::POST, ["v1", "streams", name, "kick"]) => {
            if node.kick(name) {
                return json(
                    StatusCode::ACCEPTED,
                    &serde_json::json!({ "stream": name, "node_id": node.id() }),
                );
            }
            let placement = match client.call("placement", |s| s.placement(name)).await {
                Ok(Some(p)) => p,
                Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", "stream not live"),
                Err(e) => return control_error(&e),
            };
            let cmd = NodeCommand::Kick {
                stream: (*name).to_owned(),
            };
            if let Err(e) = client
                .call("send_command", |s| s.send_command(&placement.node_id, &cmd))
                .await
            {
                return control_error(&e);
            }
            json(
                StatusCode::ACCEPTED,
                &serde_json::json!({ "stream": name, "node_id": placement.node_id }),
            )
        }
        (&Method::GET, ["v1", "sessions"]) => {
            match client.call("sessions", |s| s.sessions()).await {
                Ok(x) => json(StatusCode::OK, &x),
                Err(e) => control_error(&e),
            }
        }
        (&Method::GET, ["v1", "keys"]) => match client.call("keys", |s| s.keys()).await {
            Ok(keys) => json(
                StatusCode::OK,
                &keys.iter().map(KeyView::from).collect::<Vec<_>>(),
            ),
            Err(e) => control_error(&e),
        },
        (&Method::POST, ["v1", "keys"]) => create_key(req, state).await,
        (&Method::DELETE, ["v1", "keys", id]) => match client.revoke_key(id).await {
            Ok(()) => {
                info!(key = %id, "stream key revoked");
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
            Err(e) => control_error(&e),
        },
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
    }
}

async fn create_key(req: Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("unreadable body: {e}"),
            );
        }
    };
    let new: NewKey = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("invalid body: {e}"),
            );
        }
    };
    let name_ok = new.stream == "*"
        || (!new.stream.is_empty()
            && new.stream.len() <= 128
            && new
                .stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')));
    if !name_ok {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "stream must be `*` or 1..=128 characters of [A-Za-z0-9._-]",
        );
    }
    if let Some(s) = &new.secret
        && !(12..=79).contains(&s.len())
    {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "secret must be 12..=79 characters (79 is the SRT passphrase limit)",
        );
    }
    let (id, secret) = match (random_hex(8), new.secret.clone()) {
        (Ok(id), Some(secret)) => (id, secret),
        (Ok(id), None) => match random_hex(16) {
            Ok(secret) => (id, secret),
            Err(e) => return control_error(&e),
        },
        (Err(e), _) => return control_error(&e),
    };
    let now = now_millis();
    let key = StreamKey {
        id: format!("k-{id}"),
        stream: new.stream,
        secret,
        scope: new.scope.unwrap_or(Scope::Publish),
        expires_at: new
            .ttl_seconds
            .map(|t| now.saturating_add(t.saturating_mul(1000))),
        created_at: now,
    };
    match state
        .node
        .client()
        .call("create_key", |s| s.create_key(&key))
        .await
    {
        Ok(()) => {
            info!(key = %key.id, stream = %key.stream, scope = ?key.scope, "stream key created");
            json(
                StatusCode::CREATED,
                &CreatedKey {
                    key: KeyView::from(&key),
                    secret: &key.secret,
                },
            )
        }
        Err(e) => control_error(&e),
    }
}
