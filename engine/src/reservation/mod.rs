//! Reservations: reserve, confirm, release, fulfil, extend, get, and expiry.
//!
//! Lock order: a reservation shard, then the positions of its lines in index order.
//! Reads take no locks; the sweep takes the sweep lock, then shards one at a time.
//!
//! Expiry is decided by the deadline, not by the sweep. Each position keeps a lower
//! bound of its holds' deadlines; the engine keeps `swept_until_ms`, before which every
//! due hold has been released. A request touching a position whose bound has passed,
//! at a time after `swept_until_ms`, first sweeps every due hold, so reads and reserves
//! never count an expired hold. Operations on one reservation expire its own hold
//! under the shard lock, so a confirm racing with expiry has exactly one winner.

mod image;
pub(crate) mod replay;
mod slots;
pub(crate) mod table;
pub mod types;

use std::hash::BuildHasher;
use std::sync::atomic::Ordering;

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::Engine;
use crate::catalog::{NO_POSITION, validate_code, validate_id};
use crate::error::{ReservationError, ReserveError};
use crate::limits::{
    LINE_QUANTITY_MAX, LINES_PER_RESERVATION_MAX, OPERATION_ID_LEN_MAX, RESERVATION_ID_LEN_MAX, TTL_MS_MAX, TTL_MS_MIN,
};
use crate::position::PositionGuard;
use crate::supply::INBOUND_LOCATION_BIT;
use crate::wal::record::{LineMove, MoveKind, Record, ReservedLine, RoutedRecord};
use table::{Line, OperationRecord, Reservation, Shard};
use types::*;

/// Reservation shards, a power of two. More shards mean less lock contention between
/// threads and a longer sweep (it visits every shard).
const RESERVATION_SHARDS: usize = 64;

/// Position guards a request usually takes without allocating.
type Guards<'a> = SmallVec<[PositionGuard<'a>; 4]>;

/// Reservations in shards by id hash.
pub(crate) struct ReservationTable {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    hasher: foldhash::fast::RandomState,
    retention_ms: u64,
    ended_max_per_shard: usize,
}

impl ReservationTable {
    pub(crate) fn new(retention_ms: u64, ended_max: u64) -> Self {
        ReservationTable {
            shards: (0..RESERVATION_SHARDS).map(|_| CachePadded::new(Mutex::new(Shard::default()))).collect(),
            hasher: foldhash::fast::RandomState::default(),
            retention_ms,
            ended_max_per_shard: (ended_max as usize).div_ceil(RESERVATION_SHARDS),
        }
    }

    #[inline]
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// Picks the shard from bits 40 and up of the id hash. The shard's hash table uses
    /// the low bits for the bucket and the top 7 bits for its tags, so those must still
    /// vary within a shard.
    #[inline]
    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[(hash >> 40) as usize % RESERVATION_SHARDS]
    }

    fn trim(&self, shard: &mut Shard, now_ms: u64) {
        shard.trim(now_ms, self.retention_ms, self.ended_max_per_shard);
    }

    pub(crate) fn shards(&self) -> impl Iterator<Item = MutexGuard<'_, Shard>> {
        self.shards.iter().map(|shard| shard.lock())
    }
}

/// The facts an operation's change needs to write its log record.
struct OpContext<'a> {
    now_ms: u64,
    op_id: &'a str,
    fingerprint: u64,
}

/// A reserve line after its codes are resolved.
#[derive(Clone, Copy)]
pub(crate) struct ResolvedLine {
    /// Status decided before looking at stock, if the line cannot be held at all.
    pub status: Option<LineStatus>,
    pub sku: u32,
    pub location: u32,
    pub position: u32,
    pub quantity: u32,
    /// Taken from the inbound twin position (a backorder).
    pub backordered: bool,
}

/// The lines a reserve, routed or not, requests to hold.
pub(crate) struct Hold<'a> {
    pub reservation_id: &'a str,
    pub fingerprint: u64,
    pub channel: u32,
    pub may_sell_safety_stock: bool,
    pub policy: Policy,
    pub ttl_ms: u64,
    pub lines: &'a [ResolvedLine],
    /// Lines that named unknown codes: (line, SKU, location).
    pub unresolved: Vec<(u32, compact_str::CompactString, compact_str::CompactString)>,
    /// The plan of a routed reserve, whose capacity the hold claims.
    pub routed: Option<RoutedRecord>,
    /// The routing table the plan was made with, for the locations' daily capacity.
    /// It is read before any lock is taken, because building it takes the catalog's lock.
    pub routing_table: Option<std::sync::Arc<crate::routing::table::RoutingTable>>,
}

/// The result of a hold.
pub(crate) enum HoldOutcome {
    /// A new reservation (or, if nothing could be held, none).
    New(ReserveOutcome),
    /// The id names an earlier reservation with the same content: its first outcome
    /// and, for a routed one, its plan.
    Existing(ReserveOutcome, Option<Box<RoutedRecord>>),
    /// A location of the routed plan reached its daily capacity; nothing is held.
    CapacityTaken,
}

fn reserve_fingerprint(request: &ReserveRequest) -> u64 {
    let channel = request.channel.as_deref().unwrap_or(crate::DEFAULT_CHANNEL);
    foldhash::quality::FixedState::with_seed(0x5EED_0E5E).hash_one((
        channel,
        &request.lines,
        request.policy as u8,
        request.ttl_ms,
    ))
}

fn operation_fingerprint(kind: u8, units: &Units, extra: u64) -> u64 {
    foldhash::quality::FixedState::with_seed(0x5EED_0B5E).hash_one((kind, units, extra))
}

/// Locks the positions in `indexes` (sorted, without duplicates).
fn lock_positions<'e>(engine: &'e Engine, indexes: &[u32]) -> Guards<'e> {
    debug_assert!(indexes.windows(2).all(|pair| pair[0] < pair[1]));
    indexes.iter().map(|&index| engine.catalog.lock_position(index, &engine.counters.positions_in_shortage)).collect()
}

fn sorted_unique(mut indexes: SmallVec<[u32; 4]>) -> SmallVec<[u32; 4]> {
    indexes.sort_unstable();
    indexes.dedup();
    indexes
}

fn guard_for<'g, 'e>(guards: &'g mut Guards<'e>, order: &[u32], index: u32) -> &'g mut PositionGuard<'e> {
    let slot = order.binary_search(&index).expect("every touched position is locked");
    &mut guards[slot]
}

fn deadline_floor_s(deadline_ms: u64) -> u32 {
    (deadline_ms / 1_000).min(u64::from(u32::MAX - 1)) as u32
}

impl Engine {
    pub(crate) fn swept_until_ms(&self) -> u64 {
        self.expiry.swept_until_ms.load(Ordering::Acquire)
    }

    // Reserve.

    /// Holds units of one or more positions until `now + ttl_ms`.
    ///
    /// Idempotent on the reservation id. A repeat with the same content (channel,
    /// lines in order, policy, TTL) returns the first outcome, even after stock
    /// changed. The same id with different content is an error. A reserve that holds
    /// nothing leaves no record, so its retry is judged afresh.
    pub fn reserve(&self, request: &ReserveRequest, now_ms: u64) -> Result<ReserveOutcome, ReserveError> {
        self.durably(|| self.apply_reserve(request, now_ms))
    }

    fn apply_reserve(&self, request: &ReserveRequest, now_ms: u64) -> Result<ReserveOutcome, ReserveError> {
        self.validate_reserve(request)?;
        let (channel, may_sell_safety_stock) = self
            .resolve_channel(request.channel.as_deref())
            .ok_or_else(|| ReserveError::UnknownChannel { code: request.channel.clone().unwrap_or_default() })?;
        let resolved = self.resolve_lines(request, may_sell_safety_stock, now_ms);
        let unresolved: Vec<_> = resolved
            .iter()
            .zip(&request.lines)
            .enumerate()
            .filter(|(_, (line, _))| matches!(line.status, Some(LineStatus::UnknownSku | LineStatus::UnknownLocation)))
            .map(|(index, (_, line))| (index as u32, line.sku.as_str().into(), line.location.as_str().into()))
            .collect();
        let hold = Hold {
            reservation_id: &request.reservation_id,
            fingerprint: reserve_fingerprint(request),
            channel,
            may_sell_safety_stock,
            policy: request.policy,
            ttl_ms: request.ttl_ms,
            lines: &resolved,
            unresolved,
            routed: None,
            routing_table: None,
        };
        match self.hold(hold, now_ms)? {
            HoldOutcome::New(outcome) | HoldOutcome::Existing(outcome, _) => Ok(outcome),
            HoldOutcome::CapacityTaken => unreachable!("a reserve without routing claims no capacity"),
        }
    }

    /// Holds resolved lines under one reservation id, or returns the reservation that
    /// id already names. A routed hold also claims a day of capacity at each of its
    /// locations, and holds nothing if one of them is full.
    pub(crate) fn hold(&self, hold: Hold<'_>, now_ms: u64) -> Result<HoldOutcome, ReserveError> {
        let touched = sorted_unique(
            hold.lines.iter().filter(|line| line.position != NO_POSITION).map(|line| line.position).collect(),
        );
        let hash = self.reservations.hash(hold.reservation_id);
        loop {
            // Make sure no position counts an expired hold before taking locks.
            self.sweep_if_positions_due(&touched, now_ms);

            let mut shard = self.reservations.shard(hash).lock();

            // Read the clock under the shard lock: a concurrent sweep raises the clock
            // before it visits this shard, so a hold made here is either seen by that
            // sweep or has a deadline after the sweep's time.
            let now_ms = self.clock.observe(now_ms);
            self.reservations.trim(&mut shard, now_ms);
            if let Some(slot) = shard.find(hash, hold.reservation_id) {
                let existing = shard.get(slot);
                if existing.fingerprint != hold.fingerprint {
                    return Err(ReserveError::IdReusedWithDifferentContent { id: hold.reservation_id.to_owned() });
                }
                self.journal.depend_on(existing.last_lsn);
                return Ok(HoldOutcome::Existing(replayed_reserve(existing), existing.routed.clone()));
            }

            let deadline_ms = now_ms + hold.ttl_ms;
            let mut guards = lock_positions(self, &touched);
            let swept_until_ms = self.swept_until_ms();
            if now_ms > swept_until_ms && guards.iter().any(|guard| guard.counters.may_hold_expired(now_ms)) {
                drop(guards);
                drop(shard);
                self.expire_due(now_ms);
                continue;
            }

            let mut outcome =
                plan_reserve(hold.policy, hold.lines, &touched, &guards, hold.may_sell_safety_stock, deadline_ms);
            for (line, result) in hold.lines.iter().zip(outcome.lines.iter_mut()) {
                if line.backordered && result.status == LineStatus::Held {
                    result.status = LineStatus::Backordered;
                }
            }
            if !outcome.held_any() {
                return Ok(HoldOutcome::New(outcome));
            }
            if let Some(routed) = &hold.routed
                && let Some(table) = &hold.routing_table
                && !self.claim_capacity(table, routed)
            {
                return Ok(HoldOutcome::CapacityTaken);
            }

            // Apply: the plan fits every position's ATP, so nothing below can fail.
            let floor_s = deadline_floor_s(deadline_ms);
            let mut lines: SmallVec<[Line; 1]> = SmallVec::with_capacity(hold.lines.len());
            for (line, result) in hold.lines.iter().zip(&outcome.lines) {
                if result.held > 0 {
                    let guard = guard_for(&mut guards, &touched, line.position);
                    guard.counters.reserved += result.held;
                    guard.counters.hold_deadline_floor_s = guard.counters.hold_deadline_floor_s.min(floor_s);
                    if guard.counters.in_shortage() {
                        self.counters.oversold.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lines.push(Line {
                    position: line.position,
                    sku: line.sku,
                    location: line.location,
                    status: result.status,
                    requested: line.quantity,
                    held: result.held,
                    allocated: 0,
                    fulfilled: 0,
                    released: 0,
                });
            }

            let mut reservation = Reservation::new(
                hold.reservation_id,
                hold.fingerprint,
                hold.channel,
                hold.policy,
                now_ms,
                hold.ttl_ms as u32,
                lines,
            );
            if !hold.unresolved.is_empty() {
                reservation.unresolved = Some(hold.unresolved.into_boxed_slice());
            }
            reservation.routed = hold.routed.map(Box::new);

            // Log while the positions are still locked, so the record's LSN follows
            // every change this reserve saw.
            reservation.last_lsn = self.journal.append(|| reserved_record(&reservation));
            drop(guards);
            shard.insert(hash, &|id| self.reservations.hash(id), reservation);
            return Ok(HoldOutcome::New(outcome));
        }
    }

    fn validate_reserve(&self, request: &ReserveRequest) -> Result<(), ReserveError> {
        validate_id("reservation_id", &request.reservation_id, RESERVATION_ID_LEN_MAX)
            .map_err(ReserveError::ReservationId)?;
        if request.lines.is_empty() {
            return Err(ReserveError::NoLines { id: request.reservation_id.clone() });
        }
        if request.lines.len() > LINES_PER_RESERVATION_MAX {
            return Err(ReserveError::TooManyLines { id: request.reservation_id.clone(), count: request.lines.len() });
        }
        if !(TTL_MS_MIN..=TTL_MS_MAX).contains(&request.ttl_ms) {
            return Err(ReserveError::TtlOutOfRange { ttl_ms: request.ttl_ms });
        }
        for (index, line) in request.lines.iter().enumerate() {
            validate_code("sku", &line.sku).map_err(|error| ReserveError::LineCode { line: index, error })?;
            validate_code("location", &line.location).map_err(|error| ReserveError::LineCode { line: index, error })?;
            if !(1..=u64::from(LINE_QUANTITY_MAX)).contains(&line.quantity) {
                return Err(ReserveError::QuantityOutOfRange { line: index, quantity: line.quantity });
            }
        }
        Ok(())
    }

    fn resolve_lines(
        &self,
        request: &ReserveRequest,
        may_sell_safety_stock: bool,
        now_ms: u64,
    ) -> SmallVec<[ResolvedLine; 4]> {
        request
            .lines
            .iter()
            .map(|line| {
                let mut resolved = ResolvedLine {
                    status: None,
                    sku: NO_POSITION,
                    location: NO_POSITION,
                    position: NO_POSITION,
                    quantity: line.quantity as u32,
                    backordered: false,
                };
                let sku = self.catalog.skus.get(&line.sku);
                let location = self.catalog.locations.get(&line.location);
                let location_record = location.and_then(|id| self.catalog.location(id));
                resolved.sku = sku.unwrap_or(NO_POSITION);
                resolved.location = location.unwrap_or(NO_POSITION);
                resolved.status = match (sku, location_record) {
                    (None, _) => Some(LineStatus::UnknownSku),
                    (_, None) => Some(LineStatus::UnknownLocation),
                    (Some(_), Some(record)) if !record.active.load(Ordering::Acquire) => {
                        Some(LineStatus::InactiveLocation)
                    }
                    (Some(sku), Some(_)) => match self.catalog.find_position(sku, resolved.location) {
                        Some(position) => {
                            resolved.position = position;
                            None
                        }
                        None => Some(LineStatus::InsufficientAtp),
                    },
                };
                // A backorder takes a line that current ATP cannot fill from the inbound
                // twin, whose ATP is the free inbound supply. Deciding on a lock-free
                // read can only backorder a line that stock freed in the meantime could
                // have filled. The hold checks the twin's ATP under its lock.
                if request.policy == Policy::Backorder
                    && matches!(resolved.status, None | Some(LineStatus::InsufficientAtp))
                    && let Some(sku) = sku
                {
                    let short = resolved.position == NO_POSITION
                        || self.read_position(resolved.position, now_ms).atp(may_sell_safety_stock)
                            < i64::from(resolved.quantity);
                    let twin = self.catalog.find_position(sku, resolved.location | INBOUND_LOCATION_BIT);
                    if short && let Some(twin) = twin {
                        resolved.position = twin;
                        resolved.status = None;
                        resolved.backordered = true;
                    }
                }
                resolved
            })
            .collect()
    }

    /// Locks one position whose counters count no hold past its deadline at `now_ms`,
    /// sweeping due holds first if needed, so a stock change judges shortage the way a
    /// read at the same time would.
    pub(crate) fn lock_position_current(&self, index: u32, now_ms: u64) -> PositionGuard<'_> {
        loop {
            let guard = self.catalog.lock_position(index, &self.counters.positions_in_shortage);
            if now_ms <= self.swept_until_ms() || !guard.counters.may_hold_expired(now_ms) {
                return guard;
            }
            drop(guard);
            self.expire_due(now_ms);
        }
    }

    /// Sweeps due holds if any of these positions may count one.
    fn sweep_if_positions_due(&self, positions: &[u32], now_ms: u64) {
        let now_ms = self.clock.observe(now_ms);
        if now_ms <= self.swept_until_ms() {
            return;
        }
        let due = positions.iter().any(|&index| self.catalog.position(index).read().may_hold_expired(now_ms));
        if due {
            self.expire_due(now_ms);
        }
    }

    // Confirm, release, fulfil, extend.

    /// Moves held units to allocated. Allocated units never expire. If the hold's
    /// deadline has passed, expiry wins and the confirm returns `Expired`.
    pub fn confirm(&self, request: &ConfirmRequest, now_ms: u64) -> Result<OperationOutcome, ReservationError> {
        let fingerprint = operation_fingerprint(0, &request.units, 0);
        self.operate(&request.reservation_id, &request.op_id, fingerprint, now_ms, |engine, reservation, op| {
            let now_ms = op.now_ms;
            if reservation.expired {
                return Err(nothing_or_expired(reservation, "held", now_ms));
            }
            let moved = units_to_move(reservation, &request.units, "held", now_ms, |line| line.held)?;
            if moved.iter().all(|&units| units == 0) {
                return Err(nothing_or_expired(reservation, "held", now_ms));
            }
            let mut guards = engine.lock_lines(reservation, &moved);
            for (line, &units) in reservation.lines.iter_mut().zip(&moved) {
                if units > 0 {
                    let guard = guard_for(&mut guards.1, &guards.0, line.position);
                    guard.unhold(units);
                    guard.counters.allocated += units;
                    line.held -= units;
                    line.allocated += units;
                }
            }
            let moves = moved.iter().map(|&units| LineMove { from_held: units, from_allocated: 0 }).collect();
            engine.append_move(reservation, op, MoveKind::Confirm, moves);
            Ok(moved)
        })
    }

    /// Returns units to ATP: held units first, then allocated ones, unless the request
    /// names which. Fulfilled units cannot be released (a return is an adjustment).
    pub fn release(&self, request: &ReleaseRequest, now_ms: u64) -> Result<OperationOutcome, ReservationError> {
        let fingerprint = operation_fingerprint(1, &request.units, request.from as u64);
        self.operate(&request.reservation_id, &request.op_id, fingerprint, now_ms, |engine, reservation, op| {
            let now_ms = op.now_ms;
            let (state, available): (&'static str, fn(&Line) -> u32) = match request.from {
                ReleaseFrom::HeldFirst => ("held or allocated", |line| line.held + line.allocated),
                ReleaseFrom::Held => ("held", |line| line.held),
                ReleaseFrom::Allocated => ("allocated", |line| line.allocated),
            };
            let moved = units_to_move(reservation, &request.units, state, now_ms, available)?;
            if moved.iter().all(|&units| units == 0) {
                return Err(nothing_or_expired(reservation, state, now_ms));
            }
            let mut guards = engine.lock_lines(reservation, &moved);
            let mut moves = vec![LineMove::default(); moved.len()];
            for ((line, &units), line_move) in reservation.lines.iter_mut().zip(&moved).zip(&mut moves) {
                if units == 0 {
                    continue;
                }
                let from_held = match request.from {
                    ReleaseFrom::Allocated => 0,
                    _ => units.min(line.held),
                };
                let from_allocated = units - from_held;
                let guard = guard_for(&mut guards.1, &guards.0, line.position);
                guard.unhold(from_held);
                guard.counters.allocated -= from_allocated;
                line.held -= from_held;
                line.allocated -= from_allocated;
                line.released += units;
                *line_move = LineMove { from_held, from_allocated };
            }
            engine.append_move(reservation, op, MoveKind::Release, moves);
            Ok(moved)
        })
    }

    /// Ships units: allocated units first, then held ones (an implicit confirm). They
    /// leave on hand. Refused, changing nothing, for units not on hand.
    pub fn fulfil(&self, request: &FulfilRequest, now_ms: u64) -> Result<OperationOutcome, ReservationError> {
        let fingerprint = operation_fingerprint(2, &request.units, 0);
        self.operate(&request.reservation_id, &request.op_id, fingerprint, now_ms, |engine, reservation, op| {
            let now_ms = op.now_ms;
            let state = "held or allocated";
            let moved = units_to_move(reservation, &request.units, state, now_ms, |line| line.held + line.allocated)?;
            if moved.iter().all(|&units| units == 0) {
                return Err(nothing_or_expired(reservation, state, now_ms));
            }
            let backordered = reservation
                .lines
                .iter()
                .zip(&moved)
                .position(|(line, &units)| units > 0 && line.status == LineStatus::Backordered);
            if let Some(line) = backordered {
                return Err(ReservationError::Backordered { id: reservation.id.to_string(), line });
            }
            let mut guards = engine.lock_lines(reservation, &moved);

            // Check on hand per position (lines may share one) before changing anything.
            let mut needed: SmallVec<[u64; 4]> = SmallVec::from_elem(0, guards.0.len());
            for (line, &units) in reservation.lines.iter().zip(&moved) {
                if units > 0 {
                    needed[guards.0.binary_search(&line.position).expect("locked")] += u64::from(units);
                }
            }
            for (index, line) in reservation.lines.iter().enumerate() {
                if moved[index] == 0 {
                    continue;
                }
                let slot = guards.0.binary_search(&line.position).expect("locked");
                let on_hand = guards.1[slot].counters.on_hand;
                if needed[slot] > u64::from(on_hand) {
                    return Err(ReservationError::NotOnHand {
                        id: reservation.id.to_string(),
                        line: index,
                        sku: engine.catalog.skus.code(line.sku).unwrap_or_default().to_owned(),
                        location: engine.catalog.locations.code(line.location).unwrap_or_default().to_owned(),
                        requested: moved[index],
                        on_hand,
                    });
                }
            }

            let mut moves = vec![LineMove::default(); moved.len()];
            for ((line, &units), line_move) in reservation.lines.iter_mut().zip(&moved).zip(&mut moves) {
                if units == 0 {
                    continue;
                }
                let from_allocated = units.min(line.allocated);
                let from_held = units - from_allocated;
                let guard = guard_for(&mut guards.1, &guards.0, line.position);
                guard.unhold(from_held);
                guard.counters.allocated -= from_allocated;
                guard.counters.on_hand -= units;
                line.held -= from_held;
                line.allocated -= from_allocated;
                line.fulfilled += units;
                *line_move = LineMove { from_held, from_allocated };
            }
            engine.append_move(reservation, op, MoveKind::Fulfil, moves);
            Ok(moved)
        })
    }

    /// Sets a new, later deadline for the held units, at most 7 days after now.
    pub fn extend(&self, request: &ExtendRequest, now_ms: u64) -> Result<OperationOutcome, ReservationError> {
        let fingerprint = operation_fingerprint(3, &Units::All, request.deadline_ms);
        self.operate(&request.reservation_id, &request.op_id, fingerprint, now_ms, |engine, reservation, op| {
            let now_ms = op.now_ms;
            if reservation.held() == 0 {
                return Err(nothing_or_expired(reservation, "held", now_ms));
            }
            if request.deadline_ms <= reservation.deadline_ms {
                return Err(ReservationError::DeadlineNotLater {
                    id: reservation.id.to_string(),
                    deadline_ms: request.deadline_ms,
                    current_ms: reservation.deadline_ms,
                });
            }
            if request.deadline_ms > now_ms + TTL_MS_MAX {
                return Err(ReservationError::DeadlineTooFar {
                    id: reservation.id.to_string(),
                    deadline_ms: request.deadline_ms,
                    now_ms,
                });
            }
            // Positions keep their deadline floor: a later deadline leaves it a valid
            // lower bound.
            reservation.deadline_ms = request.deadline_ms;
            reservation.last_lsn = engine.journal.append(|| Record::Extended {
                now_ms,
                id: reservation.id.to_string(),
                op_id: op.op_id.to_owned(),
                fingerprint: op.fingerprint,
                deadline_ms: request.deadline_ms,
            });
            Ok(SmallVec::from_elem(0, reservation.lines.len()))
        })
    }

    /// Runs an operation on an existing reservation: finds it, returns the recorded
    /// outcome of a repeated operation id, expires its hold if the deadline passed,
    /// runs `change`, then records the outcome.
    fn operate(
        &self,
        reservation_id: &str,
        op_id: &str,
        fingerprint: u64,
        now_ms: u64,
        change: impl FnOnce(&Engine, &mut Reservation, &OpContext<'_>) -> Result<SmallVec<[u32; 4]>, ReservationError>,
    ) -> Result<OperationOutcome, ReservationError> {
        self.durably(|| self.operate_applied(reservation_id, op_id, fingerprint, now_ms, change))
    }

    fn operate_applied(
        &self,
        reservation_id: &str,
        op_id: &str,
        fingerprint: u64,
        now_ms: u64,
        change: impl FnOnce(&Engine, &mut Reservation, &OpContext<'_>) -> Result<SmallVec<[u32; 4]>, ReservationError>,
    ) -> Result<OperationOutcome, ReservationError> {
        let now_ms = self.clock.observe(now_ms);
        validate_id("reservation_id", reservation_id, RESERVATION_ID_LEN_MAX)
            .map_err(ReservationError::ReservationId)?;
        validate_id("op_id", op_id, OPERATION_ID_LEN_MAX).map_err(ReservationError::OperationId)?;

        let hash = self.reservations.hash(reservation_id);
        let mut shard = self.reservations.shard(hash).lock();

        // Read the clock again under the shard lock: a sweep that expired this hold
        // in the meantime raised the clock first, so `now_ms` is at least its time.
        let now_ms = self.clock.observe(now_ms);
        self.reservations.trim(&mut shard, now_ms);
        let slot = shard
            .find(hash, reservation_id)
            .ok_or_else(|| ReservationError::UnknownReservation { id: reservation_id.to_owned() })?;
        if let Some(record) = shard.get(slot).operations.iter().find(|record| record.op_id == op_id) {
            if record.fingerprint != fingerprint {
                return Err(ReservationError::OperationIdReused {
                    id: reservation_id.to_owned(),
                    op_id: op_id.to_owned(),
                });
            }
            self.journal.depend_on(shard.get(slot).last_lsn);
            return Ok(OperationOutcome {
                replayed: true,
                moved: record.moved.iter().copied().collect(),
                state: record.state,
                deadline_ms: record.deadline_ms,
            });
        }

        self.expire_reservation(&mut shard, slot, now_ms);

        let held_before = shard.get(slot).held();
        let deadline_before = shard.get(slot).deadline_ms;
        let op = OpContext { now_ms, op_id, fingerprint };
        let moved = change(self, shard.get_mut(slot), &op);
        // An error changed nothing. An expiry above is kept because it would have
        // happened anyway.
        let moved = moved?;
        self.return_capacity(shard.get_mut(slot));
        let reservation = shard.get(slot);
        let (held_after, deadline_after) = (reservation.held(), reservation.deadline_ms);
        let open_after = reservation.state().is_open();

        if !open_after {
            shard.mark_ended(slot, now_ms, &|id| self.reservations.hash(id));
        } else if held_after == 0 && held_before > 0 {
            shard.unschedule_expiry(slot);
        } else if deadline_after != deadline_before {
            shard.schedule_expiry(slot);
        }
        let reservation = shard.get_mut(slot);
        let outcome = OperationOutcome {
            replayed: false,
            moved,
            state: reservation.state(),
            deadline_ms: reservation.deadline_ms,
        };
        reservation.operations.push(OperationRecord {
            op_id: op_id.into(),
            fingerprint,
            moved: outcome.moved.iter().copied().collect(),
            state: outcome.state,
            deadline_ms: outcome.deadline_ms,
        });
        self.reservations.trim(&mut shard, now_ms);
        Ok(outcome)
    }

    /// Appends the record of units moved by confirm, release or fulfil. The caller still
    /// holds the positions' locks.
    fn append_move(&self, reservation: &mut Reservation, op: &OpContext<'_>, kind: MoveKind, lines: Vec<LineMove>) {
        reservation.last_lsn = self.journal.append(|| Record::Moved {
            now_ms: op.now_ms,
            id: reservation.id.to_string(),
            op_id: op.op_id.to_owned(),
            fingerprint: op.fingerprint,
            kind,
            lines,
        });
    }

    /// Locks the positions of the lines that move units. Returns the sorted position
    /// indexes and their guards.
    fn lock_lines(&self, reservation: &Reservation, moved: &[u32]) -> (SmallVec<[u32; 4]>, Guards<'_>) {
        let order = sorted_unique(
            reservation
                .lines
                .iter()
                .zip(moved)
                .filter(|(_, units)| **units > 0)
                .map(|(line, _)| line.position)
                .collect(),
        );
        let guards = lock_positions(self, &order);
        (order, guards)
    }

    /// Returns the state of a reservation, or `None` if the id is not known (never
    /// held, or ended and forgotten after its retention).
    pub fn get(&self, reservation_id: &str, now_ms: u64) -> Option<ReservationView> {
        let now_ms = self.clock.observe(now_ms);
        let hash = self.reservations.hash(reservation_id);
        let mut shard = self.reservations.shard(hash).lock();
        let now_ms = self.clock.observe(now_ms);
        self.reservations.trim(&mut shard, now_ms);
        let slot = shard.find(hash, reservation_id)?;
        self.expire_reservation(&mut shard, slot, now_ms);
        Some(self.view(shard.get(slot)))
    }

    fn view(&self, reservation: &Reservation) -> ReservationView {
        let code = |index: &crate::code_index::CodeIndex, id: u32| index.code(id).unwrap_or_default().to_owned();
        let lines = reservation
            .lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                let unresolved = reservation
                    .unresolved
                    .iter()
                    .flat_map(|unresolved| unresolved.iter())
                    .find(|(line_index, _, _)| *line_index as usize == index);
                let (sku, location) = match unresolved {
                    Some((_, sku, location)) => (sku.to_string(), location.to_string()),
                    None => (code(&self.catalog.skus, line.sku), code(&self.catalog.locations, line.location)),
                };
                LineView {
                    sku,
                    location,
                    status: line.status,
                    requested: line.requested,
                    held: line.held,
                    allocated: line.allocated,
                    fulfilled: line.fulfilled,
                    released: line.released,
                }
            })
            .collect();
        ReservationView {
            id: reservation.id.to_string(),
            channel: code(&self.catalog.channels, reservation.channel),
            policy: reservation.policy,
            state: reservation.state(),
            deadline_ms: reservation.deadline_ms,
            created_ms: reservation.created_ms,
            ended_ms: (!reservation.is_open()).then_some(reservation.ended_ms),
            lines,
        }
    }

    // Expiry.

    /// Releases the held units of one reservation if its deadline has passed. The
    /// caller holds the shard lock, and a hold with no held units left is skipped, so the release happens exactly once.
    fn expire_reservation(&self, shard: &mut Shard, slot: u32, now_ms: u64) {
        let reservation = shard.get_mut(slot);
        if reservation.held() == 0 || reservation.deadline_ms > now_ms {
            return;
        }
        let released: SmallVec<[u32; 4]> = reservation.lines.iter().map(|line| line.held).collect();
        let mut guards = self.lock_lines(reservation, &released);
        for line in reservation.lines.iter_mut() {
            if line.held > 0 {
                guard_for(&mut guards.1, &guards.0, line.position).unhold(line.held);
                line.released += line.held;
                line.held = 0;
            }
        }
        {
            let _counted = self.expiry.counted.lock();
            reservation.last_lsn = self.journal.append(|| Record::Expired { now_ms, id: reservation.id.to_string() });
            self.counters.holds_expired.fetch_add(1, Ordering::Relaxed);
        }
        drop(guards);
        reservation.expired = true;
        self.return_capacity(reservation);
        let event = ExpiryEvent {
            reservation_id: reservation.id.to_string(),
            deadline_ms: reservation.deadline_ms,
            expired_at_ms: now_ms,
            released,
        };
        let closed = reservation.allocated() == 0;
        if closed {
            shard.mark_ended(slot, now_ms, &|id| self.reservations.hash(id));
        } else {
            shard.unschedule_expiry(slot);
        }
        self.push_expiry_event(event);
    }

    fn push_expiry_event(&self, event: ExpiryEvent) {
        let mut pending = self.expiry.pending.lock();
        if pending.len() >= crate::PENDING_EXPIRY_EVENTS_MAX {
            pending.pop_front();
            self.counters.expiry_events_dropped.fetch_add(1, Ordering::Relaxed);
        }
        pending.push_back(event);
    }

    /// Releases every hold whose deadline is at or before `now_ms`, unless a sweep
    /// already covered that time. Holds the sweep lock while visiting the shards.
    pub(crate) fn expire_due(&self, now_ms: u64) {
        let _sweep = self.expiry.sweep.lock();
        let now_ms = self.clock.observe(now_ms);
        if now_ms <= self.swept_until_ms() {
            return;
        }
        let mut due = Vec::new();
        for shard in self.reservations.shards.iter() {
            let mut shard = shard.lock();
            due.clear();
            shard.take_due(now_ms, &mut due);
            for &slot in &due {
                self.expire_reservation(&mut shard, slot, now_ms);
            }
            self.reservations.trim(&mut shard, now_ms);
        }
        self.expiry.swept_until_ms.fetch_max(now_ms, Ordering::AcqRel);
    }

    /// Releases every hold whose deadline is at or before `now_ms`, drops ended
    /// reservations past their retention, and returns the expiries since the last
    /// call, including those that requests triggered on the way. Each hold expires
    /// exactly once. Returns without waiting for the expiries' log records: the
    /// records of later requests that depend on them come after them.
    pub fn sweep(&self, now_ms: u64) -> Vec<ExpiryEvent> {
        self.expire_due(now_ms);
        self.expiry.pending.lock().drain(..).collect()
    }
}

/// Decides what a reserve holds, without changing anything. `guards` are the locked
/// positions in the order of `touched`.
fn plan_reserve(
    policy: Policy,
    resolved: &[ResolvedLine],
    touched: &[u32],
    guards: &Guards<'_>,
    may_sell_safety_stock: bool,
    deadline_ms: u64,
) -> ReserveOutcome {
    let mut remaining: SmallVec<[i64; 4]> =
        guards.iter().map(|guard| guard.counters.atp(may_sell_safety_stock).max(0)).collect();
    let mut lines: SmallVec<[LineOutcome; 4]> = SmallVec::with_capacity(resolved.len());

    match policy {
        Policy::Partial => {
            for line in resolved {
                let mut outcome =
                    LineOutcome { status: LineStatus::InsufficientAtp, requested: line.quantity, held: 0 };
                if let Some(status) = line.status {
                    outcome.status = status;
                } else {
                    let slot = touched.binary_search(&line.position).expect("touched");
                    let held = i64::from(line.quantity).min(remaining[slot]);
                    remaining[slot] -= held;
                    outcome.held = held as u32;
                    outcome.status = if outcome.held == line.quantity {
                        LineStatus::Held
                    } else if outcome.held > 0 {
                        LineStatus::PartiallyHeld
                    } else {
                        LineStatus::InsufficientAtp
                    };
                }
                lines.push(outcome);
            }
        }
        Policy::AllOrNothing | Policy::Backorder => {
            // Lines on one position are checked against their sum.
            let mut fits = true;
            for line in resolved {
                let status = match line.status {
                    Some(status) => status,
                    None => {
                        let slot = touched.binary_search(&line.position).expect("touched");
                        remaining[slot] -= i64::from(line.quantity);
                        if remaining[slot] >= 0 { LineStatus::Held } else { LineStatus::InsufficientAtp }
                    }
                };
                fits &= status == LineStatus::Held;
                lines.push(LineOutcome { status, requested: line.quantity, held: line.quantity });
            }
            for (line, outcome) in resolved.iter().zip(lines.iter_mut()) {
                if fits {
                    continue;
                }
                outcome.held = 0;
                if outcome.status == LineStatus::Held {
                    // A line on an over-committed position fails too; the others were
                    // only not attempted.
                    let over =
                        line.status.is_none() && remaining[touched.binary_search(&line.position).expect("touched")] < 0;
                    outcome.status = if over { LineStatus::InsufficientAtp } else { LineStatus::NotAttempted };
                }
            }
        }
    }
    ReserveOutcome { replayed: false, deadline_ms, lines }
}

/// Describes a new reservation as its log record.
fn reserved_record(reservation: &Reservation) -> Record {
    Record::Reserved {
        now_ms: reservation.created_ms,
        id: reservation.id.to_string(),
        fingerprint: reservation.fingerprint,
        channel: reservation.channel,
        policy: reservation.policy as u8,
        ttl_ms: reservation.ttl_ms,
        lines: reservation
            .lines
            .iter()
            .map(|line| ReservedLine {
                position: line.position,
                sku: line.sku,
                location: line.location,
                status: line.status as u8,
                requested: line.requested,
                held: line.held,
            })
            .collect(),
        unresolved: reservation
            .unresolved
            .iter()
            .flat_map(|unresolved| unresolved.iter())
            .map(|(line, sku, location)| (*line, sku.to_string(), location.to_string()))
            .collect(),
        routed: reservation.routed.as_deref().cloned(),
    }
}

/// Rebuilds the first outcome of a stored reservation for a repeated reserve.
fn replayed_reserve(reservation: &Reservation) -> ReserveOutcome {
    let lines = reservation
        .lines
        .iter()
        .map(|line| LineOutcome { status: line.status, requested: line.requested, held: line.held_at_reserve() })
        .collect();
    ReserveOutcome { replayed: true, deadline_ms: reservation.first_deadline_ms(), lines }
}

/// Works out how many units each line moves for `units`, checking each quantity
/// against `available` (units in the state the operation takes). A quantity that
/// needed units which expiry took is `Expired`, so the loser of that race gets that error.
fn units_to_move(
    reservation: &Reservation,
    units: &Units,
    state: &'static str,
    now_ms: u64,
    available: impl Fn(&Line) -> u32,
) -> Result<SmallVec<[u32; 4]>, ReservationError> {
    let line_count = reservation.lines.len();
    match units {
        Units::All => Ok(reservation.lines.iter().map(&available).collect()),
        Units::Lines(quantities) => {
            let mut moved: SmallVec<[u32; 4]> = SmallVec::from_elem(0, line_count);
            let mut named: SmallVec<[bool; 4]> = SmallVec::from_elem(false, line_count);
            for quantity in quantities {
                let line = quantity.line as usize;
                if line >= line_count {
                    return Err(ReservationError::LineOutOfRange { id: reservation.id.to_string(), line, line_count });
                }
                if named[line] {
                    return Err(ReservationError::DuplicateLine { id: reservation.id.to_string(), line });
                }
                named[line] = true;
                if quantity.quantity == 0 {
                    return Err(ReservationError::ZeroQuantity { id: reservation.id.to_string(), line });
                }
                let have = available(&reservation.lines[line]);
                if quantity.quantity > u64::from(have) && reservation.expired && state.contains("held") {
                    return Err(nothing_or_expired(reservation, state, now_ms));
                }
                if quantity.quantity > u64::from(have) {
                    return Err(ReservationError::QuantityExceeds {
                        id: reservation.id.to_string(),
                        line,
                        requested: quantity.quantity,
                        available: have,
                        state,
                    });
                }
                moved[line] = quantity.quantity as u32;
            }
            Ok(moved)
        }
    }
}

/// Builds the error for an operation that finds nothing to change: `Expired` if
/// expiry took the held units, otherwise `NothingToChange`.
fn nothing_or_expired(reservation: &Reservation, state: &'static str, now_ms: u64) -> ReservationError {
    // An expiry releases every held unit at once, so an expired reservation holds none.
    if reservation.expired && state.contains("held") {
        ReservationError::Expired { id: reservation.id.to_string(), deadline_ms: reservation.deadline_ms, now_ms }
    } else {
        ReservationError::NothingToChange { id: reservation.id.to_string(), state }
    }
}
