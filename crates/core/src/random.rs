//! Seeded random numbers that are identical on every adapter and backend:
//! value i depends only on (seed, i), drawn on the host in f64.

/// SplitMix64's finaliser: a strong 64-bit mix (Steele et al. 2014).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The i-th 64-bit draw of stream `seed` (counter-based, so order-free).
pub fn draw(seed: u64, i: u64) -> u64 {
    mix(mix(seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// A double in [0, 1) from the top 53 bits.
pub fn unit(seed: u64, i: u64) -> f64 {
    (draw(seed, i) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `n` uniform values in [low, high).
pub fn uniform(seed: u64, n: usize, low: f32, high: f32) -> Vec<f32> {
    let (lo, span) = (low as f64, high as f64 - low as f64);
    (0..n as u64)
        .map(|i| {
            let v = (lo + span * unit(seed, i)) as f32;
            // Rounding to f32 can land on `high`; keep the interval half-open.
            if v >= high {
                low.max(high - high.abs() * f32::EPSILON)
            } else {
                v
            }
        })
        .collect()
}

/// `n` normal values by Box–Muller on two uniform draws per value.
pub fn normal(seed: u64, n: usize, mean: f32, std: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let u1 = 1.0 - unit(seed, 2 * i); // (0, 1], so ln is finite
            let u2 = unit(seed, 2 * i + 1);
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (mean as f64 + std as f64 * z) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_distinct_per_seed() {
        assert_eq!(uniform(7, 100, 0.0, 1.0), uniform(7, 100, 0.0, 1.0));
        assert_ne!(uniform(7, 100, 0.0, 1.0), uniform(8, 100, 0.0, 1.0));
        // A prefix of a longer stream equals the shorter stream.
        assert_eq!(normal(3, 10, 0.0, 1.0)[..], normal(3, 20, 0.0, 1.0)[..10]);
    }

    #[test]
    fn moments_match_the_distributions() {
        let n = 200_000;
        let u = uniform(11, n, -1.0, 3.0);
        assert!(u.iter().all(|&v| (-1.0..3.0).contains(&v)));
        let mean_u = u.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        // Uniform(-1, 3): mean 1, standard error of the mean 4/sqrt(12 n) ≈ 0.0026.
        assert!((mean_u - 1.0).abs() < 0.013, "{mean_u}");
        let z = normal(12, n, 2.0, 0.5);
        let m = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = z.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n as f64;
        assert!((m - 2.0).abs() < 0.006, "{m}");
        assert!((var.sqrt() - 0.5).abs() < 0.006, "{}", var.sqrt());
    }
}
