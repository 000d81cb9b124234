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
