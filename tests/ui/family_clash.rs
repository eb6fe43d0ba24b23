use statsfs::cell::Counter;
use statsfs::{Family, Label};

#[derive(Clone, Copy, Label)]
enum Op {
    Get,
    Put,
}

#[derive(statsfs::Stats)]
struct TableStat {
    // `ops_put` is also the name of a member of `ops`.
    ops_put: Counter,
    ops: Family<Op, Counter>,
}

fn main() {
    let _ = <TableStat as statsfs::Stats>::DESCRIPTORS;
}
