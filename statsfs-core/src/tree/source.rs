//! Sources: the directories of the tree, with their value groups and subordinates.
//!
//! # Concurrency
//!
//! Writers of values never touch a source: they write their own cells. A source's
//! structure (groups, subordinates, labels, flags) sits behind one read-write lock per
//! source. Readers take read locks top-down (a source, then its subordinates) and hold
//! them while they read the instances, so an instance is never read after a `revoke` or a
//! removal has returned; structural changes take one source's write lock at a time (plus
//! one process-wide mutex that puts changes of membership in one order, see
//! `aggregate::AggregateCache`), so readers and writers cannot deadlock. A [`Source`] is
//! a reference-counted handle: it lives while its parent, a user or an open file holds
//! it.
//!
//! # Cost of a change
//!
//! Adding, removing and finding a subordinate cost the same whatever the number of
//! siblings (`children.rs`), and a change updates the aggregates above it by the members
//! it adds or removes, never by collecting a subtree again: a change costs O(depth ×
//! the changed subtree's groups), a read after a change what any read costs.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use super::aggregate::{self, Delta, Fold, Member, Members};
use super::children::{Child, Children};
use super::group::{same_schema, Binding, Group, ValueGroup};
use crate::desc::{has_control, valid_label_name, valid_name, Descriptor};
use crate::schema::{Schema, SchemaRef};
use crate::value::{Value, ValueRef};
use crate::Error;

/// A directory of the tree: a name, value groups, labels and subordinate sources.
///
/// Cloning a `Source` clones the handle, not the directory.
///
/// ```
/// use std::sync::Arc;
/// use statsfs_core::{Source, ValueGroup, cell::Counter};
/// # use statsfs_core::{Descriptor, Kind, Schema, ValueType};
/// # let schema = Schema::new_runtime("vcpu", vec![Descriptor::new("exits", ValueType::U64, Kind::Cumulative)]).unwrap();
/// # let block = |n: u64| move |o: &mut [u64]| { o[0] = n; Ok(()) };
/// let vm = Source::new("vm0")?;
/// vm.add(ValueGroup::aggregates_of(schema.clone()))?;
/// for (i, exits) in [3, 4].into_iter().enumerate() {
///     let vcpu = Source::new(format!("vcpu{i}"))?;
///     vcpu.add(ValueGroup::block(schema.clone(), Arc::new(block(exits))))?;
///     vm.add_subordinate(&vcpu)?;
/// }
/// assert_eq!(vm.get("exits")?.as_u64(), 7);
/// # Ok::<(), statsfs_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Source(Arc<Node>);

pub(super) struct Node {
    id: u64,
    /// Bumped by every change of this source or of any source below it.
    version: AtomicU64,
    name: Box<str>,
    /// Its slot in its parent's [`Children`], meaningful while it has a parent.
    slot: AtomicUsize,
    state: RwLock<State>,
}

type Listener = Arc<dyn Fn(&Change) + Send + Sync>;

pub(super) struct State {
    pub(super) groups: Vec<Group>,
    pub(super) children: Children<Source>,
    parent: Weak<Node>,
    rare: Rare,
    hidden: bool,
    /// Retired from its parent ([`Source::retire_subordinate`]): never added again.
    retired: bool,
}

/// What few sources have: their own labels (most inherit theirs), and what their retired
/// subordinates left behind. One word, and no allocation until the first of either.
#[derive(Default)]
struct Rare(Option<Box<RareParts>>);

#[derive(Default)]
struct RareParts {
    labels: Vec<(String, String)>,
    /// One retained member a schema ([`Source::retire_subordinate`]).
    retained: Vec<Member>,
}

impl Rare {
    fn labels(&self) -> &[(String, String)] {
        self.0.as_deref().map_or(&[], |r| r.labels.as_slice())
    }

    fn labels_mut(&mut self) -> &mut Vec<(String, String)> {
        &mut self.0.get_or_insert_with(Box::default).labels
    }

    fn retained(&self) -> &[Member] {
        self.0.as_deref().map_or(&[], |r| r.retained.as_slice())
    }

    fn retained_mut(&mut self) -> &mut Vec<Member> {
        &mut self.0.get_or_insert_with(Box::default).retained
    }
}

/// What a change takes out of the tree: the members it applied and what left the
/// aggregate caches. The change drops it after it released the structure lock, since
/// dropping the last `Arc` of an instance or a block source runs its owner's `Drop`, which
/// may itself change the tree.
#[derive(Default)]
struct Left {
    members: Vec<Member>,
    gone: Vec<aggregate::Gone>,
}

/// Puts every change of membership (a simple group added or revoked, a subordinate added
/// or removed, hidden flipped) in one order, with its update of the aggregates above it:
/// two concurrent `add_subordinate` calls cannot build a cycle between them, and each
/// change's [`Delta`] is applied before the next change starts. Readers never take it.
static STRUCTURE: Mutex<()> = Mutex::new(());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What changed in a subtree; delivered to the listeners of the source that changed and
/// of all its ancestors (see [`Source::subscribe`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Change {
    /// `child` was added under `parent`.
    SubordinateAdded {
        /// The parent.
        parent: Source,
        /// The new subordinate.
        child: Source,
    },
    /// `child` was removed from `parent`.
    SubordinateRemoved {
        /// The former parent.
        parent: Source,
        /// The removed subordinate.
        child: Source,
    },
    /// The set of values of `source` changed: a group added or revoked, hidden flipped,
    /// labels changed.
    Values {
        /// The source.
        source: Source,
    },
}

/// Keeps a [`Source::subscribe`] listener registered; dropping it unsubscribes.
#[must_use = "dropping the subscription unsubscribes at once"]
pub struct Subscription {
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&LISTENERS).retain(|l| l.id != self.id);
    }
}

/// A registered listener: the source it listens to (by id), its subscription's id.
struct Registered {
    source: u64,
    id: u64,
    listener: Listener,
}

/// Every listener of the process. Few sources have listeners (a file system view
/// subscribes at its root), so they live here rather than in every source: a source
/// without listeners pays nothing for them.
static LISTENERS: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Source {
    /// A new source with no values, labels or subordinates.
    ///
    /// The name must be a file name: not empty, not `.` or `..`, no `/` or control
    /// character ([`valid_name`](crate::desc::valid_name)).
    pub fn new(name: impl Into<String>) -> Result<Source, Error> {
        let name = name.into();
        if !valid_name(&name) {
            return Err(Error::InvalidName { name });
        }
        Ok(Source(Arc::new(Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            version: AtomicU64::new(0),
            name: name.into_boxed_str(),
            slot: AtomicUsize::new(usize::MAX),
            state: RwLock::new(State {
                groups: Vec::new(),
                children: Children::default(),
                parent: Weak::new(),
                rare: Rare::default(),
                hidden: false,
                retired: false,
            }),
        })))
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// A number that identifies this source for as long as it lives (never reused within
    /// a process).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Whether both handles name the same source.
    pub fn ptr_eq(&self, other: &Source) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub(super) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.0.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.0.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a value group: anything that converts into one. This is the one way to
    /// add values:
    ///
    /// * `Arc<T>` or `&'static T` of a `#[derive(Stats)]` struct: its values, bound to
    ///   that instance;
    /// * [`ValueGroup::aggregates::<T>()`](ValueGroup::aggregates) (or
    ///   [`aggregates_of`](ValueGroup::aggregates_of) a runtime schema): aggregates of a
    ///   schema over this source and all its subordinates;
    /// * [`ValueGroup::placed`] (a struct in a shared region), [`ValueGroup::block`] (a
    ///   runtime schema read at read time), any of them [`hidden`](ValueGroup::hidden).
    ///
    /// Aggregates are idempotent: adding aggregates of a schema the source aggregates
    /// already changes nothing and succeeds, so code that does not know whether an
    /// earlier step added them need not ask. The same schema bound to the same instance
    /// (or block source) twice is [`Error::AlreadyExists`]: two groups would count one
    /// struct twice; the source is then unchanged.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
    /// let schema = Schema::new_runtime("vcpu", vec![
    ///     Descriptor::new("exits", ValueType::U64, Kind::Cumulative),
    /// ])?;
    /// let vm = Source::new("vm")?;
    /// vm.add(ValueGroup::aggregates_of(schema.clone()))?;
    /// vm.add(ValueGroup::aggregates_of(schema.clone()))?; // already there: nothing changes
    /// let vcpu = Source::new("vcpu0")?;
    /// let block = Arc::new(|o: &mut [u64]| { o[0] = 1; Ok(()) });
    /// vcpu.add(ValueGroup::block(schema.clone(), block.clone()))?;
    /// assert!(vcpu.add(ValueGroup::block(schema, block)).is_err()); // the same values twice
    /// vm.add_subordinate(&vcpu)?;
    /// assert_eq!(vm.get("exits")?.as_u64(), 1);
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn add(&self, group: impl Into<ValueGroup>) -> Result<(), Error> {
        let group = group.into();
        let mut left = Left::default();
        {
            let _order = lock(&STRUCTURE);
            let mut st = self.write_state();
            if st.groups.iter().any(|g| g.duplicates(&group)) {
                if matches!(group.binding, Binding::Aggregate(..)) {
                    return Ok(());
                }
                return Err(Error::AlreadyExists {
                    source: self.name().to_owned(),
                    schema: group.schema().name().to_owned(),
                });
            }
            let shadowing = group.shadowing;
            let new = group.into_group(NEXT_ID.fetch_add(1, Ordering::Relaxed));
            // Two schemas with one value name in one source: only one could be shown.
            // Refused unless asked for; aggregates over a struct of the source's own
            // schema include it, so they may stand in for its values.
            if !shadowing {
                let aggregate = new.is_aggregate();
                for old in &st.groups {
                    if aggregate && same_schema(old.schema(), new.schema()) {
                        continue;
                    }
                    let ds = old.schema().descriptors();
                    let clash = new
                        .schema()
                        .descriptors()
                        .iter()
                        .enumerate()
                        .find(|(j, d)| {
                            new.offers(*j)
                                && ds
                                    .iter()
                                    .enumerate()
                                    .any(|(i, o)| o.name == d.name && old.offers(i))
                        });
                    if let Some((_, d)) = clash {
                        return Err(Error::Shadows {
                            source: self.name().to_owned(),
                            name: d.name.to_owned(),
                            schema: new.schema().name().to_owned(),
                            other: old.schema().name().to_owned(),
                        });
                    }
                }
            }
            // The newest group wins lookups: older values of the same name step back, if
            // the new group offers that name (an aggregate group offers no `none` value).
            let offered = |name: &str| {
                let ds = new.schema().descriptors();
                ds.iter()
                    .position(|d| d.name == name)
                    .is_some_and(|j| new.offers(j))
            };
            for old in &mut st.groups {
                // `binding` and `shadowed` are borrowed apart.
                let ds = old.binding.schema().descriptors();
                for (i, d) in ds.iter().enumerate() {
                    if offered(d.name) {
                        if old.shadowed.is_empty() {
                            old.shadowed = vec![false; ds.len()].into();
                        }
                        old.shadowed[i] = true;
                    }
                }
            }
            let simple = new.binding.is_simple();
            // Sources have few groups: grow by one, not to four at once.
            st.groups.reserve_exact(1);
            st.groups.push(new);
            drop(st);
            if simple {
                // Made a member only if a cache above needs it (most adds find none
                // collected); under the structure lock the newest group is still this one.
                let member = || {
                    let st = self.read_state();
                    st.groups
                        .last()
                        .map(|g| g.members().collect())
                        .unwrap_or_default()
                };
                self.update_up(true, member, &mut left);
            }
        }
        drop(left);
        self.notify(&Change::Values {
            source: self.clone(),
        });
        Ok(())
    }

    /// Makes `child` a subordinate: it shows as a directory inside this one, and this
    /// source's aggregates include it at once.
    ///
    /// Errors: [`Error::AlreadyAttached`] if `child` has a parent,
    /// [`Error::WouldCycle`] if `child` is this source or one of its ancestors.
    pub fn add_subordinate(&self, child: &Source) -> Result<(), Error> {
        let mut left = Left::default();
        {
            let _order = lock(&STRUCTURE);
            if let Some(p) = child.read_state().parent.upgrade() {
                return Err(Error::AlreadyAttached {
                    child: child.name().to_owned(),
                    parent: p.name.to_string(),
                });
            }
            if child.read_state().retired {
                return Err(Error::Retired {
                    child: child.name().to_owned(),
                });
            }
            let mut cur = Some(self.0.clone());
            while let Some(node) = cur {
                if Arc::ptr_eq(&node, &child.0) {
                    return Err(Error::WouldCycle {
                        parent: self.name().to_owned(),
                        child: child.name().to_owned(),
                    });
                }
                cur = node
                    .state
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .parent
                    .upgrade();
            }
            // The parent's state, then the child's (the top-down order readers use): the
            // name is checked and the child linked in one probe of the name index.
            {
                let mut st = self.write_state();
                let mut c = child.write_state();
                if !st.children.push_unique(child.clone(), c.hidden) {
                    return Err(Error::NameTaken {
                        parent: self.name().to_owned(),
                        name: child.name().to_owned(),
                    });
                }
                c.parent = Arc::downgrade(&self.0);
            }
            self.update_up(true, || child.subtree_members(), &mut left);
        }
        drop(left);
        self.notify(&Change::SubordinateAdded {
            parent: self.clone(),
            child: child.clone(),
        });
        Ok(())
    }

    /// Removes `child` from this source's subordinates; it can be added again, here or
    /// elsewhere. Aggregates stop including it at once.
    pub fn remove_subordinate(&self, child: &Source) -> Result<(), Error> {
        let mut left = Left::default();
        {
            let _order = lock(&STRUCTURE);
            let hidden = child.read_state().hidden;
            if !self.write_state().children.remove(child, hidden) {
                return Err(Error::NotASubordinate {
                    parent: self.name().to_owned(),
                    child: child.name().to_owned(),
                });
            }
            // Once this returns no fold above is using the child's members.
            self.update_up(false, || child.subtree_members(), &mut left);
            child.write_state().parent = Weak::new();
        }
        drop(left);
        self.notify(&Change::SubordinateRemoved {
            parent: self.clone(),
            child: child.clone(),
        });
        Ok(())
    }

    /// Removes `child` as [`remove_subordinate`](Self::remove_subordinate) does, and
    /// keeps what it counted: its subtree's cumulative values (counters and histograms
    /// summed, peaks by their maximum: [`Descriptor::retains`]) move into this source's
    /// retained totals, which every aggregate at or above this source folds, so that
    /// those aggregates never go backwards. Instant values just leave. The move is atomic
    /// for readers: a read of an aggregate above sees `child` or what it left, never both
    /// and never neither (`docs/MODEL.md#retiring`).
    ///
    /// Retire a source once its writers are done: a write after the move is lost. The
    /// retained totals stay with this source (they move with it if it is moved, and
    /// retire with it if it retires), one set a schema whatever the number of retired
    /// subordinates.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
    /// let conn = Schema::new_runtime("conn", vec![
    ///     Descriptor::new("requests", ValueType::U64, Kind::Cumulative),
    /// ])?;
    /// let svc = Source::new("svc")?;
    /// svc.add(ValueGroup::aggregates_of(conn.clone()))?;
    /// let c = Source::new("conn1")?;
    /// c.add(ValueGroup::block(conn, Arc::new(|o: &mut [u64]| { o[0] = 7; Ok(()) })))?;
    /// svc.add_subordinate(&c)?;
    /// svc.retire_subordinate(&c)?;
    /// assert_eq!(svc.subordinate_count(), 0);
    /// assert_eq!(svc.get("requests")?.as_u64(), 7); // still counted
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn retire_subordinate(&self, child: &Source) -> Result<(), Error> {
        let mut left = Left::default();
        {
            let _order = lock(&STRUCTURE);
            if !child.parent().is_some_and(|p| p.ptr_eq(self)) {
                return Err(Error::NotASubordinate {
                    parent: self.name().to_owned(),
                    child: child.name().to_owned(),
                });
            }
            let hidden = child.read_state().hidden;
            let leaving = child.subtree_members();
            // What this source retained so far, per schema, gives way to the same plus
            // what leaves now: one member a schema, under one id, replaced in every cache
            // above at once.
            let mut joining = Vec::new();
            let mut replaced = Vec::new();
            {
                let st = self.read_state();
                // One set a schema, and apart from it what component parts of bigger
                // structs left (folded by aggregates, no leaf of its own).
                let mut sets: Vec<(SchemaRef, bool)> = Vec::new();
                for m in &leaving {
                    let part = m.is_part();
                    if !sets
                        .iter()
                        .any(|(s, p)| *p == part && same_schema(s, m.schema()))
                    {
                        sets.push((m.schema_ref(), part));
                    }
                }
                for (schema, part) in &sets {
                    let prior = st
                        .rare
                        .retained()
                        .iter()
                        .find(|r| r.is_part() == *part && same_schema(r.schema(), schema));
                    // The new set keeps the old one's id: caches replace it in place.
                    let id =
                        prior.map_or_else(|| NEXT_ID.fetch_add(1, Ordering::Relaxed), |p| p.id);
                    joining.push(aggregate::retire(id, schema, *part, &leaving, prior));
                    replaced.extend(prior.map(|p| p.id));
                }
            }
            {
                let mut st = self.write_state();
                let removed = st.children.remove(child, hidden);
                debug_assert!(removed, "its parent was checked under the structure lock");
                let kept = st.rare.retained_mut();
                kept.retain(|r| !replaced.contains(&r.id));
                kept.extend(joining.iter().cloned());
            }
            {
                let mut c = child.write_state();
                c.parent = Weak::new();
                // What it counted is in this source's totals now: adding it anywhere
                // again would count it twice.
                c.retired = true;
            }
            let out = Delta {
                joining: false,
                members: leaving,
            };
            let into = Delta {
                joining: true,
                members: joining,
            };
            // Always applied: a cache collected while the tree changed holds either the
            // old members (then this brings it to the new) or the new (then this is no
            // change); one collected later sees the new tree.
            self.for_each_cache_up(|schema, cache| {
                cache.apply_all(schema, &[&out, &into], &mut left.gone)
            });
            left.members = out.members;
        }
        drop(left);
        self.notify(&Change::SubordinateRemoved {
            parent: self.clone(),
            child: child.clone(),
        });
        Ok(())
    }

    /// The subordinates, hidden ones included, in the order they were added.
    pub fn subordinates(&self) -> Vec<Source> {
        self.read_state().children.iter().cloned().collect()
    }

    /// The subordinate named `name`, if any (the first added, if several share it), in
    /// O(1) whatever the number of subordinates.
    pub fn subordinate(&self, name: &str) -> Option<Source> {
        self.find_child(name, |_| true)
    }

    /// How many subordinates, hidden ones included.
    pub fn subordinate_count(&self) -> usize {
        self.read_state().children.len()
    }

    /// How many subordinates are not hidden.
    pub fn visible_subordinate_count(&self) -> usize {
        self.read_state().children.visible()
    }

    /// Whether the source path `path` (as [`path`](Self::path) writes one) is `ancestor`
    /// or below it; every path is below `""`. By whole names: `kvm/vm10` is not below
    /// `kvm/vm1`.
    ///
    /// ```
    /// use statsfs_core::Source;
    /// assert!(Source::path_within("kvm/vm1/vcpu0", "kvm/vm1"));
    /// assert!(Source::path_within("kvm/vm1", "kvm/vm1"));
    /// assert!(!Source::path_within("kvm/vm10", "kvm/vm1"));
    /// assert!(Source::path_within("kvm", ""));
    /// ```
    pub fn path_within(path: &str, ancestor: &str) -> bool {
        ancestor.is_empty()
            || path
                .strip_prefix(ancestor)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// The names from the topmost ancestor down to this source, joined by `/`.
    pub fn path(&self) -> String {
        let mut names = vec![self.name().to_owned()];
        let mut cur = self.parent();
        while let Some(p) = cur {
            names.push(p.name().to_owned());
            cur = p.parent();
        }
        names.reverse();
        names.join("/")
    }

    /// The parent, while this source is a subordinate.
    pub fn parent(&self) -> Option<Source> {
        self.read_state().parent.upgrade().map(Source)
    }

    /// Hides or shows the source: a hidden source has no directory but its ancestors
    /// still aggregate it.
    pub fn set_hidden(&self, hidden: bool) {
        {
            let _order = lock(&STRUCTURE);
            let (was, parent) = {
                let mut st = self.write_state();
                let was = std::mem::replace(&mut st.hidden, hidden);
                (was, st.parent.upgrade().map(Source))
            };
            if let Some(p) = parent.filter(|_| was != hidden) {
                p.write_state().children.hidden_changed(hidden);
            }
        }
        self.notify(&Change::Values {
            source: self.clone(),
        });
    }

    /// Whether the source is hidden.
    pub fn is_hidden(&self) -> bool {
        self.read_state().hidden
    }

    /// Sets a label (replacing one with the same key). Keys follow Prometheus' label
    /// names: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`; values are any text without
    /// a control character ([`Error::InvalidLabelValue`]).
    pub fn set_label(&self, key: impl Into<String>, value: impl Into<String>) -> Result<(), Error> {
        let (key, value) = (key.into(), value.into());
        if !valid_label_name(&key) {
            return Err(Error::InvalidLabel { key });
        }
        if has_control(&value) {
            return Err(Error::InvalidLabelValue { key, value });
        }
        {
            let mut st = self.write_state();
            let labels = st.rare.labels_mut();
            match labels.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => labels.push((key, value)),
            }
        }
        self.notify(&Change::Values {
            source: self.clone(),
        });
        Ok(())
    }

    /// This source's own labels.
    pub fn own_labels(&self) -> Vec<(String, String)> {
        self.read_state().rare.labels().to_vec()
    }

    /// The labels in effect: own labels first, then the ancestors', nearest first; a key
    /// appears once, with its nearest value.
    pub fn labels(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut cur = Some(self.clone());
        while let Some(s) = cur {
            let st = s.read_state();
            merge_labels(&mut out, st.rare.labels());
            cur = st.parent.upgrade().map(Source);
        }
        out
    }

    /// Detaches the source from the memory it reads: every simple group drops its
    /// instance (or block source) and from then on reads as an empty aggregate; ancestors'
    /// aggregates skip it. When `revoke` returns no reader will touch the instances again,
    /// so their owner may free them even while readers still hold the source.
    pub fn revoke(&self) {
        let mut left = Left::default();
        {
            let _order = lock(&STRUCTURE);
            let leaving: Vec<Member> = {
                let mut st = self.write_state();
                let leaving = st.groups.iter().flat_map(|g| g.members()).collect();
                for g in &mut st.groups {
                    g.binding.revoke();
                }
                leaving
            };
            // Waits for every fold in flight over this source's instances.
            let mut leaving = Some(leaving);
            self.update_up(false, || leaving.take().unwrap_or_default(), &mut left);
            // No cache above was collected, so none took them: they still go after the
            // structure lock, with the rest of `left`.
            if let Some(l) = leaving {
                left.members = l;
            }
        }
        // The instances' last keep-alives may go here, after the structure lock: their
        // owners' `Drop` may change the tree.
        drop(left);
        self.notify(&Change::Values {
            source: self.clone(),
        });
    }

    /// The value named `name` in this source (not its subordinates): the newest group
    /// with such a value wins, then the first descriptor of that name. Hidden groups and
    /// hidden values are found too.
    pub fn get(&self, name: &str) -> Result<Value, Error> {
        let st = self.read_state();
        let (g, i) = lookup(&st, name).ok_or_else(|| self.not_found(name))?;
        let d = g.shown_descriptors()[i];
        struct One(Vec<u64>);
        impl Sink for One {
            fn place(&mut self, _: usize) -> &mut [u64] {
                &mut self.0
            }
        }
        let mut one = One(vec![0; d.size as usize]);
        read_group(&st, g, [i].into_iter(), &mut Vec::new(), &mut one);
        Ok(Value::new(d, g.is_aggregate(), one.0))
    }

    fn not_found(&self, name: &str) -> Error {
        Error::NotFound {
            source: self.name().to_owned(),
            name: name.to_owned(),
        }
    }

    /// Clears the value named `name` (found as [`get`](Self::get) finds it): a simple
    /// value is set to 0; an aggregate clears every simple value it folds over.
    /// [`Error::ReadOnly`] if the descriptor may not be cleared.
    pub fn clear(&self, name: &str) -> Result<(), Error> {
        // Serialized with retires, which copy values they then install.
        let _order = lock(&STRUCTURE);
        let st = self.read_state();
        let (g, i) = lookup(&st, name).ok_or_else(|| self.not_found(name))?;
        let d = &g.schema().descriptors()[i];
        let read_only = || Error::ReadOnly {
            source: self.name().to_owned(),
            name: name.to_owned(),
        };
        if !d.clearable {
            return Err(read_only());
        }
        match &g.binding {
            Binding::Aggregate(schema, _) => {
                clear_subtree(&st, schema, i);
                Ok(())
            }
            Binding::Revoked(_) => Ok(()),
            Binding::Instance(inst) => {
                inst.clear(i);
                Ok(())
            }
            Binding::Block(..) => Err(read_only()),
        }
    }

    /// Calls `f` for every value of this source, hidden ones included, in one pass under
    /// one read lock: the values of one source in one call come from one traversal.
    /// `f` runs with that read lock held: it must not change this source (a deadlock) and
    /// should not read it again (a writer waiting meanwhile would deadlock it too); the
    /// same holds for a [`BlockSource`](crate::BlockSource), called during reads.
    /// Groups come in the order they were added, descriptors in schema order; a value
    /// shadowed by a newer group of the same name is left out, and so are `none` values
    /// of aggregate groups.
    pub fn for_each_value(&self, f: impl FnMut(ValueRef<'_>)) {
        self.values_then(f, None);
    }

    /// [`for_each_value`](Self::for_each_value), then, seen under the same lock, whether
    /// the source keeps values of retired subordinates and (into `children`, if given)
    /// its subordinates: a walk asks for retained values only where there are some, and
    /// sees every subordinate either among the subordinates or among the retained.
    pub(super) fn values_then(
        &self,
        mut f: impl FnMut(ValueRef<'_>),
        children: Option<&mut Vec<Source>>,
    ) -> bool {
        /// Hands each value to `f` as soon as it is read.
        struct Each<'a, F> {
            group: &'a Group,
            /// The group's descriptors as its values are described (folded for an
            /// aggregate group), chosen once a group.
            descriptors: &'a [Descriptor],
            words: Vec<u64>,
            f: &'a mut F,
        }
        impl<F: FnMut(ValueRef<'_>)> Sink for Each<'_, F> {
            fn place(&mut self, i: usize) -> &mut [u64] {
                let size = self.group.schema().descriptors()[i].size as usize;
                self.words.resize(size, 0);
                &mut self.words
            }
            fn done(&mut self, i: usize, read: bool) {
                // A block source that failed leaves its values out of a walk.
                if read {
                    let g = self.group;
                    let d = &self.descriptors[i];
                    let v = ValueRef::new(d, g.schema(), g.is_aggregate(), g.hidden, &self.words);
                    (self.f)(v);
                }
            }
        }
        let st = self.read_state();
        let mut block = Vec::new();
        let mut words = Vec::new();
        for g in &st.groups {
            let offered = (0..g.schema().descriptors().len()).filter(|&i| g.offers(i));
            let mut each = Each {
                group: g,
                descriptors: g.shown_descriptors(),
                words,
                f: &mut f,
            };
            read_group(&st, g, offered, &mut block, &mut each);
            words = each.words;
        }
        if let Some(out) = children {
            out.extend(st.children.iter().cloned());
        }
        !st.rare.retained().is_empty()
    }

    /// Calls `f` for every value this source keeps of its retired subordinates
    /// ([`retire_subordinate`](Self::retire_subordinate)): one value a descriptor that
    /// [`retains`](Descriptor::retains), a schema at a time, as simple values (they are
    /// what the retired sources counted; views that export leaves only, such as
    /// OpenMetrics, export these too so that sums over leaves never go backwards).
    /// Nothing for a source that retired none. The same locking rules as
    /// [`for_each_value`](Self::for_each_value).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
    /// let conn = Schema::new_runtime("conn", vec![
    ///     Descriptor::new("requests", ValueType::U64, Kind::Cumulative),
    ///     Descriptor::new("open", ValueType::U8, Kind::Instant),
    /// ])?;
    /// let svc = Source::new("svc")?;
    /// let c = Source::new("conn1")?;
    /// c.add(ValueGroup::block(conn, Arc::new(|o: &mut [u64]| { o[0] = 7; Ok(()) })))?;
    /// svc.add_subordinate(&c)?;
    /// svc.retire_subordinate(&c)?;
    /// let mut kept = Vec::new();
    /// svc.for_each_retained(|v| kept.push((v.descriptor.name, v.words[0])));
    /// assert_eq!(kept, [("requests", 7)]); // `open` is an instant: not kept
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn for_each_retained(&self, mut f: impl FnMut(ValueRef<'_>)) {
        let st = self.read_state();
        let mut words = Vec::new();
        for r in st.rare.retained().iter().filter(|r| !r.is_part()) {
            let ds = r.schema().descriptors();
            for (i, d) in ds.iter().enumerate() {
                // A second aggregation is no leaf: its value is the one before it.
                if !d.retains() || d.role == crate::desc::Role::AggregateOnly {
                    continue;
                }
                if let Some(schema) = r.retained_words(i, &mut words) {
                    f(ValueRef::new(d, schema, false, false, &words));
                }
            }
        }
    }

    /// Calls `f` for every value this source offers, without reading any:
    /// `(descriptor, schema, is_aggregate, group_hidden)`, in the order of
    /// [`for_each_value`](Self::for_each_value).
    pub fn for_each_descriptor(&self, mut f: impl FnMut(&Descriptor, &Schema, bool, bool)) {
        self.inspect()
            .for_each_descriptor_at(|_, d, schema, aggregate, hidden| {
                f(d, schema, aggregate, hidden)
            });
    }

    /// The first subordinate named `name` for which `keep` is true
    /// (`Inspect::find_subordinate`).
    pub(super) fn find_child(
        &self,
        name: &str,
        mut keep: impl FnMut(&Source) -> bool,
    ) -> Option<Source> {
        {
            let st = self.read_state();
            if !st.children.needs_index() {
                return st.children.named(name).find(|c| keep(c)).cloned();
            }
        }
        // The first lookup after adds links them into the name index.
        let mut st = self.write_state();
        st.children.index();
        let found = st.children.named(name).find(|c| keep(c)).cloned();
        found
    }

    /// Every value this source offers with its ordinal (`Inspect::for_each_descriptor_at`).
    pub(super) fn descriptors_at(&self, mut f: impl FnMut(u64, &Descriptor, &Schema, bool, bool)) {
        let st = self.read_state();
        let mut at = 0u64;
        for g in &st.groups {
            let aggregate = g.is_aggregate();
            for (i, d) in g.schema().descriptors().iter().enumerate() {
                if g.offers(i) {
                    f(at, d, g.schema(), aggregate, g.hidden);
                }
                at += 1;
            }
        }
    }

    /// The version counter's value (`Inspect::version`).
    pub(super) fn version_now(&self) -> u64 {
        self.0.version.load(Ordering::Acquire)
    }

    /// Registers `listener` for changes of this source and of its whole subtree; keep the
    /// returned [`Subscription`] as long as it should be called. The listener runs on the
    /// thread that made the change, after the change, with no lock of the tree held.
    pub fn subscribe(&self, listener: impl Fn(&Change) + Send + Sync + 'static) -> Subscription {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        lock(&LISTENERS).push(Registered {
            source: self.0.id,
            id,
            listener: Arc::new(listener),
        });
        Subscription { id }
    }

    /// After a change of this source's members (a group added or revoked, a subordinate
    /// added or removed), with the structure lock held: applies the members the change
    /// adds or removes (`members`, called only if some cache above has been collected, so
    /// a change under aggregates nobody read walks no subtree) to the aggregate caches of
    /// this source and of every ancestor, each once no fold over it is in flight (see
    /// `aggregate::AggregateCache`). Holds one source's read lock at a time. What leaves
    /// the caches, and the members, go into `left`, for the caller to drop after the
    /// structure lock.
    fn update_up(&self, joining: bool, members: impl FnOnce() -> Vec<Member>, left: &mut Left) {
        // A cache found collected stays so; one collected after this look sees the tree
        // already changed, and needs nothing.
        let mut any = false;
        self.for_each_cache_up(|_, cache| any |= cache.is_collected());
        if !any {
            return;
        }
        let delta = Delta {
            joining,
            members: members(),
        };
        if !delta.members.is_empty() {
            self.for_each_cache_up(|schema, cache| cache.apply(schema, &delta, &mut left.gone));
        }
        left.members = delta.members;
    }

    /// Calls `f` with the schema and the cache of every aggregate group of this source
    /// and of its ancestors, under one source's read lock at a time.
    fn for_each_cache_up(&self, mut f: impl FnMut(&Schema, &aggregate::AggregateCache)) {
        let mut cur = Some(self.clone());
        while let Some(s) = cur {
            let st = s.read_state();
            for g in &st.groups {
                if let Binding::Aggregate(schema, cache) = &g.binding {
                    f(schema, cache);
                }
            }
            cur = st.parent.upgrade().map(Source);
        }
    }

    /// The simple groups of this source and of every source below it, as members.
    fn subtree_members(&self) -> Vec<Member> {
        fn visit(st: &State, out: &mut Vec<Member>) {
            out.extend(st.groups.iter().flat_map(|g| g.members()));
            out.extend(st.rare.retained().iter().cloned());
            for c in st.children.iter() {
                visit(&c.read_state(), out);
            }
        }
        let mut out = Vec::new();
        visit(&self.read_state(), &mut out);
        out
    }

    fn notify(&self, change: &Change) {
        let mut cur = Some(self.clone());
        while let Some(s) = cur {
            s.0.version.fetch_add(1, Ordering::Release);
            let listeners: Vec<Listener> = lock(&LISTENERS)
                .iter()
                .filter(|l| l.source == s.0.id)
                .map(|l| l.listener.clone())
                .collect();
            for l in listeners {
                l(change);
            }
            cur = s.parent();
        }
    }
}

/// The value `name` of a locked source, as lookups find it
/// (`docs/MODEL.md#lookup`): the newest group offering such a value, then its first
/// descriptor of that name.
fn lookup<'s>(st: &'s State, name: &str) -> Option<(&'s Group, usize)> {
    st.groups.iter().rev().find_map(|g| {
        let i = g
            .schema()
            .descriptors()
            .iter()
            .position(|d| d.name == name)?;
        g.offers(i).then_some((g, i))
    })
}

/// Where [`read_group`] puts the values it reads.
pub(super) trait Sink {
    /// The place for descriptor `i`'s words: exactly its `size` words long.
    fn place(&mut self, i: usize) -> &mut [u64];
    /// Descriptor `i`'s words are in its place: read (`true`), or the empty aggregate
    /// value because its block source failed this time (`false`).
    fn done(&mut self, i: usize, read: bool) {
        let _ = (i, read);
    }
}

/// Reads descriptors `which` (indices into the schema, in order) of group `g` of a locked
/// source: the one way the tree reads a group, behind [`Source::get`],
/// [`Source::for_each_value`] (and so `walk`) and [`ReadPlan`](super::ReadPlan). Each
/// value goes straight into its place in `sink`; simple values are read from their
/// instance or block, aggregates folded over the subtree, revoked groups read as empty
/// aggregates. `block` is scratch space for block sources.
pub(super) fn read_group(
    st: &State,
    g: &Group,
    which: impl Iterator<Item = usize>,
    block: &mut Vec<u64>,
    sink: &mut impl Sink,
) {
    let ds = g.schema().descriptors();
    match &g.binding {
        Binding::Instance(inst) => {
            for i in which {
                inst.read(i, sink.place(i));
                sink.done(i, true);
            }
        }
        Binding::Block(schema, src) => {
            block.clear();
            block.resize(schema.block_words(), 0);
            let ok = src.read_block(block).is_ok();
            for i in which {
                let d = &ds[i];
                let out = sink.place(i);
                if ok {
                    let start = d.offset / 8;
                    let words = block.get(start..start + d.size as usize).unwrap_or(&[]);
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = words.get(k).copied().unwrap_or(0);
                    }
                } else {
                    aggregate::empty(d, out);
                }
                sink.done(i, ok);
            }
        }
        Binding::Aggregate(schema, cache) => {
            let which: Vec<usize> = which.collect();
            let mut fold = Fold::new(schema, &which);
            fold.run(cache, |m| collect(st, schema, m));
            fold.finish(|i, w| {
                sink.place(i).copy_from_slice(w);
                sink.done(i, true);
            });
        }
        Binding::Revoked(_) => {
            for i in which {
                aggregate::empty(&ds[i], sink.place(i));
                sink.done(i, true);
            }
        }
    }
}

/// Collects every simple group of `schema` in a locked source and, recursively, in its
/// subordinates: an aggregate's members.
pub(super) fn collect(state: &State, schema: &Schema, into: &mut Members) {
    for g in &state.groups {
        let own = same_schema(g.schema(), schema);
        if !own
            && !g
                .schema()
                .components()
                .iter()
                .any(|c| same_schema(c.schema, schema))
        {
            continue;
        }
        for m in g.members() {
            if same_schema(m.schema(), schema) {
                into.insert(&m);
            }
        }
    }
    for r in state.rare.retained() {
        if same_schema(r.schema(), schema) {
            into.insert(r);
        }
    }
    for child in state.children.iter() {
        let st = child.read_state();
        collect(&st, schema, into);
    }
}

/// Clears descriptor `i` of `schema` in every matching instance of a subtree.
fn clear_subtree(state: &State, schema: &Schema, i: usize) {
    for g in &state.groups {
        // The group's own instance, or the parts of it that are `schema`.
        for m in g.members() {
            if let aggregate::Reads::Instance(inst) = &m.reads {
                if same_schema(inst.schema(), schema) {
                    inst.clear(i);
                }
            }
        }
    }
    for r in state.rare.retained() {
        if same_schema(r.schema(), schema) {
            r.clear_retained(i);
        }
    }
    for child in state.children.iter() {
        let st = child.read_state();
        clear_subtree(&st, schema, i);
    }
}

/// Appends `more` to `out`, keeping the first value of each key.
pub(super) fn merge_labels(out: &mut Vec<(String, String)>, more: &[(String, String)]) {
    for (k, v) in more {
        if !out.iter().any(|(ok, _)| ok == k) {
            out.push((k.clone(), v.clone()));
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.0.id)
            .field("name", &self.0.name)
            .finish()
    }
}

impl Child for Source {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn slot(&self) -> &AtomicUsize {
        &self.0.slot
    }

    fn same(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl PartialEq for Source {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl Eq for Source {}
