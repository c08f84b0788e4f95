//! [`SocketTable`]: descriptors, the BSD calls, options, and readiness tracking
//! over one [`tcp_core::Endpoint`].

use core::ops::RangeInclusive;
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};

use tcp_core::{
    ConnError, ConnectError, Endpoint, EventKind, IcmpError, Instant, KeepAlive, ListenError,
    RecvError, SendError, SocketError, SocketHandle, State, Transmit,
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
        /// One connection taken from the engine's accept queue ahead of
        /// `accept`, so the listener's readability is exact.
        ahead: Option<SocketHandle>,
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
    /// Accepted ahead for the listener at this descriptor.
    Ahead(u32),
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
    /// [`Readiness::WRITABLE`] for freed send space, [`Readiness::ALL`] for a state
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
                Owner::Ahead(_) | Owner::Nobody => {}
            }
        }
    }

    fn on_event(&mut self, fd: u32, h: SocketHandle, kind: EventKind) {
        let wake = match kind {
            EventKind::Readable => Readiness::READABLE,
            EventKind::Writable => Readiness::WRITABLE,
            EventKind::AcceptReady => {
                self.fill_ahead(fd);
                Readiness::READABLE
            }
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
    // socket, bind, listen, accept, connect
    // ------------------------------------------------------------------

    /// `socket(domain, type, protocol)`: only `AF_INET`, `SOCK_STREAM` (with
    /// `SOCK_NONBLOCK`, `SOCK_CLOEXEC`), protocol 0 or `IPPROTO_TCP`.
    pub fn socket(&mut self, domain: i32, ty: i32, protocol: i32) -> Result<Fd, Errno> {
        if domain != AF_INET {
            return Err(Errno::EAFNOSUPPORT);
        }
        if ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != SOCK_STREAM {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        if protocol != 0 && protocol != IPPROTO_TCP {
            return Err(Errno::EPROTONOSUPPORT);
        }
        self.alloc_fd(
            Kind::Fresh { bound: None },
            self.defaults,
            ty & SOCK_NONBLOCK != 0,
        )
    }

    /// `socket(AF_INET, SOCK_STREAM, 0)`.
    pub fn tcp_socket(&mut self) -> Result<Fd, Errno> {
        self.socket(AF_INET, SOCK_STREAM, 0)
    }

    fn is_local_ip(&self, ip: Ipv4Addr) -> bool {
        ip.is_unspecified() || self.cfg.local_ips.contains(&ip)
    }

    fn policy_accepts(&self, local: SocketAddrV4, remote: Option<SocketAddrV4>) -> bool {
        self.cfg
            .port_policy
            .as_ref()
            .map_or(true, |p| p.accepts(local, remote))
    }

    /// `bind(fd, addr)`. The address must be 0.0.0.0 or one of the context's
    /// (`EADDRNOTAVAIL`); port 0 picks a free ephemeral port the port policy
    /// accepts. A port held by a listener, or by another open socket unless both
    /// set `SO_REUSEADDR`, or by connections closing or in TIME-WAIT unless this
    /// socket set `SO_REUSEADDR`, gives `EADDRINUSE`. Conflicts are by port: one
    /// context usually has one address. A socket binds once (`EINVAL`).
    pub fn bind(&mut self, fd: Fd, addr: SocketAddrV4) -> Result<(), Errno> {
        let slot = self.sock(fd)?;
        let reuse = slot.opts.reuse_addr;
        if !matches!(slot.kind, Kind::Fresh { bound: None }) {
            return Err(Errno::EINVAL);
        }
        if !self.is_local_ip(*addr.ip()) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let port = if addr.port() == 0 {
            let range = self.cfg.ephemeral_ports.clone();
            let mut found = None;
            for p in self.ports.candidates(&range) {
                if self.ports.is_free(p)
                    && self.policy_accepts(SocketAddrV4::new(*addr.ip(), p), None)
                {
                    found = Some(p);
                    break;
                }
            }
            found.ok_or(Errno::EADDRINUSE)?
        } else {
            if !self.ports.can_bind(addr.port(), reuse) {
                return Err(Errno::EADDRINUSE);
            }
            addr.port()
        };
        let hold = PortHold {
            port,
            reuse,
            explicit: true,
            listener: false,
        };
        self.ports.acquire(hold);
        let local = SocketAddrV4::new(*addr.ip(), port);
        self.slot_mut(fd)?.kind = Kind::Fresh {
            bound: Some((local, hold)),
        };
        Ok(())
    }

    /// `listen(fd, backlog)`: backlog is clamped to `1..=max_backlog` (Linux
    /// clamps too). An unbound socket is bound to an ephemeral port first.
    /// `listen` on a listening socket succeeds and keeps the first backlog (the
    /// engine cannot change it). A connected socket gives `EINVAL`.
    pub fn listen(&mut self, fd: Fd, backlog: i32) -> Result<(), Errno> {
        let slot = self.sock(fd)?;
        match slot.kind {
            Kind::Listener { .. } => return Ok(()),
            Kind::Fresh { bound: None } => {
                self.bind(fd, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
            }
            Kind::Fresh { bound: Some(_) } => {}
            _ => return Err(Errno::EINVAL),
        }
        let Kind::Fresh {
            bound: Some((local, hold)),
        } = self.sock(fd)?.kind
        else {
            return Err(Errno::EINVAL);
        };
        if self.ports.get(hold.port).listeners > 0 {
            return Err(Errno::EADDRINUSE);
        }
        let backlog =
            usize::try_from(backlog.clamp(1, self.cfg.max_backlog.max(1) as i32)).unwrap_or(1);
        let handle = self.ep.listen(local, backlog).map_err(|e| match e {
            ListenError::AddrInUse => Errno::EADDRINUSE,
            ListenError::Unaddressable | ListenError::InvalidBacklog => Errno::EINVAL,
        })?;
        self.ports.release(hold);
        let hold = PortHold {
            listener: true,
            ..hold
        };
        self.ports.acquire(hold);
        self.set_owner(handle, Owner::Fd(fd.0));
        self.slot_mut(fd)?.kind = Kind::Listener {
            handle,
            local,
            hold,
            ahead: None,
        };
        self.mark(fd.0, Readiness::ALL);
        Ok(())
    }

    /// Take one connection from the engine's accept queue into the listener's
    /// look-ahead slot, if it is empty.
    fn fill_ahead(&mut self, fd: u32) {
        let Some(Kind::Listener { handle, ahead, .. }) =
            self.slots.get(fd as usize).map(|s| s.kind)
        else {
            return;
        };
        if ahead.is_some() {
            return;
        }
        if let Ok(h) = self.ep.accept(handle) {
            self.set_owner(h, Owner::Ahead(fd));
            if let Some(Kind::Listener { ahead, .. }) =
                self.slots.get_mut(fd as usize).map(|s| &mut s.kind)
            {
                *ahead = Some(h);
            }
        }
    }

    /// `accept(fd)`: the next established connection and its peer's address. The
    /// new descriptor inherits the listener's options (not `O_NONBLOCK`, as on
    /// Linux). `EAGAIN` when none is waiting; `EMFILE` when the descriptor table
    /// is full (the connection stays queued); `EINVAL` if `fd` is not listening.
    pub fn accept(&mut self, fd: Fd) -> Result<(Fd, SocketAddrV4), Errno> {
        let slot = *self.sock(fd)?;
        let Kind::Listener { hold, .. } = slot.kind else {
            return Err(Errno::EINVAL);
        };
        if !self.has_free_fd() {
            return Err(Errno::EMFILE);
        }
        self.fill_ahead(fd.0);
        let h = match self.sock(fd)?.kind {
            Kind::Listener { ahead: Some(h), .. } => h,
            _ => return Err(Errno::EAGAIN),
        };
        if let Some(Kind::Listener { ahead, .. }) =
            self.slots.get_mut(fd.0 as usize).map(|s| &mut s.kind)
        {
            *ahead = None;
        }
        let peer = self
            .ep
            .peer_addr(h)
            .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        let so_error = self.ep.take_error(h).ok().flatten();
        let opts = slot.opts;
        let conn_hold = PortHold {
            port: hold.port,
            reuse: opts.reuse_addr,
            explicit: false,
            listener: false,
        };
        let conn = ConnFd {
            handle: h,
            hold: conn_hold,
            bound: None,
            so_error,
            shut_rd: false,
            shut_wr: false,
            established: true,
        };
        let new_fd = match self.alloc_fd(Kind::Conn(conn), opts, false) {
            Ok(f) => f,
            Err(e) => {
                // Checked above; keep the connection queued anyway.
                if let Some(Kind::Listener { ahead, .. }) =
                    self.slots.get_mut(fd.0 as usize).map(|s| &mut s.kind)
                {
                    *ahead = Some(h);
                }
                return Err(e);
            }
        };
        self.ports.acquire(conn_hold);
        self.set_owner(h, Owner::Fd(new_fd.0));
        self.apply_conn_options(h, &opts);
        self.fill_ahead(fd.0);
        self.mark(fd.0, Readiness::EMPTY);
        self.mark(new_fd.0, Readiness::ALL);
        Ok((new_fd, peer))
    }

    fn keepalive_of(opts: &Options) -> Option<KeepAlive> {
        opts.keepalive.then_some(opts.keep)
    }

    fn apply_conn_options(&mut self, h: SocketHandle, opts: &Options) {
        let _ = self.ep.set_nodelay(h, opts.nodelay);
        let _ = self.ep.set_keepalive(h, Self::keepalive_of(opts));
        let _ = self.ep.set_user_timeout(h, opts.user_timeout);
    }

    /// `connect(fd, remote)`: starts the handshake and returns `EINPROGRESS`
    /// (always: blocking until it completes is the runtime's job). Completion makes
    /// the descriptor writable; failure also sets `EPOLLERR`, and `SO_ERROR` says
    /// why (`ECONNREFUSED`, `ETIMEDOUT`, ...). While in progress: `EALREADY`; once
    /// connected: `EISCONN`; after a failure not yet read, that error (as Linux);
    /// after a failure already read, a new attempt starts. An unbound socket gets
    /// an ephemeral port the port policy accepts for `remote`. Invalid remotes
    /// (port 0, unspecified, broadcast, multicast) and an exhausted port range
    /// give `EADDRNOTAVAIL`; a full connection pool `ENOBUFS`.
    pub fn connect(&mut self, fd: Fd, remote: SocketAddrV4) -> Result<(), Errno> {
        let slot = *self.sock(fd)?;
        let bound = match slot.kind {
            Kind::Fresh { bound } => bound,
            Kind::Listener { .. } => return Err(Errno::EISCONN),
            Kind::Conn(c) => {
                self.sync_error(fd.0);
                let c = self.conn_mut(fd).map(|c| *c).unwrap_or(c);
                match self.ep.state(c.handle) {
                    Ok(State::SynSent) => return Err(Errno::EALREADY),
                    Ok(State::Closed) if !c.established => {
                        if let Some(e) = c.so_error {
                            if let Some(cm) = self.conn_mut(fd) {
                                cm.so_error = None;
                            }
                            return Err(e.into());
                        }
                        // A failed attempt: drop it and start again.
                        self.release_conn(fd, c, false);
                        let bound = c.bound.map(|a| (a, c.hold));
                        if let Some((_, hold)) = bound {
                            self.ports.acquire(hold);
                        }
                        self.slot_mut(fd)?.kind = Kind::Fresh { bound };
                        bound
                    }
                    _ => return Err(Errno::EISCONN),
                }
            }
            Kind::Free => return Err(Errno::EBADF),
            Kind::Reserved => return Err(Errno::ENOTSOCK),
        };
        if !valid_remote(remote) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let local_ip = match bound {
            Some((a, _)) if !a.ip().is_unspecified() => *a.ip(),
            _ => *self.cfg.local_ips.first().ok_or(Errno::EADDRNOTAVAIL)?,
        };
        let map_err = |e: ConnectError| match e {
            ConnectError::AddrInUse => Errno::EADDRINUSE,
            ConnectError::NoFreePorts | ConnectError::Unaddressable | ConnectError::NoLocalAddr => {
                Errno::EADDRNOTAVAIL
            }
            ConnectError::TooManyConnections => Errno::ENOBUFS,
        };
        let now = self.now;
        let (handle, hold, explicit_bound) = match bound {
            Some((addr, hold)) => {
                let local = SocketAddrV4::new(local_ip, addr.port());
                let h = self.ep.connect(now, local, remote).map_err(map_err)?;
                (h, hold, Some(addr))
            }
            None => {
                let range = self.cfg.ephemeral_ports.clone();
                let mut result = Err(Errno::EADDRNOTAVAIL);
                for p in self.ports.candidates(&range) {
                    let local = SocketAddrV4::new(local_ip, p);
                    if !self.ports.can_autobind(p) || !self.policy_accepts(local, Some(remote)) {
                        continue;
                    }
                    match self.ep.connect(now, local, remote) {
                        Ok(h) => {
                            result = Ok((h, p));
                            break;
                        }
                        Err(ConnectError::AddrInUse) => continue,
                        Err(e) => {
                            result = Err(map_err(e));
                            break;
                        }
                    }
                }
                let (h, port) = result?;
                let hold = PortHold {
                    port,
                    reuse: slot.opts.reuse_addr,
                    explicit: false,
                    listener: false,
                };
                self.ports.acquire(hold);
                (h, hold, None)
            }
        };
        self.set_owner(handle, Owner::Fd(fd.0));
        self.apply_conn_options(handle, &slot.opts);
        self.slot_mut(fd)?.kind = Kind::Conn(ConnFd {
            handle,
            hold,
            bound: explicit_bound,
            so_error: None,
            shut_rd: false,
            shut_wr: false,
            established: false,
        });
        self.mark(fd.0, Readiness::EMPTY);
        Err(Errno::EINPROGRESS)
    }

    /// Give a connection's engine handle back (graceful close or abort) and turn
    /// its port hold into an orphan until the engine releases it.
    fn release_conn(&mut self, fd: Fd, c: ConnFd, abort: bool) {
        let now = self.now;
        let closed = if abort {
            self.ep.abort(now, c.handle)
        } else {
            self.ep.close(now, c.handle)
        };
        self.ports.release(c.hold);
        if closed.is_ok() {
            // The engine reports `Closed` when it releases the connection.
            self.ports.add_orphan(c.hold.port);
            self.set_owner(c.handle, Owner::Orphan(c.hold.port));
        } else {
            self.set_owner(c.handle, Owner::Nobody);
        }
        let _ = fd;
    }

    // ------------------------------------------------------------------
    // close, abort, shutdown
    // ------------------------------------------------------------------

    /// `close(fd)`: a connection finishes on its own (FIN after the queued data,
    /// TIME-WAIT) unless unread data or `SO_LINGER` with a zero timeout make it an
    /// abort (RST). A listener resets the connections it has not handed out. The
    /// descriptor is free at once; a reserved descriptor is released too.
    pub fn close(&mut self, fd: Fd) -> Result<(), Errno> {
        let slot = *self.slot(fd)?;
        let abort = slot.opts.linger == Some(Duration::ZERO);
        self.close_slot(fd, slot, abort);
        Ok(())
    }

    /// Abort: send RST (in synchronized states), drop queued data, free the
    /// descriptor. The peer sees `ECONNRESET`.
    pub fn abort(&mut self, fd: Fd) -> Result<(), Errno> {
        let slot = *self.sock(fd)?;
        self.close_slot(fd, slot, true);
        Ok(())
    }

    fn close_slot(&mut self, fd: Fd, slot: Slot, abort: bool) {
        let now = self.now;
        match slot.kind {
            Kind::Free => return,
            Kind::Reserved => {}
            Kind::Fresh { bound } => {
                if let Some((_, hold)) = bound {
                    self.ports.release(hold);
                }
            }
            Kind::Listener {
                handle,
                hold,
                ahead,
                ..
            } => {
                if let Some(h) = ahead {
                    if self.ep.abort(now, h).is_ok() {
                        self.ports.add_orphan(hold.port);
                        self.set_owner(h, Owner::Orphan(hold.port));
                    }
                }
                let _ = self.ep.close(now, handle);
                self.set_owner(handle, Owner::Nobody);
                self.ports.release(hold);
            }
            Kind::Conn(c) => self.release_conn(fd, c, abort),
        }
        self.free_fd(fd);
    }

    /// `shutdown(fd, how)`. `SHUT_WR` queues a FIN after the buffered data; the
    /// descriptor stays writable (writes fail with `EPIPE`) as on Linux. `SHUT_RD`
    /// makes reads return the buffered data, then end of stream (data still
    /// arriving is kept, as Linux does). Both directions shut gives `EPOLLHUP`.
    /// `ENOTCONN` unless the socket is connected (a connection attempt in
    /// progress, a listener or a closed connection included).
    pub fn shutdown(&mut self, fd: Fd, how: Shutdown) -> Result<(), Errno> {
        let Some(c) = self.conn(fd)? else {
            return Err(Errno::ENOTCONN);
        };
        match self.ep.state(c.handle) {
            Ok(State::Closed | State::SynSent | State::Listen) | Err(_) => {
                return Err(Errno::ENOTCONN)
            }
            Ok(_) => {}
        }
        let now = self.now;
        if matches!(how, Shutdown::Write | Shutdown::Both) && !c.shut_wr {
            self.ep.shutdown(now, c.handle).map_err(conn_errno)?;
        }
        if let Some(cm) = self.conn_mut(fd) {
            cm.shut_rd |= matches!(how, Shutdown::Read | Shutdown::Both);
            cm.shut_wr |= matches!(how, Shutdown::Write | Shutdown::Both);
        }
        self.mark(fd.0, Readiness::ALL);
        Ok(())
    }

    /// `shutdown` with `SHUT_RD`/`SHUT_WR`/`SHUT_RDWR` as an integer.
    pub fn shutdown_raw(&mut self, fd: Fd, how: i32) -> Result<(), Errno> {
        let how = Shutdown::from_raw(how)?;
        self.shutdown(fd, how)
    }

    // ------------------------------------------------------------------
    // read, recv, readv, write, send, writev
    // ------------------------------------------------------------------

    /// Map the engine's answer to a read. `Ok(0)` is end of stream.
    fn read_result(&mut self, fd: Fd, r: Result<usize, RecvError>) -> Result<usize, Errno> {
        match r {
            Ok(n) => Ok(n),
            Err(RecvError::WouldBlock) => {
                let shut = self.conn_mut(fd).is_some_and(|c| c.shut_rd);
                if shut {
                    Ok(0)
                } else {
                    Err(Errno::EAGAIN)
                }
            }
            Err(RecvError::Conn(_)) | Err(RecvError::NotConnected) => {
                self.sync_error(fd.0);
                let Some(c) = self.conn_mut(fd) else {
                    return Err(Errno::EBADF);
                };
                match c.so_error.take() {
                    Some(e) => {
                        self.mark(fd.0, Readiness::EMPTY);
                        Err(e.into())
                    }
                    // The connection ended and its error was read: end of stream.
                    None => Ok(0),
                }
            }
            Err(RecvError::InvalidHandle) => Err(Errno::EBADF),
        }
    }

    /// The connection behind a readable/writable descriptor, or the errno of a
    /// descriptor that is not one (`ENOTCONN` for unconnected and listening sockets).
    fn io_conn(&self, fd: Fd) -> Result<ConnFd, Errno> {
        self.conn(fd)?.ok_or(Errno::ENOTCONN)
    }

    /// `read(fd, buf)`: `Ok(0)` is end of stream (also after `SHUT_RD` once the
    /// buffered data is read, and after a reset once its error was reported).
    /// `EAGAIN` when nothing is buffered (and during the handshake); the error that
    /// ended the connection (`ECONNRESET`, `ETIMEDOUT`, ...) once, after the data.
    pub fn read(&mut self, fd: Fd, buf: &mut [u8]) -> Result<usize, Errno> {
        self.recv(fd, buf, MsgFlags::NONE)
    }

    /// `recv(fd, buf, flags)`: `read` with `MSG_PEEK` (data stays buffered),
    /// `MSG_DONTWAIT`, `MSG_WAITALL`, `MSG_NOSIGNAL`; other flags `EOPNOTSUPP`.
    pub fn recv(&mut self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<usize, Errno> {
        let c = self.io_conn(fd)?;
        flags.check_recv()?;
        let r = if flags.peek() {
            self.ep.peek(c.handle, buf)
        } else {
            self.ep.recv(c.handle, buf)
        };
        if !flags.peek() && matches!(r, Ok(n) if n > 0) {
            self.mark(fd.0, Readiness::EMPTY);
        }
        self.read_result(fd, r)
    }

    /// `readv(fd, bufs)`: fills the buffers in order; stops at the first one not
    /// filled completely.
    pub fn readv(&mut self, fd: Fd, bufs: &mut [IoSliceMut<'_>]) -> Result<usize, Errno> {
        let c = self.io_conn(fd)?;
        let mut total = 0usize;
        for buf in bufs.iter_mut() {
            if buf.is_empty() {
                continue;
            }
            match self.ep.recv(c.handle, buf) {
                Ok(n) => {
                    total += n;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) => {
                    if total > 0 {
                        break;
                    }
                    return self.read_result(fd, Err(e));
                }
            }
        }
        if total > 0 {
            self.mark(fd.0, Readiness::EMPTY);
        }
        // Zero: every buffer was empty, or end of stream.
        Ok(total)
    }

    /// Bytes a write may queue now: the engine's free space, capped by `SO_SNDBUF`.
    fn write_room(&self, c: &ConnFd, sndbuf: usize) -> usize {
        let free = self.ep.writable(c.handle).unwrap_or(0);
        let capacity = self.ep.config().send_buf;
        let queued = capacity.saturating_sub(free);
        free.min(sndbuf.saturating_sub(queued))
    }

    /// Check that `fd` can take data now; `Ok(room)`.
    fn write_check(&mut self, fd: Fd) -> Result<(ConnFd, usize), Errno> {
        let sndbuf = self.sock(fd)?.opts.sndbuf;
        let c = self.io_conn(fd)?;
        self.sync_error(fd.0);
        let c = self.conn_mut(fd).map(|c| *c).unwrap_or(c);
        if let Some(e) = c.so_error {
            if let Some(cm) = self.conn_mut(fd) {
                cm.so_error = None;
            }
            self.mark(fd.0, Readiness::EMPTY);
            return Err(e.into());
        }
        if c.shut_wr {
            return Err(Errno::EPIPE);
        }
        match self.ep.state(c.handle) {
            Ok(State::SynSent | State::SynReceived) => return Err(Errno::EAGAIN),
            Ok(State::Established | State::CloseWait) => {}
            _ => return Err(Errno::EPIPE),
        }
        Ok((c, self.write_room(&c, sndbuf)))
    }

    fn send_result(&mut self, fd: Fd, r: Result<usize, SendError>) -> Result<usize, Errno> {
        match r {
            Ok(n) => {
                self.mark(fd.0, Readiness::EMPTY);
                Ok(n)
            }
            Err(SendError::WouldBlock) => Err(Errno::EAGAIN),
            Err(SendError::Closed) | Err(SendError::NotConnected) => Err(Errno::EPIPE),
            Err(SendError::Conn(_)) => {
                self.sync_error(fd.0);
                match self.conn_mut(fd).and_then(|c| c.so_error.take()) {
                    Some(e) => Err(e.into()),
                    None => Err(Errno::EPIPE),
                }
            }
            Err(SendError::InvalidHandle) => Err(Errno::EBADF),
        }
    }

    /// `write(fd, buf)`: queues as much as fits; `EAGAIN` when nothing fits,
    /// `EPIPE` after `SHUT_WR` or once the connection ended (after its error was
    /// reported once), `ENOTCONN` on unconnected or listening sockets, `EAGAIN`
    /// during the handshake. Writing nothing returns `Ok(0)`.
    pub fn write(&mut self, fd: Fd, buf: &[u8]) -> Result<usize, Errno> {
        self.send(fd, buf, MsgFlags::NONE)
    }

    /// `send(fd, buf, flags)`: `write` with `MSG_DONTWAIT`, `MSG_NOSIGNAL`,
    /// `MSG_MORE` accepted; other flags `EOPNOTSUPP`.
    pub fn send(&mut self, fd: Fd, buf: &[u8], flags: MsgFlags) -> Result<usize, Errno> {
        flags.check_send()?;
        let (c, room) = self.write_check(fd)?;
        if buf.is_empty() {
            return Ok(0);
        }
        if room == 0 {
            return Err(Errno::EAGAIN);
        }
        let n = buf.len().min(room);
        let now = self.now;
        let r = self.ep.send(now, c.handle, &buf[..n]);
        self.send_result(fd, r)
    }

    /// `writev(fd, bufs)`: queues the buffers in order as far as they fit.
    pub fn writev(&mut self, fd: Fd, bufs: &[IoSlice<'_>]) -> Result<usize, Errno> {
        let (c, mut room) = self.write_check(fd)?;
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        if room == 0 {
            return Err(Errno::EAGAIN);
        }
        let now = self.now;
        let mut total = 0;
        for buf in bufs {
            if room == 0 {
                break;
            }
            if buf.is_empty() {
                continue;
            }
            let n = buf.len().min(room);
            match self.ep.send(now, c.handle, &buf[..n]) {
                Ok(k) => {
                    total += k;
                    room -= k;
                    if k < buf.len() {
                        break;
                    }
                }
                Err(e) => {
                    if total > 0 {
                        break;
                    }
                    return self.send_result(fd, Err(e));
                }
            }
        }
        self.send_result(fd, Ok(total))
    }

    // ------------------------------------------------------------------
    // names, modes, ioctl
    // ------------------------------------------------------------------

    /// `getsockname(fd)`: the bound or connected local address (0.0.0.0:0 when
    /// unbound).
    pub fn getsockname(&self, fd: Fd) -> Result<SocketAddrV4, Errno> {
        match self.sock(fd)?.kind {
            Kind::Fresh { bound } => {
                Ok(bound.map_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), |(a, _)| a))
            }
            Kind::Listener { local, .. } => Ok(local),
            Kind::Conn(c) => self.ep.local_addr(c.handle).map_err(conn_errno),
            Kind::Free => Err(Errno::EBADF),
            Kind::Reserved => Err(Errno::ENOTSOCK),
        }
    }

    /// `getpeername(fd)`: `ENOTCONN` unless connected (not while the handshake
    /// is in progress, not after the connection was reset or timed out).
    pub fn getpeername(&self, fd: Fd) -> Result<SocketAddrV4, Errno> {
        let Some(c) = self.conn(fd)? else {
            return Err(Errno::ENOTCONN);
        };
        match self.ep.state(c.handle) {
            Ok(State::SynSent | State::Closed | State::Listen) | Err(_) => Err(Errno::ENOTCONN),
            Ok(_) => self.ep.peer_addr(c.handle).map_err(conn_errno),
        }
    }

    /// Set or clear non-blocking mode (`O_NONBLOCK`). This crate never blocks;
    /// the runtime reads the mode with [`is_nonblocking`](Self::is_nonblocking)
    /// to decide whether to wait and retry.
    pub fn set_nonblocking(&mut self, fd: Fd, nonblocking: bool) -> Result<(), Errno> {
        self.sock(fd)?;
        self.slot_mut(fd)?.nonblocking = nonblocking;
        Ok(())
    }

    /// mTCP's `mtcp_setsock_nonblock`: [`set_nonblocking`](Self::set_nonblocking)`(fd, true)`.
    pub fn setsock_nonblock(&mut self, fd: Fd) -> Result<(), Errno> {
        self.set_nonblocking(fd, true)
    }

    /// Whether `fd` is in non-blocking mode.
    pub fn is_nonblocking(&self, fd: Fd) -> Result<bool, Errno> {
        Ok(self.sock(fd)?.nonblocking)
    }

    /// `fcntl(fd, cmd, arg)` for `F_GETFL` (returns `O_RDWR | O_NONBLOCK`-style
    /// flags: `O_NONBLOCK` when set) and `F_SETFL` (only `O_NONBLOCK` is acted on,
    /// as Linux ignores access-mode bits); other commands `EINVAL`.
    pub fn fcntl(&mut self, fd: Fd, cmd: i32, arg: i32) -> Result<i32, Errno> {
        const O_RDWR: i32 = 2;
        match cmd {
            F_GETFL => Ok(O_RDWR
                | if self.is_nonblocking(fd)? {
                    O_NONBLOCK
                } else {
                    0
                }),
            F_SETFL => {
                self.set_nonblocking(fd, arg & O_NONBLOCK != 0)?;
                Ok(0)
            }
            _ => {
                self.sock(fd)?;
                Err(Errno::EINVAL)
            }
        }
    }

    /// `ioctl(fd, FIONREAD)`: bytes ready to read (0 before a connection);
    /// `EINVAL` on a listener (as Linux).
    pub fn fionread(&self, fd: Fd) -> Result<usize, Errno> {
        match self.sock(fd)?.kind {
            Kind::Conn(c) => self.ep.readable(c.handle).map_err(conn_errno),
            Kind::Listener { .. } => Err(Errno::EINVAL),
            _ => Ok(0),
        }
    }

    /// `ioctl(fd, request)`: only `FIONREAD`; other requests `EINVAL` (Linux says
    /// `ENOTTY`; the socket layer has nothing else).
    pub fn ioctl(&self, fd: Fd, request: u64) -> Result<i32, Errno> {
        if request != FIONREAD {
            self.sock(fd)?;
            return Err(Errno::EINVAL);
        }
        Ok(i32::try_from(self.fionread(fd)?).unwrap_or(i32::MAX))
    }

    /// mTCP's `mtcp_socket_ioctl`: [`ioctl`](Self::ioctl).
    pub fn socket_ioctl(&self, fd: Fd, request: u64) -> Result<i32, Errno> {
        self.ioctl(fd, request)
    }

    // ------------------------------------------------------------------
    // Options
    // ------------------------------------------------------------------

    fn max_rcvbuf(&self) -> usize {
        self.ep.config().recv_buf.max(MIN_BUF)
    }

    fn max_sndbuf(&self) -> usize {
        self.ep.config().send_buf.max(MIN_BUF)
    }

    /// `setsockopt(fd, opt)`. Options act on the engine at once on connections
    /// (`TCP_NODELAY`, `SO_KEEPALIVE` and `TCP_KEEP*`, `TCP_USER_TIMEOUT`), and on
    /// listeners and unconnected sockets they become the options of the
    /// connections made from them.
    ///
    /// * `SO_SNDBUF` is clamped to `[MIN_BUF, engine send buffer]` and caps the
    ///   bytes queued on the connection (unacknowledged plus unsent) from the next
    ///   write on, before or after connecting.
    /// * `SO_RCVBUF` is clamped to `[MIN_BUF, engine receive buffer]` and reported;
    ///   the engine does not yet size receive buffers per connection, so the
    ///   advertised window stays the engine's (see the crate docs).
    /// * `TCP_MAXSEG` (88..=65535) is stored and reported before a connection; the
    ///   engine does not yet clamp the MSS per connection.
    /// * `SO_LINGER` with a zero timeout makes `close` an abort.
    /// * `SO_REUSEADDR`: see [`bind`](Self::bind).
    /// * `SO_ERROR` is read-only: `ENOPROTOOPT`. Out-of-range values: `EINVAL`.
    pub fn setsockopt(&mut self, fd: Fd, opt: SockOpt) -> Result<(), Errno> {
        let slot = *self.sock(fd)?;
        let mut o = slot.opts;
        match opt {
            SockOpt::Error(_) => return Err(Errno::ENOPROTOOPT),
            SockOpt::RcvBuf(n) => o.rcvbuf = n.clamp(MIN_BUF, self.max_rcvbuf()),
            SockOpt::SndBuf(n) => o.sndbuf = n.clamp(MIN_BUF, self.max_sndbuf()),
            SockOpt::Linger(l) => o.linger = l,
            SockOpt::KeepAlive(b) => o.keepalive = b,
            SockOpt::ReuseAddr(b) => o.reuse_addr = b,
            SockOpt::NoDelay(b) => o.nodelay = b,
            SockOpt::MaxSeg(m) => {
                if m < MIN_MAXSEG {
                    return Err(Errno::EINVAL);
                }
                o.maxseg = Some(m);
            }
            SockOpt::KeepIdle(d) | SockOpt::KeepIntvl(d) => {
                let secs = d.as_secs();
                if secs == 0 || secs > MAX_KEEP_SECS || d.subsec_nanos() != 0 {
                    return Err(Errno::EINVAL);
                }
                if let SockOpt::KeepIdle(_) = opt {
                    o.keep.idle = d;
                } else {
                    o.keep.interval = d;
                }
            }
            SockOpt::KeepCnt(n) => {
                if n == 0 || n > MAX_KEEPCNT {
                    return Err(Errno::EINVAL);
                }
                o.keep.count = n;
            }
            SockOpt::UserTimeout(t) => o.user_timeout = t.filter(|d| !d.is_zero()),
        }
        // Port holds record the reuse flag they were counted with.
        if o.reuse_addr != slot.opts.reuse_addr {
            self.rehold(fd, o.reuse_addr);
        }
        self.slot_mut(fd)?.opts = o;
        if let Kind::Conn(c) = slot.kind {
            let h = c.handle;
            let r = match opt.name() {
                SockOptName::NoDelay => self.ep.set_nodelay(h, o.nodelay),
                SockOptName::KeepAlive
                | SockOptName::KeepIdle
                | SockOptName::KeepIntvl
                | SockOptName::KeepCnt => {
                    if o.keepalive || slot.opts.keepalive {
                        self.ep.set_keepalive(h, Self::keepalive_of(&o))
                    } else {
                        Ok(())
                    }
                }
                SockOptName::UserTimeout => self.ep.set_user_timeout(h, o.user_timeout),
                _ => Ok(()),
            };
            r.map_err(conn_errno)?;
            // Send space may have changed (SO_SNDBUF).
            self.mark(fd.0, Readiness::EMPTY);
        }
        Ok(())
    }

    /// `setsockopt` with a Linux `(level, optname)` and an integer value (see
    /// [`SockOpt::from_raw`]).
    pub fn setsockopt_raw(
        &mut self,
        fd: Fd,
        level: i32,
        name: i32,
        value: i32,
    ) -> Result<(), Errno> {
        self.sock(fd)?;
        let opt = SockOpt::from_raw(level, name, value)?;
        self.setsockopt(fd, opt)
    }

    fn rehold(&mut self, fd: Fd, reuse: bool) {
        let Some(slot) = self.slots.get_mut(fd.0 as usize) else {
            return;
        };
        let hold = match &mut slot.kind {
            Kind::Fresh {
                bound: Some((_, hold)),
            } => hold,
            Kind::Listener { hold, .. } => hold,
            Kind::Conn(c) => &mut c.hold,
            _ => return,
        };
        let old = *hold;
        hold.reuse = reuse;
        let new = *hold;
        self.ports.release(old);
        self.ports.acquire(new);
    }

    /// `getsockopt(fd, name)`. `SO_ERROR` returns and clears the pending error;
    /// `TCP_MAXSEG` on a connection is the send MSS in use.
    pub fn getsockopt(&mut self, fd: Fd, name: SockOptName) -> Result<SockOpt, Errno> {
        let slot = *self.sock(fd)?;
        let o = slot.opts;
        Ok(match name {
            SockOptName::Error => {
                let e = match slot.kind {
                    Kind::Conn(_) => {
                        self.sync_error(fd.0);
                        let e = self.conn_mut(fd).and_then(|c| c.so_error.take());
                        self.mark(fd.0, Readiness::EMPTY);
                        e
                    }
                    _ => None,
                };
                SockOpt::Error(e.map(Errno::from))
            }
            SockOptName::RcvBuf => SockOpt::RcvBuf(o.rcvbuf),
            SockOptName::SndBuf => SockOpt::SndBuf(o.sndbuf),
            SockOptName::Linger => SockOpt::Linger(o.linger),
            SockOptName::KeepAlive => SockOpt::KeepAlive(o.keepalive),
            SockOptName::ReuseAddr => SockOpt::ReuseAddr(o.reuse_addr),
            SockOptName::NoDelay => SockOpt::NoDelay(o.nodelay),
            SockOptName::MaxSeg => {
                let smss = match slot.kind {
                    Kind::Conn(c) => match self.ep.info(c.handle) {
                        Ok(i) if i.state.is_synchronized() => {
                            Some(u16::try_from(i.smss).unwrap_or(u16::MAX))
                        }
                        _ => None,
                    },
                    _ => None,
                };
                SockOpt::MaxSeg(smss.or(o.maxseg).unwrap_or(self.ep.config().mss))
            }
            SockOptName::KeepIdle => SockOpt::KeepIdle(o.keep.idle),
            SockOptName::KeepIntvl => SockOpt::KeepIntvl(o.keep.interval),
            SockOptName::KeepCnt => SockOpt::KeepCnt(o.keep.count),
            SockOptName::UserTimeout => SockOpt::UserTimeout(o.user_timeout),
        })
    }

    /// `getsockopt` with a Linux `(level, optname)`, returning the integer a C
    /// caller would get (see [`SockOpt::to_raw`]).
    pub fn getsockopt_raw(&mut self, fd: Fd, level: i32, name: i32) -> Result<i32, Errno> {
        self.sock(fd)?;
        let name = SockOptName::from_raw(level, name)?;
        Ok(self.getsockopt(fd, name)?.to_raw())
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
            Kind::Listener { .. } => {
                self.fill_ahead(fd.0);
                let ahead = matches!(self.sock(fd)?.kind, Kind::Listener { ahead: Some(_), .. });
                Readiness {
                    readable: ahead,
                    ..Readiness::EMPTY
                }
            }
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
                Readiness {
                    readable: data || rd_shut,
                    writable: wr_shut || self.write_room(&c, slot.opts.sndbuf) > 0,
                    rdhup: rd_shut,
                    hup: closed || (rd_shut && wr_shut),
                    err,
                }
            }
        })
    }
}
