//! Keys, key sets (rotation by `kid`) and the shared key-configuration
//! string format.
//!
//! # Key configuration format
//!
//! One string configures the CLI, the edge host and the WASM components:
//! entries separated by `,` (whitespace around entries is ignored), each
//!
//! ```text
//! kid:ALG:base64url(material)            HS256 secret, ES256 by length
//! kid:ALG:KIND:base64url(material)       KIND = secret | private | public
//! ```
//!
//! | `ALG`   | `KIND`    | material (raw bytes, base64url without padding) |
//! |---------|-----------|--------------------------------------------------|
//! | `HS256` | `secret`  | HMAC secret, at least 32 bytes (RFC 7518 §3.2)   |
//! | `ES256` | `private` | P-256 private scalar, 32 bytes big-endian        |
//! | `ES256` | `public`  | SEC1 point, 33 (compressed) or 65 bytes          |
//! | `EdDSA` | `private` | Ed25519 seed, 32 bytes (RFC 8032 §5.1.5)         |
//! | `EdDSA` | `public`  | Ed25519 public key, 32 bytes                     |
//!
//! `KIND` may be left out for `HS256` (always a secret) and `ES256` (the
//! length tells); it is required for `EdDSA`, whose seeds and public keys
//! have the same length. A `kid` is 1 to 64 characters without `:`, `,` or
//! whitespace, unique in the set.
//!
//! Rotation: the **first** private/secret key listed for an algorithm is the
//! one that mints; every listed key verifies. To rotate, prepend the new key,
//! keep the old one until its last token expired, then drop it.
//!
//! ```
//! # use livestack_tokens::{KeySet, Alg};
//! let keys: KeySet = "k2:HS256:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY,\
//!                     k1:HS256:secret:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA"
//!     .parse()?;
//! assert_eq!(keys.signing_key(Alg::Hs256).map(|k| k.kid()), Some("k2"));
//! # Ok::<_, livestack_tokens::TokenError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::TokenError;

/// Minimum HS256 secret length in bytes (RFC 7518 §3.2: a key of the same
/// size as the hash output or larger).
pub const MIN_HMAC_SECRET_LEN: usize = 32;
/// Maximum `kid` length in bytes.
pub const MAX_KID_LEN: usize = 64;

/// A signature or MAC algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Alg {
    /// HMAC with SHA-256, full 32-byte tag: JOSE `HS256` (RFC 7518 §3.2),
    /// COSE `HMAC 256/256` = 5 (RFC 9053 §3.1).
    Hs256,
    /// ECDSA P-256 with SHA-256: JOSE `ES256` (RFC 7518 §3.4), signature
    /// `r || s` (64 bytes).
    Es256,
    /// Ed25519: JOSE `EdDSA` (RFC 8037 §3.1).
    EdDsa,
}

impl Alg {
    /// The JOSE `alg` name (`HS256`, `ES256`, `EdDSA`).
    pub fn jose_name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// Parse a JOSE `alg` name (case-sensitive, RFC 7515 §4.1.1).
    pub fn from_jose_name(name: &str) -> Option<Alg> {
        match name {
            "HS256" => Some(Alg::Hs256),
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jose_name())
    }
}

/// The key bytes, decoded and checked.
#[derive(Clone)]
pub(crate) enum Material {
    Secret(Zeroizing<Vec<u8>>),
    Es256Private(p256::ecdsa::SigningKey),
    Es256Public(p256::ecdsa::VerifyingKey),
    Ed25519Private(ed25519_dalek::SigningKey),
    Ed25519Public(ed25519_dalek::VerifyingKey),
}

/// One key: a `kid`, its algorithm and the checked key material.
///
/// `Debug` never prints secrets.
#[derive(Clone)]
pub struct Key {
    kid: String,
    material: Material,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .field("can_sign", &self.can_sign())
            .finish_non_exhaustive()
    }
}

fn check_kid(kid: &str) -> Result<(), TokenError> {
    if kid.is_empty() || kid.len() > MAX_KID_LEN {
        return Err(TokenError::KeyError(format!(
            "kid must be 1 to {MAX_KID_LEN} bytes"
        )));
    }
    if kid
        .chars()
        .any(|c| c == ':' || c == ',' || c.is_whitespace() || c.is_control())
    {
        return Err(TokenError::KeyError(format!(
            "kid {kid:?} contains ':', ',', whitespace or a control character"
        )));
    }
    Ok(())
}

impl Key {
    /// An HS256 secret; at least [`MIN_HMAC_SECRET_LEN`] bytes.
    pub fn hs256(kid: impl Into<String>, secret: &[u8]) -> Result<Key, TokenError> {
        let kid = kid.into();
        check_kid(&kid)?;
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(TokenError::KeyError(format!(
                "key {kid:?}: HS256 secret must be at least {MIN_HMAC_SECRET_LEN} bytes"
            )));
        }
        Ok(Key {
            kid,
            material: Material::Secret(Zeroizing::new(secret.to_vec())),
        })
    }

    /// An ES256 private key from its 32-byte big-endian scalar (`d` of a JWK).
    pub fn es256_private(kid: impl Into<String>, scalar: &[u8]) -> Result<Key, TokenError> {
        let kid = kid.into();
        check_kid(&kid)?;
        let key = p256::ecdsa::SigningKey::from_slice(scalar).map_err(|_| {
            TokenError::KeyError(format!(
                "key {kid:?}: ES256 private key must be a 32-byte scalar in [1, n)"
            ))
        })?;
        Ok(Key {
            kid,
            material: Material::Es256Private(key),
        })
    }

    /// An ES256 public key from a SEC1 point (33 or 65 bytes).
    pub fn es256_public(kid: impl Into<String>, sec1: &[u8]) -> Result<Key, TokenError> {
        let kid = kid.into();
        check_kid(&kid)?;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
            .map_err(|_| TokenError::KeyError(format!("key {kid:?}: not a SEC1 P-256 point")))?;
        Ok(Key {
            kid,
            material: Material::Es256Public(key),
        })
    }

    /// An Ed25519 private key from its 32-byte seed (`d` of an OKP JWK).
    pub fn ed25519_private(kid: impl Into<String>, seed: &[u8]) -> Result<Key, TokenError> {
        let kid = kid.into();
        check_kid(&kid)?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| {
            TokenError::KeyError(format!("key {kid:?}: Ed25519 seed must be 32 bytes"))
        })?;
        Ok(Key {
            kid,
            material: Material::Ed25519Private(ed25519_dalek::SigningKey::from_bytes(&seed)),
        })
    }

    /// An Ed25519 public key (32 bytes, `x` of an OKP JWK).
    pub fn ed25519_public(kid: impl Into<String>, public: &[u8]) -> Result<Key, TokenError> {
        let kid = kid.into();
        check_kid(&kid)?;
        let key = <[u8; 32]>::try_from(public)
            .ok()
            .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(|| {
                TokenError::KeyError(format!("key {kid:?}: not an Ed25519 public key"))
            })?;
        Ok(Key {
            kid,
            material: Material::Ed25519Public(key),
        })
    }

    /// Parse one entry of the [key configuration format](self).
    pub fn parse(entry: &str) -> Result<Key, TokenError> {
        let parts: Vec<&str> = entry.trim().split(':').collect();
        let (kid, alg, kind, b64) = match parts.as_slice() {
            [kid, alg, b64] => (*kid, *alg, None, *b64),
            [kid, alg, kind, b64] => (*kid, *alg, Some(*kind), *b64),
            _ => {
                return Err(TokenError::KeyError(
                    "key entry must be kid:ALG[:KIND]:base64url".to_owned(),
                ));
            }
        };
        check_kid(kid)?;
        let alg = Alg::from_jose_name(alg).ok_or_else(|| {
            TokenError::KeyError(format!(
                "key {kid:?}: unknown algorithm (HS256, ES256 or EdDSA)"
            ))
        })?;
        let bytes = Zeroizing::new(decode_b64url(b64).ok_or_else(|| {
            TokenError::KeyError(format!("key {kid:?}: material is not base64url"))
        })?);
        match (alg, kind) {
            (Alg::Hs256, None | Some("secret")) => Key::hs256(kid, &bytes),
            (Alg::Es256, Some("private")) => Key::es256_private(kid, &bytes),
            (Alg::Es256, Some("public")) => Key::es256_public(kid, &bytes),
            (Alg::Es256, None) if bytes.len() == 32 => Key::es256_private(kid, &bytes),
            (Alg::Es256, None) => Key::es256_public(kid, &bytes),
            (Alg::EdDsa, Some("private")) => Key::ed25519_private(kid, &bytes),
            (Alg::EdDsa, Some("public")) => Key::ed25519_public(kid, &bytes),
            (Alg::EdDsa, None) => Err(TokenError::KeyError(format!(
                "key {kid:?}: EdDSA keys need KIND private or public"
            ))),
            _ => Err(TokenError::KeyError(format!(
                "key {kid:?}: KIND must be secret (HS256), private or public"
            ))),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key is for.
    pub fn alg(&self) -> Alg {
        match self.material {
            Material::Secret(_) => Alg::Hs256,
            Material::Es256Private(_) | Material::Es256Public(_) => Alg::Es256,
            Material::Ed25519Private(_) | Material::Ed25519Public(_) => Alg::EdDsa,
        }
    }

    /// The key's handle: id, algorithm, whether it can sign.
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            kid: self.kid.clone(),
            alg: self.alg(),
            can_sign: self.can_sign(),
        }
    }

    /// Whether this key can mint (a secret or a private key).
    pub fn can_sign(&self) -> bool {
        matches!(
            self.material,
            Material::Secret(_) | Material::Es256Private(_) | Material::Ed25519Private(_)
        )
    }

    /// The public half of an asymmetric key, as raw bytes (ES256: 65-byte
    /// uncompressed SEC1 point; EdDSA: 32 bytes). `None` for HS256 secrets.
    pub fn public_key_bytes(&self) -> Option<Vec<u8>> {
        match &self.material {
            Material::Secret(_) => None,
            Material::Es256Private(k) => Some(
                k.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
            ),
            Material::Es256Public(k) => Some(k.to_encoded_point(false).as_bytes().to_vec()),
            Material::Ed25519Private(k) => Some(k.verifying_key().to_bytes().to_vec()),
            Material::Ed25519Public(k) => Some(k.to_bytes().to_vec()),
        }
    }

    /// The verify-only form of this key (same `kid`), as a
    /// [configuration entry](self): give it to verifiers that must not mint.
    /// `None` for HS256 secrets, which have no public half.
    pub fn public_config_entry(&self) -> Option<String> {
        let public = self.public_key_bytes()?;
        Some(format!(
            "{}:{}:public:{}",
            self.kid,
            self.alg(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public)
        ))
    }

    pub(crate) fn material(&self) -> &Material {
        &self.material
    }
}

/// Decode base64url with or without padding; `None` on any other character.
pub(crate) fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s).ok()
}

/// The configured keys, looked up by `kid`, with one signing key per
/// algorithm (see the [module docs](self) for rotation).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    signing: Vec<(Alg, usize)>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> KeySet {
        KeySet::default()
    }

    /// Add a key. The first signing-capable key of each algorithm becomes
    /// that algorithm's signing key. A duplicate `kid` is an error.
    pub fn insert(&mut self, key: Key) -> Result<(), TokenError> {
        if self.get(key.kid()).is_some() {
            return Err(TokenError::KeyError(format!(
                "duplicate kid {:?}",
                key.kid()
            )));
        }
        if key.can_sign() && !self.signing.iter().any(|(a, _)| *a == key.alg()) {
            self.signing.push((key.alg(), self.keys.len()));
        }
        self.keys.push(key);
        Ok(())
    }

    /// Make the key `kid` the signing key of its algorithm.
    pub fn set_signing(&mut self, kid: &str) -> Result<(), TokenError> {
        let index = self
            .keys
            .iter()
            .position(|k| k.kid() == kid)
            .ok_or_else(|| TokenError::UnknownKey(kid.to_owned()))?;
        let key = &self.keys[index];
        if !key.can_sign() {
            return Err(TokenError::KeyError(format!(
                "key {kid:?} is a public key and cannot sign"
            )));
        }
        let alg = key.alg();
        self.signing.retain(|(a, _)| *a != alg);
        self.signing.push((alg, index));
        Ok(())
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid() == kid)
    }

    /// The key whose `kid` has these bytes (COSE `kid` is a byte string).
    pub fn get_bytes(&self, kid: &[u8]) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid().as_bytes() == kid)
    }

    /// The signing key of an algorithm.
    pub fn signing_key(&self, alg: Alg) -> Option<&Key> {
        self.signing
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|&(_, i)| &self.keys[i])
    }

    /// All keys, in configuration order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Parse a [key configuration string](self). Empty entries are skipped.
    pub fn parse(config: &str) -> Result<KeySet, TokenError> {
        let mut set = KeySet::new();
        for entry in config.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            set.insert(Key::parse(entry)?)?;
        }
        Ok(set)
    }
}

/// What a configured key is, without its material: the handle a
/// [`KeyStore`] gives out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key id.
    pub kid: String,
    /// The algorithm the key is for.
    pub alg: Alg,
    /// Whether it can mint (a secret or a private key).
    pub can_sign: bool,
}

/// Keys used by handle: the token code names a key by `kid` and asks the
/// store to MAC, sign or verify, and never needs the key material itself.
///
/// [`KeySet`] is the in-process store (CLI, origin, edge host). The edge
/// components implement it over the host's `livestack:edge/keys` import,
/// so a module can use the keys its job needs without ever holding their
/// bytes.
///
/// Signatures are raw: HS256 a 32-byte HMAC-SHA-256 tag (RFC 7518 §3.2,
/// RFC 9053 §3.1), ES256 64 bytes `r || s` (RFC 7518 §3.4, RFC 6979
/// deterministic), EdDSA 64 bytes (RFC 8032 §5.1.6).
pub trait KeyStore {
    /// The key with this `kid`, `None` if not configured.
    fn key_info(&self, kid: &str) -> Option<KeyInfo>;

    /// The `kid` of the key that mints with `alg` (rotation: the first
    /// private or secret key configured for it).
    fn signing_kid(&self, alg: Alg) -> Option<String>;

    /// MAC or sign `message` with the key `kid`.
    ///
    /// # Errors
    ///
    /// [`TokenError::UnknownKey`], or [`TokenError::KeyError`] for a public
    /// key.
    fn sign(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, TokenError>;

    /// Check `signature` over `message` with the key `kid` (a MAC in
    /// constant time).
    ///
    /// # Errors
    ///
    /// [`TokenError::BadSignature`] if it does not verify,
    /// [`TokenError::UnknownKey`] for an unknown `kid`.
    fn verify(&self, kid: &str, message: &[u8], signature: &[u8]) -> Result<(), TokenError>;
}

impl KeyStore for KeySet {
    fn key_info(&self, kid: &str) -> Option<KeyInfo> {
        self.get(kid).map(Key::info)
    }

    fn signing_kid(&self, alg: Alg) -> Option<String> {
        self.signing_key(alg).map(|k| k.kid().to_owned())
    }

    fn sign(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        let key = self
            .get(kid)
            .ok_or_else(|| TokenError::UnknownKey(kid.to_owned()))?;
        crate::jwt::sign(key, message)
    }

    fn verify(&self, kid: &str, message: &[u8], signature: &[u8]) -> Result<(), TokenError> {
        let key = self
            .get(kid)
            .ok_or_else(|| TokenError::UnknownKey(kid.to_owned()))?;
        crate::jwt::verify_signature(key, message, signature)
    }
}

/// Resolve the key to mint with: `kid` if given (it must be able to sign
/// and be for `alg` when `alg` is given), else the signing key of `alg`.
pub(crate) fn resolve_signer<K: KeyStore + ?Sized>(
    keys: &K,
    kid: Option<&str>,
    alg: Option<Alg>,
) -> Result<KeyInfo, TokenError> {
    let key = match (kid, alg) {
        (Some(kid), _) => keys
            .key_info(kid)
            .ok_or_else(|| TokenError::UnknownKey(kid.to_owned()))?,
        (None, Some(alg)) => keys
            .signing_kid(alg)
            .and_then(|kid| keys.key_info(&kid))
            .ok_or_else(|| TokenError::KeyError(format!("no signing key for {alg}")))?,
        (None, None) => {
            return Err(TokenError::InvalidOptions("give a kid or an alg to mint"));
        }
    };
    if !key.can_sign {
        return Err(TokenError::KeyError(format!(
            "key {:?} is a public key and cannot sign",
            key.kid
        )));
    }
    if let Some(alg) = alg
        && alg != key.alg
    {
        return Err(TokenError::AlgMismatch {
            kid: key.kid,
            expected: key.alg,
            found: alg,
        });
    }
    Ok(key)
}

impl FromStr for KeySet {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<KeySet, TokenError> {
        KeySet::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B64_32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

    #[test]
    fn parses_all_forms() {
        let ed_seed = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
        let ed_pub = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let cfg = format!(
            " h1:HS256:{B64_32} , h2:HS256:secret:{B64_32}=, e1:ES256:{B64_32},\
             d1:EdDSA:private:{ed_seed},d2:EdDSA:public:{ed_pub},"
        );
        let set = KeySet::parse(&cfg).unwrap();
        assert_eq!(set.len(), 5);
        assert_eq!(set.signing_key(Alg::Hs256).unwrap().kid(), "h1");
        assert_eq!(set.signing_key(Alg::Es256).unwrap().kid(), "e1");
        assert_eq!(set.signing_key(Alg::EdDsa).unwrap().kid(), "d1");
        // RFC 8037 A.2: the public key derived from the A.1 seed.
        assert_eq!(
            set.get("d1").unwrap().public_config_entry().unwrap(),
            format!("d1:EdDSA:public:{ed_pub}")
        );
        let e1_pub = set.get("e1").unwrap().public_config_entry().unwrap();
        let public = Key::parse(&e1_pub).unwrap();
        assert!(!public.can_sign());
        assert_eq!(public.alg(), Alg::Es256);
    }

    #[test]
    fn rejects_bad_entries() {
        for bad in [
            "k:HS256:c2hvcnQ",                                             // 5-byte secret
            "k:RS256:MDEy",                                                // unknown alg
            "k:none:MDEy",                                                 // none
            "k:EdDSA:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",         // kind required
            "k:ES256:public:MDEy",                                         // not a point
            "k:ES256:private:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", // zero scalar
            "k:HS256:not+base64/",                                         // wrong alphabet
            ":HS256:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",          // empty kid
            "k:HS256:private:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
            "just-garbage",
        ] {
            assert!(
                matches!(KeySet::parse(bad), Err(TokenError::KeyError(_))),
                "{bad}"
            );
        }
        let dup = format!("a:HS256:{B64_32},a:HS256:{B64_32}");
        assert!(KeySet::parse(&dup).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let key = Key::hs256("k", &[7u8; 32]).unwrap();
        let text = format!("{key:?}");
        assert!(text.contains("HS256") || text.contains("Hs256"));
        assert!(!text.contains("7, 7"));
    }

    #[test]
    fn set_signing_rotates() {
        let mut set = KeySet::parse(&format!("a:HS256:{B64_32},b:HS256:{B64_32}")).unwrap();
        assert_eq!(set.signing_key(Alg::Hs256).unwrap().kid(), "a");
        set.set_signing("b").unwrap();
        assert_eq!(set.signing_key(Alg::Hs256).unwrap().kid(), "b");
        assert!(matches!(
            set.set_signing("zz"),
            Err(TokenError::UnknownKey(_))
        ));
    }
}
