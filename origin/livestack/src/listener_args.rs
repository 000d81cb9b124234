//! `--header-read-timeout`, `--max-connections`,
//! `--max-connections-per-address`: the hostile-client limits of every
//! HTTP listener of a subcommand (see `livestack-listener`).

use std::time::Duration;

use clap::Args;
use livestack_listener::ListenerLimits;

/// Listener limits on the command line; unset flags keep the
/// configuration file's value, or the default.
#[derive(Debug, Default, Args)]
pub(crate) struct ListenerArgs {
    /// Longest time a client may take to send a request head, and longest
    /// idle time of a keep-alive connection, e.g. 10s [default: 10s].
    #[arg(long, env = "LIVESTACK_HEADER_READ_TIMEOUT", value_parser = humantime::parse_duration)]
    header_read_timeout: Option<Duration>,
    /// Connections open at once per listener; above it new ones are closed
    /// at accept and counted [default: 20000].
    #[arg(long, env = "LIVESTACK_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections open at once from one client IP address
    /// [default: 4096].
    #[arg(long, env = "LIVESTACK_MAX_CONNECTIONS_PER_ADDRESS")]
    max_connections_per_address: Option<usize>,
    /// Requests one client IP address may have waiting for media at once
    /// (blocking playlist reloads, hinted parts); one more gets 429
    /// [default: 2048].
    #[arg(long, env = "LIVESTACK_MAX_HELD_REQUESTS_PER_ADDRESS")]
    max_held_requests_per_address: Option<usize>,
}

impl ListenerArgs {
    /// Applies the flags that are set over `limits`.
    pub(crate) fn apply(&self, limits: &mut ListenerLimits) {
        if let Some(v) = self.header_read_timeout {
            limits.header_read_timeout = v;
        }
        if let Some(v) = self.max_connections {
            limits.max_connections = v;
        }
        if let Some(v) = self.max_connections_per_address {
            limits.max_connections_per_address = v;
        }
        if let Some(v) = self.max_held_requests_per_address {
            limits.max_held_requests_per_address = v;
        }
    }
}
