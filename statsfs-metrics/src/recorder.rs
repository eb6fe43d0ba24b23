//! The `metrics::Recorder`: registration places each new series in the tree; the handles
//! it returns write the series' cells.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString};
use statsfs_core::schema::intern;
use statsfs_core::{Descriptor, Error, Kind, Role, Schema, Source, ValueGroup, ValueType};

use crate::buckets::{Buckets, Matcher};
use crate::index::{Index, Keyed};
use crate::names::{self, OVERFLOW_LABEL, OVERFLOW_SET, UNLABELLED};
use crate::series::{CounterCell, GaugeCell, HistogramCell};
use crate::stats::RecorderStat;
use crate::units::{scaling, Scaling, Values};

/// Bounds on what the facade may add to the tree, so that a library that puts a request
/// id in a label cannot exhaust the process.
///
/// Past `series_per_metric` label sets of one metric, or `series` in all, a new label set
/// is counted in the metric's overflow series (source `{overflow}`, label
/// `statsfs_overflow="true"`), so its counts are kept and the metric's total stays exact;
/// `facade_overflowed` counts the keys sent there. Past `metrics` names, a new name is
/// refused (its handles do nothing) and `facade_refused` counts each refused call. The
/// recorder remembers up to `2 × series` keys, refused and overflowed ones included, so
/// that their later calls take no lock; past that, a new key registers on every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Metric names (default 1,000).
    pub metrics: usize,
    /// Series over every metric: a name with one label set (default 10,000).
    pub series: usize,
    /// Label sets of one metric (default 2,000, as OpenTelemetry's SDKs).
    pub series_per_metric: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            metrics: 1_000,
            series: 10_000,
            series_per_metric: 2_000,
        }
    }
}

/// Builds a [`Recorder`]: its limits and the buckets of its histograms.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    limits: Limits,
    buckets: Vec<(Matcher, Buckets)>,
}

impl Builder {
    /// These limits instead of [`Limits::default`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Histograms whose name `matcher` accepts get `buckets` (the first match wins;
    /// unmatched histograms get the default of their unit, see [`Buckets`]).
    pub fn buckets(mut self, matcher: Matcher, buckets: Buckets) -> Self {
        self.buckets.push((matcher, buckets));
        self
    }

    /// The recorder, putting the facade's metrics in `root`: each metric name a value,
    /// each label set a subordinate source (`docs/GUIDE.md#the-metrics-facade`). Its own
    /// statistics ([`RecorderStat`]) are added to `root` at once.
    ///
    /// Errors: `root` already offers one of the recorder's own values
    /// ([`Error::Shadows`]).
    pub fn build(self, root: &Source) -> Result<Recorder, Error> {
        let recorder = self.detached(root);
        recorder.attach_stats()?;
        Ok(recorder)
    }

    /// The recorder, its statistics not yet in the tree.
    fn detached(self, root: &Source) -> Recorder {
        Recorder(Arc::new(Inner {
            root: root.clone(),
            index: Index::new(),
            state: Mutex::new(State::default()),
            stats: Arc::new(RecorderStat::default()),
            config: self,
        }))
    }

    /// [`build`](Self::build), then installs the recorder as the process's (the
    /// `metrics` crate's global recorder). Returns a handle to it. The tree changes only
    /// once the recorder is installed: when the process has one already, `root` is left
    /// as it was.
    pub fn install(self, root: &Source) -> Result<Recorder, InstallError> {
        let recorder = self.detached(root);
        metrics::set_global_recorder(recorder.clone()).map_err(|_| InstallError::AlreadySet)?;
        recorder.attach_stats().map_err(InstallError::Tree)?;
        Ok(recorder)
    }
}

/// Why [`Builder::install`] failed.
#[derive(Debug)]
pub enum InstallError {
    /// The recorder's source refused its statistics (it offers their names already): the
    /// recorder is installed all the same, without them.
    Tree(Error),
    /// The process has a global recorder already (the `metrics` crate takes one, once).
    AlreadySet,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Tree(e) => write!(f, "cannot add the recorder's statistics: {e}"),
            InstallError::AlreadySet => f.write_str(
                "a metrics recorder is installed already; install one recorder per process, \
                 before the first metric is used (or use metrics::with_local_recorder)",
            ),
        }
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InstallError::Tree(e) => Some(e),
            InstallError::AlreadySet => None,
        }
    }
}

/// A backend of the `metrics` facade that puts every counter, gauge and histogram
/// registered through it into a statsfs tree. Cheap to clone: clones share the tree.
///
/// ```
/// use statsfs_core::Source;
/// let root = Source::new("metrics")?;
/// let recorder = statsfs_metrics::Recorder::new(&root)?;
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("requests_total", "method" => "GET").increment(3);
///     metrics::counter!("requests_total", "method" => "PUT").increment(1);
/// });
/// assert_eq!(root.subordinate("method=GET").unwrap().get("requests_total")?.as_u64(), 3);
/// assert_eq!(root.get("requests_total")?.as_u64(), 4); // the total over label sets
/// # Ok::<(), statsfs_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Recorder(Arc<Inner>);

struct Inner {
    root: Source,
    /// Every registered key, to the handle of its series: looked up with no lock.
    index: Index<Arc<Registered>>,
    /// Registration: the only place that locks or allocates.
    state: Mutex<State>,
    stats: Arc<RecorderStat>,
    config: Builder,
}

/// A key the facade registered, and its series' cell (`None`: refused).
struct Registered {
    key: Key,
    handle: Option<Handle>,
}

impl Keyed for Arc<Registered> {
    fn hash(&self) -> u64 {
        self.key.get_hash()
    }
}

#[derive(Clone)]
enum Handle {
    Counter(Arc<CounterCell>),
    Gauge(Arc<GaugeCell>),
    Histogram(Arc<HistogramCell>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Counter,
    Gauge,
    Histogram,
}

impl Handle {
    fn ty(&self) -> Type {
        match self {
            Handle::Counter(_) => Type::Counter,
            Handle::Gauge(_) => Type::Gauge,
            Handle::Histogram(_) => Type::Histogram,
        }
    }

    fn group(&self, schema: &Arc<Schema>) -> ValueGroup {
        let schema = Arc::clone(schema);
        match self {
            Handle::Counter(c) => ValueGroup::block(schema, Arc::clone(c)),
            Handle::Gauge(c) => ValueGroup::block(schema, Arc::clone(c)),
            Handle::Histogram(c) => ValueGroup::block(schema, Arc::clone(c)),
        }
    }
}

#[derive(Default)]
struct State {
    /// `describe_*` calls, by facade name: used when the name is first registered.
    described: HashMap<String, (Option<metrics::Unit>, String)>,
    metrics: HashMap<String, Metric>,
    /// The sources of label sets, by name.
    sets: HashMap<String, Source>,
    series: usize,
}

struct Metric {
    ty: Type,
    schema: Arc<Schema>,
    scaling: Scaling,
    buckets: Option<Buckets>,
    /// Series by the name of their label set ("" for none).
    series: HashMap<String, Handle>,
    overflow: Option<Handle>,
    /// The unlabelled series holds the metric's name in the recorder's source.
    unlabelled_in_root: bool,
    /// The total over label sets holds it.
    total: bool,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recorder {
    /// A builder, to choose limits and histogram buckets.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A recorder with the default limits and buckets, putting the facade's metrics in
    /// `root` ([`Builder::build`]).
    pub fn new(root: &Source) -> Result<Recorder, Error> {
        Builder::default().build(root)
    }

    /// The source the facade's metrics are in.
    pub fn source(&self) -> &Source {
        &self.0.root
    }

    /// The recorder's own statistics.
    pub fn stats(&self) -> &RecorderStat {
        &self.0.stats
    }

    fn attach_stats(&self) -> Result<(), Error> {
        self.0.root.add(ValueGroup::block(
            RecorderStat::schema(),
            Arc::clone(&self.0.stats),
        ))
    }

    /// The handle of `key`'s series: from the index with loads only, else registered.
    #[inline]
    fn handle(&self, key: &Key, ty: Type) -> Option<Handle> {
        if let Some(r) = self.0.index.get(key.get_hash(), |r| r.key == *key) {
            return self.of_type(r.handle.as_ref(), ty);
        }
        self.register(key, ty)
    }

    /// `handle` if it is of type `ty`; else `None`, counted as a refusal.
    fn of_type(&self, handle: Option<&Handle>, ty: Type) -> Option<Handle> {
        match handle {
            Some(h) if h.ty() == ty => Some(h.clone()),
            _ => {
                self.0.stats.count_refusal();
                None
            }
        }
    }

    #[cold]
    fn register(&self, key: &Key, ty: Type) -> Option<Handle> {
        let inner = &*self.0;
        let mut st = lock(&inner.state);
        // Registered by another thread since the lookup?
        if let Some(r) = inner.index.get(key.get_hash(), |r| r.key == *key) {
            return self.of_type(r.handle.as_ref(), ty);
        }
        let handle = self.series(&mut st, key, ty);
        inner.stats.set_sizes(st.metrics.len(), st.series);
        // Every key is remembered, refused and overflowed ones too, so that its next
        // calls take no lock; while the index has room (past it they register again).
        let limits = inner.config.limits;
        if inner.index.len() < limits.series.saturating_mul(2).max(64) {
            inner.index.insert(Arc::new(Registered {
                key: key.to_retained(),
                handle: handle.clone(),
            }));
        }
        self.of_type(handle.as_ref(), ty)
    }

    /// The series of `key`, made if new: its own, or its metric's overflow series past
    /// a limit; `None` when refused.
    fn series(&self, st: &mut State, key: &Key, ty: Type) -> Option<Handle> {
        let inner = &*self.0;
        let State {
            described,
            metrics,
            sets,
            series,
        } = st;
        let new = !metrics.contains_key(key.name());
        if new {
            if metrics.len() >= inner.config.limits.metrics {
                return None;
            }
            let metric = self.metric(key.name(), ty, described.get(key.name()))?;
            metrics.insert(key.name().to_owned(), metric);
        }
        let metric = metrics.get_mut(key.name())?;
        if metric.ty != ty {
            return None;
        }
        let labels = names::canonical(key.labels().map(|l| (l.key(), l.value())));
        let set = if labels.is_empty() {
            String::new()
        } else {
            names::set_name(&labels)
        };
        if let Some(h) = metric.series.get(&set) {
            return Some(h.clone());
        }
        let limits = inner.config.limits;
        let got = if metric.series.len() >= limits.series_per_metric || *series >= limits.series {
            inner.stats.count_overflow();
            if let Some(h) = &metric.overflow {
                return Some(h.clone());
            }
            let labels = [(OVERFLOW_LABEL.to_owned(), "true".to_owned())];
            let handle = metric.cell();
            self.place(sets, metric, OVERFLOW_SET, &labels, &handle)
                .map(|()| metric.overflow = Some(handle.clone()))
                .map(|()| handle)
        } else {
            let handle = metric.cell();
            self.place(sets, metric, &set, &labels, &handle).map(|()| {
                metric.series.insert(set, handle.clone());
                *series += 1;
                handle
            })
        };
        match got {
            Ok(h) => Some(h),
            Err(_) => {
                // A name the tree refused takes no slot of the limit on names.
                if new {
                    metrics.remove(key.name());
                }
                None
            }
        }
    }

    /// A new metric: its scaling, buckets and runtime schema.
    fn metric(
        &self,
        name: &str,
        ty: Type,
        described: Option<&(Option<metrics::Unit>, String)>,
    ) -> Option<Metric> {
        let value = names::value_name(name)?;
        let (unit, doc) = described.map_or((None, ""), |(u, d)| (*u, d.as_str()));
        let buckets = (ty == Type::Histogram).then(|| {
            self.0
                .config
                .buckets
                .iter()
                .find(|(m, _)| m.matches(name))
                .map(|(_, b)| *b)
        });
        let values = match ty {
            Type::Counter => Values::Counts,
            Type::Gauge => Values::Levels,
            Type::Histogram => Values::Samples,
        };
        let chosen = buckets.flatten().and_then(|b| b.chosen_exponent());
        let scaling = scaling(unit, &value, chosen, values);
        let buckets = buckets.map(|b| b.unwrap_or_else(|| Buckets::default_for(scaling.unit)));
        let mut doc = doc.lines().next().unwrap_or("").to_owned();
        if !scaling.note.is_empty() {
            doc = format!("{doc} ({})", scaling.note.replace('_', " "));
        }
        let name = intern(&value);
        let doc = intern(doc.trim());
        let at = |d: Descriptor| d.with_unit(scaling.unit, scaling.scale).with_doc(doc);
        let descriptors = match (ty, buckets) {
            (Type::Counter, _) => vec![at(Descriptor::new(name, ValueType::U64, Kind::Cumulative))],
            (Type::Gauge, _) => vec![at(Descriptor::new(name, ValueType::I64, Kind::Instant))],
            (Type::Histogram, b) => {
                let b = b.unwrap_or_else(|| Buckets::default_for(scaling.unit));
                let n = b.count();
                vec![
                    at(Descriptor::new(name, ValueType::U64, b.kind()))
                        .with_storage(statsfs_core::Storage::Block, n),
                    at(Descriptor::new(
                        intern(&format!("{value}_sum")),
                        ValueType::U64,
                        Kind::Cumulative,
                    ))
                    .with_role(Role::HistogramSum),
                ]
            }
        };
        // The empty name: the facade's names are whole metric names.
        let schema = Schema::new_runtime_packed("", descriptors).ok()?;
        Some(Metric {
            ty,
            schema,
            scaling,
            buckets,
            series: HashMap::new(),
            overflow: None,
            unlabelled_in_root: false,
            total: false,
        })
    }

    /// Puts a new series in the tree: an unlabelled one in the recorder's source, a
    /// labelled one in its label set's source (made if new), with the metric's total over
    /// label sets in the recorder's source when no unlabelled series has the name there.
    fn place(
        &self,
        sets: &mut HashMap<String, Source>,
        metric: &mut Metric,
        set: &str,
        labels: &[(String, String)],
        handle: &Handle,
    ) -> Result<(), Error> {
        let root = &self.0.root;
        let group = handle.group(&metric.schema);
        if labels.is_empty() && !metric.total {
            root.add(group)?;
            metric.unlabelled_in_root = true;
            return Ok(());
        }
        let set = if labels.is_empty() { UNLABELLED } else { set };
        let source = match sets.get(set) {
            Some(s) => s.clone(),
            None => {
                let s = Source::new(set)?;
                for (k, v) in labels {
                    s.set_label(k.as_str(), v.as_str())?;
                }
                root.add_subordinate(&s)?;
                sets.insert(set.to_owned(), s.clone());
                s
            }
        };
        source.add(group)?;
        if !metric.total && !metric.unlabelled_in_root {
            // A name some other value of the source holds keeps it: no total then.
            metric.total = root
                .add(ValueGroup::aggregates_of(Arc::clone(&metric.schema)))
                .is_ok();
        }
        Ok(())
    }

    fn remember(&self, name: KeyName, unit: Option<metrics::Unit>, description: SharedString) {
        let mut st = lock(&self.0.state);
        let limit = self.0.config.limits.metrics;
        if st.described.len() < limit || st.described.contains_key(name.as_str()) {
            st.described
                .insert(name.as_str().to_owned(), (unit, description.into_owned()));
        }
    }
}

impl Metric {
    fn cell(&self) -> Handle {
        match self.ty {
            Type::Counter => Handle::Counter(Arc::new(CounterCell::default())),
            Type::Gauge => Handle::Gauge(Arc::new(GaugeCell::new(self.scaling.factor))),
            Type::Histogram => {
                let b = self
                    .buckets
                    .unwrap_or_else(|| Buckets::default_for(self.scaling.unit));
                Handle::Histogram(Arc::new(HistogramCell::new(
                    b.kind(),
                    usize::from(b.count()),
                    self.scaling.factor,
                )))
            }
        }
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("source", &self.0.root.path())
            .field("keys", &self.0.index.len())
            .finish()
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(
        &self,
        key: KeyName,
        unit: Option<metrics::Unit>,
        description: SharedString,
    ) {
        self.remember(key, unit, description)
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<metrics::Unit>, description: SharedString) {
        self.remember(key, unit, description)
    }

    fn describe_histogram(
        &self,
        key: KeyName,
        unit: Option<metrics::Unit>,
        description: SharedString,
    ) {
        self.remember(key, unit, description)
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match self.handle(key, Type::Counter) {
            Some(Handle::Counter(c)) => Counter::from_arc(c),
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match self.handle(key, Type::Gauge) {
            Some(Handle::Gauge(g)) => Gauge::from_arc(g),
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match self.handle(key, Type::Histogram) {
            Some(Handle::Histogram(h)) => Histogram::from_arc(h),
            _ => Histogram::noop(),
        }
    }
}
