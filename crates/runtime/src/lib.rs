//! Per-core stack contexts joining packet-io, tcp-core and timers, in mTCP's
//! thread model.
//!
//! Not built yet: the runtime issue (issue 4) fills this crate.
#![deny(unsafe_code)]
