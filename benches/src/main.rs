//! In-process benchmarks of mtcp-rs, run by `cargo xtask bench`.
fn main() {}
