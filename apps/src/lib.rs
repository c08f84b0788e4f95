//! mtcp-rs's applications, after mTCP's bundled apps: `epserver` (a
//! multi-core HTTP/1.1 static file server), `epwget` (an HTTP load
//! generator) and `perf` (short connections, ping-pong and bulk transfer,
//! client and server).
//!
//! Every app is written once against [`net::NetContext`], mTCP's per-core
//! calls, and runs on two backends with the same code path:
//!
//! ```text
//!   app loop (server::serve, client::run_load, perf::serve ...)
//!        │  listen/accept/connect/read/write/close/wait on a per-core context
//!        ├── kernel::KernelStack   Linux sockets + epoll (mio), SO_REUSEPORT
//!        └── our stack (runtime)   per-core contexts over AF_XDP or memory
//! ```
//!
//! [`run`] spreads an app over the cores (one pinned thread and one context
//! each) and summarises what the cores measured; [`hist`] is the latency
//! histogram behind the percentiles.

pub mod cli;
pub mod client;
pub mod hist;
pub mod http;
pub mod kernel;
pub mod net;
pub mod ours;
pub mod perf;
pub mod run;
pub mod server;
