//! A log-linear latency histogram in the manner of HdrHistogram: exact below
//! 128, then 64 linear sub-buckets per power of two, so every recorded value
//! is reported within 1/64 (1.6 %) of itself. Recording is one index
//! computation and an increment: no allocation after construction.
//!
//! Bucket layout (values in nanoseconds, or any unit):
//!
//! ```text
//!   index 0..128          value = index                 (exact)
//!   index 128 + 64k + m   value in [(64+m) << (k+1), (65+m) << (k+1))   k = 0..57
//! ```

/// Values below this are counted exactly.
const EXACT: u64 = 128;
/// Linear sub-buckets per power of two above [`EXACT`].
const SUB: u64 = 64;
/// Powers of two above `EXACT` up to `u64::MAX` (2^7 .. 2^63).
const RANGES: usize = 57;
/// Counters in all.
const BUCKETS: usize = EXACT as usize + RANGES * SUB as usize;

/// A fixed-size histogram of `u64` values.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

fn index_of(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let top = 63 - u64::from(v.leading_zeros()); // >= 7
    let shift = top - 6; // v >> shift lies in [64, 128)
    (EXACT + (shift - 1) * SUB + ((v >> shift) - SUB)) as usize
}

/// The largest value that lands in bucket `i`.
fn highest_in(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let k = i - EXACT;
    let shift = k / SUB + 1;
    let m = k % SUB + SUB;
    ((m + 1) << shift).wrapping_sub(1).max(m << shift)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        self.counts[index_of(v)] += 1;
        self.total += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Adds every count of `other` (per-core histograms into one).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The smallest value recorded (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// The largest value recorded (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at percentile `p` (0..=100): the smallest bucket bound at or
    /// below which `p` percent of the values lie, capped by the exact maximum
    /// (0 when empty). Within 1/64 of the true order statistic.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let p = if p.is_nan() {
            100.0
        } else {
            p.clamp(0.0, 100.0)
        };
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return highest_in(i).min(self.max).max(self.min);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        // Each bucket starts right after the previous one ends.
        for i in 1..BUCKETS {
            assert_eq!(
                index_of(highest_in(i - 1) + 1),
                i,
                "bucket {i} does not follow {}",
                i - 1
            );
            assert_eq!(index_of(highest_in(i)), i);
        }
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
        assert_eq!(highest_in(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn relative_error_is_bounded() {
        for v in [128u64, 129, 1000, 12_345, 999_999, 1 << 40, u64::MAX / 3] {
            let hi = highest_in(index_of(v));
            assert!(hi >= v);
            assert!((hi - v) as f64 <= v as f64 / 64.0, "{v} -> {hi}");
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(90.0), 90);
        assert_eq!(h.percentile(99.0), 99);
        assert_eq!(h.percentile(100.0), 100);
        assert_eq!(h.percentile(0.0), 1);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 10);
        }
        for (p, want) in [(50.0, 500_000.0), (90.0, 900_000.0), (99.0, 990_000.0)] {
            let got = h.percentile(p) as f64;
            assert!(
                got >= want && got <= want * (1.0 + 1.0 / 64.0),
                "p{p}: {got} vs {want}"
            );
        }
        assert_eq!(h.percentile(100.0), 1_000_000);
    }

    #[test]
    fn outliers_show_in_the_tail_only() {
        let mut h = Histogram::new();
        for _ in 0..990 {
            h.record(50_000);
        }
        for _ in 0..10 {
            h.record(5_000_000);
        }
        let p50 = h.percentile(50.0);
        assert!((50_000..=50_000 + 50_000 / 64).contains(&p50));
        assert!(h.percentile(99.0) <= 50_000 + 50_000 / 64);
        assert!(h.percentile(99.9) >= 5_000_000 - 5_000_000 / 64);
        assert_eq!(h.max(), 5_000_000);
    }

    #[test]
    fn merge_adds_counts() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        for v in 0..50 {
            a.record(v);
        }
        for v in 50..100 {
            b.record(v);
        }
        a.merge(&b);
        assert_eq!(a.count(), 100);
        assert_eq!(a.percentile(50.0), 49);
        assert_eq!(a.min(), 0);
        assert_eq!(a.max(), 99);
    }

    #[test]
    fn empty_is_zero() {
        let h = Histogram::new();
        assert_eq!(h.percentile(99.0), 0);
        assert_eq!(h.min(), 0);
        assert_eq!(h.max(), 0);
        assert_eq!(h.mean(), 0.0);
    }
}
