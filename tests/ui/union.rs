#[derive(statsfs::Stats)]
union VcpuStat {
    exits: u64,
}

fn main() {}
