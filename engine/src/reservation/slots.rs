//! Storage for a shard's reservations: slots in fixed-size pages that never move.
//!
//! A `Vec`-backed slab doubles and copies all its entries when it grows, and with the
//! reservation ids hashed evenly over the shards, every shard doubles at about the same
//! moment. Pages grow one at a time and never copy, so growth costs one allocation.

/// Reservations per page: small enough that a shard's first page is cheap, large
/// enough that a page allocation is rare (one per 64 reservations).
const PAGE_LEN: usize = 64;

/// Slots that keep their index for as long as they are occupied. Freed slots are
/// reused last-freed first, while their memory is still in cache.
pub(crate) struct Slots<T> {
    pages: Vec<Box<[Option<T>]>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { pages: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slots<T> {
    /// Stores `value` and returns its slot.
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        if self.free.is_empty() {
            let first = (self.pages.len() * PAGE_LEN) as u32;
            self.pages.push((0..PAGE_LEN).map(|_| None).collect());
            self.free.extend((first..first + PAGE_LEN as u32).rev());
        }
        let slot = self.free.pop().expect("a page was just added");
        let entry = &mut self.pages[slot as usize / PAGE_LEN][slot as usize % PAGE_LEN];
        debug_assert!(entry.is_none());
        *entry = Some(value);
        self.len += 1;
        slot
    }

    /// Takes the value out of `slot` and frees the slot.
    pub(crate) fn remove(&mut self, slot: u32) -> T {
        let value = self.pages[slot as usize / PAGE_LEN][slot as usize % PAGE_LEN].take().expect("slot is occupied");
        self.free.push(slot);
        self.len -= 1;
        value
    }

    /// Calls `visit` with every occupied slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.pages.iter().enumerate().flat_map(|(page_index, page)| {
            page.iter().enumerate().filter_map(move |(offset, entry)| {
                entry.as_ref().map(|value| ((page_index * PAGE_LEN + offset) as u32, value))
            })
        })
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.pages.iter_mut().enumerate().flat_map(|(page_index, page)| {
            page.iter_mut().enumerate().filter_map(move |(offset, entry)| {
                entry.as_mut().map(|value| ((page_index * PAGE_LEN + offset) as u32, value))
            })
        })
    }

    /// Pages allocated.
    pub(crate) fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Calls `visit` with every occupied slot of one page.
    pub(crate) fn visit_page(&self, page: usize, mut visit: impl FnMut(&T)) {
        for value in self.pages[page].iter().flatten() {
            visit(value);
        }
    }

    /// Slots allocated, occupied or free.
    pub(crate) fn capacity(&self) -> usize {
        self.pages.len() * PAGE_LEN
    }

    /// Bytes of the pages and the free list.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.capacity() * size_of::<Option<T>>() + self.free.capacity() * size_of::<u32>()
    }
}

impl<T> std::ops::Index<u32> for Slots<T> {
    type Output = T;

    fn index(&self, slot: u32) -> &T {
        self.pages[slot as usize / PAGE_LEN][slot as usize % PAGE_LEN].as_ref().expect("slot is occupied")
    }
}

impl<T> std::ops::IndexMut<u32> for Slots<T> {
    fn index_mut(&mut self, slot: u32) -> &mut T {
        self.pages[slot as usize / PAGE_LEN][slot as usize % PAGE_LEN].as_mut().expect("slot is occupied")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_reuse_freed_slot_first() {
        let mut slots = Slots::default();
        let a = slots.insert("a");
        let b = slots.insert("b");
        assert_eq!((a, b), (0, 1));
        assert_eq!(slots.remove(a), "a");
        assert_eq!(slots.insert("c"), a);
        assert_eq!(slots[a], "c");
        assert_eq!(slots.iter().map(|(slot, value)| (slot, *value)).collect::<Vec<_>>(), vec![(0, "c"), (1, "b")]);
    }

    #[test]
    fn slots_grow_page_by_page() {
        let mut slots = Slots::default();
        for value in 0..(PAGE_LEN as u32 + 5) {
            assert_eq!(slots.insert(value), value);
        }
        assert_eq!(slots.capacity(), 2 * PAGE_LEN);
        assert_eq!(slots[PAGE_LEN as u32 + 4], PAGE_LEN as u32 + 4);
    }
}
