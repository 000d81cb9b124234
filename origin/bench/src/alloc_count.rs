//! A counting global allocator for allocation benchmarks.
//!
//! [`Counting`] wraps the system allocator and counts allocations (`alloc`,
//! `alloc_zeroed`, `realloc`) and their bytes, but only on threads that
//! opted in with [`count_this_thread`]. So a benchmark can run the origin
//! on a runtime whose threads count and its load generator on threads that
//! do not, in one process. A binary installs it with
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: livestack_bench::alloc_count::Counting = livestack_bench::alloc_count::Counting;
//! ```
//!
//! and reads [`snapshot`] before and after what it measures. Counting costs
//! two relaxed atomic adds and a thread-local read per allocation.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread's allocations count. Const-initialised and
    /// without a destructor, so reading it never allocates.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Makes the calling thread's allocations count from now on (call it from
/// a runtime's `on_thread_start`).
pub fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

/// Allocations and bytes counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Allocations (including reallocations).
    pub allocs: u64,
    /// Bytes requested by them.
    pub bytes: u64,
}

impl std::ops::Sub for Snapshot {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self {
            allocs: self.allocs - rhs.allocs,
            bytes: self.bytes - rhs.bytes,
        }
    }
}

/// The counts so far (all counting threads together).
pub fn snapshot() -> Snapshot {
    Snapshot {
        allocs: ALLOCS.load(Relaxed),
        bytes: BYTES.load(Relaxed),
    }
}

fn record(size: usize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(size as u64, Relaxed);
    }
}

/// The system allocator, counting on opted-in threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

#[expect(
    unsafe_code,
    reason = "a global allocator implements the unsafe GlobalAlloc trait; every method forwards to System with the caller's arguments unchanged"
)]
// SAFETY: each method forwards to `System` with the arguments it received,
// so `System`'s guarantees hold; counting touches no allocated memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (every path above
        // forwards to it) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: `ptr` came from `System` with `layout`; the caller
        // upholds `realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
