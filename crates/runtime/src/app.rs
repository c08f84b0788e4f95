//! The threaded mode's application side: a copy of every socket of the
//! context (its received bytes, the stack's view of its readiness, its send
//! credit, a listener's accepted connections) and the context's epoll
//! instances, so that read, write, accept and epoll_wait run on the calling
//! thread and only post what they did (see [`crate::bridge`]).
//!
//! A call waits only when the socket's copy says it would block (and the
//! socket blocks): it then sleeps until the stack's next batch of messages.
//! Calls whose answer only the stack has (socket, bind, listen, connect,
//! options, and the end-of-stream and error paths of read and write) wait
//! for a reply, applying every message queued before it.

use crate::api::{self, Error, Expect, Op, Reply};
use crate::bridge::{pool_put, pool_take, BufPool, Call, Level, Msg};
use crate::driver::{acquire, try_lock, Driver};
use crate::mailbox::Mailbox;
use crate::MAX_CALL_BYTES;
use epoll_events::{CtlOp, EpollContext, EpollId, Event, Events};
use socket_api::{Errno, Fd, MsgFlags, Readiness, Shutdown, SockOpt, SockOptName};
use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

type Mb = Mailbox<Call, Msg>;

/// Fresh sockets asked for at once when `socket` finds none ready.
const SOCKET_BATCH: usize = 16;

/// How long after a wait on the stack (or an epoll_wait) the calls this
/// thread posts count as one burst, taken by the stack in a batch.
const BURST: Duration = Duration::from_micros(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A TCP socket (fresh, connecting or connected).
    Socket,
    /// A listening socket.
    Listener,
    /// An epoll instance.
    Epoll(EpollId),
}

/// The application's copy of one descriptor.
#[derive(Debug)]
struct Shadow {
    kind: Kind,
    nonblocking: bool,
    /// Received bytes not read yet, in order; `rx_off` bytes of the first
    /// buffer are read already.
    rx: VecDeque<Vec<u8>>,
    rx_off: usize,
    rx_len: usize,
    /// An error the stack reported while bytes were still here: returned
    /// once they are read (Linux reports data before the error).
    pending_err: Option<Error>,
    /// The stack's readiness (see [`Level::level`]).
    stack: Readiness,
    /// The stack reported end of stream with every byte moved here (see
    /// [`Level::eof`]).
    eof: bool,
    /// Send room the stack reported, after `taken` bytes of writes.
    room: Option<u32>,
    taken: u64,
    /// Bytes of writes posted.
    sent: u64,
    /// A listener's connections accepted by the stack, not yet by the
    /// application.
    accepted: VecDeque<(Fd, SocketAddrV4)>,
    /// `SO_LINGER` as last set.
    linger: Option<Duration>,
    /// `SO_RCVTIMEO` and `SO_SNDTIMEO` as last set (inherited on accept).
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    /// The peer (from accept, or the address a connect was posted for).
    peer: Option<SocketAddrV4>,
    /// Connects posted; levels the stack made before the latest are stale.
    connects: u32,
    /// The error of a posted connect that could not start (`SO_ERROR`).
    connect_err: Option<Errno>,
    /// A write found no credit: the next credit is an `EPOLLOUT` wake-up
    /// (Linux wakes writers only after they ran out of space).
    nospace: bool,
}

impl Shadow {
    fn new(kind: Kind, stack: Readiness) -> Self {
        Shadow {
            kind,
            nonblocking: false,
            rx: VecDeque::new(),
            rx_off: 0,
            rx_len: 0,
            pending_err: None,
            stack,
            eof: false,
            room: None,
            taken: 0,
            sent: 0,
            accepted: VecDeque::new(),
            linger: None,
            rcvtimeo: None,
            sndtimeo: None,
            peer: None,
            connects: 0,
            connect_err: None,
            nospace: false,
        }
    }

    /// Bytes a write may hand over now.
    fn credit(&self) -> u64 {
        let room = u64::from(self.room.unwrap_or(0));
        room.saturating_sub(self.sent.saturating_sub(self.taken))
    }

    /// Readiness as the application sees it: the stack's, with the bytes
    /// and connections held here and the credit left.
    fn level(&self) -> Readiness {
        match self.kind {
            Kind::Epoll(_) => Readiness::EMPTY,
            Kind::Listener => Readiness {
                readable: !self.accepted.is_empty(),
                err: self.stack.err,
                ..Readiness::EMPTY
            },
            Kind::Socket if self.connect_err.is_some() => Readiness::ALL,
            Kind::Socket => Readiness {
                readable: self.rx_len > 0 || self.pending_err.is_some() || self.stack.readable,
                writable: match self.room {
                    Some(_) => self.credit() > 0,
                    None => self.stack.writable,
                },
                ..self.stack
            },
        }
    }

    /// Copies up to `out.len()` received bytes; consumes them unless `peek`.
    fn copy_out(&mut self, out: &mut [u8], peek: bool, pool: &BufPool) -> usize {
        let mut n = 0;
        let mut off = self.rx_off;
        let mut i = 0;
        while n < out.len() {
            let Some(b) = self.rx.get(i) else { break };
            let k = (b.len() - off).min(out.len() - n);
            out[n..n + k].copy_from_slice(&b[off..off + k]);
            n += k;
            off += k;
            if off == b.len() {
                i += 1;
                off = 0;
            }
        }
        if !peek {
            for _ in 0..i {
                if let Some(b) = self.rx.pop_front() {
                    pool_put(pool, b);
                }
            }
            self.rx_off = off;
            self.rx_len -= n;
        }
        n
    }
}

/// The application side of one threaded context.
pub(crate) struct AppSide {
    mb: Arc<Mb>,
    pool: Arc<BufPool>,
    /// The stack side, run by this thread while it waits (see `driver`).
    driver: Arc<Mutex<Driver>>,
    /// How long a wait polls the stack before it parks.
    spin: Duration,
    me: Option<ThreadId>,
    shadows: Vec<Option<Shadow>>,
    epoll: EpollContext,
    /// The reply of the outstanding synchronous call, once it came.
    reply: Option<Reply>,
    /// Buffers of the synchronous read and write paths and of epoll_wait.
    spare: Vec<u8>,
    /// When this thread last waited on the stack (or polled its events).
    waited: Instant,
    /// Fresh sockets the stack made ahead, for `socket` without a round trip.
    fresh: Vec<Fd>,
}

impl std::fmt::Debug for AppSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSide").finish_non_exhaustive()
    }
}

fn ev(r: Readiness) -> Events {
    Events::from_bits_truncate(r.bits())
}

impl AppSide {
    pub(crate) fn new(
        mb: Arc<Mb>,
        pool: Arc<BufPool>,
        driver: Arc<Mutex<Driver>>,
        spin: Duration,
        epoll: EpollContext,
        max_fds: usize,
    ) -> Self {
        AppSide {
            mb,
            pool,
            driver,
            spin,
            me: None,
            shadows: (0..max_fds).map(|_| None).collect(),
            epoll,
            reply: None,
            spare: Vec::new(),
            waited: Instant::now(),
            fresh: Vec::new(),
        }
    }

    fn shadow(&mut self, fd: Fd) -> Result<&mut Shadow, Error> {
        self.shadows
            .get_mut(fd.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(Error::Socket(Errno::EBADF))
    }

    fn kind(&self, fd: Fd) -> Option<Kind> {
        self.shadows.get(fd.0 as usize)?.as_ref().map(|s| s.kind)
    }

    /// Reports `fd`'s level to the epoll instances (`wake`: what happened).
    fn publish(&mut self, fd: Fd, wake: Readiness) {
        let Some(sh) = self.shadows.get(fd.0 as usize).and_then(Option::as_ref) else {
            return;
        };
        let level = sh.level();
        let efd = epoll_events::Fd(fd.0);
        if wake.is_empty() {
            let _ = self.epoll.set_readiness(efd, ev(level));
        } else {
            let _ = self.epoll.notify(efd, ev(level), ev(wake));
        }
    }

    fn create(&mut self, fd: Fd, kind: Kind, stack: Readiness) {
        let Some(slot) = self.shadows.get_mut(fd.0 as usize) else {
            return;
        };
        if let Some(old) = slot.take() {
            // Not reached: the stack frees a number before reusing it.
            self.drop_shadow(fd, old);
        }
        let sh = Shadow::new(kind, stack);
        let level = sh.level();
        self.shadows[fd.0 as usize] = Some(sh);
        if !matches!(kind, Kind::Epoll(_)) {
            let _ = self.epoll.open_fd(epoll_events::Fd(fd.0), ev(level));
        }
    }

    fn drop_shadow(&mut self, fd: Fd, sh: Shadow) {
        for b in sh.rx {
            pool_put(&self.pool, b);
        }
        if !matches!(sh.kind, Kind::Epoll(_)) {
            let _ = self.epoll.close_fd(epoll_events::Fd(fd.0));
        }
    }

    // ---- the crossing ----

    /// Applies the messages the stack queued, stopping after a reply: what
    /// follows it may depend on it (bytes after those a read returned), so
    /// the waiting call takes the reply first.
    fn drain(&mut self) {
        while self.reply.is_none() {
            let Some(m) = self.mb.take_message() else {
                break;
            };
            self.apply(m);
        }
    }

    fn apply(&mut self, m: Msg) {
        match m {
            Msg::Reply(r, level) => {
                self.reply = Some(r);
                if let Some(l) = level {
                    self.apply_level(l);
                }
            }
            Msg::Data { fd, buf } => {
                match self.shadows.get_mut(fd.0 as usize).and_then(Option::as_mut) {
                    Some(sh) if sh.kind == Kind::Socket => {
                        sh.rx_len += buf.len();
                        sh.rx.push_back(buf);
                    }
                    // Closed here already: the bytes go with it.
                    _ => {
                        pool_put(&self.pool, buf);
                        return;
                    }
                }
                self.publish(fd, Readiness::READABLE);
            }
            Msg::Level(l) => self.apply_level(l),
            Msg::ConnectFailed { fd, err } => {
                if let Some(sh) = self.shadows.get_mut(fd.0 as usize).and_then(Option::as_mut) {
                    sh.connect_err = Some(err);
                    self.publish(fd, Readiness::ALL);
                }
            }
            Msg::Accepted { listener, fd, peer } => {
                let listening = self.kind(listener) == Some(Kind::Listener);
                self.create(fd, Kind::Socket, Readiness::EMPTY);
                if let Some(sh) = self.shadows.get_mut(fd.0 as usize).and_then(Option::as_mut) {
                    sh.peer = Some(peer);
                }
                if !listening {
                    // The listener was closed here: reset the connection.
                    if let Some(sh) = self.shadows.get_mut(fd.0 as usize).and_then(Option::take) {
                        self.drop_shadow(fd, sh);
                    }
                    self.post(Call::Abort(fd));
                    return;
                }
                let mut inherited = (None, None, None);
                if let Ok(l) = self.shadow(listener) {
                    l.accepted.push_back((fd, peer));
                    inherited = (l.linger, l.rcvtimeo, l.sndtimeo);
                }
                if let Some(sh) = self.shadows.get_mut(fd.0 as usize).and_then(Option::as_mut) {
                    (sh.linger, sh.rcvtimeo, sh.sndtimeo) = inherited;
                }
                self.publish(listener, Readiness::READABLE);
            }
        }
    }

    fn apply_level(&mut self, l: Level) {
        let Some(sh) = self
            .shadows
            .get_mut(l.fd.0 as usize)
            .and_then(Option::as_mut)
        else {
            return;
        };
        if l.connects < sh.connects {
            // From before our latest connect reached the stack.
            return;
        }
        sh.stack = l.level;
        sh.eof = l.eof;
        sh.room = l.room;
        sh.taken = l.taken;
        let mut wake = l.wake;
        if wake == Readiness::WRITABLE {
            // Freed send space wakes only a writer that ran out of it.
            wake = if sh.nospace && sh.credit() > 0 {
                sh.nospace = false;
                Readiness::WRITABLE
            } else {
                Readiness::EMPTY
            };
        }
        self.publish(l.fd, wake);
    }

    /// Posts an asynchronous call. Within a burst (this thread waited on
    /// the stack less than [`BURST`] ago) it does not wake the stack, which
    /// takes the batch when this thread next waits (every wait wakes it),
    /// when the queue is half full, or at the stack's backstop timeout: a
    /// burst of calls must not hand the CPU to the stack once per call.
    /// Outside a burst (a thread that writes, then goes on elsewhere) the
    /// post wakes a sleeping stack.
    fn post(&mut self, call: Call) {
        let mut call = call;
        loop {
            match self.mb.post(call) {
                Ok(()) => break,
                Err(c) => {
                    // Full: let the stack take a batch.
                    if self.mb.has_exited() || self.mb.is_closed() {
                        return;
                    }
                    call = c;
                    self.mb.kick();
                    std::thread::yield_now();
                    self.drain();
                }
            }
        }
        if self.mb.calls_half_full() || self.waited.elapsed() > BURST {
            self.mb.kick();
        }
    }

    /// Waits for the next batch of messages (or `deadline`) and applies it.
    /// False when the stack is gone.
    fn wait(&mut self, deadline: Option<Instant>) -> bool {
        if self.mb.has_exited() {
            self.drain();
            return false;
        }
        // Whatever this thread was handed is answered: held output may go.
        self.mb.app_returned();
        if !self.drive(deadline) {
            self.mb.kick();
            self.mb.wait_message(&mut self.me, deadline);
            self.mb.kick_device();
        }
        self.waited = Instant::now();
        self.drain();
        !self.mb.has_exited()
    }

    /// Runs passes of the stack on this thread while it would otherwise
    /// wait, polling for up to `spin` after the last pass that did
    /// anything; a stack thread holding the stack lets go at the end of its
    /// pass or wakes from its device wait to do so. True when messages
    /// arrived; false when the caller should park (nothing came within
    /// `spin`, `deadline` passed, or the stack stopped).
    fn drive(&mut self, deadline: Option<Instant>) -> bool {
        let mut idle_since = Instant::now();
        loop {
            if self.mb.has_message() {
                return true;
            }
            let Some((work, now)) = self.run_pass(true) else {
                return false;
            };
            if self.mb.has_message() {
                return true;
            }
            // A synchronous call the first pass did not answer blocks: the
            // batch this thread was handling ends, as with any wait.
            self.mb.app_returned();
            // (The pass's time: one clock read per pass.)
            if deadline.is_some_and(|d| now >= d) {
                return false;
            }
            if work {
                idle_since = now;
            } else if now.saturating_duration_since(idle_since) >= self.spin {
                return false;
            }
        }
    }

    /// Runs one pass of the stack on this thread (see [`Driver::pass`] for
    /// `hold`). The stack thread may be running a pass, or sleeping on the
    /// device holding the stack: it lets go for us. None when the stack
    /// has stopped (also while we waited for it); else whether anything
    /// happened, and when the pass ran.
    fn run_pass(&self, hold: bool) -> Option<(bool, Instant)> {
        if self.mb.is_closed() {
            return None;
        }
        let mut d = acquire(&self.driver, &self.mb);
        if self.mb.is_closed() {
            return None;
        }
        let now = Instant::now();
        Some((self.pass_here(&mut d, hold, now), now))
    }

    /// One pass of the stack `d` at `now`, run by this thread, which reads
    /// what the pass delivered next (no wake-up is owed).
    fn pass_here(&self, d: &mut Driver, hold: bool, now: Instant) -> bool {
        d.stack.stats.app_passes += 1;
        let work = d.pass(&self.mb, &self.pool, hold, now);
        d.delivered_to_self();
        work
    }

    /// A synchronous call: posts `op` and waits for its reply.
    pub(crate) fn call(&mut self, op: Op) -> Reply {
        let expect = Expect::of(&op);
        if self.mb.is_closed() {
            return api::stopped(op);
        }
        self.post(Call::Sync(op));
        self.mb.kick();
        loop {
            self.drain();
            if let Some(r) = self.reply.take() {
                return r;
            }
            if self.mb.has_exited() {
                self.drain();
                return self.reply.take().unwrap_or_else(|| expect.stopped());
            }
            if !self.drive(None) {
                self.mb.kick();
                self.mb.wait_message(&mut self.me, None);
                self.mb.kick_device();
            }
            self.waited = Instant::now();
        }
    }

    /// Synchronous calls with bookkeeping of their effect on the copies.
    pub(crate) fn sync(&mut self, op: Op) -> Reply {
        self.drain();
        match op {
            Op::Socket { .. } if self.mb.is_closed() => Reply::Fd(Err(Error::Stopped)),
            Op::Socket { nonblocking } => {
                if self.fresh.is_empty() {
                    match self.call(Op::SocketBatch(SOCKET_BATCH)) {
                        Reply::Fds(Ok(fds)) => self.fresh.extend(fds.into_iter().rev()),
                        Reply::Fds(Err(e)) => return Reply::Fd(Err(e)),
                        _ => return Reply::Fd(Err(Error::Stopped)),
                    }
                }
                let Some(fd) = self.fresh.pop() else {
                    return Reply::Fd(Err(Error::Stopped));
                };
                self.create(fd, Kind::Socket, FRESH);
                if let Ok(sh) = self.shadow(fd) {
                    sh.nonblocking = nonblocking;
                }
                Reply::Fd(Ok(fd))
            }
            Op::PeerName(fd) => match self.shadow(fd) {
                // Connected and writable: the peer cannot have changed.
                Ok(sh) if sh.kind == Kind::Socket && sh.room.is_some() && sh.peer.is_some() => {
                    Reply::Addr(sh.peer.ok_or(Error::Stopped))
                }
                _ => self.call(Op::PeerName(fd)),
            },
            Op::GetOpt(fd, SockOptName::Error)
                if self.shadow(fd).is_ok_and(|sh| sh.connect_err.is_some()) =>
            {
                let e = self.shadow(fd).ok().and_then(|sh| sh.connect_err.take());
                self.publish(fd, Readiness::EMPTY);
                Reply::Opt(Ok(SockOpt::Error(e)))
            }
            Op::SocketRaw {
                domain,
                ty,
                protocol,
            } => {
                let nonblocking = ty & socket_api::options::SOCK_NONBLOCK != 0;
                let r = self.call(Op::SocketRaw {
                    domain,
                    ty,
                    protocol,
                });
                if let Reply::Fd(Ok(fd)) = r {
                    self.create(fd, Kind::Socket, FRESH);
                    if let Ok(sh) = self.shadow(fd) {
                        sh.nonblocking = nonblocking;
                    }
                }
                r
            }
            Op::Listen(fd, backlog) => {
                let r = self.call(Op::Listen(fd, backlog));
                if let (Reply::Unit(Ok(())), Ok(sh)) = (&r, self.shadow(fd)) {
                    sh.kind = Kind::Listener;
                    sh.stack = Readiness::EMPTY;
                    self.publish(fd, Readiness::EMPTY);
                }
                r
            }
            Op::SetOpt(fd, opt) => {
                let r = self.call(Op::SetOpt(fd, opt));
                if let (Reply::Unit(Ok(())), Ok(sh)) = (&r, self.shadow(fd)) {
                    let nonzero = |t: Option<Duration>| t.filter(|d| !d.is_zero());
                    match opt {
                        SockOpt::Linger(l) => sh.linger = l,
                        SockOpt::RcvTimeo(t) => sh.rcvtimeo = nonzero(t),
                        SockOpt::SndTimeo(t) => sh.sndtimeo = nonzero(t),
                        _ => {}
                    }
                }
                r
            }
            Op::FionRead(fd) => {
                let r = self.call(Op::FionRead(fd));
                match r {
                    Reply::Size(Ok(n)) => Reply::Size(Ok(n + self.held(fd))),
                    r => r,
                }
            }
            Op::Ioctl(fd, req) => {
                let r = self.call(Op::Ioctl(fd, req));
                match r {
                    Reply::Size(Ok(n)) if req == socket_api::options::FIONREAD => {
                        Reply::Size(Ok(n + self.held(fd)))
                    }
                    r => r,
                }
            }
            Op::SetNonblocking(fd, nb) => Reply::Unit(self.set_nonblocking(fd, nb)),
            Op::IsNonblocking(fd) => Reply::Bool(self.is_nonblocking(fd)),
            op => self.call(op),
        }
    }

    fn held(&self, fd: Fd) -> usize {
        self.shadows
            .get(fd.0 as usize)
            .and_then(Option::as_ref)
            .map_or(0, |s| s.rx_len)
    }

    pub(crate) fn set_nonblocking(&mut self, fd: Fd, nb: bool) -> Result<(), Error> {
        self.drain();
        match self.shadow(fd)? {
            sh if matches!(sh.kind, Kind::Epoll(_)) => Err(Errno::EBADF.into()),
            sh => {
                sh.nonblocking = nb;
                Ok(())
            }
        }
    }

    pub(crate) fn is_nonblocking(&mut self, fd: Fd) -> Result<bool, Error> {
        self.drain();
        match self.shadow(fd)? {
            sh if matches!(sh.kind, Kind::Epoll(_)) => Err(Errno::EBADF.into()),
            sh => Ok(sh.nonblocking),
        }
    }

    // ---- data ----

    /// `recv`: from the socket's copy; the stack only for end of stream and
    /// errors.
    pub(crate) fn recv(&mut self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<usize, Error> {
        flags.check_recv()?;
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            self.drain();
            let pool = Arc::clone(&self.pool);
            let sh = self.shadow(fd)?;
            if sh.kind != Kind::Socket {
                return self.recv_sync(fd, buf.len(), flags).map(|_| 0);
            }
            if sh.rx_len > 0 {
                let n = sh.copy_out(buf, flags.peek(), &pool);
                if !flags.peek() {
                    self.post(Call::Consumed { fd, n: n as u32 });
                    self.publish(fd, Readiness::EMPTY);
                }
                return Ok(n);
            }
            if let Some(e) = sh
                .pending_err
                .take()
                .or(sh.connect_err.take().map(Error::from))
            {
                self.publish(fd, Readiness::EMPTY);
                return Err(e);
            }
            if sh.eof {
                // End of stream, every byte read: no need to ask the stack
                // (and its pass would send the ACK of the FIN ahead of the
                // application's own FIN).
                return Ok(0);
            }
            let nonblocking = sh.nonblocking || flags.dontwait();
            let s = sh.stack;
            if s.readable || s.err || s.hup {
                // End of stream, an error, or bytes beyond the credit.
                match self.recv_sync(fd, buf.len(), flags) {
                    Ok(0) if self.held(fd) > 0 => continue,
                    Ok(0) => return Ok(0),
                    Ok(_) => continue,
                    Err(Error::Socket(Errno::EAGAIN)) if !nonblocking => {}
                    Err(Error::Socket(Errno::EAGAIN)) if self.held(fd) > 0 => continue,
                    Err(e) if self.held(fd) > 0 && e != Error::Socket(Errno::EAGAIN) => {
                        if let Ok(sh) = self.shadow(fd) {
                            sh.pending_err = Some(e);
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if nonblocking {
                return Err(Errno::EAGAIN.into());
            }
            let until = *deadline.get_or_insert_with(|| self.timeout(fd, false));
            if !self.wait_until(until)? {
                return Err(Errno::EAGAIN.into());
            }
        }
    }

    /// The deadline `SO_RCVTIMEO` (or, for `send`, `SO_SNDTIMEO`) sets for a
    /// blocking call starting now.
    fn timeout(&self, fd: Fd, send: bool) -> Option<Instant> {
        let sh = self.shadows.get(fd.0 as usize)?.as_ref()?;
        let t = if send { sh.sndtimeo } else { sh.rcvtimeo }?;
        Instant::now().checked_add(t)
    }

    /// Waits for the stack's next batch, or `until`: false once `until`
    /// passed.
    fn wait_until(&mut self, until: Option<Instant>) -> Result<bool, Error> {
        if until.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        if !self.wait(until) {
            return Err(Error::Stopped);
        }
        Ok(true)
    }

    /// The stack's recv; bytes it returns join the socket's copy (after
    /// those delivered before the reply). Returns the bytes added.
    fn recv_sync(&mut self, fd: Fd, len: usize, flags: MsgFlags) -> Result<usize, Error> {
        let len = len.clamp(1, MAX_CALL_BYTES);
        let buf = std::mem::take(&mut self.spare);
        // A peek must not consume at the stack either: the copy keeps it.
        let r = self.call(Op::Recv {
            fd,
            buf,
            len,
            flags: MsgFlags::from_raw(flags.bits() & !socket_api::options::MSG_PEEK),
        });
        let Reply::Data(r, data) = r else {
            return Err(Error::Stopped);
        };
        let r = match r {
            Ok(n) if n > 0 => {
                let mut b = pool_take(&self.pool);
                b.extend_from_slice(&data[..n]);
                match self.shadow(fd) {
                    Ok(sh) if sh.kind == Kind::Socket => {
                        sh.rx_len += n;
                        sh.rx.push_back(b);
                    }
                    _ => pool_put(&self.pool, b),
                }
                Ok(n)
            }
            r => r,
        };
        self.spare = data;
        r
    }

    pub(crate) fn readv(&mut self, fd: Fd, bufs: &mut [IoSliceMut<'_>]) -> Result<usize, Error> {
        // The first non-empty buffer waits as read would; the rest take
        // what is there.
        let mut total = 0;
        for b in bufs.iter_mut() {
            if b.is_empty() {
                continue;
            }
            let flags = if total == 0 {
                MsgFlags::NONE
            } else {
                MsgFlags::DONTWAIT
            };
            match self.recv(fd, b, flags) {
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    if n < b.len() {
                        break;
                    }
                }
                Err(_) if total > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// `send`: copied out and posted, within the credit the stack reported.
    pub(crate) fn send(&mut self, fd: Fd, data: &[u8], flags: MsgFlags) -> Result<usize, Error> {
        self.sendv(fd, &[IoSlice::new(data)], flags)
    }

    pub(crate) fn sendv(
        &mut self,
        fd: Fd,
        bufs: &[IoSlice<'_>],
        flags: MsgFlags,
    ) -> Result<usize, Error> {
        flags.check_send()?;
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            self.drain();
            let pool = Arc::clone(&self.pool);
            let sh = self.shadow(fd)?;
            let nonblocking = sh.nonblocking || flags.dontwait();
            if let Some(e) = sh.connect_err.take() {
                self.publish(fd, Readiness::EMPTY);
                return Err(e.into());
            }
            if sh.kind == Kind::Socket && sh.room.is_some() {
                let credit = sh.credit();
                if credit > 0 {
                    let n = len.min(MAX_CALL_BYTES).min(credit as usize);
                    let mut out = pool_take(&pool);
                    out.reserve(n);
                    for b in bufs {
                        let k = b.len().min(n - out.len());
                        out.extend_from_slice(&b[..k]);
                        if out.len() == n {
                            break;
                        }
                    }
                    sh.sent += n as u64;
                    if n < len {
                        sh.nospace = true;
                    }
                    self.post(Call::Write { fd, buf: out });
                    self.publish(fd, Readiness::EMPTY);
                    return Ok(n);
                }
            } else if sh.kind != Kind::Socket || sh.stack.writable || sh.stack.err || sh.stack.hup {
                // Writes fail (not connected, shut down, an error): the
                // stack says how.
                return self.send_sync(fd, bufs, flags);
            }
            if let Ok(sh) = self.shadow(fd) {
                sh.nospace = true;
            }
            if nonblocking {
                return Err(Errno::EAGAIN.into());
            }
            let until = *deadline.get_or_insert_with(|| self.timeout(fd, true));
            if !self.wait_until(until)? {
                return Err(Errno::EAGAIN.into());
            }
        }
    }

    fn send_sync(&mut self, fd: Fd, bufs: &[IoSlice<'_>], flags: MsgFlags) -> Result<usize, Error> {
        let mut data = std::mem::take(&mut self.spare);
        data.clear();
        for b in bufs {
            let k = b.len().min(MAX_CALL_BYTES - data.len());
            data.extend_from_slice(&b[..k]);
        }
        let flags = MsgFlags::from_raw(flags.bits() | socket_api::options::MSG_DONTWAIT);
        match self.call(Op::Send {
            fd,
            buf: data,
            flags,
        }) {
            Reply::Data(r, data) => {
                self.spare = data;
                r
            }
            _ => Err(Error::Stopped),
        }
    }

    // ---- connections ----

    pub(crate) fn accept(&mut self, fd: Fd) -> Result<(Fd, SocketAddrV4), Error> {
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            self.drain();
            let sh = self.shadow(fd)?;
            if sh.kind != Kind::Listener {
                return match self.call(Op::Accept(fd)) {
                    Reply::Accepted(r) => r,
                    _ => Err(Error::Stopped),
                };
            }
            if let Some(a) = sh.accepted.pop_front() {
                self.post(Call::AcceptTaken(fd));
                self.publish(fd, Readiness::EMPTY);
                return Ok(a);
            }
            if sh.nonblocking {
                return Err(Errno::EAGAIN.into());
            }
            let until = *deadline.get_or_insert_with(|| self.timeout(fd, false));
            if !self.wait_until(until)? {
                return Err(Errno::EAGAIN.into());
            }
        }
    }

    pub(crate) fn connect(&mut self, fd: Fd, remote: SocketAddrV4) -> Result<(), Error> {
        self.drain();
        let sh = self.shadow(fd)?;
        let nonblocking = sh.nonblocking;
        let ip = *remote.ip();
        if nonblocking
            && sh.kind == Kind::Socket
            && sh.connects == 0
            && sh.stack == FRESH
            && remote.port() != 0
            && !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
        {
            // A fresh socket's first non-blocking connect: answered here
            // (socket-api always answers EINPROGRESS); a failure to start
            // comes back as a failed connection (SO_ERROR, EPOLLERR).
            sh.connects += 1;
            sh.stack = Readiness::EMPTY;
            sh.room = None;
            sh.peer = Some(remote);
            self.post(Call::Connect(fd, remote));
            self.publish(fd, Readiness::EMPTY);
            return Err(Errno::EINPROGRESS.into());
        }
        let r = self.call_unit(Op::Connect(fd, remote));
        if nonblocking || r != Err(Error::Socket(Errno::EINPROGRESS)) {
            return r;
        }
        // A blocking connect waits for the handshake's end (or SO_SNDTIMEO:
        // then it goes on, as on Linux).
        let until = self.timeout(fd, true);
        loop {
            self.drain();
            let s = self.shadow(fd)?.stack;
            if s.writable || s.err || s.hup {
                break;
            }
            if !self.wait_until(until)? {
                return Err(Errno::EINPROGRESS.into());
            }
        }
        match self.call(Op::GetOpt(fd, SockOptName::Error)) {
            Reply::Opt(Ok(SockOpt::Error(Some(e)))) => Err(Error::Socket(e)),
            Reply::Opt(Ok(_)) => Ok(()),
            Reply::Opt(Err(e)) => Err(e),
            _ => Err(Error::Stopped),
        }
    }

    pub(crate) fn shutdown(&mut self, fd: Fd, how: Shutdown) -> Result<(), Error> {
        self.drain();
        self.call_unit(Op::Shutdown(fd, how))
    }

    /// A synchronous call answered with `Reply::Unit`.
    fn call_unit(&mut self, op: Op) -> Result<(), Error> {
        match self.call(op) {
            Reply::Unit(r) => r,
            _ => Err(Error::Stopped),
        }
    }

    /// Resets the connections a closed listener had accepted for us that
    /// we never took (as Linux does for its accept queue).
    fn reset_unaccepted(&mut self, accepted: &VecDeque<(Fd, SocketAddrV4)>) {
        for &(afd, _) in accepted {
            if let Some(a) = self.shadows.get_mut(afd.0 as usize).and_then(Option::take) {
                self.drop_shadow(afd, a);
            }
            self.post(Call::Abort(afd));
        }
    }

    pub(crate) fn close(&mut self, fd: Fd) -> Result<(), Error> {
        self.drain();
        let sh = self
            .shadows
            .get_mut(fd.0 as usize)
            .and_then(Option::take)
            .ok_or(Error::Socket(Errno::EBADF))?;
        match sh.kind {
            Kind::Epoll(id) => {
                let r = self.epoll.epoll_close(id).map_err(Error::from);
                self.post(Call::Release(fd));
                return r;
            }
            Kind::Listener => self.reset_unaccepted(&sh.accepted),
            Kind::Socket => {}
        }
        let unread = sh.rx_len > 0;
        let linger = sh.linger.filter(|t| !t.is_zero() && !sh.nonblocking);
        self.drop_shadow(fd, sh);
        if unread {
            // Unread data make close a reset (RFC 2525 section 2.17, as Linux).
            self.post(Call::Abort(fd));
        } else if linger.is_some() {
            return self.call_unit(Op::CloseBlocking(fd));
        } else {
            self.post(Call::Close(fd));
        }
        Ok(())
    }

    pub(crate) fn abort(&mut self, fd: Fd) -> Result<(), Error> {
        self.drain();
        let r = self.call_unit(Op::Abort(fd));
        if r.is_ok() && !matches!(self.kind(fd), Some(Kind::Epoll(_)) | None) {
            if let Some(sh) = self.shadows.get_mut(fd.0 as usize).and_then(Option::take) {
                self.reset_unaccepted(&sh.accepted);
                self.drop_shadow(fd, sh);
            }
        }
        r
    }

    // ---- epoll ----

    pub(crate) fn epoll_create(&mut self) -> Result<Fd, Error> {
        let fd = match self.call(Op::ReserveFd) {
            Reply::Fd(r) => r?,
            _ => return Err(Error::Stopped),
        };
        match self.epoll.epoll_create() {
            Ok(id) => {
                self.create(fd, Kind::Epoll(id), Readiness::EMPTY);
                Ok(fd)
            }
            Err(e) => {
                self.post(Call::Release(fd));
                Err(e.into())
            }
        }
    }

    fn epoll_id(&mut self, ep: Fd) -> Result<EpollId, Error> {
        match self.kind(ep) {
            Some(Kind::Epoll(id)) => Ok(id),
            _ => Err(Errno::EBADF.into()),
        }
    }

    pub(crate) fn epoll_ctl(
        &mut self,
        ep: Fd,
        op: CtlOp,
        fd: Fd,
        event: Event,
    ) -> Result<(), Error> {
        self.drain();
        let id = self.epoll_id(ep)?;
        if matches!(self.kind(fd), Some(Kind::Epoll(_))) {
            // Nested epoll instances are not supported.
            return Err(Errno::EINVAL.into());
        }
        Ok(self
            .epoll
            .epoll_ctl(id, op, epoll_events::Fd(fd.0), event)?)
    }

    pub(crate) fn epoll_wait(
        &mut self,
        ep: Fd,
        events: &mut [Event],
        timeout: Option<Duration>,
    ) -> Result<usize, Error> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // The batch the last call returned is answered: its output (and
        // the ACKs held for it) leaves now, with new input taken, as in
        // run-to-completion mode, unless the stack thread runs a pass.
        self.mb.app_returned();
        if let Some(mut d) = try_lock(&self.driver) {
            self.pass_here(&mut d, true, Instant::now());
        }
        loop {
            self.drain();
            let id = self.epoll_id(ep)?;
            if events.is_empty() {
                return Err(Errno::EINVAL.into());
            }
            let n = self.epoll.epoll_wait(id, events)?;
            if n > 0 || deadline.is_some_and(|d| Instant::now() >= d) {
                // An event loop: what it posts next is a burst.
                self.waited = Instant::now();
                return Ok(n);
            }
            if !self.wait(deadline) {
                return Err(Error::Stopped);
            }
        }
    }

    /// Ends the batch this thread was handling and runs a pass of the stack
    /// on this thread that takes what was posted, takes new input and sends
    /// everything, including what was held (for a caller about to go quiet
    /// without waiting on the stack). Returns true when anything happened.
    pub(crate) fn flush(&mut self) -> bool {
        self.mb.app_returned();
        self.run_pass(false).is_some_and(|(work, _)| work)
    }
}

/// A fresh socket's readiness (socket-api: writable and hung up).
const FRESH: Readiness = Readiness {
    writable: true,
    hup: true,
    ..Readiness::EMPTY
};
