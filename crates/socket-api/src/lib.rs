//! mTCP-style BSD socket API over per-core contexts.
//!
//! Not built yet: the runtime issue (issue 4) fills this crate.
#![deny(unsafe_code)]
