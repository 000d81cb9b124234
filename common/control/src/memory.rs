//! The in-memory control plane: the embedded default for one box.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::{
    ControlError, ControlPlane, NodeCommand, NodeInfo, Placement, Session, SharedClock, StreamKey,
    SystemClock, UnixMillis,
};

/// A value and the time it expires (`None`: never).
#[derive(Debug, Clone)]
struct Expiring<T> {
    value: T,
    expires_at: Option<UnixMillis>,
}

impl<T> Expiring<T> {
    fn live(&self, now: UnixMillis) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }
}

#[derive(Debug, Default)]
struct State {
    keys: BTreeMap<String, StreamKey>,
    nodes: BTreeMap<String, Expiring<NodeInfo>>,
    placements: BTreeMap<String, Expiring<Placement>>,
    sessions: BTreeMap<String, Expiring<Session>>,
    commands: BTreeMap<String, VecDeque<NodeCommand>>,
}

/// The in-memory control plane. State lives as long as the process and is
/// seen by this process only; TTLs and key expiries are honoured on read
/// exactly as Redis honours them, by the plane's [`Clock`](crate::Clock)
/// (the system clock unless built [`with_clock`](Self::with_clock)).
#[derive(Debug)]
pub struct MemoryControlPlane {
    state: Mutex<State>,
    clock: SharedClock,
}

impl Default for MemoryControlPlane {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            clock: SystemClock::shared(),
        }
    }
}

/// When a record written at `now` with `ttl` expires.
fn expiry(now: UnixMillis, ttl: Duration) -> Option<UnixMillis> {
    Some(now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)))
}

impl MemoryControlPlane {
    /// An empty control plane on the system clock.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// An empty control plane reading time from `clock` (a
    /// [`ManualClock`](crate::ManualClock) in tests: advancing it expires
    /// records at once).
    pub fn with_clock(clock: SharedClock) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            clock,
        })
    }

    /// A control plane on the system clock holding `keys` (from the
    /// configuration file).
    pub fn with_keys(keys: impl IntoIterator<Item = StreamKey>) -> Arc<Self> {
        let cp = Self::default();
        {
            let mut state = cp.lock();
            for k in keys {
                state.keys.insert(k.id.clone(), k);
            }
        }
        Arc::new(cp)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-written
        // (every operation is a single insert or remove), so the state is
        // still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now_sync<T>(&self, f: impl FnOnce(&mut State, UnixMillis) -> T) -> T {
        let now = self.clock.unix_millis();
        f(&mut self.lock(), now)
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

impl ControlPlane for MemoryControlPlane {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn create_key<'a>(&'a self, key: &'a StreamKey) -> BoxFuture<'a, Result<(), ControlError>> {
        ready(self.now_sync(|s, now| {
            match s.keys.get(&key.id) {
                Some(k) if !k.expired(now) => return Err(ControlError::Exists(key.id.clone())),
                _ => {}
            }
            s.keys.insert(key.id.clone(), key.clone());
            Ok(())
        }))
    }

    fn revoke_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        ready(self.now_sync(|s, now| match s.keys.remove(id) {
            Some(k) if !k.expired(now) => Ok(()),
            _ => Err(ControlError::NotFound(id.to_owned())),
        }))
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<StreamKey>, ControlError>> {
        ready(self.now_sync(|s, now| {
            Ok(s.keys
                .values()
                .filter(|k| !k.expired(now))
                .cloned()
                .collect())
        }))
    }

    fn keys_for_stream<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StreamKey>, ControlError>> {
        ready(self.now_sync(|s, now| {
            Ok(s.keys
                .values()
                .filter(|k| k.matches(stream) && !k.expired(now))
                .cloned()
                .collect())
        }))
    }

    fn register_node<'a>(
        &'a self,
        node: &'a NodeInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        ready(self.now_sync(|s, now| {
            s.nodes.insert(
                node.id.clone(),
                Expiring {
                    value: node.clone(),
                    expires_at: expiry(now, ttl),
                },
            );
            Ok(())
        }))
    }

    fn deregister_node<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        ready(self.now_sync(|s, _| {
            s.nodes.remove(id);
            Ok(())
        }))
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, ControlError>> {
        ready(self.now_sync(|s, now| {
            s.nodes.retain(|_, n| n.live(now));
            Ok(s.nodes.values().map(|n| n.value.clone()).collect())
        }))
    }

    fn claim_stream<'a>(
        &'a self,
        placement: &'a Placement,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        ready(self.now_sync(|s, now| {
            if let Some(held) = s.placements.get(&placement.stream)
                && held.live(now)
                && held.value.session_id != placement.session_id
            {
                return Err(ControlError::AlreadyLive {
                    stream: placement.stream.clone(),
                    node: held.value.node_id.clone(),
                });
            }
            s.placements.insert(
                placement.stream.clone(),
                Expiring {
                    value: placement.clone(),
                    expires_at: expiry(now, ttl),
                },
            );
            Ok(())
        }))
    }

    fn release_stream<'a>(
        &'a self,
        stream: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        ready(self.now_sync(|s, _| {
            if s.placements
                .get(stream)
                .is_some_and(|p| p.value.session_id == session_id)
            {
                s.placements.remove(stream);
            }
            Ok(())
        }))
    }

    fn placement<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<Placement>, ControlError>> {
        ready(self.now_sync(|s, now| {
            Ok(s.placements
                .get(stream)
                .filter(|p| p.live(now))
                .map(|p| p.value.clone()))
        }))
    }

    fn placements(&self) -> BoxFuture<'_, Result<Vec<Placement>, ControlError>> {
        ready(self.now_sync(|s, now| {
            s.placements.retain(|_, p| p.live(now));
            Ok(s.placements.values().map(|p| p.value.clone()).collect())
        }))
    }

    fn put_session<'a>(
        &'a self,
        session: &'a Session,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        ready(self.now_sync(|s, now| {
            s.sessions.insert(
                session.id.clone(),
                Expiring {
                    value: session.clone(),
                    expires_at: expiry(now, ttl),
                },
            );
            Ok(())
        }))
    }

    fn remove_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        ready(self.now_sync(|s, _| {
            s.sessions.remove(id);
            Ok(())
        }))
    }

    fn sessions(&self) -> BoxFuture<'_, Result<Vec<Session>, ControlError>> {
        ready(self.now_sync(|s, now| {
            s.sessions.retain(|_, x| x.live(now));
            Ok(s.sessions.values().map(|x| x.value.clone()).collect())
        }))
    }

    fn send_command<'a>(
        &'a self,
        node_id: &'a str,
        command: &'a NodeCommand,
    ) -> BoxFuture<'a, Result<(), ControlError>> {
        ready(self.now_sync(|s, _| {
            s.commands
                .entry(node_id.to_owned())
                .or_default()
                .push_back(command.clone());
            Ok(())
        }))
    }

    fn take_commands<'a>(
        &'a self,
        node_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<NodeCommand>, ControlError>> {
        ready(self.now_sync(|s, _| {
            // No queue for the node: no commands.
            Ok(s.commands
                .remove(node_id)
                .map(Vec::from)
                .unwrap_or_default())
        }))
    }
}
