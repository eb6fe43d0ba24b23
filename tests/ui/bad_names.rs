use statsfs::cell::{Counter, Gauge};

#[derive(statsfs::Stats)]
struct VcpuStat {
    #[stat(names = [])]
    empty: Gauge<u8>,
    #[stat(names = ["RUNNABLE", "RUNNABLE", "two words"])]
    twice: Gauge<u8>,
    #[stat(names = ["A", "B"])]
    counted: Counter,
    #[stat(names = ["A"])]
    signed: Gauge<i32>,
    #[stat(names = "RUNNABLE")]
    not_a_list: Gauge<u8>,
}

fn main() {}
