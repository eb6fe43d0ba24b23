//! The tree the exposition benchmarks read (`openmetrics`, `http`): `kvm/` with `vms` VMs
//! (`<vm>-1`, label `vm`) of `vcpus` vCPUs (`vcpu<i>`, label `vcpu`), each a block of
//! `stats` counters `stat0`... whose values are [`value`].
#![allow(dead_code)]

use std::sync::Arc;

use statsfs::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};

/// The name of counter `i`, interned.
pub fn stat_name(i: usize) -> &'static str {
    statsfs::schema::intern(&format!("stat{i}"))
}

/// What counter `stat` of vCPU `vcpu` of VM `vm` holds: distinct everywhere.
pub fn value(vm: usize, vcpu: usize, stat: usize) -> u64 {
    (vm * 1_000_003 + vcpu * 10_007 + stat * 101) as u64
}

/// The tree: `vms` × `vcpus` × `stats` series.
pub fn vcpu_tree(vms: usize, vcpus: usize, stats: usize) -> Source {
    let schema = Schema::new_runtime(
        "vcpu",
        (0..stats)
            .map(|i| {
                Descriptor::new(stat_name(i), ValueType::U64, Kind::Cumulative)
                    .with_doc("A vCPU counter")
                    .with_offset(8 * i)
            })
            .collect(),
    )
    .unwrap();
    let root = Source::new("kvm").unwrap();
    for vm in 0..vms {
        let v = Source::new(format!("{vm}-1")).unwrap();
        v.set_label("vm", format!("{vm}-1")).unwrap();
        for cpu in 0..vcpus {
            let c = Source::new(format!("vcpu{cpu}")).unwrap();
            c.set_label("vcpu", cpu.to_string()).unwrap();
            let words: Arc<[u64]> = (0..stats).map(|s| value(vm, cpu, s)).collect();
            c.add(ValueGroup::block(
                schema.clone(),
                Arc::new(move |o: &mut [u64]| {
                    o.copy_from_slice(&words);
                    Ok(())
                }),
            ))
            .unwrap();
            v.add_subordinate(&c).unwrap();
        }
        root.add_subordinate(&v).unwrap();
    }
    root
}
