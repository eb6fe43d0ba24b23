use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct Generic {
    halt_exits: Counter,
}

#[derive(statsfs::Stats)]
struct VcpuStat {
    #[stat(flatten, rename = "g", hidden)]
    generic: Generic,
    #[stat(skip, unit = bytes)]
    scratch: Vec<u8>,
}

fn main() {}
