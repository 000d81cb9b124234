//! `/whip/`, `/whep/`, `/wt/`: hands the request to `livestack-signaling`
//! with this PoP's clock, randomness, registry view and location.

use livestack_routing::{ClientGeo, Policy};
use livestack_signaling::{Context, MAX_OFFER_BYTES, SessionConfig};
use wstd::http::{Body, BodyExt, Request, Response};

use crate::{
    answer::{self, Refusal},
    auth,
    config::Config,
};

/// Handles one signaling request.
pub async fn handle(mut request: Request<Body>, config: &Config) -> Response<Body> {
    let body_len = match body_len(&mut request).await {
        Ok(len) => len,
        Err(refusal) => return answer::refuse(&refusal),
    };
    let signaling_request = livestack_signaling::Request {
        method: request.method().as_str().to_owned(),
        path: request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        ),
        headers: request
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_owned(), v.to_owned()))
            })
            .collect(),
        body_len,
    };
    let geo = ClientGeo {
        location: config.location,
        country: config.country.as_deref(),
    };
    let policy = Policy::default();
    let session = SessionConfig {
        issuer: config.issuer.clone(),
        ..SessionConfig::default()
    };
    let session_id = auth::session_id();
    let placement = |stream: &str| config.registry.placement(stream);
    let ctx = Context {
        keys: &config.keys,
        issuer: config.issuer.as_deref(),
        audience: config.audience.as_deref(),
        skew_s: livestack_tokens::DEFAULT_SKEW_SECS,
        nodes: &config.registry.nodes,
        endpoints: &config.registry.endpoints,
        placement: &placement,
        geo: &geo,
        policy: &policy,
        now_unix_s: auth::now_unix_s(),
        session_id: &session_id,
        session: &session,
    };
    answer::from_signaling(livestack_signaling::handle(&signaling_request, &ctx))
}

/// The request body's length in bytes: `Content-Length` when sent, else
/// counted while draining the body, stopping past [`MAX_OFFER_BYTES`]
/// (signaling refuses such offers with 413 anyway). The SDP itself is
/// never kept: the client re-sends it to the node after the redirect.
async fn body_len(request: &mut Request<Body>) -> Result<u64, Refusal> {
    if let Some(len) = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Ok(len);
    }
    let mut total: u64 = 0;
    let mut body = std::mem::replace(request.body_mut(), Body::empty()).into_boxed_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Refusal::BadRequest("unreadable request body"))?;
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
            if total > MAX_OFFER_BYTES {
                break;
            }
        }
    }
    Ok(total)
}
