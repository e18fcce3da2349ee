//! Retry delays for redelivered messages: exponential in the receive count, capped, with jitter so that a
//! batch that failed together does not come back together.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_secs(30), cap: Duration::from_secs(15 * 60) }
    }
}

impl Backoff {
    /// The ceiling of the delay after the `receive_count`-th receive (1 = first delivery): base × 2^(n-1), capped.
    pub fn ceiling(&self, receive_count: u32) -> Duration {
        let exponent = receive_count.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << exponent).min(self.cap)
    }

    /// "Equal jitter": half the ceiling for sure, the other half at random, so delays still grow.
    pub fn delay(&self, receive_count: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(receive_count).as_millis() as u64;
        let half = ceiling / 2;
        Duration::from_millis(half + rng.random_range(0..=ceiling - half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn ceiling_doubles_per_receive_until_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(0), Duration::from_secs(30));
        assert_eq!(b.ceiling(1), Duration::from_secs(30));
        assert_eq!(b.ceiling(2), Duration::from_secs(60));
        assert_eq!(b.ceiling(5), Duration::from_secs(480));
        assert_eq!(b.ceiling(6), Duration::from_secs(900));
        assert_eq!(b.ceiling(1000), Duration::from_secs(900));
    }

    #[test]
    fn delay_stays_between_half_and_whole_ceiling_and_varies() {
        let b = Backoff::default();
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<_> = (0..200).map(|_| b.delay(3, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_secs(60) && *d <= Duration::from_secs(120)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 50, "jitter should spread delays, got {} distinct", distinct.len());
    }
}
