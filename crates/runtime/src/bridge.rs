//! The threaded mode's crossing between an application thread and its stack
//! thread, in mTCP's shape: the application works on its own copy of each
//! socket (received bytes, readiness, send credit, accepted connections) and
//! posts what it did as asynchronous calls; the stack thread takes those
//! calls in a batch on each pass and answers with a batch of messages.
//!
//! ```text
//!  application thread                          stack thread
//!  read: bytes from the socket's copy  --.     pass: receive, timers,
//!  write: copy out, post Write           |       drain the calls  <-- Write, Consumed,
//!  accept: pop a pre-accepted conn       |                            AcceptTaken, Close...
//!  epoll_wait: app-side epoll instances  '->   publish: for each changed socket
//!  (waits only when nothing is ready)            move bytes (up to the credit) -> Data
//!                                                pre-accept (up to the backlog) -> Accepted
//!                                                readiness and send room        -> Level
//! ```
//!
//! * **Calls** ([`Call`]): writes carry their bytes in pooled buffers, reads
//!   return credit ([`Call::Consumed`]) so the stack moves more, closes and
//!   aborts need no answer. Calls that need one (socket, bind, listen,
//!   connect, options, the rare error paths of read and write) are
//!   [`Call::Sync`]: the application waits for its [`Msg::Reply`], applying
//!   the messages queued before it, so what it sees stays in order.
//! * **Messages** ([`Msg`]) are delivered in the order the stack made them,
//!   and the stack wakes the application at most once per pass.
//! * **Flow control**: the stack moves at most [`APP_CREDIT`] unread bytes
//!   per connection to the application (read ahead: they count against
//!   the receive window until the application consumes them), and reports the engine's send room
//!   after the bytes of the writes it took, so the application never hands
//!   over more than the engine can queue.
//!
//! Descriptors stay the stack's ([`socket_api::SocketTable`] allocates them);
//! because calls and messages are each delivered in order, a message about a
//! descriptor the application closed is recognised (it has no copy of it)
//! and dropped, and a reused number is only seen after the stack freed it.

use crate::api::{self, Op, Outcome, Reply};
use crate::mailbox::Mailbox;
use crate::stack::CoreStack;
use crossbeam_queue::ArrayQueue;
use socket_api::{Errno, Fd, MsgFlags, Readiness};
use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::Instant;

/// Unread bytes of one connection the stack moves to the application side
/// before it waits for the application to consume some (the rest stays in
/// the engine's receive buffer). Bytes on either side count against the
/// window: the peer is offered only what the receive buffer holds.
pub const APP_CREDIT: u32 = 64 * 1024;

/// The largest buffer kept in the pool of data buffers (larger ones are
/// freed when they come back).
const POOL_BUF_MAX: usize = 256 * 1024;

/// Buffers kept in the pool.
pub const POOL_BUFFERS: usize = 512;

/// A call from the application to its stack.
#[derive(Debug)]
pub(crate) enum Call {
    /// A call whose [`Reply`] the application waits for.
    Sync(Op),
    /// Bytes written on `fd`: queue them on the connection.
    Write { fd: Fd, buf: Vec<u8> },
    /// The application consumed `n` bytes of `fd`'s data: more may come.
    Consumed { fd: Fd, n: u32 },
    /// The application accepted one of listener `fd`'s connections.
    AcceptTaken(Fd),
    /// A non-blocking `connect` the application answered `EINPROGRESS`
    /// itself; a failure to start it comes back as [`Msg::ConnectFailed`].
    Connect(Fd, SocketAddrV4),
    /// `close(fd)` of a socket (no lingering) or of an epoll instance's
    /// descriptor.
    Close(Fd),
    /// Close with a reset (the application dropped unread data).
    Abort(Fd),
    /// Frees a descriptor reserved for an epoll instance.
    Release(Fd),
}

/// A message from the stack to its application.
#[derive(Debug)]
pub(crate) enum Msg {
    /// The answer to the oldest [`Call::Sync`] not yet answered, with the
    /// level of its descriptor right after it ran (so the application's
    /// copy is current when the call returns: no write after a
    /// `shutdown`, no connect that looks done before it started).
    Reply(Reply, Option<Level>),
    /// Received bytes of `fd`, in order.
    Data { fd: Fd, buf: Vec<u8> },
    /// The stack's view of `fd` changed.
    Level(Level),
    /// The [`Call::Connect`] of `fd` could not start (the error `connect`
    /// would have returned): reported as a failed connection, in `SO_ERROR`.
    ConnectFailed { fd: Fd, err: Errno },
    /// Listener `listener` accepted `fd` from `peer`; its [`Level`] follows.
    Accepted {
        listener: Fd,
        fd: Fd,
        peer: SocketAddrV4,
    },
}

/// The stack's view of one socket, sent after every change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Level {
    /// The descriptor.
    pub fd: Fd,
    /// Readiness on the stack side, after this pass moved what it could:
    /// `readable` here means end of stream, an error, or bytes beyond the
    /// credit still in the engine.
    pub level: Readiness,
    /// What happened (the `wake` of epoll's notify).
    pub wake: Readiness,
    /// Bytes a write may queue, counted after `taken` bytes of writes;
    /// `None` when writes fail or must wait (handshake, error, shut down).
    pub room: Option<u32>,
    /// Bytes of [`Call::Write`]s the stack had taken when it measured `room`.
    pub taken: u64,
    /// [`Call::Connect`]s the stack had taken (a level from before the
    /// application's latest connect is stale).
    pub connects: u32,
    /// The engine holds no unread byte and reports end of stream without an
    /// error: once the application's copy is empty, a read returns 0
    /// without asking the stack.
    pub eof: bool,
}

/// True when a read of `fd` returns 0 now: its read side is shut (the
/// peer's FIN or our `SHUT_RD`), no error is pending and the engine holds no
/// unread byte (all of them were moved to the application).
fn at_eof(stack: &mut CoreStack, fd: Fd, level: Readiness) -> bool {
    level.readable && level.rdhup && !level.err && stack.sockets.fionread(fd).is_ok_and(|n| n == 0)
}

/// Per-descriptor state of the crossing, stack side.
#[derive(Debug, Default)]
struct Link {
    /// Bytes the stack may still move to the application.
    credit: u32,
    /// Bytes of writes taken.
    taken: u64,
    /// Written bytes the engine has not taken yet (normally empty: the
    /// application writes only within the room reported).
    pending: Vec<u8>,
    /// A listener's backlog, and its connections accepted but not yet taken.
    backlog: u32,
    pre_accepted: u32,
    /// The backlog last given to the engine's listener: `backlog` + 1 less
    /// the connections accepted ahead, at least 1 (0: not set yet).
    engine_backlog: u32,
    /// [`Call::Connect`]s taken.
    connects: u32,
    /// The last level sent (readiness, room, writes taken, connects, end
    /// of stream), to skip repeats. The count of writes taken is part of
    /// it: a write the engine took and whose bytes were acknowledged
    /// within one pass leaves readiness and room as they were, and an
    /// application not told of it would count those bytes as still in
    /// flight and wait for room forever.
    last: Option<(Readiness, Option<u32>, u64, u32, bool)>,
    /// A socket of the application (set up by socket/accept).
    open: bool,
}

/// The stack side of the crossing.
#[derive(Debug)]
pub(crate) struct Bridge {
    links: Vec<Link>,
    /// Descriptors to look at this pass: (fd, wake).
    dirty: Vec<(u32, Readiness)>,
    /// Messages the full queue did not take yet (delivered first).
    overflow: VecDeque<Msg>,
    /// A message was delivered this pass.
    delivered: bool,
    /// Messages delivered so far that hand the application something to
    /// answer: received bytes, a connection, a failed connect, a level
    /// that wakes (not replies to its own calls, nor levels that only
    /// account for its writes). A pass compares it before and after.
    handed: u64,
}

/// The pool of data buffers shared by both sides (written bytes travel to
/// the stack in them, received bytes back to the application).
pub(crate) type BufPool = ArrayQueue<Vec<u8>>;

/// A buffer from the pool, empty.
pub(crate) fn pool_take(pool: &BufPool) -> Vec<u8> {
    pool.pop().unwrap_or_default()
}

/// Returns a buffer to the pool (or frees it when the pool is full or the
/// buffer too large).
pub(crate) fn pool_put(pool: &BufPool, mut buf: Vec<u8>) {
    if buf.capacity() > POOL_BUF_MAX || buf.capacity() == 0 {
        return;
    }
    buf.clear();
    let _ = pool.push(buf);
}

type Mb = Mailbox<Call, Msg>;

/// The room a write on `fd` has, less the written bytes the engine has not
/// taken yet (see [`Level::room`]).
fn room(stack: &mut CoreStack, fd: Fd, link: &Link) -> Option<u32> {
    let pending = link.pending.len();
    stack
        .sockets
        .send_room(fd)
        .map(|r| r.saturating_sub(pending).min(u32::MAX as usize) as u32)
}

/// The descriptor a synchronous op is about (to report its level after).
fn op_fd(op: &Op) -> Option<Fd> {
    match op {
        Op::Ioctl(fd, _)
        | Op::Bind(fd, _)
        | Op::Listen(fd, _)
        | Op::Accept(fd)
        | Op::Connect(fd, _)
        | Op::ConnectWait(fd)
        | Op::Recv { fd, .. }
        | Op::Send { fd, .. }
        | Op::Shutdown(fd, _)
        | Op::SockName(fd)
        | Op::PeerName(fd)
        | Op::SetOpt(fd, _)
        | Op::GetOpt(fd, _)
        | Op::FionRead(fd)
        | Op::SetNonblocking(fd, _)
        | Op::IsNonblocking(fd)
        | Op::Close(fd)
        | Op::CloseBlocking(fd)
        | Op::Abort(fd)
        | Op::LingerWait(fd, ..) => Some(*fd),
        _ => None,
    }
}

impl Bridge {
    /// A bridge for `max_fds` descriptors.
    pub(crate) fn new(max_fds: usize) -> Self {
        Bridge {
            links: (0..max_fds).map(|_| Link::default()).collect(),
            dirty: Vec::with_capacity(max_fds),
            overflow: VecDeque::new(),
            delivered: false,
            handed: 0,
        }
    }

    fn link(&mut self, fd: Fd) -> Option<&mut Link> {
        self.links.get_mut(fd.0 as usize)
    }

    /// A new socket of the application (from socket or accept): a fresh
    /// link, and the stack's copy made non-blocking (the application side
    /// does the blocking).
    fn open(&mut self, stack: &mut CoreStack, fd: Fd) {
        let _ = stack.sockets.set_nonblocking(fd, true);
        if let Some(l) = self.link(fd) {
            *l = Link {
                credit: APP_CREDIT,
                open: true,
                ..Link::default()
            };
        }
        self.dirty.push((fd.0, Readiness::EMPTY));
    }

    fn forget(&mut self, fd: Fd) {
        if let Some(l) = self.link(fd) {
            *l = Link::default();
        }
    }

    fn send(&mut self, mb: &Mb, msg: Msg) {
        self.delivered = true;
        if match &msg {
            Msg::Reply(..) => false,
            Msg::Level(l) => !l.wake.is_empty(),
            _ => true,
        } {
            self.handed += 1;
        }
        if !self.overflow.is_empty() {
            self.overflow.push_back(msg);
            return;
        }
        if let Err(msg) = mb.deliver(msg) {
            self.overflow.push_back(msg);
        }
    }

    /// Delivers held-back messages; true when none is left.
    fn flush_overflow(&mut self, mb: &Mb) -> bool {
        while let Some(m) = self.overflow.pop_front() {
            if let Err(m) = mb.deliver(m) {
                self.overflow.push_front(m);
                return false;
            }
        }
        true
    }

    /// True when messages wait for room in the queue.
    pub(crate) fn has_overflow(&self) -> bool {
        !self.overflow.is_empty()
    }

    /// Runs one call. Returns a synchronous op that must wait (a lingering
    /// close), to be retried after the stack made progress.
    pub(crate) fn handle(
        &mut self,
        stack: &mut CoreStack,
        mb: &Mb,
        pool: &BufPool,
        call: Call,
    ) -> Option<(Op, Option<Instant>)> {
        match call {
            Call::Sync(op) => return self.run_sync(stack, mb, op),
            Call::Write { fd, buf } => {
                stack.stats.calls += 1;
                if let Some(l) = self.links.get_mut(fd.0 as usize) {
                    l.taken += buf.len() as u64;
                    if l.pending.is_empty() {
                        let n = match stack.sockets.send(fd, &buf, MsgFlags::NONE) {
                            Ok(n) => n,
                            Err(Errno::EAGAIN) => 0,
                            // The write side failed meanwhile: the bytes
                            // are lost with the connection, as on Linux;
                            // the error reaches the application in its level.
                            Err(_) => buf.len(),
                        };
                        l.pending.extend_from_slice(&buf[n..]);
                    } else {
                        l.pending.extend_from_slice(&buf);
                    }
                }
                pool_put(pool, buf);
                self.dirty.push((fd.0, Readiness::EMPTY));
            }
            Call::Consumed { fd, n } => {
                if let Some(l) = self.link(fd) {
                    l.credit = l.credit.saturating_add(n).min(APP_CREDIT);
                    // Their room returns to the window (the socket may be
                    // gone meanwhile: nothing to return then).
                    let _ = stack.sockets.release_received(fd, n as usize);
                }
                self.dirty.push((fd.0, Readiness::EMPTY));
            }
            Call::Connect(fd, remote) => {
                stack.stats.calls += 1;
                if let Some(l) = self.link(fd) {
                    l.connects += 1;
                }
                match stack.sockets.connect(fd, remote) {
                    Ok(()) | Err(Errno::EINPROGRESS) => {}
                    Err(err) => self.send(mb, Msg::ConnectFailed { fd, err }),
                }
                self.dirty.push((fd.0, Readiness::EMPTY));
            }
            Call::AcceptTaken(fd) => {
                if let Some(l) = self.link(fd) {
                    l.pre_accepted = l.pre_accepted.saturating_sub(1);
                }
                self.dirty.push((fd.0, Readiness::EMPTY));
            }
            Call::Close(fd) => {
                stack.stats.calls += 1;
                self.forget(fd);
                // The application checked the descriptor; nothing to answer.
                let _ = api::execute(stack, Op::Close(fd));
            }
            Call::Release(fd) => {
                let _ = stack.sockets.release_fd(fd);
            }
            Call::Abort(fd) => {
                stack.stats.calls += 1;
                self.forget(fd);
                if stack.sockets.abort(fd).is_err() {
                    let _ = stack.sockets.close(fd);
                }
                let _ = stack.epoll.close_fd(epoll_events::Fd(fd.0));
            }
        }
        None
    }

    /// Runs a synchronous op; the reply goes out before the level it changed.
    pub(crate) fn run_sync(
        &mut self,
        stack: &mut CoreStack,
        mb: &Mb,
        op: Op,
    ) -> Option<(Op, Option<Instant>)> {
        let fd = op_fd(&op);
        let opens = matches!(op, Op::Socket { .. } | Op::SocketRaw { .. });
        let ends = matches!(op, Op::Close(_) | Op::CloseBlocking(_) | Op::Abort(_));
        let (listen, backlog) = match op {
            Op::Listen(fd, b) => (Some(fd), b),
            _ => (None, 0),
        };
        let reply = match api::execute(stack, op) {
            Outcome::Done(r) => r,
            Outcome::Block(op @ Op::LingerWait(..), d) => return Some((op, d)),
            // Every socket of the stack is non-blocking in this mode, so
            // nothing else waits here; answer as a non-blocking call would.
            Outcome::Block(op, _) => api::expire(stack, op),
        };
        match &reply {
            // socket() (an epoll descriptor is reserved, not opened).
            Reply::Fd(Ok(nfd)) if opens => self.open(stack, *nfd),
            Reply::Fds(Ok(fds)) => {
                for &nfd in fds {
                    self.open(stack, nfd);
                }
            }
            Reply::Unit(Ok(())) if ends => {
                if let Some(fd) = fd {
                    self.forget(fd);
                }
            }
            Reply::Unit(Ok(())) => {
                let max = stack.sockets.config().max_backlog.max(1);
                if let Some(l) = listen.and_then(|fd| self.link(fd)) {
                    // As socket-api clamps it: a negative backlog is the
                    // most allowed, 0 is 1.
                    l.backlog = u32::try_from(backlog).map_or(max, |b| b.clamp(1, max));
                    l.engine_backlog = 0;
                }
            }
            _ => {}
        }
        let level = fd.and_then(|fd| self.snapshot(stack, fd));
        self.send(mb, Msg::Reply(reply, level));
        if let Some(fd) = fd {
            self.dirty.push((fd.0, Readiness::EMPTY));
        }
        None
    }

    /// `fd`'s level now, without moving anything.
    fn snapshot(&mut self, stack: &mut CoreStack, fd: Fd) -> Option<Level> {
        let link = self.links.get(fd.0 as usize).filter(|l| l.open)?;
        let level = stack.sockets.readiness(fd).ok()?;
        let room = room(stack, fd, link);
        Some(Level {
            fd,
            level,
            wake: Readiness::EMPTY,
            room,
            taken: link.taken,
            connects: link.connects,
            eof: at_eof(stack, fd, level),
        })
    }

    /// Finishes a waiting op (lingering close): `Some` again while it waits.
    pub(crate) fn retry(
        &mut self,
        stack: &mut CoreStack,
        mb: &Mb,
        op: Op,
        now: Instant,
        deadline: Option<Instant>,
    ) -> Option<(Op, Option<Instant>)> {
        let fd = op_fd(&op);
        let reply = match api::execute(stack, op) {
            Outcome::Done(r) => r,
            Outcome::Block(op, d) if d.is_some_and(|d| now >= d) => api::expire(stack, op),
            Outcome::Block(op, d) => return Some((op, d.or(deadline))),
        };
        // The lingering close ended.
        if let Some(fd) = fd {
            self.forget(fd);
        }
        self.send(mb, Msg::Reply(reply, None));
        None
    }

    /// Publishes this pass: takes the socket table's changes, moves data to
    /// the application (within credit), pre-accepts connections (within the
    /// backlog) and sends the levels that changed.
    pub(crate) fn publish(&mut self, stack: &mut CoreStack, mb: &Mb, pool: &BufPool) {
        let dirty = &mut self.dirty;
        stack
            .sockets
            .drain_changes(|fd, _level, wake| dirty.push((fd.0, wake)));
        if self.flush_overflow(mb) {
            // Index loop: examining a listener adds its new connections.
            let mut i = 0;
            while i < self.dirty.len() {
                let (fd, wake) = self.dirty[i];
                i += 1;
                self.examine(stack, mb, pool, Fd(fd), wake);
            }
            self.dirty.clear();
        }
        // (With a full queue the dirty list waits for the next pass.)
    }

    /// Wakes the application if this pass delivered anything (called after
    /// the pass transmitted, so that an application that preempts the
    /// stack does not hold back its frames).
    pub(crate) fn wake_app(&mut self, mb: &Mb) {
        if self.take_delivered() {
            mb.wake_app();
        }
    }

    /// Messages that handed the application something to answer, since
    /// the bridge was made.
    pub(crate) fn handed(&self) -> u64 {
        self.handed
    }

    /// Whether passes delivered anything since the last call (and forgets
    /// it).
    pub(crate) fn take_delivered(&mut self) -> bool {
        std::mem::take(&mut self.delivered)
    }

    fn examine(&mut self, stack: &mut CoreStack, mb: &Mb, pool: &BufPool, fd: Fd, wake: Readiness) {
        let idx = fd.0 as usize;
        if !self.links.get(idx).is_some_and(|l| l.open) {
            return;
        }
        let s = &mut stack.sockets;
        // Written bytes the engine did not take.
        let link = &mut self.links[idx];
        if !link.pending.is_empty() {
            match s.send(fd, &link.pending, MsgFlags::NONE) {
                Ok(n) => {
                    link.pending.drain(..n);
                }
                Err(Errno::EAGAIN) => {}
                Err(_) => link.pending.clear(),
            }
        }
        // Listener: accept up to the backlog for the application.
        while self.links[idx].pre_accepted < self.links[idx].backlog {
            let Ok((nfd, peer)) = stack.sockets.accept(fd) else {
                break;
            };
            self.links[idx].pre_accepted += 1;
            let _ = stack.sockets.set_nonblocking(nfd, true);
            if let Some(l) = self.links.get_mut(nfd.0 as usize) {
                *l = Link {
                    credit: APP_CREDIT,
                    open: true,
                    ..Link::default()
                };
            }
            self.send(
                mb,
                Msg::Accepted {
                    listener: fd,
                    fd: nfd,
                    peer,
                },
            );
            // Its data and level follow, later in this pass.
            self.dirty.push((nfd.0, Readiness::ALL));
        }
        // The engine's queue holds what is left of the backlog, so that the
        // connections waiting for the application (accepted ahead here, or
        // queued there) stay within it plus one, as on Linux (its queue is
        // full only beyond the backlog). The one also lets a handshake
        // that completes in the same batch as the next SYN leave room for
        // it before this pass accepts it ahead. RFC 9293 section 3.10.1
        // leaves the queue's size to the implementation.
        let link = &mut self.links[idx];
        if link.backlog > 0 {
            let left = link
                .backlog
                .saturating_add(1)
                .saturating_sub(link.pre_accepted)
                .max(1);
            if left != link.engine_backlog
                && stack
                    .sockets
                    .listen(fd, left.min(i32::MAX as u32) as i32)
                    .is_ok()
            {
                link.engine_backlog = left;
            }
        }
        let s = &mut stack.sockets;
        let link = &mut self.links[idx];
        // Received bytes, within the credit.
        let mut data = None;
        if link.credit > 0 {
            let avail = s.fionread(fd).unwrap_or(0).min(link.credit as usize);
            if avail > 0 {
                let mut buf = pool_take(pool);
                buf.resize(avail, 0);
                // Read ahead: the bytes count against the window until
                // the application consumes them (Call::Consumed).
                match s.recv_ahead(fd, &mut buf) {
                    Ok(n) if n > 0 => {
                        buf.truncate(n);
                        link.credit -= n as u32;
                        data = Some(buf);
                    }
                    _ => pool_put(pool, buf),
                }
            }
        }
        let moved = data.is_some();
        if let Some(buf) = data {
            self.send(mb, Msg::Data { fd, buf });
        }
        let link = &mut self.links[idx];
        let Ok(level) = stack.sockets.readiness(fd) else {
            return;
        };
        let room = room(stack, fd, link);
        let eof = at_eof(stack, fd, level);
        let now = (level, room, link.taken, link.connects, eof);
        if link.last == Some(now) && wake.is_empty() && !moved {
            return;
        }
        link.last = Some(now);
        let (taken, connects) = (link.taken, link.connects);
        self.send(
            mb,
            Msg::Level(Level {
                fd,
                level,
                wake,
                room,
                taken,
                connects,
                eof,
            }),
        );
    }
}
