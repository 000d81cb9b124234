//! The conformance suite against the in-memory control plane.

livestack_control::control_plane_conformance!(livestack_control::testing::MemoryBackend::new());
