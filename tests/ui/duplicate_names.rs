use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct VcpuStat {
    exits: Counter,
    #[stat(rename = "exits")]
    io_exits: Counter,
}

fn main() {}
