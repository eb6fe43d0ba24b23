//! The declaration's richer forms through the tree: families (by enum and by index),
//! histogram sums, several aggregations of one field, prefixed and repeated flattens,
//! aggregates of a component struct at any depth, and the `const fn new()`.

use std::sync::Arc;

use statsfs::cell::{Counter, Gauge, LogHistogram, Peak, WithSum};
use statsfs::{Aggregation, Family, Kind, Label, Role, Source, Stats, ValueGroup};

#[derive(Clone, Copy, Label)]
#[label(name = "op")]
enum Op {
    Get,
    Put,
    #[label(rename = "del")]
    Delete,
}

/// What every engine counts (the GUIDE's generic/arch split).
#[derive(Stats)]
#[stats(name = "engine_common")]
struct Common {
    /// Operations, by kind
    ops: Family<Op, Counter>,
    /// Bytes written
    #[stat(unit = bytes)]
    written: Counter,
}

#[derive(Stats)]
struct IoStat {
    /// Bytes moved
    #[stat(unit = bytes)]
    bytes: Counter,
    /// Largest single transfer
    largest: Peak<u64>,
}

#[derive(Stats)]
#[stats(name = "btree")]
struct BtreeStat {
    #[stat(flatten)]
    common: Common,
    /// Pages split
    splits: Counter,
    /// Keys in the table
    #[stat(aggregate = [sum, avg, max])]
    live_keys: Gauge<u64>,
    /// Time an operation took
    #[stat(unit = seconds, exponent = -9)]
    op_ns: LogHistogram<16, WithSum>,
    #[stat(flatten, prefix = "read_")]
    read: IoStat,
    #[stat(flatten, prefix = "write_")]
    write: IoStat,
}

/// An engine that holds the common part one level deeper.
#[derive(Stats)]
struct Nested {
    #[stat(flatten)]
    common: Common,
}

#[derive(Stats)]
#[stats(name = "lsm")]
struct LsmStat {
    /// Pending compactions, by level
    #[stat(label = "level")]
    pending: [Gauge<u32>; 3],
    #[stat(flatten, prefix = "inner_")]
    nested: Nested,
}

static GLOBAL_BTREE: BtreeStat = BtreeStat::new();

fn names<T: Stats>() -> Vec<&'static str> {
    T::DESCRIPTORS.iter().map(|d| d.name).collect()
}

#[test]
fn every_form_has_the_descriptors_its_views_need() {
    assert_eq!(
        names::<BtreeStat>(),
        [
            "ops_get",
            "ops_put",
            "ops_del",
            "written",
            "splits",
            "live_keys",
            "live_keys_avg",
            "live_keys_max",
            "op_ns",
            "op_ns_sum",
            "read_bytes",
            "read_largest",
            "write_bytes",
            "write_largest",
        ]
    );
    let d = |n: &str| BtreeStat::SCHEMA.descriptor(n).unwrap();
    assert_eq!(d("ops_del").family(), Some(("ops", "op", "del")));
    assert_eq!(d("ops_del").doc, "Operations, by kind");
    let sum = d("op_ns_sum");
    assert_eq!((sum.role, sum.kind), (Role::HistogramSum, Kind::Cumulative));
    assert_eq!((sum.unit, sum.scale), (d("op_ns").unit, d("op_ns").scale));
    assert_eq!(d("live_keys_avg").role, Role::AggregateOnly);
    assert_eq!(d("live_keys_avg").aggregation, Aggregation::Avg);
    assert_eq!(d("live_keys_avg").offset, d("live_keys").offset);
    assert_eq!(
        names::<LsmStat>(),
        [
            "pending_0",
            "pending_1",
            "pending_2",
            "inner_ops_get",
            "inner_ops_put",
            "inner_ops_del",
            "inner_written"
        ]
    );
    // A prefixed family member keeps its label: its family is prefixed too.
    assert_eq!(
        LsmStat::SCHEMA
            .descriptor("inner_ops_put")
            .unwrap()
            .family(),
        Some(("inner_ops", "op", "put"))
    );
    assert_eq!(
        LsmStat::SCHEMA.descriptor("pending_2").unwrap().family(),
        Some(("pending", "level", "2"))
    );
    // Components: the flattened structs, at any depth, where they are.
    let parts: Vec<(&str, usize)> = LsmStat::SCHEMA
        .components()
        .iter()
        .map(|c| (c.schema.name(), c.offset))
        .collect();
    assert_eq!(
        parts,
        [
            ("nested", core::mem::offset_of!(LsmStat, nested)),
            (
                "engine_common",
                core::mem::offset_of!(LsmStat, nested) + core::mem::offset_of!(Nested, common)
            ),
        ]
    );
}

#[test]
fn writes_land_in_their_member_and_read_back_by_name() {
    let t = Arc::new(BtreeStat::new());
    t.common.ops[Op::Put].inc_local();
    t.common.ops[Op::Put].inc();
    t.common.ops[Op::Delete].inc();
    t.op_ns.record_local(1500);
    t.op_ns.record(500);
    let s = Source::new("users").unwrap();
    s.add(t.clone()).unwrap();
    assert_eq!(s.get("ops_put").unwrap().as_u64(), 2);
    assert_eq!(s.get("ops_del").unwrap().as_u64(), 1);
    assert_eq!(s.get("ops_get").unwrap().as_u64(), 0);
    assert_eq!(s.get("op_ns_sum").unwrap().as_u64(), 2000);
    // A second aggregation is the aggregates' only: a simple group has one `live_keys`.
    assert!(s.get("live_keys_avg").is_err());
    let mut offered = Vec::new();
    s.for_each_value(|v| offered.push(v.descriptor.name));
    assert!(!offered.contains(&"live_keys_avg"), "{offered:?}");
    let iter: Vec<(&str, u64)> = t.common.ops.iter().map(|(v, c)| (v, c.get())).collect();
    assert_eq!(iter, [("get", 0), ("put", 2), ("del", 1)]);
}

#[test]
fn several_aggregations_of_one_field_are_values_of_the_aggregates() {
    let db = Source::new("db").unwrap();
    db.add(ValueGroup::aggregates::<BtreeStat>()).unwrap();
    for (name, keys) in [("a", 10), ("b", 30), ("c", 5)] {
        let t = Arc::new(BtreeStat::new());
        t.live_keys.set(keys);
        let s = Source::new(name).unwrap();
        s.add(t).unwrap();
        db.add_subordinate(&s).unwrap();
    }
    assert_eq!(db.get("live_keys").unwrap().as_u64(), 45);
    assert_eq!(db.get("live_keys_avg").unwrap().as_u64(), 15);
    assert_eq!(db.get("live_keys_max").unwrap().as_u64(), 30);
}

#[test]
fn aggregates_of_a_component_fold_it_in_every_struct_that_contains_it() {
    let db = Source::new("db").unwrap();
    db.add(ValueGroup::aggregates::<Common>()).unwrap();
    db.add(ValueGroup::aggregates::<IoStat>()).unwrap();
    let b = Arc::new(BtreeStat::new());
    b.common.ops[Op::Get].add(10);
    b.common.written.add(100);
    b.read.bytes.add(7);
    b.write.bytes.add(9);
    b.write.largest.record(4096);
    let l = Arc::new(LsmStat::new());
    l.nested.common.ops[Op::Get].add(1);
    l.nested.common.written.add(1);
    let (bs, ls) = (Source::new("btree").unwrap(), Source::new("lsm").unwrap());
    bs.add(b.clone()).unwrap();
    ls.add(l.clone()).unwrap();
    db.add_subordinate(&bs).unwrap();
    db.add_subordinate(&ls).unwrap();
    // Common, inside a btree and two levels down inside an lsm.
    assert_eq!(db.get("ops_get").unwrap().as_u64(), 11);
    assert_eq!(db.get("written").unwrap().as_u64(), 101);
    // IoStat, flattened twice into one btree: both parts fold.
    assert_eq!(db.get("bytes").unwrap().as_u64(), 16);
    assert_eq!(db.get("largest").unwrap().as_u64(), 4096);
    // Membership follows the tree, as for any aggregate: gone at once.
    db.remove_subordinate(&bs).unwrap();
    assert_eq!(db.get("ops_get").unwrap().as_u64(), 1);
    assert_eq!(db.get("bytes").unwrap().as_u64(), 0);
    db.add_subordinate(&bs).unwrap();
    assert_eq!(db.get("ops_get").unwrap().as_u64(), 11);
    // A revoke detaches the parts too: nothing of the instance is held afterwards.
    bs.revoke();
    assert_eq!(db.get("ops_get").unwrap().as_u64(), 1);
    assert_eq!(Arc::strong_count(&b), 1);
    // Retired: what the parts counted stays in the totals.
    db.retire_subordinate(&ls).unwrap();
    assert_eq!(db.get("ops_get").unwrap().as_u64(), 1);
    assert_eq!(db.get("written").unwrap().as_u64(), 1);
}

#[test]
fn a_retired_histogram_keeps_its_sum() {
    let db = Source::new("db").unwrap();
    db.add(ValueGroup::aggregates::<BtreeStat>()).unwrap();
    let t = Arc::new(BtreeStat::new());
    t.op_ns.record(300);
    t.op_ns.record(700);
    let s = Source::new("t").unwrap();
    s.add(t).unwrap();
    db.add_subordinate(&s).unwrap();
    db.retire_subordinate(&s).unwrap();
    assert_eq!(db.get("op_ns_sum").unwrap().as_u64(), 1000);
    assert_eq!(db.get("op_ns").unwrap().words().iter().sum::<u64>(), 2);
}

#[test]
fn the_const_constructor_makes_statics() {
    GLOBAL_BTREE.splits.inc();
    assert_eq!(GLOBAL_BTREE.splits.get(), 1);
    assert_eq!(GLOBAL_BTREE.common.ops[Op::Get].get(), 0);
    let l = LsmStat::new();
    l.pending[2].set(3);
    assert_eq!(l.pending[2].get(), 3);
}

#[test]
fn what_parts_and_second_aggregations_leave_is_no_leaf_of_its_own() {
    let db = Source::new("db").unwrap();
    // (Aggregates of both `Common` and `BtreeStat` in one source would both be named
    // `ops_get`: refused as shadowing.)
    db.add(ValueGroup::aggregates::<Common>()).unwrap();
    let t = Arc::new(BtreeStat::new());
    t.common.ops[Op::Get].add(4);
    t.live_keys.set(9);
    let s = Source::new("t").unwrap();
    s.add(t.clone()).unwrap();
    db.add_subordinate(&s).unwrap();
    db.retire_subordinate(&s).unwrap();
    // The total of the part keeps the retired counts ...
    assert_eq!(db.get("ops_get").unwrap().as_u64(), 4);
    let mut leaves = Vec::new();
    db.for_each_retained(|v| leaves.push((v.schema.name().to_owned(), v.descriptor.name)));
    // ... but the leaves are the btree's own values once: not again as `engine_common`
    // (a part of the btree), and no second aggregation.
    assert!(
        leaves.iter().all(|(schema, _)| schema == "btree"),
        "{leaves:?}"
    );
    assert!(leaves.iter().any(|(_, n)| *n == "ops_get"), "{leaves:?}");
    assert!(
        !leaves.iter().any(|(_, n)| n.starts_with("live_keys")),
        "{leaves:?}"
    );
    // A retired source is not added again: its counts are in db's totals.
    assert!(matches!(
        db.add_subordinate(&s),
        Err(statsfs::Error::Retired { .. })
    ));
}

#[test]
fn clears_reach_sums_and_parts() {
    let t = Arc::new(BtreeStat::new());
    t.op_ns.record(700);
    t.common.ops[Op::Put].add(3);
    let s = Source::new("t").unwrap();
    s.add(t.clone()).unwrap();
    // Clearing a histogram clears its sum too: `_count` and `_sum` stay a pair.
    s.clear("op_ns").unwrap();
    assert_eq!(t.op_ns.sum(), 0);
    assert_eq!(s.get("op_ns_sum").unwrap().as_u64(), 0);
    // Clearing an aggregate of a component clears that part of every struct below.
    let db = Source::new("db").unwrap();
    db.add(ValueGroup::aggregates::<Common>()).unwrap();
    db.add_subordinate(&s).unwrap();
    assert_eq!(db.get("ops_put").unwrap().as_u64(), 3);
    db.clear("ops_put").unwrap();
    assert_eq!(t.common.ops[Op::Put].get(), 0);
    assert_eq!(db.get("ops_put").unwrap().as_u64(), 0);
}
