//! `statsfs`: a kvm_stat-like live view, dumps and schemas of statsfs trees, bulk stats
//! files and KVM's stats files. Everything is in the library (`statsfs_cli`); the user's guide is `docs/CLI.md`.

fn main() -> std::process::ExitCode {
    statsfs_cli::main()
}
