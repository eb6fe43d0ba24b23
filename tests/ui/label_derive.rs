use statsfs::Label;

#[derive(Clone, Copy, Label)]
#[label(name = "le")]
enum Bucket {
    Low,
}

#[derive(Clone, Copy, Label)]
enum Op {
    Get,
    #[label(rename = "get")]
    Fetch,
    #[label(rename = "a/b")]
    Slash,
    Put(u8),
}

#[derive(Clone, Copy, Label)]
struct NotAnEnum;

fn main() {}
