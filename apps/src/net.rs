//! The socket backend every app is written against: mTCP's per-core context
//! calls (listen, accept, connect, read, write, close, epoll_ctl, epoll_wait)
//! behind one trait, so the same application code runs on our stack and on
//! Linux kernel sockets and every comparison is like for like.
//!
//! Readiness is edge-triggered (EPOLLET): after an event an app reads,
//! writes or accepts until the call reports [`io::ErrorKind::WouldBlock`].
//! That is the contract of mio on Linux and of our `epoll_ctl` with ET, and
//! it is also correct under level-triggered delivery.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A descriptor: a small integer local to one context, like mTCP's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub usize);

/// Which readiness an app waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    /// EPOLLIN.
    pub read: bool,
    /// EPOLLOUT.
    pub write: bool,
}

impl Interest {
    /// Readable only.
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    /// Writable only.
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
    /// Both.
    pub const BOTH: Interest = Interest {
        read: true,
        write: true,
    };
}

/// One readiness event from [`NetContext::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The descriptor.
    pub fd: Fd,
    /// Data (or a connection, or EOF) can be read.
    pub readable: bool,
    /// Data can be written (or a connect finished).
    pub writable: bool,
    /// An error is pending (EPOLLERR) or the peer hung up (EPOLLHUP).
    pub error: bool,
}

/// One per-core context: the calls of mTCP's API on a context handle.
///
/// Every call is non-blocking except [`wait`](NetContext::wait); a call that
/// would block returns [`io::ErrorKind::WouldBlock`].
pub trait NetContext {
    /// socket + bind + listen (with SO_REUSEADDR; on kernel sockets also
    /// SO_REUSEPORT so that each core has its own accept queue, like mTCP).
    /// TCP_NODELAY is set on the listener, so accepted connections inherit
    /// it. The listener is registered for readable events.
    fn listen(&mut self, addr: SocketAddr, backlog: u32) -> io::Result<Fd>;

    /// The address a socket is bound to.
    fn local_addr(&mut self, fd: Fd) -> io::Result<SocketAddr>;

    /// accept: a new connection, registered for read and write events.
    fn accept(&mut self, listener: Fd) -> io::Result<Fd>;

    /// A non-blocking connect, registered for read and write events; the
    /// first writable event tells that it finished (see [`connected`](NetContext::connected)).
    fn connect(&mut self, addr: SocketAddr) -> io::Result<Fd>;

    /// After a writable event on a connecting socket: `Ok(true)` once
    /// established, `Ok(false)` while still in progress, the error if the
    /// connect failed.
    fn connected(&mut self, fd: Fd) -> io::Result<bool>;

    /// read: `Ok(0)` at end of stream.
    fn read(&mut self, fd: Fd, buf: &mut [u8]) -> io::Result<usize>;

    /// write: how many bytes were taken.
    fn write(&mut self, fd: Fd, buf: &[u8]) -> io::Result<usize>;

    /// writev: gathers `bufs` into one call (an HTTP head and its body go
    /// out together, without a Nagle wait between them).
    fn writev(&mut self, fd: Fd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize>;

    /// shutdown(SHUT_WR): send FIN, keep reading.
    fn shutdown_write(&mut self, fd: Fd) -> io::Result<()>;

    /// TCP_NODELAY.
    fn set_nodelay(&mut self, fd: Fd, on: bool) -> io::Result<()>;

    /// close (also removes the descriptor from the epoll set).
    fn close(&mut self, fd: Fd) -> io::Result<()>;

    /// epoll_wait: appends the events that are ready to `events` (cleared
    /// first), waiting at most `timeout` for the first one.
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;
}

/// A network stack that hands out one [`NetContext`] per core.
pub trait NetStack: Send + Sync {
    /// The per-core context.
    type Context: NetContext;

    /// A short name for reports ("linux", "mtcp-rs").
    fn name(&self) -> &'static str;

    /// How many per-core contexts the stack runs.
    fn cores(&self) -> usize;

    /// Creates context `index` (`0..cores()`), on the thread that will use it
    /// (which the caller has pinned to that core).
    fn context(&self, index: usize) -> io::Result<Self::Context>;

    /// The CPU that context `index` runs on, if pinned.
    fn cpu(&self, index: usize) -> Option<usize>;

    /// The stack's own per-core counters, one line per core, if it keeps any.
    fn report(&self) -> Option<String> {
        None
    }
}

/// A shared stop flag, set by a deadline or by the caller.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag not yet raised.
    pub fn new() -> Self {
        StopFlag::default()
    }

    /// Raises the flag.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// True once raised.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Runs `body(context, index)` on one thread per core of `stack`, each pinned
/// to its CPU, and returns the results in core order.
pub fn run_per_core<S, T, F>(stack: &S, body: F) -> io::Result<Vec<T>>
where
    S: NetStack,
    T: Send,
    F: Fn(&mut S::Context, usize) -> io::Result<T> + Sync,
{
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..stack.cores())
            .map(|index| {
                let body = &body;
                scope.spawn(move || {
                    if let Some(cpu) = stack.cpu(index) {
                        pin_to(cpu);
                    }
                    let mut ctx = stack.context(index)?;
                    body(&mut ctx, index)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a per-core thread panicked")))
            })
            .collect()
    })
}

/// Pins the calling thread to `cpu` when that CPU exists (best effort: a
/// benchmark on a smaller machine still runs, unpinned).
pub fn pin_to(cpu: usize) -> bool {
    core_affinity::get_core_ids()
        .and_then(|ids| ids.into_iter().find(|c| c.id == cpu))
        .is_some_and(core_affinity::set_for_current)
}

/// True for the error kinds that mean "try again after the next event".
pub fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
