//! Every misuse of `#[derive(Stats)]` is a compile error on the offending span; the
//! expected messages are checked in beside each case (`tests/ui/*.stderr`). Regenerate
//! them after an intended change with `TRYBUILD=overwrite cargo test --test ui`, then
//! read the diff.

#[test]
fn derive_misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
