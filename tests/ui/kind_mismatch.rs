use statsfs::cell::{Counter, Peak};

#[derive(statsfs::Stats)]
struct VcpuStat {
    #[stat(kind = instant)]
    exits: Counter,
    #[stat(kind = cumulative)]
    depth: Peak,
}

fn main() {}
