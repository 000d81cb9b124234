//! Shared helpers of the livestack benchmarks (the binaries in `src/bin/`):
//! percentile summaries ([`stats`]), child processes that cannot outlive the
//! benchmark and their CPU accounting ([`process`]), cached ffmpeg test
//! sources ([`media`]), a minimal HTTP/1.1 keep-alive client for the
//! load generator ([`http1`]), the LL-HLS viewers it runs ([`llhls`]), nginx
//! as a reference server ([`nginx`]) and a counting allocator
//! ([`alloc_count`]).
//!
//! Every benchmark prints a plain-text report (the command line, then
//! `p50/p95/p99/max` lines) and ends with one JSON line holding the same
//! figures, so runs can be collected by scripts.

pub mod alloc_count;
pub mod http1;
pub mod llhls;
pub mod media;
pub mod nginx;
pub mod process;
pub mod stats;

/// The command line this process was started with, for the report.
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
