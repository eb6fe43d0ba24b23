use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct Generic {
    halt_exits: Counter,
}

#[derive(statsfs::Stats)]
struct VcpuStat {
    halt_exits: Counter,
    #[stat(flatten)]
    generic: Generic,
}

fn main() {
    let _ = <VcpuStat as statsfs::Stats>::DESCRIPTORS;
}
