//! CTA-5007 Common Access Token: a CWT (RFC 8392) in a COSE_Mac0 (RFC 9052
//! §6.2) with HMAC 256/256 (RFC 9053 §3.1, COSE alg 5), text form base64url
//! without padding.

use base64::Engine as _;

use crate::cbor::{self, Value};
use crate::claims::{CLAIM_ACCESS, CLAIM_STREAM};
use crate::keys::{KeyStore, decode_b64url, resolve_signer};
use crate::verify::{MAX_TOKEN_ID_LEN, check_claims, check_mint_claims};
use crate::{
    Access, Alg, Catr, Catu, Claims, MintRequest, RenewalKind, ReplayCheck, ReplayPolicy,
    TokenError, TokenKind, UriComponent, UriMatch, Verified, VerifyOptions, is_valid_stream_name,
};

/// CBOR tag of a CWT (RFC 8392 §6).
pub const CWT_TAG: u64 = 61;
/// CBOR tag of a COSE_Mac0 (RFC 9052 §2).
pub const COSE_MAC0_TAG: u64 = 17;
/// COSE algorithm "HMAC 256/256" (RFC 9053 §3.1).
pub const COSE_ALG_HMAC_256_256: i64 = 5;

const HDR_ALG: i128 = 1;
const HDR_CRIT: i128 = 2;
const HDR_KID: i128 = 4;

/// CWT and CAT claim keys this crate reads (RFC 8392 §3.1, CTA-5007).
pub mod claim_key {
    /// `iss`.
    pub const ISS: i64 = 1;
    /// `sub`.
    pub const SUB: i64 = 2;
    /// `aud`.
    pub const AUD: i64 = 3;
    /// `exp`.
    pub const EXP: i64 = 4;
    /// `nbf`.
    pub const NBF: i64 = 5;
    /// `iat`.
    pub const IAT: i64 = 6;
    /// `cti`.
    pub const CTI: i64 = 7;
    /// `crit`: claim keys the verifier must understand (as deployed CAT
    /// verifiers number it).
    pub const CRIT: i64 = 45;
    /// `catreplay`.
    pub const CATREPLAY: i64 = 308;
    /// `catv`.
    pub const CATV: i64 = 310;
    /// `catu`.
    pub const CATU: i64 = 312;
    /// `catr`.
    pub const CATR: i64 = 323;
}

/// Restricting claims this crate does not enforce: a token carrying one is
/// refused rather than served with the restriction ignored.
const UNENFORCED: &[(i128, &str)] = &[
    (8, "cnf"),
    (41, "or"),
    (42, "nor"),
    (43, "and"),
    (44, "enc"),
    (309, "catpor"),
    (311, "catnip"),
    (313, "catm"),
    (314, "catalpn"),
    (315, "cath"),
    (316, "catgeoiso3166"),
    (317, "catgeocoord"),
    (318, "catgeoalt"),
    (319, "cattpk"),
    (321, "catdpop"),
    (322, "catif"),
    (324, "cattprint"),
];

/// Claim keys this crate understands (allowed in `crit`).
const UNDERSTOOD: &[i64] = &[
    claim_key::ISS,
    claim_key::SUB,
    claim_key::AUD,
    claim_key::EXP,
    claim_key::NBF,
    claim_key::IAT,
    claim_key::CTI,
    claim_key::CRIT,
    claim_key::CATREPLAY,
    claim_key::CATV,
    claim_key::CATU,
    claim_key::CATR,
    CLAIM_STREAM,
    CLAIM_ACCESS,
];

/// The COSE MAC_structure for a COSE_Mac0 (RFC 9052 §6.3): `["MAC0",
/// protected, external_aad = h'', payload]`, the bytes the tag covers.
pub(crate) fn mac0_input(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    cbor::encode(&Value::Array(vec![
        Value::Text("MAC0".to_owned()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.to_vec()),
    ]))
}

pub(crate) fn mint<K: KeyStore + ?Sized>(
    req: &MintRequest,
    keys: &K,
) -> Result<String, TokenError> {
    if req.alg.is_some_and(|a| a != Alg::Hs256) {
        return Err(TokenError::InvalidOptions("CAT is minted with HS256 only"));
    }
    let key = resolve_signer(keys, req.kid.as_deref(), Some(Alg::Hs256))?;
    check_mint_claims(&req.claims)?;
    Ok(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mint_bytes(
            &req.claims,
            &key.kid,
            keys,
        )?),
    )
}

fn mint_bytes<K: KeyStore + ?Sized>(
    claims: &Claims,
    kid: &str,
    keys: &K,
) -> Result<Vec<u8>, TokenError> {
    let protected = cbor::encode(&Value::Map(vec![
        (
            Value::Int(HDR_ALG),
            Value::Int(COSE_ALG_HMAC_256_256.into()),
        ),
        (Value::Int(HDR_KID), Value::Bytes(kid.as_bytes().to_vec())),
    ]));
    let payload = cbor::encode(&claims_to_cbor(claims));
    let tag = keys.sign(kid, &mac0_input(&protected, &payload))?;
    Ok(cbor::encode(&Value::Tag(
        CWT_TAG,
        Box::new(Value::Tag(
            COSE_MAC0_TAG,
            Box::new(Value::Array(vec![
                Value::Bytes(protected),
                Value::Map(Vec::new()),
                Value::Bytes(payload),
                Value::Bytes(tag),
            ])),
        )),
    )))
}

/// The parts of a COSE_Mac0, structurally checked but not yet verified.
pub(crate) struct Mac0 {
    pub protected: Vec<u8>,
    pub kid: Vec<u8>,
    pub payload: Vec<u8>,
    pub tag: Vec<u8>,
}

/// Parse the CBOR of a (CWT-tagged or not) COSE_Mac0 with alg 5.
pub(crate) fn parse_mac0(bytes: &[u8], require_alg_5: bool) -> Result<Mac0, TokenError> {
    let mut value = cbor::decode(bytes)?;
    if let Value::Tag(CWT_TAG, inner) = value {
        value = *inner;
    }
    let items = match value {
        Value::Tag(COSE_MAC0_TAG, inner) => match *inner {
            Value::Array(items) => items,
            _ => return Err(TokenError::Malformed("COSE_Mac0 is not an array")),
        },
        Value::Array(items) => items,
        Value::Tag(16 | 18 | 96 | 97 | 98, _) => {
            return Err(TokenError::Unsupported(
                "COSE structure other than COSE_Mac0",
            ));
        }
        _ => return Err(TokenError::Malformed("not a COSE_Mac0")),
    };
    let [protected, unprotected, payload, tag]: [Value; 4] = items
        .try_into()
        .map_err(|_| TokenError::Malformed("COSE_Mac0 must have 4 items"))?;
    let (Value::Bytes(protected), Value::Map(unprotected), Value::Bytes(tag)) =
        (protected, unprotected, tag)
    else {
        return Err(TokenError::Malformed("COSE_Mac0 item types"));
    };
    let Value::Bytes(payload) = payload else {
        return Err(TokenError::Malformed("CWT payload must be a byte string"));
    };
    let protected_map = if protected.is_empty() {
        Vec::new()
    } else {
        match cbor::decode(&protected)? {
            Value::Map(m) => m,
            _ => return Err(TokenError::Malformed("protected header is not a map")),
        }
    };
    if Value::map_get(&unprotected, HDR_ALG).is_some() {
        return Err(TokenError::Malformed("alg must be in the protected header"));
    }
    if Value::map_get(&protected_map, HDR_CRIT).is_some()
        || Value::map_get(&unprotected, HDR_CRIT).is_some()
    {
        return Err(TokenError::Unsupported("COSE crit header parameter"));
    }
    match Value::map_get(&protected_map, HDR_ALG) {
        Some(Value::Int(a)) if *a == i128::from(COSE_ALG_HMAC_256_256) || !require_alg_5 => {}
        Some(Value::Int(_) | Value::Text(_)) => {
            return Err(TokenError::Unsupported(
                "COSE algorithm other than HMAC 256/256 (5)",
            ));
        }
        _ => return Err(TokenError::Malformed("missing COSE alg")),
    }
    let kid = match (
        Value::map_get(&protected_map, HDR_KID),
        Value::map_get(&unprotected, HDR_KID),
    ) {
        (Some(_), Some(_)) => return Err(TokenError::Malformed("kid in both headers")),
        (Some(k), None) | (None, Some(k)) => match k {
            Value::Bytes(b) => b.clone(),
            Value::Text(t) => t.as_bytes().to_vec(),
            _ => return Err(TokenError::Malformed("kid type")),
        },
        (None, None) => return Err(TokenError::Malformed("missing kid")),
    };
    Ok(Mac0 {
        protected,
        kid,
        payload,
        tag,
    })
}

/// The `kid` of a CAT, unverified.
pub(crate) fn peek_kid(token: &str) -> Result<String, TokenError> {
    let bytes = decode_b64url(token).ok_or(TokenError::Malformed("not base64url"))?;
    let kid = parse_mac0(&bytes, true)?.kid;
    String::from_utf8(kid).map_err(|_| TokenError::Malformed("kid is not UTF-8"))
}

pub(crate) fn verify<K: KeyStore + ?Sized>(
    token: &str,
    keys: &K,
    opts: &VerifyOptions,
) -> Result<Verified, TokenError> {
    let bytes = decode_b64url(token).ok_or(TokenError::Malformed("not base64url"))?;
    let mac0 = parse_mac0(&bytes, true)?;
    // Key ids are text; a kid that is not UTF-8 names no configured key.
    let key = std::str::from_utf8(&mac0.kid)
        .ok()
        .and_then(|kid| keys.key_info(kid))
        .ok_or_else(|| TokenError::UnknownKey(String::from_utf8_lossy(&mac0.kid).into_owned()))?;
    if key.alg != Alg::Hs256 {
        return Err(TokenError::AlgMismatch {
            kid: key.kid,
            expected: key.alg,
            found: Alg::Hs256,
        });
    }
    // The store compares MACs in constant time.
    keys.verify(
        &key.kid,
        &mac0_input(&mac0.protected, &mac0.payload),
        &mac0.tag,
    )?;
    let claims = claims_from_cbor(&cbor::decode(&mac0.payload)?)?;
    check_claims(&claims, opts)?;
    let replay = ReplayCheck::new(TokenKind::Cat, &claims, opts.now, opts.skew)?;
    Ok(Verified {
        kind: TokenKind::Cat,
        kid: key.kid,
        alg: Alg::Hs256,
        claims,
        replay,
    })
}

fn text(v: &Value, what: &'static str) -> Result<String, TokenError> {
    match v {
        Value::Text(t) => Ok(t.clone()),
        _ => Err(TokenError::Malformed(what)),
    }
}

fn uint(v: &Value, what: &'static str) -> Result<u64, TokenError> {
    match v {
        Value::Int(i) => u64::try_from(*i).map_err(|_| TokenError::Malformed(what)),
        _ => Err(TokenError::Malformed(what)),
    }
}

/// NumericDate (RFC 8392 §2): an integer or a float, not negative.
fn numeric_date(v: &Value, what: &'static str) -> Result<u64, TokenError> {
    match v {
        Value::Float(f) => crate::verify::float_secs(*f).ok_or(TokenError::Malformed(what)),
        _ => uint(v, what),
    }
}

fn texts(v: &Value, what: &'static str) -> Result<Vec<String>, TokenError> {
    match v {
        Value::Text(t) => Ok(vec![t.clone()]),
        Value::Array(items) => items.iter().map(|i| text(i, what)).collect(),
        _ => Err(TokenError::Malformed(what)),
    }
}

fn hash32(v: &Value) -> Result<[u8; 32], TokenError> {
    const WHAT: &str = "catu hash must be 32 bytes";
    match v {
        Value::Bytes(b) => b
            .as_slice()
            .try_into()
            .map_err(|_| TokenError::Malformed(WHAT)),
        Value::Text(hex) if hex.len() == 64 => {
            let mut out = [0u8; 32];
            for (i, byte) in out.iter_mut().enumerate() {
                let pair = hex
                    .get(2 * i..2 * i + 2)
                    .ok_or(TokenError::Malformed(WHAT))?;
                *byte = u8::from_str_radix(pair, 16).map_err(|_| TokenError::Malformed(WHAT))?;
            }
            Ok(out)
        }
        _ => Err(TokenError::Malformed(WHAT)),
    }
}

fn catu_from_cbor(v: &Value) -> Result<Catu, TokenError> {
    let Value::Map(components) = v else {
        return Err(TokenError::Malformed("catu must be a map"));
    };
    let mut rules = Vec::new();
    for (k, matches) in components {
        let component = match k {
            Value::Int(k) => UriComponent::from_key(*k)
                .ok_or_else(|| TokenError::UnsupportedClaim(format!("catu component {k}")))?,
            _ => return Err(TokenError::Malformed("catu component key")),
        };
        let Value::Map(matches) = matches else {
            return Err(TokenError::Malformed("catu match map"));
        };
        let mut list = Vec::new();
        for (m, value) in matches {
            const WHAT: &str = "catu match value must be text";
            list.push(match m {
                Value::Int(0) => UriMatch::Exact(text(value, WHAT)?),
                Value::Int(1) => UriMatch::Prefix(text(value, WHAT)?),
                Value::Int(2) => UriMatch::Suffix(text(value, WHAT)?),
                Value::Int(3) => UriMatch::Contains(text(value, WHAT)?),
                Value::Int(4) => return Err(TokenError::Unsupported("catu regex match")),
                Value::Int(-1) => UriMatch::Sha256(hash32(value)?),
                Value::Int(-2) => UriMatch::Sha512_256(hash32(value)?),
                Value::Int(other) => {
                    return Err(TokenError::UnsupportedClaim(format!(
                        "catu match type {other}"
                    )));
                }
                _ => return Err(TokenError::Malformed("catu match type key")),
            });
        }
        rules.push((component, list));
    }
    Ok(Catu { rules })
}

fn catr_from_cbor(v: &Value) -> Result<Catr, TokenError> {
    let Value::Map(params) = v else {
        return Err(TokenError::Malformed("catr must be a map"));
    };
    let get = |k| Value::map_get(params, k);
    let kind = get(0)
        .and_then(|t| match t {
            Value::Int(i) => RenewalKind::from_value(*i),
            _ => None,
        })
        .ok_or(TokenError::Malformed("catr needs a known renewal type"))?;
    let expadd = uint(
        get(1).ok_or(TokenError::Malformed("catr needs expadd"))?,
        "catr expadd",
    )?;
    let opt_text = |k| get(k).map(|v| text(v, "catr name")).transpose();
    let opt_texts = |k| {
        get(k)
            .map(|v| texts(v, "catr params"))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(Catr {
        kind,
        expadd,
        deadline: get(2).map(|v| uint(v, "catr deadline")).transpose()?,
        cookie_name: opt_text(3)?,
        header_name: opt_text(4)?,
        cookie_params: opt_texts(5)?,
        header_params: opt_texts(6)?,
        status_code: get(7)
            .map(|v| {
                uint(v, "catr status code")
                    .and_then(|c| u16::try_from(c).map_err(|_| TokenError::Malformed("catr code")))
            })
            .transpose()?,
    })
}

/// Decode CWT claims (RFC 8392 §3) with the CAT claims this crate knows.
pub(crate) fn claims_from_cbor(v: &Value) -> Result<Claims, TokenError> {
    let Value::Map(entries) = v else {
        return Err(TokenError::Malformed("CWT claims must be a map"));
    };
    let mut c = Claims::default();
    for (k, v) in entries {
        let key = match k {
            Value::Int(k) => *k,
            // Text-keyed claims are not understood and ignored (RFC 8392 §3),
            // unless named in crit (checked below).
            Value::Text(_) => continue,
            _ => return Err(TokenError::Malformed("claim key must be int or text")),
        };
        if let Some((_, name)) = UNENFORCED.iter().find(|(k, _)| *k == key) {
            return Err(TokenError::UnsupportedClaim(format!("{name} ({key})")));
        }
        let Ok(key64) = i64::try_from(key) else {
            continue;
        };
        match key64 {
            claim_key::ISS => c.iss = Some(text(v, "iss must be text")?),
            claim_key::SUB => c.sub = Some(text(v, "sub must be text")?),
            claim_key::AUD => c.aud = texts(v, "aud must be text or array of text")?,
            claim_key::EXP => c.exp = Some(numeric_date(v, "exp must be a NumericDate")?),
            claim_key::NBF => c.nbf = Some(numeric_date(v, "nbf must be a NumericDate")?),
            claim_key::IAT => c.iat = Some(numeric_date(v, "iat must be a NumericDate")?),
            claim_key::CTI => match v {
                Value::Bytes(b) if !b.is_empty() && b.len() <= MAX_TOKEN_ID_LEN => {
                    c.id = Some(b.clone());
                }
                _ => return Err(TokenError::Malformed("cti must be 1 to 128 bytes")),
            },
            claim_key::CRIT => {
                let Value::Array(crit) = v else {
                    return Err(TokenError::Malformed("crit must be an array"));
                };
                for item in crit {
                    match item {
                        Value::Int(i) if UNDERSTOOD.iter().any(|u| i128::from(*u) == *i) => {}
                        Value::Int(i) => {
                            return Err(TokenError::UnsupportedClaim(format!("critical {i}")));
                        }
                        Value::Text(t) => {
                            return Err(TokenError::UnsupportedClaim(format!("critical {t:?}")));
                        }
                        _ => return Err(TokenError::Malformed("crit entry")),
                    }
                }
            }
            claim_key::CATREPLAY => {
                c.catreplay = Some(match v {
                    Value::Int(i) => ReplayPolicy::from_value(*i)
                        .ok_or(TokenError::Unsupported("catreplay value"))?,
                    _ => return Err(TokenError::Malformed("catreplay must be an integer")),
                });
            }
            claim_key::CATV => {
                let version = uint(v, "catv must be an integer")?;
                if version != 1 {
                    return Err(TokenError::Unsupported("catv other than 1"));
                }
                c.catv = Some(version);
            }
            claim_key::CATU => c.catu = Some(catu_from_cbor(v)?),
            claim_key::CATR => c.catr = Some(catr_from_cbor(v)?),
            CLAIM_STREAM => {
                let stream = text(v, "stream must be text")?;
                if !is_valid_stream_name(&stream) {
                    return Err(TokenError::Malformed("invalid stream name"));
                }
                c.stream = Some(stream);
            }
            CLAIM_ACCESS => {
                c.access = Some(
                    Access::parse(&text(v, "access must be text")?)
                        .ok_or(TokenError::Malformed("access must be publish or play"))?,
                );
            }
            _ => {}
        }
    }
    Ok(c)
}

fn int(i: impl Into<i128>) -> Value {
    Value::Int(i.into())
}

fn catu_to_cbor(catu: &Catu) -> Value {
    Value::Map(
        catu.rules
            .iter()
            .map(|(component, matches)| {
                let list = matches
                    .iter()
                    .map(|m| {
                        let value = match m {
                            UriMatch::Exact(t)
                            | UriMatch::Prefix(t)
                            | UriMatch::Suffix(t)
                            | UriMatch::Contains(t) => Value::Text(t.clone()),
                            UriMatch::Sha256(h) | UriMatch::Sha512_256(h) => {
                                Value::Bytes(h.to_vec())
                            }
                        };
                        (int(m.key()), value)
                    })
                    .collect();
                (int(component.key()), Value::Map(list))
            })
            .collect(),
    )
}

fn catr_to_cbor(catr: &Catr) -> Value {
    let mut m = vec![(int(0), int(catr.kind.value())), (int(1), int(catr.expadd))];
    if let Some(d) = catr.deadline {
        m.push((int(2), int(d)));
    }
    if let Some(n) = &catr.cookie_name {
        m.push((int(3), Value::Text(n.clone())));
    }
    if let Some(n) = &catr.header_name {
        m.push((int(4), Value::Text(n.clone())));
    }
    let list = |v: &[String]| Value::Array(v.iter().cloned().map(Value::Text).collect());
    if !catr.cookie_params.is_empty() {
        m.push((int(5), list(&catr.cookie_params)));
    }
    if !catr.header_params.is_empty() {
        m.push((int(6), list(&catr.header_params)));
    }
    if let Some(code) = catr.status_code {
        m.push((int(7), int(code)));
    }
    Value::Map(m)
}

/// Encode claims as a CWT claims map.
pub(crate) fn claims_to_cbor(c: &Claims) -> Value {
    let mut m = Vec::new();
    let mut put = |k: i64, v: Value| m.push((int(k), v));
    if let Some(v) = &c.iss {
        put(claim_key::ISS, Value::Text(v.clone()));
    }
    if let Some(v) = &c.sub {
        put(claim_key::SUB, Value::Text(v.clone()));
    }
    match c.aud.as_slice() {
        [] => {}
        [one] => put(claim_key::AUD, Value::Text(one.clone())),
        many => put(
            claim_key::AUD,
            Value::Array(many.iter().cloned().map(Value::Text).collect()),
        ),
    }
    if let Some(v) = c.exp {
        put(claim_key::EXP, int(v));
    }
    if let Some(v) = c.nbf {
        put(claim_key::NBF, int(v));
    }
    if let Some(v) = c.iat {
        put(claim_key::IAT, int(v));
    }
    if let Some(v) = &c.id {
        put(claim_key::CTI, Value::Bytes(v.clone()));
    }
    if let Some(v) = c.catreplay {
        put(claim_key::CATREPLAY, int(v.value()));
    }
    if let Some(v) = c.catv {
        put(claim_key::CATV, int(v));
    }
    if let Some(v) = &c.catu {
        put(claim_key::CATU, catu_to_cbor(v));
    }
    if let Some(v) = &c.catr {
        put(claim_key::CATR, catr_to_cbor(v));
    }
    if let Some(v) = &c.stream {
        put(CLAIM_STREAM, Value::Text(v.clone()));
    }
    if let Some(v) = c.access {
        put(CLAIM_ACCESS, Value::Text(v.as_str().to_owned()));
    }
    Value::Map(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Key, KeySet};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8392 Appendix A.4 (MACed CWT) with the A.2.2 key "Symmetric256".
    const RFC8392_A4: &str = "d83dd18443a10104a1044c53796d6d65747269633235365850a70175636f6170\
        3a2f2f61732e6578616d706c652e636f6d02656572696b77037818636f61703a\
        2f2f6c696768742e6578616d706c652e636f6d041a5612aeb0051a5610d9f006\
        1a5610d9f007420b7148093101ef6d789200";
    const RFC8392_KEY: &str = "403697de87af64611c1d32a05dab0fe1fcb715a86ab435f1ec99192d79569388";

    #[test]
    fn rfc8392_a4_structure_claims_and_mac() {
        let bytes = hex(RFC8392_A4);
        // The example uses HMAC 256/64 (alg 4): parse without the alg check,
        // recompute the MAC_structure and compare the truncated tag.
        let mac0 = parse_mac0(&bytes, false).unwrap();
        assert_eq!(mac0.kid, b"Symmetric256");
        assert_eq!(mac0.protected, hex("a10104"));
        let key = KeySet::parse(&format!(
            "Symmetric256:HS256:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex(RFC8392_KEY))
        ))
        .unwrap();
        let full = key
            .sign("Symmetric256", &mac0_input(&mac0.protected, &mac0.payload))
            .unwrap();
        assert_eq!(&full[..8], mac0.tag.as_slice());
        assert_eq!(mac0.tag, hex("093101ef6d789200"));
        let claims = claims_from_cbor(&cbor::decode(&mac0.payload).unwrap()).unwrap();
        assert_eq!(claims.iss.as_deref(), Some("coap://as.example.com"));
        assert_eq!(claims.sub.as_deref(), Some("erikw"));
        assert_eq!(claims.aud, vec!["coap://light.example.com".to_owned()]);
        assert_eq!(claims.exp, Some(1_444_064_944));
        assert_eq!(claims.nbf, Some(1_443_944_944));
        assert_eq!(claims.iat, Some(1_443_944_944));
        assert_eq!(claims.id, Some(vec![0x0b, 0x71]));
        // Through the public API, the 64-bit tag algorithm is refused.
        let keys = {
            let mut k = KeySet::new();
            k.insert(Key::hs256("Symmetric256", &hex(RFC8392_KEY)).unwrap())
                .unwrap();
            k
        };
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        assert!(matches!(
            crate::verify(&text, &keys, &VerifyOptions::new(1_444_000_000)),
            Err(TokenError::Unsupported(_))
        ));
    }

    #[test]
    fn mint_is_deterministic_and_tagged() {
        let mut keys = KeySet::new();
        keys.insert(Key::hs256("k1", &[1u8; 32]).unwrap()).unwrap();
        let req =
            MintRequest::for_stream("cam1", Access::Play, 1_700_000_000, 300, *b"id-1").unwrap();
        let a = mint(&req, &keys).unwrap();
        assert_eq!(a, mint(&req, &keys).unwrap());
        let bytes = decode_b64url(&a).unwrap();
        // 61(17([...])): d8 3d d1 84.
        assert_eq!(&bytes[..4], &[0xd8, 0x3d, 0xd1, 0x84]);
        let mac0 = parse_mac0(&bytes, true).unwrap();
        assert_eq!(mac0.kid, b"k1");
        assert_eq!(mac0.tag.len(), 32);
    }

    #[test]
    fn crit_and_unenforced_claims() {
        let base = |extra: Vec<(Value, Value)>| {
            let mut m = vec![(int(4), int(2_000_000_000u64))];
            m.extend(extra);
            claims_from_cbor(&Value::Map(m))
        };
        assert!(base(vec![(int(45), Value::Array(vec![int(312), int(4)]))]).is_ok());
        assert!(matches!(
            base(vec![(int(45), Value::Array(vec![int(999)]))]),
            Err(TokenError::UnsupportedClaim(_))
        ));
        assert!(matches!(
            base(vec![(int(311), Value::Text("10.0.0.0/8".into()))]),
            Err(TokenError::UnsupportedClaim(_))
        ));
        assert!(matches!(
            base(vec![(int(310), int(2))]),
            Err(TokenError::Unsupported(_))
        ));
        // Unknown, non-critical claims are ignored (RFC 8392 §3).
        assert!(base(vec![(int(-70_000), Value::Text("x".into()))]).is_ok());
        assert!(base(vec![(Value::Text("x".into()), int(1))]).is_ok());
        assert!(matches!(
            base(vec![(
                int(312),
                Value::Map(vec![(
                    int(3),
                    Value::Map(vec![(int(4), Value::Array(vec![]))])
                )])
            )]),
            Err(TokenError::Unsupported(_))
        ));
    }

    #[test]
    fn claims_round_trip() {
        let mut c = Claims {
            iss: Some("livestack".into()),
            sub: Some("user-1".into()),
            aud: vec!["edge".into(), "origin".into()],
            exp: Some(2_000_000_000),
            nbf: Some(1_000),
            iat: Some(1_000),
            id: Some(vec![1, 2, 3]),
            stream: Some("cam1".into()),
            access: Some(Access::Publish),
            catv: Some(1),
            catu: Some(Catu::path_prefix("/live/cam1/")),
            catr: Some(Catr {
                cookie_name: Some("cat".into()),
                cookie_params: vec!["Secure".into(), "Path=/".into()],
                status_code: Some(302),
                ..Catr::automatic(600, 120)
            }),
            catreplay: Some(ReplayPolicy::ReuseDetection),
        };
        let back =
            claims_from_cbor(&cbor::decode(&cbor::encode(&claims_to_cbor(&c))).unwrap()).unwrap();
        assert_eq!(back, c);
        c.aud.truncate(1);
        let back = claims_from_cbor(&claims_to_cbor(&c)).unwrap();
        assert_eq!(back, c);
    }
}
