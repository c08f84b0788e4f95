//! Per-core stack contexts joining packet-io, tcp-core and timers, in mTCP's
//! thread model.
#![deny(unsafe_code)]

pub mod affinity;
mod api;
pub mod arp;
pub mod config;
mod context;
pub mod mailbox;
pub mod netif;
pub mod queue;
pub mod stack;
pub mod stats;
mod stream;

pub use api::Error;
pub use config::{Backend, RuntimeConfig, ThreadMode};
pub use context::{Context, Runtime, StartError, MAX_CALL_BYTES};
pub use epoll_events::{CtlOp, Event, Events};
pub use socket_api::{Errno, Fd, MsgFlags, Shutdown, SockOpt, SockOptName};
pub use stats::CoreStats;
pub use stream::{TcpListener, TcpStream};
