//! Making and ending sockets: socket, bind, listen, accept, connect, close,
//! abort, shutdown.

use super::*;

impl SocketTable {
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

    pub(super) fn is_local_ip(&self, ip: Ipv4Addr) -> bool {
        ip.is_unspecified() || self.cfg.local_ips.contains(&ip)
    }

    pub(super) fn policy_accepts(&self, local: SocketAddrV4, remote: Option<SocketAddrV4>) -> bool {
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

    /// `listen(fd, backlog)`: backlog is clamped to `1..=max_backlog`, a negative
    /// one is `max_backlog` (Linux clamps the same way). An unbound socket is bound to an ephemeral port first.
    /// `listen` on a listening socket changes the backlog (a smaller one drops
    /// nothing already queued). A connected socket gives `EINVAL`. The backlog is
    /// exact: at most `backlog` established connections wait for `accept`.
    pub fn listen(&mut self, fd: Fd, backlog: i32) -> Result<(), Errno> {
        let slot = self.sock(fd)?;
        // Like Linux: a negative backlog means the most allowed, 0 means 1.
        let max = usize::try_from(self.cfg.max_backlog.max(1)).unwrap_or(usize::MAX);
        let backlog = usize::try_from(backlog).map_or(max, |b| b.clamp(1, max));
        match slot.kind {
            Kind::Listener { handle, .. } => {
                return self
                    .ep
                    .set_listener_backlog(handle, backlog)
                    .map_err(conn_errno)
            }
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
        // Options differing from the engine's defaults go with the listener
        // (accepted connections inherit them, as on Linux); otherwise a plain
        // listen keeps following the engine configuration.
        let copts = self.conn_options(&self.sock(fd)?.opts);
        let listened = if copts == self.ep.config().conn_options().clamped(self.ep.config()) {
            self.ep.listen(local, backlog)
        } else {
            self.ep.listen_with(local, backlog, &copts)
        };
        let handle = listened.map_err(|e| match e {
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
            send_cap: copts.send_buf,
        };
        self.mark(fd.0, Readiness::ALL);
        Ok(())
    }

    /// `accept(fd)`: the next established connection and its peer's address. The
    /// new descriptor inherits the listener's options (not `O_NONBLOCK`, as on
    /// Linux). `EAGAIN` when none is waiting; `EMFILE` when the descriptor table
    /// is full (the connection stays queued); `EINVAL` if `fd` is not listening.
    pub fn accept(&mut self, fd: Fd) -> Result<(Fd, SocketAddrV4), Errno> {
        let slot = *self.sock(fd)?;
        let Kind::Listener {
            handle,
            hold,
            send_cap,
            ..
        } = slot.kind
        else {
            return Err(Errno::EINVAL);
        };
        if !self.has_free_fd() {
            return Err(Errno::EMFILE);
        }
        let h = self.ep.accept(handle).map_err(|e| match e {
            AcceptError::WouldBlock => Errno::EAGAIN,
            AcceptError::InvalidHandle | AcceptError::NotListening => Errno::EINVAL,
        })?;
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
            send_cap,
            no_space: false,
        };
        let new_fd = match self.alloc_fd(Kind::Conn(conn), opts, false) {
            Ok(f) => f,
            Err(e) => {
                // Checked above, so not reached; never leak the connection.
                let _ = self.ep.abort(self.now, h);
                return Err(e);
            }
        };
        self.ports.acquire(conn_hold);
        self.set_owner(h, Owner::Fd(new_fd.0));
        self.apply_conn_options(h, &opts);
        self.mark(fd.0, Readiness::EMPTY);
        self.mark(new_fd.0, Readiness::ALL);
        Ok((new_fd, peer))
    }

    pub(super) fn keepalive_of(opts: &Options) -> Option<KeepAlive> {
        opts.keepalive.then_some(opts.keep)
    }

    /// The engine options of a connection made from a socket with `opts`,
    /// clamped as the engine will clamp them.
    pub(super) fn conn_options(&self, opts: &Options) -> ConnOptions {
        let cfg = self.ep.config();
        ConnOptions {
            recv_buf: opts.rcvbuf,
            send_buf: opts.sndbuf,
            mss: opts.maxseg.unwrap_or(cfg.mss),
            nodelay: opts.nodelay,
            keepalive: Self::keepalive_of(opts),
            user_timeout: opts.user_timeout,
            ..cfg.conn_options()
        }
        .clamped(cfg)
    }

    pub(super) fn apply_conn_options(&mut self, h: SocketHandle, opts: &Options) {
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
    /// (port 0, unspecified, broadcast, multicast), an exhausted port range and a
    /// bound port whose 4-tuple is in use (TIME-WAIT) give `EADDRNOTAVAIL`; a full
    /// connection pool or buffer budget `ENOBUFS`.
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
            // Linux: a bound port whose 4-tuple is taken is EADDRNOTAVAIL.
            ConnectError::AddrInUse
            | ConnectError::NoFreePorts
            | ConnectError::Unaddressable
            | ConnectError::NoLocalAddr => Errno::EADDRNOTAVAIL,
            ConnectError::TooManyConnections | ConnectError::NoBufferSpace => Errno::ENOBUFS,
        };
        let now = self.now;
        let copts = self.conn_options(&slot.opts);
        let (handle, hold, explicit_bound) = match bound {
            Some((addr, hold)) => {
                let local = SocketAddrV4::new(local_ip, addr.port());
                let h = self
                    .ep
                    .connect_with(now, local, remote, &copts)
                    .map_err(map_err)?;
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
                    match self.ep.connect_with(now, local, remote, &copts) {
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
            send_cap: copts.send_buf,
            no_space: false,
        });
        self.mark(fd.0, Readiness::EMPTY);
        Err(Errno::EINPROGRESS)
    }

    /// Give a connection's engine handle back (graceful close or abort) and turn
    /// its port hold into an orphan until the engine releases it.
    pub(super) fn release_conn(&mut self, fd: Fd, c: ConnFd, abort: bool) {
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

    pub(super) fn close_slot(&mut self, fd: Fd, slot: Slot, abort: bool) {
        let now = self.now;
        match slot.kind {
            Kind::Free => return,
            Kind::Reserved => {}
            Kind::Fresh { bound } => {
                if let Some((_, hold)) = bound {
                    self.ports.release(hold);
                }
            }
            Kind::Listener { handle, hold, .. } => {
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
}
