//! The engine's notion of time: the caller's clock, never running backwards.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// High-water mark of the `now_ms` values the engine has seen.
#[derive(Default)]
pub(crate) struct Clock {
    high_water_mark_ms: CachePadded<AtomicU64>,
}

impl Clock {
    /// Raises the mark to `now_ms` and returns the effective time: `now_ms`, or the
    /// mark if `now_ms` is below it. Writes the shared mark only when time advances.
    #[inline]
    pub(crate) fn observe(&self, now_ms: u64) -> u64 {
        let mark = self.high_water_mark_ms.load(Ordering::Acquire);
        if now_ms <= mark {
            return mark;
        }
        let previous = self.high_water_mark_ms.fetch_max(now_ms, Ordering::AcqRel);
        previous.max(now_ms)
    }

    pub(crate) fn high_water_mark(&self) -> u64 {
        self.high_water_mark_ms.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_never_goes_backwards() {
        let clock = Clock::default();
        assert_eq!(clock.observe(1_000), 1_000);
        assert_eq!(clock.observe(900), 1_000);
        assert_eq!(clock.observe(1_001), 1_001);
        assert_eq!(clock.high_water_mark(), 1_001);
    }
}
