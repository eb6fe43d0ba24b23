use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct Inner {
    hits: Counter,
    #[stat(skip)]
    name: String,
}

// Inner has no `const` zero (its `name` is no stat), so neither can Outer: the error says
// how to opt out.
#[derive(statsfs::Stats)]
struct Outer {
    #[stat(flatten)]
    inner: Inner,
}

fn main() {}
