//! The draws of a workload: which SKU, how many units. They follow the peer workload
//! exactly, so the figures compare with Redis and PostgreSQL line by line: `u` is a
//! uniform integer in `[0, 2^30)` and the quantity is uniform in its range.
//!
//! - uniform: SKU `floor(u / 2^30 * N)`;
//! - zipf (exponent 1): rank `k = floor(N^(u / 2^30))`, SKU `k - 1`, so the SKU of rank
//!   k is drawn with probability about 1/k; with N = 100,000 SKU 0 takes about 6% of
//!   the draws and the top 1% of SKUs about 60%.
//! - zipf with another exponent s: rank `k = floor((1 + f (N^(1-s) - 1))^(1/(1-s)))`
//!   with `f = u / 2^30`. This inverts the continuous power law `x^-s` on `[1, N)`, so
//!   the rank k is drawn with probability about `k^-s`. As s tends to 1, the draw
//!   tends to the exponent-1 one.

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

    /// Draws a SKU index in `0..skus` (`skus` > 0), Zipf with exponent 1.
    pub fn sku(&mut self, distribution: Distribution, skus: u64) -> u64 {
        sku_for(distribution, skus, self.below(DRAW_RANGE))
    }

    /// Draws a SKU index in `0..skus` (`skus` > 0), Zipf with exponent `exponent` (> 0).
    pub fn sku_with_exponent(&mut self, distribution: Distribution, skus: u64, exponent: f64) -> u64 {
        let u = self.below(DRAW_RANGE);
        match distribution {
            Distribution::Zipf if exponent != 1.0 => zipf_sku(skus, u, exponent),
            _ => sku_for(distribution, skus, u),
        }
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

/// Returns the SKU a draw `u` in `[0, 2^30)` picks from a Zipf distribution of exponent
/// `exponent` other than 1.
pub fn zipf_sku(skus: u64, u: u64, exponent: f64) -> u64 {
    let fraction = u as f64 / DRAW_RANGE as f64;
    let power = 1.0 - exponent;
    let rank = (1.0 + fraction * ((skus as f64).powf(power) - 1.0)).powf(1.0 / power);
    (rank as u64).saturating_sub(1).min(skus - 1)
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
    fn zipf_exponent_sets_the_head_share() {
        // The continuous law gives the first SKU (ranks 1 to 2) a share of
        // (2^(1-s) - 1) / (N^(1-s) - 1): 50% for s = 2 and 1.35% for s = 0.5, N = 1,000.
        let skus = 1_000;
        let mut draws = Draws::new(5);
        let total = 100_000;
        let mut first = [0u32; 3];
        for (slot, exponent) in [0.5, 1.0, 2.0].into_iter().enumerate() {
            for _ in 0..total {
                let sku = draws.sku_with_exponent(Distribution::Zipf, skus, exponent);
                assert!(sku < skus);
                first[slot] += u32::from(sku == 0);
            }
        }
        let share = |count: u32| f64::from(count) / f64::from(total);
        assert!(share(first[0]) < share(first[1]), "{first:?}");
        assert!(share(first[1]) < share(first[2]), "{first:?}");
        assert!((0.48..0.52).contains(&share(first[2])), "{}", share(first[2]));
        assert!((0.012..0.016).contains(&share(first[0])), "{}", share(first[0]));
        assert_eq!(zipf_sku(skus, 0, 2.0), 0);
        assert_eq!(zipf_sku(skus, DRAW_RANGE - 1, 0.5), skus - 2);
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
