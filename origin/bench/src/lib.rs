//! The origin benchmarks' helpers (the binaries in `src/bin/`): cached
//! ffmpeg test sources ([`media`]), the LL-HLS viewers the load generator
//! runs ([`llhls`]), nginx as a reference server ([`nginx`]), a counting
//! allocator ([`alloc_count`]), the origin process ([`process`]) and str0m
//! WHIP/WHEP peers ([`webrtc`]); with
//! what every livestack benchmark shares, from `livestack-bench-support`
//! (re-exported): percentile summaries ([`stats`]), the HTTP/1.1 keep-alive
//! client ([`http1`]), guarded child processes.
//!
//! Every benchmark prints a plain-text report (the command line, then
//! `p50/p95/p99/max` lines) and ends with one JSON line holding the same
//! figures, so runs can be collected by scripts.

pub mod alloc_count;
pub mod llhls;
pub mod media;
pub mod nginx;
pub mod process;
pub mod webrtc;

pub use livestack_bench_support::{command_line, http1, stats};
