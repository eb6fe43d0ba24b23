//! The buckets of the facade's histograms, and which metrics get which.

use statsfs_core::{Kind, Unit};

/// The buckets of a histogram recorded through the facade: real buckets with fixed
/// bounds, counted at the time of the record, never a summary. A sample is first made an
/// integer number of steps of the metric's unit (one microsecond for seconds unless
/// [`exponent`](Self::exponent) says otherwise, one byte, one unit), then counted in a
/// bucket by the rule of every statsfs histogram ([`Kind::bucket_of`]).
///
/// ```
/// use statsfs_metrics::{Buckets, Matcher, Recorder};
/// # let root = statsfs_core::Source::new("m").unwrap();
/// let recorder = Recorder::builder()
///     // [0, 1 ms), [1 ms, 2 ms), ... [2^22 ms, ...): from 1 ms to 70 minutes in 24 buckets
///     .buckets(Matcher::Suffix("_seconds".into()), Buckets::log(24).exponent(-3))
///     // queue depths 0-9, 10-19, ... 90 and more
///     .buckets(Matcher::Full("queue_depth".into()), Buckets::linear(10, 10))
///     .build(&root)?;
/// # Ok::<(), statsfs_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buckets {
    kind: Kind,
    count: u16,
    exponent: Option<i16>,
}

/// The most buckets a facade histogram has (a log histogram of u64 samples has 65
/// distinct buckets; a linear one may want more).
pub const MAX_BUCKETS: u16 = 1024;

impl Buckets {
    /// `count` buckets (1 to [`MAX_BUCKETS`]): bucket 0 holds `[0, 1)` step, bucket i
    /// `[2^(i-1), 2^i)` steps, the last one everything above.
    pub const fn log(count: u16) -> Self {
        Buckets {
            kind: Kind::LogHistogram,
            count: clamp(count),
            exponent: None,
        }
    }

    /// `count` buckets (1 to [`MAX_BUCKETS`]) of `width` steps (at least 1): bucket i
    /// holds `[i·width, (i+1)·width)`, the last one everything above.
    pub const fn linear(width: u32, count: u16) -> Self {
        Buckets {
            kind: Kind::LinearHistogram {
                bucket_size: if width == 0 { 1 } else { width },
            },
            count: clamp(count),
            exponent: None,
        }
    }

    /// These buckets with one step worth `10^exponent` seconds (or `2^exponent` bytes,
    /// `10^exponent` units), where the unit allows it (seconds: `<= 0`; bytes and plain
    /// numbers: `>= 0`); otherwise the default step is kept.
    pub const fn exponent(mut self, exponent: i16) -> Self {
        self.exponent = Some(exponent);
        self
    }

    /// The default of a histogram in `unit`: log buckets from one microsecond to about
    /// 67 seconds (28), from one byte to 16 GiB (36), from 1 to 2^31 (33).
    pub(crate) fn default_for(unit: Unit) -> Self {
        Buckets::log(match unit {
            Unit::Seconds => 28,
            Unit::Bytes => 36,
            _ => 33,
        })
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    pub(crate) fn chosen_exponent(&self) -> Option<i16> {
        self.exponent
    }
}

const fn clamp(count: u16) -> u16 {
    if count == 0 {
        1
    } else if count > MAX_BUCKETS {
        MAX_BUCKETS
    } else {
        count
    }
}

/// Which metric names a [`Buckets`] choice applies to (the first that matches wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// This name.
    Full(String),
    /// Names that start with this.
    Prefix(String),
    /// Names that end with this.
    Suffix(String),
}

impl Matcher {
    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Matcher::Full(n) => name == n,
            Matcher::Prefix(p) => name.starts_with(p.as_str()),
            Matcher::Suffix(s) => name.ends_with(s.as_str()),
        }
    }
}
