//! Shared pieces of the load tools: latency summaries and concurrent request runners.

use std::time::Duration;

/// Latency percentiles over a set of samples.
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of(samples: &mut [Duration]) -> Self {
        samples.sort();
        let at = |q: f64| {
            if samples.is_empty() {
                Duration::ZERO
            } else {
                samples[((samples.len() as f64 - 1.0) * q).round() as usize]
            }
        };
        Self { count: samples.len(), p50: at(0.50), p95: at(0.95), p99: at(0.99), max: at(1.0) }
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of a few runs' results.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() { 0.0 } else { values[values.len() / 2] }
}
