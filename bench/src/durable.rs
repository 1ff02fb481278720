//! Durability figures: reserve + release pairs on engines that write their
//! write-ahead log to a folder on disk, the time an engine takes to restart from its
//! snapshot and log, and the time a snapshot takes and how long it stalls requests.
//!
//! Every log lives in a new temporary folder under `std::env::temp_dir()` (`TMPDIR`,
//! else `/tmp`), removed when its measurement ends. That folder's file system and
//! device decide the fdatasync times, so the report names them.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use promesa_engine::snapshot::SnapshotPolicy;
use promesa_engine::wal::scan::ScanOptions;
use promesa_engine::wal::storage::{FsStorage, Storage};
use promesa_engine::wal::writer::{Durability, LogConfig, LogStats};
use promesa_engine::{Engine, EngineConfig, RecoveryReport};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::capacity::Plan;
use crate::catalogue::{Catalogue, load_catalogue};
use crate::measure::{Batch, median, run_count, run_for_in_batches};
use crate::system;
use crate::workload::{Worker, Workload};

/// Minimum durable reserve + release pairs per second the engine aims for.
pub const DURABLE_PAIRS_PER_SECOND_MIN: f64 = 1e6;

/// Minimum log records per second the engine aims to replay at restart.
pub const RECOVERY_RECORDS_PER_SECOND_MIN: f64 = 5e6;

/// Maximum seconds the engine aims to take to restart with 10,000,000 positions.
pub const RESTART_SECS_MAX: f64 = 10.0;

/// Pairs each thread acknowledges together in the batched durable runs: one wait for
/// the log per batch, as a server responding to a frame of requests does.
pub const DURABLE_BATCH_PAIRS: u64 = 512;

/// Threads that make the reserve + release pairs written to the recovery log.
const RECOVERY_PAIR_THREADS: usize = 2;

/// Reserve + release pairs on engines that log to disk.
#[derive(Clone, Debug, Serialize)]
pub struct DurableFigures {
    /// Positions of the catalogue. Each pair reserves one unit of a uniformly random
    /// position.
    pub positions: u64,
    /// Folder the temporary log folders were made in.
    pub log_parent_folder: String,
    /// File system and device of that folder, from `/proc/self/mounts`.
    pub log_file_system: Option<String>,
    /// Pairs with `Durability::Sync` (the default): each reserve and each release
    /// returns after the fdatasync that covers its log record.
    pub reserve_release: DurableRates,
    /// Log records per write + fdatasync group (`LogStats::records / groups`) during
    /// the runs at `reserve_release.best_threads`.
    pub records_per_fsync: f64,
    /// Median fdatasync time of the engine measured at `reserve_release.best_threads`
    /// (`LogStats::sync_us_p50`), in microseconds. Its histogram also contains the dozen
    /// syncs of loading that engine's catalogue.
    pub fsync_us_p50: u64,
    /// 99th percentile fdatasync time of that engine, in microseconds.
    pub fsync_us_p99: u64,
    /// Maximum fdatasync time of that engine, in microseconds.
    pub fsync_us_max: u64,
    /// The same pairs with `Durability::Sync`, each thread acknowledging
    /// `DURABLE_BATCH_PAIRS` pairs together (`Engine::batch`): every pair is durable
    /// before its batch returns.
    pub reserve_release_batched: DurableRates,
    /// NOT DURABLE: the same pairs with `Durability::NotDurable`. Records are written
    /// but never synced, and calls return before their records are written.
    pub reserve_release_not_durable: DurableRates,
}

/// Reserve + release pairs per second with one durability setting, at each thread
/// count.
#[derive(Clone, Debug, Serialize)]
pub struct DurableRates {
    /// "sync" or "not_durable".
    pub durability: &'static str,
    /// The acknowledgement mode: "per call", or "per batch of N pairs".
    pub acknowledged: String,
    /// The unit counted: "pairs".
    pub unit: &'static str,
    /// The highest median over the thread counts.
    pub ops_per_sec: f64,
    /// The thread count of `ops_per_sec`.
    pub best_threads: usize,
    /// Median pairs per second at each thread count, as `threads_<count>`.
    #[serde(flatten)]
    pub medians: ThreadMedians,
    /// Details of each thread count, each measured on its own fresh engine and log.
    pub by_threads: Vec<DurableRun>,
}

/// Median rates by thread count, written as the JSON keys `threads_<count>`.
#[derive(Clone, Debug)]
pub struct ThreadMedians(pub Vec<(usize, f64)>);

impl Serialize for ThreadMedians {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (threads, rate) in &self.0 {
            map.serialize_entry(&format!("threads_{threads}"), rate)?;
        }
        map.end()
    }
}

/// The runs at one thread count, on one engine.
#[derive(Clone, Debug, Serialize)]
pub struct DurableRun {
    /// Threads making pairs, each waiting for its own calls.
    pub threads: usize,
    /// Median pairs per second.
    pub pairs_per_sec: f64,
    /// Every run's pairs per second.
    pub runs: Vec<f64>,
    /// Every run's process CPU time over its wall time: the cores kept busy, at most
    /// `machine.cores`.
    pub busy_cores_runs: Vec<Option<f64>>,
    /// Pairs made in all runs.
    pub pairs: u64,
    /// Wall time of all runs, in seconds.
    pub secs: f64,
    /// Mean wall time of one reserve or release call, in microseconds: threads over
    /// calls per second (Little's law), so it includes the wait for the group commit.
    pub call_us_mean: f64,
    /// Log records written during the runs.
    pub log_records: u64,
    /// Write groups during the runs. Under `Durability::Sync` each ends with one
    /// fdatasync, or two when it crosses into a new segment.
    pub log_groups: u64,
    /// `log_records / log_groups`.
    pub records_per_group: f64,
    /// `log_groups / secs`.
    pub groups_per_sec: f64,
    /// Log bytes written per pair, record headers included.
    pub log_bytes_per_pair: f64,
    /// Mean fdatasync time of the groups during the runs, in microseconds
    /// (`Durability::Sync` only).
    pub fsync_us_mean: Option<f64>,
    /// Median fdatasync time of this engine, in microseconds (`Durability::Sync` only).
    pub fsync_us_p50: Option<u64>,
    /// 99th percentile fdatasync time, in microseconds (`Durability::Sync` only).
    pub fsync_us_p99: Option<u64>,
    /// Maximum fdatasync time, in microseconds (`Durability::Sync` only).
    pub fsync_us_max: Option<u64>,
}

/// Restart times of an engine rebuilt from its log.
#[derive(Clone, Debug, Serialize)]
pub struct RecoveryFigures {
    /// Positions the full report loads: 10,000,000.
    pub positions_requested: u64,
    /// Positions loaded in this run (fewer in a quick run).
    pub positions: u64,
    /// Reserve + release pairs made after loading, 2 log records each (`Reserved`,
    /// `Moved`).
    pub reservation_pairs: u64,
    /// Log records replayed after the snapshot by the restart behind
    /// `restart_10m_secs`: 2 per pair (`Reserved`, `Moved`).
    pub records: u64,
    /// The log's end LSN: bytes of every record written, headers included.
    pub log_bytes: u64,
    /// Records replayed per second of replay: `records` over the restart's time
    /// after the snapshot was loaded.
    pub records_per_sec: f64,
    /// Wall time of `Engine::open` (load the snapshot of `positions` positions, scan
    /// and replay the log of `reservation_pairs` pairs, start the log writer), with the
    /// files' pages first dropped from the page cache (see `restarts[].page_cache`).
    pub restart_10m_secs: f64,
    /// Seconds to load the positions into an engine that logs with
    /// `Durability::NotDurable`.
    pub load_secs: f64,
    /// Seconds to make the pairs on 2 threads with `Durability::NotDurable` and close.
    pub pairs_secs: f64,
    /// Every restart measured, in order.
    pub restarts: Vec<Restart>,
}

/// One timed `Engine::open`.
#[derive(Clone, Debug, Serialize)]
pub struct Restart {
    /// The folder's contents: "snapshot", or "snapshot and pairs" (a snapshot of the
    /// positions and a log of the pairs after it).
    pub log: &'static str,
    /// "evicted": the log files were synced and dropped from the page cache with
    /// `posix_fadvise(POSIX_FADV_DONTNEED)` first, so the scan read them from the disk
    /// (or from a cache of the virtual disk outside this machine). "warm": the files
    /// had just been written or read, and their pages were in the page cache.
    pub page_cache: String,
    /// Records replayed.
    pub records: u64,
    /// Seconds spent loading the snapshot, part of `secs`.
    pub snapshot_secs: f64,
    /// Segment files read.
    pub segments: usize,
    /// Bytes of the records replayed, headers included (the log's end LSN).
    pub log_bytes: u64,
    /// Wall time of `Engine::open`.
    pub secs: f64,
    /// `records / (secs - snapshot_secs)`.
    pub records_per_sec: f64,
}

/// A snapshot of the large catalogue taken while one thread makes reserve + release
/// pairs, with `Durability::NotDurable` so that no fdatasync wait hides or adds to a
/// stall.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotFigures {
    /// Positions in the snapshot.
    pub positions: u64,
    /// Reservations in the snapshot, all ended.
    pub reservations: u64,
    /// Bytes of the snapshot file.
    pub size_bytes: u64,
    /// Seconds from the start of the snapshot to the folder sync after its rename.
    pub write_secs: f64,
    /// Seconds of that spent copying the state while requests ran.
    pub copy_secs: f64,
    /// Maximum time the copy held a lock that requests take, in milliseconds.
    pub longest_lock_hold_ms: f64,
    /// Maximum reserve + release pair time while the snapshot ran, in milliseconds:
    /// the longest pause a request saw.
    pub max_pause_ms: f64,
    /// Maximum pair time over a comparable stretch just before the snapshot, in
    /// milliseconds: what the machine alone causes.
    pub baseline_max_pause_ms: f64,
    /// Pairs made before the snapshot, for the baseline.
    pub pairs_before: u64,
    /// Pairs made while the snapshot ran.
    pub pairs_during: u64,
}

/// Phases of the snapshot pause measurement.
const PHASE_BASELINE: u8 = 0;
const PHASE_SNAPSHOT: u8 = 1;
const PHASE_STOP: u8 = 2;

/// A temporary folder under `std::env::temp_dir()` holding one engine's log, removed
/// on drop. Drop the engine first.
pub struct LogFolder {
    dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
}

impl LogFolder {
    /// Creates an empty folder.
    ///
    /// # Panics
    ///
    /// If the folder cannot be created.
    pub fn create() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("promesa-bench-log-")
            .tempdir()
            .unwrap_or_else(|error| panic!("failed to create a log folder in {}: {error}", temp_dir_name()));
        let storage = FsStorage::new(dir.path())
            .unwrap_or_else(|error| panic!("failed to open the log folder {}: {error}", dir.path().display()));
        LogFolder { dir, storage: Arc::new(storage) }
    }

    /// Returns the folder's path.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Opens the engine whose log is in this folder, replaying what the log contains.
    /// It takes snapshots only when asked ([`Engine::snapshot`]), not on a timer nor
    /// when it closes.
    ///
    /// # Panics
    ///
    /// If recovery fails.
    pub fn open(&self, durability: Durability, now_ms: u64) -> (Engine, RecoveryReport) {
        let snapshot = SnapshotPolicy { interval_ms: 0, log_bytes: 0, on_close: false, ..SnapshotPolicy::default() };
        let log_config = LogConfig { durability, snapshot, ..LogConfig::default() };
        let storage = Arc::clone(&self.storage);
        Engine::open(EngineConfig::default(), storage, log_config, ScanOptions::default(), now_ms).unwrap_or_else(
            |error| panic!("failed to open the engine logging to {}: {error}", self.dir.path().display()),
        )
    }

    /// Writes the log files' dirty pages to disk and drops their pages from the page
    /// cache, so that the next open reads the log from the disk.
    fn evict_from_page_cache(&self) -> io::Result<()> {
        for entry in std::fs::read_dir(self.dir.path())? {
            let file = std::fs::File::open(entry?.path())?;
            file.sync_data()?;
            // SAFETY: the descriptor belongs to `file`, which stays open for the call.
            let status = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            if status != 0 {
                return Err(io::Error::from_raw_os_error(status));
            }
        }
        Ok(())
    }
}

fn temp_dir_name() -> String {
    std::env::temp_dir().display().to_string()
}

/// Measures durable and not durable reserve + release pairs on the small catalogue at
/// each of [`Plan::durable_thread_counts`].
pub fn measure_durable(plan: &Plan, now_ms: u64) -> DurableFigures {
    let catalogue = Catalogue::new(plan.positions_small);
    let (per_call, counts) = (Batch::checks_every(1), &plan.durable_thread_counts);
    let reserve_release = measure_durable_rates(plan, catalogue, Durability::Sync, counts, per_call, now_ms);
    let batched = Batch { operations: DURABLE_BATCH_PAIRS, acknowledged_together: true };
    let batched_counts = &plan.durable_batched_thread_counts;
    let reserve_release_batched =
        measure_durable_rates(plan, catalogue, Durability::Sync, batched_counts, batched, now_ms);
    let reserve_release_not_durable =
        measure_durable_rates(plan, catalogue, Durability::NotDurable, counts, per_call, now_ms);

    let best = reserve_release
        .by_threads
        .iter()
        .find(|run| run.threads == reserve_release.best_threads)
        .expect("the best thread count was measured");
    DurableFigures {
        positions: plan.positions_small,
        log_parent_folder: temp_dir_name(),
        log_file_system: system::file_system_of(&std::env::temp_dir()),
        records_per_fsync: best.records_per_group,
        fsync_us_p50: best.fsync_us_p50.unwrap_or_default(),
        fsync_us_p99: best.fsync_us_p99.unwrap_or_default(),
        fsync_us_max: best.fsync_us_max.unwrap_or_default(),
        reserve_release,
        reserve_release_batched,
        reserve_release_not_durable,
    }
}

fn acknowledged_name(batch: Batch) -> String {
    if batch.acknowledged_together { format!("per batch of {} pairs", batch.operations) } else { "per call".to_owned() }
}

fn durability_name(durability: Durability) -> &'static str {
    match durability {
        Durability::Sync => "sync",
        Durability::NotDurable => "not_durable",
    }
}

fn measure_durable_rates(
    plan: &Plan,
    catalogue: Catalogue,
    durability: Durability,
    thread_counts: &[usize],
    batch: Batch,
    now_ms: u64,
) -> DurableRates {
    assert!(!thread_counts.is_empty(), "the plan needs at least one durable thread count");
    let by_threads: Vec<DurableRun> = thread_counts
        .iter()
        .map(|&threads| measure_durable_run(plan, catalogue, durability, threads, batch, now_ms))
        .collect();
    let best = by_threads
        .iter()
        .max_by(|left, right| left.pairs_per_sec.total_cmp(&right.pairs_per_sec))
        .expect("at least one thread count was measured");
    DurableRates {
        durability: durability_name(durability),
        acknowledged: acknowledged_name(batch),
        unit: "pairs",
        ops_per_sec: best.pairs_per_sec,
        best_threads: best.threads,
        medians: ThreadMedians(by_threads.iter().map(|run| (run.threads, run.pairs_per_sec)).collect()),
        by_threads,
    }
}

/// Runs [`Plan::repetitions`] runs of `threads` threads making pairs on a fresh
/// engine that logs to a fresh folder.
fn measure_durable_run(
    plan: &Plan,
    catalogue: Catalogue,
    durability: Durability,
    threads: usize,
    batch: Batch,
    now_ms: u64,
) -> DurableRun {
    let name = format!("{}, acknowledged {}", durability_name(durability), acknowledged_name(batch));
    let folder = LogFolder::create();
    let (engine, _) = folder.open(durability, now_ms);
    load_catalogue(&engine, &catalogue, now_ms);
    let before = settled_log_stats(&engine);

    let workload = Workload::ReserveRelease { lines: 1 };
    let mut runs = Vec::new();
    let mut busy_cores_runs = Vec::new();
    let mut pairs = 0;
    let mut secs = 0.0;
    for _ in 0..plan.repetitions {
        let measurement = run_for_in_batches(&engine, catalogue, workload, threads, plan.measurement, now_ms, batch);
        let busy_cores = measurement.cpu_secs.map(|cpu_secs| cpu_secs / measurement.elapsed.as_secs_f64());
        eprintln!(
            "durable reserve_release ({name}): {threads} threads: {:.0} pairs/s, busy cores {:.2}",
            measurement.units_per_second(),
            busy_cores.unwrap_or(f64::NAN)
        );
        runs.push(measurement.units_per_second());
        busy_cores_runs.push(busy_cores);
        pairs += measurement.units;
        secs += measurement.elapsed.as_secs_f64();
    }

    let after = settled_log_stats(&engine);
    engine.close().unwrap_or_else(|error| panic!("failed to close the engine's log: {error}"));
    let log_records = after.records - before.records;
    let log_groups = after.groups - before.groups;
    let sync = durability == Durability::Sync;
    let synced = |value: u64| sync.then_some(value);
    let calls = 2 * pairs;
    DurableRun {
        threads,
        pairs_per_sec: median(&runs),
        runs,
        busy_cores_runs,
        pairs,
        secs,
        call_us_mean: threads as f64 * secs * 1e6 / calls.max(1) as f64,
        log_records,
        log_groups,
        records_per_group: log_records as f64 / log_groups.max(1) as f64,
        groups_per_sec: log_groups as f64 / secs,
        log_bytes_per_pair: (after.bytes - before.bytes) as f64 / pairs.max(1) as f64,
        fsync_us_mean: sync.then(|| (after.sync_us_total - before.sync_us_total) as f64 / log_groups.max(1) as f64),
        fsync_us_p50: synced(after.sync_us_p50),
        fsync_us_p99: synced(after.sync_us_p99),
        fsync_us_max: synced(after.sync_us_max),
    }
}

/// Returns the log writer's counters once it has written what was queued. Under
/// `Durability::NotDurable` a call returns before its records are written, so the
/// counters are read until they stay the same for [`SETTLE_INTERVAL`].
fn settled_log_stats(engine: &Engine) -> LogStats {
    const SETTLE_INTERVAL: Duration = Duration::from_millis(20);
    let read = || engine.log_stats().expect("the engine writes a log");
    let mut stats = read();
    loop {
        std::thread::sleep(SETTLE_INTERVAL);
        let next = read();
        if next == stats {
            return next;
        }
        stats = next;
    }
}

/// Builds an engine of [`Plan::positions_large`] positions, snapshots it while one
/// thread makes pairs (the snapshot figures), then makes [`Plan::recovery_pairs`]
/// reserve + release pairs, and times `Engine::open` three times: on the snapshot
/// alone, then on the snapshot and the log of the pairs, first with the files' pages
/// dropped from the page cache, then with them cached.
pub fn measure_recovery(plan: &Plan, now_ms: u64) -> (RecoveryFigures, SnapshotFigures) {
    let catalogue = Catalogue::new(plan.positions_large);
    let folder = LogFolder::create();

    // NotDurable writes the same records as Sync without waiting for each batch's
    // fdatasync. Closing writes everything still queued.
    let started = Instant::now();
    let (engine, _) = folder.open(Durability::NotDurable, now_ms);
    load_catalogue(&engine, &catalogue, now_ms);
    let load_secs = started.elapsed().as_secs_f64();
    eprintln!("recovery: loaded {} positions into a logging engine in {load_secs:.1} s", plan.positions_large);
    let snapshot = measure_snapshot(&engine, catalogue, now_ms);
    // Again, with nothing running, so the restarts replay only the pairs made below.
    engine.snapshot().unwrap_or_else(|error| panic!("the snapshot failed: {error}"));
    engine.close().unwrap_or_else(|error| panic!("failed to close the engine's log: {error}"));

    let (engine, snapshot_only) = timed_restart(&folder, "snapshot", "warm".to_owned(), Durability::NotDurable, now_ms);
    check_restored(&engine, plan.positions_large, snapshot.pairs_before + snapshot.pairs_during);

    let started = Instant::now();
    let workload = Workload::ReserveRelease { lines: 1 };
    run_count(&engine, catalogue, workload, RECOVERY_PAIR_THREADS, plan.recovery_pairs, now_ms);
    engine.close().unwrap_or_else(|error| panic!("failed to close the engine's log: {error}"));
    let pairs_secs = started.elapsed().as_secs_f64();
    eprintln!("recovery: made {} pairs in {pairs_secs:.1} s", plan.recovery_pairs);

    let page_cache = match folder.evict_from_page_cache() {
        Ok(()) => "evicted".to_owned(),
        Err(error) => {
            eprintln!(
                "warning: failed to drop the files from the page cache, so the restart reads them cached: {error}"
            );
            format!("warm: eviction failed: {error}")
        }
    };
    let pairs_total = plan.recovery_pairs + snapshot.pairs_before + snapshot.pairs_during;
    let (engine, evicted) = timed_restart(&folder, "snapshot and pairs", page_cache, Durability::Sync, now_ms);
    check_restored(&engine, plan.positions_large, pairs_total);
    drop(engine);
    let (engine, warm) = timed_restart(&folder, "snapshot and pairs", "warm".to_owned(), Durability::Sync, now_ms);
    drop(engine);

    let recovery = RecoveryFigures {
        positions_requested: plan.positions_large_requested,
        positions: plan.positions_large,
        reservation_pairs: plan.recovery_pairs,
        records: evicted.records,
        log_bytes: evicted.log_bytes,
        records_per_sec: evicted.records_per_sec,
        restart_10m_secs: evicted.secs,
        load_secs,
        pairs_secs,
        restarts: vec![snapshot_only, evicted, warm],
    };
    (recovery, snapshot)
}

/// Takes a snapshot while one thread makes reserve + release pairs and times each pair.
/// The thread first makes pairs for as long as the snapshot is expected to take (a
/// baseline of the machine's own stalls), then keeps going until the snapshot is done.
fn measure_snapshot(engine: &Engine, catalogue: Catalogue, now_ms: u64) -> SnapshotFigures {
    let phase = AtomicU8::new(PHASE_BASELINE);
    let (report, baseline, during) = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let mut worker = Worker::new(engine, catalogue, Workload::ReserveRelease { lines: 1 }, now_ms);
            let mut longest = [Duration::ZERO; 2];
            let mut pairs = [0u64; 2];
            loop {
                let current = phase.load(Ordering::Acquire);
                if current == PHASE_STOP {
                    return (longest, pairs);
                }
                let started = Instant::now();
                worker.run(1);
                let index = usize::from(current == PHASE_SNAPSHOT);
                longest[index] = longest[index].max(started.elapsed());
                pairs[index] += 1;
            }
        });
        // A baseline of about the length of a snapshot: 0.1 s per million positions.
        std::thread::sleep(Duration::from_millis((catalogue_positions(engine) / 10_000).clamp(50, 2_000)));
        phase.store(PHASE_SNAPSHOT, Ordering::Release);
        let report = engine.snapshot().unwrap_or_else(|error| panic!("the snapshot failed: {error}"));
        phase.store(PHASE_STOP, Ordering::Release);
        let (longest, pairs) = worker.join().expect("the pair thread panicked");
        (report, (longest[0], pairs[0]), (longest[1], pairs[1]))
    });
    let figures = SnapshotFigures {
        positions: report.positions,
        reservations: report.reservations,
        size_bytes: report.size_bytes,
        write_secs: report.elapsed.as_secs_f64(),
        copy_secs: report.copy_elapsed.as_secs_f64(),
        longest_lock_hold_ms: report.longest_lock_hold.as_secs_f64() * 1e3,
        max_pause_ms: during.0.as_secs_f64() * 1e3,
        baseline_max_pause_ms: baseline.0.as_secs_f64() * 1e3,
        pairs_before: baseline.1,
        pairs_during: during.1,
    };
    eprintln!(
        "snapshot: {} positions, {} reservations, {:.0} MB in {:.2} s (copy {:.2} s); longest pair {:.2} ms during, \
         {:.2} ms before ({} pairs before)",
        figures.positions,
        figures.reservations,
        figures.size_bytes as f64 / 1e6,
        figures.write_secs,
        figures.copy_secs,
        figures.max_pause_ms,
        figures.baseline_max_pause_ms,
        figures.pairs_before
    );
    figures
}

fn catalogue_positions(engine: &Engine) -> u64 {
    engine.stats().positions
}

/// Opens the engine in `folder` and times it.
fn timed_restart(
    folder: &LogFolder,
    log: &'static str,
    page_cache: String,
    durability: Durability,
    now_ms: u64,
) -> (Engine, Restart) {
    let started = Instant::now();
    let (engine, report) = folder.open(durability, now_ms);
    let secs = started.elapsed().as_secs_f64();
    let snapshot_secs = report.snapshot_elapsed.as_secs_f64();
    let restart = Restart {
        log,
        page_cache,
        records: report.records_replayed,
        snapshot_secs,
        segments: report.segments,
        log_bytes: report.end_lsn,
        secs,
        records_per_sec: report.records_replayed as f64 / (secs - snapshot_secs).max(1e-9),
    };
    eprintln!(
        "recovery: restart with {log}, page cache {}: snapshot in {snapshot_secs:.2} s, {} records from {} segments, \
         {secs:.2} s in all, {:.0} records/s",
        restart.page_cache, restart.records, restart.segments, restart.records_per_sec
    );
    (engine, restart)
}

/// Checks that a restarted engine contains what its log recorded, so that a restart
/// figure never comes from a log that replayed only in part.
fn check_restored(engine: &Engine, positions: u64, pairs: u64) {
    let stats = engine.stats();
    assert_eq!(stats.positions, positions, "positions after restart");
    assert_eq!(stats.open_reservations, 0, "open reservations after restart");
    assert_eq!(stats.ended_reservations_kept, pairs, "ended reservations after restart");
}

/// Renders the durability, recovery and snapshot lines of the text table.
pub fn render_table(durable: &DurableFigures, recovery: &RecoveryFigures, snapshot: &SnapshotFigures) -> String {
    let mut out = String::new();
    let file_system = durable.log_file_system.as_deref().unwrap_or("an unknown file system");
    out.push_str(&format!(
        "durable reserve + release (Durability::Sync: each call waits for the fdatasync of its record), \
         {} positions, log in {} on {file_system}:\n",
        durable.positions, durable.log_parent_folder
    ));
    render_runs(&mut out, &durable.reserve_release);
    out.push_str(&format!(
        "the same, each thread acknowledging {DURABLE_BATCH_PAIRS} pairs together (Engine::batch, as a server answers \
         a frame):\n"
    ));
    render_runs(&mut out, &durable.reserve_release_batched);
    out.push_str("call us: mean wall time of one reserve or release call; fsync times in microseconds\n");
    for rates in [&durable.reserve_release, &durable.reserve_release_batched] {
        out.push_str(&format!(
            "best acknowledged {}: {} pairs/s at {} threads (target {})\n",
            rates.acknowledged,
            thousands(rates.ops_per_sec),
            rates.best_threads,
            goal_min(rates.ops_per_sec, DURABLE_PAIRS_PER_SECOND_MIN)
        ));
    }

    let not_durable = &durable.reserve_release_not_durable;
    let by_threads: Vec<String> = not_durable
        .by_threads
        .iter()
        .map(|run| format!("{} at {} threads", millions(run.pairs_per_sec), run.threads))
        .collect();
    out.push_str(&format!(
        "NOT DURABLE (Durability::NotDurable: records written, never synced) reserve + release pairs/s: {}\n",
        by_threads.join(", ")
    ));

    out.push_str(&render_recovery(recovery));
    out.push_str(&format!(
        "snapshot of {} positions and {} reservations: {:.0} MB in {:.2} s (copy {:.2} s, longest lock hold \
         {:.2} ms); longest reserve + release pair {:.2} ms while it ran, {:.2} ms before (NotDurable)\n",
        snapshot.positions,
        snapshot.reservations,
        snapshot.size_bytes as f64 / 1e6,
        snapshot.write_secs,
        snapshot.copy_secs,
        snapshot.longest_lock_hold_ms,
        snapshot.max_pause_ms,
        snapshot.baseline_max_pause_ms
    ));
    out
}

/// Appends one row per thread count of `rates`.
fn render_runs(out: &mut String, rates: &DurableRates) {
    out.push_str(&format!(
        "{:>8} {:>9} {:>8} {:>9} {:>14} {:>11} {:>10} {:>10} {:>11}\n",
        "threads",
        "pairs/s",
        "call us",
        "groups/s",
        "records/fsync",
        "fsync mean",
        "fsync p50",
        "fsync p99",
        "busy cores"
    ));
    for run in &rates.by_threads {
        let busy_cores: Vec<f64> = run.busy_cores_runs.iter().flatten().copied().collect();
        let busy_cores = if busy_cores.is_empty() { "-".to_owned() } else { format!("{:.2}", median(&busy_cores)) };
        out.push_str(&format!(
            "{:>8} {:>9} {:>8.0} {:>9.0} {:>14.1} {:>11} {:>10} {:>10} {:>11}\n",
            run.threads,
            thousands(run.pairs_per_sec),
            run.call_us_mean,
            run.groups_per_sec,
            run.records_per_group,
            run.fsync_us_mean.map_or_else(|| "-".to_owned(), |mean| format!("{mean:.0}")),
            optional_count(run.fsync_us_p50),
            optional_count(run.fsync_us_p99),
            busy_cores
        ));
    }
}

fn render_recovery(recovery: &RecoveryFigures) -> String {
    let mut out = String::new();
    let quick = recovery.positions != recovery.positions_requested;
    out.push_str(&format!(
        "restart from a snapshot of {} positions{} + a log of {} reserve + release pairs = {} records, {:.0} MB:\n",
        recovery.positions,
        if quick { format!(" (quick: in place of {})", recovery.positions_requested) } else { String::new() },
        recovery.reservation_pairs,
        recovery.records,
        recovery.log_bytes as f64 / 1e6
    ));
    for restart in &recovery.restarts {
        out.push_str(&format!(
            "  {}, page cache {}: snapshot {:.2} s + {} records in {:.2} s in all, {} records/s\n",
            restart.log,
            restart.page_cache,
            restart.snapshot_secs,
            restart.records,
            restart.secs,
            millions(restart.records_per_sec)
        ));
    }
    let restart_goal = if quick {
        format!("target {RESTART_SECS_MAX} s is for {} positions", recovery.positions_requested)
    } else {
        format!("target {} s", goal_max(recovery.restart_10m_secs, RESTART_SECS_MAX))
    };
    out.push_str(&format!(
        "  evicted restart: {} records/s (target {}), {:.2} s ({restart_goal})\n",
        millions(recovery.records_per_sec),
        goal_min(recovery.records_per_sec, RECOVERY_RECORDS_PER_SECOND_MIN),
        recovery.restart_10m_secs
    ));
    out
}

fn goal_min(value: f64, min: f64) -> String {
    format!("{}{}", if value >= min { ">= " } else { "SHORT of >= " }, millions(min))
}

fn goal_max(value: f64, max: f64) -> String {
    format!("{}{max}", if value <= max { "<= " } else { "SHORT of <= " })
}

fn millions(per_second: f64) -> String {
    format!("{:.2}M", per_second / 1e6)
}

fn thousands(per_second: f64) -> String {
    format!("{:.1}K", per_second / 1e3)
}

fn optional_count(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}
