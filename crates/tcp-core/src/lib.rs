//! Sans-IO TCP engine for mtcp-rs (to be filled by the tcp-core issue).
#![deny(unsafe_code)]

pub mod assembler;
pub mod buffer;
pub mod cc;
pub mod isn;
pub mod rtt;
pub mod time;
