use statsfs::cell::{LogHistogram, WithSum};

// An alias hides the sum from the derive, which refuses the field rather than drop it.
type Latency = LogHistogram<8, WithSum>;

#[derive(statsfs::Stats)]
struct ConnStat {
    service_ns: Latency,
}

fn main() {
    let _ = <ConnStat as statsfs::Stats>::DESCRIPTORS;
}
