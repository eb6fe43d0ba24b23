use statsfs::cell::{Counter, Gauge};
use statsfs::{Family, Label};

#[derive(Clone, Copy, Label)]
enum Op {
    Get,
    Put,
}

#[derive(statsfs::Stats)]
struct TableStat {
    // An array without a label name.
    per_cpu: [Counter; 4],
    // A label on a Family: the enum names it.
    #[stat(label = "operation")]
    ops: Family<Op, Counter>,
    // Not a label name.
    #[stat(label = "2nd level")]
    pending: [Gauge<u32>; 3],
    // A label on a single cell.
    #[stat(label = "queue")]
    depth: Gauge<u32>,
    // A family of families.
    #[stat(label = "cpu")]
    grid: [[Counter; 2]; 2],
    // Several aggregations of a family.
    #[stat(aggregate = [sum, max])]
    gets: Family<Op, Counter>,
}

fn main() {}
