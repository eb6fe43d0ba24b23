//! The tree's one unsafe module: reading and clearing a described value inside a live
//! instance, and the invariant that makes it sound.
//!
//! # The contract, all in this file
//!
//! An [`Instance`] is the address of a live `T: Stats`, what keeps it alive, and
//! `T::SCHEMA`. It is made only by [`Instance::new`] and [`Instance::from_static`], which
//! take the schema from the same `T` as the address, and it reads or clears a value only
//! by the index of a descriptor *of that schema*. So nothing outside this file can pair
//! an address with the wrong descriptors, and every method here is safe to call.
//!
//! What the unsafe code relies on, and where it is established:
//!
//! * [`Stats`](crate::Stats) is an `unsafe trait`: whoever implements it promises that
//!   each descriptor's offset, storage, type and size describe a field of `T` that is
//!   the named cell (see the trait's safety section). The derive keeps that promise.
//! * [`check_layout`] verifies what can be verified, at compile time, for every `T` an
//!   instance is made of: each descriptor lies inside `T`, is aligned for its cell, and
//!   uses no runtime-only storage.
//! * [`Instances`] (an aggregate's flattened members) holds instances of one schema only:
//!   [`Instances::push`] refuses any other, so its folds read each member with its own
//!   schema's descriptors.

use core::any::Any;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::{
    AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64,
    AtomicU8, Ordering::Relaxed,
};
use std::sync::Arc;

use crate::cell::ShardedCounter;
use crate::desc::{Descriptor, Storage, ValueType};
use crate::schema::Schema;
use crate::Stats;

/// A stats struct that lives somewhere its handle does not own by value: in a shared
/// memory region (the `statsfs-region` crate), an arena. A source keeps the handle (in an
/// `Arc`) for as long as it reads the struct ([`ValueGroup::placed`]).
///
/// # Safety
///
/// For as long as a value of the implementing type lives, [`stats`](Placed::stats)
/// returns a reference to the same `Self::Stats`, at the same address, and that struct
/// stays valid for shared access from any thread (it is not moved, freed or reused)
/// until the value is dropped. The tree reads the struct through the address it got from
/// the first call, while it holds the handle.
///
/// [`ValueGroup::placed`]: crate::ValueGroup::placed
pub unsafe trait Placed: Send + Sync + 'static {
    /// The stats struct.
    type Stats: Stats;
    /// The struct, always at the same address.
    fn stats(&self) -> &Self::Stats;
}

/// What keeps an instance alive: an `Arc<T>` (whose data pointer is the `T`'s address),
/// nothing for a `&'static T`, or a [`Placed`] handle and the address it gave.
#[derive(Clone)]
enum Keep {
    Shared(Arc<dyn Any + Send + Sync>),
    Static(NonNull<u8>),
    Placed {
        base: NonNull<u8>,
        handle: Arc<dyn Any + Send + Sync>,
    },
}

impl Keep {
    fn base(&self) -> NonNull<u8> {
        match self {
            // An `Arc<dyn Any>`'s data pointer is the address of the `T` it was made from.
            Keep::Shared(a) => NonNull::from(&**a).cast::<u8>(),
            Keep::Static(p) => *p,
            // Stable while `handle` lives: the `Placed` contract.
            Keep::Placed { base, .. } => *base,
        }
    }

    fn keep_alive(&self) -> KeepAlive {
        match self {
            Keep::Shared(k) | Keep::Placed { handle: k, .. } => Some(k.clone()),
            Keep::Static(_) => None,
        }
    }
}

/// A live stats struct, what keeps it alive, and its schema.
#[derive(Clone)]
pub(super) struct Instance {
    schema: &'static Schema,
    keep: Keep,
}

// SAFETY: the instance is a `T: Stats`, which is `Send + Sync`, and it is only ever
// accessed through shared references to its atomic cells.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

/// Checks, at compile time for each `T` an instance is made of, what the unsafe reads
/// rely on and the type system cannot see: `T::SCHEMA` is a static schema (built with
/// [`Schema::new_static`]), and each of its descriptors lies inside `T`, is aligned for
/// the cell it names, and is not runtime-only ([`Storage::Block`]).
pub(super) const fn check_layout<T: Stats>() {
    let Some(ds) = T::SCHEMA.static_descriptors() else {
        panic!("Stats::SCHEMA must be a static built with Schema::new_static");
    };
    check_inside::<T>(ds, 0);
    // Every component's descriptors, moved to the component, lie inside `T` too.
    let cs = T::SCHEMA.components();
    let mut c = 0;
    while c < cs.len() {
        let Some(ds) = cs[c].schema.static_descriptors() else {
            panic!("a component's schema must be a static built with Schema::new_static");
        };
        check_inside::<T>(ds, cs[c].offset);
        c += 1;
    }
}

/// That each of `ds`, moved by `base` bytes, lies inside `T`, is aligned for the cell it
/// names, and is not runtime-only ([`check_layout`]).
const fn check_inside<T>(ds: &[Descriptor], base: usize) {
    let mut i = 0;
    while i < ds.len() {
        let d = &ds[i];
        let (size, align) = match d.storage {
            Storage::Atomic => (d.ty.width(), d.ty.width()),
            Storage::Buckets => (8 * d.size as usize, align_of::<AtomicU64>()),
            Storage::Sharded => (size_of::<ShardedCounter>(), align_of::<ShardedCounter>()),
            Storage::Block => panic!("a derived schema cannot hold runtime (block) values"),
        };
        let at = base + d.offset;
        assert!(
            at + size <= size_of::<T>(),
            "a stat descriptor points past the end of its struct"
        );
        assert!(
            at % align == 0,
            "a stat descriptor is not aligned for its cell"
        );
        i += 1;
    }
}

impl Instance {
    /// An instance kept alive by `arc`.
    pub(super) fn new<T: Stats>(arc: Arc<T>) -> Self {
        const { check_layout::<T>() };
        Instance {
            schema: T::SCHEMA,
            keep: Keep::Shared(arc),
        }
    }

    /// An instance placed where `handle` says, kept alive by `handle`.
    pub(super) fn placed<P: Placed>(handle: Arc<P>) -> Self {
        const { check_layout::<P::Stats>() };
        let base = NonNull::from(handle.stats()).cast::<u8>();
        Instance {
            schema: <P::Stats as Stats>::SCHEMA,
            keep: Keep::Placed { base, handle },
        }
    }

    /// A static instance.
    pub(super) fn from_static<T: Stats>(r: &'static T) -> Self {
        const { check_layout::<T>() };
        Instance {
            schema: T::SCHEMA,
            keep: Keep::Static(NonNull::from(r).cast::<u8>()),
        }
    }

    /// The part of this instance that component `k` of its schema describes
    /// ([`Schema::components`]), as an instance of the component's schema, kept alive by
    /// what keeps this one.
    pub(super) fn component(&self, k: usize) -> Option<Self> {
        let c = self.schema.components().get(k)?;
        // SAFETY: the component's struct lies at `base + c.offset` inside the live `T`:
        // `Stats::COMPONENTS` is part of the `unsafe` Stats contract (the derive builds
        // it from `offset_of!` of the flattened fields), and `check_layout::<T>` checked
        // that every descriptor of the component, moved there, is inside `T` and aligned.
        // The new instance pairs that address with the component's own schema, so its
        // reads keep this file's invariant.
        let base = unsafe { NonNull::new_unchecked(self.keep.base().as_ptr().add(c.offset)) };
        let keep = match &self.keep {
            Keep::Static(_) => Keep::Static(base),
            Keep::Shared(h) | Keep::Placed { handle: h, .. } => Keep::Placed {
                base,
                handle: h.clone(),
            },
        };
        Some(Instance {
            schema: c.schema,
            keep,
        })
    }

    /// The schema the instance was made with.
    pub(super) fn schema(&self) -> &'static Schema {
        self.schema
    }

    /// The address, to tell instances apart.
    pub(super) fn addr(&self) -> usize {
        self.keep.base().as_ptr() as usize
    }

    /// Reads descriptor `index` of the schema into `out[..size]` (widened to u64; signed
    /// values sign-extended). Panics if `index` is out of range or `out` too short.
    #[inline]
    pub(super) fn read(&self, index: usize, out: &mut [u64]) {
        let d = &self.schema.descriptors()[index];
        let out = &mut out[..d.size as usize];
        // SAFETY: `d` is a descriptor of the schema of the `T` at `base` (the
        // constructors pair them), `T` is alive (`self.keep`), and `check_layout::<T>`
        // ruled out block storage.
        unsafe { read_at(self.keep.base(), d, out) }
    }

    /// Sets the value of descriptor `index` to 0.
    pub(super) fn clear(&self, index: usize) {
        let d = &self.schema.descriptors()[index];
        // SAFETY: as in `read`: the cell `d` describes lives at `base + d.offset`.
        let p = unsafe { self.keep.base().as_ptr().add(d.offset) };
        match d.storage {
            // SAFETY: an atomic of `d.ty` lives at `p`.
            Storage::Atomic => unsafe { store_zero(p, d.ty) },
            Storage::Buckets => {
                // SAFETY: `d.size` consecutive AtomicU64 live at `p`.
                let buckets =
                    unsafe { core::slice::from_raw_parts(p.cast::<AtomicU64>(), d.size as usize) };
                for b in buckets {
                    b.store(0, Relaxed);
                }
                // A histogram's sum goes with its buckets: the descriptor right after.
                let next = self.schema.descriptors().get(index + 1);
                if next.is_some_and(|s| s.role == crate::desc::Role::HistogramSum) {
                    self.clear(index + 1);
                }
            }
            // SAFETY: a ShardedCounter lives at `p`.
            Storage::Sharded => unsafe { &*p.cast::<ShardedCounter>() }.clear(),
            Storage::Block => unreachable!("check_layout rules out block storage"),
        }
    }
}

/// Reads `d` of the instance at `base` into `out[..d.size]`.
///
/// # Safety
///
/// `base` is the address of a live `T` (kept alive by the caller), `d` is a descriptor of
/// `T`'s schema, and its storage is not [`Storage::Block`].
#[inline]
unsafe fn read_at(base: NonNull<u8>, d: &Descriptor, out: &mut [u64]) {
    // SAFETY: by the contract, `base + d.offset` is in bounds of the live `T` and holds
    // the cell `d` describes, suitably aligned because it is a field of `T`.
    let p = unsafe { base.as_ptr().add(d.offset) };
    match d.storage {
        Storage::Atomic => {
            // SAFETY: an atomic of `d.ty` lives at `p` (contract above).
            out[0] = unsafe { load_scalar(p, d.ty) };
        }
        Storage::Buckets => {
            // SAFETY: `d.size` consecutive AtomicU64 live at `p`.
            let buckets =
                unsafe { core::slice::from_raw_parts(p.cast::<AtomicU64>(), d.size as usize) };
            for (o, b) in out.iter_mut().zip(buckets) {
                *o = b.load(Relaxed);
            }
        }
        Storage::Sharded => {
            // SAFETY: a ShardedCounter lives at `p`.
            out[0] = unsafe { &*p.cast::<ShardedCounter>() }.get();
        }
        Storage::Block => unreachable!("block values are read through their BlockSource"),
    }
}

/// Live instances of one schema, flattened for an aggregate's fold: their addresses in
/// one array (what the fold's loop walks) and, beside it at the same index, what keeps
/// each one alive (nothing for a static instance).
///
/// Holding the keep-alives means an `Instances` can never dangle, whatever happens to the
/// groups it was collected from; that no reader *uses* it after a `revoke` or a removal
/// is the aggregate cache's job (see `aggregate.rs`), not a memory-safety matter.
pub(super) struct Instances {
    schema: &'static Schema,
    bases: Vec<NonNull<u8>>,
    keep: Vec<Option<Arc<dyn Any + Send + Sync>>>,
}

/// What kept a removed member alive: dropped by the caller, outside its locks (dropping
/// the last `Arc` of an instance runs its owner's `Drop`).
pub(super) type KeepAlive = Option<Arc<dyn Any + Send + Sync>>;

// SAFETY: as for `Instance`: every base is a live `T: Stats` (`Send + Sync`), only ever
// accessed through shared references to its atomic cells.
unsafe impl Send for Instances {}
// SAFETY: as above.
unsafe impl Sync for Instances {}

impl Instances {
    /// No instances yet; only instances of `schema` will be taken.
    pub(super) fn new(schema: &'static Schema) -> Self {
        Instances {
            schema,
            bases: Vec::new(),
            keep: Vec::new(),
        }
    }

    /// Adds `inst`, keeping it alive for as long as `self` lives; returns `false` (and
    /// adds nothing) when `inst` is of another schema.
    pub(super) fn push(&mut self, inst: &Instance) -> bool {
        if !core::ptr::eq(inst.schema, self.schema) {
            return false;
        }
        self.bases.push(inst.keep.base());
        self.keep.push(inst.keep.keep_alive());
        true
    }

    /// Removes instance `i`, moving the last one into its place (what the fold reads does
    /// not depend on the order); returns what kept it alive. Panics if `i` is out of
    /// range.
    pub(super) fn swap_remove(&mut self, i: usize) -> KeepAlive {
        self.bases.swap_remove(i);
        self.keep.swap_remove(i)
    }

    /// Gives back the spare capacity.
    pub(super) fn shrink_to_fit(&mut self) {
        self.bases.shrink_to_fit();
        self.keep.shrink_to_fit();
    }

    /// How many instances.
    pub(super) fn len(&self) -> usize {
        self.bases.len()
    }

    /// Reads descriptor `index` of instance `i` into `out[..size]`.
    pub(super) fn read(&self, i: usize, index: usize, out: &mut [u64]) {
        let d = &self.schema.descriptors()[index];
        let out = &mut out[..d.size as usize];
        // SAFETY: every base was pushed from an instance of `self.schema` (`push` checks),
        // is kept alive by `self.keep` (or is static), and instances hold no block values.
        unsafe { read_at(self.bases[i], d, out) }
    }

    /// Calls `f` with the value of the one-word descriptor `index` (widened to u64,
    /// signed values sign-extended) of each instance in `range`. The match on the cell
    /// type is outside the loop, so each arm is one tight loop of loads. Panics on a
    /// histogram descriptor.
    #[inline]
    pub(super) fn scalars(
        &self,
        range: core::ops::Range<usize>,
        index: usize,
        mut f: impl FnMut(u64),
    ) {
        let d = &self.schema.descriptors()[index];
        let bases = &self.bases[range];
        let off = d.offset;
        macro_rules! each {
            ($cell:ty, |$v:ident| $conv:expr) => {
                for b in bases {
                    // SAFETY: `b + off` holds a `$cell`: `d` describes the field at `off`
                    // of this instance's `T` (`push` checked the schema), which is alive
                    // (`self.keep`).
                    let $v = unsafe { &*b.as_ptr().add(off).cast::<$cell>() };
                    f($conv)
                }
            };
        }
        match (d.storage, d.ty) {
            (Storage::Atomic, ValueType::U64) => each!(AtomicU64, |c| c.load(Relaxed)),
            (Storage::Atomic, ValueType::U32) => each!(AtomicU32, |c| c.load(Relaxed) as u64),
            (Storage::Atomic, ValueType::U16) => each!(AtomicU16, |c| c.load(Relaxed) as u64),
            (Storage::Atomic, ValueType::U8) => each!(AtomicU8, |c| c.load(Relaxed) as u64),
            (Storage::Atomic, ValueType::I64) => each!(AtomicI64, |c| c.load(Relaxed) as u64),
            (Storage::Atomic, ValueType::I32) => {
                each!(AtomicI32, |c| c.load(Relaxed) as i64 as u64)
            }
            (Storage::Atomic, ValueType::I16) => {
                each!(AtomicI16, |c| c.load(Relaxed) as i64 as u64)
            }
            (Storage::Atomic, ValueType::I8) => each!(AtomicI8, |c| c.load(Relaxed) as i64 as u64),
            (Storage::Atomic, ValueType::Bool) => {
                each!(AtomicBool, |c| c.load(Relaxed) as u64)
            }
            (Storage::Sharded, _) => each!(ShardedCounter, |c| c.get()),
            (Storage::Buckets, _) | (Storage::Block, _) => {
                panic!("scalars() reads one-word cells only")
            }
        }
    }
}

/// # Safety
/// An atomic of type `ty` lives at `p`.
#[inline]
unsafe fn load_scalar(p: *const u8, ty: ValueType) -> u64 {
    // SAFETY: the caller promises the atomic of `ty` at `p`; every arm reads that type.
    unsafe {
        match ty {
            ValueType::U8 => (*p.cast::<AtomicU8>()).load(Relaxed) as u64,
            ValueType::U16 => (*p.cast::<AtomicU16>()).load(Relaxed) as u64,
            ValueType::U32 => (*p.cast::<AtomicU32>()).load(Relaxed) as u64,
            ValueType::U64 => (*p.cast::<AtomicU64>()).load(Relaxed),
            ValueType::I8 => (*p.cast::<AtomicI8>()).load(Relaxed) as i64 as u64,
            ValueType::I16 => (*p.cast::<AtomicI16>()).load(Relaxed) as i64 as u64,
            ValueType::I32 => (*p.cast::<AtomicI32>()).load(Relaxed) as i64 as u64,
            ValueType::I64 => (*p.cast::<AtomicI64>()).load(Relaxed) as u64,
            ValueType::Bool => (*p.cast::<AtomicBool>()).load(Relaxed) as u64,
        }
    }
}

/// # Safety
/// An atomic of type `ty` lives at `p`.
unsafe fn store_zero(p: *const u8, ty: ValueType) {
    // SAFETY: the caller promises the atomic of `ty` at `p`; every arm writes that type.
    unsafe {
        match ty {
            ValueType::U8 => (*p.cast::<AtomicU8>()).store(0, Relaxed),
            ValueType::U16 => (*p.cast::<AtomicU16>()).store(0, Relaxed),
            ValueType::U32 => (*p.cast::<AtomicU32>()).store(0, Relaxed),
            ValueType::U64 => (*p.cast::<AtomicU64>()).store(0, Relaxed),
            ValueType::I8 => (*p.cast::<AtomicI8>()).store(0, Relaxed),
            ValueType::I16 => (*p.cast::<AtomicI16>()).store(0, Relaxed),
            ValueType::I32 => (*p.cast::<AtomicI32>()).store(0, Relaxed),
            ValueType::I64 => (*p.cast::<AtomicI64>()).store(0, Relaxed),
            ValueType::Bool => (*p.cast::<AtomicBool>()).store(false, Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The unsafe reads and clears, for every storage and type; run under Miri in CI
    //! (`cargo +nightly miri test -p statsfs-core`).

    use core::mem::offset_of;
    use core::sync::atomic::{AtomicBool, AtomicI16, AtomicI8, AtomicU32};
    use std::sync::Arc;

    use crate::cell::{Counter, Gauge, LogHistogram, ShardedCounter};
    use crate::desc::{Descriptor, Kind};
    use crate::schema::{Schema, SchemaBuilder};
    use crate::{Source, Stats, ValueGroup};

    use super::Instance;

    #[derive(Default)]
    struct Every {
        a: AtomicI8,
        b: AtomicU32,
        c: Gauge<i64>,
        d: AtomicBool,
        e: LogHistogram<3>,
        f: ShardedCounter,
        g: AtomicI16,
        h: Counter,
    }

    const fn f<T: crate::cell::StatField>(name: &'static str, offset: usize) -> Descriptor {
        crate::__private::field(name, offset, T::INFO)
    }

    static SCHEMA: Schema =
        Schema::new_static("every", "raw::Every", <Every as Stats>::DESCRIPTORS);

    // SAFETY: each descriptor is built from the field at its offset, as the derive does.
    unsafe impl Stats for Every {
        const DESCRIPTORS: &'static [Descriptor] = &SchemaBuilder::<8>::new()
            .push(f::<AtomicI8>("a", offset_of!(Every, a)))
            .push(f::<AtomicU32>("b", offset_of!(Every, b)))
            .push(f::<Gauge<i64>>("c", offset_of!(Every, c)))
            .push(f::<AtomicBool>("d", offset_of!(Every, d)))
            .push(f::<LogHistogram<3>>("e", offset_of!(Every, e)))
            .push(f::<ShardedCounter>("f", offset_of!(Every, f)))
            .push(crate::__private::field_of_kind(
                "g",
                offset_of!(Every, g),
                <AtomicI16 as crate::cell::StatField>::INFO,
                Kind::Instant,
            ))
            .push(f::<Counter>("h", offset_of!(Every, h)))
            .build();
        const SCHEMA: &'static Schema = &SCHEMA;
    }

    fn filled() -> Arc<Every> {
        let e = Arc::new(Every::default());
        e.a.store(-3, core::sync::atomic::Ordering::Relaxed);
        e.b.store(u32::MAX, core::sync::atomic::Ordering::Relaxed);
        e.c.set(i64::MIN);
        e.d.store(true, core::sync::atomic::Ordering::Relaxed);
        e.e.record(0);
        e.e.record(9);
        e.f.add(7);
        e.g.store(-300, core::sync::atomic::Ordering::Relaxed);
        e.h.add(1);
        e
    }

    #[test]
    fn reads_every_storage_and_type_widened() {
        let inst = Instance::new(filled());
        let mut out = [0u64; 3];
        let mut got = Vec::new();
        for (i, d) in Every::DESCRIPTORS.iter().enumerate() {
            inst.read(i, &mut out);
            got.push(out[..d.size as usize].to_vec());
        }
        assert_eq!(
            got,
            [
                vec![-3i64 as u64],
                vec![u32::MAX as u64],
                vec![i64::MIN as u64],
                vec![1],
                vec![1, 0, 1],
                vec![7],
                vec![-300i64 as u64],
                vec![1]
            ]
        );
        for (i, d) in Every::DESCRIPTORS.iter().enumerate() {
            inst.clear(i);
            inst.read(i, &mut out);
            assert!(
                out[..d.size as usize].iter().all(|&w| w == 0),
                "{} not cleared",
                d.name
            );
        }
    }

    /// A placed struct: here in a box of the handle's, as a region keeps it in its
    /// mapping; dropping the handle says so.
    struct InBox(Box<Every>, Arc<core::sync::atomic::AtomicUsize>);

    // SAFETY: the box's contents stay at one address until the handle drops.
    unsafe impl super::Placed for InBox {
        type Stats = Every;
        fn stats(&self) -> &Every {
            &self.0
        }
    }

    impl Drop for InBox {
        fn drop(&mut self) {
            self.1.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn placed_instances_read_aggregate_and_are_let_go_at_revoke() {
        let dropped = Arc::new(core::sync::atomic::AtomicUsize::new(0));
        let handle = Arc::new(InBox(Box::default(), dropped.clone()));
        handle.0.h.add(5);
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates::<Every>()).unwrap();
        let s = Source::new("s").unwrap();
        s.add(ValueGroup::placed(handle.clone())).unwrap();
        root.add_subordinate(&s).unwrap();
        assert_eq!(s.get("h").unwrap().as_u64(), 5);
        handle.0.h.inc();
        assert_eq!(root.get("h").unwrap().as_u64(), 6);
        let address = &*handle.0 as *const Every as usize;
        let mut kinds = Vec::new();
        s.inspect().for_each_group(|g| kinds.push(g.kind()));
        assert_eq!(kinds, [crate::GroupKind::Values { address }]);
        assert_eq!(
            Arc::strong_count(&handle),
            3,
            "the source and its aggregate hold it"
        );
        s.revoke();
        assert_eq!(Arc::strong_count(&handle), 1, "revoke lets the handle go");
        assert_eq!(root.get("h").unwrap().as_u64(), 0);
        drop(handle);
        assert_eq!(dropped.load(core::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn static_instances_read_too() {
        static E: Every = Every {
            a: AtomicI8::new(1),
            b: AtomicU32::new(2),
            c: Gauge::new(),
            d: AtomicBool::new(false),
            e: LogHistogram::new(),
            f: ShardedCounter::new(),
            g: AtomicI16::new(0),
            h: Counter::new(),
        };
        let s = Source::new("s").unwrap();
        s.add(ValueGroup::of_static(&E)).unwrap();
        assert_eq!(s.get("b").unwrap().as_u64(), 2);
    }

    #[test]
    /// Under Miri this explores interleavings of reads with revoke and removal for data
    /// races and undefined behaviour; the end state checks the aggregates followed both.
    fn readers_race_revoke_and_removal() {
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates::<Every>()).unwrap();
        let children: Vec<Source> = (0..3)
            .map(|i| {
                let c = Source::new(format!("c{i}")).unwrap();
                c.add(ValueGroup::of(filled())).unwrap();
                root.add_subordinate(&c).unwrap();
                c
            })
            .collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..20 {
                    let h = root.get("h").unwrap().as_u64();
                    assert!(h <= 3);
                    let mut n = 0;
                    root.for_each_value(|_| n += 1);
                    assert_eq!(n, 8);
                }
            });
            s.spawn(|| {
                children[0].revoke();
                root.remove_subordinate(&children[1]).unwrap();
            });
        });
        assert_eq!(root.get("h").unwrap().as_u64(), 1);
        assert_eq!(root.get("a").unwrap().as_i64(), -3);
    }

    /// The part a component describes, read through the outer instance's address moved
    /// to it (`Instance::component`), for every way an instance is kept: under Miri, the
    /// moved address stays inside the outer struct's allocation.
    #[test]
    fn components_read_their_part_of_the_outer_struct() {
        #[derive(Default)]
        struct Part {
            x: Counter,
            y: Gauge<i32>,
        }
        static PART: Schema = Schema::new_static("part", "raw::Part", <Part as Stats>::DESCRIPTORS);
        // SAFETY: each descriptor names its field's offset and cell type.
        unsafe impl Stats for Part {
            const DESCRIPTORS: &'static [Descriptor] = &SchemaBuilder::<2>::new()
                .push(f::<Counter>("x", offset_of!(Part, x)))
                .push(f::<Gauge<i32>>("y", offset_of!(Part, y)))
                .build();
            const SCHEMA: &'static Schema = &PART;
        }
        #[derive(Default)]
        struct Outer {
            head: AtomicU32,
            left: Part,
            right: Part,
        }
        const PARTS: [crate::schema::Component; 2] = [
            crate::schema::Component {
                schema: &PART,
                offset: offset_of!(Outer, left),
            },
            crate::schema::Component {
                schema: &PART,
                offset: offset_of!(Outer, right),
            },
        ];
        static OUTER: Schema =
            Schema::new_static("outer", "raw::Outer", <Outer as Stats>::DESCRIPTORS)
                .with_components(&PARTS);
        // SAFETY: as above; the components are the two `Part` fields at their offsets.
        unsafe impl Stats for Outer {
            const DESCRIPTORS: &'static [Descriptor] = &SchemaBuilder::<5>::new()
                .push(f::<AtomicU32>("head", offset_of!(Outer, head)))
                .flatten(<Part as Stats>::DESCRIPTORS, offset_of!(Outer, left))
                .push(f::<Counter>(
                    "rx",
                    offset_of!(Outer, right) + offset_of!(Part, x),
                ))
                .push(f::<Gauge<i32>>(
                    "ry",
                    offset_of!(Outer, right) + offset_of!(Part, y),
                ))
                .build();
            const SCHEMA: &'static Schema = &OUTER;
            const COMPONENTS: &'static [crate::schema::Component] = &PARTS;
        }
        let o = Arc::new(Outer::default());
        o.left.x.add(2);
        o.right.x.add(5);
        o.right.y.set(-7);
        let inst = Instance::new(o.clone());
        let mut out = [0u64; 1];
        let right = inst.component(1).unwrap();
        right.read(0, &mut out);
        assert_eq!(out[0], 5);
        right.read(1, &mut out);
        assert_eq!(out[0] as i64, -7);
        right.clear(0);
        assert_eq!(o.right.x.get(), 0);
        assert!(inst.component(2).is_none());
        // Through the tree: aggregates of `Part` fold both parts.
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates::<Part>()).unwrap();
        let s = Source::new("s").unwrap();
        s.add(o.clone()).unwrap();
        root.add_subordinate(&s).unwrap();
        o.right.x.add(1);
        assert_eq!(root.get("x").unwrap().as_u64(), 3);
        s.revoke();
        assert_eq!(root.get("x").unwrap().as_u64(), 0);
        drop((inst, right));
        assert_eq!(
            Arc::strong_count(&o),
            1,
            "no part keeps the instance after revoke"
        );
    }
}
