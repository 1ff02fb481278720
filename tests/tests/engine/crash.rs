//! Crash recovery with a real process and a real SIGKILL. The child binary
//! `promesa-crash-child` runs concurrent reserves, confirms, releases and stock counts
//! on six hot positions against a durable engine. The test kills it after a seeded
//! number of acknowledgements, recovers its log in this process and checks that:
//!
//! - every acknowledged change is there, and each request in flight at the kill is
//!   either fully there or absent;
//! - the counters equal the sums over the reservations, and nothing else changed;
//! - in log order, every reserve fitted its channel's ATP (safety stock included), so
//!   no replayed prefix oversells a position;
//! - a second recovery gives the same state, and every acknowledged request repeated
//!   against it returns its first outcome.
//!
//! The child writes an intent line before each call and an ack line after it returned
//! (its module documentation gives the format). A worker sends the requests on one
//! reservation or one position in order, so per worker at most one request is in
//! flight at the kill. Some data folders are reused for several kills, so recovery
//! also runs on a log that was recovered and written to before.
//!
//! One hold in four has a short time-to-live and expires during the run or at
//! recovery. Recovery sets the engine's time to that of the last record in the log and
//! expires every hold due then. So the expected state is exact: a hold with a deadline
//! at or before that time is expired, and any other is not.
//!
//! `PROMESA_CRASH_ITERATIONS` sets the number of kills (default 50). The seed comes
//! from `PROMESA_TEST_SEED` and is printed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promesa_engine::wal::record::{MoveKind, Record};
use promesa_engine::wal::scan::{ScanOptions, scan};
use promesa_engine::wal::storage::{FsStorage, Storage};
use promesa_engine::wal::writer::LogConfig;
use promesa_engine::{
    ConfirmRequest, Engine, EngineConfig, LineQuantity, Policy, PositionAvailability, RecoveryReport, ReleaseFrom,
    ReleaseRequest, ReservationState, ReservationView, ReserveLine, ReserveRequest, Units,
};
use promesa_tests::{ArchivingStorage, T0_MS, seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED_DEFAULT: u64 = 0xC2A5_4001;
/// Kills per run when `PROMESA_CRASH_ITERATIONS` is not set.
const ITERATIONS_DEFAULT: usize = 50;
/// Kills in one data folder at most. Every kill after the first recovers a log that
/// was recovered before.
const KILLS_PER_FOLDER_MAX: usize = 3;
/// Worker acknowledgements before the kill are drawn from `1..=` this, except for one
/// kill in `LONG_RUN_ONE_IN`, which draws from `1..=ACKS_BEFORE_KILL_LONG_MAX`.
const ACKS_BEFORE_KILL_MAX: usize = 400;
const ACKS_BEFORE_KILL_LONG_MAX: usize = 4_000;
const LONG_RUN_ONE_IN: u32 = 8;
/// Worker threads of the child: from 2 up to this many.
const CHILD_THREADS_MAX: usize = 4;
/// How long the test waits for the child's acknowledgements before it fails.
const ACK_WAIT_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_micros(500);
/// Hot positions the child sets up: 3 SKUs at 2 locations.
const POSITIONS: usize = 6;
/// The channel the child creates that may sell safety stock.
const STORE_CHANNEL: &str = "store";
/// Kills after which the test also recovers at a later time, as after a downtime: one
/// in this many.
const DOWNTIME_ONE_IN: u32 = 3;
/// Maximum downtime, in milliseconds: longer than the short holds' time-to-live, far
/// shorter than the long holds' and than the retention of ended reservations.
const DOWNTIME_MS_MAX: u64 = 2_500;
/// Log segment size of the child and of recovery. It is small so that long runs and
/// reused folders cross segment boundaries, and because recovery reads every segment
/// whole. A default 64 MiB segment took about 0.3 s per scan in a debug build on a
/// 2-core virtual machine, which made 50 kills take 84 s instead of 13 s.
const SEGMENT_BYTES: u64 = 8 << 10;

/// What one kill does: the child's thread count, the worker acknowledgements to wait
/// for, and the downtime to recover after, if any.
#[derive(Clone, Copy, Debug)]
struct KillPlan {
    threads: usize,
    acks_before_kill: usize,
    downtime_ms: Option<u64>,
}

/// Where a failure happened, printed in every failure message.
#[derive(Clone, Copy, Debug)]
struct Context {
    seed: u64,
    iteration: usize,
    /// Kills before this one in the same data folder.
    earlier_kills: usize,
    child_seed: u64,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} iteration {} (kill {} in its data folder, child seed {}; replay with PROMESA_TEST_SEED={})",
            self.seed,
            self.iteration,
            self.earlier_kills + 1,
            self.child_seed,
            self.seed
        )
    }
}

/// Counts over the whole run, printed at the end.
#[derive(Debug, Default)]
struct Totals {
    kills: usize,
    worker_acks: usize,
    in_flight: usize,
    in_flight_found_applied: usize,
    /// Holds found expired at a recovery that were not expired at the one before.
    holds_expired: usize,
    /// Holds of `holds_expired` that recovery expired at open.
    holds_expired_at_open: usize,
    torn_tails_cut: usize,
    log_records: u64,
    /// First recoveries that started from a snapshot.
    recoveries_from_snapshot: usize,
    /// Log segments that snapshots deleted (moved to the archive).
    segments_deleted: usize,
}

#[test]
fn sigkill_under_contention_keeps_acknowledged_changes() {
    let seed = seed("sigkill_under_contention_keeps_acknowledged_changes", SEED_DEFAULT);
    let iterations = match std::env::var("PROMESA_CRASH_ITERATIONS") {
        Ok(value) => value.parse().unwrap_or_else(|_| {
            panic!("PROMESA_CRASH_ITERATIONS is {value:?}; expected a number of kills such as 1000")
        }),
        Err(_) => ITERATIONS_DEFAULT,
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut totals = Totals::default();

    let mut iteration = 0;
    while iteration < iterations {
        let folder = tempfile::tempdir().expect("create a temporary data folder");
        let mut model = FolderModel::default();
        let kills = rng.gen_range(1..=KILLS_PER_FOLDER_MAX).min(iterations - iteration);
        for earlier_kills in 0..kills {
            let context = Context { seed, iteration, earlier_kills, child_seed: rng.r#gen() };
            let acks_max =
                if rng.gen_ratio(1, LONG_RUN_ONE_IN) { ACKS_BEFORE_KILL_LONG_MAX } else { ACKS_BEFORE_KILL_MAX };
            let plan = KillPlan {
                threads: rng.gen_range(2..=CHILD_THREADS_MAX),
                acks_before_kill: rng.gen_range(1..=acks_max),
                downtime_ms: rng.gen_ratio(1, DOWNTIME_ONE_IN).then(|| rng.gen_range(1..=DOWNTIME_MS_MAX)),
            };
            crash_and_recover(context, plan, folder.path(), &mut model, &mut totals);
            iteration += 1;
        }
        totals.segments_deleted += std::fs::read_dir(folder.path().join("wal-archive")).map_or(0, Iterator::count);
    }

    eprintln!(
        "crash test: {} kills in {:.1} s, {:.1} worker acknowledgements per kill on average, {} requests in flight \
         at a kill of which {} were recovered, {} holds expired ({} at open), {} torn log tails cut, {:.0} log \
         records per recovery on average, {} recoveries from a snapshot, {} log segments deleted by snapshots",
        totals.kills,
        started.elapsed().as_secs_f64(),
        totals.worker_acks as f64 / totals.kills.max(1) as f64,
        totals.in_flight,
        totals.in_flight_found_applied,
        totals.holds_expired,
        totals.holds_expired_at_open,
        totals.torn_tails_cut,
        totals.log_records as f64 / totals.kills.max(1) as f64,
        totals.recoveries_from_snapshot,
        totals.segments_deleted,
    );
}

/// Runs the child on `folder` until it has acknowledged `plan.acks_before_kill` worker
/// requests, kills it, and checks two recoveries of its log against `model`. If the
/// plan has a downtime, a third recovery after it is checked too. Afterwards `model`
/// contains the recovered state, for the next kill in the same folder.
fn crash_and_recover(context: Context, plan: KillPlan, folder: &Path, model: &mut FolderModel, totals: &mut Totals) {
    let ack_text = run_child_until_acks(context, folder, plan.threads, plan.acks_before_kill);
    let (entries, in_flight) = parse_ack_file(context, &ack_text);
    for entry in &entries {
        model
            .apply_ack(entry)
            .unwrap_or_else(|problem| panic!("{context}: acknowledgement file line {}: {problem}", entry.line_number));
    }
    totals.kills += 1;
    totals.worker_acks += entries.iter().filter(|entry| entry.thread.starts_with('w')).count();
    totals.in_flight += in_flight.len();

    let wal = folder.join("wal");
    let storage: Arc<dyn Storage> =
        Arc::new(ArchivingStorage::new(&wal, &folder.join("wal-archive")).expect("open the log folder"));
    let (engine, first_report) = open(context, &storage, T0_MS);
    totals.torn_tails_cut += usize::from(first_report.cut.is_some());
    totals.recoveries_from_snapshot += usize::from(first_report.snapshot.is_some());
    totals.holds_expired_at_open += first_report.holds_expired_at_open;

    // The engine's time after recovery: that of the last record in the log. Recovery
    // expires every hold due by then, and the checks read at this time too.
    let recovered_now_ms = engine.now_ms();
    let expired_before = model.reservations.values().filter(|reservation| reservation.expired).count();
    totals.in_flight_found_applied += check_recovered(context, &engine, model, &in_flight, recovered_now_ms);
    totals.holds_expired +=
        model.reservations.values().filter(|reservation| reservation.expired).count() - expired_before;
    let before_restart = observe(&engine, model);
    engine.close().unwrap_or_else(|error| panic!("{context}: closing the recovered engine failed: {error}"));

    let log = check_log_order(context, &wal, &folder.join("wal-archive"));
    totals.log_records += log.records;
    log.compare_with(context, &before_restart);

    let (again, second_report) = open(context, &storage, T0_MS);
    assert_eq!(second_report.cut, None, "{context}: the second recovery cut the log again: {second_report:?}");
    assert_eq!(
        second_report.holds_expired_at_open, 0,
        "{context}: the second recovery expired holds that the first left: {second_report:?}"
    );
    assert_eq!(again.now_ms(), recovered_now_ms, "{context}: the second recovery has a different engine time");
    // Closing wrote a snapshot after everything the first recovery did.
    assert!(second_report.snapshot.is_some(), "{context}: closing wrote no snapshot: {second_report:?}");
    assert_eq!(
        second_report.records_replayed, 0,
        "{context}: the second recovery replayed records after the closing snapshot: {second_report:?}"
    );
    if first_report.holds_expired_at_open == 0 {
        assert_eq!(second_report.end_lsn, first_report.end_lsn, "{context}: the log grew between two recoveries");
    }
    assert_eq!(observe(&again, model), before_restart, "{context}: the second recovery differs from the first");
    check_repeats_replay(context, &again, model);
    assert_eq!(observe(&again, model), before_restart, "{context}: repeating acknowledged requests changed state");
    again.close().unwrap_or_else(|error| panic!("{context}: closing the engine failed: {error}"));

    // Down for a while: recovery at a later time expires the holds due by then and
    // logs their expiry, which the next kill's recoveries replay.
    if let Some(downtime_ms) = plan.downtime_ms {
        let (later, report) = open(context, &storage, recovered_now_ms + downtime_ms);
        assert_eq!(later.now_ms(), recovered_now_ms + downtime_ms, "{context}: engine time after the downtime");
        let expired_before = model.reservations.values().filter(|reservation| reservation.expired).count();
        check_recovered(context, &later, model, &[], later.now_ms());
        let expired_at_open =
            model.reservations.values().filter(|reservation| reservation.expired).count() - expired_before;
        assert_eq!(
            report.holds_expired_at_open, expired_at_open,
            "{context}: holds expired at open after a downtime of {downtime_ms} ms: {report:?}"
        );
        totals.holds_expired += expired_at_open;
        totals.holds_expired_at_open += expired_at_open;
        later.close().unwrap_or_else(|error| panic!("{context}: closing the engine failed: {error}"));
    }
}

/// Recovers the log in `storage` at `now_ms` (a time below the log's last record counts
/// as that record's time).
fn open(context: Context, storage: &Arc<dyn Storage>, now_ms: u64) -> (Engine, RecoveryReport) {
    let log_config = LogConfig { segment_bytes_max: SEGMENT_BYTES, ..LogConfig::default() };
    Engine::open(EngineConfig::default(), Arc::clone(storage), log_config, ScanOptions::default(), now_ms)
        .unwrap_or_else(|error| panic!("{context}: recovery at {now_ms} ms failed: {error}"))
}

// The child process.

/// The child process; dropping it kills it, so a failing test leaves no child behind.
struct ChildProcess {
    child: Child,
    stderr_path: PathBuf,
}

impl ChildProcess {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // The child may have exited already, and then there is nothing to kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the child, waits for `acks_before_kill` worker acknowledgements, kills it
/// with SIGKILL, and returns the acknowledgement file's contents.
fn run_child_until_acks(context: Context, folder: &Path, threads: usize, acks_before_kill: usize) -> String {
    let ack_path = folder.join(format!("acks-{}.tsv", context.child_seed));
    let stderr_path = folder.join(format!("child-{}.stderr", context.child_seed));
    let stderr = File::create(&stderr_path).expect("create the child's stderr file");
    let child = Command::new(env!("CARGO_BIN_EXE_promesa-crash-child"))
        .arg(folder)
        .arg(context.child_seed.to_string())
        .arg(threads.to_string())
        .arg(SEGMENT_BYTES.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|error| panic!("{context}: failed to start the child: {error}"));
    let mut child = ChildProcess { child, stderr_path };

    let started = Instant::now();
    let mut counter = AckCounter::default();
    loop {
        let acks = counter.count(&ack_path);
        if acks >= acks_before_kill {
            break;
        }
        if let Some(status) = child.child.try_wait().expect("poll the child") {
            panic!(
                "{context}: the child exited ({status}) after {acks} of {acks_before_kill} worker \
                 acknowledgements; its stderr: {}",
                child.stderr()
            );
        }
        assert!(
            started.elapsed() < ACK_WAIT_TIMEOUT,
            "{context}: timed out after {ACK_WAIT_TIMEOUT:?} waiting for {acks_before_kill} worker \
             acknowledgements from the child, which wrote {acks}; its stderr: {}",
            child.stderr()
        );
        std::thread::sleep(POLL_INTERVAL);
    }

    // `Child::kill` sends SIGKILL on Unix.
    child.child.kill().unwrap_or_else(|error| panic!("{context}: failed to kill the child: {error}"));
    let status = child.child.wait().expect("wait for the killed child");
    assert!(!status.success(), "{context}: the child finished before the kill ({status})");
    std::fs::read_to_string(&ack_path)
        .unwrap_or_else(|error| panic!("{context}: failed to read the acknowledgement file: {error}"))
}

/// Counts worker ack lines in the growing acknowledgement file, reading only what is
/// new on each call.
#[derive(Default)]
struct AckCounter {
    file: Option<File>,
    /// Bytes after the last complete line read so far.
    partial: Vec<u8>,
    acks: usize,
}

impl AckCounter {
    fn count(&mut self, path: &Path) -> usize {
        if self.file.is_none() {
            // The child creates the file after recovering its log.
            self.file = File::open(path).ok();
        }
        let Some(file) = &mut self.file else { return 0 };
        let mut bytes = std::mem::take(&mut self.partial);
        file.read_to_end(&mut bytes).expect("read the acknowledgement file");
        let complete = bytes.iter().rposition(|&byte| byte == b'\n').map_or(0, |last| last + 1);
        self.acks += bytes[..complete].split(|&byte| byte == b'\n').filter(|line| line.starts_with(b"ack\tw")).count();
        self.partial = bytes[complete..].to_vec();
        self.acks
    }
}

// The acknowledgement file.

/// A request as the child sent it, with positions as `SKU@LOC` codes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Request {
    Reserve(ReserveRequest),
    Confirm(ConfirmRequest),
    Release(ReleaseRequest),
    SetOnHand { position: String, units: u32 },
    SetSafetyStock { position: String, units: u32 },
}

/// One intent or ack line.
#[derive(Clone, Debug)]
struct Entry {
    line_number: usize,
    thread: String,
    request: Request,
    /// Units per line that an ack reports: held by a reserve, moved by a confirm or
    /// release. Empty for an intent and for stock changes.
    outcome: Vec<u32>,
    /// Deadline that the ack of a reserve reports.
    deadline_ms: Option<u64>,
}

fn parse_number<T: std::str::FromStr>(field: &str, what: &str) -> Result<T, String> {
    field.parse().map_err(|_| format!("{what} {field:?} is not a number"))
}

fn parse_list(field: &str) -> Result<Vec<u32>, String> {
    field.split(',').map(|units| parse_number(units, "units")).collect()
}

fn parse_units(field: &str) -> Result<Units, String> {
    if field == "all" {
        return Ok(Units::All);
    }
    let (line, quantity) = field.split_once(':').ok_or_else(|| format!("units {field:?} are not line:quantity"))?;
    Ok(Units::Lines(vec![LineQuantity {
        line: parse_number(line, "line index")?,
        quantity: parse_number(quantity, "quantity")?,
    }]))
}

fn parse_request(fields: &[&str]) -> Result<Request, String> {
    let request = match fields {
        ["reserve", id, channel, policy, ttl_ms, lines] => {
            let policy = match *policy {
                "all-or-nothing" => Policy::AllOrNothing,
                "partial" => Policy::Partial,
                other => return Err(format!("policy {other:?} is not known")),
            };
            let lines = lines
                .split(',')
                .map(|line| {
                    let (position, quantity) =
                        line.split_once(':').ok_or_else(|| format!("line {line:?} is not SKU@LOC:quantity"))?;
                    let (sku, location) =
                        position.split_once('@').ok_or_else(|| format!("position {position:?} is not SKU@LOC"))?;
                    let quantity = parse_number(quantity, "quantity")?;
                    Ok(ReserveLine { sku: sku.to_owned(), location: location.to_owned(), quantity })
                })
                .collect::<Result<_, String>>()?;
            Request::Reserve(ReserveRequest {
                reservation_id: (*id).to_owned(),
                channel: (*channel != promesa_engine::DEFAULT_CHANNEL).then(|| (*channel).to_owned()),
                lines,
                policy,
                ttl_ms: parse_number(ttl_ms, "ttl")?,
            })
        }
        ["confirm", id, op_id, units] => Request::Confirm(ConfirmRequest {
            reservation_id: (*id).to_owned(),
            op_id: (*op_id).to_owned(),
            units: parse_units(units)?,
        }),
        ["release", id, op_id, units, from] => Request::Release(ReleaseRequest {
            reservation_id: (*id).to_owned(),
            op_id: (*op_id).to_owned(),
            units: parse_units(units)?,
            from: match *from {
                "held-first" => ReleaseFrom::HeldFirst,
                "held" => ReleaseFrom::Held,
                "allocated" => ReleaseFrom::Allocated,
                other => return Err(format!("release from {other:?} is not known")),
            },
        }),
        ["on-hand", position, units] => {
            Request::SetOnHand { position: (*position).to_owned(), units: parse_number(units, "on hand")? }
        }
        ["safety-stock", position, units] => {
            Request::SetSafetyStock { position: (*position).to_owned(), units: parse_number(units, "safety stock")? }
        }
        other => return Err(format!("request fields {other:?} are not known")),
    };
    Ok(request)
}

/// Parses the acknowledgement file. Returns the acknowledged requests in file order
/// and, per thread, the request whose intent has no ack: in flight at the kill. A
/// last line without a newline was cut by the kill and is ignored.
fn parse_ack_file(context: Context, text: &str) -> (Vec<Entry>, Vec<Entry>) {
    let complete = text.rfind('\n').map_or("", |last| &text[..=last]);
    let mut acked = Vec::new();
    let mut pending: BTreeMap<String, Entry> = BTreeMap::new();
    for (index, line) in complete.lines().enumerate() {
        let line_number = index + 1;
        let fail =
            |problem: String| -> ! { panic!("{context}: acknowledgement file line {line_number} {line:?}: {problem}") };
        let fields: Vec<&str> = line.split('\t').collect();
        let (kind, thread) = match fields.as_slice() {
            [kind, thread, ..] => (*kind, (*thread).to_owned()),
            _ => fail("expected a kind and a thread".into()),
        };
        match kind {
            "intent" => {
                let request = parse_request(&fields[2..]).unwrap_or_else(|problem| fail(problem));
                let entry =
                    Entry { line_number, thread: thread.clone(), request, outcome: Vec::new(), deadline_ms: None };
                if let Some(earlier) = pending.insert(thread, entry) {
                    fail(format!("thread has a second intent while line {} has no ack", earlier.line_number));
                }
            }
            "ack" => {
                let request_fields = match fields.get(2).copied() {
                    Some("reserve") => 6,
                    Some("confirm") => 4,
                    Some("release") => 5,
                    _ => 3,
                };
                let (request_fields, outcome_fields) = fields[2..].split_at(request_fields.min(fields.len() - 2));
                let request = parse_request(request_fields).unwrap_or_else(|problem| fail(problem));
                let intent = pending.remove(&thread).unwrap_or_else(|| fail("ack without an intent".into()));
                if intent.request != request {
                    fail(format!("ack of a request other than the intent on line {}", intent.line_number));
                }
                let (outcome, deadline_ms) = match (&request, outcome_fields) {
                    (Request::SetOnHand { .. } | Request::SetSafetyStock { .. }, ["ok"]) => (Vec::new(), None),
                    (Request::Reserve(_), [held, deadline_ms]) => (
                        parse_list(held).unwrap_or_else(|problem| fail(problem)),
                        Some(parse_number(deadline_ms, "deadline").unwrap_or_else(|problem| fail(problem))),
                    ),
                    (Request::Confirm(_) | Request::Release(_), [moved]) => {
                        (parse_list(moved).unwrap_or_else(|problem| fail(problem)), None)
                    }
                    (_, other) => fail(format!("outcome fields {other:?} do not fit the request")),
                };
                acked.push(Entry { line_number, thread, request, outcome, deadline_ms });
            }
            other => fail(format!("line kind {other:?} is not known")),
        }
    }
    (acked, pending.into_values().collect())
}

// The model of what the acknowledgements promise.

/// One reservation line: its position and units in each state.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LineState {
    sku: String,
    location: String,
    requested: u32,
    held: u32,
    allocated: u32,
    released: u32,
}

#[derive(Clone, Debug)]
struct ReservationModel {
    request: ReserveRequest,
    /// Units held per line by the reserve: what a repeat of it returns.
    first_held: Vec<u32>,
    deadline_ms: u64,
    /// Whether the hold expired.
    expired: bool,
    lines: Vec<LineState>,
    /// Confirms and releases by operation id, with the units they moved.
    operations: BTreeMap<String, (Request, Vec<u32>)>,
}

impl ReservationModel {
    fn new(request: ReserveRequest, held: Vec<u32>, deadline_ms: u64) -> Self {
        let lines = request
            .lines
            .iter()
            .zip(&held)
            .map(|(line, &held)| LineState {
                sku: line.sku.clone(),
                location: line.location.clone(),
                requested: line.quantity as u32,
                held,
                allocated: 0,
                released: 0,
            })
            .collect();
        ReservationModel { request, first_held: held, deadline_ms, expired: false, lines, operations: BTreeMap::new() }
    }

    /// Expires the hold if its deadline is at or before `now_ms`, as recovery and the
    /// reads after it do at the engine's time.
    fn expire_if_due(&mut self, now_ms: u64) {
        if self.deadline_ms > now_ms || self.lines.iter().all(|line| line.held == 0) {
            return;
        }
        for line in &mut self.lines {
            line.released += line.held;
            line.held = 0;
        }
        self.expired = true;
    }

    fn is_open(&self) -> bool {
        self.lines.iter().any(|line| line.held + line.allocated > 0)
    }

    fn state(&self) -> ReservationState {
        if self.lines.iter().any(|line| line.held > 0) {
            ReservationState::Held
        } else if self.is_open() {
            ReservationState::Confirmed
        } else if self.expired {
            ReservationState::Expired
        } else {
            ReservationState::Released
        }
    }

    /// Returns the units a new confirm or release moves per line, or why it cannot.
    fn moved_by(&self, request: &Request) -> Result<Vec<u32>, String> {
        let (units, available): (&Units, fn(&LineState) -> u32) = match request {
            Request::Confirm(confirm) => (&confirm.units, |line| line.held),
            Request::Release(release) => match release.from {
                ReleaseFrom::HeldFirst => (&release.units, |line| line.held + line.allocated),
                ReleaseFrom::Held => (&release.units, |line| line.held),
                ReleaseFrom::Allocated => (&release.units, |line| line.allocated),
            },
            other => return Err(format!("{other:?} moves no units")),
        };
        match units {
            Units::All => Ok(self.lines.iter().map(available).collect()),
            Units::Lines(quantities) => {
                let mut moved = vec![0; self.lines.len()];
                for quantity in quantities {
                    let line = self
                        .lines
                        .get(quantity.line as usize)
                        .ok_or_else(|| format!("line {} does not exist", quantity.line))?;
                    if quantity.quantity > u64::from(available(line)) {
                        return Err(format!(
                            "line {} has {} units to move, not {}",
                            quantity.line,
                            available(line),
                            quantity.quantity
                        ));
                    }
                    moved[quantity.line as usize] += quantity.quantity as u32;
                }
                Ok(moved)
            }
        }
    }

    /// Applies a confirm or release that moved `moved`.
    fn apply_moved(&mut self, request: &Request, moved: &[u32]) {
        for (line, &units) in self.lines.iter_mut().zip(moved) {
            match request {
                Request::Confirm(_) => {
                    line.held -= units;
                    line.allocated += units;
                }
                Request::Release(release) => {
                    let from_held = if release.from == ReleaseFrom::Allocated { 0 } else { units.min(line.held) };
                    line.held -= from_held;
                    line.allocated -= units - from_held;
                    line.released += units;
                }
                _ => unreachable!("only confirms and releases move units"),
            }
        }
    }

    /// Returns the model after a new confirm or release, or `None` for a repeat.
    fn after(&self, request: &Request, op_id: &str) -> Result<Option<ReservationModel>, String> {
        if self.operations.contains_key(op_id) {
            return Ok(None);
        }
        let moved = self.moved_by(request)?;
        let mut after = self.clone();
        after.apply_moved(request, &moved);
        after.operations.insert(op_id.to_owned(), (request.clone(), moved));
        Ok(Some(after))
    }
}

/// The state that the acknowledged requests of one data folder promise.
#[derive(Clone, Debug, Default)]
struct FolderModel {
    on_hand: BTreeMap<String, u32>,
    safety_stock: BTreeMap<String, u32>,
    reservations: BTreeMap<String, ReservationModel>,
    /// Acknowledged reserves that held nothing, which leave no record.
    held_nothing: BTreeSet<String>,
}

fn operation_ids(request: &Request) -> Option<(&str, &str)> {
    match request {
        Request::Confirm(confirm) => Some((&confirm.reservation_id, &confirm.op_id)),
        Request::Release(release) => Some((&release.reservation_id, &release.op_id)),
        _ => None,
    }
}

/// Checks a reserve's live outcome against its policy.
fn check_reserve_outcome(request: &ReserveRequest, held: &[u32]) -> Result<(), String> {
    if held.len() != request.lines.len() {
        return Err(format!("{} lines held for {} requested", held.len(), request.lines.len()));
    }
    let full = request.lines.iter().zip(held).all(|(line, &held)| u64::from(held) == line.quantity);
    let over = request.lines.iter().zip(held).any(|(line, &held)| u64::from(held) > line.quantity);
    if over {
        return Err(format!("held {held:?}, more than requested"));
    }
    if request.policy == Policy::AllOrNothing && !full && held.iter().any(|&units| units > 0) {
        return Err(format!("all-or-nothing reserve held only {held:?}"));
    }
    Ok(())
}

impl FolderModel {
    /// Applies one acknowledged request and checks its outcome.
    fn apply_ack(&mut self, entry: &Entry) -> Result<(), String> {
        match &entry.request {
            Request::Reserve(request) => {
                let id = &request.reservation_id;
                if let Some(existing) = self.reservations.get(id) {
                    let same_outcome =
                        existing.first_held == entry.outcome && Some(existing.deadline_ms) == entry.deadline_ms;
                    if existing.request != *request || !same_outcome {
                        return Err(format!(
                            "repeat of reserve {id} returned {:?}, the first reserve held {:?}",
                            entry.outcome, existing.first_held
                        ));
                    }
                    return Ok(());
                }
                check_reserve_outcome(request, &entry.outcome)?;
                if entry.outcome.iter().all(|&held| held == 0) {
                    self.held_nothing.insert(id.clone());
                } else {
                    let deadline_ms = entry.deadline_ms.ok_or("the ack of a reserve has no deadline")?;
                    let reservation = ReservationModel::new(request.clone(), entry.outcome.clone(), deadline_ms);
                    self.reservations.insert(id.clone(), reservation);
                }
            }
            Request::Confirm(_) | Request::Release(_) => {
                let (id, op_id) = operation_ids(&entry.request).expect("a confirm or release");
                let reservation =
                    self.reservations.get_mut(id).ok_or_else(|| format!("reservation {id} was never acknowledged"))?;
                if let Some((_, first)) = reservation.operations.get(op_id) {
                    if *first != entry.outcome {
                        return Err(format!(
                            "repeat of operation {op_id} on {id} moved {:?}, the first time {first:?}",
                            entry.outcome
                        ));
                    }
                    return Ok(());
                }
                let expected = reservation.moved_by(&entry.request)?;
                if expected != entry.outcome {
                    return Err(format!("operation {op_id} on {id} moved {:?}, expected {expected:?}", entry.outcome));
                }
                reservation.apply_moved(&entry.request, &expected);
                reservation.operations.insert(op_id.to_owned(), (entry.request.clone(), expected));
            }
            Request::SetOnHand { position, units } => {
                self.on_hand.insert(position.clone(), *units);
            }
            Request::SetSafetyStock { position, units } => {
                self.safety_stock.insert(position.clone(), *units);
            }
        }
        Ok(())
    }

    fn positions(&self) -> Vec<(String, String)> {
        self.on_hand
            .keys()
            .map(|position| {
                let (sku, location) = position.split_once('@').expect("positions are SKU@LOC");
                (sku.to_owned(), location.to_owned())
            })
            .collect()
    }
}

fn lines_of(view: &ReservationView) -> Vec<LineState> {
    view.lines
        .iter()
        .map(|line| LineState {
            sku: line.sku.clone(),
            location: line.location.clone(),
            requested: line.requested,
            held: line.held,
            allocated: line.allocated,
            released: line.released,
        })
        .collect()
}

// Checks of the recovered engine.

/// Checks the recovered engine against the model, resolves each request in flight
/// (applied or not), and leaves the recovered state in the model. Returns how many
/// requests in flight were found applied.
fn check_recovered(
    context: Context,
    engine: &Engine,
    model: &mut FolderModel,
    in_flight: &[Entry],
    recovered_now_ms: u64,
) -> usize {
    for reservation in model.reservations.values_mut() {
        reservation.expire_if_due(recovered_now_ms);
    }
    let mut applied = 0;
    for entry in in_flight {
        let found = resolve_in_flight(engine, model, entry, recovered_now_ms)
            .unwrap_or_else(|problem| panic!("{context}: request in flight on line {}: {problem}", entry.line_number));
        applied += usize::from(found);
    }

    // Every acknowledged reservation, with the units the acknowledgements moved.
    for (id, reservation) in &model.reservations {
        let view = engine
            .get(id, T0_MS)
            .unwrap_or_else(|| panic!("{context}: acknowledged reservation {id} is missing after recovery"));
        assert_eq!(
            lines_of(&view),
            reservation.lines,
            "{context}: reservation {id} after recovery differs from its acknowledgements"
        );
        check_view_fields(context, &view, reservation);
    }
    for id in &model.held_nothing {
        assert_eq!(engine.get(id, T0_MS), None, "{context}: reserve {id} held nothing but has a record after recovery");
    }

    // Every position: stock as last acknowledged, counters as the reservations sum.
    let positions = model.positions();
    assert_eq!(positions.len(), POSITIONS, "{context}: positions acknowledged at setup: {positions:?}");
    let mut in_shortage = 0;
    for (sku, location) in &positions {
        let code = format!("{sku}@{location}");
        let read = engine
            .availability(sku, location, None, T0_MS)
            .unwrap_or_else(|error| panic!("{context}: position {code} after recovery: {error}"));
        assert_eq!(read.on_hand, model.on_hand[&code], "{context}: on hand of {code} after recovery");
        assert_eq!(read.safety_stock, model.safety_stock[&code], "{context}: safety stock of {code} after recovery");
        let lines = model.reservations.values().flat_map(|reservation| &reservation.lines);
        let (reserved, allocated) = lines
            .filter(|line| line.sku == *sku && line.location == *location)
            .fold((0, 0), |(held, allocated), line| (held + line.held, allocated + line.allocated));
        assert_eq!(read.reserved, reserved, "{context}: reserved of {code} is not the sum over reservations");
        assert_eq!(read.allocated, allocated, "{context}: allocated of {code} is not the sum over reservations");
        assert_eq!(
            read.in_shortage,
            read.reserved + read.allocated > read.on_hand,
            "{context}: shortage flag of {code}: {read:?}"
        );
        in_shortage += u64::from(read.in_shortage);
    }

    engine.audit().unwrap_or_else(|problems| panic!("{context}: audit after recovery: {problems:?}"));
    let stats = engine.stats();
    assert_eq!(stats.oversold, 0, "{context}: {stats:?}");
    assert_eq!(stats.positions, POSITIONS as u64, "{context}: {stats:?}");
    assert_eq!(stats.positions_in_shortage, in_shortage, "{context}: {stats:?}");
    let open = model.reservations.values().filter(|reservation| reservation.is_open()).count() as u64;
    assert_eq!(stats.open_reservations, open, "{context}: open reservations after recovery; {stats:?}");
    let ended = model.reservations.len() as u64 - open;
    assert_eq!(stats.ended_reservations_kept, ended, "{context}: ended reservations after recovery; {stats:?}");
    let expired = model.reservations.values().filter(|reservation| reservation.expired).count() as u64;
    assert_eq!(stats.holds_expired, expired, "{context}: holds expired after recovery; {stats:?}");
    applied
}

fn check_view_fields(context: Context, view: &ReservationView, reservation: &ReservationModel) {
    let id = &view.id;
    let channel = reservation.request.channel.as_deref().unwrap_or(promesa_engine::DEFAULT_CHANNEL);
    assert_eq!(view.channel, channel, "{context}: channel of reservation {id}");
    assert_eq!(view.policy, reservation.request.policy, "{context}: policy of reservation {id}");
    assert_eq!(view.state, reservation.state(), "{context}: state of reservation {id}: {view:?}");
    assert_eq!(view.deadline_ms, reservation.deadline_ms, "{context}: deadline of reservation {id}");
}

/// Checks that the object a request in flight changed is either as before the request
/// or as after it, with holds due at `recovered_now_ms` expired. Updates the model to
/// what recovery kept and returns whether that was the request's effect.
fn resolve_in_flight(
    engine: &Engine,
    model: &mut FolderModel,
    entry: &Entry,
    recovered_now_ms: u64,
) -> Result<bool, String> {
    match &entry.request {
        Request::Reserve(request) => {
            let id = &request.reservation_id;
            let view = engine.get(id, T0_MS);
            if let Some(existing) = model.reservations.get(id) {
                // A repeat changes nothing.
                let view = view.ok_or_else(|| format!("repeated reservation {id} is missing"))?;
                return if lines_of(&view) == existing.lines {
                    Ok(false)
                } else {
                    Err(format!("repeat of reserve {id} changed it: {view:?}, expected {:?}", existing.lines))
                };
            }
            let Some(view) = view else { return Ok(false) };
            // Nothing but expiry changes a reservation before its reserve is acknowledged,
            // and expiry moves held units to released.
            let held: Vec<u32> = view.lines.iter().map(|line| line.held + line.released).collect();
            check_reserve_outcome(request, &held).map_err(|problem| format!("reserve {id}: {problem}"))?;
            if view.deadline_ms != view.created_ms + request.ttl_ms {
                return Err(format!("reserve {id} recovered with a deadline other than its TTL gives: {view:?}"));
            }
            let mut recovered = ReservationModel::new(request.clone(), held, view.deadline_ms);
            recovered.expire_if_due(recovered_now_ms);
            if lines_of(&view) != recovered.lines || recovered.first_held.iter().all(|&held| held == 0) {
                return Err(format!("reserve {id} recovered as {view:?}, which no outcome of it explains"));
            }
            model.reservations.insert(id.clone(), recovered);
            Ok(true)
        }
        Request::Confirm(_) | Request::Release(_) => {
            let (id, op_id) = operation_ids(&entry.request).expect("a confirm or release");
            let reservation = model.reservations.get(id).ok_or_else(|| format!("reservation {id} is not known"))?;
            let view = engine.get(id, T0_MS).ok_or_else(|| format!("reservation {id} is missing after recovery"))?;
            let after = reservation.after(&entry.request, op_id)?.map(|mut after| {
                after.expire_if_due(recovered_now_ms);
                after
            });
            if lines_of(&view) == reservation.lines {
                return Ok(false);
            }
            match after {
                Some(after) if lines_of(&view) == after.lines => {
                    model.reservations.insert(id.to_owned(), after);
                    Ok(true)
                }
                Some(after) => Err(format!(
                    "reservation {id} recovered as {:?}, which is neither its acknowledged state {:?} nor the \
                     state {:?} after operation {op_id} that was in flight",
                    lines_of(&view),
                    reservation.lines,
                    after.lines
                )),
                None => Err(format!(
                    "reservation {id} recovered as {:?}, not as its acknowledged state {:?}",
                    lines_of(&view),
                    reservation.lines
                )),
            }
        }
        Request::SetOnHand { position, units } | Request::SetSafetyStock { position, units } => {
            let (sku, location) = position.split_once('@').ok_or_else(|| format!("position {position:?}"))?;
            let read = engine.availability(sku, location, None, T0_MS).map_err(|error| error.to_string())?;
            let (recovered, before) = match &entry.request {
                Request::SetOnHand { .. } => (read.on_hand, model.on_hand.get_mut(position)),
                _ => (read.safety_stock, model.safety_stock.get_mut(position)),
            };
            let before = before.ok_or_else(|| format!("position {position} was never set up"))?;
            if recovered == *before {
                Ok(false)
            } else if recovered == *units {
                *before = *units;
                Ok(true)
            } else {
                Err(format!(
                    "{position} recovered as {recovered}, which is neither the last acknowledged value {before} nor \
                     the value {units} in flight"
                ))
            }
        }
    }
}

/// Everything the test reads from a recovered engine, for comparing two recoveries.
#[derive(Debug, PartialEq, Eq)]
struct Observation {
    /// Per position: `SKU@LOC`, and availability for `default` and for the store channel.
    positions: Vec<(String, PositionAvailability, PositionAvailability)>,
    reservations: Vec<(String, Option<ReservationView>)>,
    /// Open and ended reservations, positions in shortage.
    counts: (u64, u64, u64),
}

fn observe(engine: &Engine, model: &FolderModel) -> Observation {
    let positions = model
        .positions()
        .into_iter()
        .map(|(sku, location)| {
            let read = |channel| engine.availability(&sku, &location, channel, T0_MS).expect("a known position");
            (format!("{sku}@{location}"), read(None), read(Some(STORE_CHANNEL)))
        })
        .collect();
    let ids = model.reservations.keys().chain(&model.held_nothing);
    let reservations = ids.map(|id| (id.clone(), engine.get(id, T0_MS))).collect();
    let stats = engine.stats();
    Observation {
        positions,
        reservations,
        counts: (stats.open_reservations, stats.ended_reservations_kept, stats.positions_in_shortage),
    }
}

/// Repeats every reserve, confirm and release in the model, and checks that each
/// returns its first outcome.
fn check_repeats_replay(context: Context, engine: &Engine, model: &FolderModel) {
    for (id, reservation) in &model.reservations {
        let outcome = engine
            .reserve(&reservation.request, T0_MS)
            .unwrap_or_else(|error| panic!("{context}: repeat of reserve {id} after recovery failed: {error}"));
        let held: Vec<u32> = outcome.lines.iter().map(|line| line.held).collect();
        assert!(outcome.replayed, "{context}: repeat of reserve {id} after recovery was not recognized: {outcome:?}");
        assert_eq!(held, reservation.first_held, "{context}: repeat of reserve {id} after recovery");

        for (op_id, (request, moved)) in &reservation.operations {
            let outcome = match request {
                Request::Confirm(confirm) => engine.confirm(confirm, T0_MS),
                Request::Release(release) => engine.release(release, T0_MS),
                other => unreachable!("operations are confirms and releases, not {other:?}"),
            };
            let outcome = outcome.unwrap_or_else(|error| {
                panic!("{context}: repeat of operation {op_id} on {id} after recovery failed: {error}")
            });
            assert!(outcome.replayed, "{context}: repeat of operation {op_id} on {id} was not recognized: {outcome:?}");
            assert_eq!(outcome.moved.to_vec(), *moved, "{context}: repeat of operation {op_id} on {id}");
        }
    }
}

// The log in LSN order.

/// Counters of one position as the log's records, applied in order, leave them.
#[derive(Clone, Debug, Default)]
struct LogPosition {
    code: String,
    on_hand: i64,
    reserved: i64,
    allocated: i64,
    safety_stock: i64,
}

/// A replay of the log by the test's own rules, independent of the engine's replay.
#[derive(Debug, Default)]
struct LogReplay {
    records: u64,
    location_codes: HashMap<u32, String>,
    /// Channel id to whether it may sell safety stock. The channel `default` (id 0) is
    /// created by every engine and is not logged.
    channels: HashMap<u32, bool>,
    positions: Vec<LogPosition>,
    /// Reservation id to its lines: (position index, held, allocated).
    reservations: HashMap<String, Vec<(u32, i64, i64)>>,
}

impl LogReplay {
    fn position(&mut self, index: u32) -> Result<&mut LogPosition, String> {
        self.positions.get_mut(index as usize).ok_or_else(|| format!("position {index} was never created"))
    }

    fn apply(&mut self, lsn: u64, record: Record) -> Result<(), String> {
        self.records += 1;
        match record {
            Record::LocationUpserted { location, code, .. } => {
                self.location_codes.insert(location, code);
            }
            Record::ChannelUpserted { channel, may_sell_safety_stock, .. } => {
                self.channels.insert(channel, may_sell_safety_stock);
            }
            Record::PositionCreated { position, sku_code, location, .. } => {
                if position as usize != self.positions.len() {
                    return Err(format!("position {position} created after {} positions", self.positions.len()));
                }
                let location = self.location_codes.get(&location).ok_or("position at an unknown location")?;
                let code = format!("{sku_code}@{location}");
                self.positions.push(LogPosition { code, ..LogPosition::default() });
            }
            Record::OnHandSet { position, on_hand, .. } => self.position(position)?.on_hand = i64::from(on_hand),
            Record::Adjusted { position, on_hand, .. } => self.position(position)?.on_hand = i64::from(on_hand),
            Record::SafetyStockSet { position, units, .. } => self.position(position)?.safety_stock = i64::from(units),
            Record::Reserved { id, channel, lines, .. } => {
                let may_sell_safety_stock = match channel {
                    0 => false,
                    other => *self.channels.get(&other).ok_or_else(|| format!("channel {other} is not known"))?,
                };
                let mut held_per_position: BTreeMap<u32, i64> = BTreeMap::new();
                for line in lines.iter().filter(|line| line.held > 0) {
                    *held_per_position.entry(line.position).or_default() += i64::from(line.held);
                }
                for (&index, &held) in &held_per_position {
                    let position = self.position(index)?;
                    let safety_stock = if may_sell_safety_stock { 0 } else { position.safety_stock };
                    let atp = position.on_hand - position.reserved - position.allocated - safety_stock;
                    if held > atp.max(0) {
                        return Err(format!(
                            "reserve {id} at LSN {lsn} holds {held} units of {} whose ATP for channel {channel} was \
                             {atp} in log order: {position:?}",
                            position.code
                        ));
                    }
                    position.reserved += held;
                }
                let lines = lines.iter().map(|line| (line.position, i64::from(line.held), 0)).collect();
                if self.reservations.insert(id.clone(), lines).is_some() {
                    return Err(format!("reservation {id} is reserved twice at LSN {lsn}"));
                }
            }
            Record::Moved { id, kind, lines: moves, .. } => {
                let mut lines = self.reservations.remove(&id).ok_or_else(|| format!("move on unknown {id}"))?;
                for (line, line_move) in lines.iter_mut().zip(&moves) {
                    let (from_held, from_allocated) =
                        (i64::from(line_move.from_held), i64::from(line_move.from_allocated));
                    let position = self.position(line.0)?;
                    position.reserved -= from_held;
                    line.1 -= from_held;
                    match kind {
                        MoveKind::Confirm => {
                            position.allocated += from_held;
                            line.2 += from_held;
                        }
                        MoveKind::Release | MoveKind::Fulfil => {
                            position.allocated -= from_allocated;
                            line.2 -= from_allocated;
                            if kind == MoveKind::Fulfil {
                                position.on_hand -= from_held + from_allocated;
                            }
                        }
                    }
                    if line.1 < 0 || line.2 < 0 {
                        return Err(format!("operation at LSN {lsn} moves more units of {id} than it has"));
                    }
                }
                self.reservations.insert(id, lines);
            }
            Record::Extended { .. } | Record::PostalCodesUpserted { .. } => {}
            Record::SupplyAdded { .. } | Record::SupplyMoved { .. } | Record::SupplyCancelled { .. } => {
                return Err("the crash workload adds no inbound supply".into());
            }
            Record::Expired { id, .. } => {
                let mut lines = self.reservations.remove(&id).ok_or_else(|| format!("expiry of unknown {id}"))?;
                for line in &mut lines {
                    self.position(line.0)?.reserved -= line.1;
                    line.1 = 0;
                }
                self.reservations.insert(id, lines);
            }
        }
        Ok(())
    }

    /// Checks that the engine's recovered counters equal this replay's.
    fn compare_with(&self, context: Context, observed: &Observation) {
        assert_eq!(self.positions.len(), observed.positions.len(), "{context}: positions in the log");
        for position in &self.positions {
            let (_, read, _) = observed
                .positions
                .iter()
                .find(|(code, _, _)| *code == position.code)
                .unwrap_or_else(|| panic!("{context}: the log has position {}, the model does not", position.code));
            let counters = (
                i64::from(read.on_hand),
                i64::from(read.reserved),
                i64::from(read.allocated),
                i64::from(read.safety_stock),
            );
            assert_eq!(
                counters,
                (position.on_hand, position.reserved, position.allocated, position.safety_stock),
                "{context}: {} after recovery (on hand, reserved, allocated, safety stock) differs from the log \
                 replayed in LSN order",
                position.code
            );
        }
    }
}

/// Reads the log of a closed engine in LSN order and checks that every reserve fitted
/// its channel's ATP at its place in the log.
fn check_log_order(context: Context, wal: &Path, archive: &Path) -> LogReplay {
    // The whole log: the live segments, and the archived ones that snapshots deleted,
    // which all come before the first live segment. Segments that recovery removed
    // after cutting a torn tail are archived too: such a segment's header never reached
    // the disk, and once later snapshots delete the live segments after it, its name
    // can come before the first live one, so segments without a whole header are left
    // out.
    let whole = tempfile::tempdir().expect("create a folder for the whole log");
    let segments = |folder: &Path| -> Vec<(String, std::path::PathBuf)> {
        std::fs::read_dir(folder)
            .expect("list a log folder")
            .map(|entry| entry.expect("read a log folder entry").path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
            .map(|path| (path.file_name().expect("a file name").to_string_lossy().into_owned(), path))
            .collect()
    };
    let live = segments(wal);
    let first_live = live.iter().map(|(name, _)| name.clone()).min();
    let whole_header = |path: &std::path::PathBuf| {
        let bytes = std::fs::read(path).expect("read an archived segment");
        promesa_engine::wal::format::SegmentHeader::decode(&bytes).is_ok()
    };
    let archived = segments(archive)
        .into_iter()
        .filter(|(name, path)| first_live.as_ref().is_none_or(|first| name < first) && whole_header(path));
    for (name, path) in archived.chain(live) {
        std::fs::copy(&path, whole.path().join(name)).expect("copy a log segment");
    }
    let storage = FsStorage::new(whole.path()).expect("open the log folder");
    let mut replay = LogReplay::default();
    let report = scan(&storage, 0, ScanOptions::default(), |record| {
        let lsn = record.lsn;
        let decoded = Record::decode(record.record_type, record.payload)
            .map_err(|error| format!("record at LSN {lsn} cannot be decoded: {error}"))?;
        replay.apply(lsn, decoded)
    })
    .unwrap_or_else(|error| panic!("{context}: reading the log in LSN order: {error}"));
    assert_eq!(report.cut, None, "{context}: the log of a closed engine has a damaged tail: {report:?}");
    replay
}
