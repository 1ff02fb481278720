//! Reservations to and from snapshot images.

use smallvec::SmallVec;

use super::ReservationTable;
use super::replay::line_status;
use super::table::{Line, OperationRecord, Reservation};
use super::types::{Policy, ReservationState};
use crate::snapshot::image::{ArchivedReservationImage, LineImage, OperationImage, ReservationImage, UnresolvedImage};

/// Reservation slot pages copied per shard lock: 16 pages of 64 slots, so a snapshot
/// holds a shard lock for about a thousand reservation copies at a time.
pub(crate) const SNAPSHOT_PAGES_PER_LOCK: usize = 16;

impl Reservation {
    pub(crate) fn to_image(&self) -> ReservationImage {
        ReservationImage {
            id: self.id.to_string(),
            fingerprint: self.fingerprint,
            channel: self.channel,
            policy: self.policy as u8,
            ttl_ms: self.ttl_ms,
            created_ms: self.created_ms,
            deadline_ms: self.deadline_ms,
            ended_ms: self.ended_ms,
            expired: self.expired,
            lines: self
                .lines
                .iter()
                .map(|line| LineImage {
                    position: line.position,
                    sku: line.sku,
                    location: line.location,
                    status: line.status as u8,
                    requested: line.requested,
                    held: line.held,
                    allocated: line.allocated,
                    fulfilled: line.fulfilled,
                    released: line.released,
                })
                .collect(),
            unresolved: self
                .unresolved
                .iter()
                .flat_map(|unresolved| unresolved.iter())
                .map(|(line, sku, location)| UnresolvedImage {
                    line: *line,
                    sku: sku.to_string(),
                    location: location.to_string(),
                })
                .collect(),
            operations: self
                .operations
                .iter()
                .map(|operation| OperationImage {
                    op_id: operation.op_id.to_string(),
                    fingerprint: operation.fingerprint,
                    moved: operation.moved.to_vec(),
                    state: operation.state as u8,
                    deadline_ms: operation.deadline_ms,
                })
                .collect(),
            last_lsn: self.last_lsn,
            routed: self.routed.as_deref().map(crate::wal::record::encode_routed).unwrap_or_default(),
        }
    }

    pub(crate) fn from_image(image: &ArchivedReservationImage) -> Result<Reservation, String> {
        let id = image.id.as_str();
        let policy = match image.policy {
            0 => Policy::AllOrNothing,
            1 => Policy::Partial,
            2 => Policy::Backorder,
            other => return Err(format!("reservation {id}: policy {other} is not known")),
        };

        let mut lines: SmallVec<[Line; 1]> = SmallVec::with_capacity(image.lines.len());
        for line in image.lines.iter() {
            lines.push(Line {
                position: line.position.to_native(),
                sku: line.sku.to_native(),
                location: line.location.to_native(),
                status: line_status(line.status)?,
                requested: line.requested.to_native(),
                held: line.held.to_native(),
                allocated: line.allocated.to_native(),
                fulfilled: line.fulfilled.to_native(),
                released: line.released.to_native(),
            });
        }
        let mut reservation = Reservation::new(
            id,
            image.fingerprint.to_native(),
            image.channel.to_native(),
            policy,
            image.created_ms.to_native(),
            image.ttl_ms.to_native(),
            lines,
        );

        reservation.deadline_ms = image.deadline_ms.to_native();
        reservation.ended_ms = image.ended_ms.to_native();
        reservation.expired = image.expired;
        reservation.last_lsn = image.last_lsn.to_native();
        if !image.routed.is_empty() {
            let routed = crate::wal::record::decode_routed(&image.routed)
                .map_err(|error| format!("reservation {id}: routed plan: {error}"))?;
            reservation.routed = Some(Box::new(routed));
        }
        if !image.unresolved.is_empty() {
            let unresolved = image
                .unresolved
                .iter()
                .map(|entry| (entry.line.to_native(), entry.sku.as_str().into(), entry.location.as_str().into()))
                .collect();
            reservation.unresolved = Some(unresolved);
        }
        for operation in image.operations.iter() {
            reservation.operations.push(OperationRecord {
                op_id: operation.op_id.as_str().into(),
                fingerprint: operation.fingerprint.to_native(),
                moved: operation.moved.iter().map(|units| units.to_native()).collect(),
                state: reservation_state(operation.state)?,
                deadline_ms: operation.deadline_ms.to_native(),
            });
        }
        Ok(reservation)
    }
}

fn reservation_state(code: u8) -> Result<ReservationState, String> {
    Ok(match code {
        0 => ReservationState::Held,
        1 => ReservationState::Confirmed,
        2 => ReservationState::Fulfilled,
        3 => ReservationState::Released,
        4 => ReservationState::Expired,
        other => return Err(format!("reservation state {other} is not known")),
    })
}

impl ReservationTable {
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Copies the reservations of one shard into `out`, taking the shard lock once per
    /// `SNAPSHOT_PAGES_PER_LOCK` pages. Returns the longest lock hold.
    pub(crate) fn copy_shard(&self, shard: usize, out: &mut Vec<ReservationImage>) -> std::time::Duration {
        let mut longest = std::time::Duration::ZERO;
        let mut page = 0;
        // Copies go to a small buffer under the lock, so that growing `out` (which
        // moves every copy made so far) happens with the lock released.
        let mut batch = Vec::with_capacity(SNAPSHOT_PAGES_PER_LOCK * 64);
        loop {
            let guard = self.shards[shard].lock();
            let started = std::time::Instant::now();
            let pages = guard.page_count();
            if page >= pages {
                return longest;
            }
            let until = (page + SNAPSHOT_PAGES_PER_LOCK).min(pages);
            for index in page..until {
                guard.visit_page(index, |reservation| batch.push(reservation.to_image()));
            }
            page = until;
            longest = longest.max(started.elapsed());
            drop(guard);
            out.append(&mut batch);
        }
    }

    /// Stores reservations read from a snapshot. The same id may come twice when a
    /// reservation was forgotten and reused while the snapshot was copied; the one with
    /// the later record wins.
    pub(crate) fn restore_images(&self, images: &[ArchivedReservationImage]) -> Result<(), String> {
        let reservations = images.iter().map(Reservation::from_image).collect::<Result<Vec<_>, String>>()?;
        self.restore(reservations);
        Ok(())
    }

    fn restore(&self, mut reservations: Vec<Reservation>) {
        // Ended ones in the order they ended, so that forgetting keeps its order.
        reservations.sort_by_key(|reservation| (reservation.ended_ms, reservation.last_lsn));
        let hasher = |id: &str| self.hash(id);
        for reservation in reservations {
            let hash = self.hash(&reservation.id);
            let mut shard = self.shard(hash).lock();
            if let Some(slot) = shard.find(hash, &reservation.id) {
                if shard.get(slot).last_lsn >= reservation.last_lsn {
                    continue;
                }
                shard.forget(slot, hash);
            }
            shard.restore(hash, &hasher, reservation);
        }
    }
}
