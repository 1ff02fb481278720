//! Counters and gauges of the engine, and a consistency audit for tests and operators.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crate::Engine;

/// A snapshot of the engine's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// SKUs interned.
    pub skus: u64,
    /// Locations.
    pub locations: u64,
    /// Channels, including `default`.
    pub channels: u64,
    /// Positions.
    pub positions: u64,
    /// Positions whose reserved + allocated exceeds on hand now (from lowered counts).
    pub positions_in_shortage: u64,
    /// Reserves that left a position's reserved + allocated above on hand. Always 0
    /// unless the no-oversell invariant is broken.
    pub oversold: u64,
    /// Reservations holding or allocating units.
    pub open_reservations: u64,
    /// Ended reservations kept for retries.
    pub ended_reservations_kept: u64,
    /// Ended reservations forgotten after the retention.
    pub forgotten_by_retention: u64,
    /// Ended reservations forgotten early because of the memory bound.
    pub forgotten_by_bound: u64,
    /// Retention actually achieved, in milliseconds: the configured retention, or the
    /// smallest age at which the memory bound made the engine forget an ended
    /// reservation.
    pub retention_achieved_ms: u64,
    /// Holds released by expiry.
    pub holds_expired: u64,
    /// Expiry events dropped because `sweep` was not called to collect them.
    pub expiry_events_dropped: u64,
    /// Adjustment operation ids remembered.
    pub adjustment_ids_kept: u64,
    /// Bytes of positions and their indexes, excluding code strings.
    pub position_bytes: u64,
    /// Bytes of code strings.
    pub code_bytes: u64,
    /// Approximate bytes of reservations and their indexes.
    pub reservation_bytes: u64,
}

impl Engine {
    /// Collects the counters. Visits every reservation shard briefly.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            skus: self.catalog.skus.len() as u64,
            locations: self.catalog.location_count() as u64,
            channels: self.catalog.channels.len() as u64,
            positions: self.catalog.position_count() as u64,
            positions_in_shortage: self.counters.positions_in_shortage.load(Ordering::Relaxed).max(0) as u64,
            oversold: self.counters.oversold.load(Ordering::Relaxed),
            retention_achieved_ms: self.config.retention_ms,
            holds_expired: self.counters.holds_expired.load(Ordering::Relaxed),
            expiry_events_dropped: self.counters.expiry_events_dropped.load(Ordering::Relaxed),
            adjustment_ids_kept: self.adjustments.len() as u64,
            position_bytes: self.catalog.position_bytes() as u64,
            code_bytes: self.catalog.code_bytes() as u64,
            ..Stats::default()
        };
        for shard in self.reservations.shards() {
            stats.open_reservations += shard.open;
            stats.ended_reservations_kept += shard.ended_count() as u64;
            stats.forgotten_by_retention += shard.forgotten_by_retention;
            stats.forgotten_by_bound += shard.forgotten_by_bound;
            stats.retention_achieved_ms = stats.retention_achieved_ms.min(shard.bound_eviction_age_ms_min);
            stats.reservation_bytes += shard.heap_bytes() as u64;
        }
        stats
    }

    /// Checks that every position's reserved and allocated counters equal the sums
    /// over open reservations, and that no position is oversold other than through a
    /// counted shortage. Returns a description of every mismatch.
    ///
    /// Meant for tests and for operators on a quiet engine: concurrent requests can
    /// make it report a mismatch that is only a moment between two changes.
    pub fn audit(&self) -> Result<(), Vec<String>> {
        let mut sums: HashMap<u32, (u64, u64)> = HashMap::new();
        let mut problems = Vec::new();
        for shard in self.reservations.shards() {
            shard.for_each(|reservation| {
                if !reservation.is_open() && reservation.held() + reservation.allocated() > 0 {
                    problems.push(format!("reservation {} is ended but holds units", reservation.id));
                }
                for line in &reservation.lines {
                    if line.held + line.allocated > 0 {
                        let sum = sums.entry(line.position).or_default();
                        sum.0 += u64::from(line.held);
                        sum.1 += u64::from(line.allocated);
                    }
                    if line.held_at_reserve() > line.requested {
                        problems.push(format!("reservation {} holds more than requested", reservation.id));
                    }
                }
            });
        }
        let mut shortage = 0u64;
        for index in 0..self.catalog.position_count() as u32 {
            let counters = self.catalog.position(index).read();
            let (reserved, allocated) = sums.get(&index).copied().unwrap_or_default();
            if u64::from(counters.reserved) != reserved || u64::from(counters.allocated) != allocated {
                problems.push(format!(
                    "position {index}: reserved {} allocated {}, open reservations sum to {reserved} and {allocated}",
                    counters.reserved, counters.allocated
                ));
            }
            shortage += u64::from(counters.in_shortage());
        }
        let counted = self.counters.positions_in_shortage.load(Ordering::Relaxed);
        if counted != shortage as i64 {
            problems.push(format!("shortage counter is {counted}, {shortage} positions are in shortage"));
        }
        let oversold = self.counters.oversold.load(Ordering::Relaxed);
        if oversold != 0 {
            problems.push(format!("{oversold} reserves oversold a position"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}
