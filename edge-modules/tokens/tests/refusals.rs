//! The refusal table: every way a token must fail, and the near misses that
//! must pass, for CAT and JWT.

use std::collections::HashSet;

use base64::Engine as _;
use livestack_tokens::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const NOW: u64 = 1_750_000_000;
const TTL: u64 = 300;

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// HS256 k1 (signer) and k2 (older, still verifying), ES256 e1, EdDSA d1.
fn keys() -> KeySet {
    KeySet::parse(&format!(
        "k1:HS256:{},k2:HS256:{},e1:ES256:private:{},d1:EdDSA:private:{}",
        b64(&[0x11; 32]),
        b64(&[0x22; 32]),
        b64(&[0x33; 32]),
        b64(&[0x44; 32]),
    ))
    .unwrap()
}

fn url(u: &str) -> Option<RequestUrl> {
    Some(RequestUrl::parse(u).unwrap())
}

fn opts_for(u: &str) -> VerifyOptions {
    let mut o = VerifyOptions::new(NOW + 1);
    o.url = url(u);
    o
}

fn cat_for(stream: &str) -> String {
    mint_cat(
        &MintRequest::for_stream(stream, Access::Play, NOW, TTL, *b"cat-id-1").unwrap(),
        &keys(),
    )
    .unwrap()
}

fn jwt_for(stream: &str, access: Access, alg: Alg) -> String {
    let mut req = MintRequest::for_stream(stream, access, NOW, TTL, *b"jwt-id-1")
        .unwrap()
        .without_cat_claims();
    req.alg = Some(alg);
    mint_jwt(&req, &keys()).unwrap()
}

fn session(stream: &str, access: Access) -> VerifyOptions {
    let mut o = VerifyOptions::new(NOW + 1);
    o.stream = Some(stream.to_owned());
    o.access = Some(access);
    o
}

const PLAYLIST: &str = "https://edge.example/live/cam1/index.m3u8";

#[test]
fn valid_tokens_pass() {
    let v = verify(&cat_for("cam1"), &keys(), &opts_for(PLAYLIST)).unwrap();
    assert_eq!(v.kind, TokenKind::Cat);
    assert_eq!(v.kid, "k1");
    assert_eq!(v.claims.stream.as_deref(), Some("cam1"));
    assert_eq!(v.claims.access, Some(Access::Play));
    assert_eq!(v.claims.id.as_deref(), Some(&b"cat-id-1"[..]));
    assert_eq!(v.replay, ReplayCheck::None);
    assert_eq!(
        peek_kid(&cat_for("cam1")).unwrap(),
        (TokenKind::Cat, "k1".to_owned())
    );
    for alg in [Alg::Es256, Alg::EdDsa, Alg::Hs256] {
        let token = jwt_for("cam1", Access::Publish, alg);
        assert_eq!(peek_kid(&token).unwrap().0, TokenKind::Jwt);
        let v = verify(&token, &keys(), &session("cam1", Access::Publish)).unwrap();
        assert_eq!((v.kind, v.alg), (TokenKind::Jwt, alg));
    }
}

#[test]
fn public_keys_verify_but_cannot_mint() {
    let all = keys();
    let public: KeySet = all
        .keys()
        .filter_map(Key::public_config_entry)
        .collect::<Vec<_>>()
        .join(",")
        .parse()
        .unwrap();
    assert_eq!(public.len(), 2);
    for alg in [Alg::Es256, Alg::EdDsa] {
        let token = jwt_for("cam1", Access::Play, alg);
        assert!(verify(&token, &public, &session("cam1", Access::Play)).is_ok());
        let mut req = MintRequest::for_stream("cam1", Access::Play, NOW, TTL, *b"x")
            .unwrap()
            .without_cat_claims();
        req.alg = Some(alg);
        assert!(matches!(
            mint_jwt(&req, &public),
            Err(TokenError::KeyError(_))
        ));
    }
}

#[test]
fn tampered_payload_and_mac() {
    let keys = keys();
    let opts = opts_for(PLAYLIST);
    let bytes = B64.decode(cat_for("cam1")).unwrap();
    let n = bytes.len();
    // Layout ends with: payload bstr, then 0x58 0x20 and the 32-byte tag.
    for (what, index) in [
        ("payload", n - 35),
        ("payload start", n - 60),
        ("mac", n - 1),
    ] {
        let mut t = bytes.clone();
        t[index] ^= 0x01;
        assert_eq!(
            verify(&b64(&t), &keys, &opts).unwrap_err(),
            TokenError::BadSignature,
            "{what}"
        );
    }
    // JWT: a flipped payload character and a flipped signature character.
    let jwt = jwt_for("cam1", Access::Play, Alg::Es256);
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let mut payload_flip = head.to_owned().into_bytes();
    let i = payload_flip.len() - 5;
    payload_flip[i] = if payload_flip[i] == b'A' { b'B' } else { b'A' };
    let forged = format!("{}.{sig}", String::from_utf8(payload_flip).unwrap());
    assert!(matches!(
        verify(&forged, &keys, &session("cam1", Access::Play)),
        Err(TokenError::BadSignature | TokenError::Malformed(_))
    ));
    let mut sig_bytes = B64.decode(sig).unwrap();
    sig_bytes[10] ^= 0x80;
    let forged = format!("{head}.{}", b64(&sig_bytes));
    assert_eq!(
        verify(&forged, &keys, &session("cam1", Access::Play)).unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn every_single_byte_change_is_refused() {
    let keys = keys();
    let opts = opts_for(PLAYLIST);
    let bytes = B64.decode(cat_for("cam1")).unwrap();
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut t = bytes.clone();
            t[i] ^= bit;
            assert!(verify(&b64(&t), &keys, &opts).is_err(), "byte {i}");
        }
    }
    let jwt = jwt_for("cam1", Access::Play, Alg::EdDsa);
    let session = session("cam1", Access::Play);
    for i in 0..jwt.len() {
        let mut t = jwt.clone().into_bytes();
        t[i] = if t[i] == b'x' { b'y' } else { b'x' };
        let t = String::from_utf8(t).unwrap();
        assert!(verify(&t, &keys, &session).is_err(), "char {i}");
    }
}

#[test]
fn times_and_skew() {
    let keys = keys();
    let token = cat_for("cam1");
    let at = |now: u64, skew: u64| {
        let mut o = opts_for(PLAYLIST);
        o.now = now;
        o.skew = skew;
        verify(&token, &keys, &o)
    };
    let exp = NOW + TTL;
    assert!(at(exp - 1, 0).is_ok());
    assert_eq!(at(exp, 0).unwrap_err(), TokenError::Expired);
    assert!(at(exp + 29, 30).is_ok(), "within the default skew");
    assert_eq!(at(exp + 30, 30).unwrap_err(), TokenError::Expired);
    assert_eq!(
        at(exp + 31, 30).unwrap_err(),
        TokenError::Expired,
        "beyond skew"
    );
    assert_eq!(at(exp + 1000, 300).unwrap_err(), TokenError::Expired);
    // iat in the future: before NOW - skew is not yet valid.
    assert!(at(NOW - 30, 30).is_ok());
    assert_eq!(at(NOW - 31, 30).unwrap_err(), TokenError::NotYetValid);
    assert_eq!(
        at(NOW, 301).unwrap_err(),
        TokenError::InvalidOptions("skew above 300 s")
    );

    // nbf.
    let mut req = MintRequest::for_stream("cam1", Access::Play, NOW, TTL, *b"n").unwrap();
    req.claims.nbf = Some(NOW + 100);
    let future = mint_cat(&req, &keys).unwrap();
    let mut o = opts_for(PLAYLIST);
    o.now = NOW;
    assert_eq!(
        verify(&future, &keys, &o).unwrap_err(),
        TokenError::NotYetValid
    );
    o.now = NOW + 69;
    assert_eq!(
        verify(&future, &keys, &o).unwrap_err(),
        TokenError::NotYetValid
    );
    o.now = NOW + 70;
    assert!(verify(&future, &keys, &o).is_ok());

    // JWT expiry too.
    let jwt = jwt_for("cam1", Access::Play, Alg::EdDsa);
    let mut s = session("cam1", Access::Play);
    s.now = exp + 31;
    assert_eq!(verify(&jwt, &keys, &s).unwrap_err(), TokenError::Expired);
}

#[test]
fn a_token_for_stream_a_never_opens_stream_b() {
    let keys = keys();
    let cat = cat_for("cam1");
    for other in [
        "https://edge.example/live/cam2/index.m3u8",
        "https://edge.example/live/cam10/index.m3u8",
        "https://edge.example/live/cam/index.m3u8",
    ] {
        assert!(
            matches!(
                verify(&cat, &keys, &opts_for(other)),
                Err(TokenError::WrongResource(ResourceMismatch::Stream { .. }))
            ),
            "{other}"
        );
    }
    // Outside /live/NAME/ the catu path prefix still refuses.
    assert_eq!(
        verify(&cat, &keys, &opts_for("https://edge.example/admin/x")).unwrap_err(),
        TokenError::WrongResource(ResourceMismatch::Uri(UriComponent::Path))
    );
    // Session set-up: stream and access checked.
    let mut s = session("cam2", Access::Play);
    assert!(matches!(
        verify(&cat, &keys, &s),
        Err(TokenError::WrongResource(ResourceMismatch::Stream { .. }))
    ));
    let jwt = jwt_for("cam1", Access::Play, Alg::Es256);
    assert_eq!(
        verify(&jwt, &keys, &s).unwrap_err(),
        TokenError::WrongResource(ResourceMismatch::Stream {
            token: "cam1".into(),
            request: "cam2".into()
        })
    );
    s.stream = Some("cam1".into());
    s.access = Some(Access::Publish);
    assert_eq!(
        verify(&jwt, &keys, &s).unwrap_err(),
        TokenError::WrongResource(ResourceMismatch::Access {
            token: Some(Access::Play),
            request: Access::Publish
        })
    );
    // Path tricks are refused before any token check.
    for trick in [
        "https://edge.example/live/cam1/../cam2/index.m3u8",
        "https://edge.example/live/cam1/%2e%2e/cam2/index.m3u8",
        "https://edge.example/live/cam1%2F..%2Fcam2/index.m3u8",
    ] {
        assert!(matches!(
            RequestUrl::parse(trick),
            Err(TokenError::InvalidUrl(_))
        ));
    }
}

/// Issue 9: a JWT (no `catu`) for one stream never opens a
/// percent-encoded spelling of another (`cam%32` is `cam2` to the origin).
#[test]
fn a_percent_encoded_stream_name_opens_nothing() {
    let keys = keys();
    let jwt = jwt_for("cam1", Access::Play, Alg::Es256);
    let cat = cat_for("cam1");
    for spelled in [
        "https://edge.example/live/cam%32/index.m3u8",
        "https://edge.example/live/%63%61%6D%32/video.m3u8",
        "https://edge.example/live/cam%31/index.m3u8",
        "https://edge.example/live/cam1",
    ] {
        for token in [&jwt, &cat] {
            assert!(
                matches!(
                    verify(token, &keys, &opts_for(spelled)),
                    Err(TokenError::InvalidUrl(_))
                ),
                "{spelled}"
            );
        }
    }
    assert!(verify(&jwt, &keys, &opts_for(PLAYLIST)).is_ok());
}

/// Issue 9: a token minted for publishing never plays, though the edge
/// configures no required access; one without an access claim is not
/// restricted by it.
#[test]
fn a_publish_token_never_plays() {
    let keys = keys();
    for alg in [Alg::Hs256, Alg::Es256] {
        let publish = jwt_for("cam1", Access::Publish, alg);
        assert_eq!(
            verify(&publish, &keys, &opts_for(PLAYLIST)).unwrap_err(),
            TokenError::WrongResource(ResourceMismatch::Access {
                token: Some(Access::Publish),
                request: Access::Play
            })
        );
    }
    let cat = mint_cat(
        &MintRequest::for_stream("cam1", Access::Publish, NOW, TTL, *b"cat-id-2").unwrap(),
        &keys,
    )
    .unwrap();
    assert!(matches!(
        verify(&cat, &keys, &opts_for(PLAYLIST)),
        Err(TokenError::WrongResource(ResourceMismatch::Access { .. }))
    ));
    // Session set-up for publishing (WHIP) still accepts it.
    assert!(verify(&cat, &keys, &session("cam1", Access::Publish)).is_ok());
}

#[test]
fn unscoped_tokens_never_open_a_stream() {
    let keys = keys();
    let mut req = MintRequest::default();
    req.claims.exp = Some(NOW + TTL);
    let cat = mint_cat(&req, &keys).unwrap();
    assert_eq!(
        verify(&cat, &keys, &opts_for(PLAYLIST)).unwrap_err(),
        TokenError::WrongResource(ResourceMismatch::Unscoped)
    );
    // An explicit all-streams catu is allowed.
    req.claims.catu = Some(Catu::path_prefix("/live/"));
    let all = mint_cat(&req, &keys).unwrap();
    assert!(verify(&all, &keys, &opts_for(PLAYLIST)).is_ok());
    // Without a URL, a stream request needs the stream claim.
    assert_eq!(
        verify(&all, &keys, &session("cam1", Access::Play)).unwrap_err(),
        TokenError::WrongResource(ResourceMismatch::Unscoped)
    );
}

#[test]
fn keys_rotation_wrong_and_unknown() {
    let keys = keys();
    // Minted with the older k2: still verifies.
    let mut req = MintRequest::for_stream("cam1", Access::Play, NOW, TTL, *b"r").unwrap();
    req.kid = Some("k2".into());
    let old = mint_cat(&req, &keys).unwrap();
    assert_eq!(verify(&old, &keys, &opts_for(PLAYLIST)).unwrap().kid, "k2");
    // Same kid, different secret.
    let imposter: KeySet = format!("k1:HS256:{}", b64(&[0x99; 32])).parse().unwrap();
    let forged = mint_cat(
        &MintRequest::for_stream("cam1", Access::Play, NOW, TTL, *b"f").unwrap(),
        &imposter,
    )
    .unwrap();
    assert_eq!(
        verify(&forged, &keys, &opts_for(PLAYLIST)).unwrap_err(),
        TokenError::BadSignature
    );
    // Unknown kid (rotated out).
    let only_k1: KeySet = format!("k1:HS256:{}", b64(&[0x11; 32])).parse().unwrap();
    assert_eq!(
        verify(&old, &only_k1, &opts_for(PLAYLIST)).unwrap_err(),
        TokenError::UnknownKey("k2".into())
    );
    let jwt = jwt_for("cam1", Access::Play, Alg::EdDsa);
    assert_eq!(
        verify(&jwt, &only_k1, &session("cam1", Access::Play)).unwrap_err(),
        TokenError::UnknownKey("d1".into())
    );
    // A CAT naming an ES256 key.
    let mut es_named = MintRequest::for_stream("cam1", Access::Play, NOW, TTL, *b"e").unwrap();
    es_named.kid = Some("e1".into());
    assert!(matches!(
        mint_cat(&es_named, &keys),
        Err(TokenError::AlgMismatch { .. })
    ));
}

fn jws(header: &str, payload: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(payload.as_bytes()),
        b64(sig)
    )
}

#[test]
fn jwt_alg_none_and_confusion() {
    let keys = keys();
    let s = session("cam1", Access::Play);
    let payload = format!(r#"{{"exp":{},"stream":"cam1","access":"play"}}"#, NOW + TTL);
    for none in ["none", "None", "NONE"] {
        let t = jws(&format!(r#"{{"alg":"{none}","kid":"e1"}}"#), &payload, b"");
        assert_eq!(
            verify(&t, &keys, &s).unwrap_err(),
            TokenError::Unsupported("alg none")
        );
    }
    // HS256 "signed" with the ES256 public key bytes as the HMAC secret.
    let e1_public = keys.get("e1").unwrap().public_key_bytes().unwrap();
    let header = r#"{"alg":"HS256","kid":"e1"}"#;
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let hs = {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&e1_public).unwrap();
        mac.update(input.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    assert_eq!(
        verify(&format!("{input}.{}", b64(&hs)), &keys, &s).unwrap_err(),
        TokenError::AlgMismatch {
            kid: "e1".into(),
            expected: Alg::Es256,
            found: Alg::Hs256
        }
    );
    // A valid ES256 token relabelled EdDSA, and a kid swapped to an HS key.
    let es = jwt_for("cam1", Access::Play, Alg::Es256);
    let (_, rest) = es.split_once('.').unwrap();
    let relabelled = format!("{}.{rest}", b64(br#"{"alg":"EdDSA","kid":"e1"}"#));
    assert!(matches!(
        verify(&relabelled, &keys, &s),
        Err(TokenError::AlgMismatch { .. })
    ));
    let swapped = format!("{}.{rest}", b64(br#"{"alg":"ES256","kid":"k1"}"#));
    assert!(matches!(
        verify(&swapped, &keys, &s),
        Err(TokenError::AlgMismatch { .. })
    ));
    // Other algorithms, crit, missing kid, DER signatures.
    for (header, expect) in [
        (r#"{"alg":"RS256","kid":"e1"}"#, "unsupported"),
        (
            r#"{"alg":"ES256","kid":"e1","crit":["b64"],"b64":false}"#,
            "unsupported",
        ),
        (r#"{"alg":"ES256"}"#, "malformed"),
        (r#"{"alg":"ES256","kid":"e1","typ":"at+jwt"}"#, "malformed"),
    ] {
        let err = verify(&jws(header, &payload, &[0; 64]), &keys, &s).unwrap_err();
        let ok = match expect {
            "unsupported" => matches!(err, TokenError::Unsupported(_)),
            _ => matches!(err, TokenError::Malformed(_)),
        };
        assert!(ok, "{header}: {err:?}");
    }
    let (signed, sig) = es.rsplit_once('.').unwrap();
    let raw = B64.decode(sig).unwrap();
    let der = p256::ecdsa::Signature::from_slice(&raw).unwrap().to_der();
    assert_eq!(
        verify(&format!("{signed}.{}", b64(der.as_bytes())), &keys, &s).unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn issuer_and_audience() {
    let keys = keys();
    let mut req = MintRequest::for_stream("cam1", Access::Play, NOW, TTL, *b"a").unwrap();
    req.claims.iss = Some("livestack".into());
    req.claims.aud = vec!["edge".into()];
    let cat = mint_cat(&req, &keys).unwrap();
    let mut o = opts_for(PLAYLIST);
    assert_eq!(
        verify(&cat, &keys, &o).unwrap_err(),
        TokenError::WrongAudience
    );
    o.audience = Some("origin".into());
    assert_eq!(
        verify(&cat, &keys, &o).unwrap_err(),
        TokenError::WrongAudience
    );
    o.audience = Some("edge".into());
    o.issuer = Some("someone-else".into());
    assert_eq!(
        verify(&cat, &keys, &o).unwrap_err(),
        TokenError::WrongIssuer
    );
    o.issuer = Some("livestack".into());
    assert!(verify(&cat, &keys, &o).is_ok());
}

#[test]
fn replayed_tokens_via_replay_check() {
    let keys = keys();
    let mut seen: HashSet<String> = HashSet::new();
    let mut serve = |token: &str| {
        let v = verify(token, &keys, &opts_for(PLAYLIST))?;
        let newly = match v.replay.record() {
            Some((key, ttl)) => {
                assert!(ttl > 0 && ttl <= TTL + DEFAULT_SKEW_SECS);
                seen.insert(key.to_owned())
            }
            None => true,
        };
        v.replay.outcome(newly)
    };
    let mut req = MintRequest::for_stream("cam1", Access::Play, NOW, TTL, *b"once").unwrap();
    req.claims.catreplay = Some(ReplayPolicy::Prohibited);
    let once = mint_cat(&req, &keys).unwrap();
    assert_eq!(serve(&once), Ok(ReplayOutcome::FirstUse));
    assert_eq!(serve(&once), Err(TokenError::Replayed));

    req.claims.catreplay = Some(ReplayPolicy::ReuseDetection);
    req.claims.id = Some(b"detect".to_vec());
    let detect = mint_cat(&req, &keys).unwrap();
    assert_eq!(serve(&detect), Ok(ReplayOutcome::FirstUse));
    assert_eq!(serve(&detect), Ok(ReplayOutcome::ReuseDetected));

    let free = cat_for("cam1");
    assert_eq!(serve(&free), Ok(ReplayOutcome::NotTracked));
    assert_eq!(serve(&free), Ok(ReplayOutcome::NotTracked));

    // A replay policy without a token id cannot be minted.
    req.claims.id = None;
    assert!(matches!(
        mint_cat(&req, &keys),
        Err(TokenError::InvalidOptions(_))
    ));
}

#[test]
fn renewal_mints_a_fresh_token() {
    let keys = keys();
    let mut req = MintRequest::for_stream("cam1", Access::Play, NOW, TTL, *b"r1").unwrap();
    req.claims.catr = Some(Catr::automatic(600, 120));
    let token = mint_cat(&req, &keys).unwrap();
    let exp = NOW + TTL;
    let v = verify(&token, &keys, &opts_for(PLAYLIST)).unwrap();
    assert_eq!(renewal(&v.claims, exp - 121), None);
    let r = renewal(&v.claims, exp - 100).unwrap();
    assert_eq!(r.kind, RenewalKind::Automatic);
    assert_eq!(r.exp, exp - 100 + 600);
    assert_eq!(renewal(&v.claims, exp), None);
    let renewed = mint_cat(&r.mint_request(&v.claims, exp - 100, *b"r2"), &keys).unwrap();
    let mut o = opts_for(PLAYLIST);
    o.now = exp + 200;
    let v2 = verify(&renewed, &keys, &o).unwrap();
    assert_eq!(v2.claims.exp, Some(exp + 500));
    assert_eq!(v2.claims.id.as_deref(), Some(&b"r2"[..]));
    assert_eq!(v2.claims.catu, v.claims.catu);
    assert_eq!(v2.claims.catr, v.claims.catr);
    // Without catr there is no renewal.
    assert_eq!(
        renewal(
            &verify(&cat_for("cam1"), &keys, &opts_for(PLAYLIST))
                .unwrap()
                .claims,
            exp - 1
        ),
        None
    );
}

#[test]
fn oversized_and_garbage_input() {
    let keys = keys();
    let o = opts_for(PLAYLIST);
    assert_eq!(
        verify(&"A".repeat(MAX_TOKEN_LEN + 1), &keys, &o).unwrap_err(),
        TokenError::Malformed("token longer than 8192 bytes")
    );
    // Deep nesting inside a (correctly sized) token.
    let mut deep = vec![0x81u8; 4000];
    deep.push(0);
    // A huge claimed array length.
    let lie = [0xd1, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    let garbage: Vec<String> = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b.c".into(),
        "!!!!".into(),
        "eyJhbGciOiJIUzI1NiJ9..".into(),
        "\u{0}\u{1}".into(),
        "é".repeat(100),
        b64(&deep),
        b64(&lie),
        b64(b"\xd8\x3d\xd1\x84\x40\xa0\x40\x40"),
        b64(&[0xff; 64]),
        jws("[]", "{}", b""),
        jws("null", "null", b""),
        jws(r#"{"alg":"ES256","kid":"e1"}"#, "[1,2]", &[0; 64]),
        format!(
            "{}.{}.{}",
            "A".repeat(3000),
            "A".repeat(3000),
            "A".repeat(2000)
        ),
    ];
    for g in &garbage {
        assert!(verify(g, &keys, &o).is_err(), "{g:?}");
        let _ = peek_kid(g);
    }
    // Every prefix of valid tokens.
    for token in [cat_for("cam1"), jwt_for("cam1", Access::Play, Alg::Es256)] {
        for n in 0..token.len() {
            assert!(verify(&token[..n], &keys, &o).is_err());
        }
    }
}
