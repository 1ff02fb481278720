//! The child process of the crash test in `tests/engine/crash.rs`. It opens a durable
//! engine on a data folder and runs a seeded stream of concurrent reserves, confirms,
//! releases and stock counts on a few hot positions until the test kills it.
//!
//! Usage: `promesa-crash-child <data-folder> <seed> <threads> <segment-bytes>`
//!
//! The write-ahead log goes to `<data-folder>/wal`, in segments of `<segment-bytes>`,
//! and is synced before each acknowledgement (`Durability::Sync`). A snapshot is taken
//! every `SNAPSHOT_LOG_BYTES` of log while the workers run; the segments it deletes
//! move to `<data-folder>/wal-archive`, so the test can still read the whole log. Every request is
//! written to `<data-folder>/acks-<seed>.tsv` twice: an `intent` line before the
//! engine call, and an `ack` line after the call returned success. A line is one
//! `write` of tab-separated fields:
//!
//! ```text
//! intent  <thread>  <request fields>
//! ack     <thread>  <request fields>  <outcome>
//! ```
//!
//! Request fields, by kind:
//!
//! - `reserve <id> <channel> <policy> <ttl ms> <lines>`: policy `all-or-nothing` or
//!   `partial`, lines `SKU@LOC:quantity` joined by commas. The outcome is two fields:
//!   the units held per line, joined by commas, and the deadline in milliseconds.
//! - `confirm <id> <op id> <units>` and `release <id> <op id> <units> <from>`: units
//!   `all` or `line:quantity`, from `held-first`, `held` or `allocated`. The outcome is
//!   the units moved per line.
//! - `on-hand <SKU@LOC> <units>` and `safety-stock <SKU@LOC> <units>`: the outcome is
//!   `ok`.
//!
//! Threads are `setup` (on a fresh log only) and `w0`, `w1`, and so on. A worker
//! changes only its own reservations. It sets on hand and safety stock only of the
//! positions it owns (position index modulo the thread count). So the acknowledgements
//! of one reservation or one position come from one thread, in order. A worker also
//! repeats its last acknowledged request now and then, and exits with an error if the
//! repeat does not return the first outcome.
//!
//! The child's clock starts after the log's last record and moves 2 ms per request.
//! Most holds live a day, far longer than a run. One reserve in four gets a time-to-live
//! of 1 to 2 s instead, so its hold expires after 500 to 1,000 requests and reserves
//! use the units it frees. Workers never confirm or release those short holds, so an
//! expiry cannot race with a worker's own request.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use promesa_engine::snapshot::{SnapshotPolicy, SnapshotScheduler};
use promesa_engine::wal::scan::ScanOptions;
use promesa_engine::wal::writer::LogConfig;
use promesa_engine::{
    ConfirmRequest, Engine, EngineConfig, LineQuantity, Policy, ReleaseFrom, ReleaseRequest, ReserveLine,
    ReserveRequest, Units,
};
use promesa_tests::{ArchivingStorage, T0_MS, warehouse};

const SKUS: [&str; 3] = ["HOT-A", "HOT-B", "HOT-C"];
const LOCATIONS: [&str; 2] = ["L0", "L1"];
const POSITIONS: usize = SKUS.len() * LOCATIONS.len();
/// A channel that may sell safety stock, unlike the channel `default`.
const STORE_CHANNEL: &str = "store";
const ON_HAND_START: u64 = 6;
/// Safety stock of the `L0` positions at setup. `L1` positions start with none.
const SAFETY_STOCK_START: u64 = 1;
/// Maximum on hand a worker sets, low enough that reserves often find no ATP.
const ON_HAND_SET_MAX: u64 = 8;
const SAFETY_STOCK_SET_MAX: u64 = 2;
/// Time-to-live of most holds: a day, far longer than a run at 2 ms per request.
const TTL_MS: u64 = 24 * 60 * 60 * 1_000;
/// Time-to-live range of the holds that expire during a run, in milliseconds.
const SHORT_TTL_MS: std::ops::RangeInclusive<u64> = 1_000..=2_000;
/// Percentage of reserves with a short time-to-live.
const SHORT_TTL_PERCENT: u64 = 25;
/// Engine time that passes per request, in milliseconds.
const CLOCK_STEP_MS: u64 = 2;
/// Maximum requests per worker, so that a child that is never killed still exits.
const REQUESTS_PER_THREAD_MAX: u64 = 1_000_000;
/// Wall-clock time after which the workers stop by themselves, so that a child whose
/// parent died does not run on.
const RUN_TIME_MAX: Duration = Duration::from_secs(120);
const THREADS_MAX: usize = 16;
/// Log growth between snapshots: a few segments, so that snapshots run, and delete
/// segments, while the workers run and when the child is killed.
const SNAPSHOT_LOG_BYTES: u64 = 6 * 1_024;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [folder, seed, threads, segment_bytes] = arguments.as_slice() else {
        eprintln!("usage: promesa-crash-child <data-folder> <seed> <threads> <segment-bytes>");
        return ExitCode::from(2);
    };
    let (Ok(seed), Ok(threads), Ok(segment_bytes)) =
        (seed.parse::<u64>(), threads.parse::<usize>(), segment_bytes.parse::<u64>())
    else {
        eprintln!("invalid arguments {arguments:?}: the seed, thread count and segment size are unsigned integers");
        return ExitCode::from(2);
    };
    if !(1..=THREADS_MAX).contains(&threads) {
        eprintln!("invalid thread count {threads}: expected 1 to {THREADS_MAX}");
        return ExitCode::from(2);
    }
    let log_config = LogConfig {
        segment_bytes_max: segment_bytes,
        snapshot: SnapshotPolicy {
            interval_ms: 0,
            log_bytes: SNAPSHOT_LOG_BYTES,
            on_close: true,
            check_interval_ms: 1,
        },
        ..LogConfig::default()
    };
    match run(Path::new(folder), seed, threads, log_config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("promesa-crash-child (seed {seed}): {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(folder: &Path, seed: u64, threads: usize, log_config: LogConfig) -> Result<(), String> {
    let storage = ArchivingStorage::new(&folder.join("wal"), &folder.join("wal-archive"))
        .map_err(|error| format!("failed to create the log folder: {error}"))?;
    let (engine, report) =
        Engine::open(EngineConfig::default(), Arc::new(storage), log_config, ScanOptions::default(), T0_MS)
            .map_err(|error| format!("recovery failed: {error}"))?;
    let engine = Arc::new(engine);
    let acks = AckFile::create(&folder.join(format!("acks-{seed}.tsv")))?;
    let clock = StepClock { base_ms: engine.now_ms().max(T0_MS) + 1, steps: AtomicU64::new(0) };

    if report.snapshot.is_none() && report.records_replayed == 0 {
        set_up(&engine, &acks, &clock)?;
    }
    let snapshots = SnapshotScheduler::start(Arc::clone(&engine))
        .map_err(|error| format!("failed to start the snapshot thread: {error}"))?;

    let stop_at = Instant::now() + RUN_TIME_MAX;
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let mut worker = Worker::new(&engine, &acks, &clock, seed, thread, threads);
                scope.spawn(move || worker.run(stop_at))
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().unwrap_or_else(|_| Err("a worker panicked".into()))).collect()
    });
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    snapshots.stop();
    let engine = Arc::into_inner(engine).ok_or("the engine is still shared after the workers stopped")?;
    engine.close().map_err(|error| format!("closing the log failed: {error}"))
}

/// Locations, the store channel and every hot position with its starting stock.
fn set_up(engine: &Engine, acks: &AckFile, clock: &StepClock) -> Result<(), String> {
    for location in LOCATIONS {
        engine.upsert_location(&warehouse(location)).map_err(|error| format!("upsert location {location}: {error}"))?;
    }
    engine.upsert_channel(STORE_CHANNEL, true).map_err(|error| format!("upsert channel {STORE_CHANNEL}: {error}"))?;
    for position in 0..POSITIONS {
        let on_hand = Request::SetOnHand { position, units: ON_HAND_START };
        execute(engine, acks, "setup", &on_hand, clock.now_ms())?;
        let safety_stock = if position % LOCATIONS.len() == 0 { SAFETY_STOCK_START } else { 0 };
        execute(engine, acks, "setup", &Request::SetSafetyStock { position, units: safety_stock }, clock.now_ms())?;
    }
    Ok(())
}

/// The engine time of the child: a fixed start plus `CLOCK_STEP_MS` per request.
struct StepClock {
    base_ms: u64,
    steps: AtomicU64,
}

impl StepClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + CLOCK_STEP_MS * self.steps.fetch_add(1, Ordering::Relaxed)
    }
}

/// The append-only file of intent and acknowledgement lines. Lines are written
/// without fsync, because the test kills only this process and written lines stay in
/// the page cache.
struct AckFile {
    file: Mutex<File>,
    path: PathBuf,
}

impl AckFile {
    fn create(path: &Path) -> Result<Self, String> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .map_err(|error| format!("failed to create {}: {error}", path.display()))?;
        Ok(AckFile { file: Mutex::new(file), path: path.to_owned() })
    }

    /// Appends one line with one write, so a kill leaves at most a torn last line.
    fn write_line(&self, line: &str) -> Result<(), String> {
        let mut file = self.file.lock().map_err(|_| "the acknowledgement file lock is poisoned".to_owned())?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|error| format!("failed to write {}: {error}", self.path.display()))
    }
}

/// A request in the child's stream, with positions as indexes into the hot positions.
#[derive(Clone, Debug)]
enum Request {
    Reserve(ReserveRequest),
    Confirm(ConfirmRequest),
    Release(ReleaseRequest),
    SetOnHand { position: usize, units: u64 },
    SetSafetyStock { position: usize, units: u64 },
}

fn position_code(position: usize) -> (&'static str, &'static str) {
    (SKUS[position / LOCATIONS.len()], LOCATIONS[position % LOCATIONS.len()])
}

fn units_field(units: &Units) -> String {
    match units {
        Units::All => "all".to_owned(),
        Units::Lines(lines) => {
            lines.iter().map(|line| format!("{}:{}", line.line, line.quantity)).collect::<Vec<_>>().join(",")
        }
    }
}

fn list_field(values: &[u32]) -> String {
    values.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

impl Request {
    /// Returns the request's tab-separated fields, as the acknowledgement file has them.
    fn fields(&self) -> String {
        match self {
            Request::Reserve(request) => {
                let policy = match request.policy {
                    Policy::AllOrNothing => "all-or-nothing",
                    Policy::Partial => "partial",
                    Policy::Backorder => "backorder",
                };
                let lines: Vec<String> = request
                    .lines
                    .iter()
                    .map(|line| format!("{}@{}:{}", line.sku, line.location, line.quantity))
                    .collect();
                let channel = request.channel.as_deref().unwrap_or(promesa_engine::DEFAULT_CHANNEL);
                let (id, ttl_ms) = (&request.reservation_id, request.ttl_ms);
                format!("reserve\t{id}\t{channel}\t{policy}\t{ttl_ms}\t{}", lines.join(","))
            }
            Request::Confirm(request) => {
                format!("confirm\t{}\t{}\t{}", request.reservation_id, request.op_id, units_field(&request.units))
            }
            Request::Release(request) => {
                let from = match request.from {
                    ReleaseFrom::HeldFirst => "held-first",
                    ReleaseFrom::Held => "held",
                    ReleaseFrom::Allocated => "allocated",
                };
                let units = units_field(&request.units);
                format!("release\t{}\t{}\t{units}\t{from}", request.reservation_id, request.op_id)
            }
            Request::SetOnHand { position, units } => {
                let (sku, location) = position_code(*position);
                format!("on-hand\t{sku}@{location}\t{units}")
            }
            Request::SetSafetyStock { position, units } => {
                let (sku, location) = position_code(*position);
                format!("safety-stock\t{sku}@{location}\t{units}")
            }
        }
    }
}

/// What a successful call returned: units per line (held by a reserve, moved by a
/// confirm or release, none for a stock change), the deadline of a reserve, and
/// whether it was a repeat.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    units: Vec<u32>,
    deadline_ms: Option<u64>,
    replayed: bool,
}

/// Writes the intent line, calls the engine, and writes the ack line if the call
/// succeeded. An error from the engine is returned, because the stream never sends a
/// request the engine should reject.
fn execute(engine: &Engine, acks: &AckFile, thread: &str, request: &Request, now_ms: u64) -> Result<Outcome, String> {
    let fields = request.fields();
    acks.write_line(&format!("intent\t{thread}\t{fields}\n"))?;
    let failed = |error: &dyn std::fmt::Display| format!("thread {thread}: request {fields:?} failed: {error}");
    let outcome = match request {
        Request::Reserve(request) => {
            let outcome = engine.reserve(request, now_ms).map_err(|error| failed(&error))?;
            Outcome {
                units: outcome.lines.iter().map(|line| line.held).collect(),
                deadline_ms: Some(outcome.deadline_ms),
                replayed: outcome.replayed,
            }
        }
        Request::Confirm(request) => {
            let outcome = engine.confirm(request, now_ms).map_err(|error| failed(&error))?;
            Outcome { units: outcome.moved.to_vec(), deadline_ms: None, replayed: outcome.replayed }
        }
        Request::Release(request) => {
            let outcome = engine.release(request, now_ms).map_err(|error| failed(&error))?;
            Outcome { units: outcome.moved.to_vec(), deadline_ms: None, replayed: outcome.replayed }
        }
        Request::SetOnHand { position, units } => {
            let (sku, location) = position_code(*position);
            engine.set_on_hand(sku, location, *units, now_ms).map_err(|error| failed(&error))?;
            Outcome { units: Vec::new(), deadline_ms: None, replayed: false }
        }
        Request::SetSafetyStock { position, units } => {
            let (sku, location) = position_code(*position);
            engine.set_safety_stock(sku, location, *units, now_ms).map_err(|error| failed(&error))?;
            Outcome { units: Vec::new(), deadline_ms: None, replayed: false }
        }
    };
    let outcome_field = match (request, outcome.deadline_ms) {
        (Request::SetOnHand { .. } | Request::SetSafetyStock { .. }, _) => "ok".to_owned(),
        (_, Some(deadline_ms)) => format!("{}\t{deadline_ms}", list_field(&outcome.units)),
        (_, None) => list_field(&outcome.units),
    };
    acks.write_line(&format!("ack\t{thread}\t{fields}\t{outcome_field}\n"))?;
    Ok(outcome)
}

/// SplitMix64, a small seeded generator. The tests package has `rand` only as a
/// dev-dependency, which a binary target cannot use.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..bound`. The modulo bias is negligible for small bounds.
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Returns true with probability `percent` / 100.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The child's view of one of its open reservations: per line, units held and
/// allocated.
struct OwnReservation {
    id: String,
    lines: Vec<(u32, u32)>,
}

/// One worker thread's stream of requests.
struct Worker<'a> {
    engine: &'a Engine,
    acks: &'a AckFile,
    clock: &'a StepClock,
    name: String,
    seed: u64,
    rng: SplitMix64,
    /// Positions whose stock this worker sets.
    owned_positions: Vec<usize>,
    open: Vec<OwnReservation>,
    /// The last acknowledged request, which a repeat must return the same outcome for.
    last_repeatable: Option<(Request, Outcome)>,
    counter: u64,
}

impl<'a> Worker<'a> {
    fn new(
        engine: &'a Engine,
        acks: &'a AckFile,
        clock: &'a StepClock,
        seed: u64,
        thread: usize,
        threads: usize,
    ) -> Self {
        Worker {
            engine,
            acks,
            clock,
            name: format!("w{thread}"),
            seed,
            rng: SplitMix64(seed ^ (thread as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F)),
            owned_positions: (0..POSITIONS).filter(|position| position % threads == thread).collect(),
            open: Vec::new(),
            last_repeatable: None,
            counter: 0,
        }
    }

    fn run(&mut self, stop_at: Instant) -> Result<(), String> {
        for _ in 0..REQUESTS_PER_THREAD_MAX {
            if Instant::now() >= stop_at {
                break;
            }
            self.step()?;
        }
        Ok(())
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{:x}-{}-{}", self.seed, self.name, self.counter)
    }

    /// Picks and sends one request.
    fn step(&mut self) -> Result<(), String> {
        let roll = self.rng.below(100);
        let request = match roll {
            0..40 => Some(self.reserve()),
            40..55 => self.confirm(),
            55..80 => self.release(),
            80..88 => self.set_stock(false),
            88..92 => self.set_stock(true),
            _ => None,
        };
        if let Some(request) = request {
            let outcome = execute(self.engine, self.acks, &self.name, &request, self.clock.now_ms())?;
            self.record(request, outcome);
            return Ok(());
        }
        // A repeat of the last acknowledged request, or a reserve if there is none.
        if let Some((request, first)) = self.last_repeatable.clone() {
            let outcome = execute(self.engine, self.acks, &self.name, &request, self.clock.now_ms())?;
            if !outcome.replayed || outcome.units != first.units || outcome.deadline_ms != first.deadline_ms {
                return Err(format!(
                    "thread {}: repeat of {:?} returned {outcome:?}, the first outcome was {first:?}",
                    self.name,
                    request.fields()
                ));
            }
            return Ok(());
        }
        let request = self.reserve();
        let outcome = execute(self.engine, self.acks, &self.name, &request, self.clock.now_ms())?;
        self.record(request, outcome);
        Ok(())
    }

    fn reserve(&mut self) -> Request {
        let line_count = if self.rng.percent(40) { 2 } else { 1 };
        let lines = (0..line_count)
            .map(|_| {
                let (sku, location) = position_code(self.rng.below(POSITIONS as u64) as usize);
                ReserveLine { sku: sku.to_owned(), location: location.to_owned(), quantity: 1 + self.rng.below(2) }
            })
            .collect();
        let policy = if line_count == 2 && self.rng.percent(50) { Policy::Partial } else { Policy::AllOrNothing };
        let channel = self.rng.percent(30).then(|| STORE_CHANNEL.to_owned());
        let reservation_id = self.next_id("r");
        let ttl_ms = if self.rng.percent(SHORT_TTL_PERCENT) {
            SHORT_TTL_MS.start() + self.rng.below(SHORT_TTL_MS.end() - SHORT_TTL_MS.start() + 1)
        } else {
            TTL_MS
        };
        Request::Reserve(ReserveRequest { reservation_id, channel, lines, policy, ttl_ms })
    }

    fn confirm(&mut self) -> Option<Request> {
        let candidates: Vec<usize> =
            (0..self.open.len()).filter(|&index| self.open[index].lines.iter().any(|line| line.0 > 0)).collect();
        let chosen = *candidates.get(self.rng.below(candidates.len().max(1) as u64) as usize)?;
        let reservation = &self.open[chosen];
        let lines: Vec<usize> = (0..reservation.lines.len()).filter(|&line| reservation.lines[line].0 > 0).collect();
        let units = if self.rng.percent(50) {
            Units::All
        } else {
            let line = lines[self.rng.below(lines.len() as u64) as usize];
            let quantity = 1 + self.rng.below(u64::from(reservation.lines[line].0));
            Units::Lines(vec![LineQuantity { line: line as u32, quantity }])
        };
        let reservation_id = reservation.id.clone();
        let op_id = self.next_id("c");
        Some(Request::Confirm(ConfirmRequest { reservation_id, op_id, units }))
    }

    fn release(&mut self) -> Option<Request> {
        let chosen = self.rng.below(self.open.len().max(1) as u64) as usize;
        let reservation = self.open.get(chosen)?;
        let (units, from) = match self.rng.below(3) {
            0 => (Units::All, ReleaseFrom::HeldFirst),
            choice => {
                let from = if choice == 1 { ReleaseFrom::HeldFirst } else { ReleaseFrom::Allocated };
                let available = |held: u32, allocated: u32| match from {
                    ReleaseFrom::Allocated => allocated,
                    _ => held + allocated,
                };
                let lines: Vec<usize> = (0..reservation.lines.len())
                    .filter(|&line| available(reservation.lines[line].0, reservation.lines[line].1) > 0)
                    .collect();
                if lines.is_empty() {
                    (Units::All, ReleaseFrom::HeldFirst)
                } else {
                    let line = lines[self.rng.below(lines.len() as u64) as usize];
                    let (held, allocated) = reservation.lines[line];
                    let quantity = 1 + self.rng.below(u64::from(available(held, allocated)));
                    (Units::Lines(vec![LineQuantity { line: line as u32, quantity }]), from)
                }
            }
        };
        let reservation_id = reservation.id.clone();
        let op_id = self.next_id("x");
        Some(Request::Release(ReleaseRequest { reservation_id, op_id, units, from }))
    }

    fn set_stock(&mut self, safety_stock: bool) -> Option<Request> {
        let chosen = self.rng.below(self.owned_positions.len().max(1) as u64) as usize;
        let position = *self.owned_positions.get(chosen)?;
        Some(if safety_stock {
            Request::SetSafetyStock { position, units: self.rng.below(SAFETY_STOCK_SET_MAX + 1) }
        } else {
            Request::SetOnHand { position, units: self.rng.below(ON_HAND_SET_MAX + 1) }
        })
    }

    /// Updates the worker's open reservations with an acknowledged outcome.
    fn record(&mut self, request: Request, outcome: Outcome) {
        match &request {
            Request::Reserve(reserve) => {
                if outcome.units.iter().any(|&held| held > 0) {
                    if reserve.ttl_ms == TTL_MS {
                        let lines = outcome.units.iter().map(|&held| (held, 0)).collect();
                        self.open.push(OwnReservation { id: reserve.reservation_id.clone(), lines });
                    }
                    self.last_repeatable = Some((request, outcome));
                }
            }
            Request::Confirm(confirm) => {
                let index = self.open.iter().position(|open| open.id == confirm.reservation_id);
                let reservation = &mut self.open[index.expect("a confirm names an open reservation")];
                for (line, &moved) in reservation.lines.iter_mut().zip(&outcome.units) {
                    line.0 -= moved;
                    line.1 += moved;
                }
                self.last_repeatable = Some((request, outcome));
            }
            Request::Release(release) => {
                let index = self.open.iter().position(|open| open.id == release.reservation_id);
                let index = index.expect("a release names an open reservation");
                let reservation = &mut self.open[index];
                for (line, &moved) in reservation.lines.iter_mut().zip(&outcome.units) {
                    let from_held = if release.from == ReleaseFrom::Allocated { 0 } else { moved.min(line.0) };
                    line.0 -= from_held;
                    line.1 -= moved - from_held;
                }
                if reservation.lines.iter().all(|&(held, allocated)| held + allocated == 0) {
                    self.open.swap_remove(index);
                }
                self.last_repeatable = Some((request, outcome));
            }
            Request::SetOnHand { .. } | Request::SetSafetyStock { .. } => {}
        }
    }
}
