use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct VcpuStat {
    #[stat(unit = seconds, unit = bytes)]
    #[stat(hidden, hidden)]
    exits: Counter,
}

fn main() {}
