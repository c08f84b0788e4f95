//! Shared helpers for the mtcp-rs benchmarks. Each benchmark is a binary in
//! `src/bin/`; `cargo xtask bench` runs every one of them in release mode.
//! Benchmarks print their figures and never assert on timing.
//!
//! Every binary reports into the one result file,
//! `target/bench/latest.json`, with [`record::Record`] and
//! [`record::append_records`] (repetitions with median, min and max; the
//! ratio to Linux where the bench measures Linux too); the Markdown table
//! (`latest.md`) and the SVG chart (`latest.svg`) beside it are rewritten
//! on each append ([`report`]). Every binary takes `--quick` (the whole
//! `cargo xtask bench --quick` stays within two minutes) and, when it needs
//! network namespaces and is not run as root, says SKIPPED and exits 0.
//! The side-by-side runs of our stack and Linux over a veth pair live in
//! [`stacks`] (binary `stacks`).

pub mod record;
pub mod report;
pub mod stacks;

pub use record::median;
