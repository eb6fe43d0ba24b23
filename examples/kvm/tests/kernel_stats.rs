//! The kernel's own KVM statistics (`KVM_GET_STATS_FD`) read through
//! `statsfs::binary`: a real VM and vCPU on `/dev/kvm`, both blobs decoded, the stats the
//! kvm example relies on found, the data block refreshed, and the runtime schemas shared
//! between vCPUs by `Mirror`. Skipped (`common::skip`) without `/dev/kvm`.

mod common;

#[path = "../src/kernel_stats.rs"]
#[allow(dead_code)]
mod kernel_stats;
#[path = "../src/vmm.rs"]
#[allow(dead_code)]
mod vmm;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use statsfs::binary::Mirror;
use statsfs::binary::{Blob, StatsFile};
use statsfs::{Kind, Source, Unit};

use vmm::{ExitObserver, ExitReason, VcpuOutcome, Vm, Workload};

#[derive(Default)]
struct Count {
    exits: u64,
    halts: u64,
}

impl ExitObserver for Count {
    fn on_exit(&mut self, reason: ExitReason, _: u64) {
        self.exits += 1;
        self.halts += u64::from(reason == ExitReason::Hlt);
    }
}

#[test]
fn vm_and_vcpu_blobs_decode_with_the_stats_we_use() {
    let Some(kvm) = common::kvm("vm_and_vcpu_blobs_decode_with_the_stats_we_use") else {
        return;
    };
    let workload = Workload {
        iterations: 40,
        rounds: Some(1),
    };
    let mut vm = Vm::new(&kvm, 1, workload).expect("create a VM");
    assert!(
        kernel_stats::supported(vm.fd()),
        "KVM_CAP_BINARY_STATS_FD is missing (Linux < 5.14?)"
    );
    let mut seen = Count::default();
    let outcome = vm.vcpus_mut()[0]
        .run(&mut seen, &AtomicBool::new(false))
        .expect("run the guest");
    assert_eq!(outcome, VcpuOutcome::Done);
    assert_eq!(seen.halts, 40 / 16 + 1);

    let vm_file = kernel_stats::stats_fd(vm.fd()).expect("KVM_GET_STATS_FD on the VM");
    let vm_blob = Blob::read(&vm_file).expect("the VM's blob decodes");
    // The kernel names a VM after the *thread* that created it: `kvm-<tid>`.
    let vm_id = vm_blob.id().to_owned();
    assert!(vm_id.starts_with("kvm-"), "{vm_id}");
    assert!(!vm_blob.descriptors().is_empty());

    let vcpu_file =
        kernel_stats::stats_fd(vm.vcpus()[0].fd()).expect("KVM_GET_STATS_FD on the vCPU");
    let blob = Blob::read(&vcpu_file).expect("the vCPU's blob decodes");
    assert_eq!(blob.id(), format!("{vm_id}/vcpu-0"));
    let exits = blob.value("exits").expect("the vCPU has `exits`");
    assert!(
        exits >= seen.exits,
        "kernel exits {exits} < {} seen",
        seen.exits
    );
    let halts = blob.value("halt_exits").expect("the vCPU has `halt_exits`");
    assert!(halts >= 1, "halt_exits {halts}");
    let hists: Vec<_> = blob
        .descriptors()
        .iter()
        .filter(|d| d.kind == Kind::LogHistogram)
        .collect();
    for name in [
        "halt_poll_success_hist",
        "halt_poll_fail_hist",
        "halt_wait_hist",
    ] {
        let d = hists
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no log histogram {name} in {hists:?}"));
        assert!(d.size > 1, "{name}: {} buckets", d.size);
        assert_eq!(d.unit, Unit::Seconds, "{name}");
    }
    // Booleans of the kernel are instants of unit boolean.
    if let Some(b) = blob.descriptors().iter().find(|d| d.name == "guest_mode") {
        assert_eq!((b.kind, b.unit), (Kind::Instant, Unit::Boolean));
    }
}

#[test]
fn refresh_rereads_the_data_block_and_mirrors_share_schemas() {
    let Some(kvm) = common::kvm("refresh_rereads_the_data_block_and_mirrors_share_schemas") else {
        return;
    };
    let workload = Workload {
        iterations: 1_000_000,
        rounds: None,
    };
    let mut vm = Vm::new(&kvm, 2, workload).expect("create a VM");
    let mut file = StatsFile::open(kernel_stats::stats_fd(vm.vcpus()[0].fd()).expect("stats fd"))
        .expect("open the stats file");
    let before = file.value("exits").expect("exits");

    // Run 100 exits, then stop.
    let stop = AtomicBool::new(false);
    let mut n = 0u64;
    let mut observer = |_: ExitReason, _: u64| {
        n += 1;
        if n == 100 {
            stop.store(true, Ordering::Relaxed);
        }
    };
    vm.vcpus_mut()[0]
        .run(&mut observer, &stop)
        .expect("run the guest");
    file.refresh().expect("refresh");
    let after = file.value("exits").expect("exits");
    assert!(after >= before + 100, "exits {before} -> {after}");

    // Two vCPUs of one layout share one runtime schema: aggregates match them.
    let mirror = Mirror::new();
    let vm_dir = Source::new("vm").unwrap();
    let mut schemas = Vec::new();
    for (i, vcpu) in vm.vcpus().iter().enumerate() {
        let k = kernel_stats::KernelStats::open(
            &mirror,
            kernel_stats::VCPU_SCHEMA,
            vcpu.fd(),
            &format!("vCPU {i}"),
        )
        .expect("mirror the vCPU's stats");
        let dir = Source::new(format!("vcpu{i}")).unwrap();
        dir.add(k.group()).unwrap();
        vm_dir.add_subordinate(&dir).unwrap();
        schemas.push(Arc::clone(k.schema()));
    }
    assert!(Arc::ptr_eq(&schemas[0], &schemas[1]));
    vm_dir
        .add(statsfs::ValueGroup::aggregates_of(Arc::clone(&schemas[0])))
        .unwrap();
    let sum = vm_dir.get("exits").unwrap().as_u64();
    let each: u64 = vm_dir
        .subordinates()
        .iter()
        .map(|d| d.get("exits").unwrap().as_u64())
        .sum();
    assert_eq!(sum, each);
    assert!(sum >= after);
}
