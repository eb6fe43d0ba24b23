//! Bulk views in the kernel's binary layout: whole sources, subtrees, selections.

use std::sync::Arc;

use statsfs::binary::{Blob, Selection, SelectionError};
use statsfs::binary::{BulkView, ViewError};
use statsfs::cell::{Counter, Flag, Gauge, LogHistogram};
use statsfs::Scope;
use statsfs::{Kind, Source, Stats, Unit, ValueGroup};

#[derive(Stats, Default)]
struct VcpuStat {
    /// Exits
    exits: Counter,
    /// Pending interrupts
    pending: Gauge<i32>,
    /// Running
    running: Flag,
    /// Exit handling time
    #[stat(unit = seconds, exponent = -9)]
    exit_ns: LogHistogram<4>,
    #[stat(hidden)]
    secret: Counter,
}

fn tree() -> (Source, Vec<Arc<VcpuStat>>) {
    let vm = Source::new("1234-5").unwrap();
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let stats: Vec<Arc<VcpuStat>> = (0..2).map(|_| Arc::new(VcpuStat::default())).collect();
    for (i, s) in stats.iter().enumerate() {
        let c = Source::new(format!("vcpu{i}")).unwrap();
        c.add(s.clone()).unwrap();
        vm.add_subordinate(&c).unwrap();
    }
    let hidden = Source::new("hidden").unwrap();
    hidden.set_hidden(true);
    vm.add_subordinate(&hidden).unwrap();
    (vm, stats)
}

#[test]
fn a_source_round_trips_through_the_kernel_layout() {
    let (vm, stats) = tree();
    stats[0].exits.add(3);
    stats[1].exits.add(4);
    stats[0].pending.set(-9);
    stats[1].exit_ns.record(6);
    stats[1].running.set(true);
    let mut view = BulkView::new(&vm, Scope::Source, &Selection::all()).unwrap();
    let mut blob = Vec::new();
    view.encode(&mut blob);
    let b = Blob::decode(&blob).unwrap();
    assert_eq!(b.id(), "1234-5");
    let names: Vec<_> = b.descriptors().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["exits", "pending", "running", "exit_ns"],
        "hidden values are left out"
    );
    assert_eq!(b.value("exits"), Some(7));
    assert_eq!(b.stat("pending").unwrap().value_i64(), -9);
    assert_eq!(b.value("running"), Some(1));
    assert_eq!(b.values("exit_ns"), Some(&[0, 0, 0, 1][..]));
    let d = b
        .descriptors()
        .iter()
        .find(|d| d.name == "exit_ns")
        .unwrap();
    assert_eq!(
        (d.kind, d.unit, d.scale.exponent, d.size),
        (Kind::LogHistogram, Unit::Seconds, -9, 4)
    );
    // The sum of the vCPUs' `running` flags counts them: a count, not a boolean (it may
    // be 2, which a boolean's reader would refuse).
    assert_eq!(b.descriptors()[2].unit, Unit::None);
}

#[test]
fn refreshing_rewrites_only_the_data_block() {
    let (vm, stats) = tree();
    let mut view = BulkView::new(&vm, Scope::Subtree, &Selection::all()).unwrap();
    let mut blob = Vec::new();
    view.encode(&mut blob);
    let schema_part = blob[..view.layout().data_offset()].to_vec();
    stats[1].exits.add(10);
    view.encode_data(&mut blob);
    assert_eq!(
        &blob[..view.layout().data_offset()],
        &schema_part[..],
        "the schema part never changes"
    );
    let b = Blob::decode(&blob).unwrap();
    assert_eq!(b.value("exits"), Some(10));
    assert_eq!(b.value("vcpu1/exits"), Some(10));
    assert_eq!(b.value("vcpu0/exits"), Some(0));
}

#[test]
fn a_subtree_names_values_by_relative_path() {
    let (vm, _) = tree();
    let root = Source::new("root").unwrap();
    root.add_subordinate(&vm).unwrap();
    let mut view = BulkView::new(&vm, Scope::Subtree, &Selection::all()).unwrap();
    let mut blob = Vec::new();
    view.encode(&mut blob);
    let b = Blob::decode(&blob).unwrap();
    assert_eq!(b.id(), "root/1234-5", "the id is the source's path");
    let names: Vec<_> = b.descriptors().iter().map(|d| d.name.clone()).collect();
    assert_eq!(names.len(), 12);
    assert!(names.contains(&"vcpu1/exit_ns".to_string()));
    assert!(!names.iter().any(|n| n.starts_with("hidden")));
    assert!(view.is_current());
    vm.add_subordinate(&Source::new("vcpu9").unwrap()).unwrap();
    assert!(!view.is_current(), "a tree change makes the view stale");
}

#[test]
fn selections_give_well_formed_blobs_with_only_those_stats() {
    let (vm, stats) = tree();
    stats[0].exits.add(1);
    let sel = Selection::parse("*/exits, exit_ns").unwrap();
    let mut view = BulkView::new(&vm, Scope::Subtree, &sel).unwrap();
    let mut blob = Vec::new();
    view.encode(&mut blob);
    let b = Blob::decode(&blob).unwrap();
    let names: Vec<_> = b.descriptors().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["exit_ns", "vcpu0/exits", "vcpu1/exits"]);
    assert_eq!(b.value("vcpu0/exits"), Some(1));
    assert_eq!(b.data().len(), 4 + 1 + 1);

    let none = Selection::parse("nothing_like_this").unwrap();
    assert!(matches!(
        BulkView::new(&vm, Scope::Subtree, &none),
        Err(ViewError::Selection(SelectionError::NoMatch { .. }))
    ));
}

#[test]
fn runtime_groups_join_the_blob() {
    let vm = Source::new("vm").unwrap();
    let schema = statsfs::Schema::new_runtime(
        "kernel",
        vec![
            statsfs::Descriptor::new("halt_exits", statsfs::ValueType::U64, Kind::Cumulative)
                .with_clearable(false),
        ],
    )
    .unwrap();
    vm.add(ValueGroup::block(
        schema,
        Arc::new(|o: &mut [u64]| {
            o[0] = 42;
            Ok(())
        }),
    ))
    .unwrap();
    let mut view = BulkView::new(&vm, Scope::Source, &Selection::all()).unwrap();
    let mut blob = Vec::new();
    view.encode(&mut blob);
    assert_eq!(Blob::decode(&blob).unwrap().value("halt_exits"), Some(42));
}
