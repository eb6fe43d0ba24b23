use statsfs::cell::{Flag, LogHistogram};

#[derive(statsfs::Stats)]
struct VcpuStat {
    #[stat(aggregate = avg)]
    running: Flag,
    #[stat(aggregate = max)]
    exit_ns: LogHistogram<8>,
}

fn main() {}
