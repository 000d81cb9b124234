//! The decision for one set-up request: endpoint, checks, token, route,
//! session token, answer.

use std::borrow::Cow;

use base64::Engine as _;
use livestack_routing::RouteReason;
use livestack_tokens::{
    Access, MintRequest, TOKEN_PARAM, TokenKind, VerifyOptions, is_valid_stream_name,
};

use crate::{Context, MAX_OFFER_BYTES, NodeEndpoint, Refusal, Request, Response};

/// A signaling endpoint, named by the first path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/whip/NAME`: WebRTC-HTTP Ingestion Protocol, RFC 9725. Publish.
    Whip,
    /// `/whep/NAME`: WebRTC-HTTP Egress Protocol, draft-ietf-wish-whep.
    /// Play.
    Whep,
    /// `/wt/NAME`: WebTransport / Media over QUIC session set-up. Play, or
    /// publish with `?access=publish`.
    WebTransport,
    /// `/rooms/ROOM/publish/ID`: an SFU room participant's publication
    /// (WHIP-shaped). Publish, with a token for the room `ROOM`.
    RoomPublish,
    /// `/rooms/ROOM/subscribe/ID`: a subscription to participant `ID`
    /// (WHEP-shaped). Play, with a token for the room.
    RoomSubscribe,
}

/// The room, kind and participant of a `/rooms/ROOM/{publish,subscribe}/ID`
/// path; `None` for another path.
///
/// # Errors
/// [`Refusal::InvalidName`] for a room or participant name that is not a
/// valid stream name or has a `.` (the origin names the participant's
/// broadcast `ROOM.ID`), or another shape under `/rooms/`.
pub fn parse_room(path: &str) -> Option<Result<(Endpoint, &str, &str), Refusal>> {
    let rest = path.strip_prefix("/rooms/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut parts = rest.split('/');
    let parsed = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(room), Some(kind), Some(id), None) => {
            let endpoint = match kind {
                "publish" => Some(Endpoint::RoomPublish),
                "subscribe" => Some(Endpoint::RoomSubscribe),
                _ => None,
            };
            let valid = |n: &str| is_valid_stream_name(n) && !n.contains('.');
            endpoint
                .filter(|_| valid(room) && valid(id))
                .map(|e| (e, room, id))
        }
        _ => None,
    };
    Some(parsed.ok_or(Refusal::InvalidName))
}

impl Endpoint {
    /// The endpoint and stream name of a request path (no query), e.g.
    /// `/whip/cam1` → (`Whip`, `cam1`). A trailing `/` is tolerated.
    ///
    /// # Errors
    ///
    /// [`Refusal::NotFound`] for another path, [`Refusal::InvalidName`] for
    /// a name that [`is_valid_stream_name`] refuses (including nested paths
    /// `/whip/a/b`).
    pub fn parse(path: &str) -> Result<(Endpoint, &str), Refusal> {
        let (endpoint, rest) = if let Some(rest) = path.strip_prefix("/whip/") {
            (Endpoint::Whip, rest)
        } else if let Some(rest) = path.strip_prefix("/whep/") {
            (Endpoint::Whep, rest)
        } else if let Some(rest) = path.strip_prefix("/wt/") {
            (Endpoint::WebTransport, rest)
        } else {
            return Err(Refusal::NotFound);
        };
        let name = rest.strip_suffix('/').unwrap_or(rest);
        if is_valid_stream_name(name) {
            Ok((endpoint, name))
        } else {
            Err(Refusal::InvalidName)
        }
    }

    /// The path segment: `whip`, `whep` or `wt` (`publish` or `subscribe`
    /// under `/rooms/ROOM/`).
    pub fn segment(self) -> &'static str {
        match self {
            Endpoint::Whip => "whip",
            Endpoint::Whep => "whep",
            Endpoint::WebTransport => "wt",
            Endpoint::RoomPublish => "publish",
            Endpoint::RoomSubscribe => "subscribe",
        }
    }

    /// The methods the endpoint takes (`Allow`, RFC 9110 §10.2.1).
    pub fn allow(self) -> &'static str {
        match self {
            Endpoint::Whip | Endpoint::Whep | Endpoint::RoomPublish | Endpoint::RoomSubscribe => {
                "POST, OPTIONS"
            }
            Endpoint::WebTransport => "GET, POST, OPTIONS",
        }
    }
}

/// Answers one signaling request. Never fails and never panics on any
/// input: every refusal is an HTTP status (see [`Refusal`]).
pub fn handle(request: &Request, ctx: &Context<'_>) -> Response {
    decide(request, ctx).unwrap_or_else(|refusal| refusal.response())
}

fn decide(request: &Request, ctx: &Context<'_>) -> Result<Response, Refusal> {
    let (endpoint, name, participant) = match parse_room(request.path_only()) {
        Some(room) => {
            let (endpoint, room, id) = room?;
            (endpoint, room, Some(id))
        }
        None => {
            let (endpoint, name) = Endpoint::parse(request.path_only())?;
            (endpoint, name, None)
        }
    };
    let method = request.method.as_str();
    if method.eq_ignore_ascii_case("OPTIONS") {
        let mut answer = Response::preflight(endpoint.allow());
        if endpoint != Endpoint::WebTransport {
            // RFC 9725 §4.2 / draft-ietf-wish-whep: the offer media type.
            answer = answer.with("accept-post", "application/sdp");
        }
        return Ok(answer);
    }

    let (access, token) = match endpoint {
        Endpoint::Whip | Endpoint::Whep | Endpoint::RoomPublish | Endpoint::RoomSubscribe => {
            if !method.eq_ignore_ascii_case("POST") {
                return Err(Refusal::MethodNotAllowed {
                    allow: endpoint.allow(),
                });
            }
            if request.media_type().as_deref() != Some("application/sdp") {
                return Err(Refusal::UnsupportedMediaType);
            }
            if request.body_len == 0 {
                return Err(Refusal::EmptyOffer);
            }
            if request.body_len > MAX_OFFER_BYTES {
                return Err(Refusal::OfferTooLarge);
            }
            let access = if matches!(endpoint, Endpoint::Whip | Endpoint::RoomPublish) {
                Access::Publish
            } else {
                Access::Play
            };
            (access, request.bearer().map(Cow::Borrowed))
        }
        Endpoint::WebTransport => {
            if !method.eq_ignore_ascii_case("GET") && !method.eq_ignore_ascii_case("POST") {
                return Err(Refusal::MethodNotAllowed {
                    allow: endpoint.allow(),
                });
            }
            let access = match request.query_param("access").as_deref() {
                None | Some("play") => Access::Play,
                Some("publish") => Access::Publish,
                Some(_) => return Err(Refusal::InvalidAccess),
            };
            (access, request.bearer_or_query_token())
        }
    };

    let token = token.ok_or(Refusal::MissingToken)?;
    verify(&token, name, access, ctx)?;
    let node = match participant {
        Some(_) => route_room(name, ctx)?,
        None => route(name, access, ctx)?,
    };
    let session = mint(name, access, &node.node_id, ctx)?;

    // The same path on the node, the session token in its query.
    let path = match participant {
        Some(id) => format!("rooms/{name}/{}/{id}", endpoint.segment()),
        None => format!("{}/{name}", endpoint.segment()),
    };
    Ok(match endpoint {
        Endpoint::WebTransport => webtransport_answer(node, &session),
        Endpoint::Whip | Endpoint::Whep | Endpoint::RoomPublish | Endpoint::RoomSubscribe => {
            let location = format!(
                "{}/{path}?{TOKEN_PARAM}={session}",
                node.base_url.trim_end_matches('/'),
            );
            Response::new(307).with("location", location)
        }
    })
}

/// Checks the presented token for stream `name` and `access`.
fn verify(token: &str, name: &str, access: Access, ctx: &Context<'_>) -> Result<(), Refusal> {
    let mut options = VerifyOptions::new(ctx.now_unix_s);
    options.skew = ctx.skew_s;
    options.issuer = ctx.issuer.map(str::to_owned);
    options.audience = ctx.audience.map(str::to_owned);
    options.stream = Some(name.to_owned());
    options.access = Some(access);
    livestack_tokens::verify(token, ctx.keys, &options)
        .map(|_| ())
        .map_err(Refusal::InvalidToken)
}

/// The node for the session and its URLs.
///
/// Publishers go to the nearest healthy region's rendezvous-hash node for
/// the stream (bounded load; `livestack_routing::pick` without placement).
/// Viewers go where the stream is placed (its node, or when that one is
/// full another node of its region, which pulls from it); a stream without
/// placement is not live yet (409), and one whose node and region cannot
/// take the viewer is unavailable (503): routing would fall back to any
/// region, but no other node has the stream.
fn route<'c>(name: &str, access: Access, ctx: &Context<'c>) -> Result<&'c NodeEndpoint, Refusal> {
    let placement = match access {
        Access::Publish => None,
        Access::Play => Some((ctx.placement)(name).ok_or(Refusal::NotLive)?),
    };
    let route = livestack_routing::pick(name, ctx.geo, ctx.nodes, placement.as_deref(), ctx.policy)
        .map_err(Refusal::NoRoute)?;
    if placement.is_some()
        && !matches!(
            route.reason,
            RouteReason::Placement | RouteReason::PlacementRegion { .. }
        )
    {
        return Err(Refusal::PlacementUnavailable);
    }
    ctx.endpoints
        .iter()
        .find(|e| e.node_id == route.node_id)
        .ok_or(Refusal::NoEndpoint)
}

/// The node an SFU room lives on: rendezvous hashing of the room's name
/// over every healthy node with bounded load, whatever the client's
/// location (a room is held by one node, so every participant, wherever
/// it is, must reach the same one).
fn route_room<'c>(room: &str, ctx: &Context<'c>) -> Result<&'c NodeEndpoint, Refusal> {
    let anywhere = livestack_routing::ClientGeo::default();
    let route = livestack_routing::pick(room, &anywhere, ctx.nodes, None, ctx.policy)
        .map_err(Refusal::NoRoute)?;
    ctx.endpoints
        .iter()
        .find(|e| e.node_id == route.node_id)
        .ok_or(Refusal::NoEndpoint)
}

/// Mints the session token: stream `name`, `access`, audience `node_id`,
/// token id [`Context::session_id`], valid [`SessionConfig::ttl_s`]
/// seconds from now.
///
/// [`SessionConfig::ttl_s`]: crate::SessionConfig::ttl_s
fn mint(name: &str, access: Access, node_id: &str, ctx: &Context<'_>) -> Result<String, Refusal> {
    let config = ctx.session;
    let mut request = MintRequest::for_stream(
        name,
        access,
        ctx.now_unix_s,
        config.ttl_s,
        ctx.session_id.as_bytes(),
    )
    .map_err(Refusal::MintFailed)?;
    request.alg = Some(config.alg);
    request.claims.aud = vec![node_id.to_owned()];
    request.claims.iss = config.issuer.clone();
    match config.kind {
        TokenKind::Cat => livestack_tokens::mint_cat(&request, ctx.keys),
        TokenKind::Jwt => livestack_tokens::mint_jwt(&request.without_cat_claims(), ctx.keys),
    }
    .map_err(Refusal::MintFailed)
}

/// The 200 JSON answer of a WebTransport set-up.
fn webtransport_answer(node: &NodeEndpoint, session: &str) -> Response {
    let url = node
        .webtransport_url
        .clone()
        .unwrap_or_else(|| format!("{}/moq", node.base_url.trim_end_matches('/')));
    let mut body = serde_json::json!({ "url": url, "token": session });
    if !node.certificate_sha256.is_empty() {
        body["certificateHashes"] = node
            .certificate_sha256
            .iter()
            .map(|hash| {
                serde_json::json!({
                    "algorithm": "sha-256",
                    "value": base64::engine::general_purpose::STANDARD.encode(hash),
                })
            })
            .collect();
    }
    let mut answer = Response::new(200).with("content-type", "application/json");
    answer.body = body.to_string().into_bytes();
    answer
}
