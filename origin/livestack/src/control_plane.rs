//! The control plane a subcommand talks to (`--redis`).

use std::sync::Arc;

use anyhow::{Context, Result};
use livestack_origin::control::{ControlPlane, MemoryControlPlane};

/// The control plane `url` names (`--redis`), or the in-memory one.
pub(crate) async fn from_url(url: Option<&str>) -> Result<Arc<dyn ControlPlane>> {
    match url {
        None => Ok(MemoryControlPlane::new()),
        Some(url) => redis(url).await,
    }
}

/// The Redis control plane at `url` (see `livestack_control::RedisTarget`
/// for the URL forms). Redis being unreachable now is not an error: the
/// node starts and converges when it returns.
pub(crate) async fn redis(url: &str) -> Result<Arc<dyn ControlPlane>> {
    let target = livestack_control::RedisTarget::parse(url).context("invalid --redis URL")?;
    let cp = livestack_control::RedisControlPlane::connect(
        target,
        livestack_control::RedisOptions::default(),
    )
    .await
    .context("connecting to Redis")?;
    Ok(cp)
}
