//! The connection to the current primary: one auto-reconnecting
//! [`ConnectionManager`], replaced when Sentinel names another primary.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{Client, ConnectionAddr, ErrorKind, RedisError, ServerErrorKind};
use tokio::sync::watch;

use super::{RedisOptions, RedisTarget, SentinelTarget};
use crate::ControlError;

/// How a connection is (re)made.
enum Source {
    /// One server: the `ConnectionManager` reconnects by itself.
    Server(Client),
    /// Ask Sentinel for the primary. The lock serializes lookups (the
    /// client caches its Sentinel connections).
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// The manager in use and the address it talks to.
struct Current {
    manager: ConnectionManager,
    /// `host:port` (or socket path) of the server behind `manager`.
    addr: String,
}

struct State {
    current: Option<Current>,
    /// An error showed that `current` may talk to the wrong server (or to
    /// none): look the primary up again.
    stale: bool,
    /// A refresh task is running.
    refreshing: bool,
    /// When the last refresh started (refreshes are spaced by
    /// [`RedisOptions::refresh_interval`]).
    last_refresh: Option<Instant>,
    /// Why the last refresh failed, for the `Unavailable` message.
    last_error: Option<String>,
}

/// Shared by every call of one [`RedisControlPlane`](super::RedisControlPlane).
pub(super) struct Link {
    source: Source,
    config: ConnectionManagerConfig,
    options: RedisOptions,
    state: Mutex<State>,
    /// Bumped after each refresh, so that callers waiting for a first
    /// connection wake up.
    refreshed: watch::Sender<u64>,
}

impl Link {
    /// A link to `target`. Connects nothing yet: a direct server is
    /// connected on first use, a Sentinel primary is looked up in the
    /// background from now on.
    pub(super) fn new(target: &RedisTarget, options: &RedisOptions) -> Result<Arc<Self>, String> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            // One quick retry per reconnection; the next call starts another.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(options.connect_timeout);
        let (source, current) = match target {
            RedisTarget::Server(url) => {
                let client = super::client_for(url, options.tls_ca_pem.as_deref())
                    .map_err(|e| e.to_string())?;
                let manager =
                    ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                        .map_err(|e| e.to_string())?;
                let addr = client.get_connection_info().addr().to_string();
                (Source::Server(client), Some(Current { manager, addr }))
            }
            RedisTarget::Sentinel(s) => (
                Source::Sentinel(tokio::sync::Mutex::new(
                    sentinel_client(s).map_err(|e| e.to_string())?,
                )),
                None,
            ),
        };
        let link = Arc::new(Link {
            source,
            config,
            options: options.clone(),
            state: Mutex::new(State {
                stale: current.is_none(),
                current,
                refreshing: false,
                last_refresh: None,
                last_error: None,
            }),
            refreshed: watch::channel(0).0,
        });
        if matches!(link.source, Source::Sentinel(_)) {
            link.refresh_soon(&mut link.lock());
        }
        Ok(link)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few field writes that cannot panic
        // half-way; the state is consistent even after a poisoning panic.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The manager to send a call through. Waits for the first Sentinel
    /// lookup (the caller bounds the wait).
    ///
    /// # Errors
    /// [`ControlError::Unavailable`] when no primary is known.
    pub(super) async fn manager(self: &Arc<Self>) -> Result<ConnectionManager, ControlError> {
        let mut refreshed = self.refreshed.subscribe();
        for _ in 0..2 {
            {
                let mut state = self.lock();
                let check_due = matches!(self.source, Source::Sentinel(_))
                    && state
                        .last_refresh
                        .is_none_or(|t| t.elapsed() >= self.options.sentinel_check_interval);
                if state.stale || check_due {
                    self.refresh_soon(&mut state);
                }
                if let Some(current) = &state.current {
                    return Ok(current.manager.clone());
                }
                if !state.refreshing {
                    break;
                }
            }
            if refreshed.changed().await.is_err() {
                break;
            }
        }
        let state = self.lock();
        match (&state.current, &state.last_error) {
            (Some(current), _) => Ok(current.manager.clone()),
            (None, Some(e)) => Err(ControlError::Unavailable(format!(
                "no Redis primary known: {e}"
            ))),
            (None, None) => Err(ControlError::Unavailable(
                "no Redis primary known yet".into(),
            )),
        }
    }

    /// Takes note of a failed call: errors that say the connection is gone,
    /// or that the server is no longer the primary, make the next call
    /// look the primary up again (Sentinel) or start a fresh connection
    /// manager (one server, when its own reconnection cannot recover).
    pub(super) fn on_error(self: &Arc<Self>, e: &RedisError) {
        let relook = match self.source {
            Source::Sentinel(_) => {
                e.is_io_error()
                    || e.is_unrecoverable_error()
                    || e.is_timeout()
                    || matches!(
                        e.kind(),
                        ErrorKind::AuthenticationFailed
                            | ErrorKind::Server(
                                ServerErrorKind::ReadOnly
                                    | ServerErrorKind::MasterDown
                                    | ServerErrorKind::BusyLoading
                            )
                    )
            }
            // The manager reconnects after I/O errors by itself; a failed
            // handshake (authentication) would stick.
            Source::Server(_) => e.kind() == ErrorKind::AuthenticationFailed,
        };
        if relook {
            self.mark_stale();
        }
    }

    /// Takes note of a call that got no answer within its deadline.
    pub(super) fn on_deadline(self: &Arc<Self>) {
        self.mark_stale();
    }

    fn mark_stale(self: &Arc<Self>) {
        let mut state = self.lock();
        state.stale = true;
        self.refresh_soon(&mut state);
    }

    /// Starts a refresh in the background unless one runs or ran less than
    /// [`RedisOptions::refresh_interval`] ago. It runs detached from the
    /// calls (which give up at their deadline) so that a slow Sentinel
    /// cannot starve it.
    fn refresh_soon(self: &Arc<Self>, state: &mut State) {
        if state.refreshing
            || state
                .last_refresh
                .is_some_and(|t| t.elapsed() < self.options.refresh_interval)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        state.refreshing = true;
        state.last_refresh = Some(Instant::now());
        let link = Arc::clone(self);
        runtime.spawn(async move {
            let outcome = tokio::time::timeout(link.options.lookup_timeout, link.lookup()).await;
            let mut state = link.lock();
            state.refreshing = false;
            match outcome {
                Ok(Ok(found)) => {
                    state.stale = false;
                    state.last_error = None;
                    // A server's manager is replaced (the old one could not
                    // recover); a Sentinel primary's only when it moved.
                    let keep = matches!(link.source, Source::Sentinel(_))
                        && state.current.as_ref().is_some_and(|c| c.addr == found.addr);
                    if !keep {
                        tracing::info!(primary = %found.addr, "redis: using primary");
                        state.current = Some(found);
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "redis: primary lookup failed");
                    state.last_error = Some(e);
                }
                Err(_) => {
                    let e = format!(
                        "primary lookup took longer than {:?}",
                        link.options.lookup_timeout
                    );
                    tracing::debug!(error = %e, "redis: primary lookup failed");
                    state.last_error = Some(e);
                }
            }
            drop(state);
            link.refreshed.send_modify(|n| *n = n.wrapping_add(1));
        });
    }

    /// Finds the server to talk to and a (lazy) manager for it. For
    /// Sentinel: the primary the Sentinels name (the redis crate asks them
    /// in turn, skips a primary they flag down, and checks with `ROLE`
    /// that the named server is a primary). The manager is only used if
    /// the address changed.
    async fn lookup(&self) -> Result<Current, String> {
        let client = match &self.source {
            Source::Server(client) => client.clone(),
            Source::Sentinel(sentinel) => sentinel
                .lock()
                .await
                .async_get_client()
                .await
                .map_err(|e| format!("Sentinel: {e}"))?,
        };
        let addr = client.get_connection_info().addr().to_string();
        let manager = ConnectionManager::new_lazy_with_config(client, self.config.clone())
            .map_err(|e| e.to_string())?;
        Ok(Current { manager, addr })
    }

    /// The address of the server calls currently go to (`host:port`).
    pub(super) fn primary(&self) -> Option<String> {
        self.lock().current.as_ref().map(|c| c.addr.clone())
    }
}

fn sentinel_client(s: &SentinelTarget) -> Result<SentinelClient, RedisError> {
    let addrs = s
        .sentinels
        .iter()
        .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port));
    let mut builder = SentinelClientBuilder::new(addrs, &s.service, SentinelServerType::Master)?
        .set_client_to_redis_db(s.db);
    if let Some(u) = &s.username {
        builder = builder.set_client_to_redis_username(u);
    }
    if let Some(p) = &s.password {
        builder = builder.set_client_to_redis_password(p);
    }
    if let Some(u) = &s.sentinel_username {
        builder = builder.set_client_to_sentinel_username(u);
    }
    if let Some(p) = &s.sentinel_password {
        builder = builder.set_client_to_sentinel_password(p);
    }
    builder.build()
}
