//! Cells: the field types of a stats struct.
//!
//! Every cell is a lock-free atomic (or an array of them) that readers may read while
//! writers write. Each writing method comes in two flavours, and the name says which:
//!
//! * **shared** (`inc`, `add`, `record`, ...): any thread may write; a relaxed atomic
//!   read-modify-write (`lock xadd` on x86).
//! * **owner** (`inc_local`, `add_local`, `record_local`, ...): for a struct written by
//!   one thread only, such as a per-vCPU struct written by its vCPU thread. A relaxed load
//!   and a relaxed store, no read-modify-write: it costs what `x += 1` costs. If two
//!   threads use the owner path on the same cell at once, increments can be lost (never
//!   memory safety).
//!
//! [`ShardedCounter`] is for a stat that many threads hit at once: each thread writes its
//! own cache line and a read sums them.
//!
//! Plain atomics (`AtomicU64`, `AtomicI32`, `AtomicBool`, ...) are cells too; a struct
//! field of one of these types is a stat whose kind the attribute chooses.
//!
//! ```
//! use statsfs_core::cell::{Counter, Gauge, Peak, Flag, LogHistogram};
//! static EXITS: Counter = Counter::new();
//! EXITS.inc();            // shared path
//! EXITS.add_local(2);     // owner path
//! assert_eq!(EXITS.get(), 3);
//!
//! let pages: Gauge<i64> = Gauge::new();
//! pages.add(-5);
//! assert_eq!(pages.get(), -5);
//!
//! let depth: Peak = Peak::new();
//! depth.record(7);
//! depth.record(3);
//! assert_eq!(depth.get(), 7);
//!
//! let h: LogHistogram<8> = LogHistogram::new();
//! h.record(0);   // bucket 0: [0, 1)
//! h.record(5);   // bucket 3: [4, 8)
//! assert_eq!(h.buckets(), [1, 0, 0, 1, 0, 0, 0, 0]);
//! # let _ = Flag::new();
//! ```

use core::sync::atomic::{
    AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64,
    AtomicU8, Ordering::Relaxed,
};

use crate::desc::{Kind, Storage, ValueType};

mod sealed {
    pub trait Sealed {}
}

/// An integer type a [`Gauge`] or [`Peak`] can hold: `u8` to `u64`, `i8` to `i64`.
///
/// Sealed: the set of types is the set the binary layout and the readers know.
pub trait Int: sealed::Sealed + Copy + Ord + Default + 'static {
    /// The atomic that stores it.
    type Atomic: Send + Sync;
    /// How a reader sees the type.
    const TYPE: ValueType;
    /// An atomic holding 0, for `const` constructors.
    const ZERO: Self::Atomic;
    /// The value 1.
    const ONE: Self;
    /// Relaxed load.
    fn load(a: &Self::Atomic) -> Self;
    /// Relaxed store.
    fn store(a: &Self::Atomic, v: Self);
    /// Relaxed wrapping `fetch_add`.
    fn fetch_add(a: &Self::Atomic, v: Self);
    /// Relaxed wrapping `fetch_sub`.
    fn fetch_sub(a: &Self::Atomic, v: Self);
    /// Relaxed `fetch_max`.
    fn fetch_max(a: &Self::Atomic, v: Self);
    /// Wrapping addition.
    fn wrapping_add(self, v: Self) -> Self;
    /// Wrapping subtraction.
    fn wrapping_sub(self, v: Self) -> Self;
    /// Saturating addition.
    fn saturating_add(self, v: Self) -> Self;
    /// Saturating subtraction.
    fn saturating_sub(self, v: Self) -> Self;
    /// Relaxed saturating add (`up`) or subtract, as one atomic update.
    fn fetch_saturating(a: &Self::Atomic, v: Self, up: bool);
}

macro_rules! int {
    ($($t:ty => $atomic:ty, $vt:ident;)*) => {$(
        impl sealed::Sealed for $t {}
        impl Int for $t {
            type Atomic = $atomic;
            const TYPE: ValueType = ValueType::$vt;
            #[allow(clippy::declare_interior_mutable_const)]
            const ZERO: $atomic = <$atomic>::new(0);
            const ONE: $t = 1;
            #[inline(always)]
            fn load(a: &$atomic) -> Self { a.load(Relaxed) }
            #[inline(always)]
            fn store(a: &$atomic, v: Self) { a.store(v, Relaxed) }
            #[inline(always)]
            fn fetch_add(a: &$atomic, v: Self) { a.fetch_add(v, Relaxed); }
            #[inline(always)]
            fn fetch_sub(a: &$atomic, v: Self) { a.fetch_sub(v, Relaxed); }
            #[inline(always)]
            fn fetch_max(a: &$atomic, v: Self) { a.fetch_max(v, Relaxed); }
            #[inline(always)]
            fn wrapping_add(self, v: Self) -> Self { <$t>::wrapping_add(self, v) }
            #[inline(always)]
            fn wrapping_sub(self, v: Self) -> Self { <$t>::wrapping_sub(self, v) }
            #[inline(always)]
            fn saturating_add(self, v: Self) -> Self { <$t>::saturating_add(self, v) }
            #[inline(always)]
            fn saturating_sub(self, v: Self) -> Self { <$t>::saturating_sub(self, v) }
            #[inline(always)]
            fn fetch_saturating(a: &$atomic, v: Self, up: bool) {
                let _ = a.fetch_update(Relaxed, Relaxed, |x| {
                    Some(if up { x.saturating_add(v) } else { x.saturating_sub(v) })
                });
            }
        }
        // SAFETY: a plain atomic of the matching width and signedness at the field's offset.
        unsafe impl StatField for $atomic {
            #[allow(clippy::declare_interior_mutable_const)]
            const ZERO: Self = <$atomic>::new(0);
            const TYPE: ValueType = ValueType::$vt;
            const STORAGE: Storage = Storage::Atomic;
            const SIZE: u16 = 1;
            const KIND: Kind = Kind::Cumulative;
            const FIXED_KIND: bool = false;
        }
    )*};
}

int! {
    u8 => AtomicU8, U8;
    u16 => AtomicU16, U16;
    u32 => AtomicU32, U32;
    u64 => AtomicU64, U64;
    i8 => AtomicI8, I8;
    i16 => AtomicI16, I16;
    i32 => AtomicI32, I32;
    i64 => AtomicI64, I64;
}

/// A type that can be a field of a `#[derive(Stats)]` struct.
///
/// # Safety
///
/// `STORAGE`, `TYPE` and `SIZE` must describe the type's memory exactly: the raw reader
/// reads a value of this type at its field's offset by them. Implemented by statsfs for
/// its cells and the plain atomics; not meant to be implemented elsewhere.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a stat field",
    label = "not a statsfs cell",
    note = "stat fields are cells read while they are written: use Counter, Gauge<T>, Peak<T>, Flag, \
            ShardedCounter, LinearHistogram<N, W>, LogHistogram<N> or a std atomic (AtomicU64, AtomicI32, AtomicBool, ...)",
    note = "a nested stats struct takes #[stat(flatten)]; a field that is no stat takes #[stat(skip)]"
)]
pub unsafe trait StatField: Sized {
    /// The cell at zero, for `const` constructors (the derive's `new()`).
    const ZERO: Self;
    /// How a reader sees each word.
    const TYPE: ValueType;
    /// The memory layout.
    const STORAGE: Storage;
    /// Words read: 1, or the number of buckets.
    const SIZE: u16;
    /// The kind when the attribute names none.
    const KIND: Kind;
    /// Whether the type fixes its kind (a `Counter` is always cumulative); plain atomics
    /// let the attribute choose.
    const FIXED_KIND: bool;
    /// For a histogram that keeps the sum of its samples ([`WithSum`]), the byte offset
    /// of that sum (an `AtomicU64`) in the cell: the derive describes it as a value of
    /// its own, `<name>_sum`.
    const SUM_AT: Option<usize> = None;
    /// All of the above but `ZERO`, in one value: what the derive's glue reads.
    const INFO: CellInfo = CellInfo {
        ty: Self::TYPE,
        storage: Self::STORAGE,
        size: Self::SIZE,
        kind: Self::KIND,
        fixed_kind: Self::FIXED_KIND,
        sum_at: Self::SUM_AT,
    };
}

/// What a [`StatField`] says about its memory, as one value (`StatField::INFO`).
#[derive(Clone, Copy, Debug)]
pub struct CellInfo {
    /// `StatField::TYPE`.
    pub ty: ValueType,
    /// `StatField::STORAGE`.
    pub storage: Storage,
    /// `StatField::SIZE`.
    pub size: u16,
    /// `StatField::KIND`.
    pub kind: Kind,
    /// `StatField::FIXED_KIND`.
    pub fixed_kind: bool,
    /// `StatField::SUM_AT`.
    pub sum_at: Option<usize>,
}

// SAFETY: an AtomicBool at the field's offset.
unsafe impl StatField for AtomicBool {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Self = AtomicBool::new(false);
    const TYPE: ValueType = ValueType::Bool;
    const STORAGE: Storage = Storage::Atomic;
    const SIZE: u16 = 1;
    const KIND: Kind = Kind::Instant;
    const FIXED_KIND: bool = false;
}

/// A cumulative `u64` event count: only increases (or is cleared).
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at 0; usable in a `static`.
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    /// The current count.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Adds 1; any thread (shared path).
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// Adds `n`, wrapping; any thread (shared path).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// Adds 1; only from the cell's single writer (owner path: load + store).
    #[inline(always)]
    pub fn inc_local(&self) {
        self.add_local(1)
    }

    /// Adds `n`, wrapping; only from the cell's single writer (owner path: load + store).
    #[inline(always)]
    pub fn add_local(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
}

// SAFETY: repr(transparent) over AtomicU64.
unsafe impl StatField for Counter {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Self = Counter::new();
    const TYPE: ValueType = ValueType::U64;
    const STORAGE: Storage = Storage::Atomic;
    const SIZE: u16 = 1;
    const KIND: Kind = Kind::Cumulative;
    const FIXED_KIND: bool = true;
}

/// An instant value that goes up and down (pages in use, queue length). Read-only in the
/// file system: it measures the present.
///
/// `add` and `sub` **saturate** at the type's bounds, on both paths: an unsigned gauge
/// lowered below 0 reads 0, not 18446744073709551615 (`docs/MODEL.md#gauges`). A gauge
/// counts something that is there, which cannot be fewer than none; a wrapped value would
/// poison every sum and average above it, while a saturated one is off by what the
/// caller's bug is. Raise a gauge before what it counts becomes visible to the thread
/// that will lower it (and lower it after), and it never needs to saturate.
///
/// ```
/// use statsfs_core::cell::Gauge;
/// let queued: Gauge<u32> = Gauge::new();
/// queued.dec();
/// assert_eq!(queued.get(), 0);
/// let level: Gauge<i8> = Gauge::new();
/// level.set(120);
/// level.add(100);
/// assert_eq!(level.get(), i8::MAX);
/// ```
#[repr(transparent)]
pub struct Gauge<T: Int = u64>(T::Atomic);

impl<T: Int> Gauge<T> {
    /// A gauge at 0; usable in a `static`.
    pub const fn new() -> Self {
        Gauge(T::ZERO)
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> T {
        T::load(&self.0)
    }

    /// Sets the value (the same on both paths: a store).
    #[inline]
    pub fn set(&self, v: T) {
        T::store(&self.0, v)
    }

    /// Adds `v`, saturating; any thread.
    #[inline]
    pub fn add(&self, v: T) {
        T::fetch_saturating(&self.0, v, true)
    }

    /// Subtracts `v`, saturating; any thread.
    #[inline]
    pub fn sub(&self, v: T) {
        T::fetch_saturating(&self.0, v, false)
    }

    /// Adds `v`, saturating; only from the single writer.
    #[inline(always)]
    pub fn add_local(&self, v: T) {
        T::store(&self.0, T::load(&self.0).saturating_add(v))
    }

    /// Subtracts `v`, saturating; only from the single writer.
    #[inline(always)]
    pub fn sub_local(&self, v: T) {
        T::store(&self.0, T::load(&self.0).saturating_sub(v))
    }

    /// Adds 1; any thread.
    ///
    /// ```
    /// let queued = statsfs_core::cell::Gauge::<u32>::new();
    /// queued.inc();
    /// queued.inc();
    /// queued.dec();
    /// assert_eq!(queued.get(), 1);
    /// ```
    #[inline]
    pub fn inc(&self) {
        self.add(T::ONE)
    }

    /// Subtracts 1; any thread.
    #[inline]
    pub fn dec(&self) {
        self.sub(T::ONE)
    }

    /// Adds 1; only from the single writer.
    #[inline(always)]
    pub fn inc_local(&self) {
        self.add_local(T::ONE)
    }

    /// Subtracts 1; only from the single writer.
    #[inline(always)]
    pub fn dec_local(&self) {
        self.sub_local(T::ONE)
    }
}

impl<T: Int> Default for Gauge<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Int + core::fmt::Debug> core::fmt::Debug for Gauge<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Gauge").field(&self.get()).finish()
    }
}

// SAFETY: repr(transparent) over T::Atomic, whose width and signedness T::TYPE names.
unsafe impl<T: Int> StatField for Gauge<T> {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Self = Gauge::new();
    const TYPE: ValueType = T::TYPE;
    const STORAGE: Storage = Storage::Atomic;
    const SIZE: u16 = 1;
    const KIND: Kind = Kind::Instant;
    const FIXED_KIND: bool = true;
}

/// A high-water mark: keeps the largest value recorded (or is cleared).
#[repr(transparent)]
pub struct Peak<T: Int = u64>(T::Atomic);

impl<T: Int> Peak<T> {
    /// A peak at 0; usable in a `static`.
    pub const fn new() -> Self {
        Peak(T::ZERO)
    }

    /// The largest value recorded since the last clear.
    #[inline]
    pub fn get(&self) -> T {
        T::load(&self.0)
    }

    /// Records `v`; any thread (`fetch_max`).
    #[inline]
    pub fn record(&self, v: T) {
        T::fetch_max(&self.0, v)
    }

    /// Records `v`; only from the single writer (load, compare, store only when higher).
    #[inline(always)]
    pub fn record_local(&self, v: T) {
        if v > T::load(&self.0) {
            T::store(&self.0, v)
        }
    }
}

impl<T: Int> Default for Peak<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Int + core::fmt::Debug> core::fmt::Debug for Peak<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Peak").field(&self.get()).finish()
    }
}

// SAFETY: repr(transparent) over T::Atomic, whose width and signedness T::TYPE names.
unsafe impl<T: Int> StatField for Peak<T> {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Self = Peak::new();
    const TYPE: ValueType = T::TYPE;
    const STORAGE: Storage = Storage::Atomic;
    const SIZE: u16 = 1;
    const KIND: Kind = Kind::Peak;
    const FIXED_KIND: bool = true;
}

/// An instant truth value, read as 0 or 1.
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct Flag(AtomicBool);

impl Flag {
    /// A flag, false; usable in a `static`.
    pub const fn new() -> Self {
        Flag(AtomicBool::new(false))
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> bool {
        self.0.load(Relaxed)
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, v: bool) {
        self.0.store(v, Relaxed)
    }
}

// SAFETY: repr(transparent) over AtomicBool.
unsafe impl StatField for Flag {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Self = Flag::new();
    const TYPE: ValueType = ValueType::Bool;
    const STORAGE: Storage = Storage::Atomic;
    const SIZE: u16 = 1;
    const KIND: Kind = Kind::Instant;
    const FIXED_KIND: bool = true;
}

/// Whether a histogram keeps the sum of its samples: [`NoSum`] (the default) or
/// [`WithSum`]. Sealed.
pub trait SumSlot: sealed::Sealed + Send + Sync + 'static {
    /// What the histogram stores for the sum: `()` or an `AtomicU64`.
    type Cell: Send + Sync;
    /// The sum's cell at 0, for `const` constructors.
    const ZERO: Self::Cell;
    /// Whether there is a sum.
    const KEPT: bool;
    /// Adds `v` to the sum; any thread.
    fn add(c: &Self::Cell, v: u64);
    /// Adds `v` to the sum; only from the single writer.
    fn add_local(c: &Self::Cell, v: u64);
    /// The sum (0 without one).
    fn get(c: &Self::Cell) -> u64;
}

/// A histogram without a sum of its samples: a record is one bucket's increment.
#[derive(Debug)]
pub struct NoSum;

/// A histogram that also keeps the sum of its samples (wrapping at 2^64), so that a mean
/// can be computed (`rate(x_sum) / rate(x_count)` in PromQL): a record also adds to one
/// more word, next to the buckets. The sum is a value of its own, `<name>_sum`, in every
/// view (`docs/MODEL.md#histograms`).
///
/// ```
/// use statsfs_core::cell::{LogHistogram, WithSum};
/// let h: LogHistogram<8, WithSum> = LogHistogram::new();
/// h.record(5);
/// h.record(100);
/// assert_eq!(h.sum(), 105);
/// assert_eq!(h.count(), 2);
/// ```
#[derive(Debug)]
pub struct WithSum;

impl sealed::Sealed for NoSum {}
impl sealed::Sealed for WithSum {}

impl SumSlot for NoSum {
    type Cell = ();
    const ZERO: () = ();
    const KEPT: bool = false;
    #[inline(always)]
    fn add(_: &(), _: u64) {}
    #[inline(always)]
    fn add_local(_: &(), _: u64) {}
    fn get(_: &()) -> u64 {
        0
    }
}

impl SumSlot for WithSum {
    type Cell = AtomicU64;
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: AtomicU64 = AtomicU64::new(0);
    const KEPT: bool = true;
    #[inline(always)]
    fn add(c: &AtomicU64, v: u64) {
        c.fetch_add(v, Relaxed);
    }
    #[inline(always)]
    fn add_local(c: &AtomicU64, v: u64) {
        c.store(c.load(Relaxed).wrapping_add(v), Relaxed)
    }
    fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}

/// `N` buckets of width `W`: bucket i counts samples in `[i*W, (i+1)*W)`, the last one
/// everything above. `S` is [`WithSum`] to keep the sum of the samples too.
///
/// ```
/// use statsfs_core::cell::LinearHistogram;
/// let h: LinearHistogram<4, 10> = LinearHistogram::new();
/// for v in [0, 9, 10, 35, 1000] { h.record(v) }
/// assert_eq!(h.buckets(), [2, 1, 0, 2]);
/// ```
#[repr(C)]
pub struct LinearHistogram<const N: usize, const W: u64, S: SumSlot = NoSum> {
    buckets: [AtomicU64; N],
    sum: S::Cell,
}

/// `N` buckets: bucket 0 counts samples in `[0, 1)`, bucket i counts `[2^(i-1), 2^i)`,
/// the last one everything above. `S` is [`WithSum`] to keep the sum of the samples too.
///
/// ```
/// use statsfs_core::cell::LogHistogram;
/// let h: LogHistogram<4> = LogHistogram::new();
/// for v in [0, 1, 2, 3, 4, 1 << 40] { h.record(v) }
/// assert_eq!(h.buckets(), [1, 1, 2, 2]);
/// ```
#[repr(C)]
pub struct LogHistogram<const N: usize, S: SumSlot = NoSum> {
    buckets: [AtomicU64; N],
    sum: S::Cell,
}

macro_rules! histogram {
    ($name:ident [$($g:tt)*] [$($p:tt)*] $kind:expr) => {
        impl<$($g)*, S: SumSlot> $name<$($p)*, S> {
            const CHECK: () = assert!(N > 0 && N <= u16::MAX as usize, "a histogram needs 1 to 65535 buckets");

            /// An empty histogram; usable in a `static`.
            pub const fn new() -> Self {
                #[allow(clippy::let_unit_value)]
                let () = Self::CHECK;
                #[allow(clippy::declare_interior_mutable_const)]
                const Z: AtomicU64 = AtomicU64::new(0);
                $name { buckets: [Z; N], sum: S::ZERO }
            }

            /// The bucket a sample falls in.
            #[inline(always)]
            pub fn bucket_index(v: u64) -> usize {
                <Self as StatField>::KIND.bucket_of(v, N)
            }

            /// Counts one sample; any thread.
            #[inline]
            pub fn record(&self, v: u64) {
                self.buckets[Self::bucket_index(v)].fetch_add(1, Relaxed);
                S::add(&self.sum, v);
            }

            /// Counts one sample; only from the single writer.
            #[inline(always)]
            pub fn record_local(&self, v: u64) {
                let b = &self.buckets[Self::bucket_index(v)];
                b.store(b.load(Relaxed).wrapping_add(1), Relaxed);
                S::add_local(&self.sum, v);
            }

            /// Adds every sample of `other` (its buckets and its sum) to this histogram,
            /// in O(buckets); any thread. A histogram that stops changing (a closed
            /// connection's) merges into a total without replaying its samples.
            ///
            /// ```
            /// use statsfs_core::cell::{LogHistogram, WithSum};
            /// let total: LogHistogram<4, WithSum> = LogHistogram::new();
            /// let one: LogHistogram<4, WithSum> = LogHistogram::new();
            /// one.record(3);
            /// one.record(3);
            /// total.merge(&one);
            /// assert_eq!((total.buckets(), total.sum()), ([0, 0, 2, 0], 6));
            /// ```
            pub fn merge(&self, other: &Self) {
                for (b, o) in self.buckets.iter().zip(&other.buckets) {
                    let n = o.load(Relaxed);
                    if n != 0 {
                        b.fetch_add(n, Relaxed);
                    }
                }
                S::add(&self.sum, S::get(&other.sum));
            }

            /// [`merge`](Self::merge), only from the single writer of `self`.
            pub fn merge_local(&self, other: &Self) {
                for (b, o) in self.buckets.iter().zip(&other.buckets) {
                    b.store(b.load(Relaxed).wrapping_add(o.load(Relaxed)), Relaxed);
                }
                S::add_local(&self.sum, S::get(&other.sum));
            }

            /// The bucket counts.
            pub fn buckets(&self) -> [u64; N] {
                core::array::from_fn(|i| self.buckets[i].load(Relaxed))
            }

            /// How many samples: the buckets' sum.
            pub fn count(&self) -> u64 {
                self.buckets.iter().fold(0u64, |n, b| n.wrapping_add(b.load(Relaxed)))
            }

            /// The sum of the samples, wrapping at 2^64; 0 without [`WithSum`].
            pub fn sum(&self) -> u64 {
                S::get(&self.sum)
            }
        }

        impl<$($g)*, S: SumSlot> Default for $name<$($p)*, S> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<$($g)*, S: SumSlot> core::fmt::Debug for $name<$($p)*, S> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut d = f.debug_struct(stringify!($name));
                d.field("buckets", &self.buckets());
                if S::KEPT {
                    d.field("sum", &self.sum());
                }
                d.finish()
            }
        }

        // SAFETY: repr(C) with `[AtomicU64; N]` first, so the buckets are at the field's
        // offset; SIZE is N. The sum, when kept, is the AtomicU64 at SUM_AT.
        unsafe impl<$($g)*, S: SumSlot> StatField for $name<$($p)*, S> {
            #[allow(clippy::declare_interior_mutable_const)]
            const ZERO: Self = Self::new();
            const TYPE: ValueType = ValueType::U64;
            const STORAGE: Storage = Storage::Buckets;
            const SIZE: u16 = {
                #[allow(clippy::let_unit_value)]
                let () = Self::CHECK;
                N as u16
            };
            const KIND: Kind = $kind;
            const FIXED_KIND: bool = true;
            const SUM_AT: Option<usize> = if S::KEPT {
                Some(core::mem::offset_of!(Self, sum))
            } else {
                None
            };
        }
    };
}

histogram!(LinearHistogram [const N: usize, const W: u64] [N, W]
    Kind::LinearHistogram { bucket_size: {
        assert!(W > 0 && W <= u32::MAX as u64, "a linear histogram's bucket width must be 1 to u32::MAX");
        W as u32
    } });
histogram!(LogHistogram [const N: usize] [N] Kind::LogHistogram);

/// How many shards a [`ShardedCounter`] has.
pub const SHARDS: usize = 8;

#[repr(align(64))]
#[derive(Debug, Default)]
struct Shard(AtomicU64);

/// A cumulative counter that many threads increment at once: each thread adds to its own
/// cache line and a read sums them. Costs `SHARDS * 64` bytes; use it for hot global
/// stats, not per object.
///
/// The first `SHARDS - 1` shards are *owned*: a thread claims one the first time it
/// increments any `ShardedCounter` (the same index in every counter) and gives it back
/// when it exits; it writes its shard with the owner path (a load and a store, no
/// read-modify-write), since no other thread writes there while it owns it. Threads that
/// find every shard owned share the last shard, with `fetch_add`. The read is exact once
/// the writers are done; a [`clear`](crate::Source::clear) that races an increment may be
/// undone by it (as with [`Counter::inc_local`]).
///
/// ```
/// use statsfs_core::cell::ShardedCounter;
/// static REQUESTS: ShardedCounter = ShardedCounter::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| for _ in 0..1000 { REQUESTS.inc() });
///     }
/// });
/// assert_eq!(REQUESTS.get(), 4000);
/// ```
#[derive(Debug, Default)]
pub struct ShardedCounter([Shard; SHARDS]);

/// The shard threads share when every other one is owned.
const SHARED_SHARD: u8 = SHARDS as u8 - 1;
/// No shard yet.
const UNCLAIMED: u8 = u8::MAX;

/// Which shards are owned by a live thread (bit i: shard i).
static OWNED: AtomicU64 = AtomicU64::new(0);

std::thread_local! {
    /// This thread's shard; a `const` thread-local without destructor, so reading it is
    /// one load.
    static SHARD: core::cell::Cell<u8> = const { core::cell::Cell::new(UNCLAIMED) };
    /// Gives the shard back when the thread exits.
    static RELEASE: Release = const { Release };
}

struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        let _ = SHARD.try_with(|s| {
            let i = s.get();
            // Later increments on this exiting thread (from other thread-locals'
            // destructors) go to the shared shard.
            s.set(SHARED_SHARD);
            if i < SHARED_SHARD {
                OWNED.fetch_and(!(1 << i), core::sync::atomic::Ordering::Release);
            }
        });
    }
}

#[cold]
#[inline(never)]
fn claim_shard() -> u8 {
    let mut owned = OWNED.load(Relaxed);
    let shard = loop {
        let free = (!owned).trailing_zeros() as u8;
        if free >= SHARED_SHARD {
            break SHARED_SHARD;
        }
        match OWNED.compare_exchange_weak(
            owned,
            owned | 1 << free,
            core::sync::atomic::Ordering::Acquire,
            Relaxed,
        ) {
            Ok(_) => break free,
            Err(now) => owned = now,
        }
    };
    SHARD.with(|s| s.set(shard));
    if shard < SHARED_SHARD && RELEASE.try_with(|_| ()).is_err() {
        // The thread is exiting and cannot register its release: do not keep the shard.
        OWNED.fetch_and(!(1 << shard), core::sync::atomic::Ordering::Release);
        SHARD.with(|s| s.set(SHARED_SHARD));
        return SHARED_SHARD;
    }
    shard
}

impl ShardedCounter {
    /// A counter at 0; usable in a `static`.
    pub const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const Z: Shard = Shard(AtomicU64::new(0));
        ShardedCounter([Z; SHARDS])
    }

    /// Adds 1 on this thread's shard.
    #[inline]
    pub fn inc(&self) {
        self.add(1)
    }

    /// Adds `n`, wrapping, on this thread's shard: a load and a store on a shard this
    /// thread owns, a `fetch_add` on the shared shard otherwise.
    #[inline]
    pub fn add(&self, n: u64) {
        let mut i = SHARD.with(|s| s.get());
        if i == UNCLAIMED {
            i = claim_shard();
        }
        let cell = &self.0[i as usize].0;
        if i < SHARED_SHARD {
            cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
        } else {
            cell.fetch_add(n, Relaxed);
        }
    }

    /// The sum of all shards.
    pub fn get(&self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |a, s| a.wrapping_add(s.0.load(Relaxed)))
    }

    /// Sets every shard to 0.
    pub(crate) fn clear(&self) {
        for s in &self.0 {
            s.0.store(0, Relaxed);
        }
    }
}

// SAFETY: STORAGE Sharded makes the raw reader view the field as a ShardedCounter.
unsafe impl StatField for ShardedCounter {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Self = ShardedCounter::new();
    const TYPE: ValueType = ValueType::U64;
    const STORAGE: Storage = Storage::Sharded;
    const SIZE: u16 = 1;
    const KIND: Kind = Kind::Cumulative;
    const FIXED_KIND: bool = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_and_shared_paths_agree() {
        let c = Counter::new();
        c.inc();
        c.add(10);
        c.inc_local();
        c.add_local(u64::MAX); // wraps
        assert_eq!(c.get(), 11);
        let g: Gauge<i8> = Gauge::new();
        g.sub(3);
        g.add_local(1);
        g.sub_local(1);
        assert_eq!(g.get(), -3);
        g.set(i8::MAX);
        g.add(1);
        assert_eq!(g.get(), i8::MAX, "gauges saturate");
        g.sub_local(i8::MAX);
        g.sub(i8::MAX);
        g.sub(i8::MAX);
        assert_eq!(g.get(), i8::MIN);
        let u: Gauge<u64> = Gauge::new();
        u.sub(1);
        u.dec_local();
        assert_eq!(u.get(), 0, "an unsigned gauge below zero reads 0");
        let p: Peak<i32> = Peak::new();
        p.record_local(-5);
        assert_eq!(p.get(), 0);
        p.record_local(9);
        p.record(4);
        assert_eq!(p.get(), 9);
    }

    #[test]
    fn histogram_buckets_follow_spec() {
        let h: LogHistogram<6> = LogHistogram::new();
        for (v, want) in [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (15, 4),
            (16, 5),
            (u64::MAX, 5),
        ] {
            assert_eq!(LogHistogram::<6>::bucket_index(v), want, "sample {v}");
            h.record_local(v);
        }
        assert_eq!(h.buckets(), [1, 1, 2, 1, 1, 2]);
        let l: LinearHistogram<3, 5> = LinearHistogram::new();
        for v in [0, 4, 5, 9, 10, 11, u64::MAX] {
            l.record(v);
        }
        assert_eq!(l.buckets(), [2, 2, 3]);
    }

    #[test]
    fn sharded_counter_is_exact_under_threads() {
        let c = ShardedCounter::new();
        let n: u64 = if cfg!(miri) { 20 } else { 10_000 };
        std::thread::scope(|s| {
            for _ in 0..(SHARDS + 3) {
                s.spawn(|| {
                    for _ in 0..n {
                        c.inc()
                    }
                });
            }
        });
        assert_eq!(c.get(), n * (SHARDS as u64 + 3));
        c.clear();
        assert_eq!(c.get(), 0);
        // Threads that exit give their shards back; the next ones own them and add to
        // what is there, never losing a count.
        for round in 1..=4u64 {
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        for _ in 0..10_000 {
                            c.inc()
                        }
                    });
                }
            });
            assert_eq!(c.get(), round * 30_000);
        }
    }
}
