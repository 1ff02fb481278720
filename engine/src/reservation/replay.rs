//! Replay of reservation records at recovery: each record's effect applied as written,
//! with no checks made again.

use smallvec::SmallVec;

use super::table::{Line, OperationRecord, Reservation};
use super::types::{LineStatus, Policy};
use crate::Engine;
use crate::wal::record::{LineMove, MoveKind, ReservedLine};

/// Maps a logged `LineStatus` code back to the status.
fn line_status(code: u8) -> Result<LineStatus, String> {
    Ok(match code {
        0 => LineStatus::Held,
        1 => LineStatus::PartiallyHeld,
        2 => LineStatus::UnknownSku,
        3 => LineStatus::UnknownLocation,
        4 => LineStatus::InactiveLocation,
        5 => LineStatus::InsufficientAtp,
        6 => LineStatus::NotAttempted,
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
}

impl Engine {
    /// Recreates a reservation and holds its units.
    pub(crate) fn replay_reserved(&self, fields: ReservedFields) -> Result<(), String> {
        let policy = match fields.policy {
            0 => Policy::AllOrNothing,
            1 => Policy::Partial,
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

        let hash = self.reservations.hash(&fields.id);
        let mut shard = self.reservations.shard(hash).lock();
        if shard.find(hash, &fields.id).is_some() {
            return Err(format!("reservation {} is reserved twice", fields.id));
        }
        let floor_s = super::deadline_floor_s(reservation.deadline_ms);
        for line in reservation.lines.iter().filter(|line| line.held > 0) {
            let position = self.position_for_replay(line.position)?;
            let mut guard = position.lock(&self.counters.positions_in_shortage);
            guard.counters.reserved += line.held;
            guard.counters.hold_deadline_floor_s = guard.counters.hold_deadline_floor_s.min(floor_s);
        }
        shard.insert(hash, &|id| self.reservations.hash(id), reservation);
        Ok(())
    }

    /// Moves units of a reservation as a confirm, release or fulfil did.
    pub(crate) fn replay_moved(
        &self,
        now_ms: u64,
        id: &str,
        op_id: &str,
        fingerprint: u64,
        kind: MoveKind,
        moves: &[LineMove],
    ) -> Result<(), String> {
        let hash = self.reservations.hash(id);
        let mut shard = self.reservations.shard(hash).lock();
        let slot = shard.find(hash, id).ok_or_else(|| format!("reservation {id} is not known"))?;
        let reservation = shard.get_mut(slot);
        if moves.len() != reservation.lines.len() {
            return Err(format!("reservation {id} has {} lines, the record {}", reservation.lines.len(), moves.len()));
        }

        for (line, line_move) in reservation.lines.iter_mut().zip(moves) {
            let LineMove { from_held, from_allocated } = *line_move;
            if from_held + from_allocated == 0 {
                continue;
            }
            if from_held > line.held || from_allocated > line.allocated {
                return Err(format!("reservation {id}: a line has fewer units than the record moves"));
            }
            let position = self.position_for_replay(line.position)?;
            let mut guard = position.lock(&self.counters.positions_in_shortage);
            guard.unhold(from_held);
            line.held -= from_held;
            match kind {
                MoveKind::Confirm => {
                    guard.counters.allocated += from_held;
                    line.allocated += from_held;
                }
                MoveKind::Release => {
                    guard.counters.allocated -= from_allocated;
                    line.allocated -= from_allocated;
                    line.released += from_held + from_allocated;
                }
                MoveKind::Fulfil => {
                    guard.counters.allocated -= from_allocated;
                    guard.counters.on_hand = guard.counters.on_hand.saturating_sub(from_held + from_allocated);
                    line.allocated -= from_allocated;
                    line.fulfilled += from_held + from_allocated;
                }
            }
        }

        let moved = moves.iter().map(|line_move| line_move.from_held + line_move.from_allocated).collect();
        self.finish_replayed_operation(&mut shard, slot, now_ms, op_id, fingerprint, moved);
        Ok(())
    }

    /// Moves a hold's deadline later, as an extend did.
    pub(crate) fn replay_extended(
        &self,
        now_ms: u64,
        id: &str,
        op_id: &str,
        fingerprint: u64,
        deadline_ms: u64,
    ) -> Result<(), String> {
        let hash = self.reservations.hash(id);
        let mut shard = self.reservations.shard(hash).lock();
        let slot = shard.find(hash, id).ok_or_else(|| format!("reservation {id} is not known"))?;
        let reservation = shard.get_mut(slot);
        reservation.deadline_ms = deadline_ms;
        let moved = SmallVec::from_elem(0, reservation.lines.len());
        shard.schedule_expiry(slot);
        self.finish_replayed_operation(&mut shard, slot, now_ms, op_id, fingerprint, moved);
        Ok(())
    }

    /// Releases every held unit of a reservation, as an expiry did.
    pub(crate) fn replay_expired(&self, now_ms: u64, id: &str) -> Result<(), String> {
        let hash = self.reservations.hash(id);
        let mut shard = self.reservations.shard(hash).lock();
        let slot = shard.find(hash, id).ok_or_else(|| format!("reservation {id} is not known"))?;
        let reservation = shard.get_mut(slot);
        for line in reservation.lines.iter_mut().filter(|line| line.held > 0) {
            let position = self.position_for_replay(line.position)?;
            position.lock(&self.counters.positions_in_shortage).unhold(line.held);
            line.released += line.held;
            line.held = 0;
        }
        reservation.expired = true;
        if reservation.allocated() == 0 {
            shard.mark_ended(slot, now_ms, &|id| self.reservations.hash(id));
        } else {
            shard.unschedule_expiry(slot);
        }
        self.counters.holds_expired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.reservations.trim(&mut shard, now_ms);
        Ok(())
    }

    /// Records a replayed operation's outcome and closes the reservation if nothing is
    /// left open, as the live operation did.
    fn finish_replayed_operation(
        &self,
        shard: &mut super::table::Shard,
        slot: u32,
        now_ms: u64,
        op_id: &str,
        fingerprint: u64,
        moved: SmallVec<[u32; 2]>,
    ) {
        let reservation = shard.get_mut(slot);
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

    fn position_for_replay(&self, index: u32) -> Result<&crate::position::Position, String> {
        if index as usize >= self.catalog.position_count() {
            return Err(format!("position {index} does not exist"));
        }
        Ok(self.catalog.position(index))
    }
}
