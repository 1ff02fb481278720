//! An append-only vector whose elements never move, so readers on other threads
//! hold plain references while a writer appends.
//!
//! Elements live in chunks that double in size (64, 128, 256, ... elements), allocated on
//! demand and freed only when the vector drops, so a small vector costs little. Appends
//! are serialized by the caller (the catalog's writer lock); reads are lock-free: an
//! index below `len` always refers to a fully built element.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Elements in the first chunk, as a power of two; chunk `i` holds `2^(FIRST_CHUNK_SHIFT + i)`.
const FIRST_CHUNK_SHIFT: u32 = 6;

/// Most chunks: together they hold just under 2^32 elements.
const CHUNKS_MAX: usize = (32 - FIRST_CHUNK_SHIFT) as usize;

/// Maps an element index to its chunk and the offset inside that chunk.
#[inline]
fn locate(index: usize) -> (usize, usize) {
    let shifted = index + (1 << FIRST_CHUNK_SHIFT);
    let bit = usize::BITS - 1 - shifted.leading_zeros();
    let chunk = (bit - FIRST_CHUNK_SHIFT) as usize;
    (chunk, shifted - (1 << bit))
}

/// Elements in chunk `chunk`.
fn chunk_len(chunk: usize) -> usize {
    1 << (FIRST_CHUNK_SHIFT as usize + chunk)
}

/// An element type of a `ChunkedVec`.
///
/// # Safety
/// `ALL_ZEROS_IS_DEFAULT` may be true only if a value whose bytes are all zero is a
/// valid value equal to `T::default()`. Chunks of such types are allocated zeroed and
/// not written, so the operating system commits their pages only when they are used.
pub(crate) unsafe trait ChunkElement: Default {
    /// Whether all-zero bytes are the default value.
    const ALL_ZEROS_IS_DEFAULT: bool = false;
}

/// Bytes of a memory page, the unit in which untouched zeroed memory is not resident.
const PAGE_BYTES: usize = 4096;

/// Append-only vector with stable element addresses and lock-free reads.
pub(crate) struct ChunkedVec<T> {
    chunks: Box<[AtomicPtr<T>]>,
    len: AtomicUsize,
}

// SAFETY: the vector hands out shared references to `T` across threads, and appends
// move `T` values in from the writer's thread.
unsafe impl<T: Send + Sync> Sync for ChunkedVec<T> {}
// SAFETY: as above; ownership of the chunks moves with the vector.
unsafe impl<T: Send> Send for ChunkedVec<T> {}

impl<T: ChunkElement> ChunkedVec<T> {
    pub(crate) fn new() -> Self {
        let chunks = (0..CHUNKS_MAX).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect();
        ChunkedVec { chunks, len: AtomicUsize::new(0) }
    }

    /// Number of published elements.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Returns the element at `index`, or `None` past the published length.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        if index >= self.len() {
            return None;
        }
        // SAFETY: index < len, so its chunk was allocated and the element built before
        // `len` was published with Release ordering.
        Some(unsafe { self.get_unchecked(index) })
    }

    /// Returns the element at `index` without checking the length.
    ///
    /// # Safety
    /// `index` must be below a length this thread has observed.
    #[inline]
    pub(crate) unsafe fn get_unchecked(&self, index: usize) -> &T {
        let (chunk_index, offset) = locate(index);
        let chunk = self.chunks[chunk_index].load(Ordering::Acquire);
        debug_assert!(!chunk.is_null());
        // SAFETY: the caller guarantees the chunk exists; the offset is within it.
        unsafe { &*chunk.add(offset) }
    }

    /// Returns the elements at `index` of two vectors at once, locating the index
    /// once: every `ChunkedVec` splits indexes into chunks the same way.
    ///
    /// # Safety
    /// `index` must be below a length this thread has observed in both vectors.
    #[inline]
    pub(crate) unsafe fn get_pair_unchecked<'a, U>(&'a self, other: &'a ChunkedVec<U>, index: usize) -> (&'a T, &'a U) {
        let (chunk_index, offset) = locate(index);
        let chunk = self.chunks[chunk_index].load(Ordering::Acquire);
        let other_chunk = other.chunks[chunk_index].load(Ordering::Acquire);
        // SAFETY: the caller guarantees both chunks exist; the offset is within them.
        unsafe { (&*chunk.add(offset), &*other_chunk.add(offset)) }
    }

    /// Appends an element built by `init` and returns its index.
    ///
    /// The caller serializes appends (one writer at a time). Returns `None` when the
    /// vector is full.
    pub(crate) fn push_with(&self, init: impl FnOnce(&T)) -> Option<usize> {
        let index = self.len.load(Ordering::Relaxed);
        let (chunk_index, offset) = locate(index);
        if chunk_index >= CHUNKS_MAX {
            return None;
        }
        let mut chunk = self.chunks[chunk_index].load(Ordering::Acquire);
        if chunk.is_null() {
            chunk = allocate_chunk::<T>(chunk_len(chunk_index));
            self.chunks[chunk_index].store(chunk, Ordering::Release);
        }

        // SAFETY: the chunk exists and only this writer touches the unpublished slot.
        let element = unsafe { &*chunk.add(offset) };
        init(element);
        self.len.store(index + 1, Ordering::Release);
        Some(index)
    }

    /// Bytes of memory the chunks and the chunk table occupy. For zeroed chunks this
    /// counts the pages up to the last element, because the pages past it are never
    /// touched and so not resident.
    pub(crate) fn allocated_bytes(&self) -> usize {
        let len = self.len();
        let mut bytes = CHUNKS_MAX * size_of::<AtomicPtr<T>>();
        let mut chunk_start = 0;
        for chunk in 0..CHUNKS_MAX {
            if self.chunks[chunk].load(Ordering::Relaxed).is_null() {
                break;
            }
            let chunk_bytes = chunk_len(chunk) * size_of::<T>();
            bytes += if T::ALL_ZEROS_IS_DEFAULT {
                let used = len.saturating_sub(chunk_start).min(chunk_len(chunk)) * size_of::<T>();
                used.next_multiple_of(PAGE_BYTES).min(chunk_bytes)
            } else {
                chunk_bytes
            };
            chunk_start += chunk_len(chunk);
        }
        bytes
    }
}

/// Allocates a chunk of `len` default elements, zeroed without writing when zeros are
/// the default.
fn allocate_chunk<T: ChunkElement>(len: usize) -> *mut T {
    if T::ALL_ZEROS_IS_DEFAULT && size_of::<T>() > 0 {
        let layout = std::alloc::Layout::array::<T>(len).expect("chunk size fits the address space");
        // SAFETY: the layout has a non-zero size. ChunkElement's contract makes zeroed
        // memory a slice of default values, which Drop frees as a `Box<[T]>` of this
        // layout.
        let chunk = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
        if chunk.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        return chunk;
    }
    let elements: Box<[T]> = (0..len).map(|_| T::default()).collect();
    Box::into_raw(elements).cast::<T>()
}

impl<T> Drop for ChunkedVec<T> {
    fn drop(&mut self) {
        for (chunk_index, slot) in self.chunks.iter().enumerate() {
            let chunk = slot.load(Ordering::Acquire);
            if chunk.is_null() {
                continue;
            }
            let slice = std::ptr::slice_from_raw_parts_mut(chunk, chunk_len(chunk_index));
            // SAFETY: the chunk was made by `Box::into_raw` of a slice of this length.
            drop(unsafe { Box::from_raw(slice) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn locate_maps_chunk_boundaries() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(63), (0, 63));
        assert_eq!(locate(64), (1, 0));
        assert_eq!(locate(191), (1, 127));
        assert_eq!(locate(192), (2, 0));
        assert_eq!(locate(u32::MAX as usize - 64), (CHUNKS_MAX - 1, chunk_len(CHUNKS_MAX - 1) - 1));
    }

    #[test]
    fn chunked_vec_push_and_get_across_chunks() {
        let vec: ChunkedVec<AtomicU64> = ChunkedVec::new();
        let count = 5_000;
        for i in 0..count {
            let index = vec.push_with(|slot| slot.store(i as u64, Ordering::Relaxed));
            assert_eq!(index, Some(i));
        }
        assert_eq!(vec.len(), count);
        assert_eq!(vec.get(4_097).map(|v| v.load(Ordering::Relaxed)), Some(4_097));
        assert!(vec.get(count).is_none());
    }
}
