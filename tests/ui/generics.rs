use statsfs::cell::Counter;

#[derive(statsfs::Stats)]
struct PerQueue<T> {
    exits: Counter,
    tag: core::marker::PhantomData<T>,
}

#[derive(statsfs::Stats)]
struct Borrowed<'a> {
    exits: &'a Counter,
}

fn main() {}
