use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct VcpuStat {
    #[stat(rename = "exits/io")]
    io_exits: Counter,
    #[stat(rename = "..")]
    up: Counter,
    #[stat(rename = "")]
    empty: Counter,
    #[stat(rename = "hidden\x1b[8m")]
    escape: Counter,
}

fn main() {}
