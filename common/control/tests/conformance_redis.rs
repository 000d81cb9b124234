//! The conformance suite against the Redis control plane, each case on a
//! `redis-server` of its own.

livestack_control::control_plane_conformance!(livestack_control::testing::RedisBackend::start());
