//! The `statsfs` tool against the real KVM example: `statsfs kvm` finds the example's VMs
//! and vCPUs through the kernel's stats files it holds open (`pidfd_getfd`, as root), and
//! its totals equal the example's `kvm/` tree, which mirrors the same files; `statsfs
//! top` over the mount shows the same numbers. The example runs its rounds and then
//! idles, so the kernel's counters stand still while they are compared.
//!
//! Skipped (`SKIPPED: <test>: <reason>`) without `/dev/kvm`, `/dev/fuse` or root.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use common::example::Example;

fn tool(args: &[&str]) -> String {
    let mut out = Vec::new();
    let mut argv = vec!["statsfs"];
    argv.extend_from_slice(args);
    statsfs_cli::run(argv, &mut out).unwrap_or_else(|e| panic!("statsfs {args:?}: {e}"));
    String::from_utf8(out).unwrap()
}

/// `statsfs kvm --once -d 0.05 --pid PID` and `more`.
fn kvm_once(pid: &str, more: &[&str]) -> String {
    let mut args = vec!["kvm", "--once", "-d", "0.05", "--pid", pid];
    args.extend_from_slice(more);
    tool(&args)
}

/// A `--once` table: name -> total.
fn totals(text: &str) -> HashMap<String, u64> {
    text.lines()
        .skip(2)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[1].parse().unwrap())
        })
        .collect()
}

fn read_u64(p: &Path) -> u64 {
    let t = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    t.trim().parse().unwrap()
}

#[test]
fn statsfs_kvm_reads_the_kernel_files_the_vmm_holds() {
    const TEST: &str = "statsfs_kvm_reads_the_kernel_files_the_vmm_holds";
    if !common::can_run_and_mount(TEST) {
        return;
    }
    let (ex, _) = Example::start(
        Path::new(env!("CARGO_BIN_EXE_kvm")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "kvm-cli",
        &[
            "--vms",
            "2",
            "--vcpus",
            "2",
            "--iterations",
            "500",
            "--rounds",
            "1",
            "--duration",
            "0",
        ],
    );
    let (pid, kvm) = (ex.pid().to_string(), ex.mount.join("kvm"));

    let from_kernel = totals(&kvm_once(&pid, &[]));
    let from_mount = totals(&tool(&[
        "top",
        "--once",
        "-d",
        "0.05",
        kvm.to_str().unwrap(),
    ]));
    for name in [
        "exits",
        "halt_exits",
        "mmio_exits",
        "io_exits",
        "insn_emulation",
    ] {
        let file = read_u64(&kvm.join(name));
        assert_eq!(
            from_kernel.get(name),
            Some(&file),
            "{name}: statsfs kvm vs kvm/{name}"
        );
        assert_eq!(
            from_mount.get(name),
            Some(&file),
            "{name}: statsfs top vs kvm/{name}"
        );
    }
    assert!(from_kernel["exits"] > 0);
    // Every kernel stat the mount shows, statsfs kvm shows with the same total.
    assert_eq!(from_kernel, from_mount);
    // Scanning every process (this test's runs the tool, and holds the duplicates it
    // takes; other VMMs may run on the machine): each of the example's VMs is there once,
    // with the same counts, and none is this process's.
    let everyone = totals(&tool(&[
        "kvm",
        "--once",
        "-d",
        "0.05",
        "--children",
        "exits",
    ]));
    let mine = format!("{}-", std::process::id());
    assert!(
        everyone.keys().all(|vm| !vm.starts_with(&mine)),
        "the tool's own duplicates counted: {everyone:?}"
    );
    let ours = totals(&kvm_once(&pid, &["--children", "exits"]));
    for (vm, exits) in &ours {
        assert_eq!(
            everyone.get(vm),
            Some(exits),
            "{vm}: statsfs kvm without --pid"
        );
    }

    // Its VMs are the example's, by name, and each VM's vCPUs.
    let mut vms: Vec<String> = fs::read_dir(&kvm)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.file_type()
                .unwrap()
                .is_dir()
                .then(|| e.file_name().into_string().unwrap())
        })
        .collect();
    vms.sort();
    let per_vm = totals(&kvm_once(&pid, &["--children", "exits"]));
    let mut found: Vec<String> = per_vm.keys().cloned().collect();
    found.sort();
    assert_eq!(found, vms, "VM names");
    for vm in &vms {
        assert_eq!(per_vm[vm], read_u64(&kvm.join(vm).join("exits")), "{vm}");
        let source = format!("kvm/{vm}");
        let per_vcpu = totals(&kvm_once(
            &pid,
            &["--source", &source, "--children", "exits"],
        ));
        for (vcpu, exits) in &per_vcpu {
            assert_eq!(
                *exits,
                read_u64(&kvm.join(vm).join(vcpu).join("exits")),
                "{vm}/{vcpu}"
            );
        }
        assert_eq!(per_vcpu.len(), 2, "{vm}: {per_vcpu:?}");
    }

    // The schema of a kernel file: the layout's fields, and the rule it folds by.
    let schema = tool(&[
        "schema",
        kvm.join(&vms[0]).join("vcpu0/.stats").to_str().unwrap(),
    ]);
    assert!(
        schema
            .lines()
            .any(|l| l.starts_with("exits ") && l.contains("cumulative")),
        "{schema}"
    );
    drop(ex);
}

#[test]
fn statsfs_kvm_names_a_process_it_cannot_read() {
    const TEST: &str = "statsfs_kvm_names_a_process_it_cannot_read";
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    // Holding no KVM file at all: nothing to read, said in one line.
    let err = statsfs_cli::run(["statsfs", "kvm", "--once", "--pid", &me], &mut out)
        .expect_err("this process holds no KVM stats file");
    let text = err.to_string();
    assert!(
        text.contains(&format!("process {me}")) && text.contains("holds no KVM stats file"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
    // A VMM with a VM but no stats file: the line says why it cannot be read.
    let Some(kvm) = common::kvm(TEST) else {
        return;
    };
    let _vm = kvm.create_vm().expect("create a VM");
    let err = statsfs_cli::run(["statsfs", "kvm", "--once", "--pid", &me], &mut out)
        .expect_err("a VM without a stats file");
    let text = err.to_string();
    assert!(
        text.contains("runs 1 VM(s) but holds no KVM stats file"),
        "{text}"
    );
    assert!(
        text.contains("only for the process that owns the VM"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
}
