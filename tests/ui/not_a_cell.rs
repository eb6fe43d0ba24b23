use statsfs::cell::Counter;

/// A type of the user's own, so that the message names it the same way whatever else
/// the build links (a `String` is printed `std::string::String` once a dependency has a
/// `String` of its own).
pub struct Label(pub &'static str);

#[derive(statsfs::Stats)]
struct VcpuStat {
    exits: Counter,
    name: Label,
}

fn main() {}
