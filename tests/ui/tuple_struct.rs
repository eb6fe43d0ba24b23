use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct VcpuStat(Counter, Counter);

fn main() {}
