//! The draws of a workload: which SKU, how many units. They follow the peer workload
//! exactly, so the figures compare with Redis and PostgreSQL line by line: `u` is a
//! uniform integer in `[0, 2^30)` and the quantity is uniform in its range.
//!
//! - uniform: SKU `floor(u / 2^30 * N)`;
//! - zipf (exponent 1): rank `k = floor(N^(u / 2^30))`, SKU `k - 1`, so the SKU of rank
//!   k is drawn with probability about 1/k; with N = 100,000 SKU 0 takes about 6% of
//!   the draws and the top 1% of SKUs about 60%.

/// The range of `u`.
pub const DRAW_RANGE: u64 = 1 << 30;

/// The distribution SKUs are drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Every SKU equally likely.
    Uniform,
    /// SKU of rank k with probability about 1/k.
    Zipf,
}

/// A small, fast, seeded generator (SplitMix64); each worker has its own.
#[derive(Clone, Debug)]
pub struct Draws {
    state: u64,
}

impl Draws {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Draws { state: seed }
    }

    /// Returns the next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a uniform integer in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Draws a SKU index in `0..skus` (`skus` > 0).
    pub fn sku(&mut self, distribution: Distribution, skus: u64) -> u64 {
        sku_for(distribution, skus, self.below(DRAW_RANGE))
    }

    /// Draws a quantity in `low..=high`.
    pub fn quantity(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

/// Returns the SKU a draw `u` in `[0, 2^30)` picks.
pub fn sku_for(distribution: Distribution, skus: u64, u: u64) -> u64 {
    let fraction = u as f64 / DRAW_RANGE as f64;
    let sku = match distribution {
        Distribution::Uniform => (fraction * skus as f64) as u64,
        Distribution::Zipf => ((skus as f64).powf(fraction) as u64).saturating_sub(1),
    };
    sku.min(skus - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_draws_cover_every_sku_evenly() {
        let mut draws = Draws::new(7);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[draws.sku(Distribution::Uniform, 10) as usize] += 1;
        }
        for count in counts {
            assert!((9_500..10_500).contains(&count), "{counts:?}");
        }
        assert_eq!(sku_for(Distribution::Uniform, 100, 0), 0);
        assert_eq!(sku_for(Distribution::Uniform, 100, DRAW_RANGE - 1), 99);
    }

    #[test]
    fn zipf_draws_match_the_peer_workload_shares() {
        // The peer workload's figures for N = 100,000: SKU 0 about 6.0%, the top 1%
        // about 60%, the top 10% about 80%.
        let skus = 100_000;
        let mut draws = Draws::new(11);
        let (mut first, mut top_1, mut top_10) = (0u32, 0u32, 0u32);
        let total = 200_000;
        for _ in 0..total {
            let sku = draws.sku(Distribution::Zipf, skus);
            first += u32::from(sku == 0);
            top_1 += u32::from(sku < skus / 100);
            top_10 += u32::from(sku < skus / 10);
        }
        let share = |count: u32| f64::from(count) / f64::from(total);
        assert!((0.055..0.065).contains(&share(first)), "{}", share(first));
        assert!((0.58..0.62).contains(&share(top_1)), "{}", share(top_1));
        assert!((0.78..0.82).contains(&share(top_10)), "{}", share(top_10));
        assert_eq!(sku_for(Distribution::Zipf, skus, 0), 0);
        // As in the peer workload, the last SKU is never drawn: N^(u / 2^30) stays below N.
        assert_eq!(sku_for(Distribution::Zipf, skus, DRAW_RANGE - 1), skus - 2);
    }

    #[test]
    fn quantities_stay_in_range() {
        let mut draws = Draws::new(3);
        let mut seen = [false; 5];
        for _ in 0..1_000 {
            let quantity = draws.quantity(1, 5);
            assert!((1..=5).contains(&quantity));
            seen[quantity as usize - 1] = true;
        }
        assert!(seen.iter().all(|&seen| seen));
    }
}
