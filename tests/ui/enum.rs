#[derive(statsfs::Stats)]
enum VcpuStat {
    Running,
    Halted,
}

fn main() {}
