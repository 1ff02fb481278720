//! One thread's loop of engine calls.
//!
//! A [`Worker`] owns its request buffers and refills them in place for every call.
//! A reserve needs a unique reservation id and the codes of random positions, and
//! writing them into reused `String`s keeps the benchmark's own allocations out of
//! the figures. The engine's allocations (the stored reservation, the outcome) stay in.
//!
//! Every worker uses a fixed `now_ms` and holds for [`HOLD_TTL_MS`], longer than any
//! measurement, so no hold expires and no sweep runs while a workload runs.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use promesa_engine::{Engine, LocationFilter, Policy, ReleaseFrom, ReleaseRequest, ReserveLine, ReserveRequest, Units};

use crate::catalogue::{Catalogue, LOCATIONS, push_decimal, write_location_code, write_sku_code};

/// Time-to-live of every hold, in milliseconds (10 minutes).
pub const HOLD_TTL_MS: u64 = 600_000;

/// Maximum SKUs whose codes a worker keeps in a table. Up to this many, workers copy
/// codes from the table. Above it (the 10,000,000-position catalogue), they format
/// each code: that costs about 15 ns, but keeps the table's cache misses out of the
/// engine's figures.
pub const CODE_TABLE_SKUS_MAX: u64 = 1 << 16;

/// Source of worker numbers. Every reservation id starts with its worker's number, so
/// no two workers in a process make the same id, even on one engine.
static NEXT_WORKER: AtomicU64 = AtomicU64::new(0);

/// The operation a [`Worker`] repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Reserve one unit on each of `lines` uniformly random positions (all or
    /// nothing), then release the reservation. One operation is one pair.
    ReserveRelease {
        /// Lines per reservation, at least 1.
        lines: usize,
    },
    /// Reserve one unit of position 0 (the hot SKU), then release it. One operation
    /// is one pair.
    HotReserveRelease,
    /// Read the availability of one uniformly random position by its codes, with
    /// `Engine::availability`. One operation is one read.
    AvailabilityRead,
    /// Read the availability of `skus` uniformly random SKUs over all their locations
    /// with one `Engine::availability_batch` call. One operation is one call, and
    /// counts `skus` units.
    AvailabilityBatch {
        /// SKUs per call, at least 1.
        skus: usize,
    },
}

impl Workload {
    /// Units counted per operation: pairs, reads, or SKUs read.
    pub fn units_per_operation(&self) -> u64 {
        match *self {
            Workload::AvailabilityBatch { skus } => skus as u64,
            _ => 1,
        }
    }
}

/// The load generator's small, fast pseudo-random generator (SplitMix64), used here
/// for picking positions.
pub use promesa_loadgen::draws::Draws as SplitMix64;

/// Writes the codes of positions and SKUs, from tables when the catalogue is small.
struct CodeWriter {
    catalogue: Catalogue,
    /// SKU codes by number, or empty above [`CODE_TABLE_SKUS_MAX`] SKUs.
    skus: Vec<String>,
    /// Location codes by number.
    locations: Vec<String>,
}

impl CodeWriter {
    fn new(catalogue: Catalogue) -> Self {
        let code = |write: fn(&mut String, u64), number| {
            let mut code = String::new();
            write(&mut code, number);
            code
        };
        let skus = if catalogue.skus() <= CODE_TABLE_SKUS_MAX {
            (0..catalogue.skus()).map(|sku| code(write_sku_code, sku)).collect()
        } else {
            Vec::new()
        };
        let locations = (0..LOCATIONS).map(|location| code(write_location_code, location)).collect();
        CodeWriter { catalogue, skus, locations }
    }

    /// Replaces the contents of `sku` with the code of SKU number `number`.
    fn write_sku(&self, number: u64, sku: &mut String) {
        sku.clear();
        match self.skus.get(number as usize) {
            Some(code) => sku.push_str(code),
            None => write_sku_code(sku, number),
        }
    }

    /// Replaces the contents of `sku` and `location` with the codes of `position`.
    fn write_position(&self, position: u64, sku: &mut String, location: &mut String) {
        debug_assert!(position < self.catalogue.positions);
        self.write_sku(position / LOCATIONS, sku);
        location.clear();
        location.push_str(&self.locations[(position % LOCATIONS) as usize]);
    }
}

/// One thread's state for running a [`Workload`] against an engine.
pub struct Worker<'e> {
    engine: &'e Engine,
    catalogue: Catalogue,
    codes: CodeWriter,
    workload: Workload,
    now_ms: u64,
    rng: SplitMix64,
    /// Length of the `w<worker>-` prefix kept in `reserve.reservation_id`.
    id_prefix_len: usize,
    sequence: u64,
    reserve: ReserveRequest,
    release: ReleaseRequest,
    /// Code buffers of single reads.
    sku: String,
    location: String,
    /// Code buffers of batch reads, one per SKU of a call.
    batch: Vec<String>,
}

impl<'e> Worker<'e> {
    /// Creates a worker with a process-unique number, ready to run `workload`.
    pub fn new(engine: &'e Engine, catalogue: Catalogue, workload: Workload, now_ms: u64) -> Self {
        let number = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
        let mut reservation_id = String::with_capacity(32);
        reservation_id.push('w');
        push_decimal(&mut reservation_id, number, 1);
        reservation_id.push('-');

        let lines = match workload {
            Workload::ReserveRelease { lines } => {
                assert!(lines > 0, "a reservation needs at least one line");
                lines
            }
            _ => 1,
        };
        let line = ReserveLine { sku: String::with_capacity(16), location: String::with_capacity(16), quantity: 1 };
        let batch_skus = match workload {
            Workload::AvailabilityBatch { skus } => {
                assert!(skus > 0, "a batch read needs at least one SKU");
                skus
            }
            _ => 0,
        };

        Worker {
            engine,
            catalogue,
            codes: CodeWriter::new(catalogue),
            workload,
            now_ms,
            rng: SplitMix64::new(number.wrapping_mul(0xA076_1D64_78BD_642F) ^ now_ms),
            id_prefix_len: reservation_id.len(),
            sequence: 0,
            reserve: ReserveRequest {
                reservation_id,
                channel: None,
                lines: vec![line; lines],
                policy: Policy::AllOrNothing,
                ttl_ms: HOLD_TTL_MS,
            },
            release: ReleaseRequest {
                reservation_id: String::with_capacity(32),
                op_id: "release".to_owned(),
                units: Units::All,
                from: ReleaseFrom::HeldFirst,
            },
            sku: String::with_capacity(16),
            location: String::with_capacity(16),
            batch: (0..batch_skus).map(|_| String::with_capacity(16)).collect(),
        }
    }

    /// Runs `operations` operations and returns the units done (see
    /// [`Workload::units_per_operation`]).
    ///
    /// # Panics
    ///
    /// If the engine rejects a request or a reserve does not hold every line: the
    /// catalogue has stock for every request, so either means a broken workload or
    /// engine.
    pub fn run(&mut self, operations: u64) -> u64 {
        match self.workload {
            Workload::ReserveRelease { .. } => {
                for _ in 0..operations {
                    self.pick_random_positions();
                    self.reserve_and_release();
                }
            }
            Workload::HotReserveRelease => {
                let line = &mut self.reserve.lines[0];
                self.codes.write_position(0, &mut line.sku, &mut line.location);
                for _ in 0..operations {
                    self.reserve_and_release();
                }
            }
            Workload::AvailabilityRead => {
                for _ in 0..operations {
                    self.read_random_position();
                }
            }
            Workload::AvailabilityBatch { .. } => {
                for _ in 0..operations {
                    self.read_random_batch();
                }
            }
        }
        operations * self.workload.units_per_operation()
    }

    fn pick_random_positions(&mut self) {
        for line in &mut self.reserve.lines {
            let position = self.rng.below(self.catalogue.positions);
            self.codes.write_position(position, &mut line.sku, &mut line.location);
        }
    }

    /// Reserves with the next reservation id, then releases that reservation.
    fn reserve_and_release(&mut self) {
        let id = &mut self.reserve.reservation_id;
        id.truncate(self.id_prefix_len);
        push_decimal(id, self.sequence, 1);
        self.sequence += 1;

        let outcome = self.engine.reserve(&self.reserve, self.now_ms).expect("a generated reserve is valid");
        assert!(outcome.held_all(), "reserve {} did not hold every line: {:?}", self.reserve.reservation_id, outcome);

        self.release.reservation_id.clear();
        self.release.reservation_id.push_str(&self.reserve.reservation_id);
        let released = self.engine.release(&self.release, self.now_ms).expect("the reservation was just made");
        black_box(released);
    }

    fn read_random_position(&mut self) {
        let position = self.rng.below(self.catalogue.positions);
        self.codes.write_position(position, &mut self.sku, &mut self.location);
        let availability =
            self.engine.availability(&self.sku, &self.location, None, self.now_ms).expect("the position exists");
        black_box(availability);
    }

    fn read_random_batch(&mut self) {
        let skus = self.catalogue.skus();
        for code in &mut self.batch {
            self.codes.write_sku(self.rng.below(skus), code);
        }
        let codes: Vec<&str> = self.batch.iter().map(String::as_str).collect();
        let results = self
            .engine
            .availability_batch(&codes, LocationFilter::All, None, false, self.now_ms)
            .expect("the batch is within the engine's limits");
        debug_assert!(results.iter().all(Result::is_ok));
        debug_assert!(results.iter().all(|result| {
            let total = result.as_ref().map_or(0, |sku| sku.total_atp);
            total > 0 && total <= (LOCATIONS * crate::catalogue::ON_HAND) as i64
        }));
        black_box(results);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::build_engine;
    use crate::measure::run_count;

    const NOW_MS: u64 = 1_700_000_000_000;

    fn check_pairs(workload: Workload, threads: usize) {
        let catalogue = Catalogue::new(30);
        let engine = build_engine(&catalogue, NOW_MS);
        let measurement = run_count(&engine, catalogue, workload, threads, 40, NOW_MS);
        assert_eq!(measurement.units, 40);
        let stats = engine.stats();
        assert_eq!(stats.open_reservations, 0);
        assert_eq!(stats.ended_reservations_kept, 40);
        assert_eq!(engine.audit(), Ok(()));
    }

    #[test]
    fn reserve_release_one_line() {
        check_pairs(Workload::ReserveRelease { lines: 1 }, 1);
        check_pairs(Workload::ReserveRelease { lines: 1 }, 2);
    }

    #[test]
    fn reserve_release_five_lines() {
        check_pairs(Workload::ReserveRelease { lines: 5 }, 1);
        check_pairs(Workload::ReserveRelease { lines: 5 }, 2);
    }

    #[test]
    fn hot_reserve_release() {
        check_pairs(Workload::HotReserveRelease, 1);
        check_pairs(Workload::HotReserveRelease, 2);
    }

    #[test]
    fn availability_reads_count_reads() {
        let catalogue = Catalogue::new(30);
        let engine = build_engine(&catalogue, NOW_MS);
        for threads in [1, 2] {
            let measurement = run_count(&engine, catalogue, Workload::AvailabilityRead, threads, 50, NOW_MS);
            assert_eq!(measurement.units, 50);
        }
    }

    #[test]
    fn availability_batches_count_skus() {
        let catalogue = Catalogue::new(30);
        let engine = build_engine(&catalogue, NOW_MS);
        for threads in [1, 2] {
            let workload = Workload::AvailabilityBatch { skus: 7 };
            let measurement = run_count(&engine, catalogue, workload, threads, 5, NOW_MS);
            assert_eq!(measurement.units, 35);
        }
    }

    #[test]
    fn code_writer_matches_catalogue_codes() {
        let (mut sku, mut location) = (String::new(), String::new());
        let (mut expected_sku, mut expected_location) = (String::new(), String::new());
        for positions in [25, CODE_TABLE_SKUS_MAX * LOCATIONS + 1] {
            let catalogue = Catalogue::new(positions);
            let writer = CodeWriter::new(catalogue);
            assert_eq!(writer.skus.is_empty(), positions > CODE_TABLE_SKUS_MAX * LOCATIONS);
            for position in [0, 13, positions - 1] {
                writer.write_position(position, &mut sku, &mut location);
                catalogue.write_position_codes(position, &mut expected_sku, &mut expected_location);
                assert_eq!(sku, expected_sku);
                assert_eq!(location, expected_location);
            }
        }
    }

    #[test]
    fn random_below_stays_in_range() {
        let mut rng = SplitMix64::new(1);
        let mut seen = [false; 7];
        for _ in 0..1_000 {
            let value = rng.below(7);
            assert!(value < 7);
            seen[value as usize] = true;
        }
        assert!(seen.iter().all(|&hit| hit));
    }
}
