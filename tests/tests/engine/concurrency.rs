//! Concurrency tests with real threads: racing reserves, a mixed workload on a few hot
//! SKUs checked by concurrent readers, confirm racing with expiry, and concurrent
//! retries of one reserve.
//!
//! Loop counts are constants or come from a seed, and no check depends on timing. A
//! seed fixes each thread's sequence of operations but not how the threads interleave,
//! so a failure found with a seed may need several runs with that seed to show again.

use std::collections::{HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, mpsc};
use std::thread;

use promesa_engine::error::{AvailabilityError, ReservationError, ReserveError};
use promesa_engine::limits::TTL_MS_MIN;
use promesa_engine::{
    AdjustReason, AdjustRequest, ConfirmRequest, Engine, ExpiryEvent, ExtendRequest, FulfilRequest, LineQuantity,
    LineStatus, LineView, LocationFilter, OperationOutcome, Policy, PositionAvailability, ReleaseFrom, ReleaseRequest,
    ReservationState, ReservationView, ReserveOutcome, ReserveRequest, SkuAvailability, Units,
};
use promesa_tests::{T0_MS, TTL_15_MIN_MS, engine_with_locations, line, reserve_one, seed};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Runs `rounds` rounds on `workers` threads that start each round together.
///
/// Before each round the calling thread runs `setup(round)`. Then every worker runs
/// `work(worker, round)` at the same moment, and the calling thread passes their
/// results, in worker order, to `check(round, results)`. The workers live for all
/// rounds, so a round costs two barrier waits instead of starting threads. A panic in
/// any closure stops the workers and fails the test instead of leaving them waiting.
fn run_rounds<T: Send>(
    workers: usize,
    rounds: usize,
    mut setup: impl FnMut(usize),
    work: impl Fn(usize, usize) -> T + Sync,
    mut check: impl FnMut(usize, Vec<T>),
) {
    let start = Barrier::new(workers + 1);
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel();
    thread::scope(|scope| {
        for worker in 0..workers {
            let sender = sender.clone();
            let (start, stop, work) = (&start, &stop, &work);
            let spawned =
                thread::Builder::new().name(format!("round-worker-{worker}")).spawn_scoped(scope, move || {
                    for round in 0..rounds {
                        start.wait();
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        let result = panic::catch_unwind(AssertUnwindSafe(|| work(worker, round)));
                        if sender.send((worker, result)).is_err() {
                            return;
                        }
                    }
                });
            spawned.expect("spawn a round worker");
        }

        for round in 0..rounds {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| setup(round))) {
                stop.store(true, Ordering::Release);
                start.wait();
                panic::resume_unwind(payload);
            }
            start.wait();

            let mut results: Vec<Option<T>> = (0..workers).map(|_| None).collect();
            let mut worker_panic = None;
            for _ in 0..workers {
                let (worker, result) = receiver.recv().expect("the calling thread keeps a sender");
                match result {
                    Ok(value) => results[worker] = Some(value),
                    Err(payload) => worker_panic = Some(payload),
                }
            }
            let checked = match worker_panic {
                Some(payload) => Err(payload),
                None => {
                    let results = results.into_iter().map(|result| result.expect("every worker sent")).collect();
                    panic::catch_unwind(AssertUnwindSafe(|| check(round, results)))
                }
            };
            if let Err(payload) = checked {
                if round + 1 < rounds {
                    stop.store(true, Ordering::Release);
                    start.wait();
                }
                panic::resume_unwind(payload);
            }
        }
    });
}

// Two reserves racing for the same units.

/// Rounds of the two-thread reserve race.
const RESERVE_RACES: usize = 10_000;

#[test]
fn reserve_race_one_winner() {
    let engine = engine_with_locations(1);
    let sku = |race: usize| format!("SKU-{race}");
    let order = |race: usize, worker: usize| format!("order-{race}-{worker}");

    run_rounds(
        2,
        RESERVE_RACES,
        |race| {
            engine.set_on_hand(&sku(race), "L0", 3, T0_MS).expect("valid stock");
        },
        |worker, race| engine.reserve(&reserve_one(&order(race, worker), &sku(race), "L0", 2), T0_MS),
        |race, outcomes| {
            let outcomes: Vec<ReserveOutcome> =
                outcomes.into_iter().map(|outcome| outcome.expect("valid reserve")).collect();
            let winners: Vec<usize> = (0..2).filter(|&worker| outcomes[worker].held_all()).collect();
            assert_eq!(winners.len(), 1, "race {race}: two reserves of 2 against on hand 3: {outcomes:?}");

            let loser = 1 - winners[0];
            let lost = &outcomes[loser].lines[0];
            assert_eq!(lost.status, LineStatus::InsufficientAtp, "race {race}: {outcomes:?}");
            assert_eq!(lost.held, 0, "race {race}: {outcomes:?}");
            assert!(engine.get(&order(race, loser), T0_MS).is_none(), "race {race}: the losing reserve left a record");

            let position = engine.availability(&sku(race), "L0", None, T0_MS).expect("known position");
            assert_eq!(position.reserved, 2, "race {race}: {position:?}");
            assert_eq!(position.atp, 1, "race {race}: {position:?}");
        },
    );

    assert_eq!(engine.audit(), Ok(()));
    assert_eq!(engine.stats().oversold, 0);
    assert_eq!(engine.stats().open_reservations, RESERVE_RACES as u64);
}

// A mixed workload on hot SKUs, checked by concurrent readers.

const HOT_SKUS: [&str; 3] = ["HOT-A", "HOT-B", "HOT-C"];
const HOT_LOCATIONS: [&str; 2] = ["L0", "L1"];
const HOT_POSITIONS: usize = HOT_SKUS.len() * HOT_LOCATIONS.len();

/// Threads that reserve, confirm, release, fulfil and extend. Worker 0 also changes
/// stock and sweeps.
const MIXED_WORKERS: usize = 4;
/// Operations per worker thread.
const MIXED_OPERATIONS: usize = 10_000;
/// Threads that read availability and reservations while the workers run.
const MIXED_READERS: usize = 2;
/// Reads each reader makes at least, even if the workers finish first.
const MIXED_READS_MIN: u64 = 2_000;
const ON_HAND_START: u64 = 100;
const SAFETY_STOCK_START: u64 = 2;
/// Maximum time-to-live of a hold in the workload, in milliseconds. Workers advance the
/// shared clock by 10 ms per operation on average, so a hold lasts a few hundred
/// operations and many expire.
const MIXED_TTL_MS_MAX: u64 = 6_000;

/// Returns the SKU and location codes of a hot position index.
fn hot_position(index: usize) -> (&'static str, &'static str) {
    (HOT_SKUS[index / HOT_LOCATIONS.len()], HOT_LOCATIONS[index % HOT_LOCATIONS.len()])
}

fn hot_index(sku: &str, location: &str) -> usize {
    let sku = HOT_SKUS.iter().position(|&code| code == sku).expect("a hot SKU");
    let location = HOT_LOCATIONS.iter().position(|&code| code == location).expect("a hot location");
    sku * HOT_LOCATIONS.len() + location
}

/// Running totals, per position, of the stock changes that may legitimately push
/// reserved + allocated above on hand, or default-channel ATP below zero.
///
/// Reserves on the default channel keep reserved + allocated + safety stock <= on hand,
/// and fulfilment lowers on hand and the commitments together. So only lowering on hand
/// or raising safety stock can break that bound, and only by the units changed. The
/// stock thread adds to `lowered` and `safety_raised` before it makes a change, and to
/// `restored` and `safety_lowered` after it gives units back. A reader that loads
/// `restored` and `safety_lowered` before reading a position, and `lowered` and
/// `safety_raised` after it, gets an upper bound of how far the state it read may
/// exceed the bound.
#[derive(Default)]
struct Slack {
    /// Units by which set_on_hand may have lowered on hand.
    lowered: AtomicU64,
    /// Units of `lowered` given back, by a later raise or because fulfilment had
    /// already taken them.
    restored: AtomicU64,
    /// Units by which safety stock was raised.
    safety_raised: AtomicU64,
    /// Units of `safety_raised` taken back by lowering safety stock.
    safety_lowered: AtomicU64,
}

impl Slack {
    /// Loads `restored` and `safety_lowered`. Call it before reading the position.
    fn load_given_back(&self) -> (u64, u64) {
        (self.restored.load(Ordering::SeqCst), self.safety_lowered.load(Ordering::SeqCst))
    }

    /// Loads `lowered` and `safety_raised`. Call it after reading the position.
    fn load_taken(&self) -> (u64, u64) {
        (self.lowered.load(Ordering::SeqCst), self.safety_raised.load(Ordering::SeqCst))
    }
}

/// A reservation that held units, as its reserve returned it.
#[derive(Clone, Debug)]
struct Booking {
    id: String,
    policy: Policy,
    /// Hot position index of each line.
    positions: Vec<usize>,
    requested: Vec<u32>,
    /// Units each line held at reserve time.
    held_at_reserve: Vec<u32>,
}

/// Checks that every unit a booking held is still accounted for in one state.
fn check_booking_view(booking: &Booking, view: &ReservationView) {
    assert_eq!(view.lines.len(), booking.held_at_reserve.len(), "reservation {}: {view:?}", booking.id);
    for (index, line) in view.lines.iter().enumerate() {
        let accounted = line.held + line.allocated + line.fulfilled + line.released;
        assert_eq!(
            accounted, booking.held_at_reserve[index],
            "reservation {} line {index}: held + allocated + fulfilled + released differs from the units held \
             at reserve: {view:?}",
            booking.id
        );
        if booking.policy == Policy::AllOrNothing {
            assert_eq!(
                accounted, booking.requested[index],
                "all-or-nothing reservation {} seen half-held: {view:?}",
                booking.id
            );
        }
    }
}

/// State shared by the threads of the mixed workload.
struct Workload {
    engine: Engine,
    /// The clock every thread passes as now, advanced a little by the workers.
    clock: AtomicU64,
    slack: [Slack; HOT_POSITIONS],
    /// Every booking, never removed.
    bookings: Mutex<Vec<Booking>>,
    /// Indexes in `bookings` of the reservations not yet seen closed, which operations
    /// pick from.
    open_bookings: Mutex<Vec<usize>>,
    workers_running: AtomicUsize,
}

impl Workload {
    fn new() -> Self {
        let engine = engine_with_locations(HOT_LOCATIONS.len());
        for index in 0..HOT_POSITIONS {
            let (sku, location) = hot_position(index);
            engine.set_on_hand(sku, location, ON_HAND_START, T0_MS).expect("valid stock");
            engine.set_safety_stock(sku, location, SAFETY_STOCK_START, T0_MS).expect("valid safety stock");
        }
        Workload {
            engine,
            clock: AtomicU64::new(T0_MS),
            slack: Default::default(),
            bookings: Mutex::new(Vec::new()),
            open_bookings: Mutex::new(Vec::new()),
            workers_running: AtomicUsize::new(MIXED_WORKERS),
        }
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    fn add_booking(&self, booking: Booking) {
        let index = {
            let mut bookings = self.bookings.lock().expect("no thread panicked holding the bookings");
            bookings.push(booking);
            bookings.len() - 1
        };
        self.open_bookings.lock().expect("no thread panicked holding the bookings").push(index);
    }

    fn booking(&self, index: usize) -> Booking {
        self.bookings.lock().expect("no thread panicked holding the bookings")[index].clone()
    }

    /// Stops operations from picking a booking once a view shows it closed.
    fn close_booking(&self, index: usize) {
        let mut open = self.open_bookings.lock().expect("no thread panicked holding the bookings");
        if let Some(slot) = open.iter().position(|&open_index| open_index == index) {
            open.swap_remove(slot);
        }
    }
}

/// Counts of what the workload did, printed at the end.
#[derive(Debug, Default)]
struct Tally {
    reserves_held: u64,
    reserves_held_nothing: u64,
    operations_done: u64,
    operations_expired: u64,
    operations_rejected: u64,
    not_on_hand: u64,
    stock_changes: u64,
    sweeps: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.reserves_held += other.reserves_held;
        self.reserves_held_nothing += other.reserves_held_nothing;
        self.operations_done += other.operations_done;
        self.operations_expired += other.operations_expired;
        self.operations_rejected += other.operations_rejected;
        self.not_on_hand += other.not_on_hand;
        self.stock_changes += other.stock_changes;
        self.sweeps += other.sweeps;
    }
}

/// The stock thread's record of its changes. It is the only thread that sets on hand
/// or safety stock or raises on hand, so on hand only drops between its own reads and
/// writes.
#[derive(Debug, Default)]
struct StockKeeper {
    /// Net change of on hand by stock operations, per position, not counting fulfilment.
    on_hand_delta: [i64; HOT_POSITIONS],
    safety_stock: [u64; HOT_POSITIONS],
    /// Units lowered by set_on_hand and not yet given back, per position.
    lowered_outstanding: [u64; HOT_POSITIONS],
    /// Safety stock raised and not yet lowered again, per position.
    safety_raised_outstanding: [u64; HOT_POSITIONS],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Confirm,
    Release(ReleaseFrom),
    Fulfil,
}

/// One thread of the mixed workload, with its own sequence of random operations.
struct Worker<'w> {
    workload: &'w Workload,
    index: usize,
    rng: StdRng,
    next_id: u64,
    tally: Tally,
    /// Set on the stock thread only.
    stock: Option<StockKeeper>,
    /// Events returned by this thread's sweeps.
    events: Vec<ExpiryEvent>,
}

impl<'w> Worker<'w> {
    fn new(workload: &'w Workload, index: usize, seed: u64) -> Self {
        let stock = (index == 0)
            .then(|| StockKeeper { safety_stock: [SAFETY_STOCK_START; HOT_POSITIONS], ..Default::default() });
        Worker {
            workload,
            index,
            rng: StdRng::seed_from_u64(thread_seed(seed, index)),
            next_id: 0,
            tally: Tally::default(),
            stock,
            events: Vec::new(),
        }
    }

    fn new_id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("w{}-{kind}-{}", self.index, self.next_id)
    }

    fn step(&mut self) {
        match self.rng.gen_range(0..100) {
            0..40 => self.reserve(),
            40..50 => self.operate(Operation::Confirm),
            50..56 => self.operate(Operation::Release(ReleaseFrom::HeldFirst)),
            56..60 => self.operate(Operation::Release(ReleaseFrom::Held)),
            60..66 => self.operate(Operation::Release(ReleaseFrom::Allocated)),
            66..80 => self.operate(Operation::Fulfil),
            80..84 => self.extend(),
            84..86 => self.check_booking(),
            _ if self.stock.is_some() => self.change_stock(),
            _ => self.reserve(),
        }
        if self.rng.gen_ratio(1, 2) {
            self.workload.clock.fetch_add(self.rng.gen_range(1..=40), Ordering::Relaxed);
        }
    }

    fn reserve(&mut self) {
        let engine = &self.workload.engine;
        let line_count = self.rng.gen_range(1..=3);
        let positions: Vec<usize> = (0..line_count).map(|_| self.rng.gen_range(0..HOT_POSITIONS)).collect();
        let lines = positions
            .iter()
            .map(|&position| {
                let (sku, location) = hot_position(position);
                line(sku, location, self.rng.gen_range(1..=3))
            })
            .collect();
        let policy = if self.rng.gen_ratio(3, 5) { Policy::AllOrNothing } else { Policy::Partial };
        let request = ReserveRequest {
            reservation_id: self.new_id("order"),
            channel: None,
            lines,
            policy,
            ttl_ms: self.rng.gen_range(TTL_MS_MIN..=MIXED_TTL_MS_MAX),
        };
        let now = self.workload.now();
        let outcome = engine.reserve(&request, now).expect("valid reserve request");
        check_reserve_outcome(&request, &outcome, now);
        if !outcome.held_any() {
            self.tally.reserves_held_nothing += 1;
            let stored = engine.get(&request.reservation_id, self.workload.now());
            assert!(stored.is_none(), "a reserve that held nothing left a record: {stored:?}");
            return;
        }
        self.tally.reserves_held += 1;

        let booking = Booking {
            id: request.reservation_id.clone(),
            policy,
            positions,
            requested: outcome.lines.iter().map(|line| line.requested).collect(),
            held_at_reserve: outcome.lines.iter().map(|line| line.held).collect(),
        };
        let view = engine.get(&booking.id, self.workload.now()).expect("a reserve that held units is stored");
        check_booking_view(&booking, &view);
        if self.rng.gen_ratio(1, 8) {
            let again = engine.reserve(&request, self.workload.now()).expect("valid reserve request");
            assert!(again.replayed, "{}: a retry was not answered as a replay: {again:?}", booking.id);
            assert_eq!(again.lines, outcome.lines, "{}: a retry returned another outcome", booking.id);
            assert_eq!(again.deadline_ms, outcome.deadline_ms, "{}: a retry returned another deadline", booking.id);
        }
        self.workload.add_booking(booking);
    }

    /// Picks a booking not yet seen closed, and returns its index and itself.
    fn pick_booking(&mut self) -> Option<(usize, Booking)> {
        let index = {
            let open = self.workload.open_bookings.lock().expect("no thread panicked holding the bookings");
            if open.is_empty() {
                return None;
            }
            open[self.rng.gen_range(0..open.len())]
        };
        Some((index, self.workload.booking(index)))
    }

    /// Reads a booking's reservation and checks it, and returns the view.
    fn view_booking(&self, index: usize, booking: &Booking) -> ReservationView {
        let view = self.workload.engine.get(&booking.id, self.workload.now()).expect("bookings are never forgotten");
        check_booking_view(booking, &view);
        if !view.state.is_open() {
            self.workload.close_booking(index);
        }
        view
    }

    /// Picks every unit, or random quantities of random lines among those with units
    /// in the state the operation takes. The view may be stale by the time the request
    /// runs, so a quantity may exceed what the line has then.
    fn pick_units(&mut self, view: &ReservationView, available: impl Fn(&LineView) -> u32) -> Units {
        if self.rng.gen_ratio(1, 2) {
            return Units::All;
        }
        let mut quantities = Vec::new();
        for (index, line) in view.lines.iter().enumerate() {
            let units = available(line);
            if units > 0 && self.rng.gen_ratio(2, 3) {
                quantities
                    .push(LineQuantity { line: index as u32, quantity: u64::from(self.rng.gen_range(1..=units)) });
            }
        }
        if quantities.is_empty() { Units::All } else { Units::Lines(quantities) }
    }

    fn operate(&mut self, operation: Operation) {
        let engine = &self.workload.engine;
        let Some((index, booking)) = self.pick_booking() else { return self.reserve() };
        let view = self.view_booking(index, &booking);
        let units = match operation {
            Operation::Confirm | Operation::Release(ReleaseFrom::Held) => self.pick_units(&view, |line| line.held),
            Operation::Release(ReleaseFrom::Allocated) => self.pick_units(&view, |line| line.allocated),
            Operation::Release(ReleaseFrom::HeldFirst) | Operation::Fulfil => {
                self.pick_units(&view, |line| line.held + line.allocated)
            }
        };
        let reservation_id = booking.id.clone();
        let op_id = self.new_id("op");
        let send = |now_ms: u64| match operation {
            Operation::Confirm => engine.confirm(
                &ConfirmRequest { reservation_id: reservation_id.clone(), op_id: op_id.clone(), units: units.clone() },
                now_ms,
            ),
            Operation::Release(from) => engine.release(
                &ReleaseRequest {
                    reservation_id: reservation_id.clone(),
                    op_id: op_id.clone(),
                    units: units.clone(),
                    from,
                },
                now_ms,
            ),
            Operation::Fulfil => engine.fulfil(
                &FulfilRequest { reservation_id: reservation_id.clone(), op_id: op_id.clone(), units: units.clone() },
                now_ms,
            ),
        };

        let result = send(self.workload.now());
        self.check_operation(&booking, operation, &units, &result);
        if result.as_ref().is_ok_and(|outcome| !outcome.state.is_open()) {
            self.workload.close_booking(index);
        }
        if let Ok(first) = &result
            && self.rng.gen_ratio(1, 8)
        {
            let again = send(self.workload.now()).expect("a retry of a done operation is answered");
            assert!(again.replayed, "{operation:?} on {}: a retry was not answered as a replay", booking.id);
            assert_eq!(again.moved, first.moved, "{operation:?} on {}: a retry moved other units", booking.id);
            assert_eq!(again.state, first.state, "{operation:?} on {}: a retry returned another state", booking.id);
        }
    }

    fn check_operation(
        &mut self,
        booking: &Booking,
        operation: Operation,
        units: &Units,
        result: &Result<OperationOutcome, ReservationError>,
    ) {
        let context = format!("{operation:?} of {units:?} on {}", booking.id);
        match result {
            Ok(outcome) => {
                self.tally.operations_done += 1;
                assert!(!outcome.replayed, "{context}: a first request was answered as a replay");
                assert_eq!(outcome.moved.len(), booking.held_at_reserve.len(), "{context}: {outcome:?}");
                match units {
                    Units::All => {
                        assert!(outcome.moved.iter().any(|&moved| moved > 0), "{context}: moved nothing: {outcome:?}");
                    }
                    Units::Lines(quantities) => {
                        let mut expected = vec![0u32; booking.held_at_reserve.len()];
                        for quantity in quantities {
                            expected[quantity.line as usize] = quantity.quantity as u32;
                        }
                        assert_eq!(outcome.moved.as_slice(), expected.as_slice(), "{context}: {outcome:?}");
                    }
                }
            }
            Err(ReservationError::Expired { deadline_ms, now_ms, .. }) => {
                self.tally.operations_expired += 1;
                assert!(deadline_ms <= now_ms, "{context}: reported expired before its deadline: {result:?}");
            }
            Err(ReservationError::NothingToChange { .. }) => self.tally.operations_rejected += 1,
            Err(ReservationError::QuantityExceeds { .. }) if matches!(units, Units::Lines(_)) => {
                self.tally.operations_rejected += 1;
            }
            Err(ReservationError::NotOnHand { sku, location, .. }) if operation == Operation::Fulfil => {
                self.tally.not_on_hand += 1;
                let position = hot_index(sku, location);
                let lowered = self.workload.slack[position].lowered.load(Ordering::SeqCst);
                assert!(lowered > 0, "{context}: units not on hand although on hand was never lowered: {result:?}");
            }
            Err(error) => panic!("{context}: unexpected error: {error}"),
        }
    }

    fn extend(&mut self) {
        let engine = &self.workload.engine;
        let Some((_, booking)) = self.pick_booking() else { return self.reserve() };
        let now = self.workload.now();
        let deadline_ms = now + self.rng.gen_range(TTL_MS_MIN..=MIXED_TTL_MS_MAX);
        let request = ExtendRequest { reservation_id: booking.id.clone(), op_id: self.new_id("extend"), deadline_ms };
        match engine.extend(&request, now) {
            Ok(outcome) => {
                self.tally.operations_done += 1;
                assert!(outcome.moved.iter().all(|&moved| moved == 0), "{request:?}: {outcome:?}");
                assert_eq!(outcome.deadline_ms, deadline_ms, "{request:?}: {outcome:?}");
                assert_eq!(outcome.state, ReservationState::Held, "{request:?}: {outcome:?}");
            }
            Err(ReservationError::Expired { deadline_ms, now_ms, .. }) => {
                self.tally.operations_expired += 1;
                assert!(deadline_ms <= now_ms, "{request:?}: reported expired before its deadline");
            }
            Err(ReservationError::NothingToChange { .. } | ReservationError::DeadlineNotLater { .. }) => {
                self.tally.operations_rejected += 1;
            }
            Err(error) => panic!("{request:?}: unexpected error: {error}"),
        }
    }

    fn check_booking(&mut self) {
        let Some((index, booking)) = self.pick_booking() else { return self.reserve() };
        self.view_booking(index, &booking);
    }

    /// Lowers or restores on hand, receives stock, raises or lowers safety stock, or
    /// sweeps, keeping `Slack` and `StockKeeper` current.
    fn change_stock(&mut self) {
        let engine = &self.workload.engine;
        let keeper = self.stock.as_mut().expect("the stock thread");
        let position = self.rng.gen_range(0..HOT_POSITIONS);
        let (sku, location) = hot_position(position);
        let slack = &self.workload.slack[position];
        let now = self.workload.now();
        let on_hand = || u64::from(engine.availability(sku, location, None, now).expect("known position").on_hand);
        self.tally.stock_changes += 1;

        match self.rng.gen_range(0..6) {
            0 => {
                self.tally.sweeps += 1;
                let events = engine.sweep(now);
                for event in &events {
                    assert!(event.deadline_ms <= event.expired_at_ms, "expired before the deadline: {event:?}");
                    assert!(event.released.iter().any(|&units| units > 0), "expired nothing: {event:?}");
                }
                self.events.extend(events);
            }
            1 if keeper.lowered_outstanding[position] == 0 => {
                // A count found less: lower on hand, often below the commitments.
                let before = on_hand();
                if before == 0 {
                    return;
                }
                let target = self.rng.gen_range(0..before);
                let planned = before - target;
                slack.lowered.fetch_add(planned, Ordering::SeqCst);
                let change = engine.set_on_hand(sku, location, target, now).expect("valid stock");
                let previous = u64::from(change.previous);
                assert!(previous <= before, "{sku}@{location}: on hand rose from {before} to {previous} meanwhile");
                let lowered = previous.saturating_sub(target);
                slack.restored.fetch_add(planned - lowered, Ordering::SeqCst);
                keeper.lowered_outstanding[position] += lowered;
                keeper.on_hand_delta[position] += change.delta;
            }
            1 => {
                // The units turn up again: raise on hand by at least what was lowered.
                let outstanding = keeper.lowered_outstanding[position];
                let change = engine.set_on_hand(sku, location, on_hand() + outstanding, now).expect("valid stock");
                assert!(change.delta >= outstanding as i64, "{sku}@{location}: raise by less than planned: {change:?}");
                slack.restored.fetch_add(outstanding, Ordering::SeqCst);
                keeper.lowered_outstanding[position] = 0;
                keeper.on_hand_delta[position] += change.delta;
            }
            2 | 3 => {
                // Receive enough to bring on hand near the level the workload started at.
                let shortfall = (ON_HAND_START + 10).saturating_sub(on_hand());
                let request = AdjustRequest {
                    sku: sku.to_owned(),
                    location: location.to_owned(),
                    delta: self.rng.gen_range(1..=shortfall.max(1)) as i64,
                    reason: AdjustReason::Receipt,
                    op_id: format!("receipt-{}", self.next_id),
                };
                self.next_id += 1;
                let change = engine.adjust_on_hand(&request, now).expect("valid adjustment");
                assert!(!change.replayed, "{request:?}: a new operation id was answered as a replay");
                assert_eq!(change.delta, request.delta, "{request:?}: {change:?}");
                keeper.on_hand_delta[position] += change.delta;
                if self.rng.gen_ratio(1, 4) {
                    let again = engine.adjust_on_hand(&request, now).expect("valid adjustment");
                    assert!(again.replayed, "{request:?}: a retry was not answered as a replay");
                    assert_eq!(again.on_hand, change.on_hand, "{request:?}: a retry returned another outcome");
                }
            }
            4 => {
                let raise = self.rng.gen_range(1..=6);
                slack.safety_raised.fetch_add(raise, Ordering::SeqCst);
                let units = keeper.safety_stock[position] + raise;
                engine.set_safety_stock(sku, location, units, now).expect("valid safety stock");
                keeper.safety_stock[position] = units;
                keeper.safety_raised_outstanding[position] += raise;
            }
            _ => {
                let current = keeper.safety_stock[position];
                if current == 0 {
                    return;
                }
                let lower = self.rng.gen_range(1..=current);
                engine.set_safety_stock(sku, location, current - lower, now).expect("valid safety stock");
                keeper.safety_stock[position] = current - lower;
                let taken_back = lower.min(keeper.safety_raised_outstanding[position]);
                keeper.safety_raised_outstanding[position] -= taken_back;
                slack.safety_lowered.fetch_add(taken_back, Ordering::SeqCst);
            }
        }
    }
}

fn thread_seed(seed: u64, thread: usize) -> u64 {
    seed ^ (thread as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Checks a fresh reserve's outcome against its request and policy.
fn check_reserve_outcome(request: &ReserveRequest, outcome: &ReserveOutcome, now_ms: u64) {
    let id = &request.reservation_id;
    assert!(!outcome.replayed, "{id}: a new id was answered as a replay: {outcome:?}");
    assert_eq!(outcome.lines.len(), request.lines.len(), "{id}: {outcome:?}");
    assert!(outcome.deadline_ms >= now_ms + request.ttl_ms, "{id}: deadline before now + TTL: {outcome:?}");
    for (line, result) in request.lines.iter().zip(&outcome.lines) {
        assert_eq!(u64::from(result.requested), line.quantity, "{id}: {outcome:?}");
    }
    match request.policy {
        Policy::AllOrNothing if outcome.held_any() => {
            for result in &outcome.lines {
                assert_eq!(result.status, LineStatus::Held, "{id}: all-or-nothing held some lines: {outcome:?}");
                assert_eq!(result.held, result.requested, "{id}: all-or-nothing held some units: {outcome:?}");
            }
        }
        Policy::Backorder => unreachable!("the workload makes no backorders"),
        Policy::AllOrNothing => {
            for result in &outcome.lines {
                let not_held = matches!(result.status, LineStatus::InsufficientAtp | LineStatus::NotAttempted);
                assert!(
                    not_held,
                    "{id}: a line of a reserve that held nothing has status {:?}: {outcome:?}",
                    result.status
                );
            }
            let short = outcome.lines.iter().any(|result| result.status == LineStatus::InsufficientAtp);
            assert!(short, "{id}: held nothing without a line short of ATP: {outcome:?}");
        }
        Policy::Partial => {
            for result in &outcome.lines {
                let expected = match result.held {
                    0 => LineStatus::InsufficientAtp,
                    held if held == result.requested => LineStatus::Held,
                    _ => LineStatus::PartiallyHeld,
                };
                assert!(result.held <= result.requested, "{id}: held more than requested: {outcome:?}");
                assert_eq!(result.status, expected, "{id}: {outcome:?}");
            }
        }
    }
}

/// Checks one position read against the invariants, given the slack that stock
/// changes allow (see `Slack`).
fn check_position_read(position: usize, read: &PositionAvailability, shortage_slack: u64, safety_slack: u64) {
    let (sku, location) = hot_position(position);
    let committed = u64::from(read.reserved) + u64::from(read.allocated);
    let on_hand = u64::from(read.on_hand);
    assert_eq!(
        read.in_shortage,
        committed > on_hand,
        "{sku}@{location}: in_shortage disagrees with counters: {read:?}"
    );
    assert_eq!(
        read.atp,
        on_hand as i64 - committed as i64 - i64::from(read.safety_stock),
        "{sku}@{location}: ATP is not on hand - reserved - allocated - safety stock: {read:?}"
    );
    assert!(
        committed <= on_hand + shortage_slack,
        "{sku}@{location}: reserved + allocated exceeds on hand by more than set_on_hand lowered it \
         ({shortage_slack} units): {read:?}"
    );
    assert!(
        read.atp >= -((shortage_slack + safety_slack) as i64),
        "{sku}@{location}: ATP is below what lowered counts ({shortage_slack} units) and raised safety stock \
         ({safety_slack} units) explain: {read:?}"
    );
}

/// Reads one position or one SKU's positions and checks every position read, or
/// reads a booked reservation and checks that its units are all accounted for.
fn read_and_check(workload: &Workload, rng: &mut StdRng) {
    let engine = &workload.engine;
    let now = workload.now();
    if rng.gen_ratio(1, 5) {
        let booking = {
            let bookings = workload.bookings.lock().expect("no thread panicked holding the bookings");
            if bookings.is_empty() {
                return;
            }
            bookings[rng.gen_range(0..bookings.len())].clone()
        };
        let view = engine.get(&booking.id, now).expect("bookings are never forgotten");
        check_booking_view(&booking, &view);
        return;
    }

    let given_back: Vec<(u64, u64)> = workload.slack.iter().map(Slack::load_given_back).collect();
    let sku = HOT_SKUS[rng.gen_range(0..HOT_SKUS.len())];
    let mut reads = Vec::new();
    match rng.gen_range(0..4) {
        0 | 1 => {
            let location = HOT_LOCATIONS[rng.gen_range(0..HOT_LOCATIONS.len())];
            let read = engine.availability(sku, location, None, now).expect("known position");
            reads.push((hot_index(sku, location), read));
        }
        2 => {
            let filter = if rng.gen_ratio(1, 2) { LocationFilter::All } else { LocationFilter::Only(&["L1", "L0"]) };
            let result = engine.sku_availability(sku, filter, None, true, now).expect("known SKU");
            collect_sku_reads(sku, &result, &mut reads);
        }
        _ => {
            let results =
                engine.availability_batch(&HOT_SKUS, LocationFilter::All, None, true, now).expect("valid batch");
            for (sku, result) in HOT_SKUS.iter().zip(&results) {
                collect_sku_reads(sku, result.as_ref().expect("known SKU"), &mut reads);
            }
        }
    }
    for (position, read) in reads {
        let (lowered, safety_raised) = workload.slack[position].load_taken();
        let (restored, safety_lowered) = given_back[position];
        check_position_read(
            position,
            &read,
            lowered.saturating_sub(restored),
            safety_raised.saturating_sub(safety_lowered),
        );
    }
}

/// Checks the total of a SKU read and appends its position reads to `reads`.
fn collect_sku_reads(sku: &str, result: &SkuAvailability<'_>, reads: &mut Vec<(usize, PositionAvailability)>) {
    assert_eq!(result.locations.len(), HOT_LOCATIONS.len(), "{sku}: {result:?}");
    let total: i64 = result.locations.iter().map(|entry| entry.availability.atp.max(0)).sum();
    assert_eq!(result.total_atp, total, "{sku}: total ATP is not the sum of positive ATP: {result:?}");
    reads.extend(result.locations.iter().map(|entry| (hot_index(sku, entry.location), entry.availability)));
}

/// Decrements a count of running threads when dropped, also when its thread panics.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

#[test]
fn mixed_workload_keeps_invariants() {
    let seed = seed("concurrency::mixed_workload_keeps_invariants", 0x5EED_C0C0);
    let workload = Workload::new();

    let (workers, reads) = thread::scope(|scope| {
        let workload = &workload;
        let workers: Vec<_> = (0..MIXED_WORKERS)
            .map(|index| {
                let spawned = thread::Builder::new().name(format!("worker-{index}")).spawn_scoped(scope, move || {
                    let _running = Running(&workload.workers_running);
                    let mut worker = Worker::new(workload, index, seed);
                    for _ in 0..MIXED_OPERATIONS {
                        worker.step();
                    }
                    (worker.tally, worker.stock, worker.events)
                });
                spawned.expect("spawn a worker")
            })
            .collect();
        let readers: Vec<_> = (0..MIXED_READERS)
            .map(|index| {
                let spawned = thread::Builder::new().name(format!("reader-{index}")).spawn_scoped(scope, move || {
                    let mut rng = StdRng::seed_from_u64(thread_seed(seed, MIXED_WORKERS + index));
                    let mut reads = 0u64;
                    while workload.workers_running.load(Ordering::Acquire) > 0 || reads < MIXED_READS_MIN {
                        read_and_check(workload, &mut rng);
                        reads += 1;
                    }
                    reads
                });
                spawned.expect("spawn a reader")
            })
            .collect();
        let workers: Vec<_> = workers
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|payload| panic::resume_unwind(payload)))
            .collect();
        let reads: u64 = readers
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|payload| panic::resume_unwind(payload)))
            .sum();
        (workers, reads)
    });

    let mut tally = Tally::default();
    let mut keeper = None;
    let mut events = Vec::new();
    for (worker_tally, worker_stock, worker_events) in workers {
        tally.add(&worker_tally);
        keeper = keeper.or(worker_stock);
        events.extend(worker_events);
    }
    let keeper = keeper.expect("worker 0 changes stock");
    eprintln!("mixed workload: {tally:?}, {reads} reads, clock advanced {} ms", workload.now() - T0_MS);
    check_mixed_end_state(&workload, &keeper, events);

    // The workload must have exercised what it checks.
    assert!(tally.reserves_held > 0, "{tally:?}");
    assert!(tally.operations_done > 0, "{tally:?}");
    assert!(tally.operations_expired + workload.engine.stats().holds_expired > 0, "{tally:?}");
}

/// Checks the engine after the mixed workload against the bookings and the stock
/// thread's record: audit, counters against open reservations, on hand against
/// stock changes and fulfilment, and each hold expired at most once.
fn check_mixed_end_state(workload: &Workload, keeper: &StockKeeper, mut events: Vec<ExpiryEvent>) {
    let engine = &workload.engine;
    let now = workload.now();
    events.extend(engine.sweep(now));
    assert_eq!(engine.audit(), Ok(()));
    let stats = engine.stats();
    assert_eq!(stats.oversold, 0, "{stats:?}");
    assert_eq!(stats.expiry_events_dropped, 0, "{stats:?}");
    assert_eq!(events.len() as u64, stats.holds_expired, "every expiry returns one event");

    let mut expired_ids = HashSet::new();
    for event in &events {
        assert!(expired_ids.insert(event.reservation_id.as_str()), "expired twice: {}", event.reservation_id);
    }

    let bookings = workload.bookings.lock().expect("no thread panicked holding the bookings");
    let mut held_by_position = [0u64; HOT_POSITIONS];
    let mut allocated_by_position = [0u64; HOT_POSITIONS];
    let mut fulfilled_by_position = [0u64; HOT_POSITIONS];
    let mut open = 0;
    let views: HashMap<&str, ReservationView> = bookings
        .iter()
        .map(|booking| (booking.id.as_str(), engine.get(&booking.id, now).expect("bookings are never forgotten")))
        .collect();
    for booking in bookings.iter() {
        let view = &views[booking.id.as_str()];
        check_booking_view(booking, view);
        if view.state == ReservationState::Expired {
            assert!(expired_ids.contains(booking.id.as_str()), "{} expired without an event: {view:?}", booking.id);
        }
        for (line, &position) in view.lines.iter().zip(&booking.positions) {
            fulfilled_by_position[position] += u64::from(line.fulfilled);
        }
        if !view.state.is_open() {
            let units: u32 = view.lines.iter().map(|line| line.held + line.allocated).sum();
            assert_eq!(units, 0, "{} is closed but holds or allocates units: {view:?}", booking.id);
            continue;
        }
        open += 1;
        for (line, &position) in view.lines.iter().zip(&booking.positions) {
            held_by_position[position] += u64::from(line.held);
            allocated_by_position[position] += u64::from(line.allocated);
        }
    }
    assert_eq!(stats.open_reservations, open, "{stats:?}");
    for event in &events {
        let view = &views[event.reservation_id.as_str()];
        for (line, &released) in view.lines.iter().zip(&event.released) {
            assert!(line.released >= released, "{event:?} released more than the reservation shows: {view:?}");
        }
    }

    let mut in_shortage = 0;
    for position in 0..HOT_POSITIONS {
        let (sku, location) = hot_position(position);
        let read = engine.availability(sku, location, None, now).expect("known position");
        assert_eq!(u64::from(read.reserved), held_by_position[position], "{sku}@{location}: reserved: {read:?}");
        assert_eq!(u64::from(read.allocated), allocated_by_position[position], "{sku}@{location}: allocated: {read:?}");
        let on_hand = ON_HAND_START as i64 + keeper.on_hand_delta[position] - fulfilled_by_position[position] as i64;
        assert_eq!(i64::from(read.on_hand), on_hand, "{sku}@{location}: on hand: {read:?}");
        assert_eq!(u64::from(read.safety_stock), keeper.safety_stock[position], "{sku}@{location}: {read:?}");
        in_shortage += u64::from(read.in_shortage);
    }
    assert_eq!(stats.positions_in_shortage, in_shortage, "{stats:?}");
}

// Confirm racing with expiry.

/// Reservations that each race a confirm against expiry once.
const EXPIRY_RACES: usize = 4_000;

/// What each racer of the confirm/expiry race returns.
#[derive(Debug)]
enum RaceResult {
    Confirm(Result<OperationOutcome, ReservationError>),
    Sweep(Vec<ExpiryEvent>),
    Read(Result<PositionAvailability, AvailabilityError>),
}

#[test]
fn confirm_expiry_race_one_winner() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("SKU", "L0", EXPIRY_RACES as u64, T0_MS).expect("valid stock");
    // Deadlines are 2 ms apart, so a confirm 1 ms before one deadline still comes after
    // the previous deadline, which the engine clock has reached.
    let deadline = |race: usize| T0_MS + TTL_MS_MIN + 2 * race as u64;
    let order = |race: usize| format!("order-{race}");
    for race in 0..EXPIRY_RACES {
        let mut request = reserve_one(&order(race), "SKU", "L0", 1);
        request.ttl_ms = deadline(race) - T0_MS;
        let outcome = engine.reserve(&request, T0_MS).expect("valid reserve");
        assert!(outcome.held_all(), "{outcome:?}");
        assert_eq!(outcome.deadline_ms, deadline(race));
    }

    // Each race: a confirm at the deadline (odd races) or 1 ms before it (even races),
    // a sweep at the deadline, and an availability read at the deadline.
    let mut confirmed = vec![false; EXPIRY_RACES];
    let mut allocated = 0u32;
    let mut events = Vec::new();
    run_rounds(
        3,
        EXPIRY_RACES,
        |_| {},
        |worker, race| match worker {
            0 => {
                let request =
                    ConfirmRequest { reservation_id: order(race), op_id: "confirm".into(), units: Units::All };
                RaceResult::Confirm(engine.confirm(&request, deadline(race) - u64::from(race % 2 == 0)))
            }
            1 => RaceResult::Sweep(engine.sweep(deadline(race))),
            _ => RaceResult::Read(engine.availability("SKU", "L0", None, deadline(race))),
        },
        |race, results| {
            let mut results = results.into_iter();
            let (Some(RaceResult::Confirm(confirm)), Some(RaceResult::Sweep(swept)), Some(RaceResult::Read(read))) =
                (results.next(), results.next(), results.next())
            else {
                panic!("race {race}: racers returned out of order");
            };
            match confirm {
                Ok(outcome) => {
                    assert!(race % 2 == 0, "race {race}: a confirm at the deadline won: {outcome:?}");
                    assert_eq!(outcome.moved.as_slice(), &[1], "race {race}: {outcome:?}");
                    assert_eq!(outcome.state, ReservationState::Confirmed, "race {race}: {outcome:?}");
                    confirmed[race] = true;
                    allocated += 1;
                }
                Err(ReservationError::Expired { deadline_ms, now_ms, .. }) => {
                    assert_eq!(deadline_ms, deadline(race), "race {race}");
                    assert!(now_ms >= deadline_ms, "race {race}: expired at {now_ms} before its deadline");
                }
                Err(error) => panic!("race {race}: unexpected error: {error}"),
            }

            // Expiry is decided by the deadline, not by the sweep: a read at the deadline
            // counts this hold as allocated if the confirm won and as free otherwise, and
            // every later hold as reserved.
            let read = read.expect("known position");
            assert_eq!(read.reserved as usize, EXPIRY_RACES - 1 - race, "race {race}: {read:?}");
            assert_eq!(read.allocated, allocated, "race {race}: {read:?}");
            events.extend(swept);
        },
    );
    events.extend(engine.sweep(engine.now_ms()));

    let mut expiries = vec![0u32; EXPIRY_RACES];
    for event in &events {
        let race: usize = event.reservation_id["order-".len()..].parse().expect("an order id");
        assert_eq!(event.deadline_ms, deadline(race), "{event:?}");
        assert_eq!(event.released.as_slice(), &[1], "{event:?}");
        expiries[race] += 1;
    }
    for race in 0..EXPIRY_RACES {
        let expected = u32::from(!confirmed[race]);
        assert_eq!(
            expiries[race], expected,
            "race {race}: confirmed {}, expiry events {}",
            confirmed[race], expiries[race]
        );
        let state = engine.get(&order(race), engine.now_ms()).expect("known reservation").state;
        let expected = if confirmed[race] { ReservationState::Confirmed } else { ReservationState::Expired };
        assert_eq!(state, expected, "race {race}");
    }

    let wins = confirmed.iter().filter(|&&won| won).count();
    eprintln!("confirm/expiry race: confirm won {wins} of {EXPIRY_RACES}, expiry won the rest");
    let position = engine.availability("SKU", "L0", None, engine.now_ms()).expect("known position");
    assert_eq!(position.reserved, 0, "{position:?}");
    assert_eq!(position.allocated as usize, wins, "{position:?}");
    assert_eq!(position.on_hand as usize, EXPIRY_RACES, "{position:?}");
    assert_eq!(engine.stats().holds_expired as usize, EXPIRY_RACES - wins);
    assert_eq!(engine.audit(), Ok(()));
}

// Concurrent retries of one reserve.

const RETRY_ROUNDS: usize = 2_000;
const RETRY_THREADS: usize = 4;

#[test]
fn reserve_retries_create_once() {
    let engine = engine_with_locations(2);
    let codes = |round: usize| (format!("A-{round}"), format!("B-{round}"));
    let request = |round: usize| {
        let (first, second) = codes(round);
        ReserveRequest {
            reservation_id: format!("order-{round}"),
            channel: None,
            lines: vec![line(&first, "L0", 2), line(&second, "L1", 1)],
            policy: Policy::AllOrNothing,
            ttl_ms: TTL_15_MIN_MS,
        }
    };
    // Each thread sends at its own time: the content, not the time, identifies a retry.
    let sent_at = |round: usize, worker: usize| T0_MS + (round * RETRY_THREADS + worker) as u64;

    run_rounds(
        RETRY_THREADS,
        RETRY_ROUNDS,
        |round| {
            // Even rounds stock one copy of the order and odd rounds two, so a second
            // creation shows as a reserve that held nothing or as units reserved twice.
            let copies = 1 + round as u64 % 2;
            let (first, second) = codes(round);
            engine.set_on_hand(&first, "L0", 2 * copies, T0_MS).expect("valid stock");
            engine.set_on_hand(&second, "L1", copies, T0_MS).expect("valid stock");
        },
        |worker, round| engine.reserve(&request(round), sent_at(round, worker)),
        |round, outcomes| {
            let outcomes: Vec<ReserveOutcome> = outcomes
                .into_iter()
                .map(|outcome: Result<ReserveOutcome, ReserveError>| outcome.expect("valid reserve"))
                .collect();
            let created: Vec<&ReserveOutcome> = outcomes.iter().filter(|outcome| !outcome.replayed).collect();
            assert_eq!(created.len(), 1, "round {round}: {outcomes:?}");
            let first = created[0];
            assert!(first.held_all(), "round {round}: {first:?}");
            for outcome in &outcomes {
                assert_eq!(outcome.lines, first.lines, "round {round}: {outcomes:?}");
                assert_eq!(outcome.deadline_ms, first.deadline_ms, "round {round}: {outcomes:?}");
            }

            let now = sent_at(round + 1, 0);
            let (first_sku, second_sku) = codes(round);
            let first_read = engine.availability(&first_sku, "L0", None, now).expect("known position");
            assert_eq!(first_read.reserved, 2, "round {round}: {first_read:?}");
            let second_read = engine.availability(&second_sku, "L1", None, now).expect("known position");
            assert_eq!(second_read.reserved, 1, "round {round}: {second_read:?}");
            let view = engine.get(&format!("order-{round}"), now).expect("the reservation exists");
            let held: Vec<u32> = view.lines.iter().map(|line| line.held).collect();
            assert_eq!(held, [2, 1], "round {round}: {view:?}");
        },
    );

    assert_eq!(engine.audit(), Ok(()));
    let stats = engine.stats();
    assert_eq!(stats.open_reservations, RETRY_ROUNDS as u64, "{stats:?}");
    assert_eq!(stats.oversold, 0, "{stats:?}");
}
