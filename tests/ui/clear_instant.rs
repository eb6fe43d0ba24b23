use statsfs::cell::Gauge;
use std::sync::atomic::AtomicU64;

#[derive(statsfs::Stats)]
struct VcpuStat {
    #[stat(clear)]
    pages: Gauge,
    #[stat(kind = instant, clear)]
    queue: AtomicU64,
    #[stat(clear, read_only)]
    exits: AtomicU64,
}

fn main() {}
