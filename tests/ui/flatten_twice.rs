use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct IoStat {
    bytes: Counter,
}

#[derive(statsfs::Stats)]
struct DiskStat {
    #[stat(flatten, prefix = "read_")]
    read: IoStat,
    // The same struct twice more without a prefix: both are `bytes`.
    #[stat(flatten)]
    write: IoStat,
    #[stat(flatten)]
    trim: IoStat,
}

fn main() {
    let _ = <DiskStat as statsfs::Stats>::DESCRIPTORS;
}
