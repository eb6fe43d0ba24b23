//! The source tree, rule by rule (`docs/MODEL.md`), through the public API and the derive.

use std::sync::atomic::{
    AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64,
    AtomicU8, Ordering::Relaxed,
};
use std::sync::Arc;

use statsfs::cell::{Counter, Flag, Gauge, LinearHistogram, LogHistogram, Peak};
use statsfs::{Error, Source, Stats, ValueGroup, Visitor, WalkOptions};

fn src(name: &str) -> Source {
    Source::new(name).unwrap()
}

/// One struct per integer type, one field per aggregation.
macro_rules! every_aggregation {
    ($($module:ident: $atomic:ty, $int:ty;)*) => {$(
        mod $module {
            use super::*;

            #[derive(Stats, Default)]
            pub struct S {
                #[stat(kind = instant, aggregate = sum)]
                pub sum: $atomic,
                #[stat(kind = instant, aggregate = min)]
                pub min: $atomic,
                #[stat(kind = instant, aggregate = max)]
                pub max: $atomic,
                #[stat(kind = instant, aggregate = avg)]
                pub avg: $atomic,
                #[stat(kind = instant, aggregate = count_zero)]
                pub count_zero: $atomic,
            }

            impl S {
                pub fn set(&self, v: $int) {
                    for a in [&self.sum, &self.min, &self.max, &self.avg, &self.count_zero] {
                        a.store(v, Relaxed);
                    }
                }
            }

            /// What `docs/MODEL.md#aggregation` says the aggregates of `vs` are, computed without statsfs.
            fn model(vs: &[$int]) -> [u64; 5] {
                let signed = <$int>::MIN != 0;
                let wide: Vec<i128> = vs.iter().map(|&v| v as i128).collect();
                let bits = |x: i128| if signed { x as i64 as u64 } else { x as u64 };
                let n = wide.len() as i128;
                [
                    wide.iter().fold(0u64, |a, &v| a.wrapping_add(bits(v))),
                    wide.iter().min().map(|&m| bits(m)).unwrap_or(if signed { i64::MAX as u64 } else { u64::MAX }),
                    wide.iter().max().map(|&m| bits(m)).unwrap_or(if signed { i64::MIN as u64 } else { 0 }),
                    if n == 0 { 0 } else { bits(wide.iter().sum::<i128>() / n) },
                    wide.iter().filter(|&&v| v == 0).count() as u64,
                ]
            }

            fn read(s: &Source) -> [u64; 5] {
                ["sum", "min", "max", "avg", "count_zero"].map(|n| s.get(n).unwrap().as_u64())
            }

            #[test]
            fn aggregates_over_three_levels() {
                // top ── mid ── leaf_a (v0), leaf_b (v1)
                //   └── leaf_c (v2); mid also holds v3 itself.
                let values: [$int; 4] = [<$int>::MAX, 0, <$int>::MIN, 7 as $int];
                let (top, mid) = (src("top"), src("mid"));
                let leaves: Vec<Source> = ["a", "b", "c"].into_iter().map(src).collect();
                let insts: Vec<Arc<S>> = (0..4).map(|_| Arc::new(S::default())).collect();
                for (i, v) in values.iter().enumerate() {
                    insts[i].set(*v);
                }
                for (leaf, inst) in leaves.iter().zip(&insts) {
                    leaf.add(inst.clone()).unwrap();
                }
                // mid holds simple values itself, then aggregates (mixed groups).
                mid.add(insts[3].clone()).unwrap();
                mid.add(ValueGroup::aggregates::<S>()).unwrap();
                top.add(ValueGroup::aggregates::<S>()).unwrap();
                top.add_subordinate(&mid).unwrap();
                mid.add_subordinate(&leaves[0]).unwrap();
                mid.add_subordinate(&leaves[1]).unwrap();
                top.add_subordinate(&leaves[2]).unwrap();

                // top folds every simple group below it, mid's included, and skips
                // mid's aggregate group.
                assert_eq!(read(&top), model(&values));
                // mid's newest group (the aggregate) wins lookups; it folds mid itself too.
                assert_eq!(read(&mid), model(&[values[0], values[1], values[3]]));
                // A simple group reads its instance, whatever the aggregation says.
                let bits = |v: $int| if <$int>::MIN != 0 { v as i64 as u64 } else { v as u64 };
                assert_eq!(read(&leaves[0]), [bits(values[0]); 5]);
                assert_eq!(leaves[2].get("min").unwrap().as_u64(), bits(<$int>::MIN));
                // An empty aggregate.
                let lone = src("lone");
                lone.add(ValueGroup::aggregates::<S>()).unwrap();
                assert_eq!(read(&lone), model(&[]));
            }
        }
    )*};
}

every_aggregation! {
    agg_u8: AtomicU8, u8;
    agg_u16: AtomicU16, u16;
    agg_u32: AtomicU32, u32;
    agg_u64: AtomicU64, u64;
    agg_i8: AtomicI8, i8;
    agg_i16: AtomicI16, i16;
    agg_i32: AtomicI32, i32;
    agg_i64: AtomicI64, i64;
}

#[derive(Stats, Default)]
struct Bools {
    #[stat(aggregate = sum)]
    sum: AtomicBool,
    #[stat(aggregate = min)]
    min: AtomicBool,
    #[stat(aggregate = max)]
    max: AtomicBool,
    #[stat(aggregate = count_zero)]
    count_zero: Flag,
}

#[test]
fn bools_aggregate_as_zero_and_one() {
    let top = src("top");
    top.add(ValueGroup::aggregates::<Bools>()).unwrap();
    for (i, v) in [true, false, true].into_iter().enumerate() {
        let b = Arc::new(Bools::default());
        for a in [&b.sum, &b.min, &b.max] {
            a.store(v, Relaxed);
        }
        b.count_zero.set(v);
        let s = src(&format!("s{i}"));
        s.add(b).unwrap();
        top.add_subordinate(&s).unwrap();
    }
    let get = |n| top.get(n).unwrap().as_u64();
    assert_eq!(
        (get("sum"), get("min"), get("max"), get("count_zero")),
        (2, 0, 1, 1)
    );
    assert_eq!(top.get("max").unwrap().to_string(), "1");
}

#[derive(Stats, Default)]
struct VcpuStat {
    /// Exits
    exits: Counter,
    /// Pending interrupts
    pending: Gauge<i32>,
    /// Deepest queue
    depth: Peak<u16>,
    /// Running
    running: Flag,
    /// Exit time
    #[stat(unit = seconds, exponent = -9)]
    exit_ns: LogHistogram<4>,
    /// Sizes
    sizes: LinearHistogram<3, 10>,
    #[stat(hidden)]
    secret: Counter,
}

#[derive(Stats, Default)]
struct VmStat {
    /// Pages
    pages: Gauge,
}

fn vcpu(name: &str, exits: u64) -> (Source, Arc<VcpuStat>) {
    let s = src(name);
    let st = Arc::new(VcpuStat::default());
    st.exits.add(exits);
    s.add(st.clone()).unwrap();
    (s, st)
}

#[test]
fn aggregates_match_by_schema_identity_and_skip_aggregate_groups() {
    // Another schema with a field of the same name never takes part.
    #[derive(Stats, Default)]
    struct Other {
        exits: Counter,
    }
    let vm = src("vm");
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let (c0, _s0) = vcpu("c0", 5);
    let (c1, _s1) = vcpu("c1", 6);
    let other = src("other");
    let o = Arc::new(Other::default());
    o.exits.add(1000);
    other.add(o).unwrap();
    // An intermediate aggregate must not count twice.
    let group = src("group");
    group.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    group.add_subordinate(&c1).unwrap();
    vm.add_subordinate(&c0).unwrap();
    vm.add_subordinate(&group).unwrap();
    vm.add_subordinate(&other).unwrap();
    assert_eq!(vm.get("exits").unwrap().as_u64(), 11);
    assert_eq!(group.get("exits").unwrap().as_u64(), 6);
    assert!(vm.get("exits").unwrap().is_aggregate());
}

#[test]
fn histograms_aggregate_bucket_by_bucket() {
    let vm = src("vm");
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    for (i, samples) in [[0u64, 1, 2], [3, 100, 100]].iter().enumerate() {
        let (c, st) = vcpu(&format!("c{i}"), 0);
        for &v in samples {
            st.exit_ns.record_local(v);
            st.sizes.record(v);
        }
        vm.add_subordinate(&c).unwrap();
    }
    assert_eq!(vm.get("exit_ns").unwrap().words(), [1, 1, 2, 2]);
    // One number in text (the sample count); the buckets in the words (the mount's
    // `.buckets` text of them: statsfs-vfs's tests).
    let sizes = vm.get("sizes").unwrap();
    assert_eq!(sizes.to_string(), "6");
    assert_eq!(sizes.words(), [4, 0, 2]);
}

#[test]
fn a_bound_group_reads_its_instance_even_when_descriptors_say_sum() {
    let (c, st) = vcpu("c", 3);
    let (child, _) = vcpu("child", 100);
    c.add_subordinate(&child).unwrap();
    st.pending.set(-4);
    assert_eq!(c.get("exits").unwrap().as_u64(), 3);
    assert!(!c.get("exits").unwrap().is_aggregate());
    assert_eq!(c.get("pending").unwrap().to_string(), "-4");
}

#[test]
fn lookup_searches_the_source_only_newest_group_first() {
    #[derive(Stats, Default)]
    struct Shadow {
        #[stat(kind = instant)]
        pages: AtomicU64,
    }
    let vm = src("vm");
    let (c, _) = vcpu("c", 1);
    vm.add_subordinate(&c).unwrap();
    assert_eq!(
        vm.get("exits"),
        Err(Error::NotFound {
            source: "vm".into(),
            name: "exits".into()
        })
    );
    let v = Arc::new(VmStat::default());
    v.pages.set(10);
    vm.add(v).unwrap();
    let s = Arc::new(Shadow::default());
    s.pages.store(99, Relaxed);
    // Another schema with a value of the same name: refused, nothing changes ...
    let err = vm.add(s.clone()).unwrap_err();
    assert!(
        matches!(&err, Error::Shadows { name, schema, other, .. }
            if name == "pages" && schema == "shadow" && other == "vm_stat"),
        "{err:?}"
    );
    assert!(err.to_string().contains("ValueGroup::shadowing()"), "{err}");
    assert_eq!(vm.get("pages").unwrap().as_u64(), 10);
    // ... unless asked for: then the most recently added group wins.
    vm.add(ValueGroup::of(s).shadowing()).unwrap();
    assert_eq!(
        vm.get("pages").unwrap().as_u64(),
        99,
        "the most recently added group wins"
    );
    let mut names = Vec::new();
    vm.for_each_value(|v| names.push(v.descriptor.name));
    assert_eq!(names, ["pages"], "a shadowed value is listed once");
    // Hidden values are found by name.
    assert_eq!(c.get("secret").unwrap().as_u64(), 0);
}

#[test]
fn sibling_names_are_unique() {
    let vm = src("vm");
    let (a, _) = vcpu("c", 1);
    let (b, _) = vcpu("c", 2);
    vm.add_subordinate(&a).unwrap();
    let err = vm.add_subordinate(&b).unwrap_err();
    assert_eq!(
        err,
        Error::NameTaken {
            parent: "vm".into(),
            name: "c".into()
        }
    );
    assert!(
        b.parent().is_none(),
        "a refused subordinate stays unattached"
    );
    assert_eq!(vm.subordinate_count(), 1);
    // Once the first leaves (removed or retired), the name is free.
    vm.retire_subordinate(&a).unwrap();
    vm.add_subordinate(&b).unwrap();
    assert!(vm.subordinate("c").unwrap().ptr_eq(&b));
}

#[test]
fn duplicate_groups_are_refused_and_change_nothing() {
    let s = src("s");
    let st = Arc::new(VcpuStat::default());
    s.add(st.clone()).unwrap();
    let err = s.add(st.clone()).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }));
    assert!(
        err.to_string().contains("already has schema `vcpu_stat`"),
        "{err}"
    );
    s.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    // Aggregates are what they fold, not a struct counted twice: adding them again
    // succeeds and changes nothing.
    s.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let mut groups = 0;
    s.inspect().for_each_group(|_| groups += 1);
    assert_eq!(groups, 2, "one simple group, one aggregate group");
    // Same instance in another source is fine.
    src("t").add(st).unwrap();
    let mut n = 0;
    s.for_each_descriptor(|_, _, _, _| n += 1);
    assert_eq!(
        n,
        VcpuStat::DESCRIPTORS.len(),
        "the aggregate group's values shadow the simple ones"
    );
}

#[test]
fn add_remove_and_re_add_take_effect_at_once() {
    let vm = src("vm");
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let (c0, _a) = vcpu("c0", 2);
    let (c1, _b) = vcpu("c1", 3);
    vm.add_subordinate(&c0).unwrap();
    vm.add_subordinate(&c1).unwrap();
    assert_eq!(vm.get("exits").unwrap().as_u64(), 5);
    vm.remove_subordinate(&c1).unwrap();
    assert_eq!(vm.get("exits").unwrap().as_u64(), 2);
    assert!(matches!(
        vm.remove_subordinate(&c1),
        Err(Error::NotASubordinate { .. })
    ));
    vm.add_subordinate(&c1).unwrap();
    assert_eq!(vm.get("exits").unwrap().as_u64(), 5);
    assert!(matches!(
        vm.add_subordinate(&c1),
        Err(Error::AlreadyAttached { .. })
    ));
    assert!(matches!(
        c1.add_subordinate(&vm),
        Err(Error::WouldCycle { .. })
    ));
    assert!(matches!(
        vm.add_subordinate(&vm),
        Err(Error::WouldCycle { .. })
    ));
    assert_eq!(c1.parent().unwrap(), vm);
    assert_eq!(vm.subordinates(), [c0, c1]);
}

#[test]
fn clear_sets_zero_and_goes_through_aggregates() {
    let vm = src("vm");
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let (c0, s0) = vcpu("c0", 2);
    let (c1, s1) = vcpu("c1", 3);
    vm.add_subordinate(&c0).unwrap();
    vm.add_subordinate(&c1).unwrap();
    s0.exit_ns.record(5);
    s0.depth.record(9);
    s1.pending.set(7);
    c0.clear("exits").unwrap();
    assert_eq!((s0.exits.get(), s1.exits.get()), (0, 3));
    vm.clear("exits").unwrap();
    assert_eq!(s1.exits.get(), 0);
    vm.clear("exit_ns").unwrap();
    assert_eq!(s0.exit_ns.buckets(), [0; 4]);
    vm.clear("depth").unwrap();
    assert_eq!(s0.depth.get(), 0);
    // Instant values are read-only, and refusing changes nothing.
    assert!(matches!(vm.clear("pending"), Err(Error::ReadOnly { .. })));
    assert!(matches!(c1.clear("running"), Err(Error::ReadOnly { .. })));
    assert_eq!(s1.pending.get(), 7);
    assert!(matches!(vm.clear("nope"), Err(Error::NotFound { .. })));
}

#[test]
fn revoke_detaches_the_source_from_its_instance() {
    let vm = src("vm");
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let (c0, s0) = vcpu("c0", 2);
    let (c1, _s1) = vcpu("c1", 3);
    vm.add_subordinate(&c0).unwrap();
    vm.add_subordinate(&c1).unwrap();
    c0.revoke();
    // The source no longer keeps the instance alive.
    assert_eq!(Arc::strong_count(&s0), 1);
    drop(s0);
    assert_eq!(vm.get("exits").unwrap().as_u64(), 3);
    let v = c0.get("exits").unwrap();
    assert!(v.is_aggregate());
    assert_eq!(v.as_u64(), 0);
    assert_eq!(c0.get("depth").unwrap().as_u64(), 0);
    c0.clear("exits").unwrap();
}

#[test]
fn hidden_sources_and_groups_are_aggregated_but_not_walked() {
    let vm = src("vm");
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let (c0, _a) = vcpu("c0", 2);
    let c1 = src("c1");
    let s1 = Arc::new(VcpuStat::default());
    s1.exits.add(3);
    c1.add(ValueGroup::of(s1).hidden()).unwrap();
    c0.set_hidden(true);
    vm.add_subordinate(&c0).unwrap();
    vm.add_subordinate(&c1).unwrap();
    assert_eq!(vm.get("exits").unwrap().as_u64(), 5);
    assert_eq!(c1.get("exits").unwrap().as_u64(), 3);

    struct Files(Vec<String>);
    impl Visitor for Files {
        fn value(&mut self, p: &statsfs::Place<'_>, v: &statsfs::ValueRef<'_>) {
            self.0.push(format!("{}/{}", p.path, v.descriptor.name));
        }
    }
    let mut files = Files(Vec::new());
    statsfs::walk(&vm, WalkOptions::default(), &mut files);
    assert!(files.0.contains(&"vm/exits".to_string()));
    assert!(
        !files.0.iter().any(|f| f.starts_with("vm/c0")),
        "hidden source walked: {:?}",
        files.0
    );
    assert!(
        !files.0.iter().any(|f| f.starts_with("vm/c1/")),
        "hidden group walked: {:?}",
        files.0
    );
    assert!(
        !files.0.iter().any(|f| f.ends_with("/secret")),
        "hidden value walked"
    );
    let mut all = Files(Vec::new());
    statsfs::walk(&vm, WalkOptions { hidden: true }, &mut all);
    assert!(all.0.contains(&"vm/c0/exits".to_string()));
    assert!(all.0.contains(&"vm/c1/secret".to_string()));
}

#[test]
fn labels_are_inherited_own_first_then_nearest_ancestor() {
    let host = src("host");
    let vm = src("vm");
    let (c, _) = vcpu("c", 0);
    host.set_label("host", "h1").unwrap();
    host.set_label("vm", "outer").unwrap();
    vm.set_label("vm", "1234-5").unwrap();
    c.set_label("vcpu", "0").unwrap();
    host.add_subordinate(&vm).unwrap();
    vm.add_subordinate(&c).unwrap();
    let l = |s: &[(&str, &str)]| {
        s.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        c.labels(),
        l(&[("vcpu", "0"), ("vm", "1234-5"), ("host", "h1")])
    );
    vm.remove_subordinate(&c).unwrap();
    assert_eq!(c.labels(), l(&[("vcpu", "0")]));
    assert!(matches!(
        c.set_label("0bad", "x"),
        Err(Error::InvalidLabel { .. })
    ));
    assert!(matches!(
        c.set_label("__reserved", "x"),
        Err(Error::InvalidLabel { .. })
    ));
    // Control characters would reach terminals through every view: refused, unchanged.
    for value in ["\x1b]0;title\x07", "a\nb", "x\u{9b}31m", "\x7f"] {
        let e = c.set_label("vcpu", value).unwrap_err();
        assert!(matches!(e, Error::InvalidLabelValue { .. }), "{value:?}");
        assert!(!e.to_string().contains(value), "{e}");
    }
    assert_eq!(c.labels(), l(&[("vcpu", "0")]));
    for name in ["\x1b[8m", "tab\there", "nul\0", "c1\u{85}"] {
        let e = Source::new(name).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{name:?}");
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
    }
    assert!(Source::new("µs and ünïcode").is_ok());
}

#[test]
fn flattened_stats_live_at_the_field_offset() {
    #[derive(Stats, Default)]
    struct Generic {
        halt_exits: Counter,
        #[stat(unit = seconds, exponent = -9)]
        halt_wait_ns: Counter,
    }
    #[derive(Stats, Default)]
    struct Arch {
        io_exits: Counter,
        #[stat(flatten)]
        generic: Generic,
    }
    let a = Arc::new(Arch::default());
    a.generic.halt_exits.add(4);
    a.io_exits.add(1);
    let s = src("vcpu");
    s.add(a.clone()).unwrap();
    assert_eq!(s.get("halt_exits").unwrap().as_u64(), 4);
    assert_eq!(s.get("io_exits").unwrap().as_u64(), 1);
    assert_eq!(Arch::DESCRIPTORS[2].scale.exponent, -9);
    // Aggregates of the outer schema include flattened stats.
    let vm = src("vm");
    vm.add(ValueGroup::aggregates::<Arch>()).unwrap();
    vm.add_subordinate(&s).unwrap();
    assert_eq!(vm.get("halt_wait_ns").unwrap().as_u64(), 0);
    assert_eq!(vm.get("halt_exits").unwrap().as_u64(), 4);
}

#[test]
fn static_instances_and_names() {
    static GLOBAL: VmStat = VmStat {
        pages: Gauge::new(),
    };
    GLOBAL.pages.set(3);
    let s = src("global");
    s.add(&GLOBAL).unwrap();
    assert_eq!(s.get("pages").unwrap().as_u64(), 3);
    for bad in ["", ".", "..", "a/b", "nul\0"] {
        assert!(
            matches!(Source::new(bad), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn listeners_hear_changes_of_the_whole_subtree() {
    use std::sync::Mutex;
    let top = src("top");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let sub = top.subscribe(move |c| {
        let what = match c {
            statsfs::Change::SubordinateAdded { parent, child } => {
                format!("+{}/{}", parent.name(), child.name())
            }
            statsfs::Change::SubordinateRemoved { parent, child } => {
                format!("-{}/{}", parent.name(), child.name())
            }
            statsfs::Change::Values { source } => format!("v{}", source.name()),
            _ => "?".into(),
        };
        s2.lock().unwrap().push(what);
    });
    let mid = src("mid");
    top.add_subordinate(&mid).unwrap();
    let (leaf, _) = vcpu("leaf", 0);
    mid.add_subordinate(&leaf).unwrap();
    mid.remove_subordinate(&leaf).unwrap();
    drop(sub);
    top.remove_subordinate(&mid).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["+top/mid", "+mid/leaf", "-mid/leaf"]
    );
}

#[test]
fn enum_valued_stats_read_as_numbers_and_are_named_by_their_descriptor() {
    #[derive(Stats, Default)]
    struct Vcpu {
        /// The vCPU's multiprocessing state
        #[stat(names = ["RUNNABLE", "HALTED", "INIT_RECEIVED"])]
        mp_state: Gauge<u8>,
        /// The lowest state of the vCPUs below
        #[stat(kind = instant, names = ["RUNNABLE", "HALTED"], aggregate = max)]
        worst: AtomicU32,
    }
    let d = &Vcpu::DESCRIPTORS[0];
    assert_eq!(d.names, ["RUNNABLE", "HALTED", "INIT_RECEIVED"]);
    assert_eq!(
        d.aggregation,
        statsfs::Aggregation::None,
        "a state is not summed unless asked"
    );
    let vm = src("vm");
    vm.add(ValueGroup::aggregates::<Vcpu>()).unwrap();
    let stats: Vec<Arc<Vcpu>> = (0..2).map(|_| Arc::new(Vcpu::default())).collect();
    for (i, s) in stats.iter().enumerate() {
        let c = src(&format!("vcpu{i}"));
        c.add(s.clone()).unwrap();
        vm.add_subordinate(&c).unwrap();
    }
    stats[1].mp_state.set(1);
    stats[1].worst.store(1, Relaxed);
    let c1 = vm.subordinate("vcpu1").unwrap();
    // Every view reads the number; the descriptor names it.
    let v = c1.get("mp_state").unwrap();
    assert_eq!(v.to_string(), "1");
    assert_eq!(v.descriptor().name_of(v.as_u64()), Some("HALTED"));
    stats[1].mp_state.set(7);
    let v = c1.get("mp_state").unwrap();
    assert_eq!(v.as_u64(), 7);
    assert_eq!(
        v.descriptor().name_of(7),
        None,
        "a value past the names has none"
    );
    // `none` values are not aggregated; the max of a state is a state.
    assert!(matches!(vm.get("mp_state"), Err(Error::NotFound { .. })));
    let worst = vm.get("worst").unwrap();
    assert_eq!(worst.descriptor().name_of(worst.as_u64()), Some("HALTED"));
}

#[test]
fn an_aggregate_group_does_not_hide_a_plain_value_it_does_not_offer() {
    #[derive(Stats, Default)]
    struct S {
        exits: Counter,
        #[stat(kind = instant, aggregate = none)]
        plain: AtomicI32,
    }
    let s = src("s");
    let v = Arc::new(S::default());
    v.exits.add(2);
    v.plain.store(-7, Relaxed);
    s.add(v).unwrap();
    s.add(ValueGroup::aggregates::<S>()).unwrap();
    // `exits` is offered by the newer aggregate group; `plain` only by the simple one.
    assert!(s.get("exits").unwrap().is_aggregate());
    assert_eq!(s.get("plain").unwrap().as_i64(), -7);
    let mut names = Vec::new();
    s.for_each_value(|v| names.push((v.descriptor.name, v.aggregate)));
    assert_eq!(names, [("plain", false), ("exits", true)]);
}

#[test]
fn a_block_source_added_twice_is_refused_and_counted_once() {
    let schema = statsfs::Schema::new_runtime(
        "blk",
        vec![statsfs::Descriptor::new(
            "w",
            statsfs::ValueType::U64,
            statsfs::Kind::Cumulative,
        )],
    )
    .unwrap();
    let block = Arc::new(|o: &mut [u64]| {
        o[0] = 5;
        Ok(())
    });
    let parent = src("parent");
    parent
        .add(ValueGroup::aggregates_of(schema.clone()))
        .unwrap();
    let s = src("s");
    s.add(ValueGroup::block(schema.clone(), block.clone()))
        .unwrap();
    let err = s
        .add(ValueGroup::block(schema.clone(), block.clone()))
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    parent.add_subordinate(&s).unwrap();
    assert_eq!(parent.get("w").unwrap().as_u64(), 5, "counted once");
    // The same block in another source is another group, and counts there.
    let t = src("t");
    t.add(ValueGroup::block(schema, block)).unwrap();
    parent.add_subordinate(&t).unwrap();
    assert_eq!(parent.get("w").unwrap().as_u64(), 10);
}

#[test]
fn schemas_with_identical_descriptors_stay_distinct() {
    // Same schema name, same stat names and types: two schemas all the same.
    #[derive(Stats, Default)]
    #[stats(name = "twin")]
    struct A {
        events: Counter,
    }
    #[derive(Stats, Default)]
    #[stats(name = "twin")]
    struct B {
        events: Counter,
    }
    assert_eq!(A::DESCRIPTORS, B::DESCRIPTORS);
    assert!(!std::ptr::eq(A::SCHEMA, B::SCHEMA));
    let root = src("root");
    root.add(ValueGroup::aggregates::<A>()).unwrap();
    let (a, b) = (Arc::new(A::default()), Arc::new(B::default()));
    a.events.add(1);
    b.events.add(100);
    let (sa, sb) = (src("a"), src("b"));
    sa.add(a).unwrap();
    sb.add(b).unwrap();
    root.add_subordinate(&sa).unwrap();
    root.add_subordinate(&sb).unwrap();
    assert_eq!(root.get("events").unwrap().as_u64(), 1, "B is never folded");
    // Runtime schemas too: equal descriptors, two identities.
    let d = statsfs::Descriptor::new("w", statsfs::ValueType::U64, statsfs::Kind::Cumulative);
    let r1 = statsfs::Schema::new_runtime("r", vec![d]).unwrap();
    let r2 = statsfs::Schema::new_runtime("r", vec![d]).unwrap();
    assert!(!std::ptr::eq(&*r1, &*r2));
}

#[test]
fn a_schema_has_one_identity_in_every_crate() {
    use statsfs_test_identity::{aggregates_made_here, schema_seen_here, Shared};
    // The address named here, in the defining crate, and in the link-time registry.
    assert!(std::ptr::eq(<Shared as Stats>::SCHEMA, schema_seen_here()));
    let registered = statsfs::registry::schemas()
        .into_iter()
        .filter(|s| s.type_name() == "statsfs_test_identity::Shared")
        .collect::<Vec<_>>();
    assert_eq!(registered.len(), 1);
    assert!(std::ptr::eq(registered[0], schema_seen_here()));
    // And so aggregation: aggregates made in that crate fold instances bound here.
    let root = src("root");
    root.add(aggregates_made_here()).unwrap();
    for n in [3, 4] {
        let s = Arc::new(Shared::default());
        s.events.add(n);
        let leaf = src(&format!("l{n}"));
        leaf.add(s).unwrap();
        root.add_subordinate(&leaf).unwrap();
    }
    assert_eq!(root.get("events").unwrap().as_u64(), 7);
    // Again: nothing changes, the folds stay one group.
    root.add(ValueGroup::aggregates::<Shared>()).unwrap();
    let mut groups = 0;
    root.inspect().for_each_group(|_| groups += 1);
    assert_eq!(groups, 1);
    assert_eq!(root.get("events").unwrap().as_u64(), 7);
}

#[derive(Stats)]
struct ProcessStat {
    /// Requests served by this process
    requests: Counter,
}

#[statsfs::global(name = "tree_test_process")]
static PROCESS: ProcessStat = ProcessStat {
    requests: Counter::new(),
};

#[test]
fn globals_are_registered_at_link_time_and_shown_beside_the_roots() {
    PROCESS.requests.add(2);
    let g = statsfs::registry::globals()
        .iter()
        .find(|s| s.name() == "tree_test_process")
        .expect("the global is registered");
    assert_eq!(g.get("requests").unwrap().as_u64(), 2);
    let root = src("root");
    let roots = statsfs::registry::with_globals(std::slice::from_ref(&root));
    assert!(roots[0].ptr_eq(&root));
    assert!(roots.iter().any(|s| s.ptr_eq(g)));
    // A root of the same name wins.
    let same = src("tree_test_process");
    let roots = statsfs::registry::with_globals(std::slice::from_ref(&same));
    assert_eq!(
        roots
            .iter()
            .filter(|s| s.name() == "tree_test_process")
            .count(),
        1
    );
    // The catalogue lists every derived schema, before any instance exists.
    let mut text = String::new();
    statsfs::text::catalogue::write(&mut text).unwrap();
    assert!(text.contains("schema process_stat "), "{text}");
    assert!(text.contains(
        "requests cumulative u64 1 unit=none scale=10^0 aggregate=sum mode=0644 hidden=false Requests served by this process"
    ));
}
