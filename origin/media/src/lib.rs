//! Sans-IO media pipeline shared by the origin and the SFU.
//!
//! Nothing in this crate opens a socket, reads a clock or spawns a task: the
//! caller feeds bytes in and drains typed events out (the quinn-proto / str0m
//! shape). The layers are:
//!
//! - [`model`]: the media model every consumer shares — broadcast → tracks →
//!   groups (GOPs) → frames, with timestamps in a per-track timescale.

pub mod model;
