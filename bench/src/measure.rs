//! Runs a workload on several threads at once and measures wall time.
//!
//! Each thread builds its [`Worker`] first, then all threads and the timing thread
//! meet at a barrier. The clock starts when the barrier opens and stops when the last
//! worker has been joined, so thread start-up is outside the measured time, and the
//! slowest thread decides the end.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use promesa_engine::Engine;

use crate::catalogue::Catalogue;
use crate::system;
use crate::workload::{Worker, Workload};

/// Operations a worker runs between two checks of the stop flag in [`run_for`].
pub const OPERATIONS_PER_CHECK: u64 = 256;

/// The result of one measured run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// Threads that ran the workload.
    pub threads: usize,
    /// Operations done by all threads together.
    pub operations: u64,
    /// Units done by all threads together: pairs, reads or SKUs read.
    pub units: u64,
    /// Wall time from the barrier to the last join.
    pub elapsed: Duration,
    /// CPU time the process used in that wall time, in seconds, if `/proc` is readable.
    pub cpu_secs: Option<f64>,
}

impl Measurement {
    /// Units per second of wall time.
    pub fn units_per_second(&self) -> f64 {
        self.units as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// CPU time used over the CPU time the threads could have used (wall time times
    /// threads). Well below 1 means other processes took the CPUs, or the workers
    /// waited (blocked on a lock or a page fault).
    pub fn cpu_share(&self) -> Option<f64> {
        let available = self.elapsed.as_secs_f64() * self.threads as f64;
        self.cpu_secs.map(|used| used / available.max(f64::MIN_POSITIVE))
    }
}

/// Runs `operations` operations of `workload`, split as evenly as possible over
/// `threads` threads (thread `i` takes one more while `i < operations % threads`).
pub fn run_count(
    engine: &Engine,
    catalogue: Catalogue,
    workload: Workload,
    threads: usize,
    operations: u64,
    now_ms: u64,
) -> Measurement {
    assert!(threads > 0, "a measurement needs at least one thread");
    let barrier = Barrier::new(threads + 1);
    let share = operations / threads as u64;
    let remainder = operations % threads as u64;

    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|thread| {
                let barrier = &barrier;
                let count = share + u64::from(thread < remainder);
                scope.spawn(move || {
                    let mut worker = Worker::new(engine, catalogue, workload, now_ms);
                    barrier.wait();
                    worker.run(count)
                })
            })
            .collect();

        barrier.wait();
        let (start, cpu_start) = (Instant::now(), system::process_cpu_secs());
        let units = handles.into_iter().map(|handle| handle.join().expect("a worker panicked")).sum();
        let elapsed = start.elapsed();
        let cpu_secs = cpu_start.zip(system::process_cpu_secs()).map(|(start, end)| end - start);
        Measurement { threads, operations, units, elapsed, cpu_secs }
    })
}

/// Runs `workload` on `threads` threads for about `duration`: each thread runs
/// [`OPERATIONS_PER_CHECK`] operations at a time until the timing thread raises the
/// stop flag, so a run ends at most one such batch after `duration`.
pub fn run_for(
    engine: &Engine,
    catalogue: Catalogue,
    workload: Workload,
    threads: usize,
    duration: Duration,
    now_ms: u64,
) -> Measurement {
    run_for_in_batches(
        engine,
        catalogue,
        workload,
        threads,
        duration,
        now_ms,
        Batch::checks_every(OPERATIONS_PER_CHECK),
    )
}

/// How a measuring thread groups its operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Operations between two checks of the stop flag.
    pub operations: u64,
    /// Whether the batch's operations are acknowledged together ([`Engine::batch`]):
    /// one wait for the log per batch instead of one per call.
    pub acknowledged_together: bool,
}

impl Batch {
    /// Checks the stop flag every `operations`; each call waits for its own
    /// acknowledgement.
    pub fn checks_every(operations: u64) -> Self {
        Batch { operations, acknowledged_together: false }
    }
}

/// As [`run_for`], with `batch_operations` operations between two checks of the stop
/// flag. Workloads whose operations wait for the disk use small batches, so that no
/// thread runs on long after the others have stopped.
pub fn run_for_in_batches(
    engine: &Engine,
    catalogue: Catalogue,
    workload: Workload,
    threads: usize,
    duration: Duration,
    now_ms: u64,
    batch: Batch,
) -> Measurement {
    let batch_operations = batch.operations;
    assert!(threads > 0, "a measurement needs at least one thread");
    assert!(batch_operations > 0, "a batch needs at least one operation");
    let barrier = Barrier::new(threads + 1);
    let stop = AtomicBool::new(false);

    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (barrier, stop) = (&barrier, &stop);
                scope.spawn(move || {
                    let mut worker = Worker::new(engine, catalogue, workload, now_ms);
                    let mut operations = 0;
                    let mut units = 0;
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        units += if batch.acknowledged_together {
                            engine.batch(|| worker.run(batch_operations)).expect("the log failed during a batch")
                        } else {
                            worker.run(batch_operations)
                        };
                        operations += batch_operations;
                    }
                    (operations, units)
                })
            })
            .collect();

        barrier.wait();
        let (start, cpu_start) = (Instant::now(), system::process_cpu_secs());
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let (operations, units) = handles
            .into_iter()
            .map(|handle| handle.join().expect("a worker panicked"))
            .fold((0, 0), |(operations, units), (more_operations, more_units)| {
                (operations + more_operations, units + more_units)
            });
        let elapsed = start.elapsed();
        let cpu_secs = cpu_start.zip(system::process_cpu_secs()).map(|(start, end)| end - start);
        Measurement { threads, operations, units, elapsed, cpu_secs }
    })
}

/// Median of `values` (the mean of the middle two for an even count).
///
/// # Panics
///
/// If `values` is empty.
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "the median of no values is undefined");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[middle] } else { (sorted[middle - 1] + sorted[middle]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::build_engine;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0]), 5.0);
    }

    #[test]
    fn run_count_splits_uneven_counts() {
        let catalogue = Catalogue::new(20);
        let engine = build_engine(&catalogue, 1_000);
        let measurement = run_count(&engine, catalogue, Workload::AvailabilityRead, 3, 10, 1_000);
        assert_eq!(measurement.operations, 10);
        assert_eq!(measurement.units, 10);
        assert_eq!(measurement.threads, 3);
    }

    #[test]
    fn run_for_stops_after_duration() {
        let catalogue = Catalogue::new(20);
        let engine = build_engine(&catalogue, 1_000);
        let duration = Duration::from_millis(20);
        let measurement = run_for(&engine, catalogue, Workload::HotReserveRelease, 2, duration, 1_000);
        assert!(measurement.elapsed >= duration);
        assert!(measurement.units >= 2 * OPERATIONS_PER_CHECK);
        assert_eq!(measurement.units % OPERATIONS_PER_CHECK, 0);
        assert_eq!(engine.stats().ended_reservations_kept, measurement.units);
    }
}
