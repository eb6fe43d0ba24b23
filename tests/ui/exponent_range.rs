use statsfs::cell::{Counter, Flag};

#[derive(statsfs::Stats)]
struct VcpuStat {
    #[stat(unit = bytes, exponent = -3)]
    bytes: Counter,
    #[stat(unit = seconds, exponent = 9)]
    time: Counter,
    #[stat(exponent = 70000)]
    huge: Counter,
    #[stat(exponent = 1)]
    running: Flag,
    #[stat(base = 16)]
    hex: Counter,
}

fn main() {}
