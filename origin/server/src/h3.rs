//! HTTP/3 (RFC 9114) over QUIC (RFC 9000, quinn): the HTTPS listener's
//! routes on UDP, at the same port number as its TCP side, which
//! advertises it with `Alt-Svc: h3=":PORT"` (RFC 7838).
//!
//! Every request goes through the same handler as HTTP/1.1 and HTTP/2
//! (`crate::http::answer`): LL-HLS blocking playlist reloads and
//! preload-hinted parts wait the same way, and count against the same
//! per-address cap of held requests. The certificate is the HTTPS
//! listener's.
//!
//! Limits (the [`ListenerLimits`] of the TCP listeners, same meaning):
//! connections per listener and per client address (refused before the
//! handshake), the TLS handshake within `tls_handshake_timeout`, a request's
//! headers within `header_read_timeout` of its stream opening, at most
//! `max_h2_streams` concurrent requests per connection (QUIC's
//! `initial_max_streams_bidi`), request header sections of at most
//! [`MAX_FIELD_SECTION_SIZE`], and a connection that receives nothing for
//! [`QUIC_IDLE_TIMEOUT`](crate::tls::QUIC_IDLE_TIMEOUT) is closed. Request bodies are never read (no route
//! takes one): a request stream's body is refused with `STOP_SENDING`.

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use h3::error::Code;
use http::Response;
use http_body_util::BodyExt as _;
use livestack_listener::{ClientAddr, ListenerLimits};
use tracing::debug;

use crate::http::{HttpState, Touched, answer};

/// Largest request header section accepted (`SETTINGS_MAX_FIELD_SECTION_SIZE`,
/// RFC 9114 §4.2.2), bytes: the same 16 KiB a header-read buffer of the TCP
/// listeners holds.
pub const MAX_FIELD_SECTION_SIZE: u64 = 16 * 1024;

/// Unidirectional streams a client may open: HTTP/3 needs three (control,
/// QPACK encoder and decoder, RFC 9114 §6.2); a few spare for extensions
/// it may announce and we ignore.
const MAX_UNI_STREAMS: u32 = 8;

/// `config` (the HTTP/3 crypto, [`crate::tls::quic_server_config`]) with
/// the HTTP/3 listener's transport parameters under `limits` (see the
/// module docs); no server keep-alive: a connection idle for
/// [`QUIC_IDLE_TIMEOUT`](crate::tls::QUIC_IDLE_TIMEOUT) is closed.
pub fn server_config(config: quinn::ServerConfig, limits: &ListenerLimits) -> quinn::ServerConfig {
    crate::tls::with_quic_transport(config, limits, MAX_UNI_STREAMS, false)
}

/// Accepts QUIC connections on `endpoint` and serves HTTP/3 on them until
/// the endpoint is closed or the task dropped.
pub async fn serve(endpoint: quinn::Endpoint, state: Arc<HttpState>) {
    while let Some(incoming) = endpoint.accept().await {
        let peer = incoming.remote_address();
        let Ok(admitted) = state.admission.admit(peer.ip()) else {
            // Counted by the admission; the client learns it at once.
            incoming.refuse();
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let limits = *state.admission.limits();
            let connection =
                match tokio::time::timeout(limits.tls_handshake_timeout, incoming).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        debug!(error = %e, peer = %ClientAddr::from(peer), "QUIC handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(peer = %ClientAddr::from(peer), "QUIC handshake timed out");
                        return;
                    }
                };
            serve_connection(connection, peer, state, limits).await;
        });
    }
}

/// Serves the requests of one HTTP/3 connection, each on its own task.
async fn serve_connection(
    connection: quinn::Connection,
    peer: SocketAddr,
    state: Arc<HttpState>,
    limits: ListenerLimits,
) {
    let mut h3 = match h3::server::builder()
        .max_field_section_size(MAX_FIELD_SECTION_SIZE)
        .build::<_, Bytes>(h3_quinn::Connection::new(connection))
        .await
    {
        Ok(h3) => h3,
        Err(e) => {
            debug!(error = %e, peer = %ClientAddr::from(peer), "HTTP/3 set-up failed");
            return;
        }
    };
    let touched = Touched::default();
    loop {
        match h3.accept().await {
            Ok(Some(resolver)) => {
                let state = state.clone();
                let touched = touched.clone();
                tokio::spawn(async move {
                    let resolved = tokio::time::timeout(
                        limits.header_read_timeout,
                        resolver.resolve_request(),
                    )
                    .await;
                    let (request, mut stream) = match resolved {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) => {
                            debug!(error = %e, "HTTP/3 request refused");
                            return;
                        }
                        Err(_) => {
                            debug!("HTTP/3 request headers timed out");
                            return;
                        }
                    };
                    let (head, ()) = request.into_parts();
                    // No route reads a body: refuse one rather than buffer it.
                    stream.stop_sending(Code::H3_NO_ERROR);
                    let (parts, body) = answer(&head, peer, &state, &touched).await.into_parts();
                    // Full<Bytes>: one frame; its error type is Infallible.
                    let body = match body.collect().await {
                        Ok(collected) => collected.to_bytes(),
                        Err(never) => match never {},
                    };
                    let sent = async {
                        stream
                            .send_response(Response::from_parts(parts, ()))
                            .await?;
                        if !body.is_empty() {
                            stream.send_data(body).await?;
                        }
                        stream.finish().await
                    };
                    if let Err(e) = sent.await {
                        debug!(error = %e, "HTTP/3 response not delivered");
                    }
                });
            }
            Ok(None) => break,
            Err(e) => {
                if !e.is_h3_no_error() {
                    debug!(error = %e, peer = %ClientAddr::from(peer), "HTTP/3 connection ended with error");
                }
                break;
            }
        }
    }
}
