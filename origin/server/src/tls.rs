//! TLS for the HTTPS listener: a configured PEM certificate and key, or a
//! self-signed certificate generated at start.

use std::{path::Path, sync::Arc, time::Duration};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Errors while setting up TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds no usable item.
    #[error("cannot load {what} from {path}: {reason}")]
    Pem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Certificate generation failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate/key pair.
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
    /// The TLS configuration cannot be used for QUIC (no TLS 1.3 suite).
    #[error("TLS configuration unusable for QUIC: {0}")]
    Quic(String),
}

/// A certificate chain and its key.
#[derive(Debug)]
pub struct CertAndKey {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

/// Loads a PEM chain and key.
///
/// # Errors
/// [`TlsError::Pem`].
pub fn load_pem(cert: &Path, key: &Path) -> Result<CertAndKey, TlsError> {
    let pem_err = |what, path: &Path, reason: String| TlsError::Pem {
        what,
        path: path.display().to_string(),
        reason,
    };
    let cert_bytes =
        std::fs::read(cert).map_err(|e| pem_err("certificate", cert, e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_err("certificate", cert, "no CERTIFICATE block".into()));
    }
    let key_bytes = std::fs::read(key).map_err(|e| pem_err("private key", key, e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut key_bytes.as_slice())
        .map_err(|e| pem_err("private key", key, e.to_string()))?
        .ok_or_else(|| pem_err("private key", key, "no PRIVATE KEY block".into()))?;
    Ok(CertAndKey { chain, key })
}

/// Validity of the self-signed certificate: at most 14 days, so that a
/// browser accepts it through WebTransport's `serverCertificateHashes`
/// (W3C WebTransport §4.4.1: ECDSA P-256 and a validity period of at most
/// two weeks). It starts an hour before generation (clock skew).
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(13 * 24 * 3600);

/// Generates a self-signed ECDSA P-256 certificate for `localhost`,
/// `127.0.0.1` and `::1`, valid for [`SELF_SIGNED_VALIDITY`] from an hour
/// ago. A process that runs longer must restart (or be given a
/// certificate) before it expires.
///
/// # Errors
/// [`TlsError::Generate`].
pub fn self_signed() -> Result<CertAndKey, TlsError> {
    let mut params = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + SELF_SIGNED_VALIDITY;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok(CertAndKey {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// SHA-256 of the leaf certificate (DER), lower-case hex: the value a
/// browser passes in WebTransport's `serverCertificateHashes`, served at
/// `/certificate.sha256`.
pub fn leaf_sha256_hex(ck: &CertAndKey) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(ck.chain.first().map_or(&[][..], |c| c.as_ref()));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The rustls server configuration for `ck` with the ring provider, TLS
/// 1.2 and 1.3, offering `alpn`.
fn server_config(ck: CertAndKey, alpn: &[&[u8]]) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(ck.chain, ck.key)?;
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(config)
}

/// The QUIC server crypto for HTTP/3: TLS 1.3 only (RFC 9001 §4.2), ALPN
/// `h3` (RFC 9114 §3.1), no 0-RTT (early data could be replayed).
///
/// # Errors
/// [`TlsError::Rustls`], or [`TlsError::Quic`] if rustls's configuration
/// cannot carry QUIC.
pub fn quic_server_config(ck: CertAndKey) -> Result<quinn::ServerConfig, TlsError> {
    quic_server_config_with_alpn(ck, &[b"h3"])
}

/// As [`quic_server_config`], offering the ALPN protocols `alpn`.
///
/// # Errors
/// As [`quic_server_config`].
pub fn quic_server_config_with_alpn(
    ck: CertAndKey,
    alpn: &[&[u8]],
) -> Result<quinn::ServerConfig, TlsError> {
    let mut config = server_config(ck, alpn)?;
    // No 0-RTT: early data can be replayed (RFC 9001 §9.2).
    config.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(config)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

/// A QUIC connection with no packet received for this long is closed
/// (`max_idle_timeout`, RFC 9000 §10.1), on the HTTP/3 and the Media over
/// QUIC listeners. Longer than any held LL-HLS request (a blocking reload
/// waits at most three target durations), so a client that sends no
/// keep-alive while it waits is not cut.
pub const QUIC_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// `config` with the transport parameters of a listener under `limits`:
/// at most `max_h2_streams` concurrent bidirectional streams (requests,
/// subscriptions) and `max_uni_streams` unidirectional ones per connection
/// (RFC 9000 §4.6), [`QUIC_IDLE_TIMEOUT`], and, with `keep_alive`, a PING
/// every third of it (RFC 9000 §10.1.2) so that an idle but present peer
/// is kept.
pub fn with_quic_transport(
    mut config: quinn::ServerConfig,
    limits: &livestack_listener::ListenerLimits,
    max_uni_streams: u32,
    keep_alive: bool,
) -> quinn::ServerConfig {
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(limits.max_h2_streams.into())
        .max_concurrent_uni_streams(max_uni_streams.into())
        .keep_alive_interval(keep_alive.then_some(QUIC_IDLE_TIMEOUT / 3))
        .max_idle_timeout(Some(
            QUIC_IDLE_TIMEOUT
                .try_into()
                .expect("30 s is a valid QUIC idle timeout"),
        ));
    config.transport_config(Arc::new(transport));
    config
}

/// A TLS acceptor offering ALPN `h2` and `http/1.1`.
///
/// # Errors
/// [`TlsError::Rustls`].
pub fn acceptor(ck: CertAndKey) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let config = server_config(ck, &[b"h2", b"http/1.1"])?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Clone for CertAndKey {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// A server certificate verifier that accepts exactly the end-entity
/// certificates whose SHA-256 is listed: how WebTransport's
/// `serverCertificateHashes` pins a self-signed certificate (W3C
/// WebTransport §4.4), and how one origin trusts another's certificate
/// as the control plane's registry advertises it. Signatures are still
/// checked (the peer holds the key).
#[derive(Debug)]
pub struct PinnedCertificates {
    sha256: Vec<[u8; 32]>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl PinnedCertificates {
    /// A verifier for certificates with the SHA-256 hashes `sha256_hex`
    /// (lower- or upper-case hex, 64 digits each; others are ignored).
    pub fn new<'a>(sha256_hex: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            sha256: sha256_hex.into_iter().filter_map(parse_sha256).collect(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    /// True when no valid hash was given (nothing would verify).
    pub fn is_empty(&self) -> bool {
        self.sha256.is_empty()
    }
}

/// A 64-digit hex SHA-256.
fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl rustls::client::danger::ServerCertVerifier for PinnedCertificates {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if self.sha256.contains(&digest) {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A QUIC client configuration (TLS 1.3, ring) offering `alpn` and
/// trusting the certificates `pinned` accepts, with a PING every third of
/// [`QUIC_IDLE_TIMEOUT`] so that a quiet connection stays up.
///
/// # Errors
/// [`TlsError::Rustls`], or [`TlsError::Quic`] if rustls's configuration
/// cannot carry QUIC.
pub fn quic_client_config(
    pinned: PinnedCertificates,
    alpn: &[&[u8]],
) -> Result<quinn::ClientConfig, TlsError> {
    let provider = pinned.provider.clone();
    let crypto = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(pinned))
        .with_no_client_auth();
    quic_client(crypto, alpn)
}

/// As [`quic_client_config`], trusting the system's root certificates
/// (for a peer with a publicly trusted certificate).
///
/// # Errors
/// As [`quic_client_config`]; [`TlsError::Quic`] when no system root
/// certificate could be loaded.
pub fn quic_client_config_with_roots(alpn: &[&[u8]]) -> Result<quinn::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) =
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if added == 0 {
        return Err(TlsError::Quic("no system root certificates".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let crypto = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    quic_client(crypto, alpn)
}

fn quic_client(
    mut crypto: rustls::ClientConfig,
    alpn: &[&[u8]],
) -> Result<quinn::ClientConfig, TlsError> {
    crypto.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(QUIC_IDLE_TIMEOUT / 3))
        .max_idle_timeout(Some(
            QUIC_IDLE_TIMEOUT
                .try_into()
                .expect("30 s is a valid QUIC idle timeout"),
        ));
    config.transport_config(Arc::new(transport));
    Ok(config)
}
