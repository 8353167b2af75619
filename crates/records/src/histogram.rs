//! A small log-scale histogram of durations in milliseconds, for
//! approximate percentiles in bounded memory.
//!
//! Values 0 to 7 have a bucket each. Above that, every power of two is
//! split into four equal buckets, up to `u64::MAX`: 252 buckets in all. A
//! percentile is reported as the middle of the bucket holding the sample of
//! that rank, so it is within 12.5 % of that sample (half a bucket's width
//! is at most an eighth of the bucket's lowest value) and exact below 8 ms.
//! Only buckets that hold samples take memory (8 bytes each).

use serde::{Deserialize, Serialize};

/// How many buckets there are.
pub const BUCKETS: usize = 252;

/// The bucket of `value`.
pub fn bucket_of(value: u64) -> usize {
    if value < 8 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros() as usize; // 3..=63
    let quarter = (value >> (exponent - 2)) as usize & 3;
    8 + (exponent - 3) * 4 + quarter
}

/// The lowest value of a bucket and its width.
fn bucket_range(bucket: usize) -> (u64, u64) {
    if bucket < 8 {
        return (bucket as u64, 1);
    }
    let exponent = (bucket - 8) / 4 + 3;
    let quarter = ((bucket - 8) % 4) as u64;
    let width = 1u64 << (exponent - 2);
    ((4 + quarter) * width, width)
}

/// The value reported for samples in `bucket`: its middle.
pub fn representative(bucket: usize) -> u64 {
    let (low, width) = bucket_range(bucket);
    low + width / 2
}

/// Samples per bucket, only for buckets that hold any, ordered by bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Histogram {
    buckets: Vec<(u8, u32)>,
}

/// A histogram read from a snapshot is not one this type could have made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("histogram buckets must be distinct, increasing, below {BUCKETS} and non-empty")]
pub struct BadHistogram;

impl Histogram {
    /// Adds one sample. A bucket's count stops at `u32::MAX` (four billion
    /// samples in one bucket of one time slot).
    pub fn add(&mut self, value: u64) {
        let bucket = bucket_of(value) as u8;
        match self.buckets.binary_search_by_key(&bucket, |&(b, _)| b) {
            Ok(at) => self.buckets[at].1 = self.buckets[at].1.saturating_add(1),
            Err(at) => self.buckets.insert(at, (bucket, 1)),
        }
    }

    /// Adds its counts to a dense array of all buckets.
    pub fn add_to(&self, dense: &mut [u64; BUCKETS]) {
        for &(bucket, count) in &self.buckets {
            dense[bucket as usize] += u64::from(count);
        }
    }

    /// Checks a histogram read from outside.
    pub fn validate(&self) -> Result<(), BadHistogram> {
        let increasing = self.buckets.windows(2).all(|pair| pair[0].0 < pair[1].0);
        let in_range = self.buckets.iter().all(|&(bucket, count)| (bucket as usize) < BUCKETS && count > 0);
        if increasing && in_range {
            Ok(())
        } else {
            Err(BadHistogram)
        }
    }

    /// Whether it holds no samples.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// The nearest-rank `percent` percentile of the samples in `dense`
/// (reported as its bucket's middle); `None` without samples.
pub fn percentile(dense: &[u64; BUCKETS], percent: u64) -> Option<u64> {
    let total: u64 = dense.iter().sum();
    if total == 0 {
        return None;
    }
    // The smallest rank r with r >= percent% of total, and at least 1.
    let rank = (u128::from(total) * u128::from(percent)).div_ceil(100).max(1);
    let mut seen = 0u128;
    for (bucket, &count) in dense.iter().enumerate() {
        seen += u128::from(count);
        if seen >= rank {
            return Some(representative(bucket));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let mut previous = 0;
        for value in (0..5_000).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let bucket = bucket_of(value);
            assert!(bucket >= previous, "{value}");
            previous = bucket;
            let (low, width) = bucket_range(bucket);
            assert!(low <= value && value - low < width, "{value} in bucket {bucket} = {low}+{width}");
        }
        assert_eq!((bucket_of(7), bucket_of(8), bucket_of(9), bucket_of(10), bucket_of(12)), (7, 8, 8, 9, 10));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut histogram = Histogram::default();
        for value in 1..=100 {
            histogram.add(value % 8);
        }
        let mut dense = [0; BUCKETS];
        histogram.add_to(&mut dense);
        assert_eq!(percentile(&dense, 50), Some(3));
        assert_eq!(percentile(&dense, 100), Some(7));
        assert_eq!(percentile(&[0; BUCKETS], 50), None);
        assert!(histogram.validate().is_ok());
        assert!(Histogram { buckets: vec![(3, 1), (3, 1)] }.validate().is_err());
        assert!(Histogram { buckets: vec![(252, 1)] }.validate().is_err());
        assert!(Histogram { buckets: vec![(2, 0)] }.validate().is_err());
    }

    proptest! {
        /// The reported percentile is within 12.5 % of the exact one.
        #[test]
        fn percentile_error_is_bounded(
            samples in proptest::collection::vec((0u32..40, any::<u64>()).prop_map(|(bits, x)| x >> (64 - bits.max(1))), 1..300),
            percent in 1u64..=100,
        ) {
            let mut histogram = Histogram::default();
            for &sample in &samples {
                histogram.add(sample);
            }
            let mut dense = [0; BUCKETS];
            histogram.add_to(&mut dense);
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            let rank = (sorted.len() as u64 * percent).div_ceil(100).max(1) as usize;
            let exact = sorted[rank - 1];
            let reported = percentile(&dense, percent).unwrap();
            prop_assert!(reported.abs_diff(exact) * 8 <= exact, "exact {} reported {}", exact, reported);
        }
    }
}
