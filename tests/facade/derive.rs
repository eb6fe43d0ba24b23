//! What `#[derive(Stats)]` generates: descriptors, defaults, flatten, registration.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32};

use statsfs::cell::{Counter, Flag, Gauge, LinearHistogram, LogHistogram, Peak, ShardedCounter};
use statsfs::{Aggregation, Base, Kind, Stats, Storage, Unit, ValueType};

#[derive(Stats)]
struct Generic {
    /// Times the vCPU halted
    halt_exits: Counter,
    /// Time spent waiting in halt
    #[stat(unit = seconds, exponent = -9)]
    halt_wait_ns: Counter,
}

/// A vCPU's statistics.
#[derive(Stats)]
#[stats(name = "kvm_vcpu")]
struct VcpuStat {
    /// Port writes
    ///
    /// (This second paragraph is not part of the description.)
    io_out: Counter,
    #[stat(flatten)]
    generic: Generic,
    /// Exit handling time,
    /// in nanoseconds
    #[stat(unit = seconds, exponent = -9)]
    exit_ns: LogHistogram<32>,
    #[stat(unit = bytes, base = 2, exponent = 10)]
    sizes: LinearHistogram<4, 512>,
    depth: Peak<u32>,
    pending: Gauge<i32>,
    guest_mode: Flag,
    #[stat(kind = peak, aggregate = max, rename = "max_drift")]
    drift: AtomicI64,
    #[stat(kind = instant, aggregate = avg, read_only)]
    load: AtomicU32,
    #[stat(aggregate = count_zero)]
    blocked: AtomicBool,
    #[stat(hidden, clear)]
    internal: Counter,
    hits: ShardedCounter,
    #[stat(skip)]
    _scratch: Vec<u8>,
}

fn desc(name: &str) -> &'static statsfs::Descriptor {
    VcpuStat::DESCRIPTORS
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn one_descriptor_per_stat_in_declaration_order() {
    let names: Vec<_> = VcpuStat::DESCRIPTORS.iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "io_out",
            "halt_exits",
            "halt_wait_ns",
            "exit_ns",
            "sizes",
            "depth",
            "pending",
            "guest_mode",
            "max_drift",
            "load",
            "blocked",
            "internal",
            "hits"
        ]
    );
    assert_eq!(VcpuStat::SCHEMA.name(), "kvm_vcpu");
    assert!(VcpuStat::SCHEMA.type_name().ends_with("derive::VcpuStat"));
    assert_eq!(Generic::SCHEMA.name(), "generic");
}

#[test]
fn offsets_point_at_the_fields() {
    use core::mem::offset_of;
    assert_eq!(desc("io_out").offset, offset_of!(VcpuStat, io_out));
    assert_eq!(
        desc("halt_wait_ns").offset,
        offset_of!(VcpuStat, generic) + offset_of!(Generic, halt_wait_ns)
    );
    assert_eq!(desc("hits").offset, offset_of!(VcpuStat, hits));
}

#[test]
fn kinds_types_units_and_defaults() {
    let d = desc("io_out");
    assert_eq!(
        (d.kind, d.ty, d.aggregation, d.clearable, d.unit),
        (
            Kind::Cumulative,
            ValueType::U64,
            Aggregation::Sum,
            true,
            Unit::None
        )
    );
    assert_eq!(d.doc, "Port writes");
    let d = desc("exit_ns");
    assert_eq!(
        (d.kind, d.size, d.storage, d.unit, d.scale.exponent),
        (Kind::LogHistogram, 32, Storage::Buckets, Unit::Seconds, -9)
    );
    assert_eq!(d.doc, "Exit handling time, in nanoseconds");
    let d = desc("sizes");
    assert_eq!(d.kind, Kind::LinearHistogram { bucket_size: 512 });
    assert_eq!(
        (d.scale.base, d.scale.exponent, d.unit),
        (Base::Two, 10, Unit::Bytes)
    );
    let d = desc("depth");
    assert_eq!(
        (d.kind, d.ty, d.aggregation),
        (Kind::Peak, ValueType::U32, Aggregation::Max)
    );
    let d = desc("pending");
    assert_eq!(
        (d.kind, d.ty, d.clearable),
        (Kind::Instant, ValueType::I32, false)
    );
    let d = desc("guest_mode");
    assert_eq!(
        (d.ty, d.unit, d.kind),
        (ValueType::Bool, Unit::Boolean, Kind::Instant)
    );
    let d = desc("max_drift");
    assert_eq!(
        (d.kind, d.ty, d.aggregation, d.clearable),
        (Kind::Peak, ValueType::I64, Aggregation::Max, true)
    );
    let d = desc("load");
    assert_eq!((d.aggregation, d.clearable), (Aggregation::Avg, false));
    let d = desc("blocked");
    assert_eq!(
        (d.ty, d.aggregation, d.kind),
        (ValueType::Bool, Aggregation::CountZero, Kind::Instant)
    );
    let d = desc("internal");
    assert!(d.hidden && d.clearable);
    assert_eq!(desc("hits").storage, Storage::Sharded);
    for d in VcpuStat::DESCRIPTORS {
        assert_eq!(d.check(), Ok(()), "{}", d.name);
    }
}

#[test]
fn every_schema_is_registered_in_a_stable_order() {
    let all = statsfs::registry::schemas();
    let ours: Vec<_> = all
        .iter()
        .filter(|s| s.type_name().starts_with("facade::derive::"))
        .map(|s| s.type_name())
        .collect();
    assert_eq!(
        ours,
        [
            "facade::derive::Generic",
            "facade::derive::VcpuStat",
            "facade::derive::via_core::Direct"
        ]
    );
    assert!(all.iter().any(|s| std::ptr::eq(*s, VcpuStat::SCHEMA)));
    let again: Vec<_> = statsfs::registry::schemas()
        .iter()
        .map(|s| s.type_name())
        .collect();
    assert_eq!(again, all.iter().map(|s| s.type_name()).collect::<Vec<_>>());
}

mod via_core {
    //! A user of `statsfs-core` + `statsfs-derive` directly names the API's path.
    extern crate statsfs_core;
    use statsfs_core::cell::Counter;

    #[derive(statsfs_derive::Stats)]
    #[stats(crate = statsfs_core)]
    pub struct Direct {
        pub exits: Counter,
    }

    #[test]
    fn derive_with_a_crate_path() {
        use statsfs_core::Stats;
        assert_eq!(Direct::DESCRIPTORS[0].name, "exits");
    }
}
