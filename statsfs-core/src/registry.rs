//! What the binary declares, collected at link time with `inventory`: every derived
//! schema (the catalogue of every stat the binary can produce, before any instance
//! exists) and the process-global statistics (`#[statsfs::global]` statics), which every
//! mounted or served tree shows beside its own roots.

use std::fmt;
use std::sync::OnceLock;

use crate::desc::{Descriptor, ValueType};
use crate::schema::Schema;
use crate::tree::{Source, ValueGroup};

/// One derived schema's entry in the link-time registry; `#[derive(Stats)]` submits one
/// per struct.
#[derive(Debug)]
pub struct Registration(pub &'static Schema);

inventory::collect!(Registration);

/// Every schema derived in this binary (all linked crates), ordered by Rust type path,
/// then name: the same order on every run.
///
/// ```
/// for schema in statsfs_core::registry::schemas() {
///     println!("{} ({} stats)", schema.type_name(), schema.descriptors().len());
/// }
/// ```
pub fn schemas() -> Vec<&'static Schema> {
    let mut all: Vec<&'static Schema> = inventory::iter::<Registration>
        .into_iter()
        .map(|r| r.0)
        .collect();
    all.sort_by(|a, b| (a.type_name(), a.name()).cmp(&(b.type_name(), b.name())));
    all.dedup_by(|a, b| core::ptr::eq(*a, *b));
    all
}

/// Writes the catalogue: every derived schema of the binary and each of its stats, one
/// line a stat, in [`schemas`] order. The views serve it (the mount's `.schema` file,
/// HTTP `/schema`); the format is in `docs/MODEL.md#catalogue`:
///
/// ```text
/// schema kvm_vcpu statsfs_kvm::stats::VcpuStat 3
/// exits cumulative u64 1 unit=none scale=10^0 aggregate=sum mode=0644 hidden=false Guest exits
/// ```
pub fn write_catalogue(out: &mut impl fmt::Write) -> fmt::Result {
    for s in schemas() {
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

/// One stat's line of the catalogue; [`parse_catalogue`] reads it back.
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
        d.mode(),
        d.hidden,
        d.doc.lines().next().unwrap_or("")
    )
}

/// One stat of a catalogue read back by [`parse_catalogue`]: what [`write_catalogue`]
/// wrote for it. The attributes a reader only shows stay text (`kind`, `unit`, `scale`,
/// `aggregation`, `mode`); the type is parsed, since it says how to read the stored word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
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

/// Reads a catalogue as [`write_catalogue`] writes it (the mount's `.schema`, HTTP
/// `/schema`), for tools that read a tree from outside. The text is outside input: a
/// line that does not have the format is skipped, and nothing panics.
///
/// ```
/// use statsfs_core::registry::parse_catalogue;
/// let text = "schema kvm_vcpu my::VcpuStat 1\n\
///             exits cumulative u64 1 unit=none scale=10^0 aggregate=sum mode=0644 hidden=false Guest exits\n";
/// let e = &parse_catalogue(text)[0];
/// assert_eq!((e.schema.as_str(), e.name.as_str(), e.description.as_str()), ("kvm_vcpu", "exits", "Guest exits"));
/// ```
pub fn parse_catalogue(text: &str) -> Vec<CatalogueEntry> {
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

fn parse_stat_line(schema: &str, line: &str) -> Option<CatalogueEntry> {
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
    Some(CatalogueEntry {
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

/// A process-global statistics struct, registered at link time by
/// `#[statsfs::global]` on a `static`.
pub struct Global {
    name: &'static str,
    group: fn() -> ValueGroup,
}

impl Global {
    /// A global named `name` (a file name) whose values `group` binds.
    pub const fn new(name: &'static str, group: fn() -> ValueGroup) -> Self {
        Global { name, group }
    }
}

inventory::collect!(Global);

/// The process-global sources: one per name registered with `#[statsfs::global]` (the
/// groups of globals that share a name go into one source), ordered by name, built once.
/// The mount and the HTTP endpoint show them beside the roots they are given.
pub fn globals() -> &'static [Source] {
    static GLOBALS: OnceLock<Vec<Source>> = OnceLock::new();
    GLOBALS.get_or_init(|| {
        let mut all: Vec<&Global> = inventory::iter::<Global>.into_iter().collect();
        all.sort_by_key(|g| g.name);
        let mut sources: Vec<Source> = Vec::new();
        for g in all {
            let source = match sources.last() {
                Some(s) if s.name() == g.name => s.clone(),
                _ => match Source::new(g.name) {
                    Ok(s) => {
                        sources.push(s.clone());
                        s
                    }
                    // The attribute checks the name at compile time.
                    Err(_) => continue,
                },
            };
            // The same static registered twice is one group.
            let _ = source.add((g.group)());
        }
        sources
    })
}

/// The roots a view shows: `roots`, then every [`globals`] source whose name no root
/// has.
pub fn with_globals(roots: &[Source]) -> Vec<Source> {
    let mut all = roots.to_vec();
    for g in globals() {
        if !all.iter().any(|r| r.name() == g.name()) {
            all.push(g.clone());
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::{Aggregation, Kind, Scale, Storage, Unit};

    #[test]
    fn catalogue_lines_read_back() {
        let ds = [
            Descriptor::new("exits", ValueType::U64, Kind::Cumulative)
                .with_doc("Guest exits\nmore"),
            Descriptor::new("drift_us", ValueType::I64, Kind::Instant)
                .with_unit(
                    Unit::Seconds,
                    Scale {
                        base: crate::Base::Ten,
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
        let back = parse_catalogue(&text);
        assert_eq!(back.len(), 4, "{text}");
        for (d, e) in ds.iter().zip(&back) {
            assert_eq!(e.schema, "kvm_vcpu");
            assert_eq!(e.name, d.name);
            assert_eq!(e.kind, d.kind.as_str());
            assert_eq!(e.ty, d.ty);
            assert_eq!(e.size, d.size);
            assert_eq!(e.unit, d.unit.as_str());
            assert_eq!(e.aggregation, d.aggregation.as_str());
            assert_eq!(e.mode, format!("{:04o}", d.mode()));
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
        assert!(parse_catalogue(text).is_empty());
    }
}
