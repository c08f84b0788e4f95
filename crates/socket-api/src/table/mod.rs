//! [`SocketTable`]: descriptors, the BSD calls, options, and readiness tracking
//! over one [`tcp_core::Endpoint`].
//!
//! This file holds the table, its descriptors, the driver side and readiness;
//! `open.rs` the calls that make and end sockets (socket .. close), `io.rs` the
//! data calls, `control.rs` names, modes, ioctl and options.

mod control;
mod io;
mod open;

use core::ops::RangeInclusive;
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};

use tcp_core::{
    AcceptError, ConnError, ConnOptions, ConnectError, Endpoint, EventKind, IcmpError, Instant,
    KeepAlive, ListenError, RecvError, SendError, SocketError, SocketHandle, State, Transmit,
};
use wire::TcpRepr;

use crate::options::{
    MsgFlags, Shutdown, SockOpt, SockOptName, AF_INET, FIONREAD, F_GETFL, F_SETFL, IPPROTO_TCP,
    MAX_KEEPCNT, MAX_KEEP_SECS, MIN_BUF, MIN_MAXSEG, O_NONBLOCK, SOCK_CLOEXEC, SOCK_NONBLOCK,
    SOCK_STREAM,
};
use crate::ports::{PortHold, PortPolicy, Ports};
use crate::{Errno, Readiness};

/// A socket descriptor: a small integer local to one [`SocketTable`] (per-core
/// context), allocated lowest-free-first like POSIX descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub u32);

impl core::fmt::Display for Fd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Configuration of a [`SocketTable`], set by the runtime.
pub struct SocketConfig {
    /// Most open descriptors (sockets plus reserved ones); more fail with `EMFILE`.
    pub max_fds: u32,
    /// The context's IPv4 addresses. `bind` accepts these and 0.0.0.0; `connect`
    /// from an unbound or wildcard-bound socket uses the first as source address.
    pub local_ips: Vec<Ipv4Addr>,
    /// Ports `connect` and `bind` to port 0 choose from.
    pub ephemeral_ports: RangeInclusive<u16>,
    /// Which of those this context may use (e.g. those whose flows hash to this
    /// core's queue); `None` accepts all.
    pub port_policy: Option<Box<dyn PortPolicy>>,
    /// Largest `listen` backlog (Linux `somaxconn`); larger requests are clamped.
    pub max_backlog: u32,
    /// Where the ephemeral port search starts (vary it per context).
    pub port_seed: u32,
}

impl core::fmt::Debug for SocketConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SocketConfig")
            .field("max_fds", &self.max_fds)
            .field("local_ips", &self.local_ips)
            .field("ephemeral_ports", &self.ephemeral_ports)
            .field("port_policy", &self.port_policy.is_some())
            .field("max_backlog", &self.max_backlog)
            .field("port_seed", &self.port_seed)
            .finish()
    }
}

impl Default for SocketConfig {
    /// 65 536 descriptors, no local address (set one), Linux's ephemeral range
    /// 32768..=60999, every port accepted, backlog at most 4096.
    fn default() -> Self {
        SocketConfig {
            max_fds: 65_536,
            local_ips: Vec::new(),
            ephemeral_ports: 32768..=60999,
            port_policy: None,
            max_backlog: 4096,
            port_seed: 0,
        }
    }
}

/// Per-socket options, inherited by accepted connections from their listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Options {
    reuse_addr: bool,
    keepalive: bool,
    keep: KeepAlive,
    nodelay: bool,
    linger: Option<Duration>,
    rcvbuf: usize,
    sndbuf: usize,
    maxseg: Option<u16>,
    user_timeout: Option<Duration>,
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
struct ConnFd {
    handle: SocketHandle,
    /// The port this connection holds in [`Ports`].
    hold: PortHold,
    /// `bind` chose the local address before `connect` (kept for a new attempt).
    bound: Option<SocketAddrV4>,
    /// The error to report once (SO_ERROR, or the next read/write/connect).
    so_error: Option<ConnError>,
    /// `SHUT_RD` was called.
    shut_rd: bool,
    /// `SHUT_WR` was called.
    shut_wr: bool,
    /// The connection reached ESTABLISHED at some point.
    established: bool,
    /// The engine's send buffer capacity for this connection (its
    /// `ConnOptions::send_buf`), to tell queued bytes from free space.
    send_cap: usize,
    /// A write found the send buffer full (`EAGAIN` or a partial write), or the
    /// level was computed without `OUT`: freed send space wakes `OUT` watchers
    /// only then, once (Linux's `SOCK_NOSPACE`, see [`SocketTable::write_space`]).
    no_space: bool,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Not open.
    Free,
    /// Open, but not a socket (an epoll instance of the runtime).
    Reserved,
    /// `socket()` made it; maybe bound.
    Fresh {
        bound: Option<(SocketAddrV4, PortHold)>,
    },
    Listener {
        handle: SocketHandle,
        local: SocketAddrV4,
        hold: PortHold,
        /// Send buffer capacity of the connections it accepts.
        send_cap: usize,
    },
    Conn(ConnFd),
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    kind: Kind,
    nonblocking: bool,
    opts: Options,
    /// On the dirty list.
    dirty: bool,
    /// What happened since the last drain.
    wake: Readiness,
}

/// Who holds an engine handle (indexed by `SocketHandle::index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Nobody,
    Fd(u32),
    /// Closed by the application; the engine releases it later (`Closed` event).
    Orphan(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HandleSlot {
    generation: u32,
    owner: Owner,
}

/// The sockets of one per-core context: small-integer descriptors over one
/// [`tcp_core::Endpoint`], with the BSD calls (mTCP's names), socket options that
/// act on the engine, and the readiness of every descriptor for epoll.
///
/// Application calls take no time argument: the table uses the last `now` the
/// driver gave it ([`set_now`](Self::set_now), [`handle_segment`](Self::handle_segment),
/// [`handle_timeout`](Self::handle_timeout), [`poll_transmit`](Self::poll_transmit)).
/// No call blocks and none panics: each returns at once with a value or an
/// [`Errno`].
pub struct SocketTable {
    ep: Endpoint,
    cfg: SocketConfig,
    now: Instant,
    slots: Vec<Slot>,
    free: BinaryHeap<Reverse<u32>>,
    open: u32,
    handles: Vec<HandleSlot>,
    dirty: Vec<u32>,
    ports: Ports,
    defaults: Options,
}

impl core::fmt::Debug for SocketTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SocketTable")
            .field("endpoint", &self.ep)
            .field("open", &self.open)
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn conn_errno(e: SocketError) -> Errno {
    match e {
        SocketError::InvalidHandle => Errno::EBADF,
        SocketError::NotSupported => Errno::EOPNOTSUPP,
        SocketError::NotConnected => Errno::ENOTCONN,
    }
}

/// Remote addresses a connection can go to (MUST-46): unicast, specified, port set.
fn valid_remote(remote: SocketAddrV4) -> bool {
    let ip = remote.ip();
    remote.port() != 0 && !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
}

impl SocketTable {
    /// A table over `endpoint` (which should be fresh: connections made on it
    /// before are not visible here).
    pub fn new(endpoint: Endpoint, config: SocketConfig) -> SocketTable {
        let ecfg = endpoint.config();
        let defaults = Options {
            reuse_addr: false,
            keepalive: ecfg.keepalive.is_some(),
            keep: ecfg.keepalive.unwrap_or_default(),
            nodelay: ecfg.nodelay,
            linger: None,
            rcvbuf: ecfg.recv_buf,
            sndbuf: ecfg.send_buf,
            maxseg: None,
            user_timeout: ecfg.user_timeout,
            rcvtimeo: None,
            sndtimeo: None,
        };
        let ports = Ports::new(config.port_seed);
        SocketTable {
            ep: endpoint,
            cfg: config,
            now: Instant::ZERO,
            slots: Vec::new(),
            free: BinaryHeap::new(),
            open: 0,
            handles: Vec::new(),
            dirty: Vec::new(),
            ports,
            defaults,
        }
    }

    /// The engine (read-only: statistics, connection info by handle).
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// The configuration.
    pub fn config(&self) -> &SocketConfig {
        &self.cfg
    }

    /// Open descriptors (sockets and reserved).
    pub fn open_count(&self) -> u32 {
        self.open
    }

    /// Capacity of the dirty list (tests: it must not grow while reporting).
    #[cfg(test)]
    pub(crate) fn dirty_capacity(&self) -> usize {
        self.dirty.capacity()
    }

    /// No port is held by a socket or a closing connection (tests).
    #[cfg(test)]
    pub(crate) fn ports_all_free(&self) -> bool {
        self.ports.all_free()
    }

    /// The engine handle behind a connection or listener descriptor (for
    /// [`Endpoint::info`] and statistics).
    pub fn handle(&self, fd: Fd) -> Result<SocketHandle, Errno> {
        match self.slot(fd)?.kind {
            Kind::Conn(c) => Ok(c.handle),
            Kind::Listener { handle, .. } => Ok(handle),
            Kind::Reserved => Err(Errno::ENOTSOCK),
            Kind::Fresh { .. } => Err(Errno::ENOTCONN),
            Kind::Free => Err(Errno::EBADF),
        }
    }

    // ------------------------------------------------------------------
    // Driver side
    // ------------------------------------------------------------------

    /// Set the time application calls use (the driver's clock).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// The time application calls use.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Feed a received segment to the engine (see [`Endpoint::handle_segment`]).
    pub fn handle_segment(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpRepr<'_>,
    ) {
        self.now = now;
        self.ep.handle_segment(now, src, dst, seg);
    }

    /// Feed an ICMP error to the engine (see [`Endpoint::handle_icmp_error`]).
    pub fn handle_icmp_error(&mut self, now: Instant, err: IcmpError) {
        self.now = now;
        self.ep.handle_icmp_error(now, err);
    }

    /// Run the engine's timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.ep.handle_timeout(now);
    }

    /// The next segment to send (see [`Endpoint::poll_transmit`]).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.now = now;
        self.ep.poll_transmit(now, buf)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ep.poll_timeout()
    }

    /// Report every descriptor whose readiness may have changed since the last
    /// call: `f(fd, level, wake)`, where `level` is the readiness now and `wake`
    /// what happened ([`Readiness::READABLE`] for new data or a new connection,
    /// [`Readiness::WRITABLE`] for send space freed after a writer ran out of it
    /// (Linux's `SOCK_NOSPACE` rule), [`Readiness::ALL`] for a state
    /// change, empty for a level update only): exactly the `readiness` and `wake`
    /// arguments of `epoll_events::EpollContext::notify`.
    ///
    /// Engine events are consumed here, so call it after each batch of driver
    /// input (segments, timeouts) and after application calls. Each descriptor is
    /// reported at most once per call; closed descriptors are skipped. No
    /// allocation: the dirty list has room for every descriptor.
    pub fn drain_changes(&mut self, mut f: impl FnMut(Fd, Readiness, Readiness)) {
        self.pump_events();
        // Index loop: descriptors marked while reporting are reported too.
        let mut i = 0;
        while let Some(&fd) = self.dirty.get(i) {
            i += 1;
            let Some(slot) = self.slots.get_mut(fd as usize) else {
                continue;
            };
            slot.dirty = false;
            let wake = core::mem::take(&mut slot.wake);
            if matches!(slot.kind, Kind::Free | Kind::Reserved) {
                continue;
            }
            if let Ok(level) = self.readiness(Fd(fd)) {
                f(Fd(fd), level, wake);
            }
        }
        self.dirty.clear();
    }

    /// Take the engine's events into the descriptors' state.
    fn pump_events(&mut self) {
        while let Some(ev) = self.ep.poll_event() {
            let h = ev.socket;
            let owner = match self.handles.get(h.index()) {
                Some(s) if s.generation == h.generation() => s.owner,
                _ => continue,
            };
            match owner {
                Owner::Fd(fd) => self.on_event(fd, h, ev.kind),
                Owner::Orphan(port) => {
                    if ev.kind == EventKind::Closed {
                        self.ports.remove_orphan(port);
                        self.handles[h.index()].owner = Owner::Nobody;
                    }
                }
                Owner::Nobody => {}
            }
        }
    }

    fn on_event(&mut self, fd: u32, h: SocketHandle, kind: EventKind) {
        let wake = match kind {
            EventKind::Readable => Readiness::READABLE,
            EventKind::Writable => self.write_space(fd),
            EventKind::AcceptReady => Readiness::READABLE,
            EventKind::Connected => {
                if let Some(Kind::Conn(c)) = self.slots.get_mut(fd as usize).map(|s| &mut s.kind) {
                    c.established = true;
                }
                Readiness::ALL
            }
            EventKind::PeerFin => Readiness::ALL,
            EventKind::Error(_) => {
                self.sync_error(fd);
                Readiness::ALL
            }
            EventKind::Closed => Readiness::EMPTY,
        };
        let _ = h;
        self.mark(fd, wake);
    }

    /// The wake for send space the engine freed (an ACK of our data), as Linux's
    /// `sk_stream_write_space`: [`Readiness::WRITABLE`] only for a connection whose
    /// writer found the buffer full (`no_space`, Linux's `SOCK_NOSPACE`), once
    /// there is room again; that clears `no_space`. Otherwise no wake, a level
    /// update only: an edge-triggered `EPOLLOUT` watcher that never ran out of
    /// room is not woken by every ACK. (Linux also waits until a third of the
    /// buffer is free, for the wake and for the `OUT` level; here both follow any
    /// room, as the level must: Linux's buffer accounting, in bytes of memory
    /// with overhead, cannot be matched, and a level that gains `OUT` wakes
    /// edge-triggered watchers anyway.)
    fn write_space(&mut self, fd: u32) -> Readiness {
        let Some(slot) = self.slots.get(fd as usize) else {
            return Readiness::EMPTY;
        };
        let Kind::Conn(c) = slot.kind else {
            return Readiness::EMPTY;
        };
        if !c.no_space || self.write_room(&c, slot.opts.sndbuf) == 0 {
            return Readiness::EMPTY;
        }
        if let Some(c) = self.conn_mut(Fd(fd)) {
            c.no_space = false;
        }
        Readiness::WRITABLE
    }

    /// Put `fd` on the dirty list with `wake`.
    fn mark(&mut self, fd: u32, wake: Readiness) {
        let Some(slot) = self.slots.get_mut(fd as usize) else {
            return;
        };
        slot.wake |= wake;
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(fd);
        }
    }

    /// Move an error the engine recorded into the descriptor (reported once).
    fn sync_error(&mut self, fd: u32) {
        let Some(Kind::Conn(c)) = self.slots.get(fd as usize).map(|s| s.kind) else {
            return;
        };
        if let Ok(Some(e)) = self.ep.take_error(c.handle) {
            if let Some(Kind::Conn(c)) = self.slots.get_mut(fd as usize).map(|s| &mut s.kind) {
                c.so_error = Some(e);
            }
        }
    }

    fn set_owner(&mut self, h: SocketHandle, owner: Owner) {
        let idx = h.index();
        if self.handles.len() <= idx {
            self.handles.resize(
                idx + 1,
                HandleSlot {
                    generation: 0,
                    owner: Owner::Nobody,
                },
            );
        }
        let old = self.handles[idx];
        if old.generation != h.generation() {
            // The engine released the old socket of this slot before we saw
            // its `Closed` event.
            if let Owner::Orphan(port) = old.owner {
                self.ports.remove_orphan(port);
            }
        }
        self.handles[idx] = HandleSlot {
            generation: h.generation(),
            owner,
        };
    }

    // ------------------------------------------------------------------
    // Descriptors
    // ------------------------------------------------------------------

    fn slot(&self, fd: Fd) -> Result<&Slot, Errno> {
        match self.slots.get(fd.0 as usize) {
            Some(s) if !matches!(s.kind, Kind::Free) => Ok(s),
            _ => Err(Errno::EBADF),
        }
    }

    fn slot_mut(&mut self, fd: Fd) -> Result<&mut Slot, Errno> {
        match self.slots.get_mut(fd.0 as usize) {
            Some(s) if !matches!(s.kind, Kind::Free) => Ok(s),
            _ => Err(Errno::EBADF),
        }
    }

    /// A socket descriptor (not reserved).
    fn sock(&self, fd: Fd) -> Result<&Slot, Errno> {
        let s = self.slot(fd)?;
        if matches!(s.kind, Kind::Reserved) {
            return Err(Errno::ENOTSOCK);
        }
        Ok(s)
    }

    fn conn(&self, fd: Fd) -> Result<Option<ConnFd>, Errno> {
        Ok(match self.sock(fd)?.kind {
            Kind::Conn(c) => Some(c),
            _ => None,
        })
    }

    fn conn_mut(&mut self, fd: Fd) -> Option<&mut ConnFd> {
        match self.slots.get_mut(fd.0 as usize).map(|s| &mut s.kind) {
            Some(Kind::Conn(c)) => Some(c),
            _ => None,
        }
    }

    fn has_free_fd(&self) -> bool {
        !self.free.is_empty() || (self.slots.len() as u64) < u64::from(self.cfg.max_fds)
    }

    fn alloc_fd(&mut self, kind: Kind, opts: Options, nonblocking: bool) -> Result<Fd, Errno> {
        let slot = Slot {
            kind,
            nonblocking,
            opts,
            dirty: false,
            wake: Readiness::EMPTY,
        };
        let fd = if let Some(Reverse(fd)) = self.free.pop() {
            self.slots[fd as usize] = Slot {
                // Keep the dirty flag: the fd may still be on the dirty list.
                dirty: self.slots[fd as usize].dirty,
                ..slot
            };
            fd
        } else {
            if (self.slots.len() as u64) >= u64::from(self.cfg.max_fds) {
                return Err(Errno::EMFILE);
            }
            let fd = self.slots.len() as u32;
            self.slots.push(slot);
            // Room for every descriptor on the dirty list: marking never allocates.
            self.dirty.reserve(self.slots.len() - self.dirty.len());
            fd
        };
        self.open += 1;
        Ok(Fd(fd))
    }

    fn free_fd(&mut self, fd: Fd) {
        if let Some(slot) = self.slots.get_mut(fd.0 as usize) {
            if !matches!(slot.kind, Kind::Free) {
                slot.kind = Kind::Free;
                slot.wake = Readiness::EMPTY;
                self.free.push(Reverse(fd.0));
                self.open -= 1;
            }
        }
    }

    /// Reserve a descriptor that is not a socket (an epoll instance of the
    /// runtime), in the same number space; socket calls on it fail with `ENOTSOCK`.
    pub fn reserve_fd(&mut self) -> Result<Fd, Errno> {
        self.alloc_fd(Kind::Reserved, self.defaults, false)
    }

    /// Give back a descriptor from [`reserve_fd`](Self::reserve_fd).
    pub fn release_fd(&mut self, fd: Fd) -> Result<(), Errno> {
        match self.slot(fd)?.kind {
            Kind::Reserved => {
                self.free_fd(fd);
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    // ------------------------------------------------------------------
    // Readiness
    // ------------------------------------------------------------------

    /// What `fd` is ready for now, by Linux's `tcp_poll` rules:
    ///
    /// * a socket neither connected nor listening: `OUT | HUP` (as Linux reports
    ///   for a fresh TCP socket);
    /// * a listener: `IN` while a connection waits for `accept`, else nothing;
    /// * connecting (SYN-SENT): nothing (`ERR` once it failed);
    /// * connected: `IN` with buffered data or once the read side is shut (the
    ///   peer's FIN, our `SHUT_RD`, or the end of the connection) together with
    ///   `RDHUP`; `OUT` with send space, and always once our write side is shut;
    ///   `HUP` when both directions are shut or the connection is closed (reset,
    ///   timed out, finished); `ERR` while an error is pending (until `SO_ERROR`
    ///   or a read/write reports it).
    pub fn readiness(&mut self, fd: Fd) -> Result<Readiness, Errno> {
        let slot = *self.sock(fd)?;
        Ok(match slot.kind {
            Kind::Free | Kind::Reserved => Readiness::EMPTY,
            Kind::Fresh { .. } => Readiness {
                writable: true,
                hup: true,
                ..Readiness::EMPTY
            },
            Kind::Listener { handle, .. } => Readiness {
                readable: self.ep.accept_queue_len(handle).unwrap_or(0) > 0,
                ..Readiness::EMPTY
            },
            Kind::Conn(_) => {
                self.sync_error(fd.0);
                let Some(c) = self.conn_mut(fd).map(|c| *c) else {
                    return Ok(Readiness::EMPTY);
                };
                let state = self.ep.state(c.handle).unwrap_or(State::Closed);
                let err = c.so_error.is_some();
                if matches!(state, State::SynSent | State::SynReceived) {
                    return Ok(Readiness {
                        err,
                        ..Readiness::EMPTY
                    });
                }
                let closed = state == State::Closed;
                let rd_shut = c.shut_rd
                    || closed
                    || matches!(
                        state,
                        State::CloseWait | State::LastAck | State::Closing | State::TimeWait
                    );
                let wr_shut = c.shut_wr
                    || closed
                    || matches!(
                        state,
                        State::FinWait1
                            | State::FinWait2
                            | State::Closing
                            | State::LastAck
                            | State::TimeWait
                    );
                let data = self.ep.readable(c.handle).unwrap_or(0) > 0;
                let out = self.write_room(&c, slot.opts.sndbuf) > 0;
                if !out && !wr_shut {
                    // Like tcp_poll: whoever saw no OUT is woken once it is back.
                    if let Some(c) = self.conn_mut(fd) {
                        c.no_space = true;
                    }
                }
                Readiness {
                    readable: data || rd_shut,
                    writable: wr_shut || out,
                    rdhup: rd_shut,
                    hup: closed || (rd_shut && wr_shut),
                    err,
                }
            }
        })
    }
}
