//! The catalogue: every stat the binary can produce, before any instance exists, one
//! line a stat (`docs/MODEL.md#catalogue`). The mount serves it as `.schema`, the HTTP
//! endpoint as `/schema`, and the tool reads it back with [`parse`].

use std::fmt;

use statsfs_core::desc::{Descriptor, ValueType};
use statsfs_core::registry;

/// The permission bits of a value's file wherever values are files (the mount, the
/// catalogue's `mode=`), from the descriptor's `clearable`: 0644 when writing 0 clears
/// the value, else 0444.
///
/// ```
/// use statsfs_core::{Descriptor, Kind, ValueType};
/// use statsfs_text::catalogue::file_mode;
/// let exits = Descriptor::new("exits", ValueType::U64, Kind::Cumulative);
/// let depth = Descriptor::new("depth", ValueType::U32, Kind::Instant);
/// assert_eq!(file_mode(exits.clearable), 0o644);
/// assert_eq!(file_mode(depth.clearable), 0o444);
/// ```
pub const fn file_mode(clearable: bool) -> u32 {
    if clearable {
        0o644
    } else {
        0o444
    }
}

/// Writes the catalogue: every derived schema of the binary and each of its stats, one
/// line a stat, in [`registry::schemas`] order. The views serve it (the mount's `.schema` file,
/// HTTP `/schema`); the format is in `docs/MODEL.md#catalogue`:
///
/// ```text
/// schema kvm_vcpu statsfs_kvm::stats::VcpuStat 3
/// exits cumulative u64 1 unit=none scale=10^0 aggregate=sum mode=0644 hidden=false Guest exits
/// ```
pub fn write(out: &mut impl fmt::Write) -> fmt::Result {
    for s in registry::schemas() {
        writeln!(
            out,
            "schema {} {} {}",
            s.name(),
            s.type_name(),
            s.descriptors().len()
        )?;
        for d in s.descriptors() {
            write_stat_line(out, d)?;
        }
    }
    Ok(())
}

/// One stat's line of the catalogue; [`parse`] reads it back.
fn write_stat_line(out: &mut impl fmt::Write, d: &Descriptor) -> fmt::Result {
    writeln!(
        out,
        "{} {} {} {} unit={} scale={}^{} aggregate={} mode={:04o} hidden={} {}",
        d.name,
        d.kind.as_str(),
        d.ty,
        d.size,
        d.unit.as_str(),
        d.scale.base.radix(),
        d.scale.exponent,
        d.aggregation.as_str(),
        file_mode(d.clearable),
        d.hidden,
        d.doc.lines().next().unwrap_or("")
    )
}

/// One stat of a catalogue read back by [`parse`]: what [`write()`]
/// wrote for it. The attributes a reader only shows stay text (`kind`, `unit`, `scale`,
/// `aggregation`, `mode`); the type is parsed, since it says how to read the stored word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The schema's name (`kvm_vcpu`).
    pub schema: String,
    /// The stat's name.
    pub name: String,
    /// Its kind (`cumulative`, `log_histogram`, ...).
    pub kind: String,
    /// Its stored type.
    pub ty: ValueType,
    /// Its size in words.
    pub size: u16,
    /// Its unit (`seconds`, ...).
    pub unit: String,
    /// Its scale, `<base>^<exponent>`.
    pub scale: String,
    /// How aggregates fold it (`sum`, ...).
    pub aggregation: String,
    /// Its file mode (`0644`).
    pub mode: String,
    /// Whether it is hidden.
    pub hidden: bool,
    /// The first line of its description (may be empty).
    pub description: String,
}

/// Reads a catalogue as [`write()`] writes it (the mount's `.schema`, HTTP
/// `/schema`), for tools that read a tree from outside. The text is outside input: a
/// line that does not have the format is skipped, and nothing panics.
///
/// ```
/// use statsfs_text::catalogue::parse;
/// let text = "schema kvm_vcpu my::VcpuStat 1\n\
///             exits cumulative u64 1 unit=none scale=10^0 aggregate=sum mode=0644 hidden=false Guest exits\n";
/// let e = &parse(text)[0];
/// assert_eq!((e.schema.as_str(), e.name.as_str(), e.description.as_str()), ("kvm_vcpu", "exits", "Guest exits"));
/// ```
pub fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut schema = String::new();
    for line in text.lines() {
        // A stat line first: a stat may be named `schema`; a schema line (four fields)
        // never parses as one.
        if let Some(e) = parse_stat_line(&schema, line) {
            out.push(e);
        } else if let Some(rest) = line.strip_prefix("schema ") {
            schema = rest.split(' ').next().unwrap_or_default().to_owned();
        }
    }
    out
}

fn parse_stat_line(schema: &str, line: &str) -> Option<Entry> {
    let mut f = line.splitn(10, ' ');
    let mut next = || f.next();
    let (name, kind, ty, size) = (next()?, next()?, next()?, next()?);
    let attr = |field: Option<&str>, key: &str| field?.strip_prefix(key).map(str::to_owned);
    let unit = attr(next(), "unit=")?;
    let scale = attr(next(), "scale=")?;
    let aggregation = attr(next(), "aggregate=")?;
    let mode = attr(next(), "mode=")?;
    let hidden = attr(next(), "hidden=")?;
    let description = next().unwrap_or("").to_owned();
    Some(Entry {
        schema: schema.to_owned(),
        name: name.to_owned(),
        kind: kind.to_owned(),
        ty: ValueType::from_name(ty)?,
        size: size.parse().ok()?,
        unit,
        scale,
        aggregation,
        mode,
        hidden: hidden.parse().ok()?,
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use statsfs_core::desc::{Aggregation, Base, Kind, Scale, Storage, Unit};

    #[test]
    fn catalogue_lines_read_back() {
        let ds = [
            Descriptor::new("exits", ValueType::U64, Kind::Cumulative)
                .with_doc("Guest exits\nmore"),
            Descriptor::new("drift_us", ValueType::I64, Kind::Instant)
                .with_unit(
                    Unit::Seconds,
                    Scale {
                        base: Base::Ten,
                        exponent: -6,
                    },
                )
                .with_aggregation(Aggregation::Min)
                .with_hidden(true),
            Descriptor::new("lat", ValueType::U64, Kind::LogHistogram)
                .with_storage(Storage::Block, 32),
            // A stat may be named like the schema lines' keyword.
            Descriptor::new("schema", ValueType::U32, Kind::Instant),
        ];
        let mut text = String::from("schema kvm_vcpu my::VcpuStat 4\n");
        for d in &ds {
            write_stat_line(&mut text, d).unwrap();
        }
        let back = parse(&text);
        assert_eq!(back.len(), 4, "{text}");
        for (d, e) in ds.iter().zip(&back) {
            assert_eq!(e.schema, "kvm_vcpu");
            assert_eq!(e.name, d.name);
            assert_eq!(e.kind, d.kind.as_str());
            assert_eq!(e.ty, d.ty);
            assert_eq!(e.size, d.size);
            assert_eq!(e.unit, d.unit.as_str());
            assert_eq!(e.aggregation, d.aggregation.as_str());
            assert_eq!(e.mode, format!("{:04o}", file_mode(d.clearable)));
            assert_eq!(e.hidden, d.hidden);
            assert_eq!(e.description, d.doc.lines().next().unwrap_or(""));
        }
        assert_eq!(back[1].scale, "10^-6");
    }

    #[test]
    fn lines_that_are_not_the_format_are_skipped() {
        let text = "schema\n\nexits\nx cumulative f64 1 unit=none scale=10^0 aggregate=sum mode=0644 hidden=false\n\
                    x cumulative u64 many unit=none scale=10^0 aggregate=sum mode=0644 hidden=false\n\
                    x cumulative u64 1 unit=none scale=10^0 aggregate=sum mode=0644 hidden=maybe\n\
                    x cumulative u64 1 scale=10^0 unit=none aggregate=sum mode=0644 hidden=false\n\
                    \u{0}\u{fffd} \n";
        assert!(parse(text).is_empty());
    }
}
