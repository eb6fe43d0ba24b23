#[derive(statsfs::Stats)]
struct VcpuStat {
    exits: u64,
    ratio: f64,
    cpus: std::sync::atomic::AtomicUsize,
}

fn main() {}
