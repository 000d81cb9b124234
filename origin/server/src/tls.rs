//! TLS for the HTTPS listener: a configured PEM certificate and key, or a
//! self-signed certificate generated at start.

use std::{path::Path, sync::Arc};

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

/// Generates a self-signed ECDSA P-256 certificate for `localhost`,
/// `127.0.0.1` and `::1`.
///
/// # Errors
/// [`TlsError::Generate`].
pub fn self_signed() -> Result<CertAndKey, TlsError> {
    let ck = rcgen::generate_simple_self_signed(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    Ok(CertAndKey {
        chain: vec![ck.cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der())),
    })
}

/// A TLS acceptor offering ALPN `h2` and `http/1.1`.
///
/// # Errors
/// [`TlsError::Rustls`].
pub fn acceptor(ck: CertAndKey) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(ck.chain, ck.key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
