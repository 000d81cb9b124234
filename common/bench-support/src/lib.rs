//! What the livestack benchmarks share, origin's (`origin/bench`) and
//! edge's (`edge-modules/bench`): percentile summaries ([`stats`]), child
//! processes that cannot outlive the benchmark and their CPU accounting
//! ([`process`]), and a minimal HTTP/1.1 keep-alive client for load
//! generators ([`http1`]).
//!
//! Every benchmark prints a plain-text report (the command line, then
//! `p50/p95/p99/max` lines) and ends with one JSON line holding the same
//! figures, so runs can be collected by scripts.

pub mod http1;
pub mod process;
pub mod stats;

/// The command line this process was started with, for the report.
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
