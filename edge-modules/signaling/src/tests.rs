//! One test per branch of [`handle`](crate::handle), with tokens minted by
//! `livestack-tokens` and a small registry view.

use std::time::Duration;

use livestack_routing::{ClientGeo, GeoPoint, OriginNode, Policy};
use livestack_tokens::{
    Access, Alg, Key, KeySet, MintRequest, TokenKind, VerifyOptions, mint_cat, mint_jwt, verify,
};

use crate::{
    Context, MAX_OFFER_BYTES, NodeEndpoint, REASON_HEADER, Request, Response, SessionConfig, handle,
};

const KEYS: &str = "k1:HS256:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
const NOW: u64 = 1_750_000_000;
const SESSION_ID: &str = "0123456789abcdef0123456789abcdef";

fn node(id: &str, region: &str, healthy: bool) -> OriginNode {
    let location = if region == "eu-west" {
        GeoPoint::new(53.3, -6.3)
    } else {
        GeoPoint::new(38.9, -77.4)
    };
    OriginNode {
        id: id.into(),
        region: region.into(),
        location,
        healthy,
        load: 0.1,
        heartbeat_age: Duration::from_secs(1),
    }
}

fn endpoint(id: &str) -> NodeEndpoint {
    NodeEndpoint {
        node_id: id.into(),
        base_url: format!("https://{id}.example:8443"),
        webtransport_url: None,
        certificate_sha256: Vec::new(),
    }
}

/// Owns what a [`Context`] borrows.
struct Fixture {
    keys: KeySet,
    nodes: Vec<OriginNode>,
    endpoints: Vec<NodeEndpoint>,
    placed: Option<&'static str>,
    geo: ClientGeo<'static>,
    policy: Policy<'static>,
    session: SessionConfig,
}

impl Fixture {
    fn new() -> Self {
        Self {
            keys: KeySet::parse(KEYS).expect("keys"),
            nodes: vec![node("o1", "eu-west", true)],
            endpoints: vec![endpoint("o1"), endpoint("o2"), endpoint("o3")],
            placed: None,
            geo: ClientGeo::default(),
            policy: Policy::default(),
            session: SessionConfig::default(),
        }
    }

    fn run(&self, request: &Request) -> Response {
        let placed = self.placed;
        let placement = move |stream: &str| {
            (stream == "cam1")
                .then_some(placed)
                .flatten()
                .map(str::to_owned)
        };
        let ctx = Context {
            keys: &self.keys,
            issuer: None,
            audience: None,
            skew_s: 30,
            nodes: &self.nodes,
            endpoints: &self.endpoints,
            placement: &placement,
            geo: &self.geo,
            policy: &self.policy,
            now_unix_s: NOW,
            session_id: SESSION_ID,
            session: &self.session,
        };
        handle(request, &ctx)
    }

    fn token(&self, stream: &str, access: Access) -> String {
        jwt(
            MintRequest::for_stream(stream, access, NOW - 10, 300, *b"user-token")
                .expect("mint request"),
            &self.keys,
        )
    }
}

/// An HS256 JWT for `request`.
fn jwt(request: MintRequest, keys: &KeySet) -> String {
    let mut request = request.without_cat_claims();
    request.alg = Some(Alg::Hs256);
    mint_jwt(&request, keys).expect("mint")
}

fn offer(path: &str, token: Option<&str>) -> Request {
    let mut headers = vec![("Content-Type".to_owned(), "application/sdp".to_owned())];
    if let Some(token) = token {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    Request {
        method: "POST".into(),
        path: path.into(),
        headers,
        body_len: 1500,
    }
}

fn reason(response: &Response) -> &str {
    // Test helper: a missing header reads as empty, which the assertions catch.
    response.header(REASON_HEADER).unwrap_or_default()
}

/// The `token` query parameter of a `Location` URL, after checking the
/// part before it.
fn session_of<'a>(location: &'a str, expected_prefix: &str) -> &'a str {
    location
        .strip_prefix(expected_prefix)
        .unwrap_or_else(|| panic!("Location {location} does not start with {expected_prefix}"))
}

fn verify_session(keys: &KeySet, token: &str, stream: &str, access: Access, aud: &str) {
    let mut opts = VerifyOptions::new(NOW + 1);
    opts.stream = Some(stream.into());
    opts.access = Some(access);
    opts.audience = Some(aud.into());
    let verified = verify(token, keys, &opts).expect("session token verifies");
    assert_eq!(verified.claims.exp, Some(NOW + crate::SESSION_TOKEN_TTL_S));
    assert_eq!(verified.claims.id.as_deref(), Some(SESSION_ID.as_bytes()));
    // Expired after its lifetime (plus skew).
    let mut late = opts.clone();
    late.now = NOW + crate::SESSION_TOKEN_TTL_S + 31;
    assert!(
        verify(token, keys, &late).is_err(),
        "session token outlives its TTL"
    );
}

#[test]
fn whip_redirects_the_publisher_with_a_fresh_session_token() {
    let f = Fixture::new();
    let token = f.token("cam1", Access::Publish);
    let r = f.run(&offer("/whip/cam1", Some(&token)));
    assert_eq!(r.status, 307, "{r:?}");
    let location = r.header("location").expect("location");
    let session = session_of(location, "https://o1.example:8443/whip/cam1?token=");
    assert_ne!(session, token, "a fresh token, not the presented one");
    verify_session(&f.keys, session, "cam1", Access::Publish, "o1");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn rooms_go_to_one_node_whatever_the_client_location() {
    let mut f = Fixture::new();
    f.nodes = vec![
        node("o1", "eu-west", true),
        node("o2", "us-east", true),
        node("o3", "us-east", true),
    ];
    let publish = f.token("standup", Access::Publish);
    let play = f.token("standup", Access::Play);
    let mut nodes = Vec::new();
    for geo in [
        ClientGeo::default(),
        ClientGeo {
            location: Some(GeoPoint::new(53.3, -6.3)),
            ..ClientGeo::default()
        },
        ClientGeo {
            location: Some(GeoPoint::new(38.9, -77.4)),
            ..ClientGeo::default()
        },
    ] {
        f.geo = geo;
        for (path, token, access) in [
            ("/rooms/standup/publish/alice", &publish, Access::Publish),
            ("/rooms/standup/subscribe/bob", &play, Access::Play),
        ] {
            let r = f.run(&offer(path, Some(token)));
            assert_eq!(r.status, 307, "{path}: {r:?}");
            let location = r.header("location").expect("location");
            let (node, rest) = location
                .strip_prefix("https://")
                .and_then(|l| l.split_once(".example:8443"))
                .expect("a node URL");
            let session = session_of(rest, &format!("{path}?token="));
            verify_session(&f.keys, session, "standup", access, node);
            nodes.push(node.to_owned());
        }
    }
    nodes.dedup();
    assert_eq!(nodes.len(), 1, "one node for the whole room: {nodes:?}");

    // A play token does not publish; bad shapes and names are refused.
    assert_eq!(
        f.run(&offer("/rooms/standup/publish/alice", Some(&play)))
            .status,
        403
    );
    for path in [
        "/rooms/standup/talk/alice",
        "/rooms/standup/publish",
        "/rooms/a.b/publish/alice",
        "/rooms/standup/publish/al.ice",
        "/rooms/standup/publish/alice/extra",
    ] {
        assert_eq!(f.run(&offer(path, Some(&publish))).status, 400, "{path}");
    }
}

#[test]
fn whip_accepts_a_cat_as_bearer_token() {
    let f = Fixture::new();
    let cat = mint_cat(
        &MintRequest::for_stream("cam1", Access::Publish, NOW, 300, *b"cat-1").expect("req"),
        &f.keys,
    )
    .expect("mint");
    let r = f.run(&offer("/whip/cam1", Some(&cat)));
    assert_eq!(r.status, 307, "{r:?}");
}

#[test]
fn whep_goes_to_the_node_holding_the_stream() {
    let mut f = Fixture::new();
    f.nodes = vec![node("o1", "eu-west", true), node("o2", "us-east", true)];
    f.placed = Some("o2");
    let token = f.token("cam1", Access::Play);
    let r = f.run(&offer("/whep/cam1", Some(&token)));
    assert_eq!(r.status, 307, "{r:?}");
    let session = session_of(
        r.header("location").expect("location"),
        "https://o2.example:8443/whep/cam1?token=",
    );
    verify_session(&f.keys, session, "cam1", Access::Play, "o2");
}

#[test]
fn whip_goes_to_the_nearest_healthy_region() {
    let mut f = Fixture::new();
    f.nodes = vec![
        node("o2", "us-east", true),
        node("o1", "eu-west", true),
        node("o3", "eu-west", true),
    ];
    f.geo = ClientGeo {
        location: Some(GeoPoint::new(52.5, 13.4)),
        country: None,
    };
    let token = f.token("cam1", Access::Publish);
    let r = f.run(&offer("/whip/cam1", Some(&token)));
    assert_eq!(r.status, 307, "{r:?}");
    let location = r.header("location").expect("location");
    assert!(
        location.starts_with("https://o1.example") || location.starts_with("https://o3.example"),
        "a Berlin publisher goes to eu-west: {location}"
    );
    // The same stream always lands on the same node (rendezvous hashing).
    let again = f.run(&offer("/whip/cam1", Some(&token)));
    let again = again.header("location").expect("location");
    assert_eq!(
        location.split("?token=").next(),
        again.split("?token=").next()
    );

    // Nearest region dead: the next one.
    f.nodes[1].healthy = false;
    f.nodes[2].healthy = false;
    let r = f.run(&offer("/whip/cam1", Some(&token)));
    assert_eq!(r.status, 307);
    assert!(
        r.header("location")
            .is_some_and(|l| l.starts_with("https://o2.example")),
        "{r:?}"
    );
}

#[test]
fn whep_viewers_of_a_full_placement_node_go_to_its_region() {
    let mut f = Fixture::new();
    f.nodes = vec![
        node("o1", "eu-west", true),
        node("o2", "us-east", true),
        node("o3", "eu-west", true),
    ];
    f.nodes[0].load = 0.95;
    f.placed = Some("o1");
    let token = f.token("cam1", Access::Play);
    let r = f.run(&offer("/whep/cam1", Some(&token)));
    assert_eq!(r.status, 307, "{r:?}");
    assert!(
        r.header("location")
            .is_some_and(|l| l.starts_with("https://o3.example:8443/whep/cam1?token=")),
        "{r:?}"
    );
}

#[test]
fn a_node_without_endpoint_is_503() {
    let mut f = Fixture::new();
    f.endpoints.clear();
    let token = f.token("cam1", Access::Publish);
    let r = f.run(&offer("/whip/cam1", Some(&token)));
    assert_eq!((r.status, reason(&r)), (503, "no-endpoint"));
}

#[test]
fn whep_for_a_stream_that_is_not_live_is_a_conflict_with_retry_after() {
    let f = Fixture::new();
    let token = f.token("cam1", Access::Play);
    let r = f.run(&offer("/whep/cam1", Some(&token)));
    assert_eq!(r.status, 409);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(reason(&r), "not-live");
}

#[test]
fn no_healthy_node_is_503_with_retry_after() {
    let mut f = Fixture::new();
    f.nodes = vec![node("o1", "eu-west", false)];
    let token = f.token("cam1", Access::Publish);
    let r = f.run(&offer("/whip/cam1", Some(&token)));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(reason(&r), "no-healthy-node");

    // Placed on a node that went away, while another region is healthy:
    // no other node has the stream.
    f.nodes.push(node("o2", "us-east", true));
    f.placed = Some("o1");
    let token = f.token("cam1", Access::Play);
    let r = f.run(&offer("/whep/cam1", Some(&token)));
    assert_eq!(r.status, 503);
    assert_eq!(reason(&r), "placement-unavailable");

    // A stale heartbeat counts as dead, whatever the flag says.
    f.nodes = vec![node("o1", "eu-west", true)];
    f.nodes[0].heartbeat_age = Duration::from_secs(60);
    let r = f.run(&offer("/whep/cam1", Some(&token)));
    assert_eq!(r.status, 503);

    // An empty registry.
    f.nodes.clear();
    let r = f.run(&offer("/whep/cam1", Some(&token)));
    assert_eq!(r.status, 503);
}

#[test]
fn full_nodes_are_503() {
    let mut f = Fixture::new();
    f.nodes[0].load = 0.9;
    let token = f.token("cam1", Access::Publish);
    let r = f.run(&offer("/whip/cam1", Some(&token)));
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(reason(&r), "no-capacity");
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn missing_token_is_401_with_a_bare_bearer_challenge() {
    let f = Fixture::new();
    let r = f.run(&offer("/whip/cam1", None));
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"livestack\"")
    );
    assert_eq!(reason(&r), "missing-token");

    let mut basic = offer("/whip/cam1", None);
    basic
        .headers
        .push(("authorization".into(), "Basic dTpw".into()));
    assert_eq!(f.run(&basic).status, 401);
}

#[test]
fn expired_and_tampered_tokens_are_401_invalid_token() {
    let f = Fixture::new();
    let expired = jwt(
        MintRequest::for_stream("cam1", Access::Publish, NOW - 1000, 60, *b"old").expect("req"),
        &f.keys,
    );
    let r = f.run(&offer("/whip/cam1", Some(&expired)));
    assert_eq!(r.status, 401);
    assert_eq!(reason(&r), "expired");
    let challenge = r.header("www-authenticate").expect("challenge");
    assert!(
        challenge.starts_with(
            "Bearer realm=\"livestack\", error=\"invalid_token\", error_description=\""
        ),
        "{challenge}"
    );

    let mut tampered = f.token("cam1", Access::Publish).into_bytes();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let r = f.run(&offer("/whip/cam1", Some(&tampered)));
    assert_eq!(r.status, 401);
    assert_eq!(reason(&r), "bad-signature");

    let r = f.run(&offer("/whip/cam1", Some("garbage")));
    assert_eq!(r.status, 401);
    assert_eq!(reason(&r), "malformed-token");
}

#[test]
fn a_token_for_another_stream_or_access_is_403_insufficient_scope() {
    let f = Fixture::new();
    let other = f.token("cam2", Access::Publish);
    let r = f.run(&offer("/whip/cam1", Some(&other)));
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(reason(&r), "wrong-resource");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|c| c.contains("error=\"insufficient_scope\"")),
        "{r:?}"
    );

    // A viewer's token does not publish.
    let play = f.token("cam1", Access::Play);
    let r = f.run(&offer("/whip/cam1", Some(&play)));
    assert_eq!(r.status, 403);
}

#[test]
fn offers_are_checked_for_media_type_and_size_only() {
    let f = Fixture::new();
    let token = f.token("cam1", Access::Publish);

    let mut json = offer("/whip/cam1", Some(&token));
    json.headers[0].1 = "application/json".into();
    let r = f.run(&json);
    assert_eq!(r.status, 415);
    assert_eq!(r.header("accept-post"), Some("application/sdp"));

    let mut no_type = offer("/whip/cam1", Some(&token));
    no_type.headers.remove(0);
    assert_eq!(f.run(&no_type).status, 415);

    let mut with_params = offer("/whip/cam1", Some(&token));
    with_params.headers[0].1 = "Application/SDP; charset=utf-8".into();
    assert_eq!(f.run(&with_params).status, 307);

    let mut empty = offer("/whip/cam1", Some(&token));
    empty.body_len = 0;
    let r = f.run(&empty);
    assert_eq!((r.status, reason(&r)), (400, "empty-offer"));

    let mut huge = offer("/whip/cam1", Some(&token));
    huge.body_len = MAX_OFFER_BYTES + 1;
    assert_eq!(f.run(&huge).status, 413);
    huge.body_len = MAX_OFFER_BYTES;
    assert_eq!(f.run(&huge).status, 307);
}

#[test]
fn options_is_a_cors_preflight_with_accept_post() {
    let f = Fixture::new();
    for path in ["/whip/cam1", "/whep/cam1"] {
        let r = f.run(&Request {
            method: "OPTIONS".into(),
            path: path.into(),
            ..Request::default()
        });
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("accept-post"), Some("application/sdp"));
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("POST, OPTIONS")
        );
        assert!(
            r.header("access-control-allow-headers")
                .is_some_and(|h| h.contains("authorization"))
        );
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert!(r.body.is_empty());
    }
    let r = f.run(&Request {
        method: "OPTIONS".into(),
        path: "/wt/cam1".into(),
        ..Request::default()
    });
    assert_eq!(r.status, 204);
    assert_eq!(r.header("accept-post"), None);
}

#[test]
fn other_methods_are_405_with_allow() {
    let f = Fixture::new();
    for (method, path, allow) in [
        ("GET", "/whip/cam1", "POST, OPTIONS"),
        ("DELETE", "/whep/cam1", "POST, OPTIONS"),
        ("PATCH", "/whip/cam1", "POST, OPTIONS"),
        ("PUT", "/wt/cam1", "GET, POST, OPTIONS"),
    ] {
        let r = f.run(&Request {
            method: method.into(),
            path: path.into(),
            ..Request::default()
        });
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow));
    }
}

#[test]
fn paths_and_names() {
    let f = Fixture::new();
    for (path, status) in [
        ("/", 404),
        ("/live/cam1/index.m3u8", 404),
        ("/whipx/cam1", 404),
        ("/whip/", 400),
        ("/whip/a/b", 400),
        ("/whip/..", 400),
        ("/whip/c%20m", 400),
        (&format!("/whip/{}", "a".repeat(129)), 400),
    ] {
        let r = f.run(&offer(path, None));
        assert_eq!(r.status, status, "{path}");
    }
    // A trailing slash and a query are fine (then 401: no token).
    assert_eq!(f.run(&offer("/whip/cam1/", None)).status, 401);
    assert_eq!(f.run(&offer("/whip/cam1?x=1", None)).status, 401);
}

#[test]
fn webtransport_answers_json_with_url_token_and_certificate_hashes() {
    let mut f = Fixture::new();
    f.placed = Some("o1");
    let token = f.token("cam1", Access::Play);

    // GET with the token in the query, no WebTransport entry: `<base>/moq`.
    let r = f.run(&Request {
        method: "GET".into(),
        path: format!("/wt/cam1?token={token}"),
        ..Request::default()
    });
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(body["url"], "https://o1.example:8443/moq");
    assert!(body.get("certificateHashes").is_none(), "{body}");
    let session = body["token"].as_str().expect("token");
    verify_session(&f.keys, session, "cam1", Access::Play, "o1");

    // POST with a bearer token, a node with a self-signed certificate.
    f.endpoints[0].webtransport_url = Some("https://o1.example:4443/moq".into());
    f.endpoints[0].certificate_sha256 = vec![[0xab; 32]];
    let r = f.run(&Request {
        method: "POST".into(),
        path: "/wt/cam1".into(),
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        body_len: 0,
    });
    assert_eq!(r.status, 200, "{r:?}");
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(body["url"], "https://o1.example:4443/moq");
    assert_eq!(
        body["certificateHashes"],
        serde_json::json!([{
            "algorithm": "sha-256",
            "value": "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="
        }])
    );
}

#[test]
fn webtransport_publish_needs_a_publish_token_and_no_placement() {
    let f = Fixture::new();
    let publish = f.token("cam1", Access::Publish);
    let r = f.run(&Request {
        method: "GET".into(),
        path: format!("/wt/cam1?access=publish&token={publish}"),
        ..Request::default()
    });
    assert_eq!(r.status, 200, "{r:?}");

    // Play (the default) for a stream nobody publishes.
    let play = f.token("cam1", Access::Play);
    let r = f.run(&Request {
        method: "GET".into(),
        path: format!("/wt/cam1?token={play}"),
        ..Request::default()
    });
    assert_eq!(r.status, 409);

    let r = f.run(&Request {
        method: "GET".into(),
        path: format!("/wt/cam1?access=admin&token={play}"),
        ..Request::default()
    });
    assert_eq!((r.status, reason(&r)), (400, "invalid-access"));

    let r = f.run(&Request {
        method: "GET".into(),
        path: "/wt/cam1".into(),
        ..Request::default()
    });
    assert_eq!(r.status, 401);
}

#[test]
fn session_tokens_follow_the_session_config() {
    let mut f = Fixture::new();
    f.session = SessionConfig {
        ttl_s: 20,
        kind: TokenKind::Cat,
        alg: Alg::Hs256,
        issuer: Some("edge-1".into()),
    };
    let token = f.token("cam1", Access::Publish);
    let r = f.run(&offer("/whip/cam1", Some(&token)));
    assert_eq!(r.status, 307);
    let session = session_of(
        r.header("location").expect("location"),
        "https://o1.example:8443/whip/cam1?token=",
    );
    assert!(!session.contains('.'), "a CAT has no dots: {session}");
    let mut opts = VerifyOptions::new(NOW);
    opts.audience = Some("o1".into());
    opts.issuer = Some("edge-1".into());
    opts.stream = Some("cam1".into());
    let verified = verify(session, &f.keys, &opts).expect("verifies");
    assert_eq!(verified.kind, TokenKind::Cat);
    assert_eq!(verified.claims.exp, Some(NOW + 20));
}

#[test]
fn no_signing_key_is_500_mint_failed() {
    // Verification only: the ES256 public key of a publisher-token issuer.
    let private = Key::es256_private("e1", &[7u8; 32]).expect("key");
    let issuer = {
        let mut set = KeySet::new();
        set.insert(private.clone()).expect("insert");
        set
    };
    let public = private.public_config_entry().expect("public entry");
    let mut f = Fixture::new();
    f.keys = KeySet::parse(&public).expect("public set");
    let mut req = MintRequest::for_stream("cam1", Access::Publish, NOW, 300, *b"u")
        .expect("req")
        .without_cat_claims();
    req.alg = Some(Alg::Es256);
    let token = mint_jwt(&req, &issuer).expect("mint");
    let r = f.run(&offer("/whip/cam1", Some(&token)));
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(reason(&r), "mint-failed");
}
