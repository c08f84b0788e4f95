//! Shared helpers for the mtcp-rs benchmarks. Each benchmark is a binary in
//! `src/bin/`; `cargo xtask bench` runs every one of them in release mode.
//! Benchmarks print their figures and never assert on timing.
//!
//! Every binary can report into the one result file,
//! `target/bench/latest.json`, with [`record::Record`] and
//! [`record::append_records`]; the Markdown table (`latest.md`) and the SVG
//! chart (`latest.svg`) beside it are rewritten on each append
//! ([`report`]). The side-by-side runs of our stack and Linux over a veth
//! pair live in [`stacks`] (binary `stacks`).

pub mod record;
pub mod report;
pub mod stacks;

pub use record::median;
