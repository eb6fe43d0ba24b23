use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
#[stats(prefix = "kvm")]
struct VcpuStat {
    #[stat(units = seconds)]
    exits: Counter,
    #[stat(unit = parsecs, aggregate = median, kind = histogram)]
    halts: Counter,
}

fn main() {}
