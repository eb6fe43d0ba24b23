//! A series' storage: the cells the facade's handles write and the tree reads at read
//! time, as a block of words laid out as the metric's runtime schema says.
//!
//! Handles of the facade are shared by every thread that registered the key, so each
//! write is one atomic read-modify-write (a gauge's add is a compare-and-swap of its
//! `f64`; a histogram record adds to its bucket and to its sum).
//!
//! What the facade's callers write is not trusted: counters and sums never wrap (an
//! add that could is made saturating, off the fast path), and a gauge ignores an add
//! that is not a number.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use metrics::{CounterFn, GaugeFn, HistogramFn};
use statsfs_core::{BlockSource, Kind};

use crate::units::{sample, signed};

/// Below these, any number of threads adding at once cannot wrap a word: a total under
/// 2^62 and adds under 2^52, from fewer than 2^10 threads at a time.
const TOTAL_FAST: u64 = 1 << 62;
const ADD_FAST: u64 = 1 << 52;

/// Adds `v` to a total that never wraps: one `fetch_add` while both are small, else a
/// saturating compare-and-swap.
#[inline]
fn add_total(total: &AtomicU64, v: u64) {
    if v < ADD_FAST && total.load(Relaxed) < TOTAL_FAST {
        total.fetch_add(v, Relaxed);
    } else {
        let _ = total.fetch_update(Relaxed, Relaxed, |t| Some(t.saturating_add(v)));
    }
}

/// A counter: one word.
#[derive(Debug, Default)]
pub(crate) struct CounterCell(AtomicU64);

impl CounterFn for CounterCell {
    #[inline]
    fn increment(&self, value: u64) {
        add_total(&self.0, value);
    }

    /// Never backwards: the larger of the two.
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Relaxed);
    }
}

impl BlockSource for CounterCell {
    fn read_block(&self, out: &mut [u64]) -> io::Result<()> {
        if let Some(w) = out.first_mut() {
            *w = self.0.load(Relaxed);
        }
        Ok(())
    }
}

/// A gauge: the facade's `f64`, read as a scaled integer.
#[derive(Debug)]
pub(crate) struct GaugeCell {
    bits: AtomicU64,
    factor: f64,
}

impl GaugeCell {
    pub(crate) fn new(factor: f64) -> Self {
        GaugeCell {
            bits: AtomicU64::new(0f64.to_bits()),
            factor,
        }
    }

    fn add(&self, d: f64) {
        if !d.is_finite() {
            return;
        }
        let _ = self.bits.fetch_update(Relaxed, Relaxed, |b| {
            Some((f64::from_bits(b) + d).to_bits())
        });
    }
}

impl GaugeFn for GaugeCell {
    #[inline]
    fn increment(&self, value: f64) {
        self.add(value)
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.add(-value)
    }

    #[inline]
    fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Relaxed);
    }
}

impl BlockSource for GaugeCell {
    fn read_block(&self, out: &mut [u64]) -> io::Result<()> {
        if let Some(w) = out.first_mut() {
            *w = signed(f64::from_bits(self.bits.load(Relaxed)), self.factor) as u64;
        }
        Ok(())
    }
}

/// A histogram: its buckets, then the sum of its samples (in steps).
#[derive(Debug)]
pub(crate) struct HistogramCell {
    kind: Kind,
    factor: f64,
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl HistogramCell {
    pub(crate) fn new(kind: Kind, buckets: usize, factor: f64) -> Self {
        HistogramCell {
            kind,
            factor,
            buckets: (0..buckets.max(1)).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }
}

impl HistogramFn for HistogramCell {
    #[inline]
    fn record(&self, value: f64) {
        let v = sample(value, self.factor);
        let i = self.kind.bucket_of(v, self.buckets.len());
        self.buckets[i].fetch_add(1, Relaxed);
        add_total(&self.sum, v);
    }

    fn record_many(&self, value: f64, count: usize) {
        let v = sample(value, self.factor);
        let n = count as u64;
        let i = self.kind.bucket_of(v, self.buckets.len());
        add_total(&self.buckets[i], n);
        add_total(&self.sum, v.saturating_mul(n));
    }
}

impl BlockSource for HistogramCell {
    fn read_block(&self, out: &mut [u64]) -> io::Result<()> {
        let n = self.buckets.len();
        for (w, b) in out.iter_mut().zip(self.buckets.iter()) {
            *w = b.load(Relaxed);
        }
        if let Some(w) = out.get_mut(n) {
            *w = self.sum.load(Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_their_schema_lays_them_out() {
        let c = CounterCell::default();
        c.increment(5);
        c.absolute(3);
        let mut w = [0; 1];
        c.read_block(&mut w).unwrap();
        assert_eq!(w, [5], "absolute never goes backwards");
        c.absolute(9);
        c.read_block(&mut w).unwrap();
        assert_eq!(w, [9]);

        let g = GaugeCell::new(1e9);
        g.increment(1.5);
        g.decrement(0.25);
        g.read_block(&mut w).unwrap();
        assert_eq!(w[0] as i64, 1_250_000_000);
        g.set(-2.0);
        g.read_block(&mut w).unwrap();
        assert_eq!(w[0] as i64, -2_000_000_000);

        // Never backwards, whatever is added.
        c.increment(u64::MAX - 3);
        c.increment(100);
        c.read_block(&mut w).unwrap();
        assert_eq!(w, [u64::MAX]);
        let g = GaugeCell::new(1.0);
        g.set(2.0);
        g.increment(f64::NAN);
        g.increment(f64::INFINITY);
        g.read_block(&mut w).unwrap();
        assert_eq!(w, [2]);

        let h = HistogramCell::new(Kind::LogHistogram, 4, 1e6);
        for s in [0.0, 0.000_001, 0.000_003, 1.0] {
            h.record(s);
        }
        h.record_many(0.000_002, 2);
        let mut w = [0; 5];
        h.read_block(&mut w).unwrap();
        assert_eq!(w, [1, 1, 3, 1, 1_000_008]);
        for _ in 0..3 {
            h.record(f64::INFINITY);
        }
        h.record_many(1e30, usize::MAX);
        h.read_block(&mut w).unwrap();
        assert_eq!(
            (w[3], w[4]),
            (u64::MAX, u64::MAX),
            "saturated, never wrapped"
        );
    }
}
