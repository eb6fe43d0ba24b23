//! # statsfs
//!
//! Statistics for systems software, declared once. Annotate the structs that hold your
//! counters with `#[derive(Stats)]`; build a tree of [`Source`]s (a directory per VM,
//! per vCPU, per disk, ...) whose aggregates fold a value over every subordinate source;
//! read it as files (the `statsfs-vfs` crate), in bulk in the kernel's binary layout, or
//! as OpenMetrics.
//!
//! ```
//! use std::sync::Arc;
//! use statsfs::cell::{Counter, Gauge, LogHistogram};
//! use statsfs::{Source, Stats, ValueGroup};
//!
//! #[derive(Stats, Default)]
//! struct VcpuStat {
//!     /// Guest exits handled
//!     exits: Counter,
//!     /// Time spent handling exits
//!     #[stat(unit = seconds, exponent = -9)]
//!     exit_ns: LogHistogram<32>,
//!     /// Interrupts waiting
//!     pending_irqs: Gauge<u32>,
//! }
//!
//! let vm = Source::new("1234-5")?;
//! vm.add(ValueGroup::aggregates::<VcpuStat>())?;            // sums over every vCPU below
//! let mut vcpus = Vec::new();
//! for i in 0..2 {
//!     let stats = Arc::new(VcpuStat::default());
//!     let dir = Source::new(format!("vcpu{i}"))?;
//!     dir.add(stats.clone())?;
//!     vm.add_subordinate(&dir)?;
//!     vcpus.push(stats);
//! }
//! vcpus[0].exits.add_local(3);                // owner path: the vCPU's own thread
//! vcpus[1].exits.add_local(4);
//! assert_eq!(vm.get("exits")?.as_u64(), 7);
//! # Ok::<(), statsfs::Error>(())
//! ```
//!
//! See the crate's `docs/GUIDE.md` for how to model a subsystem, and [`Stats`] for every
//! attribute of the derive.
//!
//! # The crates behind the facade
//!
//! Data flows one way, from the declaration to the products that serve it; each product
//! is a crate of its own and a feature here, so a program compiles only what it serves:
//!
//! ```text
//! statsfs-derive   #[derive(Stats)] ──► statsfs-core: descriptors, cells, schemas, the tree,
//!                                        its read doors (read plan, walk)
//!                  statsfs-binary: the kernel's stats-fd layout, bulk views, mirrors
//!                  statsfs-text:   the catalogue, Prometheus text / OpenMetrics
//!    views:        statsfs-vfs (feature `vfs`): the FUSE mount
//!                  statsfs-http (feature `http`): /metrics, /schema
//!                  statsfs-region (feature `region`): shared memory, no system call
//!    sources:      statsfs-metrics (feature `metrics`): the `metrics` facade's metrics,
//!                  the tokio runtime's statistics (feature `tokio`)
//!    the tool:     statsfs-cli: the `statsfs` binary (`cargo install --path statsfs-cli`)
//! ```
#![deny(missing_docs)]

pub use statsfs_core::{
    cell, desc, family, registry, schema, tree, value, walk, Aggregation, Base, BlockSource,
    Change, Descriptor, Error, Kind, Place, PlanOptions, PlannedSource, PlannedValue, ReadPlan,
    Role, Scale, Schema, SchemaRef, Scope, Source, Storage, Subscription, Unit, Value, ValueGroup,
    ValueRef, ValueType, Visitor, WalkOptions,
};

/// One cell per value of a label enum, indexed by it: `stats.exits[ExitReason::Hlt]`
/// (see [`Stats`] and [`family`]).
pub use statsfs_core::family::Family;

/// A struct whose fields are statistics; derive it with `#[derive(Stats)]`.
///
/// The derive builds, at compile time, one static [`Descriptor`] per stat (a `const`
/// table: nothing is allocated and no code runs at start-up), a static [`Schema`] whose
/// address is its identity, and registers the schema with [`registry`] at link time.
///
/// # Fields
///
/// Every field is a stat, a nested stats struct (`#[stat(flatten)]`) or skipped
/// (`#[stat(skip)]`). A stat's type is a cell that can be read while it is written:
///
/// | type | value | kind |
/// |---|---|---|
/// | [`Counter`](cell::Counter), [`ShardedCounter`](cell::ShardedCounter) | u64 | cumulative |
/// | [`Gauge<T>`](cell::Gauge) | T (u8..u64, i8..i64) | instant |
/// | [`Peak<T>`](cell::Peak) | T | peak |
/// | [`Flag`](cell::Flag) | bool | instant |
/// | [`LinearHistogram<N, W>`](cell::LinearHistogram) | N u64 buckets of width W | linear histogram |
/// | [`LogHistogram<N>`](cell::LogHistogram) | N u64 buckets | log histogram |
/// | `LogHistogram<N, WithSum>` (and linear) | the buckets, and `<name>_sum`, the sum of the samples | log histogram, and a cumulative sum |
/// | `AtomicU8`..`AtomicU64`, `AtomicI8`..`AtomicI64` | the integer | cumulative, or `kind` |
/// | `AtomicBool` | bool | instant, or `kind` |
/// | [`Family<L, C>`](Family) | one cell `C` per value of the label enum `L` | `C`'s, each its own value |
/// | `[C; N]` with `#[stat(label = "cpu")]` | one cell `C` per index `0..N` | `C`'s, each its own value |
///
/// A histogram keeps the sum of its samples only when its type says so
/// ([`WithSum`](cell::WithSum)): the sum costs the shared path one more atomic add. Write
/// the histogram type in the field: through a type alias the derive cannot see the sum,
/// and refuses a histogram that keeps one.
///
/// # Families: stats with a dimension
///
/// Counters by operation, exits by reason, queues by index: a [`Family`] (indexed by an
/// enum that derives [`Label`]) or an array of cells (indexed by a number, with
/// `#[stat(label = "...")]`). Writing one is an array index and the cell's own write.
/// Each member is a value of its own, named `<field>_<value>` (`exits_hlt`): a file, a
/// descriptor of the binary layout, aggregated one by one; OpenMetrics shows the family as
/// one metric with a label (`kvm_vcpu_exits_total{reason="hlt"}`).
///
/// # Attributes
///
/// On the struct, `#[stats(...)]`:
///
/// * `name = "kvm_vcpu"`: the schema's name (default: the struct's name in snake case);
///   exporters prefix metric names with it.
/// * `crate = path`: where the statsfs API is, for crates that depend on `statsfs-core`
///   and `statsfs-derive` directly (`#[stats(crate = statsfs_core)]`) or re-export it.
///
/// On a field, `#[stat(...)]`:
///
/// * `rename = "name"`: the stat's name (default: the field's); must be a file name.
/// * `kind = cumulative | instant | peak`: for std atomics (other cells fix their kind).
/// * `unit = none | bytes | seconds | cycles | boolean`, `base = 10 | 2`,
///   `exponent = N`: the unit and scale (nanoseconds: `unit = seconds, exponent = -9`).
/// * `aggregate = sum | min | max | avg | count_zero | none`: how aggregates fold it
///   (default: `max` for peaks, else `sum`). A list, `aggregate = [sum, avg]`, folds it
///   several ways: the first keeps the stat's name, each other one is a value of the
///   aggregates named `<stat>_<aggregation>` (`live_keys_avg`).
/// * `clear` / `read_only`: whether writing 0 clears it (default: clearable unless
///   instant; an instant value cannot be made clearable).
/// * `hidden`: no file, still readable by name and aggregated.
/// * `names = ["RUNNABLE", "HALTED"]`: an enum-valued stat (an instant unsigned integer,
///   a state): its file shows the name of its value; not aggregated unless `aggregate`
///   says so (the `min`/`max` of a state is shown by name too).
/// * `label = "cpu"`: on an array of cells, the name of the label its index is.
/// * `flatten`: the field is itself `Stats`; its stats are embedded at the field's offset.
///   With `prefix = "rx_"` their names start with the prefix, so one struct can be
///   flattened more than once. Aggregates of the nested struct's own schema
///   (`ValueGroup::aggregates::<Nested>()`) fold that part of every instance of this one,
///   at any depth of flattening (and each part, if it is flattened twice).
/// * `skip`: the field is not a stat.
///
/// On the struct, `#[stats(no_new)]` leaves out the `const fn new()` the derive otherwise
/// writes (every stat at zero, usable in a `static`): for a struct with a `new` of its
/// own. A struct with a skipped field gets none (the derive cannot make that field), and
/// neither can a struct that flattens one (a compile error says to add `no_new`).
///
/// The field's doc comment (its first paragraph, on one line) is the description.
///
/// Every misuse is a compile error on the span that caused it, all at once; the
/// compile-fail tests in `tests/ui/` show each one.
///
/// ```
/// use statsfs::{Stats, cell::{Counter, Peak}, Kind};
/// use std::sync::atomic::AtomicI64;
///
/// #[derive(Stats)]
/// struct Generic {
///     /// Times the vCPU halted
///     halt_exits: Counter,
/// }
///
/// #[derive(Stats)]
/// #[stats(name = "vcpu")]
/// struct VcpuStat {
///     #[stat(flatten)]
///     generic: Generic,
///     /// Deepest exit queue seen
///     queue_depth: Peak<u32>,
///     /// Clock drift
///     #[stat(kind = instant, unit = seconds, exponent = -6)]
///     drift_us: AtomicI64,
/// }
///
/// let names: Vec<_> = VcpuStat::DESCRIPTORS.iter().map(|d| d.name).collect();
/// assert_eq!(names, ["halt_exits", "queue_depth", "drift_us"]);
/// assert_eq!(VcpuStat::DESCRIPTORS[2].kind, Kind::Instant);
/// assert_eq!(VcpuStat::SCHEMA.name(), "vcpu");
/// ```
///
/// A storage engine's per-table statistics, with every form:
///
/// ```
/// use statsfs::cell::{Counter, Gauge, LogHistogram, WithSum};
/// use statsfs::{Family, Label, Stats};
///
/// #[derive(Clone, Copy, Label)]
/// #[label(name = "op")]
/// enum Op { Get, Put, Delete }
///
/// #[derive(Stats)]
/// struct IoStat {
///     /// Bytes moved
///     #[stat(unit = bytes)]
///     bytes: Counter,
/// }
///
/// #[derive(Stats)]
/// #[stats(name = "table")]
/// struct TableStat {
///     /// Operations, by kind
///     ops: Family<Op, Counter>,
///     /// Time an operation took
///     #[stat(unit = seconds, exponent = -9)]
///     op_ns: LogHistogram<32, WithSum>,
///     /// Keys in the table
///     #[stat(aggregate = [sum, avg])]
///     live_keys: Gauge<u64>,
///     /// Pending compactions, by level
///     #[stat(label = "level")]
///     pending: [Gauge<u32>; 3],
///     #[stat(flatten, prefix = "read_")]
///     read: IoStat,
///     #[stat(flatten, prefix = "write_")]
///     write: IoStat,
/// }
///
/// static USERS: TableStat = TableStat::new();
/// USERS.ops[Op::Put].inc();
/// USERS.op_ns.record(1500);
/// USERS.pending[2].set(4);
///
/// let names: Vec<_> = TableStat::DESCRIPTORS.iter().map(|d| d.name).collect();
/// assert_eq!(names, [
///     "ops_get", "ops_put", "ops_delete", "op_ns", "op_ns_sum", "live_keys",
///     "live_keys_avg", "pending_0", "pending_1", "pending_2", "read_bytes", "write_bytes",
/// ]);
/// assert_eq!(TableStat::DESCRIPTORS[1].family(), Some(("ops", "op", "put")));
/// assert_eq!(USERS.op_ns.sum(), 1500);
/// ```
pub use statsfs_core::Stats;
pub use statsfs_derive::Stats;

/// A fieldless enum whose variants label the cells of a [`Family`]; derive it with
/// `#[derive(Label)]` (and `Clone, Copy`).
///
/// The label's name is the enum's name in snake case, or `#[label(name = "...")]` on
/// the enum; each variant's value is its name in snake case, or
/// `#[label(rename = "...")]` on the variant. A value ends a file name
/// (`exits_<value>`), so it has no `/` or control character; values are unique.
///
/// ```
/// use statsfs::cell::Counter;
/// use statsfs::family::Label as _;
/// use statsfs::{Family, Label};
///
/// #[derive(Clone, Copy, Label)]
/// #[label(name = "reason")]
/// enum ExitReason {
///     Hlt,
///     #[label(rename = "io_in")]
///     PortIn,
/// }
///
/// assert_eq!(ExitReason::NAME, "reason");
/// assert_eq!(ExitReason::VALUES, ["hlt", "io_in"]);
/// let exits: Family<ExitReason, Counter> = Family::new();
/// exits[ExitReason::PortIn].inc_local();
/// assert_eq!(exits[ExitReason::PortIn].get(), 1);
/// ```
pub use statsfs_core::family::Label;
pub use statsfs_derive::Label;

/// Registers a `static` of a `#[derive(Stats)]` struct as process-global statistics.
///
/// The static is registered at link time: with no wiring, it appears as a directory
/// (`name`, by default the static's name in lower case) beside the roots of every tree
/// the process mounts or serves over HTTP, as a kernel subsystem's statistics appear
/// under `/sys/kernel/stats` once it registers. [`registry::globals`] lists them.
///
/// ```
/// use statsfs::cell::Counter;
/// use statsfs::Stats;
///
/// #[derive(Stats)]
/// struct CacheStat {
///     /// Lookups that found the entry
///     hits: Counter,
///     /// Lookups that did not
///     misses: Counter,
/// }
///
/// #[statsfs::global(name = "cache")]
/// static CACHE: CacheStat = CacheStat::new();
///
/// CACHE.hits.inc();
/// let cache = statsfs::registry::globals().iter().find(|s| s.name() == "cache").unwrap();
/// assert_eq!(cache.get("hits")?.as_u64(), 1);
/// # Ok::<(), statsfs::Error>(())
/// ```
///
/// Arguments: `name = "..."` (a file name, checked at compile time) and
/// `crate = path` (where the statsfs API is, as for the derive). The static must not be
/// `mut`: its cells are atomics, read while they are written.
pub use statsfs_derive::global;

/// The kernel's binary stats layout (`KVM_GET_STATS_FD`): the codec, a tree's
/// [`BulkView`](binary::BulkView) and a stats file's [`Mirror`](binary::Mirror) into the
/// tree (`docs/BINARY.md`).
pub use statsfs_binary as binary;

/// The text formats the views share: the [`catalogue`](text::catalogue) of every stat
/// and the [`openmetrics`] exposition.
pub use statsfs_text as text;

/// The Prometheus text format and OpenMetrics: [`Encoder`](openmetrics::Encoder) turns
/// roots into what `/metrics` serves (`docs/OPENMETRICS.md`).
pub use statsfs_text::openmetrics;

/// The FUSE mount (feature `vfs`, on by default): the tree as files in KVM's debugfs
/// layout, with bulk binary files.
#[cfg(feature = "vfs")]
pub use statsfs_vfs as vfs;

/// `/metrics` and `/schema` over HTTP (feature `http`).
#[cfg(feature = "http")]
pub use statsfs_http as http;

/// The shared region (feature `region`): stats structs other processes read with no
/// system call (`docs/REGION.md`).
#[cfg(feature = "region")]
pub use statsfs_region as region;

/// Every crate's metrics in the tree (feature `metrics`): a backend of the `metrics`
/// facade, and with feature `tokio` the tokio runtime's statistics
/// (`docs/GUIDE.md#the-metrics-facade`).
#[cfg(feature = "metrics")]
pub use statsfs_metrics as metrics;

#[doc(hidden)]
pub use statsfs_core::__private;
