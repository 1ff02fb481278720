//! The inventory position of one SKU at one location, and its lock.
//!
//! A position is 32 bytes of 32-bit atomics guarded by a sequence lock: a writer claims
//! the position with one compare-and-swap of `version` from even to odd, changes the
//! counters, and releases it by storing the next even version. Readers never write: they
//! read `version`, the counters, and `version` again, and retry if it changed or was odd,
//! so every read sees the counters of one moment. Writers touching several positions
//! claim them in index order, so two writers never wait on each other in a cycle.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering, fence};

/// One position's counters. All quantities are units; `hold_deadline_floor_s` is a
/// lower bound, in seconds since the Unix epoch, of the deadlines of holds counted in
/// `reserved` (`u32::MAX` when nothing is held).
#[derive(Default)]
#[repr(C, align(32))]
pub(crate) struct Position {
    version: AtomicU32,
    sku: AtomicU32,
    location: AtomicU32,
    hold_deadline_floor_s: AtomicU32,
    on_hand: AtomicU32,
    reserved: AtomicU32,
    allocated: AtomicU32,
    safety_stock: AtomicU32,
}

const _: () = assert!(size_of::<Position>() == 32);

// SAFETY: a position is eight AtomicU32 fields; all-zero bytes make each 0, which is
// what `Default` builds.
unsafe impl crate::chunked::ChunkElement for Position {
    const ALL_ZEROS_IS_DEFAULT: bool = true;
}

/// The counters of one position at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub on_hand: u32,
    pub reserved: u32,
    pub allocated: u32,
    pub safety_stock: u32,
    /// Lower bound of the held deadlines, in seconds; `u32::MAX` when nothing is held.
    pub hold_deadline_floor_s: u32,
}

impl Counters {
    /// ATP for a channel: on hand − reserved − allocated, minus safety stock unless
    /// the channel may sell it. Negative in shortage or when safety stock exceeds the
    /// free units.
    #[inline]
    pub fn atp(&self, may_sell_safety_stock: bool) -> i64 {
        let free = i64::from(self.on_hand) - i64::from(self.reserved) - i64::from(self.allocated);
        if may_sell_safety_stock { free } else { free - i64::from(self.safety_stock) }
    }

    /// True if and only if reserved + allocated exceeds on hand.
    #[inline]
    pub fn in_shortage(&self) -> bool {
        u64::from(self.reserved) + u64::from(self.allocated) > u64::from(self.on_hand)
    }

    /// Returns whether a hold may have passed its deadline at `now_ms`. False means
    /// the `reserved` count has no expired units.
    #[inline]
    pub fn may_hold_expired(&self, now_ms: u64) -> bool {
        self.reserved > 0 && now_ms >= u64::from(self.hold_deadline_floor_s) * 1_000
    }
}

impl Position {
    pub(crate) fn init(&self, sku: u32, location: u32) {
        self.sku.store(sku, Ordering::Relaxed);
        self.location.store(location, Ordering::Relaxed);
        self.hold_deadline_floor_s.store(u32::MAX, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn sku(&self) -> u32 {
        self.sku.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn location(&self) -> u32 {
        self.location.load(Ordering::Relaxed)
    }

    /// Reads the counters of one moment without blocking writers.
    #[inline]
    pub(crate) fn read(&self) -> Counters {
        let mut spins = 0u32;
        loop {
            let before = self.version.load(Ordering::Acquire);
            if before & 1 == 0 {
                let counters = self.load_counters();
                fence(Ordering::Acquire);
                if self.version.load(Ordering::Relaxed) == before {
                    return counters;
                }
            }
            backoff(&mut spins);
        }
    }

    #[inline]
    fn load_counters(&self) -> Counters {
        Counters {
            on_hand: self.on_hand.load(Ordering::Relaxed),
            reserved: self.reserved.load(Ordering::Relaxed),
            allocated: self.allocated.load(Ordering::Relaxed),
            safety_stock: self.safety_stock.load(Ordering::Relaxed),
            hold_deadline_floor_s: self.hold_deadline_floor_s.load(Ordering::Relaxed),
        }
    }

    /// Reads the counters and the position's LSN stamp (see `PositionGuard`) of one
    /// moment, without blocking writers.
    pub(crate) fn read_stamped(&self, lsn: &AtomicU64) -> (Counters, u64) {
        let mut spins = 0u32;
        loop {
            let before = self.version.load(Ordering::Acquire);
            if before & 1 == 0 {
                let counters = self.load_counters();
                let stamp = lsn.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if self.version.load(Ordering::Relaxed) == before {
                    return (counters, stamp);
                }
            }
            backoff(&mut spins);
        }
    }

    /// Claims the position for writing; the guard releases it on drop, keeps
    /// `shortage_count` (positions whose reserved + allocated exceeds on hand) current,
    /// and stamps `lsn` (the position's slot in the catalog's LSN stamps).
    #[inline]
    pub(crate) fn lock<'a>(&'a self, shortage_count: &'a AtomicI64, lsn: &'a AtomicU64) -> PositionGuard<'a> {
        let mut spins = 0u32;
        loop {
            let version = self.version.load(Ordering::Relaxed);
            if version & 1 == 0
                && self
                    .version
                    .compare_exchange_weak(version, version.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // Stores to the counters must not become visible before the odd version.
                fence(Ordering::Release);
                let counters = self.load_counters();
                return PositionGuard {
                    position: self,
                    version,
                    counters,
                    original: counters,
                    shortage_count,
                    lsn,
                    appended_at_lock: crate::journal::appended().0,
                    replayed_lsn: 0,
                };
            }
            backoff(&mut spins);
        }
    }
}

/// Spins briefly, then yields the thread, while another thread holds a position.
#[inline]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Exclusive access to one position. Changes are made on `counters` and written back
/// when the guard drops, together with the new version.
///
/// On drop, if this thread appended a log record while holding the guard, the guard
/// stores the LSN just past that record in the position's stamp. Every record that
/// touches a position is appended under its lock, so a stamp of `s` means: every
/// record touching this position that ends at or below `s` is in its counters. A
/// snapshot keeps the stamp, and recovery replays onto the position only the records
/// that end above it.
pub(crate) struct PositionGuard<'a> {
    position: &'a Position,
    version: u32,
    /// The counters as this writer changes them.
    pub counters: Counters,
    original: Counters,
    shortage_count: &'a AtomicI64,
    lsn: &'a AtomicU64,
    /// How many records this thread had appended when the guard was taken.
    appended_at_lock: u64,
    /// At replay, the LSN just past the record being applied.
    pub replayed_lsn: u64,
}

impl PositionGuard<'_> {
    /// Lowers `reserved` by `units`, resetting the deadline floor when nothing is
    /// left held.
    pub(crate) fn unhold(&mut self, units: u32) {
        debug_assert!(self.counters.reserved >= units);
        self.counters.reserved = self.counters.reserved.saturating_sub(units);
        if self.counters.reserved == 0 {
            self.counters.hold_deadline_floor_s = u32::MAX;
        }
    }
}

impl Drop for PositionGuard<'_> {
    fn drop(&mut self) {
        let position = self.position;
        let new = self.counters;
        let shortage_change = i64::from(new.in_shortage()) - i64::from(self.original.in_shortage());
        if shortage_change != 0 {
            self.shortage_count.fetch_add(shortage_change, Ordering::Relaxed);
        }
        if new != self.original {
            position.on_hand.store(new.on_hand, Ordering::Relaxed);
            position.reserved.store(new.reserved, Ordering::Relaxed);
            position.allocated.store(new.allocated, Ordering::Relaxed);
            position.safety_stock.store(new.safety_stock, Ordering::Relaxed);
            position.hold_deadline_floor_s.store(new.hold_deadline_floor_s, Ordering::Relaxed);
        }
        let (appended, appended_lsn) = crate::journal::appended();
        let stamp = if appended != self.appended_at_lock { appended_lsn } else { self.replayed_lsn };
        if stamp != 0 {
            self.lsn.store(stamp, Ordering::Relaxed);
        }
        position.version.store(self.version.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(on_hand: u32, reserved: u32, allocated: u32, safety_stock: u32) -> Counters {
        Counters { on_hand, reserved, allocated, safety_stock, hold_deadline_floor_s: u32::MAX }
    }

    fn check_atp(c: Counters, may_sell_safety_stock: bool, expected: i64) {
        assert_eq!(c.atp(may_sell_safety_stock), expected, "{c:?}");
    }

    #[test]
    fn atp_formula() {
        check_atp(counters(10, 0, 0, 0), false, 10);
        check_atp(counters(10, 3, 2, 0), false, 5);
        check_atp(counters(10, 3, 2, 4), false, 1);
        check_atp(counters(10, 3, 2, 4), true, 5);
        check_atp(counters(2, 2, 0, 0), false, 0);
        check_atp(counters(0, 2, 0, 0), false, -2);
        check_atp(counters(5, 0, 0, 7), false, -2);
        check_atp(counters(u32::MAX, 0, 0, 0), true, i64::from(u32::MAX));
    }

    #[test]
    fn shortage_only_when_commitments_exceed_on_hand() {
        assert!(!counters(5, 3, 2, 0).in_shortage());
        assert!(counters(4, 3, 2, 0).in_shortage());
        assert!(!counters(5, 0, 0, 9).in_shortage());
    }

    #[test]
    fn guard_writes_back_and_bumps_version() {
        let position = Position::default();
        let shortage = AtomicI64::new(0);
        let lsn = AtomicU64::new(0);
        position.init(1, 2);
        {
            let mut guard = position.lock(&shortage, &lsn);
            guard.counters.on_hand = 3;
            guard.counters.reserved = 4;
        }
        assert_eq!(shortage.load(Ordering::Relaxed), 1);
        {
            let mut guard = position.lock(&shortage, &lsn);
            guard.counters.on_hand = 9;
            guard.replayed_lsn = 77;
        }
        assert_eq!(position.read_stamped(&lsn), (position.read(), 77));
        assert_eq!(shortage.load(Ordering::Relaxed), 0);
        assert_eq!(position.read().on_hand, 9);
        assert_eq!(position.read().reserved, 4);
        assert_eq!(position.version.load(Ordering::Relaxed), 4);
    }
}
