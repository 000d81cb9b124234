//! Percentile summaries of measured values.
//!
//! Values are plain `f64` in the unit the caller states (the benchmarks use
//! milliseconds, signed where a figure can be negative); percentiles use the
//! nearest-rank method on the sorted sample, so every reported figure is a
//! value that was actually measured.

use std::fmt;

use serde_json::{Value, json};

/// p50/p95/p99/max (and min, mean) of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// The `q`-quantile (0..=1) of an ascending `sorted` sample, nearest rank.
/// `NaN` for an empty sample.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (any order); `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

impl Summary {
    /// Summarises `values` (any order); `None` when empty.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Some(Self {
            n: v.len(),
            min: v[0],
            p50: percentile(&v, 0.5),
            p95: percentile(&v, 0.95),
            p99: percentile(&v, 0.99),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        })
    }

    /// The per-field median of several runs' summaries (`n` is their
    /// total sample size, `min`/`mean` medians too): how the latency
    /// benchmarks report "median of N runs". `None` without a run.
    pub fn median_of(runs: &[Self]) -> Option<Self> {
        if runs.is_empty() {
            return None;
        }
        let med = |f: fn(&Self) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        Some(Self {
            n: runs.iter().map(|s| s.n).sum(),
            min: med(|s| s.min),
            p50: med(|s| s.p50),
            p95: med(|s| s.p95),
            p99: med(|s| s.p99),
            max: med(|s| s.max),
            mean: med(|s| s.mean),
        })
    }

    /// The summary as a JSON object (`null` for an empty sample).
    pub fn json(this: Option<&Self>) -> Value {
        match this {
            Some(s) => json!({
                "n": s.n, "min": s.min, "p50": s.p50, "p95": s.p95,
                "p99": s.p99, "max": s.max, "mean": s.mean,
            }),
            None => Value::Null,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} min={:.3} p50={:.3} p95={:.3} p99={:.3} max={:.3} mean={:.3}",
            self.n, self.min, self.p50, self.p95, self.p99, self.max, self.mean
        )
    }
}

/// Formats an optional summary (`n=0` when nothing was measured).
pub fn show(s: Option<&Summary>) -> String {
    s.map_or_else(|| "n=0".to_owned(), Summary::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&v).expect("non-empty");
        assert_eq!((s.p50, s.p95, s.p99, s.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        let runs: Vec<Summary> = [1.0, 3.0, 2.0]
            .iter()
            .filter_map(|k| Summary::of(&v.iter().map(|x| x * k).collect::<Vec<_>>()))
            .collect();
        let m = Summary::median_of(&runs).expect("runs");
        assert_eq!((m.n, m.p50, m.p99), (300, 100.0, 198.0));
        assert!(Summary::median_of(&[]).is_none());
    }
}
