//! Interoperability with independent implementations: Python `cwt`
//! (COSE/CWT) for CATs and PyJWT (with `cryptography`) for JWTs, in both
//! directions. Keys and tokens travel to Python in environment variables;
//! Python answers one JSON document on stdout.
//!
//! Needs `python3` with `cwt`, `PyJWT` and `cryptography` (see
//! `tests/requirements.txt`); the README test command `tests/run.sh`
//! installs them in `target/pyenv` and puts it first on `PATH`.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use livestack_tokens::*;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

const HS_SECRET: [u8; 32] = *b"livestack-interop-hs256-secret!!";
const ES_SCALAR: [u8; 32] = [
    0x5a, 0x1c, 0x3e, 0x77, 0x02, 0x9b, 0x4d, 0xe1, 0x88, 0x31, 0x6f, 0xa0, 0x12, 0xc4, 0x55, 0x9e,
    0x0d, 0x73, 0xb8, 0x26, 0x41, 0xfa, 0x6c, 0x90, 0x3b, 0xd7, 0x1e, 0x64, 0xa9, 0x08, 0xc2, 0x17,
];
const ED_SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn keys() -> KeySet {
    KeySet::parse(&format!(
        "hk:HS256:{},e1:ES256:private:{},d1:EdDSA:private:{}",
        B64.encode(HS_SECRET),
        B64.encode(ES_SCALAR),
        B64.encode(ED_SEED)
    ))
    .expect("test keys parse")
}

/// Run a Python script with environment variables; parse its stdout as JSON.
/// Fails the test (never skips) when Python or its packages are missing.
fn python(script: &str, env: &[(&str, String)]) -> Value {
    const HELP: &str = "python3 with the packages cwt, PyJWT and cryptography is required \
        for the token interop tests: run the README test command `tests/run.sh` (it installs \
        tests/requirements.txt into target/pyenv and puts it first on PATH), or \
        `pip install -r tests/requirements.txt`";
    let probe = Command::new("python3")
        .args(["-c", "import cwt, jwt, cryptography"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}). {HELP}"));
    assert!(
        probe.status.success(),
        "{HELP}\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

const PY_PRELUDE: &str = r#"
import base64, json, os, sys
def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def plain(v):
    # CBOR values to JSON: bytes as {"hex": ...}, map keys as strings.
    if isinstance(v, (bytes, bytearray)):
        return {"hex": bytes(v).hex()}
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn cat_minted_here_verifies_in_python_cwt() {
    let now = now();
    let mut req = MintRequest::for_stream("cam1", Access::Play, now, 300, *b"cat-rs-1").unwrap();
    req.claims.iss = Some("livestack".into());
    req.claims.sub = Some("viewer-7".into());
    req.claims.aud = vec!["edge".into()];
    req.claims.catreplay = Some(ReplayPolicy::ReuseDetection);
    req.claims.catr = Some(Catr::automatic(600, 120));
    let token = mint_cat(&req, &keys()).unwrap();

    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
import cwt
from cwt import COSEKey
key = COSEKey.from_symmetric_key(b64d(os.environ["SECRET"]), alg="HS256", kid="hk")
raw = b64d(os.environ["TOKEN"])
claims = cwt.decode(raw, key)
wrong = COSEKey.from_symmetric_key(b"x" * 32, alg="HS256", kid="hk")
try:
    cwt.decode(raw, wrong)
    wrong_key_rejected = False
except Exception:
    wrong_key_rejected = True
print(json.dumps({"claims": plain(claims), "wrong_key_rejected": wrong_key_rejected}))
"#
    );
    let out = python(
        &script,
        &[("SECRET", B64.encode(HS_SECRET)), ("TOKEN", token.clone())],
    );
    assert_eq!(out["wrong_key_rejected"], json!(true));
    let c = &out["claims"];
    assert_eq!(c["1"], json!("livestack"));
    assert_eq!(c["2"], json!("viewer-7"));
    assert_eq!(c["3"], json!("edge"));
    assert_eq!(c["4"], json!(now + 300));
    assert_eq!(c["6"], json!(now));
    assert_eq!(c["7"], json!({"hex": hex(b"cat-rs-1")}));
    assert_eq!(c["308"], json!(2));
    assert_eq!(c["310"], json!(1));
    assert_eq!(c["312"], json!({"3": {"1": "/live/cam1/"}}));
    assert_eq!(c["323"], json!({"0": 0, "1": 600, "2": 120}));
    assert_eq!(c[CLAIM_STREAM.to_string()], json!("cam1"));
    assert_eq!(c[CLAIM_ACCESS.to_string()], json!("play"));
}

#[test]
fn cat_minted_by_python_cwt_verifies_here() {
    let now = now();
    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
import cwt
from cwt import COSEKey
now = int(os.environ["NOW"])
key = COSEKey.from_symmetric_key(b64d(os.environ["SECRET"]), alg="HS256", kid="py-hk")
claims = {
    1: "livestack", 2: "viewer-9", 3: "edge", 4: now + 300, 5: now, 6: now, 7: b"cat-py-1",
    308: 1, 310: 1, 312: {0: {0: "https"}, 3: {1: "/live/cam1/"}},
    323: {0: 0, 1: 600, 2: 120},
    -65537: "cam1", -65538: "play",
}
tagged = cwt.encode(claims, key, tagged=True)
untagged = cwt.encode(claims, key)
print(json.dumps({"tagged": b64e(tagged), "untagged": b64e(untagged)}))
"#
    );
    let out = python(
        &script,
        &[("SECRET", B64.encode(HS_SECRET)), ("NOW", now.to_string())],
    );
    let keys: KeySet = format!("py-hk:HS256:{}", B64.encode(HS_SECRET))
        .parse()
        .unwrap();
    let mut opts = VerifyOptions::new(now);
    opts.issuer = Some("livestack".into());
    opts.audience = Some("edge".into());
    opts.url = Some(RequestUrl::parse("https://edge.example/live/cam1/index.m3u8").unwrap());
    opts.access = Some(Access::Play);
    for form in ["tagged", "untagged"] {
        let token = out[form].as_str().unwrap();
        let v = verify(token, &keys, &opts).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(v.kind, TokenKind::Cat);
        assert_eq!(v.kid, "py-hk");
        let c = &v.claims;
        assert_eq!(c.iss.as_deref(), Some("livestack"));
        assert_eq!(c.sub.as_deref(), Some("viewer-9"));
        assert_eq!(c.exp, Some(now + 300));
        assert_eq!(c.id.as_deref(), Some(&b"cat-py-1"[..]));
        assert_eq!(c.stream.as_deref(), Some("cam1"));
        assert_eq!(c.access, Some(Access::Play));
        assert_eq!(c.catreplay, Some(ReplayPolicy::Prohibited));
        assert_eq!(c.catr, Some(Catr::automatic(600, 120)));
        assert!(matches!(v.replay, ReplayCheck::RejectReuse { .. }));
        assert!(renewal(c, now + 200).is_some());
        // Scoped to cam1 and https.
        let mut other = opts.clone();
        other.url = Some(RequestUrl::parse("https://edge.example/live/cam2/index.m3u8").unwrap());
        assert!(matches!(
            verify(token, &keys, &other),
            Err(TokenError::WrongResource(ResourceMismatch::Stream { .. }))
        ));
        other.url = Some(RequestUrl::parse("http://edge.example/live/cam1/index.m3u8").unwrap());
        assert_eq!(
            verify(token, &keys, &other).unwrap_err(),
            TokenError::WrongResource(ResourceMismatch::Uri(UriComponent::Scheme))
        );
    }
}

fn jwt_request(now: u64, alg: Alg) -> MintRequest {
    let mut req = MintRequest::for_stream("cam1", Access::Publish, now, 300, *b"jwt-rs-1")
        .unwrap()
        .without_cat_claims();
    req.alg = Some(alg);
    req.claims.iss = Some("livestack".into());
    req.claims.sub = Some("publisher-3".into());
    req.claims.aud = vec!["edge".into()];
    req.claims.nbf = Some(now);
    req
}

#[test]
fn jwt_minted_here_verifies_in_pyjwt() {
    let now = now();
    let keys = keys();
    let es = mint_jwt(&jwt_request(now, Alg::Es256), &keys).unwrap();
    let ed = mint_jwt(&jwt_request(now, Alg::EdDsa), &keys).unwrap();
    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
es_pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(os.environ["ES_PUB"]))
ed_pub = ed25519.Ed25519PublicKey.from_public_bytes(b64d(os.environ["ED_PUB"]))
out = {}
for name, token, key, alg in [("es", os.environ["ES"], es_pub, "ES256"), ("ed", os.environ["ED"], ed_pub, "EdDSA")]:
    out[name] = jwt.decode(token, key, algorithms=[alg], audience="edge", issuer="livestack")
    out[name + "_header"] = jwt.get_unverified_header(token)
    head, payload, sig = token.split(".")
    forged = head + "." + b64e(json.dumps({**out[name], "stream": "cam2"}).encode()) + "." + sig
    try:
        jwt.decode(forged, key, algorithms=[alg], audience="edge")
        out[name + "_forged_rejected"] = False
    except jwt.InvalidSignatureError:
        out[name + "_forged_rejected"] = True
print(json.dumps(out))
"#
    );
    let public = |kid: &str| B64.encode(keys.get(kid).unwrap().public_key_bytes().unwrap());
    let out = python(
        &script,
        &[
            ("ES", es),
            ("ED", ed),
            ("ES_PUB", public("e1")),
            ("ED_PUB", public("d1")),
        ],
    );
    for (name, kid, alg) in [("es", "e1", "ES256"), ("ed", "d1", "EdDSA")] {
        assert_eq!(
            out[format!("{name}_header")],
            json!({"alg": alg, "typ": "JWT", "kid": kid})
        );
        assert_eq!(out[format!("{name}_forged_rejected")], json!(true));
        assert_eq!(
            out[name],
            json!({
                "iss": "livestack", "sub": "publisher-3", "aud": "edge",
                "exp": now + 300, "nbf": now, "iat": now, "jti": "jwt-rs-1",
                "stream": "cam1", "access": "publish",
            })
        );
    }
}

#[test]
fn jwt_minted_by_pyjwt_verifies_here() {
    let now = now();
    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
now = int(os.environ["NOW"])
es_priv = ec.derive_private_key(int.from_bytes(b64d(os.environ["ES_D"]), "big"), ec.SECP256R1())
ed_priv = ed25519.Ed25519PrivateKey.from_private_bytes(b64d(os.environ["ED_SEED"]))
claims = {"iss": "livestack", "sub": "publisher-4", "aud": ["edge", "origin"],
          "exp": now + 300, "nbf": now, "iat": now, "jti": "jwt-py-1",
          "stream": "cam1", "access": "publish"}
print(json.dumps({
    "es": jwt.encode(claims, es_priv, algorithm="ES256", headers={"kid": "e1"}),
    "ed": jwt.encode(claims, ed_priv, algorithm="EdDSA", headers={"kid": "d1"}),
    "hs": jwt.encode(claims, b64d(os.environ["HS"]), algorithm="HS256", headers={"kid": "hk"}),
}))
"#
    );
    let out = python(
        &script,
        &[
            ("NOW", now.to_string()),
            ("ES_D", B64.encode(ES_SCALAR)),
            ("ED_SEED", B64.encode(ED_SEED)),
            ("HS", B64.encode(HS_SECRET)),
        ],
    );
    // Verify with public keys only (and the HS256 secret).
    let all = keys();
    let public: KeySet = [
        all.get("e1").unwrap().public_config_entry().unwrap(),
        all.get("d1").unwrap().public_config_entry().unwrap(),
        format!("hk:HS256:{}", B64.encode(HS_SECRET)),
    ]
    .join(",")
    .parse()
    .unwrap();
    let mut opts = VerifyOptions::new(now);
    opts.issuer = Some("livestack".into());
    opts.audience = Some("origin".into());
    opts.stream = Some("cam1".into());
    opts.access = Some(Access::Publish);
    for (name, alg) in [("es", Alg::Es256), ("ed", Alg::EdDsa), ("hs", Alg::Hs256)] {
        let token = out[name].as_str().unwrap();
        let v = verify(token, &public, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((v.kind, v.alg), (TokenKind::Jwt, alg));
        assert_eq!(v.claims.sub.as_deref(), Some("publisher-4"));
        assert_eq!(v.claims.aud, vec!["edge".to_owned(), "origin".to_owned()]);
        assert_eq!(v.claims.id.as_deref(), Some(&b"jwt-py-1"[..]));
        assert_eq!(v.claims.exp, Some(now + 300));
        let mut wrong = opts.clone();
        wrong.stream = Some("cam2".into());
        assert!(matches!(
            verify(token, &public, &wrong),
            Err(TokenError::WrongResource(ResourceMismatch::Stream { .. }))
        ));
        wrong.stream = Some("cam1".into());
        wrong.access = Some(Access::Play);
        assert!(matches!(
            verify(token, &public, &wrong),
            Err(TokenError::WrongResource(ResourceMismatch::Access { .. }))
        ));
    }
}
