//! Replay of reservation records at recovery: each record's effect applied as written,
//! with no checks made again.

use smallvec::SmallVec;

use super::table::{Line, OperationRecord, Reservation};
use super::types::{LineStatus, Policy};
use crate::Engine;
use crate::wal::record::{LineMove, MoveKind, ReservedLine, RoutedRecord};

/// Maps a logged `LineStatus` code back to the status.
pub(crate) fn line_status(code: u8) -> Result<LineStatus, String> {
    Ok(match code {
        0 => LineStatus::Held,
        1 => LineStatus::PartiallyHeld,
        2 => LineStatus::UnknownSku,
        3 => LineStatus::UnknownLocation,
        4 => LineStatus::InactiveLocation,
        5 => LineStatus::InsufficientAtp,
        6 => LineStatus::NotAttempted,
        7 => LineStatus::Backordered,
        other => return Err(format!("line status {other} is not known")),
    })
}

/// The fields of a `Reserved` record.
pub(crate) struct ReservedFields {
    pub now_ms: u64,
    pub id: String,
    pub fingerprint: u64,
    pub channel: u32,
    pub policy: u8,
    pub ttl_ms: u32,
    pub lines: Vec<ReservedLine>,
    pub unresolved: Vec<(u32, String, String)>,
    pub routed: Option<RoutedRecord>,
}

impl Engine {
    /// Recreates a reservation and reserves its held units. Each part of the effect is applied
    /// only to objects a snapshot copied before the record (see `ReplayFilter`).
    pub(crate) fn replay_reserved(&self, fields: ReservedFields, end_lsn: u64) -> Result<(), String> {
        let policy = match fields.policy {
            0 => Policy::AllOrNothing,
            1 => Policy::Partial,
            2 => Policy::Backorder,
            other => return Err(format!("policy {other} is not known")),
        };
        let mut lines: SmallVec<[Line; 1]> = SmallVec::with_capacity(fields.lines.len());
        for line in &fields.lines {
            lines.push(Line {
                position: line.position,
                sku: line.sku,
                location: line.location,
                status: line_status(line.status)?,
                requested: line.requested,
                held: line.held,
                allocated: 0,
                fulfilled: 0,
                released: 0,
            });
        }
        let mut reservation = Reservation::new(
            &fields.id,
            fields.fingerprint,
            fields.channel,
            policy,
            fields.now_ms,
            fields.ttl_ms,
            lines,
        );
        if !fields.unresolved.is_empty() {
            let unresolved =
                fields.unresolved.iter().map(|(line, sku, location)| (*line, sku.into(), location.into())).collect();
            reservation.unresolved = Some(unresolved);
        }
        reservation.routed = fields.routed.map(Box::new);

        let hash = self.reservations.hash(&fields.id);
        let mut shard = self.reservations.shard(hash).lock();
        self.reservations.trim(&mut shard, fields.now_ms);
        let create = match shard.find(hash, &fields.id) {
            // A snapshot copied the reservation after this record.
            Some(slot) if shard.get(slot).last_lsn >= end_lsn => false,
            Some(_) => return Err(format!("reservation {} is reserved twice", fields.id)),
            None => true,
        };
        let floor_s = super::deadline_floor_s(reservation.deadline_ms);
        let stale = self.stale_positions(reservation.lines.iter().map(|line| (line.position, line.held)), end_lsn)?;
        for (line, _) in reservation.lines.iter().zip(&stale).filter(|(line, stale)| line.held > 0 && **stale) {
            if !create {
                return Err(snapshot_order_error(&fields.id));
            }
            let mut guard = self.lock_for_replay(line.position, end_lsn);
            guard.counters.reserved += line.held;
            guard.counters.hold_deadline_floor_s = guard.counters.hold_deadline_floor_s.min(floor_s);
        }
        if create {
            reservation.last_lsn = end_lsn;
            shard.insert(hash, &|id| self.reservations.hash(id), reservation);
        }
        Ok(())
    }

    /// Moves units of a reservation as a confirm, release or fulfil did.
    pub(crate) fn replay_moved(
        &self,
        op: ReplayedOperation<'_>,
        kind: MoveKind,
        moves: &[LineMove],
    ) -> Result<(), String> {
        let id = op.id;
        let hash = self.reservations.hash(id);
        let mut shard = self.reservations.shard(hash).lock();
        let Some((slot, apply)) = find_for_replay(&shard, hash, &op)? else { return Ok(()) };
        let reservation = shard.get_mut(slot);
        if moves.len() != reservation.lines.len() {
            return Err(format!("reservation {id} has {} lines, the record {}", reservation.lines.len(), moves.len()));
        }

        let units = reservation
            .lines
            .iter()
            .zip(moves)
            .map(|(line, moved)| (line.position, moved.from_held + moved.from_allocated));
        let stale = self.stale_positions(units, op.end_lsn)?;
        for ((line, line_move), stale) in reservation.lines.iter_mut().zip(moves).zip(stale) {
            let LineMove { from_held, from_allocated } = *line_move;
            if from_held + from_allocated == 0 {
                continue;
            }
            if apply {
                if from_held > line.held || from_allocated > line.allocated {
                    return Err(format!("reservation {id}: a line has fewer units than the record moves"));
                }
                line.held -= from_held;
                match kind {
                    MoveKind::Confirm => line.allocated += from_held,
                    MoveKind::Release => {
                        line.allocated -= from_allocated;
                        line.released += from_held + from_allocated;
                    }
                    MoveKind::Fulfil => {
                        line.allocated -= from_allocated;
                        line.fulfilled += from_held + from_allocated;
                    }
                }
            }
            if !stale {
                continue;
            }
            if !apply {
                return Err(snapshot_order_error(id));
            }
            let mut guard = self.lock_for_replay(line.position, op.end_lsn);
            guard.unhold(from_held);
            match kind {
                MoveKind::Confirm => guard.counters.allocated += from_held,
                MoveKind::Release => guard.counters.allocated -= from_allocated,
                MoveKind::Fulfil => {
                    guard.counters.allocated -= from_allocated;
                    guard.counters.on_hand = guard.counters.on_hand.saturating_sub(from_held + from_allocated);
                }
            }
        }

        if apply {
            let moved = moves.iter().map(|line_move| line_move.from_held + line_move.from_allocated).collect();
            self.finish_replayed_operation(&mut shard, slot, &op, moved);
        }
        Ok(())
    }

    /// Moves a hold's deadline later, as an extend did.
    pub(crate) fn replay_extended(&self, op: ReplayedOperation<'_>, deadline_ms: u64) -> Result<(), String> {
        let hash = self.reservations.hash(op.id);
        let mut shard = self.reservations.shard(hash).lock();
        let Some((slot, true)) = find_for_replay(&shard, hash, &op)? else { return Ok(()) };
        let reservation = shard.get_mut(slot);
        reservation.deadline_ms = deadline_ms;
        let moved = SmallVec::from_elem(0, reservation.lines.len());
        shard.schedule_expiry(slot);
        self.finish_replayed_operation(&mut shard, slot, &op, moved);
        Ok(())
    }

    /// Releases every held unit of a reservation, as an expiry did.
    pub(crate) fn replay_expired(&self, op: ReplayedOperation<'_>) -> Result<(), String> {
        let (id, now_ms) = (op.id, op.now_ms);
        // A snapshot counted only the expiries logged below its start.
        self.counters.holds_expired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hash = self.reservations.hash(id);
        let mut shard = self.reservations.shard(hash).lock();
        let Some((slot, apply)) = find_for_replay(&shard, hash, &op)? else { return Ok(()) };
        let reservation = shard.get_mut(slot);
        let stale =
            self.stale_positions(reservation.lines.iter().map(|line| (line.position, line.held)), op.end_lsn)?;
        for (line, _) in reservation.lines.iter().zip(&stale).filter(|(line, stale)| line.held > 0 && **stale) {
            self.lock_for_replay(line.position, op.end_lsn).unhold(line.held);
        }
        if !apply {
            // Copied after the expiry, so the lines hold nothing and no position
            // above was changed.
            return Ok(());
        }
        for line in reservation.lines.iter_mut() {
            line.released += line.held;
            line.held = 0;
        }
        reservation.expired = true;
        reservation.last_lsn = op.end_lsn;
        if reservation.allocated() == 0 {
            shard.mark_ended(slot, now_ms, &|id| self.reservations.hash(id));
        } else {
            shard.unschedule_expiry(slot);
        }
        self.reservations.trim(&mut shard, now_ms);
        Ok(())
    }

    /// Records a replayed operation's outcome and closes the reservation if nothing is
    /// left open, as the live operation did.
    fn finish_replayed_operation(
        &self,
        shard: &mut super::table::Shard,
        slot: u32,
        op: &ReplayedOperation<'_>,
        moved: SmallVec<[u32; 2]>,
    ) {
        let ReplayedOperation { now_ms, op_id, fingerprint, .. } = *op;
        let reservation = shard.get_mut(slot);
        reservation.last_lsn = op.end_lsn;
        let state = reservation.state();
        let nothing_held = reservation.held() == 0;
        reservation.operations.push(OperationRecord {
            op_id: op_id.into(),
            fingerprint,
            moved,
            state,
            deadline_ms: reservation.deadline_ms,
        });
        if !state.is_open() {
            shard.mark_ended(slot, now_ms, &|id| self.reservations.hash(id));
        } else if nothing_held {
            shard.unschedule_expiry(slot);
        }
        self.reservations.trim(shard, now_ms);
    }

    /// Locks a position for replaying the record that ends at `end_lsn`, or returns
    /// `None` when the position already reflects it (a snapshot copied it later).
    pub(crate) fn position_for_replay(
        &self,
        index: u32,
        end_lsn: u64,
    ) -> Result<Option<crate::position::PositionGuard<'_>>, String> {
        let stale = self.stale_positions(std::iter::once((index, 1)), end_lsn)?;
        Ok(stale[0].then(|| self.lock_for_replay(index, end_lsn)))
    }

    /// For each (position, units) of a record, whether the position still lacks the
    /// record's effect. Decided for all lines before any is applied, because the first
    /// of two lines on one position stamps it.
    fn stale_positions(
        &self,
        lines: impl Iterator<Item = (u32, u32)>,
        end_lsn: u64,
    ) -> Result<SmallVec<[bool; 4]>, String> {
        lines
            .map(|(index, units)| {
                if units == 0 {
                    return Ok(false);
                }
                if index as usize >= self.catalog.position_count() {
                    return Err(format!("position {index} does not exist"));
                }
                Ok(self.catalog.position_lsn(index).load(std::sync::atomic::Ordering::Relaxed) < end_lsn)
            })
            .collect()
    }

    fn lock_for_replay(&self, index: u32, end_lsn: u64) -> crate::position::PositionGuard<'_> {
        let mut guard = self.catalog.lock_position(index, &self.counters.positions_in_shortage);
        guard.replayed_lsn = end_lsn;
        guard
    }
}

/// An operation record on an existing reservation, being replayed.
#[derive(Clone, Copy)]
pub(crate) struct ReplayedOperation<'a> {
    pub now_ms: u64,
    pub id: &'a str,
    pub op_id: &'a str,
    pub fingerprint: u64,
    /// LSN just past the record.
    pub end_lsn: u64,
    /// Records below this LSN may name a reservation that a snapshot no longer held.
    pub reservations_lsn: u64,
}

/// Finds the reservation an operation record names. Returns its slot and whether the
/// reservation still lacks the record's effect, or `None` when the reservation was
/// forgotten before a snapshot copied its shard (so the snapshot's positions, copied
/// later, already reflect the record).
fn find_for_replay(
    shard: &super::table::Shard,
    hash: u64,
    op: &ReplayedOperation<'_>,
) -> Result<Option<(u32, bool)>, String> {
    match shard.find(hash, op.id) {
        Some(slot) => Ok(Some((slot, shard.get(slot).last_lsn < op.end_lsn))),
        None if op.end_lsn <= op.reservations_lsn => Ok(None),
        None => Err(format!("reservation {} is not known", op.id)),
    }
}

/// Returns the error for a record found in a reservation's snapshot copy but not in
/// its positions' copies, which the copy order (reservations first) rules out.
fn snapshot_order_error(id: &str) -> String {
    format!("reservation {id}: the snapshot holds the record for the reservation but not for one of its positions")
}
