use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct IoStat {
    bytes: Counter,
}

#[derive(statsfs::Stats)]
struct DiskStat {
    // A prefix on a stat: rename it instead.
    #[stat(prefix = "rx_")]
    packets: Counter,
    // A prefix that makes no file name.
    #[stat(flatten, prefix = "a/b_")]
    read: IoStat,
    // `rename` on a flatten.
    #[stat(flatten, rename = "w")]
    write: IoStat,
}

fn main() {}
