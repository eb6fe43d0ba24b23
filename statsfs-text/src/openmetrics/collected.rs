//! The series of one walk without text ([`Encoder::collect`](super::Encoder::collect)):
//! families, their series, labels and values, named and chosen by the exposition's
//! rules, for encodings other than text (OTLP, Prometheus remote write).

use statsfs_core::desc::{Base, Kind, Scale, Unit};

use super::{Family, Series, State, Type, NO_MEMBER};

/// The type of a metric family, as Prometheus and OpenMetrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// Cumulative values: samples end in `_total`.
    Counter,
    /// Instant values and peaks.
    Gauge,
    /// Linear and log histograms.
    Histogram,
}

/// The series of the last [`collect`](super::Encoder::collect), valid until the encoder's
/// next call.
#[derive(Clone, Copy)]
pub struct Collected<'a> {
    st: &'a State,
}

impl<'a> Collected<'a> {
    pub(super) fn new(st: &'a State) -> Self {
        Collected { st }
    }

    /// The families, in the order `encode` writes them.
    pub fn families(&self) -> impl Iterator<Item = CollectedFamily<'a>> + 'a {
        let st = self.st;
        st.order.iter().filter_map(move |&f| {
            st.families
                .get(f as usize)
                .map(|fam| CollectedFamily { st, fam })
        })
    }

    /// How many series (histograms counting once).
    pub fn series(&self) -> usize {
        self.st.series
    }

    /// How many values were left out (see [`Encoder::skipped`](super::Encoder::skipped)).
    pub fn skipped(&self) -> usize {
        self.st.skipped
    }
}

/// One metric family of a [`Collected`].
#[derive(Clone, Copy)]
pub struct CollectedFamily<'a> {
    st: &'a State,
    fam: &'a Family,
}

impl<'a> CollectedFamily<'a> {
    /// The family name, without `_total` (`kvm_vcpu_exits`).
    pub fn name(&self) -> &'a str {
        &self.fam.name
    }

    /// Counter, gauge or histogram.
    pub fn metric_type(&self) -> MetricType {
        match self.fam.shape.ty {
            Type::Counter => MetricType::Counter,
            Type::Gauge => MetricType::Gauge,
            Type::Histogram => MetricType::Histogram,
        }
    }

    /// The unit of the values (after scaling: seconds, bytes, cycles, none, boolean).
    pub fn unit(&self) -> Unit {
        self.fam.shape.unit
    }

    /// The description (`# HELP`).
    pub fn help(&self) -> &'a str {
        &self.fam.help
    }

    /// A histogram's bucket upper bounds (inclusive), in the unit, one per bucket but the
    /// last (`+Inf`); buckets that have no bound of their own (log buckets past 2^64) are
    /// counted with the next. Empty for counters and gauges.
    pub fn bounds(&self) -> impl ExactSizeIterator<Item = f64> + 'a {
        let (kind, scale) = (self.fam.shape.kind, self.fam.shape.scale);
        self.fam.bounds.iter().map(move |&(i, _)| {
            let upper: u128 = match kind {
                Kind::LinearHistogram { bucket_size } => {
                    (u128::from(i) + 1) * u128::from(bucket_size) - 1
                }
                _ => (1u128 << i.min(127)) - 1,
            };
            scaled(upper as f64, scale)
        })
    }

    /// The same bounds as `/metrics` writes them in `le` (`"0.000255"`, `"42e3"`), for
    /// encodings that must label buckets exactly as the text does.
    pub fn bound_labels(&self) -> impl Iterator<Item = &'a str> + 'a {
        let fam = self.fam;
        let mut start = 0usize;
        fam.bounds.iter().map(move |&(_, end)| {
            let b = start;
            start = end as usize;
            std::str::from_utf8(fam.le_text.get(b..end as usize).unwrap_or_default())
                .unwrap_or_default()
        })
    }

    /// Whether the values are integers in the unit (a scale of 1): counters and gauges
    /// whose [`CollectedSeries::integer`] is exact.
    pub fn is_integer(&self) -> bool {
        self.fam.shape.scale.exponent == 0 && self.fam.shape.ty != Type::Histogram
    }

    /// The series, in walk order.
    pub fn series(&self) -> impl Iterator<Item = CollectedSeries<'a>> + 'a {
        let (st, fam) = (self.st, self.fam);
        fam.series
            .iter()
            .map(move |s| CollectedSeries { st, fam, s })
    }
}

/// One series of a [`CollectedFamily`].
#[derive(Clone, Copy)]
pub struct CollectedSeries<'a> {
    st: &'a State,
    fam: &'a Family,
    s: &'a Series,
}

impl<'a> CollectedSeries<'a> {
    /// Its labels, as `/metrics` writes them (unescaped): the path label, the source's
    /// labels in effect, `retired="true"` for what a source kept of its retired
    /// subordinates, then a family member's own label. No `le`.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let st = self.st;
        let from = match self.s.labels {
            0 => 0,
            i => st.raw_ends.get(i - 1).copied().unwrap_or(0),
        };
        let to = st.raw_ends.get(self.s.labels).copied().unwrap_or(from);
        let own = st
            .raw_labels
            .get(from..to)
            .unwrap_or_default()
            .iter()
            .map(move |&(k, v, e)| {
                let text = &st.raw_text;
                (
                    text.get(k as usize..v as usize).unwrap_or_default(),
                    text.get(v as usize..e as usize).unwrap_or_default(),
                )
            });
        let member = (self.s.member != NO_MEMBER)
            .then(|| st.members.get(self.s.member as usize).copied())
            .flatten();
        own.chain(member)
    }

    /// A counter's or gauge's value in the unit (nanoseconds scaled to seconds); a
    /// histogram's count.
    pub fn value(&self) -> f64 {
        if self.fam.shape.ty == Type::Histogram {
            return self.count() as f64;
        }
        let w = self.fam.words.get(self.s.at).copied().unwrap_or(0);
        let v = if self.s.signed {
            w as i64 as f64
        } else {
            w as f64
        };
        scaled(v, self.fam.shape.scale)
    }

    /// A counter's or gauge's value as the integer it is stored as (before any scale).
    pub fn integer(&self) -> i128 {
        let w = self.fam.words.get(self.s.at).copied().unwrap_or(0);
        if self.s.signed {
            i128::from(w as i64)
        } else {
            i128::from(w)
        }
    }

    /// A histogram's bucket counts (not cumulative), one per [`bounds`](CollectedFamily::bounds)
    /// entry and one for `+Inf`; empty for counters and gauges.
    pub fn buckets(&self) -> impl Iterator<Item = u64> + 'a {
        let fam = self.fam;
        let words: &[u64] = if fam.shape.ty == Type::Histogram {
            let n = fam.shape.size as usize;
            fam.words.get(self.s.at..self.s.at + n).unwrap_or_default()
        } else {
            &[]
        };
        let last = words.len().saturating_sub(1);
        let mut bounds = fam.bounds.iter().map(|&(i, _)| i as usize).peekable();
        let mut acc = 0u64;
        words.iter().enumerate().filter_map(move |(i, &w)| {
            acc = acc.wrapping_add(w);
            // A bucket ends a group at its own bound, or at the end.
            let ends = i == last || bounds.next_if(|&b| b == i).is_some();
            ends.then(|| std::mem::take(&mut acc))
        })
    }

    /// A histogram's sample count (the sum of its buckets); 0 for others.
    pub fn count(&self) -> u64 {
        self.buckets().fold(0u64, u64::wrapping_add)
    }

    /// A histogram's sum of samples in the unit, where it keeps one.
    pub fn sum(&self) -> Option<f64> {
        if !self.s.has_sum {
            return None;
        }
        let n = self.fam.shape.size as usize;
        let w = self.fam.words.get(self.s.at + n).copied().unwrap_or(0);
        Some(scaled(w as f64, self.fam.shape.scale))
    }
}

/// `v × base^exponent` as the nearest double: one correctly rounded division or
/// multiplication by an exact power (10^k is exact in an `f64` up to k = 22).
fn scaled(v: f64, scale: Scale) -> f64 {
    let e = i32::from(scale.exponent);
    match scale.base {
        Base::Ten if e < 0 => v / 10f64.powi(-e),
        Base::Ten => v * 10f64.powi(e),
        Base::Two => v * 2f64.powi(e),
    }
}
