//! Token verification and minting through the tokens component: the same
//! cases as `livestack-tokens`' unit tests (valid, tampered, expired, wrong
//! stream, unknown key, replay), with tokens minted natively and by the
//! component, checked against each other.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use livestack_edge::{
    Access, ComponentLimits, Components, HostImports, Keys, MintRequest, ReplayOutcome,
    ResourceMismatch, TokenError, TokenFormat,
};
use livestack_tokens as native;

const NOW: u64 = 1_750_000_000;
const URL: &str = "https://edge.example/live/cam1/index.m3u8";

fn native_cat(stream: &str, id: &[u8], ttl: u64) -> String {
    let req = native::MintRequest::for_stream(stream, native::Access::Play, NOW, ttl, id.to_vec())
        .unwrap();
    native::mint_cat(&req, &common::native_keys()).unwrap()
}

fn mint_request(format: TokenFormat, stream: &str) -> MintRequest {
    MintRequest {
        format,
        stream: stream.to_owned(),
        access: Access::Play,
        now_unix_s: NOW,
        ttl_s: 300,
        id: None,
        kid: None,
        alg: None,
        iss: None,
        sub: Some("viewer-7".into()),
        aud: Vec::new(),
    }
}

#[test]
fn valid_cat_verifies_with_its_claims() {
    let token = native_cat("cam1", b"t-valid", 300);
    let verified = common::shared()
        .verify_token(&token, URL, NOW + 10)
        .unwrap()
        .unwrap();
    assert_eq!(verified.format, TokenFormat::Cat);
    assert_eq!(verified.kid, "k1");
    assert_eq!(verified.alg, "HS256");
    assert_eq!(verified.claims.stream.as_deref(), Some("cam1"));
    assert_eq!(verified.claims.access, Some(Access::Play));
    assert_eq!(verified.claims.exp, Some(NOW + 300));
    assert_eq!(verified.claims.id.as_deref(), Some(&b"t-valid"[..]));
    assert_eq!(verified.replay, ReplayOutcome::NotTracked);
    assert_eq!(verified.renewal, None);
}

#[test]
fn tampered_cat_is_a_bad_signature() {
    let token = native_cat("cam1", b"t-tamper", 300);
    // Flip one bit of the last MAC byte (base64url: change the last char).
    let mut chars: Vec<char> = token.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    assert_eq!(
        common::shared().verify_token(&tampered, URL, NOW).unwrap(),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn expired_cat_is_refused() {
    let token = native_cat("cam1", b"t-exp", 60);
    // Past exp plus the default 30 s skew.
    assert_eq!(
        common::shared()
            .verify_token(&token, URL, NOW + 60 + 31)
            .unwrap(),
        Err(TokenError::Expired)
    );
    // Within the skew it still verifies.
    assert!(
        common::shared()
            .verify_token(&token, URL, NOW + 60 + 29)
            .unwrap()
            .is_ok()
    );
}

#[test]
fn token_for_another_stream_is_refused() {
    let token = native_cat("cam2", b"t-other", 300);
    let got = common::shared().verify_token(&token, URL, NOW).unwrap();
    assert!(
        matches!(
            got,
            Err(TokenError::WrongResource(
                ResourceMismatch::Stream(_) | ResourceMismatch::Uri(_)
            ))
        ),
        "{got:?}"
    );
}

#[test]
fn unknown_key_and_garbage_are_refused() {
    let other =
        native::KeySet::parse("k9:HS256:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA").unwrap();
    let req =
        native::MintRequest::for_stream("cam1", native::Access::Play, NOW, 300, *b"x").unwrap();
    let token = native::mint_cat(&req, &other).unwrap();
    assert_eq!(
        common::shared().verify_token(&token, URL, NOW).unwrap(),
        Err(TokenError::UnknownKey("k9".into()))
    );
    for garbage in ["", "a.b", "!!!!", "a.b.c", &"A".repeat(10_000)] {
        let got = common::shared().verify_token(garbage, URL, NOW).unwrap();
        assert!(got.is_err(), "{garbage:?} verified");
    }
}

#[test]
fn single_use_token_is_refused_the_second_time() {
    let mut req =
        native::MintRequest::for_stream("cam1", native::Access::Play, NOW, 300, *b"t-once")
            .unwrap();
    req.claims.catreplay = Some(native::ReplayPolicy::Prohibited);
    let token = native::mint_cat(&req, &common::native_keys()).unwrap();
    // A private `Components` so the replay record does not leak into other
    // tests' shared store.
    let components = Components::load(None, ComponentLimits::default(), common::imports()).unwrap();
    let first = components.verify_token(&token, URL, NOW).unwrap().unwrap();
    assert_eq!(first.replay, ReplayOutcome::FirstUse);
    assert_eq!(
        components.verify_token(&token, URL, NOW + 1).unwrap(),
        Err(TokenError::Replayed)
    );
}

#[test]
fn component_minted_tokens_verify_natively_and_through_the_component() {
    let components = common::shared();
    for format in [TokenFormat::Cat, TokenFormat::Jwt] {
        let token = components
            .mint_token(&mint_request(format, "cam1"))
            .unwrap()
            .unwrap();
        let mut opts = native::VerifyOptions::new(NOW + 5);
        opts.url = Some(native::RequestUrl::parse(URL).unwrap());
        let native_verified = native::verify(&token, &common::native_keys(), &opts).unwrap();
        assert_eq!(native_verified.claims.stream.as_deref(), Some("cam1"));
        assert_eq!(native_verified.claims.sub.as_deref(), Some("viewer-7"));
        assert_eq!(native_verified.claims.id.as_ref().map(Vec::len), Some(32));
        let verified = components
            .verify_token(&token, URL, NOW + 5)
            .unwrap()
            .unwrap();
        assert_eq!(verified.format, format);
        assert_eq!(verified.claims.sub.as_deref(), Some("viewer-7"));
    }
    // Fresh random ids: two mints differ.
    let a = components
        .mint_token(&mint_request(TokenFormat::Cat, "cam1"))
        .unwrap();
    let b = components
        .mint_token(&mint_request(TokenFormat::Cat, "cam1"))
        .unwrap();
    assert_ne!(a, b);
}

#[test]
fn mint_refusals() {
    let components = common::shared();
    let bad_stream = mint_request(TokenFormat::Cat, "../etc");
    assert!(matches!(
        components.mint_token(&bad_stream).unwrap(),
        Err(TokenError::InvalidOptions(_))
    ));
    let zero_ttl = MintRequest {
        ttl_s: 0,
        ..mint_request(TokenFormat::Cat, "cam1")
    };
    assert!(matches!(
        components.mint_token(&zero_ttl).unwrap(),
        Err(TokenError::InvalidOptions(_))
    ));
    let es256 = MintRequest {
        alg: Some("ES256".into()),
        ..mint_request(TokenFormat::Jwt, "cam1")
    };
    assert!(matches!(
        components.mint_token(&es256).unwrap(),
        Err(TokenError::KeyError(_))
    ));
    let unknown_kid = MintRequest {
        kid: Some("nope".into()),
        ..mint_request(TokenFormat::Cat, "cam1")
    };
    assert_eq!(
        components.mint_token(&unknown_kid).unwrap(),
        Err(TokenError::UnknownKey("nope".into()))
    );
}

#[test]
fn config_issuer_and_audience_apply() {
    let imports = HostImports {
        config: HashMap::from([
            ("tokens.issuer".to_owned(), "edge-test".to_owned()),
            ("tokens.audience".to_owned(), "edge-a".to_owned()),
        ]),
        keys: Keys::parse(common::HS256_KEYS).unwrap(),
        registry: Arc::new(common::registry()),
    };
    let components = Components::load(None, ComponentLimits::default(), imports).unwrap();
    let token = components
        .mint_token(&mint_request(TokenFormat::Jwt, "cam1"))
        .unwrap()
        .unwrap();
    let verified = components.verify_token(&token, URL, NOW).unwrap().unwrap();
    assert_eq!(verified.claims.iss.as_deref(), Some("edge-test"));
    assert_eq!(verified.claims.aud, vec!["edge-a".to_owned()]);
    // A token without the issuer is refused by this edge.
    assert_eq!(
        components
            .verify_token(&native_cat("cam1", b"t-iss", 300), URL, NOW)
            .unwrap(),
        Err(TokenError::WrongIssuer)
    );
}

#[test]
fn renewal_window_yields_a_renewed_token() {
    let mut req =
        native::MintRequest::for_stream("cam1", native::Access::Play, NOW, 120, *b"t-renew")
            .unwrap();
    req.claims.catr = Some(native::Catr::automatic(600, 60));
    let token = native::mint_cat(&req, &common::native_keys()).unwrap();
    let components = common::shared();
    // Outside the window: no renewal.
    let early = components
        .verify_token(&token, URL, NOW + 10)
        .unwrap()
        .unwrap();
    assert_eq!(early.renewal, None);
    // In the last 60 s: a renewed CAT valid for 600 s from now.
    let late = components
        .verify_token(&token, URL, NOW + 100)
        .unwrap()
        .unwrap();
    let renewal = late.renewal.expect("renewal");
    assert_eq!(renewal.exp, NOW + 100 + 600);
    let renewed = components
        .verify_token(&renewal.token, URL, NOW + 200)
        .unwrap()
        .unwrap();
    assert_eq!(renewed.claims.exp, Some(NOW + 700));
    assert_ne!(renewed.claims.id.as_deref(), Some(&b"t-renew"[..]));
}
