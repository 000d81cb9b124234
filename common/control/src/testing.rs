//! Test support (cargo feature `test-support`): a real `redis-server` and a
//! Sentinel deployment for tests, and the conformance suite that every
//! [`ControlPlane`] implementation must pass.
//!
//! ```text
//! // tests/conformance_memory.rs
//! livestack_control::control_plane_conformance!(
//!     livestack_control::testing::MemoryBackend::new()
//! );
//! ```
//!
//! The [`control_plane_conformance!`](crate::control_plane_conformance)
//! macro expands to one `#[tokio::test]` per case of [`conformance`] (the
//! calling crate needs `tokio` with the `macros` and `rt-multi-thread`
//! features); the expression is evaluated once per test, so each test gets
//! a fresh store.

pub mod conformance;
mod sentinel;
mod server;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

pub use sentinel::Sentinel;
pub use server::{REDIS_SERVER_ENV, RedisServer, redis_server_binary};

use crate::{
    ControlPlane, ManualClock, MemoryControlPlane, RedisControlPlane, RedisOptions, RedisTarget,
    SharedClock, SystemClock,
};

/// A store under test, able to hand out several clients of it.
pub trait Backend: Send + Sync {
    /// `"memory"` or `"redis"`.
    fn name(&self) -> &'static str;

    /// A client of this store. On Redis each call makes a new client with
    /// its own connection, so that concurrency tests exercise the server's
    /// atomicity, not one client's.
    fn client(&self) -> BoxFuture<'_, Arc<dyn ControlPlane>>;

    /// The clock the store judges expiry by: a case takes the key expiries
    /// it writes (`expires_at`) from it.
    fn clock(&self) -> SharedClock;

    /// Lets `by` pass for the store, so that records whose TTL or expiry
    /// is at most `by` away are gone afterwards.
    fn advance(&self, by: Duration) -> BoxFuture<'_, ()>;
}

/// One [`MemoryControlPlane`] on a [`ManualClock`]; every client is the
/// same instance, and [`advance`](Backend::advance) moves the clock at
/// once.
#[derive(Debug)]
pub struct MemoryBackend {
    plane: Arc<MemoryControlPlane>,
    clock: ManualClock,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        let clock = ManualClock::new();
        Self {
            plane: MemoryControlPlane::with_clock(clock.shared()),
            clock,
        }
    }
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn client(&self) -> BoxFuture<'_, Arc<dyn ControlPlane>> {
        let plane: Arc<dyn ControlPlane> = self.plane.clone();
        Box::pin(std::future::ready(plane))
    }

    fn clock(&self) -> SharedClock {
        self.clock.shared()
    }

    fn advance(&self, by: Duration) -> BoxFuture<'_, ()> {
        self.clock.advance(by);
        Box::pin(std::future::ready(()))
    }
}

/// A [`RedisServer`] of its own; each client is a new
/// [`RedisControlPlane`] on it.
#[derive(Debug)]
pub struct RedisBackend {
    server: RedisServer,
    options: RedisOptions,
}

impl RedisBackend {
    /// Starts a `redis-server` (blocks until it answers). Clients get
    /// generous timeouts (2 s + 2 s), so that a loaded test machine does
    /// not turn a slow answer into a failed conformance case; the
    /// fail-fast defaults are tested separately.
    pub fn start() -> Self {
        RedisBackend {
            server: RedisServer::start(),
            options: RedisOptions::default()
                .with_timeouts(Duration::from_secs(2), Duration::from_secs(2)),
        }
    }

    /// The server.
    pub fn server(&mut self) -> &mut RedisServer {
        &mut self.server
    }

    /// A new client of the server with these options.
    ///
    /// # Panics
    /// If the client cannot be built (it never connects eagerly).
    pub async fn connect_with(&self, options: RedisOptions) -> Arc<RedisControlPlane> {
        let target = RedisTarget::parse(&self.server.url())
            .unwrap_or_else(|e| panic!("{}: {e}", self.server.url()));
        RedisControlPlane::connect(target, options)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    }
}

impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn client(&self) -> BoxFuture<'_, Arc<dyn ControlPlane>> {
        Box::pin(async move {
            let plane: Arc<dyn ControlPlane> = self.connect_with(self.options.clone()).await;
            plane
        })
    }

    fn clock(&self) -> SharedClock {
        SystemClock::shared()
    }

    /// Waits `by` of real time: Redis expires records by its own clock,
    /// which no test can move. Every record that was written before the
    /// call (its reply received) with a TTL of at most `by` has expired
    /// when this returns, however slow the machine.
    fn advance(&self, by: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(by))
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each running the
/// case against a fresh backend made by the given expression (something
/// implementing [`testing::Backend`](crate::testing::Backend)).
#[macro_export]
macro_rules! control_plane_conformance {
    ($backend:expr) => {
        $crate::control_plane_conformance!(@cases $backend;
            keys_create_list_revoke,
            keys_for_stream_returns_own_and_wildcard_keys,
            keys_expiry_is_honoured_on_read,
            expired_key_id_can_be_reused,
            registry_ttl_and_reregistration,
            registry_record_round_trips,
            claim_renew_release,
            expired_lease_can_be_claimed_by_another,
            release_only_by_holder,
            placements_listed_by_stream,
            concurrent_claimers_exactly_one_wins,
            sessions_ttl_replace_remove,
            command_queue_order_and_take_removes,
        );
    };
    (@cases $backend:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let backend = $backend;
                $crate::testing::conformance::$case(&backend).await;
            }
        )+
    };
}
