// Several mistakes in one struct: each is reported once, on its own span, and code that
// uses the struct reports nothing more.
use statsfs::cell::{Counter, Flag};
use std::sync::Arc;

#[derive(statsfs::Stats, Default)]
struct VcpuStat {
    #[stat(unit = seconds, exponent = 3)]
    exits: Counter,
    #[stat(aggregate = avg)]
    running: Flag,
    #[stat(colour = "red")]
    halts: Counter,
}

fn main() {
    let vcpu = statsfs::Source::new("vcpu0").unwrap();
    vcpu.add(Arc::new(VcpuStat::default())).unwrap();
    let _ = <VcpuStat as statsfs::Stats>::SCHEMA;
}
