//! The edge cache.
