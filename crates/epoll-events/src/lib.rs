//! epoll-like readiness events with Linux's level- and edge-triggered semantics.
//!
//! Not built yet: the runtime issue (issue 4) fills this crate.
#![deny(unsafe_code)]
