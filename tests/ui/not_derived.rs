use statsfs::cell::Counter;
use statsfs::ValueGroup;

// A struct of cells that forgot `#[derive(Stats)]`.
#[derive(Default)]
struct VcpuStat {
    exits: Counter,
}

fn main() {
    let _ = ValueGroup::aggregates::<VcpuStat>();
}
