use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
#[stats(prefix = "kvm", nmae = "kvm_vcpu")]
struct VcpuStat {
    #[stat(units = seconds)]
    exits: Counter,
    #[stat(unit = parsecs, aggregate = median, kind = histogram)]
    halts: Counter,
    #[stat(unit = second, agregate = sum, kind = instnat)]
    waits: Counter,
}

fn main() {}
