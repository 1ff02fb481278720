//! Interning of client codes (SKU, location, channel) to compact 32-bit ids.
//!
//! Lookups are lock-free: an open-addressing table of 64-bit slots, each holding a tag
//! (the high half of the code's hash) and the id plus one. Inserts take the catalog's
//! writer lock. When the table grows, the old table stays allocated until the index
//! drops, because a reader may still be probing it. The retired tables together are
//! never larger than the current one.

use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::chunked::{ChunkElement, ChunkedVec};

// SAFETY: a code slot is only ever built by `Default`.
unsafe impl ChunkElement for OnceLock<Box<str>> {}

/// Slots used at most, as a fraction `LOAD_NUMERATOR / LOAD_DENOMINATOR` of the table,
/// before the table doubles.
const LOAD_NUMERATOR: usize = 3;
const LOAD_DENOMINATOR: usize = 4;

/// Smallest table, in slots.
const TABLE_SLOTS_MIN: usize = 64;

/// The word a table slot is made of. A 64-bit slot carries a 32-bit hash tag beside
/// the value, so most mismatches are rejected without touching the value's data. A
/// 32-bit slot carries the value alone and halves the table's memory.
///
/// # Safety
/// All-zero bytes must be a valid word that reads as 0 (the empty slot), because
/// tables are allocated zeroed.
pub(crate) unsafe trait SlotWord: Send + Sync {
    /// Whether the slot carries a hash tag in its high 32 bits.
    const TAGGED: bool;
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
}

// SAFETY: all-zero bytes are an AtomicU64 of 0, the empty slot.
unsafe impl SlotWord for AtomicU64 {
    const TAGGED: bool = true;
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order);
    }
}

// SAFETY: all-zero bytes are an AtomicU32 of 0, the empty slot.
unsafe impl SlotWord for AtomicU32 {
    const TAGGED: bool = false;
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        u64::from(AtomicU32::load(self, order))
    }
    fn store(&self, value: u64, order: Ordering) {
        AtomicU32::store(self, value as u32, order);
    }
}

/// An open-addressing table with linear probing. Slot value 0 is empty; a stored value
/// `v` is kept as `v + 1`.
pub(crate) struct SlotTable<W: SlotWord> {
    mask: usize,
    slots: Box<[W]>,
}

impl<W: SlotWord> SlotTable<W> {
    pub(crate) fn with_slots(slot_count: usize) -> Self {
        let slot_count = slot_count.max(TABLE_SLOTS_MIN).next_power_of_two();
        let layout = std::alloc::Layout::array::<W>(slot_count).expect("table size fits the address space");
        // SAFETY: the layout is non-empty (at least TABLE_SLOTS_MIN words), zeroed words
        // are empty slots by SlotWord's contract, and the box frees with this layout.
        // Pages the table never writes stay uncommitted.
        let slots = unsafe {
            let words = std::alloc::alloc_zeroed(layout).cast::<W>();
            if words.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(words, slot_count))
        };
        SlotTable { mask: slot_count - 1, slots }
    }

    /// Slots needed to hold `entries` below the load limit.
    pub(crate) fn slots_for(entries: usize) -> usize {
        (entries * LOAD_DENOMINATOR / LOAD_NUMERATOR + 1).max(TABLE_SLOTS_MIN).next_power_of_two()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len() * LOAD_NUMERATOR / LOAD_DENOMINATOR
    }

    /// Walks the probe sequence of `hash`, calling `matches` with the value of every
    /// occupied slot whose tag equals the hash's tag, until it returns true or an empty
    /// slot ends the chain.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut matches: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = hash >> 32;
        let mut index = hash as usize & self.mask;
        loop {
            let slot = self.slots[index].load(Ordering::Acquire);
            if slot == 0 {
                return None;
            }
            if !W::TAGGED || slot >> 32 == tag {
                let value = (slot as u32).wrapping_sub(1);
                if matches(value) {
                    return Some(value);
                }
            }
            index = (index + 1) & self.mask;
        }
    }

    /// Stores `value` under `hash` in the first empty slot of its probe sequence.
    /// The caller holds the writer lock and has checked that the table has room.
    pub(crate) fn insert(&self, hash: u64, value: u32) {
        let tag = if W::TAGGED { hash & 0xffff_ffff_0000_0000 } else { 0 };
        let slot = tag | u64::from(value + 1);
        let mut index = hash as usize & self.mask;
        while self.slots[index].load(Ordering::Relaxed) != 0 {
            index = (index + 1) & self.mask;
        }
        self.slots[index].store(slot, Ordering::Release);
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.slots.len() * size_of::<W>()
    }
}

/// A growable `SlotTable` that readers load with one atomic pointer read.
pub(crate) struct GrowableTable<W: SlotWord> {
    current: AtomicPtr<SlotTable<W>>,
    /// Tables replaced by a larger one, kept until drop because readers may hold them.
    #[allow(clippy::vec_box, reason = "readers hold pointers to the boxed tables, so they must not move")]
    retired: Mutex<Vec<Box<SlotTable<W>>>>,
}

impl<W: SlotWord> GrowableTable<W> {
    pub(crate) fn with_entries(expected_entries: usize) -> Self {
        let table = Box::new(SlotTable::with_slots(SlotTable::<W>::slots_for(expected_entries)));
        GrowableTable { current: AtomicPtr::new(Box::into_raw(table)), retired: Mutex::new(Vec::new()) }
    }

    #[inline]
    pub(crate) fn load(&self) -> &SlotTable<W> {
        // SAFETY: tables are freed only in Drop, so the pointer stays valid for `&self`.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// Makes room for `entries` values, rebuilding the table with `rehash` (which gives
    /// the hash of a stored value) when it is too small. Writer lock held by the caller.
    pub(crate) fn reserve(&self, entries: usize, rehash: impl Fn(u32) -> u64) {
        let old = self.load();
        if entries <= old.capacity() {
            return;
        }
        let grown = Box::new(SlotTable::with_slots(SlotTable::<W>::slots_for(entries).max(old.slots.len() * 2)));
        for slot in old.slots.iter() {
            let slot = slot.load(Ordering::Relaxed);
            if slot != 0 {
                let value = (slot as u32) - 1;
                grown.insert(rehash(value), value);
            }
        }
        let old = self.current.swap(Box::into_raw(grown), Ordering::AcqRel);
        // SAFETY: `old` came from `Box::into_raw` and is now unreachable for new readers.
        self.retired.lock().push(unsafe { Box::from_raw(old) });
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        let retired: usize = self.retired.lock().iter().map(|table| table.allocated_bytes()).sum();
        self.load().allocated_bytes() + retired
    }
}

impl<W: SlotWord> Drop for GrowableTable<W> {
    fn drop(&mut self) {
        let current = *self.current.get_mut();
        // SAFETY: the pointer came from `Box::into_raw` and no reader outlives `self`.
        drop(unsafe { Box::from_raw(current) });
    }
}

/// Code-to-id interning with lock-free lookups.
pub(crate) struct CodeIndex {
    hasher: foldhash::quality::RandomState,
    table: GrowableTable<AtomicU64>,
    codes: ChunkedVec<OnceLock<Box<str>>>,
}

impl CodeIndex {
    pub(crate) fn with_capacity(expected_codes: usize) -> Self {
        CodeIndex {
            hasher: foldhash::quality::RandomState::default(),
            table: GrowableTable::with_entries(expected_codes),
            codes: ChunkedVec::new(),
        }
    }

    #[inline]
    fn hash(&self, code: &str) -> u64 {
        self.hasher.hash_one(code)
    }

    /// Returns the id of `code`, if interned.
    #[inline]
    pub(crate) fn get(&self, code: &str) -> Option<u32> {
        let hash = self.hash(code);
        self.table.load().find(hash, |id| self.code(id) == Some(code))
    }

    /// Returns the code of `id`.
    #[inline]
    pub(crate) fn code(&self, id: u32) -> Option<&str> {
        self.codes.get(id as usize).and_then(|code| code.get()).map(|code| &**code)
    }

    /// Interns `code` and returns its id and whether it was new. The caller holds the
    /// catalog's writer lock and has validated the code. Returns `None` when the index
    /// is full.
    pub(crate) fn intern(&self, code: &str) -> Option<(u32, bool)> {
        if let Some(id) = self.get(code) {
            return Some((id, false));
        }
        let count = self.codes.len();
        if count >= crate::limits::CODES_MAX as usize {
            return None;
        }
        self.table.reserve(count + 1, |id| self.hash(self.code(id).unwrap_or_default()));

        let id = self.codes.push_with(|slot| {
            let _ = slot.set(code.into());
        })?;
        let id = id as u32;
        self.table.load().insert(self.hash(code), id);
        Some((id, true))
    }

    /// Makes room for `count` codes without growing again.
    pub(crate) fn reserve(&self, count: usize) {
        self.table.reserve(count, |id| self.hash(self.code(id).unwrap_or_default()));
    }

    pub(crate) fn len(&self) -> usize {
        self.codes.len()
    }

    /// Bytes used by the index, excluding the code strings themselves.
    pub(crate) fn index_bytes(&self) -> usize {
        self.table.allocated_bytes()
    }

    /// Bytes used by the code strings and their handles.
    pub(crate) fn code_bytes(&self) -> usize {
        let strings: usize = (0..self.codes.len()).filter_map(|id| self.code(id as u32)).map(str::len).sum();
        self.codes.allocated_bytes() + strings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_index_interns_and_finds() {
        let index = CodeIndex::with_capacity(0);
        let count = 10_000;
        for i in 0..count {
            let (id, new) = index.intern(&format!("SKU-{i}")).unwrap();
            assert_eq!(id, i);
            assert!(new);
        }
        assert_eq!(index.intern("SKU-42"), Some((42, false)));
        for i in 0..count {
            assert_eq!(index.get(&format!("SKU-{i}")), Some(i));
        }
        assert_eq!(index.get("SKU-10000"), None);
        assert_eq!(index.code(7), Some("SKU-7"));
        assert_eq!(index.code(count), None);
    }
}
