//! A primary, a replica and one Sentinel, for failover tests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::RedisServer;

/// How long [`Sentinel::start`] waits for replication and for the
/// Sentinel to see the replica (it returns as soon as both hold; the bound
/// only matters when something is broken, or the machine very loaded).
const START_WAIT: Duration = Duration::from_secs(60);

/// A small Sentinel deployment on loopback: a primary, one replica of it,
/// and one `redis-server --sentinel` watching them as
/// [`SERVICE`](Self::SERVICE) with quorum 1, `down-after-milliseconds` 300
/// and `failover-timeout` 3000, so that killing the primary promotes the
/// replica within a few seconds.
///
/// Like [`RedisServer`], every method blocks and panics on failure; drop
/// stops all three processes.
#[derive(Debug)]
pub struct Sentinel {
    primary: RedisServer,
    replica: RedisServer,
    sentinel: RedisServer,
}

impl Sentinel {
    /// The service (master) name the Sentinel monitors.
    pub const SERVICE: &'static str = "livestack";

    /// Starts the three processes and waits until the replica is in sync
    /// and the Sentinel knows it (so that a failover can pick it).
    pub fn start() -> Self {
        let primary = RedisServer::start();
        let replica =
            RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", primary.port())]);
        let sentinel = RedisServer::start_sentinel(Self::SERVICE, primary.port());
        let s = Sentinel {
            primary,
            replica,
            sentinel,
        };
        s.wait(START_WAIT, "the replica to sync", || {
            let info: String = s
                .replica
                .query(::redis::cmd("INFO").arg("replication"))
                .ok()?;
            info.contains("master_link_status:up").then_some(())
        });
        let replica_port = s.replica.port().to_string();
        s.wait(
            Duration::from_secs(20),
            "Sentinel to see the replica",
            || {
                let replicas: Vec<HashMap<String, String>> = s
                    .sentinel
                    .query(::redis::cmd("SENTINEL").arg("REPLICAS").arg(Self::SERVICE))
                    .ok()?;
                replicas
                    .iter()
                    .any(|r| {
                        r.get("port") == Some(&replica_port)
                            && r.get("flags").is_some_and(|f| f == "slave")
                            && r.get("master-link-status").is_some_and(|l| l == "ok")
                    })
                    .then_some(())
            },
        );
        s
    }

    /// `redis+sentinel://127.0.0.1:PORT/livestack`.
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{}",
            self.sentinel.port(),
            Self::SERVICE
        )
    }

    /// The server started as primary.
    pub fn primary(&mut self) -> &mut RedisServer {
        &mut self.primary
    }

    /// The server started as its replica.
    pub fn replica(&mut self) -> &mut RedisServer {
        &mut self.replica
    }

    /// The Sentinel process.
    pub fn sentinel(&mut self) -> &mut RedisServer {
        &mut self.sentinel
    }

    /// The port of the primary the Sentinel names now
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`), if it answers.
    pub fn master_port(&self) -> Option<u16> {
        let (_, port): (String, u16) = self
            .sentinel
            .query(
                ::redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(Self::SERVICE),
            )
            .ok()?;
        Some(port)
    }

    /// Waits until the replica has applied everything the primary has
    /// written so far (its `slave_repl_offset` reaches the primary's
    /// `master_repl_offset`), so that a failover now loses none of it.
    /// (Redis replicates asynchronously: without this wait, writes
    /// acknowledged just before the primary dies can be lost.)
    ///
    /// # Panics
    /// If the primary does not answer, or after `within`.
    pub fn wait_for_replication(&self, within: Duration) {
        let written = repl_offset(&self.primary, "master_repl_offset")
            .unwrap_or_else(|| panic!("the primary does not report its replication offset"));
        self.wait(within, "the replica to catch up", || {
            (repl_offset(&self.replica, "slave_repl_offset")? >= written).then_some(())
        });
    }

    /// Asks the Sentinel for a failover now (`SENTINEL FAILOVER`), as an
    /// operator does for maintenance: the old primary keeps running and is
    /// demoted to a replica afterwards.
    ///
    /// # Panics
    /// If the Sentinel refuses.
    pub fn failover(&self) {
        let _: () = self
            .sentinel
            .query(::redis::cmd("SENTINEL").arg("FAILOVER").arg(Self::SERVICE))
            .unwrap_or_else(|e| panic!("SENTINEL FAILOVER: {e}"));
    }

    /// Waits until the Sentinel names the server on `port` as primary and
    /// that server says it is one (`ROLE`).
    ///
    /// # Panics
    /// After `within`, with the Sentinel's log.
    pub fn wait_for_master(&self, port: u16, within: Duration) {
        let server = if port == self.replica.port() {
            &self.replica
        } else {
            &self.primary
        };
        self.wait(within, "the failover", || {
            (self.master_port()? == port).then_some(())?;
            let role: Vec<::redis::Value> = server.query(&mut ::redis::cmd("ROLE")).ok()?;
            matches!(role.first(), Some(::redis::Value::BulkString(r)) if r == b"master")
                .then_some(())
        });
    }

    fn wait(&self, within: Duration, what: &str, mut ready: impl FnMut() -> Option<()>) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if ready().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "waited {within:?} for {what}\n--- sentinel log ---\n{}\n--- primary log ---\n{}\n\
             --- replica log ---\n{}",
            self.sentinel.log(),
            self.primary.log(),
            self.replica.log()
        );
    }
}

/// A numeric field of `INFO replication`.
fn repl_offset(server: &RedisServer, field: &str) -> Option<i64> {
    let info: String = server.query(::redis::cmd("INFO").arg("replication")).ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .parse()
            .ok()
    })
}
