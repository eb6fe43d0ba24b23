//! Prometheus and OpenMetrics exposition: the source tree as the text a Prometheus server
//! scrapes.
//!
//! An [`Encoder`] walks one or more roots with [`walk`](statsfs_core::walk()) and writes either
//! the Prometheus text format 0.0.4 ([`Format::Prometheus`], the default) or OpenMetrics
//! 1.0 ([`Format::OpenMetrics`]). The encoder keeps its buffers between scrapes: once it has seen a tree, encoding
//! it again allocates nothing per series.
//!
//! ```
//! use statsfs_text::openmetrics::{Encoder, Format};
//! use std::sync::Arc;
//! use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
//!
//! let schema = Schema::new_runtime("kvm_vcpu", vec![
//!     Descriptor::new("exits", ValueType::U64, Kind::Cumulative).with_doc("Guest exits"),
//! ])?;
//! let vm = Source::new("1234-5")?;
//! vm.set_label("vm", "1234-5")?;
//! vm.add(ValueGroup::aggregates_of(schema.clone()))?; // not exported: leaves only
//! let vcpu = Source::new("vcpu0")?;
//! vcpu.set_label("vcpu", "0")?;
//! vcpu.add(ValueGroup::block(schema, Arc::new(|o: &mut [u64]| { o[0] = 7; Ok(()) })))?;
//! vm.add_subordinate(&vcpu)?;
//!
//! let mut encoder = Encoder::new();
//! let text = std::str::from_utf8(encoder.encode(&[vm], Format::Prometheus)).unwrap();
//! assert_eq!(text, "\
//! ## HELP kvm_vcpu_exits_total Guest exits
//! ## TYPE kvm_vcpu_exits_total counter
//! kvm_vcpu_exits_total{path=\"1234-5/vcpu0\",vcpu=\"0\",vm=\"1234-5\"} 7
//! ");
//! # Ok::<(), statsfs_core::Error>(())
//! ```
//!
//! # Metric names
//!
//! A value's metric name is `[namespace_]<schema>_<stat>` (`[namespace_]<stat>` for a
//! runtime schema whose name is empty: its stat names are whole metric names, as the
//! `metrics` facade's are), every byte outside
//! `[a-zA-Z0-9_]` replaced by `_` (so no `:`, which Prometheus keeps for recording rules),
//! `_` put in front of a leading digit. Then, in this order:
//!
//! 1. a trailing `_total` is removed (it is added back for counters);
//! 2. for seconds, a trailing abbreviation that matches the scale is replaced by the base
//!    unit (`halt_ns` with exponent -9 becomes `halt_seconds`; `_us`/`_usec` for -6,
//!    `_ms`/`_msec` for -3, `_s`/`_sec`/`_secs` for 0); for bytes, `_b` (2^0), `_kib`/`_kb`
//!    (2^10), `_mib`/`_mb` (2^20) and `_gib`/`_gb` (2^30) likewise become `_bytes`;
//! 3. the unit is appended when the name does not end with it already: `_seconds`,
//!    `_bytes`, `_cycles` (none and boolean have no suffix); when the stat's own name has
//!    the unit as a word elsewhere, that word moves to the end, once (`bytes_read` becomes
//!    `_read_bytes`, not `_bytes_read_bytes`);
//! 4. counters get `_total` on their samples (and, in the 0.0.4 format, on their `# TYPE`
//!    and `# HELP` lines; OpenMetrics names the family without it).
//!
//! Two values whose names end up equal share one family when they agree on type, unit,
//! scale and bucket layout (their series are grouped together; the first description
//! wins). Otherwise the later one is left out of the output and counted by
//! [`Encoder::skipped`]: output that a server would reject is never written.
//!
//! # Labels
//!
//! Every series carries `path="<root>/<child>/..."` (the source's path from its root, as
//! [`Place::path`](statsfs_core::Place::path) gives it; the key is [`Options::path_label`]) and
//! then the source's labels in effect (`docs/MODEL.md#labels`: own labels first, then the ancestors',
//! nearest first). A source label whose key is the path label or `le` (which Prometheus
//! keeps for histogram buckets) is left out. Label values are escaped (`\` as `\\`, `"` as
//! `\"`, a newline as `\n`). Sibling sources should have distinct names, or their series
//! are indistinguishable.
//!
//! # Aggregates: leaves only
//!
//! Only simple values (those read from an instance or a block) are exported; aggregate
//! values are not, nor are revoked groups. Every leaf value appears exactly once, so
//! PromQL `sum(kvm_vcpu_exits_total)` (and `sum by (vm)`, `max`, `min`, `avg`,
//! `count(x == 0)`) computes what an aggregate file shows without double counting, and no
//! query has to know which series to filter out. Hidden sources, groups and values are
//! exported by default ([`Options::hidden`]): hiding is about files; a hidden leaf still
//! counts in its ancestors' aggregates, so leaving it out of the exposition would make the
//! PromQL sums disagree with the mount.
//!
//! # Types
//!
//! | kind | type |
//! |---|---|
//! | cumulative | `counter`, samples `<name>_total` |
//! | instant, peak | `gauge` |
//! | linear or log histogram | `histogram`: `<name>_bucket` with cumulative `le` buckets |
//!
//! # Units and scale
//!
//! The scale is applied: a value is written as `stored × base^exponent` in the base unit,
//! exactly (base 10 by moving the decimal point, `1500` ns is `0.0000015` seconds; base 2
//! with a positive exponent as an integer when it fits in 128 bits; anything else as the
//! nearest double). OpenMetrics output also declares the unit with `# UNIT`.
//!
//! # Histograms
//!
//! Samples are integers, so a bucket's inclusive upper bound (`le`) is the largest
//! integer it holds, scaled like a value: linear bucket N (width w) holds `[N·w, (N+1)·w)`
//! and gets `le` = `(N+1)·w − 1`; log bucket 0 holds `[0, 1)` (`le="0"`), bucket N holds
//! `[2^(N−1), 2^N)` (`le` = `2^N − 1`); the last bucket is `le="+Inf"`. Bucket counts are
//! made cumulative. Log buckets past 2^64 can hold no u64 sample and are folded into the
//! next bound. A histogram that keeps the sum of its samples (`WithSum`, described by a
//! `Role::HistogramSum` value right after it) gets `_count` and `_sum` (scaled like a
//! value); one without gets neither (OpenMetrics forbids `_count` without `_sum`), and its
//! `+Inf` bucket is the count.
//!
//! # Families
//!
//! The members of a dimensional family (`Descriptor::family`: `exits_hlt`, `exits_io`)
//! are one metric family named after the family (`kvm_vcpu_exits_total`), one series a
//! member, with the member's label after the source's (`reason="hlt"`). A member whose
//! label name the source's labels (or the path label) already use is left out and
//! counted in [`Encoder::skipped`].
//!
//! # Output order
//!
//! Families come in the order the walk first meets them, each with its metadata once and
//! then all its series, in walk order; OpenMetrics output ends with `# EOF`. [`subtree`]
//! reads that order back to keep the part of an exposition below one source.

mod collected;
mod subtree;
pub use collected::{Collected, CollectedFamily, CollectedSeries, MetricType};
pub use subtree::subtree;

use std::collections::HashMap;
use std::io::Write as _;

use statsfs_core::desc::{valid_label_name, Base, Descriptor, Kind, Role, Scale, Unit, ValueType};
use statsfs_core::schema::Schema;
use statsfs_core::tree::{walk, Place, Source, Visitor, WalkOptions};
use statsfs_core::value::ValueRef;

/// An exposition format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format 0.0.4.
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// How an [`Encoder`] names and labels series.
#[derive(Clone, Debug)]
pub struct Options {
    /// Prepended to every metric name with `_` (sanitized like the rest); `None` by
    /// default: the schema name already namespaces a metric.
    pub namespace: Option<String>,
    /// The key of the label that holds a source's path; `Some("path")` by default. `None`
    /// leaves it out: then series of sources with equal labels collide.
    pub path_label: Option<String>,
    /// Export hidden sources, groups and values too; `true` by default, so that every leaf
    /// that an aggregate counts is in the exposition (see the module documentation).
    pub hidden: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            path_label: Some("path".to_owned()),
            hidden: true,
        }
    }
}

/// Encodes source trees in the Prometheus or OpenMetrics text format, reusing its buffers
/// from one call to the next (see the [module documentation](self) for the rules).
///
/// Keep one `Encoder` per endpoint: after the first scrape of a tree, later scrapes of
/// the same shape allocate nothing per series (only the walk's per-source bookkeeping).
pub struct Encoder {
    state: State,
    out: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("options", &self.state.options)
            .field("families", &self.state.families.len())
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder with the default [`Options`].
    pub fn new() -> Self {
        Self::with_options(Options::default())
    }

    /// An encoder with `options`.
    pub fn with_options(options: Options) -> Self {
        let namespace = options.namespace.as_deref().map(|n| {
            let mut s = String::new();
            sanitize_into(&mut s, n);
            s.push('_');
            s
        });
        Encoder {
            state: State {
                namespace: namespace.unwrap_or_default(),
                options,
                schemas: Vec::new(),
                last_schema: usize::MAX,
                families: Vec::new(),
                names: HashMap::new(),
                order: Vec::new(),
                label_text: Vec::new(),
                label_ends: Vec::new(),
                raw: false,
                raw_text: String::new(),
                raw_labels: Vec::new(),
                raw_ends: Vec::new(),
                epoch: 0,
                retired_set: None,
                members: Vec::new(),
                last_histogram: None,
                series: 0,
                skipped: 0,
            },
            out: Vec::new(),
        }
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.state.options
    }

    /// Walks every root (and its subtree) and returns the exposition text, which stays
    /// valid until the next call. Never fails and never panics, whatever the tree holds.
    pub fn encode(&mut self, roots: &[Source], format: Format) -> &[u8] {
        self.walk(roots, false);
        let st = &mut self.state;
        self.out.clear();
        for &f in &st.order {
            let fam = &st.families[f as usize];
            fam.write_header(&mut self.out, format);
            fam.write_series(&mut self.out, &st.label_text, &st.label_ends, &st.members);
        }
        if format == Format::OpenMetrics {
            self.out.extend_from_slice(b"# EOF\n");
        }
        st.prune();
        &self.out
    }

    /// Walks every root as [`encode`](Self::encode) does and keeps the series, family
    /// by family in the same order, with the same names, labels and values, without
    /// writing text: what other encodings of the same series read (the push encoders:
    /// OTLP and Prometheus remote write), so that every view names a series alike.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
    /// use statsfs_text::openmetrics::{Encoder, MetricType};
    /// let schema = Schema::new_runtime("vcpu", vec![
    ///     Descriptor::new("exits", ValueType::U64, Kind::Cumulative),
    /// ])?;
    /// let vcpu = Source::new("vcpu0")?;
    /// vcpu.add(ValueGroup::block(schema, Arc::new(|o: &mut [u64]| { o[0] = 7; Ok(()) })))?;
    /// let mut encoder = Encoder::new();
    /// let collected = encoder.collect(&[vcpu]);
    /// let family = collected.families().next().unwrap();
    /// assert_eq!((family.name(), family.metric_type()), ("vcpu_exits", MetricType::Counter));
    /// let series = family.series().next().unwrap();
    /// assert_eq!(series.labels().collect::<Vec<_>>(), [("path", "vcpu0")]);
    /// assert_eq!(series.value(), 7.0);
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn collect(&mut self, roots: &[Source]) -> Collected<'_> {
        self.walk(roots, true);
        self.state.prune();
        Collected::new(&self.state)
    }

    /// One walk of `roots` into the state; `raw` keeps the label sets unescaped too.
    fn walk(&mut self, roots: &[Source], raw: bool) {
        let st = &mut self.state;
        st.epoch += 1;
        st.order.clear();
        st.label_text.clear();
        st.label_ends.clear();
        st.raw = raw;
        st.raw_text.clear();
        st.raw_labels.clear();
        st.raw_ends.clear();
        st.members.clear();
        st.series = 0;
        st.skipped = 0;
        let options = WalkOptions {
            hidden: st.options.hidden,
        };
        for root in roots {
            walk(root, options, st);
        }
    }

    /// Encodes like [`encode`](Self::encode) and writes the text to `w`.
    pub fn encode_to(
        &mut self,
        roots: &[Source],
        format: Format,
        w: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        w.write_all(self.encode(roots, format))
    }

    /// How many series (values, histograms counting once) the last encode wrote.
    pub fn series(&self) -> usize {
        self.state.series
    }

    /// How many values the last encode left out because their metric name clashed with
    /// another family of a different type, unit, scale or bucket layout.
    pub fn skipped(&self) -> usize {
        self.state.skipped
    }
}

/// The Prometheus type of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Counter,
    Gauge,
    Histogram,
}

/// What makes two descriptors belong to one family (besides the name).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shape {
    ty: Type,
    unit: Unit,
    scale: Scale,
    kind: Kind,
    size: u16,
}

impl Shape {
    fn of(d: &Descriptor) -> Shape {
        let ty = match d.kind {
            Kind::Cumulative => Type::Counter,
            Kind::Instant | Kind::Peak => Type::Gauge,
            Kind::LinearHistogram { .. } | Kind::LogHistogram => Type::Histogram,
        };
        Shape {
            ty,
            unit: d.unit,
            scale: d.scale,
            // Scalars of every kind mapping to one type are alike.
            kind: if ty == Type::Histogram {
                d.kind
            } else {
                Kind::Instant
            },
            size: if ty == Type::Histogram { d.size } else { 1 },
        }
    }
}

/// One metric family: its metadata, its bucket bounds, and the series of this encode.
struct Family {
    /// The family name (without `_total`).
    name: String,
    /// The sample name: `name_total`, `name` or `name_bucket`.
    sample: Vec<u8>,
    shape: Shape,
    help: String,
    /// Histograms: `(bucket index, end in le_text)` of each bucket that gets a bound; the
    /// bound text of entry k is `le_text[end of k-1 .. end of k]`. The last bucket is
    /// `+Inf` and not listed.
    bounds: Vec<(u16, u32)>,
    le_text: Vec<u8>,
    /// The series of this encode, in walk order, and the words they read.
    series: Vec<Series>,
    words: Vec<u64>,
    epoch: u64,
    /// The descriptor of the last histogram series pushed, which a sum that follows it
    /// belongs to.
    last_descriptor: usize,
}

/// One series of a family: which source's labels, and where its words start.
#[derive(Clone, Copy)]
struct Series {
    /// Index into the encode's label sets.
    labels: usize,
    /// Index of its first word in [`Family::words`].
    at: usize,
    signed: bool,
    /// A histogram whose sum follows its buckets in [`Family::words`].
    has_sum: bool,
    /// A family member's own label: its index in the encode's member labels, or
    /// [`NO_MEMBER`] (an index keeps a series three words long).
    member: u32,
}

/// A series of no family member.
const NO_MEMBER: u32 = u32::MAX;

impl Family {
    fn write_header(&self, out: &mut Vec<u8>, format: Format) {
        let unit = unit_suffix(self.shape.unit);
        let (ty, total) = match self.shape.ty {
            Type::Counter => ("counter", "_total"),
            Type::Gauge => ("gauge", ""),
            Type::Histogram => ("histogram", ""),
        };
        match format {
            Format::Prometheus => {
                out.extend_from_slice(b"# HELP ");
                out.extend_from_slice(self.name.as_bytes());
                out.extend_from_slice(total.as_bytes());
                out.push(b' ');
                escape_into(out, &self.help, false);
                out.extend_from_slice(b"\n# TYPE ");
                out.extend_from_slice(self.name.as_bytes());
                out.extend_from_slice(total.as_bytes());
                out.push(b' ');
                out.extend_from_slice(ty.as_bytes());
                out.push(b'\n');
            }
            Format::OpenMetrics => {
                out.extend_from_slice(b"# TYPE ");
                out.extend_from_slice(self.name.as_bytes());
                out.push(b' ');
                out.extend_from_slice(ty.as_bytes());
                out.push(b'\n');
                if let Some(unit) = unit {
                    out.extend_from_slice(b"# UNIT ");
                    out.extend_from_slice(self.name.as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(unit.as_bytes());
                    out.push(b'\n');
                }
                out.extend_from_slice(b"# HELP ");
                out.extend_from_slice(self.name.as_bytes());
                out.push(b' ');
                escape_into(out, &self.help, true);
                out.push(b'\n');
            }
        }
    }
}

/// Per schema seen: the family of each of its descriptors, resolved on first sight.
struct SchemaSlot {
    /// The schema's address and its descriptor table's, which together identify it.
    addr: usize,
    table: usize,
    /// Per descriptor: `(name address, family)`, or `None` before first sight; a family of
    /// `u32::MAX` marks a value that is skipped (its name clashes).
    entries: Vec<Option<(usize, u32)>>,
    epoch: u64,
}

const SKIP: u32 = u32::MAX;

struct State {
    options: Options,
    /// The sanitized namespace with its `_`, or empty.
    namespace: String,
    schemas: Vec<SchemaSlot>,
    last_schema: usize,
    families: Vec<Family>,
    /// Every family name and sample name taken, to the family that took it.
    names: HashMap<String, u32>,
    /// The families of this encode, in order of first appearance.
    order: Vec<u32>,
    /// The label sets of every source of this encode, rendered (`k="v",k="v"`, no
    /// braces) one after the other; set i ends at `label_ends[i]`.
    label_text: Vec<u8>,
    label_ends: Vec<usize>,
    /// With [`Encoder::collect`], the same label sets unescaped: keys and values one
    /// after the other in `raw_text`, each label `(key start, value start, value end)`,
    /// set i's labels ending at `raw_ends[i]`.
    raw: bool,
    raw_text: String,
    raw_labels: Vec<(u32, u32, u32)>,
    raw_ends: Vec<usize>,
    epoch: u64,
    /// The labels of the family members of this encode: `(name, value)`.
    members: Vec<(&'static str, &'static str)>,
    /// The encode and source whose retired label set was pushed last.
    retired_set: Option<(u64, u64)>,
    /// The family and series of the histogram value just read: a `HistogramSum` that
    /// follows it is its `_sum`.
    last_histogram: Option<(u32, usize)>,
    series: usize,
    skipped: usize,
}

/// The label that tells the series of what a source keeps of its retired subordinates
/// from the source's own.
pub const RETIRED_LABEL: &str = "retired";

impl State {
    /// Renders `place`'s label set (the path label, then the source's labels in effect)
    /// as the set of the series that follow; `retired` adds `retired="true"`, for what
    /// the source keeps of its retired subordinates.
    fn push_labels(&mut self, place: &Place<'_>, retired: bool) {
        let labels = &mut self.label_text;
        let (raw, raw_text, raw_labels) = (self.raw, &mut self.raw_text, &mut self.raw_labels);
        let mut first = true;
        let mut push = |k: &str, v: &str| {
            if !first {
                labels.push(b',');
            }
            first = false;
            labels.extend_from_slice(k.as_bytes());
            labels.extend_from_slice(b"=\"");
            escape_into(labels, v, true);
            labels.push(b'"');
            if raw {
                let at = |t: &String| u32::try_from(t.len()).unwrap_or(u32::MAX);
                let k_at = at(raw_text);
                raw_text.push_str(k);
                let v_at = at(raw_text);
                raw_text.push_str(v);
                raw_labels.push((k_at, v_at, at(raw_text)));
            }
        };
        let path_label = self.options.path_label.as_deref();
        if let Some(key) = path_label {
            push(key, place.path);
        }
        for (k, v) in place.labels {
            if Some(k.as_str()) == path_label
                || k == "le"
                || (retired && k == RETIRED_LABEL)
                || !valid_label_name(k)
            {
                continue;
            }
            push(k, v);
        }
        if retired {
            push(RETIRED_LABEL, "true");
        }
        self.label_ends.push(self.label_text.len());
        if self.raw {
            self.raw_ends.push(self.raw_labels.len());
        }
    }
}

impl Visitor for State {
    fn enter(&mut self, place: &Place<'_>) -> bool {
        self.last_histogram = None;
        self.push_labels(place, false);
        true
    }

    fn retained(&mut self, place: &Place<'_>, value: &ValueRef<'_>) {
        // The first retained value of a source starts its label set.
        let id = place.source.id();
        if self.retired_set != Some((self.epoch, id)) {
            self.retired_set = Some((self.epoch, id));
            self.push_labels(place, true);
        }
        self.value(place, value);
    }

    fn value(&mut self, place: &Place<'_>, value: &ValueRef<'_>) {
        if value.aggregate {
            return;
        }
        let d = value.descriptor;
        if d.role == Role::HistogramSum {
            // The `_sum` of the histogram just before it, in the same source and group.
            if let Some((f, i)) = self.last_histogram.take() {
                let prev = (d as *const Descriptor).wrapping_sub(1) as usize;
                let fam = &mut self.families[f as usize];
                // The sum goes after the buckets, which are the family's last words.
                if prev == fam.last_descriptor && i + 1 == fam.series.len() {
                    fam.words.push(value.words.first().copied().unwrap_or(0));
                    fam.series[i].has_sum = true;
                    return;
                }
            }
            self.skipped += 1;
            return;
        }
        self.last_histogram = None;
        // A family member's label must not be one the source already has.
        let mut member = NO_MEMBER;
        if !d.label.is_empty() {
            let label = d.label;
            if place.labels.iter().any(|(k, _)| k == label)
                || self.options.path_label.as_deref() == Some(label)
            {
                self.skipped += 1;
                return;
            }
            member = u32::try_from(self.members.len()).unwrap_or(NO_MEMBER);
            self.members.push((label, d.label_value()));
        }
        let Some(f) = self.family_of(value.schema, value.descriptor) else {
            self.skipped += 1;
            return;
        };
        let fam = &mut self.families[f as usize];
        if fam.epoch != self.epoch {
            fam.epoch = self.epoch;
            fam.series.clear();
            fam.words.clear();
            self.order.push(f);
        }
        self.series += 1;
        fam.series.push(Series {
            labels: self.label_ends.len().saturating_sub(1),
            at: fam.words.len(),
            signed: d.ty.is_signed(),
            has_sum: false,
            member,
        });
        if fam.shape.ty == Type::Histogram {
            fam.last_descriptor = d as *const Descriptor as usize;
            self.last_histogram = Some((f, fam.series.len() - 1));
            // Exactly `size` words, whatever the reader gave.
            let n = fam.shape.size as usize;
            let w = value.words;
            fam.words.extend_from_slice(&w[..w.len().min(n)]);
            fam.words
                .resize(fam.words.len() + n.saturating_sub(w.len()), 0);
        } else {
            let w = value.words.first().copied().unwrap_or(0);
            fam.words.push(if d.ty == ValueType::Bool {
                (w != 0) as u64
            } else {
                w
            });
        }
    }
}

impl Family {
    /// Writes the series of this encode; `label_text`/`label_ends` hold the label sets.
    fn write_series(
        &self,
        out: &mut Vec<u8>,
        label_text: &[u8],
        label_ends: &[usize],
        members: &[(&str, &str)],
    ) {
        for s in &self.series {
            let from = match s.labels {
                0 => 0,
                i => label_ends.get(i - 1).copied().unwrap_or(0),
            };
            let to = label_ends.get(s.labels).copied().unwrap_or(from);
            let source = label_text.get(from..to).unwrap_or_default();
            // The source's labels, then a family member's own.
            let member = members.get(s.member as usize);
            let labels = |out: &mut Vec<u8>| {
                out.extend_from_slice(source);
                if let Some(&(k, v)) = member {
                    if !source.is_empty() {
                        out.push(b',');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.extend_from_slice(b"=\"");
                    escape_into(out, v, true);
                    out.push(b'"');
                }
            };
            let has_labels = !source.is_empty() || member.is_some();
            if self.shape.ty != Type::Histogram {
                out.extend_from_slice(&self.sample);
                if has_labels {
                    out.push(b'{');
                    labels(out);
                    out.push(b'}');
                }
                out.push(b' ');
                let w = self.words.get(s.at).copied().unwrap_or(0);
                write_value(out, w, s.signed, self.shape.scale);
                out.push(b'\n');
                continue;
            }
            let n = self.shape.size as usize;
            let words = self.words.get(s.at..s.at + n).unwrap_or_default();
            let mut cum: u128 = 0;
            let mut start = 0usize;
            let mut next = 0usize;
            let last = words.len().saturating_sub(1);
            for (i, &w) in words.iter().enumerate() {
                cum += w as u128;
                let bound = if i == last {
                    None
                } else {
                    match self.bounds.get(next) {
                        Some(&(at, end)) if at as usize == i => {
                            next += 1;
                            let b = start;
                            start = end as usize;
                            Some(&self.le_text[b..end as usize])
                        }
                        // A bucket without a bound of its own: folded into the next.
                        _ => continue,
                    }
                };
                out.extend_from_slice(&self.sample);
                out.push(b'{');
                labels(out);
                if has_labels {
                    out.push(b',');
                }
                out.extend_from_slice(b"le=\"");
                out.extend_from_slice(bound.unwrap_or(b"+Inf"));
                out.extend_from_slice(b"\"} ");
                let mut buf = itoa::Buffer::new();
                out.extend_from_slice(buf.format(cum).as_bytes());
                out.push(b'\n');
            }
            // With a sum, the count and the sum (OpenMetrics: `_count` only beside `_sum`).
            if s.has_sum {
                let sum = self.words.get(s.at + n).copied().unwrap_or(0);
                for (suffix, value) in [("_count", None), ("_sum", Some(sum))] {
                    out.extend_from_slice(self.name.as_bytes());
                    out.extend_from_slice(suffix.as_bytes());
                    if has_labels {
                        out.push(b'{');
                        labels(out);
                        out.push(b'}');
                    }
                    out.push(b' ');
                    match value {
                        None => {
                            let mut buf = itoa::Buffer::new();
                            out.extend_from_slice(buf.format(cum).as_bytes());
                        }
                        Some(v) => write_value(out, v, false, self.shape.scale),
                    }
                    out.push(b'\n');
                }
            }
        }
    }
}

/// A scalar word as the exposition writes it: an integer, or scaled to the base unit.
fn write_value(out: &mut Vec<u8>, w: u64, signed: bool, scale: Scale) {
    if scale.exponent == 0 {
        let mut buf = itoa::Buffer::new();
        let text = if signed {
            buf.format(w as i64)
        } else {
            buf.format(w)
        };
        out.extend_from_slice(text.as_bytes());
    } else {
        let v = if signed { w as i64 as i128 } else { w as i128 };
        write_scaled(out, v, scale);
    }
}

impl State {
    /// The family of `d` (of `schema`), or `None` when it is skipped.
    fn family_of(&mut self, schema: &Schema, d: &Descriptor) -> Option<u32> {
        let addr = schema as *const Schema as usize;
        let ds = schema.descriptors();
        let table = ds.as_ptr() as usize;
        let slot = match self.schemas.get(self.last_schema) {
            Some(s) if s.addr == addr && s.table == table => self.last_schema,
            _ => {
                let found = self.schemas.iter().position(|s| {
                    s.addr == addr && s.table == table && s.entries.len() == ds.len()
                });
                let i = found.unwrap_or_else(|| {
                    self.schemas.push(SchemaSlot {
                        addr,
                        table,
                        entries: vec![None; ds.len()],
                        epoch: 0,
                    });
                    self.schemas.len() - 1
                });
                self.last_schema = i;
                i
            }
        };
        self.schemas[slot].epoch = self.epoch;
        let size = std::mem::size_of::<Descriptor>();
        let at = (d as *const Descriptor as usize).wrapping_sub(table) / size;
        if at >= ds.len() || !std::ptr::eq(&ds[at], d) {
            return None;
        }
        let name_addr = d.name.as_ptr() as usize;
        if let Some((n, f)) = self.schemas[slot].entries[at] {
            let fam_ok = f == SKIP
                || self
                    .families
                    .get(f as usize)
                    .is_some_and(|fam| fam.shape == Shape::of(d));
            if n == name_addr && fam_ok {
                return (f != SKIP).then_some(f);
            }
        }
        let f = self.resolve(schema, d);
        self.schemas[slot].entries[at] = Some((name_addr, f.unwrap_or(SKIP)));
        f
    }

    /// Finds or makes the family of a descriptor seen for the first time.
    fn resolve(&mut self, schema: &Schema, d: &Descriptor) -> Option<u32> {
        let name = metric_name(&self.namespace, schema.name(), d);
        let shape = Shape::of(d);
        if let Some(&f) = self.names.get(&name) {
            let fam = &self.families[f as usize];
            return (fam.name == name && fam.shape == shape).then_some(f);
        }
        let taken = |suffixes: &[&str]| {
            suffixes
                .iter()
                .map(|s| format!("{name}{s}"))
                .collect::<Vec<_>>()
        };
        let mut claimed = taken(match shape.ty {
            Type::Counter => &["", "_total", "_created"],
            Type::Gauge => &[""],
            Type::Histogram => &["", "_bucket", "_count", "_sum", "_created"],
        });
        // A family named like another's sample (`x_total` beside counter `x`) clashes too.
        if claimed.iter().any(|n| self.names.contains_key(n)) {
            return None;
        }
        for s in ["_total", "_created", "_bucket", "_count", "_sum"] {
            if let Some(stem) = name.strip_suffix(s) {
                if self.names.contains_key(stem) {
                    return None;
                }
            }
        }
        let f = u32::try_from(self.families.len())
            .ok()
            .filter(|&f| f != SKIP)?;
        let help = if d.doc.is_empty() {
            format!("statsfs value {} of schema {}", d.name, schema.name())
        } else {
            d.doc.to_owned()
        };
        let sample = match shape.ty {
            Type::Counter => format!("{name}_total"),
            Type::Gauge => name.clone(),
            Type::Histogram => format!("{name}_bucket"),
        };
        let (bounds, le_text) = bucket_bounds(d);
        for n in claimed.drain(..) {
            self.names.insert(n, f);
        }
        self.families.push(Family {
            name,
            sample: sample.into_bytes(),
            shape,
            help,
            bounds,
            le_text,
            series: Vec::new(),
            words: Vec::new(),
            epoch: 0,
            last_descriptor: 0,
        });
        Some(f)
    }

    /// Forgets schemas and families that the last encode did not meet (sources removed,
    /// runtime schemas dropped), so that a long-lived encoder does not grow without end.
    fn prune(&mut self) {
        let epoch = self.epoch;
        if self.schemas.iter().all(|s| s.epoch == epoch)
            && self.families.iter().all(|f| f.epoch == epoch)
        {
            return;
        }
        self.schemas.retain(|s| s.epoch == epoch);
        self.last_schema = usize::MAX;
        let mut remap = vec![SKIP; self.families.len()];
        let mut kept = 0u32;
        for (i, f) in self.families.iter().enumerate() {
            if f.epoch == epoch {
                remap[i] = kept;
                kept += 1;
            }
        }
        self.families.retain(|f| f.epoch == epoch);
        self.names.retain(|_, f| {
            *f = remap[*f as usize];
            *f != SKIP
        });
        for s in &mut self.schemas {
            for e in s.entries.iter_mut().flatten() {
                if e.1 != SKIP {
                    e.1 = remap[e.1 as usize];
                }
            }
            // Entries whose family is gone are resolved again on next sight.
            for e in s.entries.iter_mut() {
                if matches!(e, Some((_, SKIP))) {
                    *e = None;
                }
            }
        }
        for o in &mut self.order {
            *o = remap[*o as usize];
        }
    }
}

/// The unit's metric name suffix and `# UNIT` value, if it has one.
fn unit_suffix(unit: Unit) -> Option<&'static str> {
    match unit {
        Unit::Bytes => Some("bytes"),
        Unit::Seconds => Some("seconds"),
        Unit::Cycles => Some("cycles"),
        Unit::None | Unit::Boolean => None,
    }
}

/// The family name of `d` in `schema` (see the module documentation).
fn metric_name(namespace: &str, schema: &str, d: &Descriptor) -> String {
    // A family member is named after its family; its label value is a label.
    let stat = d.family().map_or(d.name, |(family, _, _)| family);
    let mut name = String::with_capacity(namespace.len() + schema.len() + stat.len() + 16);
    name.push_str(namespace);
    // A schema without a name adds nothing: its value names are whole metric names (the
    // `metrics` facade's, whose names their authors chose).
    if !schema.is_empty() {
        sanitize_into(&mut name, schema);
        name.push('_');
    }
    let mut stat_start = name.len();
    sanitize_into(&mut name, stat);
    if name.as_bytes()[0].is_ascii_digit() {
        name.insert(0, '_');
        stat_start += 1;
    }
    if name.len() > "_total".len() && name.ends_with("_total") {
        name.truncate(name.len() - "_total".len());
    }
    let Some(unit) = unit_suffix(d.unit) else {
        return name;
    };
    let abbreviations: &[&str] = match (d.unit, d.scale.base, d.scale.exponent) {
        (Unit::Seconds, Base::Ten, -9) => &["_ns", "_nsec", "_nanoseconds"],
        (Unit::Seconds, Base::Ten, -6) => &["_us", "_usec", "_microseconds"],
        (Unit::Seconds, Base::Ten, -3) => &["_ms", "_msec", "_milliseconds"],
        (Unit::Seconds, _, 0) => &["_s", "_sec", "_secs"],
        (Unit::Bytes, _, 0) => &["_b"],
        (Unit::Bytes, Base::Two, 10) => &["_kib", "_kb", "_kibibytes"],
        (Unit::Bytes, Base::Two, 20) => &["_mib", "_mb", "_mebibytes"],
        (Unit::Bytes, Base::Two, 30) => &["_gib", "_gb", "_gibibytes"],
        _ => &[],
    };
    for a in abbreviations {
        if name.len() > a.len() && name.ends_with(a) {
            name.truncate(name.len() - a.len());
            break;
        }
    }
    if name.ends_with(unit) && name[..name.len() - unit.len()].ends_with('_') {
        return name;
    }
    // The unit named inside the stat's name (`bytes_read`): moved to the end, once
    // (`read_bytes`), not written twice (`bytes_read_bytes`).
    let stat_start = stat_start.min(name.len());
    if let Some(at) = component(&name[stat_start..], unit) {
        let at = stat_start + at;
        let end = (at + unit.len() + 1).min(name.len());
        // The component and the `_` after it (or before it, at the end).
        if end < name.len() || at == stat_start {
            name.replace_range(at..end, "");
        }
    }
    if !name.ends_with('_') {
        name.push('_');
    }
    name.push_str(unit);
    name
}

/// Where `word` is a whole `_`-separated component of `name` (its first byte), if it is
/// one that is not the last.
fn component(name: &str, word: &str) -> Option<usize> {
    let mut at = 0;
    for part in name.split('_') {
        let next = at + part.len() + 1;
        if part == word && next <= name.len() {
            return Some(at);
        }
        at = next;
    }
    None
}

/// Appends `s` with every character outside `[a-zA-Z0-9_]` as `_`.
fn sanitize_into(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

/// Appends `s` escaped: `\` as `\\`, a newline as `\n`, and with `quote` `"` as `\"`.
fn escape_into(out: &mut Vec<u8>, s: &str, quote: bool) {
    let b = s.as_bytes();
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'"' if quote => b"\\\"",
            _ => continue,
        };
        out.extend_from_slice(&b[from..i]);
        out.extend_from_slice(esc);
        from = i + 1;
    }
    out.extend_from_slice(&b[from..]);
}

/// The bounds of a histogram's buckets (see the module documentation).
fn bucket_bounds(d: &Descriptor) -> (Vec<(u16, u32)>, Vec<u8>) {
    let mut bounds = Vec::new();
    let mut text = Vec::new();
    let n = d.size;
    for i in 0..n.saturating_sub(1) {
        let upper: Option<u128> = match d.kind {
            Kind::LinearHistogram { bucket_size } => {
                Some((i as u128 + 1) * bucket_size as u128 - 1)
            }
            Kind::LogHistogram if i <= 64 => Some((1u128 << i) - 1),
            _ => None,
        };
        if let Some(upper) = upper {
            write_scaled(&mut text, upper as i128, d.scale);
            if let Ok(end) = u32::try_from(text.len()) {
                bounds.push((i, end));
            }
        }
    }
    (bounds, text)
}

/// Appends `v × base^exponent`, exactly where it can (see the module documentation).
fn write_scaled(out: &mut Vec<u8>, v: i128, scale: Scale) {
    let e = scale.exponent;
    if e == 0 || v == 0 {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        return;
    }
    match scale.base {
        Base::Ten if e < 0 => {
            let mut buf = itoa::Buffer::new();
            let digits = buf.format(v.unsigned_abs()).as_bytes();
            let k = e.unsigned_abs() as usize;
            // Trailing zeros of the fraction are dropped.
            let (int, frac) = if digits.len() > k {
                digits.split_at(digits.len() - k)
            } else {
                (&b"0"[..], digits)
            };
            let zeros = k - frac.len();
            let frac_len = frac.iter().rposition(|&c| c != b'0').map_or(0, |p| p + 1);
            if v < 0 {
                out.push(b'-');
            }
            out.extend_from_slice(int);
            if frac_len > 0 {
                out.push(b'.');
                out.extend(std::iter::repeat_n(b'0', zeros));
                out.extend_from_slice(&frac[..frac_len]);
            }
        }
        Base::Ten => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            out.push(b'e');
            out.extend_from_slice(itoa::Buffer::new().format(e).as_bytes());
        }
        Base::Two if e > 0 && (e as u32) < 128 && v.unsigned_abs().leading_zeros() > e as u32 => {
            out.extend_from_slice(itoa::Buffer::new().format(v << e).as_bytes());
        }
        Base::Two => {
            let x = v as f64 * 2f64.powi(e as i32);
            if x.is_infinite() {
                out.extend_from_slice(if x > 0.0 { b"+Inf" } else { b"-Inf" });
            } else {
                // Writing to a Vec cannot fail.
                let _ = write!(out, "{x:e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaled(v: i128, base: Base, exponent: i16) -> String {
        let mut out = Vec::new();
        write_scaled(&mut out, v, Scale { base, exponent });
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn scaling_is_exact() {
        assert_eq!(scaled(1500, Base::Ten, -9), "0.0000015");
        assert_eq!(scaled(-1500, Base::Ten, -9), "-0.0000015");
        assert_eq!(scaled(2_000_000_000, Base::Ten, -9), "2");
        assert_eq!(scaled(2_500_000_001, Base::Ten, -9), "2.500000001");
        assert_eq!(scaled(999, Base::Ten, -3), "0.999");
        assert_eq!(scaled(7, Base::Ten, 3), "7e3");
        assert_eq!(scaled(3, Base::Two, 20), "3145728");
        assert_eq!(scaled(1, Base::Two, -1), "5e-1");
        assert_eq!(scaled(u64::MAX as i128, Base::Two, 30000), "+Inf");
        assert_eq!(scaled(0, Base::Two, 30000), "0");
        assert_eq!(
            scaled(i64::MIN as i128, Base::Ten, 0),
            "-9223372036854775808"
        );
    }

    #[test]
    fn names_follow_the_rules() {
        use statsfs_core::desc::{Kind, ValueType};
        let d = |n| Descriptor::new(n, ValueType::U64, Kind::Cumulative);
        assert_eq!(metric_name("", "kvm_vcpu", &d("exits")), "kvm_vcpu_exits");
        assert_eq!(metric_name("", "kvm", &d("exits_total")), "kvm_exits");
        assert_eq!(
            metric_name(
                "",
                "kvm",
                &d("halt_ns").with_unit(Unit::Seconds, Scale::NANO)
            ),
            "kvm_halt_seconds"
        );
        assert_eq!(
            metric_name("", "kvm", &d("io_bytes").with_unit(Unit::Bytes, Scale::ONE)),
            "kvm_io_bytes"
        );
        assert_eq!(
            metric_name("", "kvm", &d("mem").with_unit(Unit::Bytes, Scale::MIB)),
            "kvm_mem_bytes"
        );
        // The unit inside the name moves to the end, once.
        for (stat, want) in [
            ("bytes_read", "db_read_bytes"),
            ("rx_bytes_total", "db_rx_bytes"),
            ("bytes_in", "db_in_bytes"),
            ("read_bytes", "db_read_bytes"),
            ("bytes", "db_bytes"),
        ] {
            let got = metric_name("", "db", &d(stat).with_unit(Unit::Bytes, Scale::ONE));
            assert_eq!(got, want, "{stat}");
        }
        assert_eq!(
            metric_name(
                "",
                "db",
                &d("seconds_waited").with_unit(Unit::Seconds, Scale::ONE)
            ),
            "db_waited_seconds"
        );
        // Only the stat's own name is looked into, never the schema's.
        assert_eq!(
            metric_name(
                "",
                "bytes",
                &d("x_total").with_unit(Unit::Bytes, Scale::ONE)
            ),
            "bytes_x_bytes"
        );
        assert_eq!(metric_name("ns_", "9p.fs", &d("a-b:c")), "ns_9p_fs_a_b_c");
        assert_eq!(metric_name("", "9p", &d("x")), "_9p_x");
        assert_eq!(metric_name("", "s", &d("ünï")), "s__n_");
        // A schema without a name adds no prefix (the `metrics` facade's names).
        assert_eq!(
            metric_name("", "", &d("http_requests_total")),
            "http_requests"
        );
        assert_eq!(
            metric_name("app_", "", &d("http.requests")),
            "app_http_requests"
        );
        assert_eq!(metric_name("", "", &d("5xx")), "_5xx");
        assert_eq!(
            metric_name(
                "",
                "",
                &d("wait_seconds").with_unit(Unit::Seconds, Scale::MICRO)
            ),
            "wait_seconds"
        );
    }

    #[test]
    fn escaping() {
        let mut out = Vec::new();
        escape_into(&mut out, "a\\b\"c\nd", true);
        assert_eq!(out, b"a\\\\b\\\"c\\nd");
        out.clear();
        escape_into(&mut out, "a\\b\"c\nd", false);
        assert_eq!(out, b"a\\\\b\"c\\nd");
    }
}
