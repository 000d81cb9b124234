//! JWT (RFC 7519) in JWS compact serialization (RFC 7515 §7.1) with ES256
//! (RFC 7518 §3.4, raw `r || s`), EdDSA/Ed25519 (RFC 8037 §3.1) or HS256
//! (RFC 7518 §3.2).

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac as _};
use p256::ecdsa::signature::Verifier as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::keys::{KeyStore, Material, resolve_signer};
use crate::verify::{MAX_TOKEN_ID_LEN, check_claims, check_mint_claims};
use crate::{
    Access, Alg, Claims, Key, MintRequest, ReplayCheck, TokenError, TokenKind, Verified,
    VerifyOptions, is_valid_stream_name,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// The JOSE header members this crate reads. serde refuses duplicates of
/// these members (RFC 7515 §4: duplicate names MUST be rejected or the
/// last taken; we reject).
#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct PayloadIn {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<OneOrMany>,
    exp: Option<serde_json::Number>,
    nbf: Option<serde_json::Number>,
    iat: Option<serde_json::Number>,
    jti: Option<String>,
    stream: Option<String>,
    access: Option<String>,
}

fn hmac(secret: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(data);
    mac
}

pub(crate) fn mint<K: KeyStore + ?Sized>(
    req: &MintRequest,
    keys: &K,
) -> Result<String, TokenError> {
    let key = resolve_signer(keys, req.kid.as_deref(), req.alg)?;
    let c = &req.claims;
    check_mint_claims(c)?;
    if c.catu.is_some() || c.catr.is_some() || c.catreplay.is_some() || c.catv.is_some() {
        return Err(TokenError::InvalidOptions(
            "catu, catr, catreplay and catv are CAT claims (use without_cat_claims)",
        ));
    }
    let mut payload = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| payload.insert(k.to_owned(), v);
    if let Some(v) = &c.iss {
        put("iss", v.clone().into());
    }
    if let Some(v) = &c.sub {
        put("sub", v.clone().into());
    }
    match c.aud.as_slice() {
        [] => {}
        [one] => {
            put("aud", one.clone().into());
        }
        many => {
            put("aud", many.to_vec().into());
        }
    }
    for (name, v) in [("exp", c.exp), ("nbf", c.nbf), ("iat", c.iat)] {
        if let Some(v) = v {
            put(name, v.into());
        }
    }
    if let Some(id) = &c.id {
        let jti = std::str::from_utf8(id)
            .map_err(|_| TokenError::InvalidOptions("a JWT id (jti) must be UTF-8"))?;
        put("jti", jti.into());
    }
    if let Some(v) = &c.stream {
        put("stream", v.clone().into());
    }
    if let Some(v) = c.access {
        put("access", v.as_str().into());
    }
    let header = HeaderOut {
        alg: key.alg.jose_name(),
        typ: "JWT",
        kid: &key.kid,
    };
    let header = serde_json::to_vec(&header).map_err(|_| TokenError::Malformed("JSON"))?;
    let payload = serde_json::to_vec(&payload).map_err(|_| TokenError::Malformed("JSON"))?;
    let signing_input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let signature = keys.sign(&key.kid, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", B64.encode(signature)))
}

/// Sign a JWS signing input (RFC 7515 §5.1) with a private key or secret.
pub(crate) fn sign(key: &Key, input: &[u8]) -> Result<Vec<u8>, TokenError> {
    Ok(match key.material() {
        Material::Secret(s) => hmac(s, input).finalize().into_bytes().to_vec(),
        // RFC 6979 deterministic ECDSA: no randomness needed.
        Material::Es256Private(k) => {
            let sig: p256::ecdsa::Signature = k.sign(input);
            sig.to_bytes().to_vec()
        }
        Material::Ed25519Private(k) => k.sign(input).to_bytes().to_vec(),
        Material::Es256Public(_) | Material::Ed25519Public(_) => {
            return Err(TokenError::KeyError(format!(
                "key {:?} is a public key and cannot sign",
                key.kid()
            )));
        }
    })
}

/// Verify a JWS signature over `input` with `key` (whose algorithm the
/// caller already matched against the header).
pub(crate) fn verify_signature(key: &Key, input: &[u8], sig: &[u8]) -> Result<(), TokenError> {
    let ok = match key.material() {
        Material::Secret(s) => hmac(s, input).verify_slice(sig).is_ok(),
        Material::Es256Private(k) => verify_es256(k.verifying_key(), input, sig),
        Material::Es256Public(k) => verify_es256(k, input, sig),
        Material::Ed25519Private(k) => verify_ed25519(&k.verifying_key(), input, sig),
        Material::Ed25519Public(k) => verify_ed25519(k, input, sig),
    };
    if ok {
        Ok(())
    } else {
        Err(TokenError::BadSignature)
    }
}

fn verify_es256(key: &p256::ecdsa::VerifyingKey, input: &[u8], sig: &[u8]) -> bool {
    // RFC 7518 §3.4: exactly 64 bytes, r || s; DER is not accepted.
    sig.len() == 64
        && p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| key.verify(input, &s).is_ok())
}

fn verify_ed25519(key: &ed25519_dalek::VerifyingKey, input: &[u8], sig: &[u8]) -> bool {
    ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| key.verify_strict(input, &s).is_ok())
}

fn numeric_date(n: &serde_json::Number, what: &'static str) -> Result<u64, TokenError> {
    if let Some(u) = n.as_u64() {
        return Ok(u);
    }
    match n.as_f64() {
        Some(f) => crate::verify::float_secs(f).ok_or(TokenError::Malformed(what)),
        None => Err(TokenError::Malformed(what)),
    }
}

/// The `kid` of a JWT header, unverified.
pub(crate) fn peek_kid(token: &str) -> Result<String, TokenError> {
    // split always yields one item; an empty header then fails decoding.
    let h64 = token.split('.').next().unwrap_or_default();
    let header = B64
        .decode(h64)
        .map_err(|_| TokenError::Malformed("JWT header is not base64url"))?;
    let header: HeaderIn =
        serde_json::from_slice(&header).map_err(|_| TokenError::Malformed("JWT header JSON"))?;
    header
        .kid
        .ok_or(TokenError::Malformed("JWT header has no kid"))
}

pub(crate) fn verify<K: KeyStore + ?Sized>(
    token: &str,
    keys: &K,
    opts: &VerifyOptions,
) -> Result<Verified, TokenError> {
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("JWS compact form has 3 parts"));
    };
    let header = B64
        .decode(h64)
        .map_err(|_| TokenError::Malformed("JWT header is not base64url"))?;
    let header: HeaderIn =
        serde_json::from_slice(&header).map_err(|_| TokenError::Malformed("JWT header JSON"))?;
    if header.crit.is_some() {
        return Err(TokenError::Unsupported("JWS crit header"));
    }
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::Unsupported("alg none"));
    }
    let alg = Alg::from_jose_name(&header.alg).ok_or(TokenError::Unsupported(
        "JWS algorithm other than HS256, ES256, EdDSA",
    ))?;
    if header
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
    {
        return Err(TokenError::Malformed("JWT typ must be JWT"));
    }
    let kid = header
        .kid
        .ok_or(TokenError::Malformed("JWT header has no kid"))?;
    let key = keys
        .key_info(&kid)
        .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
    if key.alg != alg {
        return Err(TokenError::AlgMismatch {
            kid,
            expected: key.alg,
            found: alg,
        });
    }
    let signature = B64
        .decode(s64)
        .map_err(|_| TokenError::Malformed("JWT signature is not base64url"))?;
    let input_len = h64.len() + 1 + p64.len();
    keys.verify(&kid, &token.as_bytes()[..input_len], &signature)?;
    let payload = B64
        .decode(p64)
        .map_err(|_| TokenError::Malformed("JWT payload is not base64url"))?;
    let p: PayloadIn =
        serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed("JWT claims JSON"))?;
    let claims = claims_from_payload(p)?;
    check_claims(&claims, opts)?;
    let replay = ReplayCheck::new(TokenKind::Jwt, &claims, opts.now, opts.skew)?;
    Ok(Verified {
        kind: TokenKind::Jwt,
        kid: key.kid,
        alg,
        claims,
        replay,
    })
}

fn claims_from_payload(p: PayloadIn) -> Result<Claims, TokenError> {
    let mut c = Claims {
        iss: p.iss,
        sub: p.sub,
        aud: match p.aud {
            None => Vec::new(),
            Some(OneOrMany::One(a)) => vec![a],
            Some(OneOrMany::Many(a)) => a,
        },
        exp: p.exp.map(|n| numeric_date(&n, "exp")).transpose()?,
        nbf: p.nbf.map(|n| numeric_date(&n, "nbf")).transpose()?,
        iat: p.iat.map(|n| numeric_date(&n, "iat")).transpose()?,
        ..Claims::default()
    };
    if let Some(jti) = p.jti {
        if jti.is_empty() || jti.len() > MAX_TOKEN_ID_LEN {
            return Err(TokenError::Malformed("jti must be 1 to 128 bytes"));
        }
        c.id = Some(jti.into_bytes());
    }
    if let Some(stream) = p.stream {
        if !is_valid_stream_name(&stream) {
            return Err(TokenError::Malformed("invalid stream name"));
        }
        c.stream = Some(stream);
    }
    if let Some(access) = p.access {
        c.access = Some(
            Access::parse(&access)
                .ok_or(TokenError::Malformed("access must be publish or play"))?,
        );
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeySet;

    /// RFC 8037 Appendix A.1 key, A.4 signature over A.4's signing input.
    #[test]
    fn rfc8037_a4_ed25519_signature_bytes() {
        let seed = B64
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let key = Key::ed25519_private("rfc8037", &seed).unwrap();
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let sig = sign(&key, input).unwrap();
        assert_eq!(
            B64.encode(&sig),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
        let public = Key::ed25519_public(
            "rfc8037",
            &B64.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
                .unwrap(),
        )
        .unwrap();
        assert!(verify_signature(&public, input, &sig).is_ok());
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert_eq!(
            verify_signature(&public, input, &bad),
            Err(TokenError::BadSignature)
        );
    }

    /// RFC 7515 Appendix A.3: ES256 JWS, verified with the example's public
    /// key (ECDSA there was randomized, so only verification is checked).
    #[test]
    fn rfc7515_a3_es256_verifies() {
        let x = B64
            .decode("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")
            .unwrap();
        let y = B64
            .decode("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
            .unwrap();
        let mut point = vec![4u8];
        point.extend(x);
        point.extend(y);
        let key = Key::es256_public("rfc7515", &point).unwrap();
        let input = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let sig = B64
            .decode("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
            .unwrap();
        assert!(verify_signature(&key, input.as_bytes(), &sig).is_ok());
        assert!(verify_signature(&key, b"other", &sig).is_err());
        // The payload parses into claims (RFC 7519 §3.1 example claims).
        let payload: PayloadIn =
            serde_json::from_slice(&B64.decode(input.split('.').nth(1).unwrap()).unwrap()).unwrap();
        let claims = claims_from_payload(payload).unwrap();
        assert_eq!(claims.iss.as_deref(), Some("joe"));
        assert_eq!(claims.exp, Some(1_300_819_380));
    }

    /// RFC 7515 Appendix A.1: HS256 JWS with the example's JWK `k`.
    #[test]
    fn rfc7515_a1_hs256_mac() {
        let k = B64
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let key = Key::hs256("rfc7515", &k).unwrap();
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        assert_eq!(
            B64.encode(sign(&key, input.as_bytes()).unwrap()),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn duplicate_header_members_are_refused() {
        let header = B64.encode(br#"{"alg":"HS256","alg":"none","kid":"k"}"#);
        let token = format!("{header}.e30.AAAA");
        let mut keys = KeySet::new();
        keys.insert(Key::hs256("k", &[0u8; 32]).unwrap()).unwrap();
        assert!(matches!(
            verify(&token, &keys, &VerifyOptions::new(0)),
            Err(TokenError::Malformed(_))
        ));
    }
}
