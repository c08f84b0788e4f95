//! Application calls as values: the synchronous calls that cross to the
//! stack thread in threaded mode (see `bridge`) and what the application
//! thread executes itself in run-to-completion mode. [`execute`] runs one call on a core's stack without blocking; a
//! call that must wait (a blocking `accept`, `read`, `write`, `connect` or an
//! `epoll_wait` with a timeout) comes back as [`Outcome::Block`] and is
//! retried after the stack made progress.

use crate::stack::CoreStack;
use crate::stats::CoreStats;
use epoll_events::{CtlOp, Event};
use socket_api::{Errno, Fd, MsgFlags, Shutdown, SockOpt, SockOptName};
use std::io;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// The error of a runtime API call: a socket errno, an epoll error, or the
/// context's stack having stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A socket call failed (the errno Linux returns in the same case).
    #[error("{0}")]
    Socket(#[from] Errno),
    /// An epoll call failed.
    #[error("epoll: {0}")]
    Epoll(#[from] epoll_events::Error),
    /// The runtime was shut down; the context no longer has a stack.
    #[error("the context's stack has stopped")]
    Stopped,
}

impl Error {
    /// The Linux errno of this error.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Socket(e) => e.errno(),
            Error::Epoll(e) => e.errno(),
            // ESHUTDOWN
            Error::Stopped => 108,
        }
    }

    /// The socket errno, if this is a socket error.
    pub fn socket_errno(&self) -> Option<Errno> {
        match self {
            Error::Socket(e) => Some(*e),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Socket(e) => e.into(),
            other => io::Error::from_raw_os_error(other.errno()),
        }
    }
}

/// One application call.
#[derive(Debug)]
pub(crate) enum Op {
    Socket {
        nonblocking: bool,
    },
    SocketRaw {
        domain: i32,
        ty: i32,
        protocol: i32,
    },
    Ioctl(Fd, u64),
    Bind(Fd, SocketAddrV4),
    Listen(Fd, i32),
    Accept(Fd),
    Connect(Fd, SocketAddrV4),
    /// A blocking connect waiting for its handshake.
    ConnectWait(Fd),
    /// A blocking close with `SO_LINGER`: the write side is shut down and
    /// the call waits for the data and FIN to be acknowledged (or the
    /// timeout) before closing the descriptor.
    LingerWait(Fd, tcp_core::SocketHandle, Instant),
    Recv {
        fd: Fd,
        buf: Vec<u8>,
        len: usize,
        flags: MsgFlags,
    },
    Send {
        fd: Fd,
        buf: Vec<u8>,
        flags: MsgFlags,
    },
    Shutdown(Fd, Shutdown),
    Close(Fd),
    /// `close` of a socket the application blocks on (threaded mode, where
    /// the stack's own copy of every socket is non-blocking): lingers when
    /// `SO_LINGER` asks for it.
    CloseBlocking(Fd),
    /// Reserves a descriptor (for an epoll instance kept by the application).
    ReserveFd,
    /// Up to this many fresh blocking sockets at once (threaded mode keeps
    /// a few ready so that `socket` needs no round trip).
    SocketBatch(usize),
    Abort(Fd),
    SockName(Fd),
    PeerName(Fd),
    SetOpt(Fd, SockOpt),
    GetOpt(Fd, SockOptName),
    FionRead(Fd),
    SetNonblocking(Fd, bool),
    IsNonblocking(Fd),
    EpollCreate,
    EpollCtl {
        ep: Fd,
        op: CtlOp,
        fd: Fd,
        event: Event,
    },
    EpollWait {
        ep: Fd,
        events: Vec<Event>,
        max: usize,
        /// `None`: wait forever.
        deadline: Option<Instant>,
    },
    Stats,
}

/// The answer to an [`Op`].
#[derive(Debug)]
pub(crate) enum Reply {
    Unit(Result<(), Error>),
    Fd(Result<Fd, Error>),
    /// Fresh sockets (at least one, or the error that stopped the first).
    Fds(Result<Vec<Fd>, Error>),
    Accepted(Result<(Fd, SocketAddrV4), Error>),
    /// Bytes moved, and the buffer handed back for reuse (for a read, the
    /// data are its first `n` bytes).
    Data(Result<usize, Error>, Vec<u8>),
    Addr(Result<SocketAddrV4, Error>),
    Opt(Result<SockOpt, Error>),
    Size(Result<usize, Error>),
    Bool(Result<bool, Error>),
    Events(Result<usize, Error>, Vec<Event>),
    Stats(CoreStats),
}

/// The shape of the reply an op expects (kept while the op itself is away).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    Unit,
    Fd,
    Fds,
    Accepted,
    Data,
    Addr,
    Opt,
    Size,
    Bool,
    Events,
    Stats,
}

impl Expect {
    pub(crate) fn of(op: &Op) -> Expect {
        match op {
            Op::Socket { .. } | Op::SocketRaw { .. } | Op::EpollCreate | Op::ReserveFd => {
                Expect::Fd
            }
            Op::Accept(_) => Expect::Accepted,
            Op::SocketBatch(_) => Expect::Fds,
            Op::Recv { .. } | Op::Send { .. } => Expect::Data,
            Op::SockName(_) | Op::PeerName(_) => Expect::Addr,
            Op::GetOpt(..) => Expect::Opt,
            Op::FionRead(_) | Op::Ioctl(..) => Expect::Size,
            Op::IsNonblocking(_) => Expect::Bool,
            Op::EpollWait { .. } => Expect::Events,
            Op::Stats => Expect::Stats,
            _ => Expect::Unit,
        }
    }

    /// The reply of a call whose stack is gone.
    pub(crate) fn stopped(self) -> Reply {
        let e = Err(Error::Stopped);
        match self {
            Expect::Unit => Reply::Unit(Err(Error::Stopped)),
            Expect::Fd => Reply::Fd(Err(Error::Stopped)),
            Expect::Fds => Reply::Fds(Err(Error::Stopped)),
            Expect::Accepted => Reply::Accepted(Err(Error::Stopped)),
            Expect::Data => Reply::Data(e, Vec::new()),
            Expect::Addr => Reply::Addr(Err(Error::Stopped)),
            Expect::Opt => Reply::Opt(Err(Error::Stopped)),
            Expect::Size => Reply::Size(Err(Error::Stopped)),
            Expect::Bool => Reply::Bool(Err(Error::Stopped)),
            Expect::Events => Reply::Events(Err(Error::Stopped), Vec::new()),
            Expect::Stats => Reply::Stats(CoreStats::default()),
        }
    }
}

/// What [`execute`] did.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done(Reply),
    /// Not ready: retry this op after progress, or give up at the deadline.
    Block(Op, Option<Instant>),
}

fn blocking(stack: &CoreStack, fd: Fd, flags: MsgFlags) -> bool {
    !flags.dontwait() && matches!(stack.sockets.is_nonblocking(fd), Ok(false))
}

/// The deadline of a blocking call under `SO_RCVTIMEO`/`SO_SNDTIMEO`
/// (`name`), counted from now; the caller keeps the first one it got.
pub(crate) fn timeout(stack: &mut CoreStack, fd: Fd, name: SockOptName) -> Option<Instant> {
    match stack.sockets.getsockopt(fd, name) {
        Ok(SockOpt::RcvTimeo(Some(t)) | SockOpt::SndTimeo(Some(t))) => {
            Instant::now().checked_add(t)
        }
        _ => None,
    }
}

fn open_in_epoll(stack: &mut CoreStack, fd: Fd) {
    let level = stack
        .sockets
        .readiness(fd)
        .unwrap_or(socket_api::Readiness::EMPTY);
    let _ = stack.epoll.open_fd(
        epoll_events::Fd(fd.0),
        epoll_events::Events::from_bits_truncate(level.bits()),
    );
}

/// Runs `op` on `stack` without blocking.
pub(crate) fn execute(stack: &mut CoreStack, op: Op) -> Outcome {
    stack.stats.calls += 1;
    let s = &mut stack.sockets;
    let done = |r| Outcome::Done(r);
    match op {
        Op::Socket { nonblocking } => {
            let ty = socket_api::options::SOCK_STREAM
                | if nonblocking {
                    socket_api::options::SOCK_NONBLOCK
                } else {
                    0
                };
            let r = s.socket(socket_api::options::AF_INET, ty, 0);
            if let Ok(fd) = r {
                open_in_epoll(stack, fd);
            }
            done(Reply::Fd(r.map_err(Error::from)))
        }
        Op::SocketRaw {
            domain,
            ty,
            protocol,
        } => {
            let r = s.socket(domain, ty, protocol);
            if let Ok(fd) = r {
                open_in_epoll(stack, fd);
            }
            done(Reply::Fd(r.map_err(Error::from)))
        }
        Op::Ioctl(fd, request) => done(Reply::Size(
            s.ioctl(fd, request)
                .map(|v| v.max(0) as usize)
                .map_err(Error::from),
        )),
        Op::Bind(fd, a) => done(Reply::Unit(s.bind(fd, a).map_err(Error::from))),
        Op::Listen(fd, b) => done(Reply::Unit(s.listen(fd, b).map_err(Error::from))),
        Op::Accept(fd) => match s.accept(fd) {
            Err(Errno::EAGAIN) if blocking(stack, fd, MsgFlags::NONE) => {
                Outcome::Block(Op::Accept(fd), timeout(stack, fd, SockOptName::RcvTimeo))
            }
            r => {
                if let Ok((nfd, _)) = r {
                    open_in_epoll(stack, nfd);
                }
                done(Reply::Accepted(r.map_err(Error::from)))
            }
        },
        Op::Connect(fd, remote) => match s.connect(fd, remote) {
            Err(Errno::EINPROGRESS) if blocking(stack, fd, MsgFlags::NONE) => Outcome::Block(
                Op::ConnectWait(fd),
                timeout(stack, fd, SockOptName::SndTimeo),
            ),
            r => done(Reply::Unit(r.map_err(Error::from))),
        },
        Op::ConnectWait(fd) => {
            let level = match s.readiness(fd) {
                Ok(l) => l,
                Err(e) => return done(Reply::Unit(Err(e.into()))),
            };
            if !(level.writable || level.err || level.hup) {
                return Outcome::Block(
                    Op::ConnectWait(fd),
                    timeout(stack, fd, SockOptName::SndTimeo),
                );
            }
            let r = match s.getsockopt(fd, SockOptName::Error) {
                Ok(SockOpt::Error(Some(e))) => Err(Error::Socket(e)),
                Ok(_) => Ok(()),
                Err(e) => Err(e.into()),
            };
            done(Reply::Unit(r))
        }
        Op::Recv {
            fd,
            mut buf,
            len,
            flags,
        } => {
            // The buffer comes back with the reply and is reused: grow it
            // once, never clear it (only the first `n` bytes are read).
            if buf.len() < len {
                buf.resize(len, 0);
            }
            match s.recv(fd, &mut buf[..len], flags) {
                Err(Errno::EAGAIN) if blocking(stack, fd, flags) => Outcome::Block(
                    Op::Recv {
                        fd,
                        buf,
                        len,
                        flags,
                    },
                    timeout(stack, fd, SockOptName::RcvTimeo),
                ),
                r => done(Reply::Data(r.map_err(Error::from), buf)),
            }
        }
        Op::Send { fd, buf, flags } => match s.send(fd, &buf, flags) {
            Err(Errno::EAGAIN) if blocking(stack, fd, flags) => Outcome::Block(
                Op::Send { fd, buf, flags },
                timeout(stack, fd, SockOptName::SndTimeo),
            ),
            r => done(Reply::Data(r.map_err(Error::from), buf)),
        },
        Op::Shutdown(fd, how) => done(Reply::Unit(s.shutdown(fd, how).map_err(Error::from))),
        Op::ReserveFd => done(Reply::Fd(s.reserve_fd().map_err(Error::from))),
        Op::SocketBatch(n) => {
            let mut fds = Vec::with_capacity(n);
            let mut first_err = None;
            for _ in 0..n.max(1) {
                match stack.sockets.socket(
                    socket_api::options::AF_INET,
                    socket_api::options::SOCK_STREAM,
                    0,
                ) {
                    Ok(fd) => {
                        open_in_epoll(stack, fd);
                        fds.push(fd);
                    }
                    Err(e) => {
                        first_err = Some(e);
                        break;
                    }
                }
            }
            let r = match first_err {
                Some(e) if fds.is_empty() => Err(e.into()),
                _ => Ok(fds),
            };
            done(Reply::Fds(r))
        }
        Op::Close(fd) => {
            let blocking = blocking(stack, fd, MsgFlags::NONE);
            close(stack, fd, blocking)
        }
        Op::CloseBlocking(fd) => close(stack, fd, true),
        Op::LingerWait(fd, h, until) => {
            use tcp_core::State;
            let waiting = matches!(
                stack.sockets.endpoint().state(h),
                Ok(State::Established
                    | State::CloseWait
                    | State::FinWait1
                    | State::Closing
                    | State::LastAck
                    | State::SynSent
                    | State::SynReceived)
            );
            if waiting && Instant::now() < until {
                Outcome::Block(Op::LingerWait(fd, h, until), Some(until))
            } else {
                done(Reply::Unit(close_fd(stack, fd)))
            }
        }
        Op::Abort(fd) => {
            let r = s.abort(fd).map_err(Error::from);
            if r.is_ok() {
                let _ = stack.epoll.close_fd(epoll_events::Fd(fd.0));
            }
            done(Reply::Unit(r))
        }
        Op::SockName(fd) => done(Reply::Addr(s.getsockname(fd).map_err(Error::from))),
        Op::PeerName(fd) => done(Reply::Addr(s.getpeername(fd).map_err(Error::from))),
        Op::SetOpt(fd, o) => done(Reply::Unit(s.setsockopt(fd, o).map_err(Error::from))),
        Op::GetOpt(fd, n) => done(Reply::Opt(s.getsockopt(fd, n).map_err(Error::from))),
        Op::FionRead(fd) => done(Reply::Size(s.fionread(fd).map_err(Error::from))),
        Op::SetNonblocking(fd, nb) => {
            done(Reply::Unit(s.set_nonblocking(fd, nb).map_err(Error::from)))
        }
        Op::IsNonblocking(fd) => done(Reply::Bool(s.is_nonblocking(fd).map_err(Error::from))),
        Op::EpollCreate => {
            let fd = match s.reserve_fd() {
                Ok(fd) => fd,
                Err(e) => return done(Reply::Fd(Err(e.into()))),
            };
            match stack.epoll.epoll_create() {
                Ok(ep) => {
                    stack.epoll_fds.insert(fd.0, ep);
                    done(Reply::Fd(Ok(fd)))
                }
                Err(e) => {
                    let _ = stack.sockets.release_fd(fd);
                    done(Reply::Fd(Err(e.into())))
                }
            }
        }
        Op::EpollCtl { ep, op, fd, event } => {
            let Some(&id) = stack.epoll_fds.get(&ep.0) else {
                return done(Reply::Unit(Err(Errno::EBADF.into())));
            };
            if stack.epoll_fds.contains_key(&fd.0) {
                // Nested epoll instances are not supported.
                return done(Reply::Unit(Err(Errno::EINVAL.into())));
            }
            let r = stack
                .epoll
                .epoll_ctl(id, op, epoll_events::Fd(fd.0), event)
                .map_err(Error::from);
            done(Reply::Unit(r))
        }
        Op::EpollWait {
            ep,
            mut events,
            max,
            deadline,
        } => {
            let Some(&id) = stack.epoll_fds.get(&ep.0) else {
                return done(Reply::Events(Err(Errno::EBADF.into()), events));
            };
            if max == 0 {
                return done(Reply::Events(Err(Errno::EINVAL.into()), events));
            }
            // Sized once; a parked wait retried after each pass reuses it.
            if events.len() != max {
                events.clear();
                events.resize(max, Event::default());
            }
            match stack.epoll.epoll_wait(id, &mut events) {
                Ok(0) if deadline.map_or(true, |d| Instant::now() < d) => Outcome::Block(
                    Op::EpollWait {
                        ep,
                        events,
                        max,
                        deadline,
                    },
                    deadline,
                ),
                // The first n are filled; the buffer keeps its length for
                // the next wait.
                Ok(n) => done(Reply::Events(Ok(n), events)),
                Err(e) => done(Reply::Events(Err(e.into()), events)),
            }
        }
        Op::Stats => done(Reply::Stats(stack.stats())),
    }
}

/// `close(fd)`; `blocking`: the caller waits, so `SO_LINGER` with a timeout
/// lingers.
fn close(stack: &mut CoreStack, fd: Fd, blocking: bool) -> Outcome {
    let done = |r| Outcome::Done(r);
    if let Some(ep) = stack.epoll_fds.remove(&fd.0) {
        let r = stack.epoll.epoll_close(ep).map_err(Error::from);
        let _ = stack.sockets.release_fd(fd);
        return done(Reply::Unit(r));
    }
    let s = &mut stack.sockets;
    // SO_LINGER with a timeout on a blocking socket (socket(7)): send
    // the FIN after the queued data, wait until both are acknowledged
    // or the timeout passes, then close. Unread data or a zero
    // timeout make close an abort, which socket-api does at once.
    let linger = match (s.getsockopt(fd, SockOptName::Linger), s.handle(fd)) {
        (Ok(SockOpt::Linger(Some(t))), Ok(h))
            if !t.is_zero() && matches!(s.fionread(fd), Ok(0)) && blocking =>
        {
            Some((t, h))
        }
        _ => None,
    };
    if let Some((t, h)) = linger {
        let _ = stack.sockets.shutdown(fd, Shutdown::Write);
        // A linger time too large for the clock waits "forever"
        // (about a century) instead of overflowing.
        let now = Instant::now();
        let until = now
            .checked_add(t)
            .unwrap_or_else(|| now + Duration::from_secs(u32::MAX as u64 / 32));
        return execute(stack, Op::LingerWait(fd, h, until));
    }
    done(Reply::Unit(close_fd(stack, fd)))
}

fn close_fd(stack: &mut CoreStack, fd: Fd) -> Result<(), Error> {
    let r = stack.sockets.close(fd).map_err(Error::from);
    if r.is_ok() {
        let _ = stack.epoll.close_fd(epoll_events::Fd(fd.0));
    }
    r
}

/// The reply an op gets when its deadline passes while blocked.
pub(crate) fn expire(stack: &mut CoreStack, op: Op) -> Reply {
    match op {
        Op::EpollWait { events, .. } => Reply::Events(Ok(0), events),
        Op::Recv { mut buf, .. } => {
            buf.clear();
            Reply::Data(Err(Errno::EAGAIN.into()), buf)
        }
        Op::Send { buf, .. } => Reply::Data(Err(Errno::EAGAIN.into()), buf),
        Op::Accept(_) => Reply::Accepted(Err(Errno::EAGAIN.into())),
        // SO_SNDTIMEO passed during a blocking connect: it goes on (Linux).
        Op::ConnectWait(_) => Reply::Unit(Err(Errno::EINPROGRESS.into())),
        // The linger timeout passed: close anyway (Linux returns 0).
        Op::LingerWait(fd, ..) => Reply::Unit(close_fd(stack, fd)),
        _ => Reply::Unit(Err(Errno::EAGAIN.into())),
    }
}

/// The reply an op gets when the stack stops while it is pending.
pub(crate) fn stopped(op: Op) -> Reply {
    match op {
        Op::EpollWait { events, .. } => Reply::Events(Err(Error::Stopped), events),
        Op::Recv { buf, .. } | Op::Send { buf, .. } => Reply::Data(Err(Error::Stopped), buf),
        Op::Accept(_) => Reply::Accepted(Err(Error::Stopped)),
        Op::SocketBatch(_) => Reply::Fds(Err(Error::Stopped)),
        Op::Socket { .. } | Op::SocketRaw { .. } | Op::EpollCreate | Op::ReserveFd => {
            Reply::Fd(Err(Error::Stopped))
        }
        _ => Reply::Unit(Err(Error::Stopped)),
    }
}
