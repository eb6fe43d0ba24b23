//! The kvm example's tree, in process: real VMs on `/dev/kvm` run a fixed workload, and
//! the tree (our stats, their sums, the kernel's mirrored stats and their sums) is read
//! through `Source::get` and a bulk view. Skipped (`common::skip`) without `/dev/kvm`.
//!
//! `tests/kvm_example.rs` checks the same through the mounted files of the real binary.

mod common;

#[path = "../src/kernel_stats.rs"]
#[allow(dead_code)]
mod kernel_stats;
#[path = "../src/stats.rs"]
#[allow(dead_code)]
mod stats;
#[path = "../src/tree.rs"]
#[allow(dead_code)]
mod tree;
#[path = "../src/vmm.rs"]
#[allow(dead_code)]
mod vmm;

use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;

use statsfs::binary::{Blob, Selection};
use statsfs::binary::{BulkView, Mirror};
use statsfs::Scope;
use statsfs::{walk, Place, Source, ValueRef, Visitor, WalkOptions};

use kernel_stats::{KernelStats, VCPU_SCHEMA, VM_SCHEMA};
use stats::{Home, StatsObserver, VcpuStat, VmStat};
use tree::KvmTree;
use vmm::{VcpuOutcome, Vm, Workload};

const VMS: usize = 2;
const VCPUS: u32 = 2;
const N: u32 = 100;

fn get(s: &Source, name: &str) -> u64 {
    s.get(name)
        .unwrap_or_else(|e| panic!("{}: {e}", s.path()))
        .as_u64()
}

fn sub(s: &Source, name: &str) -> Source {
    s.subordinate(name)
        .unwrap_or_else(|| panic!("{} has no {name}", s.path()))
}

/// Every visible path, as the mount would show it.
#[derive(Default)]
struct Paths(Vec<String>);

impl Visitor for Paths {
    fn value(&mut self, place: &Place<'_>, v: &ValueRef<'_>) {
        self.0.push(format!("{}/{}", place.path, v.descriptor.name));
    }
}

#[test]
fn the_tree_counts_exactly_and_mirrors_the_kernel() {
    let Some(kvm) = common::kvm("the_tree_counts_exactly_and_mirrors_the_kernel") else {
        return;
    };
    let workload = Workload {
        iterations: N,
        rounds: Some(1),
    };
    let tree = KvmTree::new().unwrap();
    let mirror = Mirror::new();
    let mut vms = Vec::new();
    for _ in 0..VMS {
        let vm = Vm::new(&kvm, VCPUS, workload).expect("create a VM");
        let name = format!("{}-{}", std::process::id(), vm.fd().as_raw_fd());
        let vm_stats = Home::Heap(Arc::new(VmStat::default()));
        vm_stats.online_vcpus.set(VCPUS);
        let k = KernelStats::open(&mirror, VM_SCHEMA, vm.fd(), &name).expect("VM stats");
        let node = tree.add_vm(&name, &vm_stats, Some(&k)).unwrap();
        let mut vcpu_stats = Vec::new();
        for vcpu in vm.vcpus() {
            let s = Home::Heap(Arc::new(VcpuStat::default()));
            let k = KernelStats::open(&mirror, VCPU_SCHEMA, vcpu.fd(), "vCPU").expect("stats");
            tree.add_vcpu(&node, vcpu.id(), &s, Some(&k)).unwrap();
            vcpu_stats.push(s);
        }
        vms.push((vm, node, vm_stats, vcpu_stats));
    }

    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        for (vm, _, vm_stats, vcpu_stats) in &mut vms {
            for (vcpu, s) in vm.vcpus_mut().iter_mut().zip(vcpu_stats.iter()) {
                let mut observer = StatsObserver::new(s, vm_stats);
                let stop = &stop;
                scope.spawn(move || {
                    let outcome = vcpu.run(&mut observer, stop).expect("run");
                    assert_eq!(outcome, VcpuOutcome::Done);
                });
            }
        }
    });

    let root = tree.vmm();
    let per_round = vmm::expected_exit_counts(N);
    let per_vcpu_exits: u64 = per_round.iter().map(|&(_, n)| n).sum();
    let mut kernel_vm_sum = 0;
    for (_, node, vm_stats, _) in &vms {
        let vm = node.source();
        assert_eq!(
            get(vm, "exits_by_reason_io_out"),
            u64::from(VCPUS * N),
            "{}",
            vm.name()
        );
        assert_eq!(get(vm, "online_vcpus"), u64::from(VCPUS));
        assert!(vm_stats.max_round_ns.get() > 0);
        assert_eq!(get(vm, "rounds"), u64::from(VCPUS));
        let vm_kernel = node.kernel().expect("the VM's kernel/");
        let mut kernel_exits = 0;
        for c in 0..VCPUS {
            let vcpu = sub(vm, &format!("vcpu{c}"));
            assert_eq!(get(&vcpu, "exits_by_reason_io_out"), u64::from(N));
            assert_eq!(get(&vcpu, "exits_by_reason_io_in"), 1);
            assert_eq!(get(&vcpu, "exits_by_reason_io_out_ctl"), 1);
            assert_eq!(get(&vcpu, "exits"), per_vcpu_exits);
            assert_eq!(get(&vcpu, "halt_exits"), u64::from(N / 16 + 1));
            assert_eq!(get(&vcpu, "runnable"), 0);
            assert_eq!(get(&vcpu, "in_guest"), 0);
            let hist = vcpu.get("exit_handling_ns").unwrap();
            assert_eq!(hist.words().iter().sum::<u64>(), per_vcpu_exits);
            let k = sub(vm_kernel, &format!("vcpu{c}"));
            assert!(get(&k, "exits") >= per_vcpu_exits);
            assert_eq!(get(&k, "halt_exits"), u64::from(N / 16 + 1));
            kernel_exits += get(&k, "exits");
        }
        // The VM's directory in kvm/ sums its vCPUs' kernel stats (they are below it) and
        // shows the kernel's VM stats.
        assert_eq!(get(vm_kernel, "exits"), kernel_exits);
        assert!(vm_kernel.get("remote_tlb_flush").is_ok());
        kernel_vm_sum += kernel_exits;
    }
    let total = (VMS as u64) * u64::from(VCPUS);
    assert_eq!(get(root, "online_vcpus"), total);
    assert_eq!(get(root, "exits_by_reason_io_out"), total * u64::from(N));
    assert_eq!(get(root, "exits"), total * per_vcpu_exits);
    assert_eq!(get(root, "halt_exits"), total * u64::from(N / 16 + 1));
    assert_eq!(get(tree.kernel(), "exits"), kernel_vm_sum);
    assert_eq!(
        get(tree.kernel(), "halt_exits"),
        total * u64::from(N / 16 + 1)
    );

    // What a mount shows: kvm/ is debugfs' layout, vmm/ the same layout of our own, and
    // no directory is hidden (there are no shadow copies).
    let mut paths = Paths::default();
    walk(tree.kernel(), WalkOptions::default(), &mut paths);
    walk(root, WalkOptions::default(), &mut paths);
    let vm0 = vms[0].1.source().name().to_owned();
    for want in [
        "vmm/exits".to_owned(),
        "kvm/exits".to_owned(),
        "kvm/remote_tlb_flush".to_owned(),
        format!("vmm/{vm0}/exits_by_reason_io_out"),
        format!("vmm/{vm0}/online_vcpus"),
        format!("kvm/{vm0}/exits"),
        format!("vmm/{vm0}/vcpu1/exits_by_reason_io_out"),
        format!("kvm/{vm0}/vcpu1/halt_wait_hist"),
    ] {
        assert!(paths.0.contains(&want), "{want} missing");
    }
    let mut hidden = Paths::default();
    walk(tree.kernel(), WalkOptions { hidden: true }, &mut hidden);
    walk(root, WalkOptions { hidden: true }, &mut hidden);
    assert_eq!(hidden.0, paths.0, "nothing hidden in either tree");

    // The bulk view of each tree, values named by relative path.
    let mut view = BulkView::new(root, Scope::Subtree, &Selection::all()).unwrap();
    let mut blob = Vec::new();
    view.encode(&mut blob);
    let b = Blob::decode(&blob).unwrap();
    assert_eq!(b.id(), "vmm");
    assert_eq!(
        b.value("exits_by_reason_io_out"),
        Some(total * u64::from(N))
    );
    assert_eq!(
        b.value(&format!("{vm0}/exits_by_reason_io_out")),
        Some(u64::from(VCPUS * N))
    );
    assert_eq!(
        b.value(&format!("{vm0}/vcpu0/exits_by_reason_io_out")),
        Some(u64::from(N))
    );
    let mut view = BulkView::new(tree.kernel(), Scope::Subtree, &Selection::all()).unwrap();
    view.encode(&mut blob);
    let b = Blob::decode(&blob).unwrap();
    assert_eq!(b.id(), "kvm");
    assert_eq!(
        b.value(&format!("{vm0}/vcpu0/halt_exits")),
        Some(u64::from(N / 16 + 1))
    );
}
