//! Shared helpers of the livestack benchmarks.
