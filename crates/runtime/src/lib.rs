//! The mtcp-rs runtime: per-core stack contexts in mTCP's thread model,
//! joining packet-io (AF_XDP or memory queues), the network layer (ARP,
//! IPv4, ICMP), tcp-core's engine behind socket-api's descriptor table, and
//! epoll-events, with the application API under mTCP's names.
//!
//! # Start-up
//! [`RuntimeConfig`] is read from a TOML file (`examples/mtcp.toml`
//! documents every key): interface, address, netmask, gateway, MAC, cores,
//! max concurrency, buffer sizes, timeouts, backend (`af_xdp` or `memory`),
//! thread mode and statistics interval. [`Runtime::start`] (mTCP's
//! `mtcp_init` plus `mtcp_create_context` for every core) opens one device
//! queue per core, attaches the XDP steering program and returns one
//! [`Context`] per core; [`Runtime::start_memory`] does the same over
//! in-process queue pairs.
//!
//! # Thread model and data flow
//! ```text
//!  application thread (core c)                   stack thread (core c, same CPU)
//!  read/write/accept/epoll_wait on the app-side    loop {
//!  copy of each socket (bridge):                     1 receive a batch (device queue + frames
//!    read: bytes already moved here                    other cores forwarded to us)
//!    write: copy out within the send credit          2 netif: ARP / IPv4 / ICMP; TCP -> engine
//!    accept: a connection the stack pre-accepted     3 expired timers
//!    epoll_wait: app-side epoll instances            4 drain the calls as one batch
//!    |                                                 (Write, Consumed, AcceptTaken, Close, Sync)
//!    | calls  (SPSC, lock-free, posted) ---------->  5 publish: move bytes (within credit),
//!    | <---------- messages (SPSC, lock-free) ---      pre-accept, levels -> Data / Accepted /
//!    |             woken once per pass                 Level messages, one wake-up
//!    v  waits only when its copy would block         6 transmit a batch (control before data)
//!                                                    7 select-style wait (ppoll, eventfd waker)
//!                                                  }
//! ```
//! * **Threaded** ([`ThreadMode::Threaded`], mTCP's model): a stack thread
//!   per core, pinned to the core's CPU with its application thread. As in
//!   mTCP, the application does not cross to the stack for each call: it
//!   works on its own copy of each socket and posts what it did as
//!   asynchronous calls, which the stack takes in a batch on its next pass
//!   and answers with a batch of messages (received bytes, readiness and
//!   send room, accepted connections). A post wakes the stack only when it
//!   sleeps, once per sleep; the stack wakes a waiting application once per
//!   pass. Calls whose answer only the stack has (socket, bind, listen,
//!   connect, options, the end-of-stream and error paths of read and write)
//!   wait for a reply. The stack moves at most 64 KiB of unread bytes per
//!   connection ahead of reads, and pre-accepts at most `backlog`
//!   connections per listener on top of the engine's own queue of
//!   `backlog`. See the `bridge` and `app` modules.
//! * **Run-to-completion** ([`ThreadMode::RunToCompletion`]): no stack
//!   thread; the application thread runs the stack's passes itself inside
//!   its calls (reads and writes go straight between the caller's buffer and
//!   the engine), sleeping in the stack's wait when a blocking call must wait.
//!   `epoll_wait` sends what is owed, then takes input; the writes and
//!   closes of the batch of events it returned are held until the next
//!   wait (at most 5 ms and 16 KiB), so replies, ACKs and FINs share
//!   segments and a batch leaves in one transmit; outside a batch they
//!   send at once.
//!   The stack runs only inside calls (or [`Context::poll`]): with several
//!   cores every application thread must keep calling, because its queue
//!   also carries frames of the other cores' flows.
//!
//! # Cores and flows
//! Each core owns one device queue, its own engine, socket table, epoll
//! instances, ARP cache and counters; nothing is shared but the per-pair
//! forwarding queues. A flow belongs to the core named by [`affinity`]'s
//! rule (our ephemeral port's slice for connections we open, a hash of the
//! 4-tuple for passive ones); a frame that arrives on another core's queue
//! is copied to the owner through a lock-free queue and the owner is woken.
//! ARP frames go to every core. `connect` picks a source port from the
//! calling core's slice. As with mTCP, a server listens on every core.
//!
//! # Application API
//! [`Context`] has mTCP's calls: `socket`, `bind`, `listen`, `accept`,
//! `connect`, `read`, `recv`, `readv`, `write`, `send`, `writev`,
//! `shutdown`, `close`, `abort`, `getsockname`, `getpeername`,
//! `setsockopt`/`getsockopt`, `fionread` (FIONREAD), `set_nonblocking`,
//! `epoll_create`/`epoll_ctl`/`epoll_wait`; errors are typed ([`Error`],
//! carrying socket-api's [`Errno`]). [`TcpListener`] and [`TcpStream`] wrap
//! them with `std::io::Read`/`Write`, blocking by default.
//!
//! # Statistics
//! Each core counts packets, bytes, forwarded frames, drops and calls
//! ([`CoreStats`]) and, when `stats_interval_ms` is set, logs a line per
//! interval through `tracing` (packets/s, Gbit/s, active flows, drops,
//! retransmissions).
#![deny(unsafe_code)]

pub mod affinity;
mod api;
mod app;
pub mod arp;
mod bridge;
pub mod config;
mod context;
mod driver;
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

/// Compiles the README's code as a doctest, so the front page stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
