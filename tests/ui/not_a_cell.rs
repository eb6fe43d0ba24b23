use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct VcpuStat {
    exits: Counter,
    name: String,
}

fn main() {}
