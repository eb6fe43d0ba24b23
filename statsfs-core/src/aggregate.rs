//! Folding descriptors over every matching simple value of a subtree (SPEC §1).
//!
//! One traversal folds every descriptor of an aggregate group at once: the subtree's
//! sources are visited top-down under their read locks, each simple group of the same
//! schema (by identity) contributes, aggregate and revoked groups are skipped.

use crate::desc::{Aggregation, Descriptor};
use crate::group::Group;
use crate::schema::SchemaRef;
use crate::source::State;

/// The running fold of one scalar descriptor.
#[derive(Clone, Copy)]
struct Acc {
    n: u64,
    wrapping: u64,
    wide: i128,
    min: i128,
    max: i128,
    zeros: u64,
}

impl Acc {
    const EMPTY: Acc = Acc {
        n: 0,
        wrapping: 0,
        wide: 0,
        min: i128::MAX,
        max: i128::MIN,
        zeros: 0,
    };

    fn add(&mut self, v: i128, bits: u64) {
        self.n += 1;
        self.wrapping = self.wrapping.wrapping_add(bits);
        self.wide += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.zeros += (bits == 0) as u64;
    }
}

/// Widens a stored word to a comparable number.
fn widen(d: &Descriptor, bits: u64) -> i128 {
    if d.ty.is_signed() {
        bits as i64 as i128
    } else {
        bits as i128
    }
}

/// The result of an aggregation over `acc`, as a stored word.
fn finish(d: &Descriptor, acc: &Acc) -> u64 {
    let signed = d.ty.is_signed();
    match d.aggregation {
        Aggregation::Sum | Aggregation::None => acc.wrapping,
        Aggregation::Min if acc.n == 0 => {
            if signed {
                i64::MAX as u64
            } else {
                u64::MAX
            }
        }
        Aggregation::Max if acc.n == 0 => {
            if signed {
                i64::MIN as u64
            } else {
                0
            }
        }
        Aggregation::Min => acc.min as i64 as u64,
        Aggregation::Max => acc.max as i64 as u64,
        Aggregation::Avg if acc.n == 0 => 0,
        // i128 division truncates toward zero, as C's signed division does.
        Aggregation::Avg => (acc.wide / acc.n as i128) as i64 as u64,
        Aggregation::CountZero => acc.zeros,
    }
}

/// Folds the descriptors `which` of `schema` over a subtree.
pub(crate) struct Fold<'a> {
    schema: &'a SchemaRef,
    which: &'a [usize],
    accs: Vec<Acc>,
    /// Histogram bucket sums, `size` words per descriptor in `which` order.
    buckets: Vec<u64>,
    block: Vec<u64>,
    word: Vec<u64>,
}

impl<'a> Fold<'a> {
    pub(crate) fn new(schema: &'a SchemaRef, which: &'a [usize]) -> Self {
        let ds = schema.descriptors();
        let words = which
            .iter()
            .map(|&i| {
                if ds[i].kind.is_histogram() {
                    ds[i].size as usize
                } else {
                    0
                }
            })
            .sum();
        let widest = which
            .iter()
            .map(|&i| ds[i].size as usize)
            .max()
            .unwrap_or(1);
        Fold {
            schema,
            which,
            accs: vec![Acc::EMPTY; which.len()],
            buckets: vec![0; words],
            block: Vec::new(),
            word: vec![0; widest],
        }
    }

    /// Adds every matching simple group of `state` and, recursively, of its subordinates.
    pub(crate) fn visit(&mut self, state: &State) {
        for g in &state.groups {
            self.add_group(g);
        }
        for child in &state.children {
            let st = child.read_state();
            self.visit(&st);
        }
    }

    fn add_group(&mut self, g: &Group) {
        if !g.schema.same(self.schema) || !g.binding.is_simple() {
            return;
        }
        if !g.binding.prepare(&g.schema, &mut self.block) {
            return;
        }
        let ds = self.schema.descriptors();
        let mut hist_at = 0;
        for (k, &i) in self.which.iter().enumerate() {
            let d = &ds[i];
            let size = d.size as usize;
            g.binding.load(d, &self.block, &mut self.word[..size]);
            if d.kind.is_histogram() {
                for (sum, w) in self.buckets[hist_at..hist_at + size]
                    .iter_mut()
                    .zip(&self.word)
                {
                    *sum = sum.wrapping_add(*w);
                }
                hist_at += size;
            } else {
                let bits = self.word[0];
                self.accs[k].add(widen(d, bits), bits);
            }
        }
    }

    /// Calls `f` with each folded descriptor (in `which` order) and its words.
    pub(crate) fn finish(mut self, mut f: impl FnMut(usize, &[u64])) {
        let ds = self.schema.descriptors();
        let mut hist_at = 0;
        for (k, &i) in self.which.iter().enumerate() {
            let d = &ds[i];
            if d.kind.is_histogram() {
                let size = d.size as usize;
                f(i, &self.buckets[hist_at..hist_at + size]);
                hist_at += size;
            } else {
                self.word[0] = finish(d, &self.accs[k]);
                f(i, &self.word[..1]);
            }
        }
    }
}

/// Clears descriptor `d` of `schema` in every matching simple group of a subtree.
pub(crate) fn clear_subtree(state: &State, schema: &SchemaRef, d: &Descriptor) {
    for g in &state.groups {
        if g.schema.same(schema) && g.binding.is_simple() {
            g.binding.clear(d);
        }
    }
    for child in &state.children {
        let st = child.read_state();
        clear_subtree(&st, schema, d);
    }
}

/// The words an empty aggregate of `d` reads as (used for revoked groups).
pub(crate) fn empty(d: &Descriptor, out: &mut [u64]) {
    out.fill(0);
    if !d.kind.is_histogram() {
        out[0] = finish(d, &Acc::EMPTY);
    }
}
