//! Dimensional stats: one cell per value of a label, in an array field.
//!
//! A [`Family<L, C>`] holds one cell `C` per variant of a fieldless enum `L` that
//! implements [`Label`] (`#[derive(statsfs::Label)]` on the enum), indexed by the enum:
//! `stats.exits[ExitReason::Hlt].inc_local()` is an array index and the cell's own write,
//! nothing else (no hash, no lock, no heap). A plain array `[C; N]` with
//! `#[stat(label = "queue")]` is a family indexed by a number.
//!
//! Each cell is a value of its own, named `<field>_<label value>` (`exits_hlt`, `depth_3`):
//! a file in the mount, a descriptor in the binary layout (so KVM-layout readers see one
//! value each), aggregated one by one. The descriptor carries the label
//! ([`Descriptor::family`]), so the OpenMetrics view writes one metric family with a label
//! (`kvm_vcpu_exits_total{reason="hlt"}`) (`docs/MODEL.md#families`).
//!
//! ```
//! use statsfs_core::cell::Counter;
//! use statsfs_core::family::{Family, Label};
//!
//! // What `#[derive(statsfs::Label)]` writes for `enum Op { Get, Put }`.
//! #[derive(Clone, Copy)]
//! enum Op { Get, Put }
//! // SAFETY: `Array<C>` is `[C; 2]`, one cell per value, as `VALUES` has two.
//! unsafe impl Label for Op {
//!     const NAME: &'static str = "op";
//!     const VALUES: &'static [&'static str] = &["get", "put"];
//!     type Array<C> = [C; 2];
//!     fn index(self) -> usize { self as usize }
//! }
//!
//! let ops: Family<Op, Counter> = Family::new();
//! ops[Op::Put].inc();
//! assert_eq!(ops[Op::Put].get(), 1);
//! assert_eq!(ops.iter().map(|(op, c)| (op, c.get())).collect::<Vec<_>>(), [("get", 0), ("put", 1)]);
//! ```

use core::ops::Index;

use crate::cell::StatField;
use crate::desc::Descriptor;

/// A fieldless enum whose variants label the cells of a [`Family`]. Implemented by
/// `#[derive(statsfs::Label)]`, which names the label after the enum in snake case (or
/// `#[label(name = "...")]`) and each value after its variant (or
/// `#[label(rename = "...")]` on the variant).
///
/// # Safety
///
/// `Array<C>` is exactly `[C; VALUES.len()]` for every `C`, and [`index`](Self::index)
/// returns an index below `VALUES.len()`: the derive describes a `Family<Self, C>` field
/// as `VALUES.len()` cells of `C`, `size_of::<C>()` bytes apart from the field's start,
/// and readers read them there. The derive keeps this promise (and checks the array type
/// at compile time for every family field); do not implement the trait by hand.
pub unsafe trait Label: Copy + Send + Sync + 'static {
    /// The label's name (`reason`): letters, digits and `_`.
    const NAME: &'static str;
    /// Each variant's label value, in [`index`](Self::index) order.
    const VALUES: &'static [&'static str];
    /// An array of one `C` per variant: `[C; VALUES.len()]`.
    type Array<C>: AsRef<[C]>;
    /// The variant's position in [`VALUES`](Self::VALUES).
    fn index(self) -> usize;
}

/// One cell `C` per value of the label `L`, indexed by `L`; see the [module
/// documentation](self).
#[repr(transparent)]
pub struct Family<L: Label, C>(L::Array<C>);

/// An array of cells that can be made in `const` context: `[C; N]` of any cell.
pub trait CellArray<C>: Sized {
    /// Every cell at zero.
    const ZERO: Self;
}

#[allow(clippy::declare_interior_mutable_const)]
impl<C: StatField, const N: usize> CellArray<C> for [C; N] {
    const ZERO: Self = [C::ZERO; N];
}

impl<L: Label, C> Family<L, C>
where
    L::Array<C>: CellArray<C>,
{
    /// Every cell at zero; usable in a `static`.
    pub const fn new() -> Self {
        Family(<L::Array<C> as CellArray<C>>::ZERO)
    }
}

impl<L: Label, C> Default for Family<L, C>
where
    L::Array<C>: CellArray<C>,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<L: Label, C> Family<L, C> {
    /// The family of these cells, one a label value in the label's order (the derive's
    /// `new()`).
    pub const fn from_cells(cells: L::Array<C>) -> Self {
        Family(cells)
    }

    /// Every label value with its cell, in the label's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &C)> + '_ {
        L::VALUES.iter().copied().zip(self.0.as_ref())
    }
}

impl<L: Label, C> Index<L> for Family<L, C> {
    type Output = C;
    #[inline(always)]
    fn index(&self, label: L) -> &C {
        &self.0.as_ref()[label.index()]
    }
}

impl<L: Label, C: core::fmt::Debug> core::fmt::Debug for Family<L, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// What a family's or a prefixed flatten's names are made of, for the `const` name
/// joining below (the derive's glue; not a public API).
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum Parts<'a> {
    /// Label values.
    Values(&'a [&'a str]),
    /// The numbers `0 .. n`.
    Index(usize),
    /// The names of descriptors (a flattened struct's).
    Names(&'a [Descriptor]),
}

impl Parts<'_> {
    /// How many parts.
    pub(crate) const fn len(&self) -> usize {
        match self {
            Parts::Values(v) => v.len(),
            Parts::Index(n) => *n,
            Parts::Names(d) => d.len(),
        }
    }

    /// Part `i`'s bytes' length (a number's digits).
    const fn part_len(&self, i: usize) -> usize {
        match self {
            Parts::Values(v) => v[i].len(),
            Parts::Names(d) => d[i].name.len(),
            Parts::Index(_) => {
                let mut n = i;
                let mut digits = 1;
                while n >= 10 {
                    n /= 10;
                    digits += 1;
                }
                digits
            }
        }
    }

    /// Writes part `i` at `out[at..]`; returns the end.
    const fn write<const LEN: usize>(&self, i: usize, out: &mut [u8; LEN], at: usize) -> usize {
        match self {
            Parts::Values(v) => copy(v[i].as_bytes(), out, at),
            Parts::Names(d) => copy(d[i].name.as_bytes(), out, at),
            Parts::Index(_) => {
                let len = self.part_len(i);
                let mut n = i;
                let mut k = len;
                while k > 0 {
                    k -= 1;
                    out[at + k] = b'0' + (n % 10) as u8;
                    n /= 10;
                }
                at + len
            }
        }
    }
}

const fn copy<const LEN: usize>(b: &[u8], out: &mut [u8; LEN], at: usize) -> usize {
    let mut i = 0;
    while i < b.len() {
        out[at + i] = b[i];
        i += 1;
    }
    at + b.len()
}

/// The length of every `head + part + tail` of `parts`, end to end.
#[doc(hidden)]
pub const fn joined_len(head: &str, parts: Parts<'_>, tail: &str) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += head.len() + parts.part_len(i) + tail.len();
        i += 1;
    }
    n
}

/// Every `head + part + tail` of `parts`, end to end (`LEN` is [`joined_len`]).
#[doc(hidden)]
pub const fn join<const LEN: usize>(head: &str, parts: Parts<'_>, tail: &str) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        at = copy(head.as_bytes(), &mut out, at);
        at = parts.write(i, &mut out, at);
        at = copy(tail.as_bytes(), &mut out, at);
        i += 1;
    }
    assert!(at == LEN, "statsfs: joined names of the wrong length");
    out
}

/// Name `i` of [`join`]'s output `joined`, and its part (the label value of a family
/// member).
#[doc(hidden)]
pub const fn joined_at(
    joined: &'static [u8],
    head: &str,
    parts: Parts<'_>,
    tail: &str,
    i: usize,
) -> (&'static str, &'static str) {
    let mut at = 0;
    let mut k = 0;
    while k < i {
        at += head.len() + parts.part_len(k) + tail.len();
        k += 1;
    }
    let len = head.len() + parts.part_len(i) + tail.len();
    let (_, rest) = joined.split_at(at);
    let (name, _) = rest.split_at(len);
    let (_, part) = name.split_at(head.len());
    let (part, _) = part.split_at(parts.part_len(i));
    match (core::str::from_utf8(name), core::str::from_utf8(part)) {
        (Ok(n), Ok(p)) => (n, p),
        _ => panic!("statsfs: joined names are not UTF-8"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: &[&str] = &["get", "put"];
    const JOINED: &[u8] = &join::<{ joined_len("ops_", Parts::Values(VALUES), "") }>(
        "ops_",
        Parts::Values(VALUES),
        "",
    );
    const DIGITS: &[u8] =
        &join::<{ joined_len("q_", Parts::Index(12), "_sum") }>("q_", Parts::Index(12), "_sum");

    #[test]
    fn names_are_joined_at_compile_time() {
        assert_eq!(JOINED, b"ops_getops_put");
        assert_eq!(
            joined_at(JOINED, "ops_", Parts::Values(VALUES), "", 1),
            ("ops_put", "put")
        );
        assert_eq!(
            joined_at(DIGITS, "q_", Parts::Index(12), "_sum", 11),
            ("q_11_sum", "11")
        );
        assert_eq!(
            joined_at(DIGITS, "q_", Parts::Index(12), "_sum", 9),
            ("q_9_sum", "9")
        );
    }
}
