use statsfs::cell::{Flag, Gauge, LogHistogram};

#[derive(statsfs::Stats)]
struct TableStat {
    #[stat(aggregate = [sum, avg, sum])]
    live_keys: Gauge<u64>,
    #[stat(aggregate = [sum, none])]
    level: Gauge<u32>,
    #[stat(aggregate = [sum, avg])]
    op_ns: LogHistogram<8>,
    #[stat(aggregate = [count_zero, avg])]
    dirty: Flag,
    #[stat(aggregate = [])]
    empty: Gauge<u64>,
}

fn main() {}
