//! How a facade value, an `f64` in the metric's unit, becomes the integer a descriptor
//! describes: the statsfs unit, the scale of one integer step, and the factor between
//! them. The facade's units that statsfs has no code for (bits, rates, percent) are
//! counted as plain numbers and named in the description.

use statsfs_core::{Base, Scale, Unit};

/// The unit and scale of a metric's values, and how to get there from the facade's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scaling {
    /// The statsfs unit.
    pub unit: Unit,
    /// What one integer step is worth in `unit`.
    pub scale: Scale,
    /// The integer is `round(value * factor)`.
    pub factor: f64,
    /// The facade's unit when statsfs has no code for it (`"bits_per_second"`), else "".
    pub note: &'static str,
}

/// What a metric's values are, for [`scaling`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Values {
    /// Integer increments in the facade's unit, kept as they are.
    Counts,
    /// `f64` levels (gauges): nanoseconds for seconds unless told otherwise.
    Levels,
    /// `f64` samples (histograms): microseconds for seconds unless told otherwise, so
    /// that log buckets start at one microsecond.
    Samples,
}

/// The scaling of a metric described with `unit` (or, when undescribed, named with a
/// last word `seconds` or `bytes`, as Prometheus' naming conventions ask). A counter
/// keeps the facade's unit as its scale (milliseconds are `10^-3` seconds); a gauge or a
/// histogram gets one integer step of `base^exponent` of the unit when `exponent` is
/// given and allowed for the unit ([`Unit::exponent_allowed`]), else the default above.
pub(crate) fn scaling(
    unit: Option<metrics::Unit>,
    name: &str,
    exponent: Option<i16>,
    values: Values,
) -> Scaling {
    use metrics::Unit as M;
    // The statsfs unit and the facade unit's exponent of it.
    let (unit, natural, note) = match unit {
        Some(M::Seconds) => (Unit::Seconds, 0, ""),
        Some(M::Milliseconds) => (Unit::Seconds, -3, ""),
        Some(M::Microseconds) => (Unit::Seconds, -6, ""),
        Some(M::Nanoseconds) => (Unit::Seconds, -9, ""),
        Some(M::Bytes) => (Unit::Bytes, 0, ""),
        Some(M::Kibibytes) => (Unit::Bytes, 10, ""),
        Some(M::Mebibytes) => (Unit::Bytes, 20, ""),
        Some(M::Gibibytes) => (Unit::Bytes, 30, ""),
        Some(M::Tebibytes) => (Unit::Bytes, 40, ""),
        Some(M::Count) => (Unit::None, 0, ""),
        Some(other) => (Unit::None, 0, other.as_str()),
        None => match last_word(name) {
            "seconds" => (Unit::Seconds, 0, ""),
            "bytes" => (Unit::Bytes, 0, ""),
            _ => (Unit::None, 0, ""),
        },
    };
    let base = if unit == Unit::Bytes {
        Base::Two
    } else {
        Base::Ten
    };
    let default = match (unit, values) {
        (_, Values::Counts) => natural,
        (Unit::Seconds, Values::Levels) => -9,
        (Unit::Seconds, Values::Samples) => -6,
        _ => 0,
    };
    let exponent = match values {
        Values::Counts => natural,
        _ => exponent
            .filter(|&e| unit.exponent_allowed(e) && e.unsigned_abs() <= 40)
            .unwrap_or(default),
    };
    Scaling {
        unit,
        scale: Scale { base, exponent },
        factor: f64::from(base.radix()).powi(i32::from(natural - exponent)),
        note,
    }
}

/// The last `_` or `.` separated word of a name, ignoring a trailing `total`.
fn last_word(name: &str) -> &str {
    let name = name.strip_suffix("_total").unwrap_or(name);
    name.rsplit(['_', '.']).next().unwrap_or(name)
}

/// A facade value as an unsigned sample: rounded, negative and NaN as 0, past the range
/// as `u64::MAX`.
#[inline]
pub(crate) fn sample(v: f64, factor: f64) -> u64 {
    // `as` saturates, and maps NaN to 0.
    (v * factor).round() as u64
}

/// A facade value as a signed integer: rounded, NaN as 0, past the range saturated.
#[inline]
pub(crate) fn signed(v: f64, factor: f64) -> i64 {
    (v * factor).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::Unit as M;

    #[test]
    fn units_map_to_statsfs_units_and_scales() {
        let s = scaling(Some(M::Seconds), "x", None, Values::Samples);
        assert_eq!(
            (s.unit, s.scale, s.factor),
            (Unit::Seconds, Scale::MICRO, 1e6)
        );
        assert_eq!(sample(0.0123, s.factor), 12_300);
        let s = scaling(Some(M::Milliseconds), "x", None, Values::Levels);
        assert_eq!((s.unit, s.scale), (Unit::Seconds, Scale::NANO));
        assert_eq!(signed(1.5, s.factor), 1_500_000);
        let s = scaling(Some(M::Kibibytes), "x", None, Values::Levels);
        assert_eq!(
            (s.unit, s.scale.exponent, s.factor),
            (Unit::Bytes, 0, 1024.0)
        );
        let s = scaling(Some(M::BitsPerSecond), "x", None, Values::Levels);
        assert_eq!((s.unit, s.note), (Unit::None, "bits_per_second"));
        // Undescribed: the name's last word.
        assert_eq!(
            scaling(None, "request_duration_seconds", None, Values::Samples).unit,
            Unit::Seconds
        );
        assert_eq!(
            scaling(None, "rx.bytes_total", None, Values::Counts).unit,
            Unit::Bytes
        );
        assert_eq!(
            scaling(None, "requests_total", None, Values::Counts).unit,
            Unit::None
        );
        // A chosen exponent, when the unit allows it; else the default.
        let s = scaling(Some(M::Seconds), "x", Some(-3), Values::Samples);
        assert_eq!((s.scale.exponent, s.factor), (-3, 1000.0));
        assert_eq!(
            scaling(Some(M::Count), "x", Some(-3), Values::Samples)
                .scale
                .exponent,
            0
        );
        let s = scaling(Some(M::Bytes), "x", Some(10), Values::Samples);
        assert_eq!((s.scale, s.factor), (Scale::KIB, 1.0 / 1024.0));
        // Counters keep the facade's unit: no factor.
        let s = scaling(Some(M::Milliseconds), "x", Some(-9), Values::Counts);
        assert_eq!(
            (s.unit, s.scale, s.factor),
            (
                Unit::Seconds,
                Scale {
                    base: Base::Ten,
                    exponent: -3
                },
                1.0
            )
        );
        let s = scaling(Some(M::Mebibytes), "x", None, Values::Counts);
        assert_eq!((s.scale, s.factor), (Scale::MIB, 1.0));
    }

    #[test]
    fn samples_saturate_and_never_panic() {
        assert_eq!(sample(-1.0, 1.0), 0);
        assert_eq!(sample(f64::NAN, 1.0), 0);
        assert_eq!(sample(f64::INFINITY, 1.0), u64::MAX);
        assert_eq!(sample(2.5, 1.0), 3);
        assert_eq!(signed(f64::NEG_INFINITY, 1.0), i64::MIN);
        assert_eq!(signed(f64::NAN, 1e9), 0);
        assert_eq!(signed(-2.4, 1.0), -2);
    }
}
