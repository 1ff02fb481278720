//! Storage of reservations: shards keyed by reservation id, each with its own lock,
//! id index, expiry buckets and queue of ended reservations kept for retries.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use compact_str::CompactString;
use smallvec::SmallVec;

use super::slots::Slots;
use super::types::{LineStatus, Policy, ReservationState};
use crate::wal::record::RoutedRecord;

/// Expiry buckets group deadlines by `deadline_ms >> EXPIRY_BUCKET_SHIFT` (about 1 s).
pub(crate) const EXPIRY_BUCKET_SHIFT: u32 = 10;

const _: () = assert!(crate::limits::TTL_MS_MAX <= u32::MAX as u64, "a TTL is stored in 32 bits");

/// Marks a reservation that is not in the expiry buckets.
const NOT_IN_EXPIRY: u32 = u32::MAX;

/// Returns the expiry bucket of a deadline: its second, roughly (1,024 ms). Fits 32 bits until
/// the year 2109.
fn bucket_of(deadline_ms: u64) -> u32 {
    (deadline_ms >> EXPIRY_BUCKET_SHIFT).min(u64::from(NOT_IN_EXPIRY - 1)) as u32
}

/// Reservations with held units, grouped by the bucket of their deadline. A map finds
/// a bucket in constant time; a min-heap of the bucket keys gives the sweep the
/// earliest bucket first.
#[derive(Default)]
struct ExpiryBuckets {
    buckets: hashbrown::HashMap<u32, Vec<u32>, foldhash::fast::RandomState>,
    keys: BinaryHeap<Reverse<u32>>,
}

/// One line of a stored reservation. The sum held + allocated + fulfilled + released
/// equals the units held at reserve time and never changes.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    /// Position index, `catalog::NO_POSITION` when the line held nothing because its
    /// SKU or location was unknown or the position did not exist.
    pub position: u32,
    pub sku: u32,
    pub location: u32,
    pub status: LineStatus,
    pub requested: u32,
    pub held: u32,
    pub allocated: u32,
    pub fulfilled: u32,
    pub released: u32,
}

impl Line {
    pub(crate) fn held_at_reserve(&self) -> u32 {
        self.held + self.allocated + self.fulfilled + self.released
    }
}

/// The first outcome of an operation, kept so that a retry with the same op id gets it.
#[derive(Clone, Debug)]
pub(crate) struct OperationRecord {
    pub op_id: CompactString,
    pub fingerprint: u64,
    pub moved: SmallVec<[u32; 2]>,
    pub state: ReservationState,
    pub deadline_ms: u64,
}

/// A stored reservation.
#[derive(Debug)]
pub(crate) struct Reservation {
    pub id: CompactString,
    /// Hash of the reserve request's content, to tell a retry from a reuse of the id.
    pub fingerprint: u64,
    pub channel: u32,
    pub policy: Policy,
    /// Time-to-live of the reserve, so the first deadline is `created_ms + ttl_ms`.
    pub ttl_ms: u32,
    pub created_ms: u64,
    /// Current deadline of held units; extend moves it later.
    pub deadline_ms: u64,
    /// When the reservation closed; `u64::MAX` while open.
    pub ended_ms: u64,
    /// Whether held units ever expired.
    pub expired: bool,
    pub lines: SmallVec<[Line; 1]>,
    /// SKU and location codes of lines that named unknown codes, by line index.
    pub unresolved: Option<Box<[(u32, CompactString, CompactString)]>>,
    /// Operations in the order they were applied; most reservations see one or two.
    pub operations: SmallVec<[OperationRecord; 1]>,
    /// LSN just past this reservation's latest log record: a repeated request that
    /// returns a recorded outcome is acknowledged once it is durable.
    pub last_lsn: u64,
    /// The plan of a routed reserve; its lines are the reservation's lines in order.
    pub routed: Option<Box<RoutedRecord>>,
    /// Bit per routed shipment whose capacity was given back.
    pub capacity_returned: u8,
    expiry_bucket: u32,
    expiry_index: u32,
}

impl Reservation {
    pub(crate) fn new(
        id: &str,
        fingerprint: u64,
        channel: u32,
        policy: Policy,
        created_ms: u64,
        ttl_ms: u32,
        lines: SmallVec<[Line; 1]>,
    ) -> Self {
        Reservation {
            id: CompactString::new(id),
            fingerprint,
            channel,
            policy,
            ttl_ms,
            created_ms,
            deadline_ms: created_ms + u64::from(ttl_ms),
            ended_ms: u64::MAX,
            expired: false,
            lines,
            unresolved: None,
            operations: SmallVec::new(),
            last_lsn: 0,
            routed: None,
            capacity_returned: 0,
            expiry_bucket: NOT_IN_EXPIRY,
            expiry_index: 0,
        }
    }

    /// Returns the deadline the reserve set, before any extend.
    pub(crate) fn first_deadline_ms(&self) -> u64 {
        self.created_ms + u64::from(self.ttl_ms)
    }

    pub(crate) fn held(&self) -> u64 {
        self.lines.iter().map(|line| u64::from(line.held)).sum()
    }

    pub(crate) fn allocated(&self) -> u64 {
        self.lines.iter().map(|line| u64::from(line.allocated)).sum()
    }

    pub(crate) fn is_open(&self) -> bool {
        self.ended_ms == u64::MAX
    }

    pub(crate) fn state(&self) -> ReservationState {
        if self.held() > 0 {
            ReservationState::Held
        } else if self.allocated() > 0 {
            ReservationState::Confirmed
        } else if self.lines.iter().any(|line| line.fulfilled > 0) {
            ReservationState::Fulfilled
        } else if self.expired {
            ReservationState::Expired
        } else {
            ReservationState::Released
        }
    }
}

/// A closed reservation in the order of closing, with what forgetting it needs, so
/// that trimming reads no cold reservation to decide.
struct EndedEntry {
    ended_ms: u64,
    id_hash: u64,
    slot: u32,
}

/// One shard of the reservation table. Guarded by a mutex in `ReservationTable`.
pub(crate) struct Shard {
    slots: Slots<Reservation>,
    index: hashbrown::HashTable<u32>,
    expiry: ExpiryBuckets,
    /// Slots of closed reservations in the order they closed.
    ended: VecDeque<EndedEntry>,
    /// Open reservations in this shard.
    pub open: u64,
    pub forgotten_by_retention: u64,
    pub forgotten_by_bound: u64,
    /// Smallest age, in milliseconds, at which an ended reservation was forgotten
    /// because of the memory bound; `u64::MAX` if none was.
    pub bound_eviction_age_ms_min: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            slots: Slots::default(),
            index: hashbrown::HashTable::new(),
            expiry: ExpiryBuckets::default(),
            ended: VecDeque::new(),
            open: 0,
            forgotten_by_retention: 0,
            forgotten_by_bound: 0,
            bound_eviction_age_ms_min: u64::MAX,
        }
    }
}

impl Shard {
    pub(crate) fn find(&self, hash: u64, id: &str) -> Option<u32> {
        self.index.find(hash, |&slot| self.slots[slot].id == id).copied()
    }

    pub(crate) fn get(&self, slot: u32) -> &Reservation {
        &self.slots[slot]
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Reservation {
        &mut self.slots[slot]
    }

    /// Stores a new reservation with held units and enters it in the expiry buckets.
    pub(crate) fn insert(&mut self, hash: u64, hasher: &impl Fn(&str) -> u64, reservation: Reservation) -> u32 {
        let slot = self.slots.insert(reservation);
        let slots = &self.slots;
        self.index.insert_unique(hash, slot, |&other| hasher(&slots[other].id));
        self.open += 1;
        self.schedule_expiry(slot);
        slot
    }

    /// Enters a reservation with held units in the bucket of its deadline.
    pub(crate) fn schedule_expiry(&mut self, slot: u32) {
        self.unschedule_expiry(slot);
        let reservation = &mut self.slots[slot];
        let bucket = bucket_of(reservation.deadline_ms);
        let keys = &mut self.expiry.keys;
        let entries = self.expiry.buckets.entry(bucket).or_insert_with(|| {
            keys.push(Reverse(bucket));
            Vec::new()
        });
        reservation.expiry_bucket = bucket;
        reservation.expiry_index = entries.len() as u32;
        entries.push(slot);
    }

    /// Removes a reservation from the expiry buckets, if it is there.
    pub(crate) fn unschedule_expiry(&mut self, slot: u32) {
        let reservation = &mut self.slots[slot];
        let bucket = reservation.expiry_bucket;
        if bucket == NOT_IN_EXPIRY {
            return;
        }
        let index = reservation.expiry_index as usize;
        reservation.expiry_bucket = NOT_IN_EXPIRY;

        let entries = self.expiry.buckets.get_mut(&bucket).expect("scheduled reservation has a bucket");
        debug_assert_eq!(entries[index], slot);
        entries.swap_remove(index);
        if let Some(&moved) = entries.get(index) {
            self.slots[moved].expiry_index = index as u32;
        }
        // An emptied bucket stays until the sweep passes it, so that a reserve and
        // release in the same second do not allocate and free it each time.
    }

    /// Collects the slots of reservations with a deadline at or before `now_ms`, for
    /// the caller to expire. Buckets wholly before `now_ms` leave the expiry index
    /// here; the bucket of `now_ms` itself keeps its entries until they expire.
    pub(crate) fn take_due(&mut self, now_ms: u64, out: &mut Vec<u32>) {
        let current = bucket_of(now_ms);
        while let Some(&Reverse(bucket)) = self.expiry.keys.peek() {
            if bucket > current {
                break;
            }
            if bucket == current {
                let entries = &self.expiry.buckets[&bucket];
                out.extend(entries.iter().copied().filter(|&slot| self.slots[slot].deadline_ms <= now_ms));
                break;
            }
            self.expiry.keys.pop();
            let entries = self.expiry.buckets.remove(&bucket).expect("every key has a bucket");
            for &slot in &entries {
                self.slots[slot].expiry_bucket = NOT_IN_EXPIRY;
            }
            out.extend(entries);
        }
    }

    /// Records that a reservation closed at `now_ms`.
    pub(crate) fn mark_ended(&mut self, slot: u32, now_ms: u64, hasher: &impl Fn(&str) -> u64) {
        self.unschedule_expiry(slot);
        let reservation = &mut self.slots[slot];
        debug_assert!(reservation.is_open());
        reservation.ended_ms = now_ms;
        let id_hash = hasher(&reservation.id);
        self.open -= 1;
        self.ended.push_back(EndedEntry { ended_ms: now_ms, id_hash, slot });
    }

    /// Forgets ended reservations older than the retention, and the oldest ones past
    /// `ended_max`.
    pub(crate) fn trim(&mut self, now_ms: u64, retention_ms: u64, ended_max: usize) {
        while let Some(entry) = self.ended.front() {
            let age_ms = now_ms.saturating_sub(entry.ended_ms);
            if age_ms >= retention_ms {
                self.forgotten_by_retention += 1;
            } else if self.ended.len() > ended_max {
                self.forgotten_by_bound += 1;
                self.bound_eviction_age_ms_min = self.bound_eviction_age_ms_min.min(age_ms);
            } else {
                break;
            }
            let EndedEntry { id_hash, slot, .. } = self.ended.pop_front().expect("front exists");
            self.index.find_entry(id_hash, |&other| other == slot).expect("stored reservation is indexed").remove();
            self.slots.remove(slot);
        }
    }

    pub(crate) fn ended_count(&self) -> usize {
        self.ended.len()
    }

    /// Pages of reservation slots, for copying a shard a few pages at a time.
    pub(crate) fn page_count(&self) -> usize {
        self.slots.page_count()
    }

    /// Calls `visit` with every reservation stored in one page of slots.
    pub(crate) fn visit_page(&self, page: usize, visit: impl FnMut(&Reservation)) {
        self.slots.visit_page(page, visit);
    }

    /// Stores a reservation read from a snapshot. Ended reservations must come in the
    /// order they ended.
    pub(crate) fn restore(&mut self, hash: u64, hasher: &impl Fn(&str) -> u64, reservation: Reservation) {
        let open = reservation.is_open();
        let held = reservation.held() > 0;
        let ended_ms = reservation.ended_ms;
        let slot = self.slots.insert(reservation);
        let slots = &self.slots;
        self.index.insert_unique(hash, slot, |&other| hasher(&slots[other].id));
        if open {
            self.open += 1;
            if held {
                self.schedule_expiry(slot);
            }
        } else {
            self.ended.push_back(EndedEntry { ended_ms, id_hash: hash, slot });
        }
    }

    /// Removes a stored reservation, open or ended, from every index.
    pub(crate) fn forget(&mut self, slot: u32, hash: u64) {
        self.unschedule_expiry(slot);
        if self.slots[slot].is_open() {
            self.open -= 1;
        } else {
            self.ended.retain(|entry| entry.slot != slot);
        }
        self.index.find_entry(hash, |&other| other == slot).expect("stored reservation is indexed").remove();
        self.slots.remove(slot);
    }

    /// Calls `visit` with every stored reservation.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(&Reservation)) {
        for (_, reservation) in self.slots.iter() {
            visit(reservation);
        }
    }

    /// Calls `visit` with every stored reservation, mutably.
    pub(crate) fn for_each_mut(&mut self, mut visit: impl FnMut(&mut Reservation)) {
        for (_, reservation) in self.slots.iter_mut() {
            visit(reservation);
        }
    }

    /// Approximate heap bytes of this shard's reservations and indexes.
    pub(crate) fn heap_bytes(&self) -> usize {
        let slots = self.slots.allocated_bytes();
        let index = self.index.capacity() * (size_of::<u32>() + 1);
        let extra: usize = self
            .slots
            .iter()
            .map(|(_, r)| {
                let lines = if r.lines.spilled() { r.lines.capacity() * size_of::<Line>() } else { 0 };
                let id = if r.id.is_heap_allocated() { r.id.len() } else { 0 };
                let operations =
                    if r.operations.spilled() { r.operations.capacity() * size_of::<OperationRecord>() } else { 0 };
                lines + id + operations
            })
            .sum();
        let queues = self.ended.capacity() * size_of::<EndedEntry>()
            + self.expiry.buckets.values().map(|entries| entries.capacity() * size_of::<u32>() + 40).sum::<usize>();
        slots + index + extra + queues
    }
}
