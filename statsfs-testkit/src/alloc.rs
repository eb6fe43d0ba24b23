//! A counting global allocator for the tests that measure memory or count allocations:
//! a test binary declares it (`#[global_allocator] static A: Counting = Counting;`) and
//! reads [`live`] (heap bytes in use, process-wide) or [`calls`] (allocations made by
//! this thread). The testkit's one unsafe module: it only forwards to the system
//! allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// The system allocator, counted.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static CALLS: Cell<usize> = const { Cell::new(0) };
}

/// Heap bytes in use in the whole process (as requested, not as the allocator rounds
/// them), when [`Counting`] is the global allocator.
pub fn live() -> isize {
    LIVE.load(Relaxed)
}

/// Allocations and reallocations this thread made so far, when [`Counting`] is the global
/// allocator.
pub fn calls() -> usize {
    CALLS.with(Cell::get)
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counting uses an
// atomic and a const thread-local, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        CALLS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        CALLS.with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
