//! The example's VMM on its own: real VMs on `/dev/kvm` make exactly the exits the guest
//! program promises, per reason and per round, and the stop flag stops and resumes a
//! vCPU. Skipped (`common::skip`) without `/dev/kvm`.

mod common;

#[path = "../src/vmm.rs"]
#[allow(dead_code)]
mod vmm;

use std::sync::atomic::{AtomicBool, Ordering};

use vmm::{expected_exit_counts, ExitObserver, ExitReason, VcpuOutcome, Vm, Workload};

/// Counts exits per reason.
#[derive(Default)]
struct Counts(std::collections::HashMap<ExitReason, u64>, Vec<u64>);

impl ExitObserver for Counts {
    fn on_exit(&mut self, reason: ExitReason, _: u64) {
        *self.0.entry(reason).or_default() += 1;
    }
    fn on_round(&mut self, round: u64, _: u64) {
        self.1.push(round);
    }
}

#[test]
fn exits_match_the_documented_counts_per_round() {
    let Some(kvm) = common::kvm("exits_match_the_documented_counts_per_round") else {
        return;
    };
    for (n, rounds) in [(0, 1), (1, 2), (15, 1), (16, 3), (17, 1), (100, 2)] {
        let workload = Workload {
            iterations: n,
            rounds: Some(rounds),
        };
        let mut vm = Vm::new(&kvm, 2, workload).expect("create VM");
        for vcpu in vm.vcpus_mut() {
            let mut counts = Counts::default();
            let outcome = vcpu
                .run(&mut counts, &AtomicBool::new(false))
                .expect("run vCPU");
            assert_eq!(outcome, VcpuOutcome::Done);
            assert_eq!(counts.1, (1..=rounds).collect::<Vec<_>>());
            for reason in ExitReason::ALL {
                let want = expected_exit_counts(n)
                    .iter()
                    .find(|(r, _)| *r == reason)
                    .map_or(0, |&(_, k)| k * rounds);
                let got = counts.0.get(&reason).copied().unwrap_or(0);
                assert_eq!(got, want, "{reason} with N = {n}, {rounds} rounds");
            }
        }
    }
}

#[test]
fn closures_observe_and_stop_flag_stops_and_resumes() {
    let Some(kvm) = common::kvm("closures_observe_and_stop_flag_stops_and_resumes") else {
        return;
    };
    let workload = Workload {
        iterations: 1_000_000,
        rounds: None,
    };
    let mut vm = Vm::new(&kvm, 1, workload).expect("create VM");
    let stop = AtomicBool::new(false);
    let mut seen = 0u64;
    let mut observer = |_: ExitReason, _: u64| {
        seen += 1;
        if seen % 10 == 0 {
            stop.store(true, Ordering::Relaxed);
        }
    };
    let vcpu = &mut vm.vcpus_mut()[0];
    assert_eq!(
        vcpu.run(&mut observer, &stop).expect("run"),
        VcpuOutcome::Stopped
    );
    stop.store(false, Ordering::Relaxed);
    assert_eq!(
        vcpu.run(&mut observer, &stop).expect("resume"),
        VcpuOutcome::Stopped
    );
    assert_eq!(seen, 20);
}
