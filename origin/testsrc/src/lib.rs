//! Demo live source.
