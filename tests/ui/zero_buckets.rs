use statsfs::cell::{LinearHistogram, LogHistogram};

#[derive(statsfs::Stats)]
struct VcpuStat {
    exit_ns: LogHistogram<0>,
    sizes: LinearHistogram<8, 0>,
}

fn main() {}
