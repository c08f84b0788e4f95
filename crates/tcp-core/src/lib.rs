//! Sans-IO TCP engine for mtcp-rs (to be filled by the tcp-core issue).
#![deny(unsafe_code)]

pub mod buffer;
pub mod time;
