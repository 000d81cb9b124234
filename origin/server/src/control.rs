//! The control plane: publish authorization and stream placement.
//!
//! Media servers consult the control plane; they do not own its state. This
//! module holds the trait every implementation satisfies and the in-memory
//! implementation, which is the embedded default for one box and the demo.
//! A Redis implementation (several nodes) satisfies the same trait.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::future::BoxFuture;

use crate::config::StreamKeyConfig;

/// Why the control plane refused a request. Each variant maps to one SRT
/// reject code (see [`crate::srt`]) and one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No credential was presented for a stream that requires one.
    #[error("a stream key is required to publish {0}")]
    Unauthorized(String),
    /// A credential was presented but it does not open this stream.
    #[error("the stream key does not open {0}")]
    Forbidden(String),
    /// The stream is already being published by another session.
    #[error("{0} is already live")]
    AlreadyLive(String),
    /// The control plane cannot be reached or failed.
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
}

/// A publish request as the ingest saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The broadcast NAME (of `live/NAME`).
    pub stream: String,
    /// A token presented in-band (SRT streamid `t=`/`token=`, WHIP bearer).
    pub token: Option<String>,
    /// True when the SRT caller asked for encryption: the stream key is then
    /// the passphrase and the handshake proves the caller knows it.
    pub encrypted: bool,
}

/// What an authorized publisher gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishGrant {
    /// For an encrypted SRT caller, the passphrase the handshake must use.
    pub passphrase: Option<String>,
}

/// Identifies one publishing session, so that only its owner releases a
/// claim.
pub type SessionId = u64;

/// The control-plane operations the origin needs.
///
/// Implementations are shared (`Arc<dyn ControlPlane>`) between tasks and
/// must be cheap to call concurrently.
pub trait ControlPlane: Send + Sync + 'static {
    /// Decides whether `req` may publish.
    ///
    /// # Errors
    /// [`ControlError::Unauthorized`], [`ControlError::Forbidden`],
    /// [`ControlError::Unavailable`].
    fn authorize_publish<'a>(
        &'a self,
        req: &'a PublishRequest,
    ) -> BoxFuture<'a, Result<PublishGrant, ControlError>>;

    /// Atomically claims `stream` for `session`: exactly one session of the
    /// whole deployment holds a live stream.
    ///
    /// # Errors
    /// [`ControlError::AlreadyLive`] when another session holds it.
    fn claim_stream<'a>(
        &'a self,
        stream: &'a str,
        session: SessionId,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// Releases `stream` if `session` holds it (a no-op otherwise).
    fn release_stream<'a>(
        &'a self,
        stream: &'a str,
        session: SessionId,
    ) -> BoxFuture<'a, Result<(), ControlError>>;

    /// True when publishing needs no key at all (nothing configured).
    fn is_open(&self) -> bool;
}

/// The in-memory control plane: keys from the configuration, claims in a
/// map. State lives as long as the process.
#[derive(Debug, Default)]
pub struct MemoryControlPlane {
    keys: Vec<StreamKeyConfig>,
    claims: Mutex<HashMap<String, SessionId>>,
}

impl MemoryControlPlane {
    /// A control plane holding `keys`; with none, publishing is open.
    pub fn new(keys: Vec<StreamKeyConfig>) -> Arc<Self> {
        Arc::new(Self {
            keys,
            claims: Mutex::default(),
        })
    }

    fn keys_for<'a>(&'a self, stream: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.stream == stream || k.stream == "*")
            .map(|k| k.key.as_str())
    }

    fn decide(&self, req: &PublishRequest) -> Result<PublishGrant, ControlError> {
        if self.keys.is_empty() {
            return Ok(PublishGrant { passphrase: None });
        }
        if let Some(token) = &req.token {
            return if self.keys_for(&req.stream).any(|k| ct_eq(k, token)) {
                Ok(PublishGrant { passphrase: None })
            } else {
                Err(ControlError::Forbidden(req.stream.clone()))
            };
        }
        if req.encrypted {
            // The handshake will prove the caller knows this key.
            return match self.keys_for(&req.stream).next() {
                Some(k) => Ok(PublishGrant {
                    passphrase: Some(k.to_owned()),
                }),
                None => Err(ControlError::Forbidden(req.stream.clone())),
            };
        }
        Err(ControlError::Unauthorized(req.stream.clone()))
    }
}

/// Constant-time comparison of two secrets (length is not hidden).
fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl ControlPlane for MemoryControlPlane {
    fn authorize_publish<'a>(
        &'a self,
        req: &'a PublishRequest,
    ) -> BoxFuture<'a, Result<PublishGrant, ControlError>> {
        Box::pin(async move { self.decide(req) })
    }

    fn claim_stream<'a>(
        &'a self,
        stream: &'a str,
        session: SessionId,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let mut claims = self.claims.lock().expect("claims lock poisoned");
            match claims.get(stream) {
                Some(owner) if *owner != session => {
                    Err(ControlError::AlreadyLive(stream.to_owned()))
                }
                _ => {
                    claims.insert(stream.to_owned(), session);
                    Ok(())
                }
            }
        })
    }

    fn release_stream<'a>(
        &'a self,
        stream: &'a str,
        session: SessionId,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        Box::pin(async move {
            let mut claims = self.claims.lock().expect("claims lock poisoned");
            if claims.get(stream) == Some(&session) {
                claims.remove(stream);
            }
            Ok(())
        })
    }

    fn is_open(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(stream: &str, token: Option<&str>, encrypted: bool) -> PublishRequest {
        PublishRequest {
            stream: stream.into(),
            token: token.map(Into::into),
            encrypted,
        }
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn open_without_keys() {
        let cp = MemoryControlPlane::new(vec![]);
        assert!(cp.is_open());
        assert!(block(cp.authorize_publish(&req("a", None, false))).is_ok());
    }

    #[test]
    fn keys_are_per_stream() {
        let cp = MemoryControlPlane::new(vec![
            StreamKeyConfig {
                stream: "a".into(),
                key: "key-of-a-123".into(),
            },
            StreamKeyConfig {
                stream: "*".into(),
                key: "master-key-1".into(),
            },
        ]);
        assert!(block(cp.authorize_publish(&req("a", Some("key-of-a-123"), false))).is_ok());
        assert_eq!(
            block(cp.authorize_publish(&req("b", Some("key-of-a-123"), false))),
            Err(ControlError::Forbidden("b".into()))
        );
        assert!(block(cp.authorize_publish(&req("b", Some("master-key-1"), false))).is_ok());
        assert_eq!(
            block(cp.authorize_publish(&req("a", None, false))),
            Err(ControlError::Unauthorized("a".into()))
        );
        assert_eq!(
            block(cp.authorize_publish(&req("a", None, true))),
            Ok(PublishGrant {
                passphrase: Some("key-of-a-123".into())
            })
        );
    }

    #[test]
    fn one_owner_per_stream() {
        let cp = MemoryControlPlane::new(vec![]);
        block(cp.claim_stream("s", 1)).unwrap();
        assert_eq!(
            block(cp.claim_stream("s", 2)),
            Err(ControlError::AlreadyLive("s".into()))
        );
        block(cp.release_stream("s", 2)).unwrap();
        assert!(block(cp.claim_stream("s", 2)).is_err());
        block(cp.release_stream("s", 1)).unwrap();
        block(cp.claim_stream("s", 2)).unwrap();
    }
}
