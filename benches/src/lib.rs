//! Shared helpers for the mtcp-rs benchmarks. Each benchmark is a binary in
//! `src/bin/`; `cargo xtask bench` runs every one of them in release mode.
//! Benchmarks print their figures and never assert on timing.

/// Median of a non-empty sample (sorts in place).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    match samples.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    }
}
