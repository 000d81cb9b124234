//! WHIP / WHEP / WebTransport set-up through the signaling component:
//! redirects to the routed node with a fresh session token, and refusals.

mod common;

use livestack_edge::{ClientGeo, GeoPoint, SignalingRequest, SignalingResponse};
use livestack_tokens as native;

const NOW: u64 = 1_750_000_000;

fn user_token(stream: &str, access: native::Access) -> String {
    let mut req = native::MintRequest::for_stream(stream, access, NOW - 10, 300, *b"user").unwrap();
    req.alg = Some(native::Alg::Hs256);
    native::mint_jwt(&req.without_cat_claims(), &common::native_keys()).unwrap()
}

fn request(method: &str, path: &str, token: Option<&str>) -> SignalingRequest {
    let mut headers = vec![("content-type".to_owned(), "application/sdp".to_owned())];
    if let Some(token) = token {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    SignalingRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: b"v=0\r\n".repeat(100),
        client: ClientGeo {
            location: Some(GeoPoint {
                lat_deg: 52.52,
                lon_deg: 13.40,
            }),
            country: None,
        },
        now_unix_s: NOW,
    }
}

fn header<'a>(response: &'a SignalingResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The session token in a `Location` URL, verified natively for `node`.
fn session_claims(location: &str, stream: &str, node: &str) -> native::Claims {
    let token = location.split_once("?token=").expect("token in location").1;
    let mut opts = native::VerifyOptions::new(NOW);
    opts.audience = Some(node.to_owned());
    opts.stream = Some(stream.to_owned());
    native::verify(token, &common::native_keys(), &opts)
        .expect("session token verifies")
        .claims
}

#[test]
fn whip_publish_redirects_to_the_nearest_region_with_a_session_token() {
    let token = user_token("cam1", native::Access::Publish);
    let answer = common::shared()
        .signal(request("POST", "/whip/cam1", Some(&token)))
        .unwrap();
    assert_eq!(answer.status, 307, "{answer:?}");
    let location = header(&answer, "location").expect("location");
    assert!(location.starts_with("https://eu"), "{location}");
    assert!(location.contains("/whip/cam1?token="), "{location}");
    let node = location
        .trim_start_matches("https://")
        .split('.')
        .next()
        .unwrap();
    let claims = session_claims(location, "cam1", node);
    assert_eq!(claims.access, Some(native::Access::Publish));
    assert_eq!(claims.exp, Some(NOW + 60));
}

#[test]
fn whep_play_goes_to_the_placement_node() {
    let token = user_token("cam-placed", native::Access::Play);
    let answer = common::shared()
        .signal(request("POST", "/whep/cam-placed", Some(&token)))
        .unwrap();
    assert_eq!(answer.status, 307, "{answer:?}");
    let location = header(&answer, "location").unwrap();
    assert!(location.starts_with("https://us1.us-east.example:8443/whep/cam-placed?token="));
    session_claims(location, "cam-placed", "us1");
}

#[test]
fn refusals() {
    let components = common::shared();
    // No token: 401 with a Bearer challenge.
    let answer = components
        .signal(request("POST", "/whip/cam1", None))
        .unwrap();
    assert_eq!(answer.status, 401);
    assert!(
        header(&answer, "www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    // A play token cannot publish.
    let play = user_token("cam1", native::Access::Play);
    let answer = components
        .signal(request("POST", "/whip/cam1", Some(&play)))
        .unwrap();
    assert_eq!(answer.status, 403, "{answer:?}");
    // Not live: nobody publishes cam1.
    let answer = components
        .signal(request("POST", "/whep/cam1", Some(&play)))
        .unwrap();
    assert_eq!(answer.status, 409, "{answer:?}");
    // Unknown endpoint, wrong method.
    let answer = components
        .signal(request("POST", "/nope/cam1", Some(&play)))
        .unwrap();
    assert_eq!(answer.status, 404);
    let answer = components
        .signal(request("GET", "/whip/cam1", Some(&play)))
        .unwrap();
    assert_eq!(answer.status, 405);
    // CORS preflight.
    let answer = components
        .signal(request("OPTIONS", "/whip/cam1", None))
        .unwrap();
    assert_eq!(answer.status, 204);
    assert_eq!(header(&answer, "accept-post"), Some("application/sdp"));
}

#[test]
fn webtransport_answer_is_json() {
    let token = user_token("cam-placed", native::Access::Play);
    let mut req = request("GET", &format!("/wt/cam-placed?token={token}"), None);
    req.headers.clear();
    req.body.clear();
    let answer = common::shared().signal(req).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = String::from_utf8(answer.body).unwrap();
    assert!(
        body.contains("\"url\":\"https://us1.us-east.example:8443/moq\""),
        "{body}"
    );
    assert!(body.contains("\"token\":"), "{body}");
}
