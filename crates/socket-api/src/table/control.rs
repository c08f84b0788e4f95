//! Names, non-blocking mode, ioctl and socket options.

use super::*;

impl SocketTable {
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

    pub(super) fn max_rcvbuf(&self) -> usize {
        self.ep.config().recv_buf.max(MIN_BUF)
    }

    pub(super) fn max_sndbuf(&self) -> usize {
        self.ep.config().send_buf.max(MIN_BUF)
    }

    /// `setsockopt(fd, opt)`. On a socket not yet connected or listening, every
    /// option becomes the engine's per-connection options (`ConnOptions`, clamped
    /// by the engine configuration, which acts as Linux's `rmem_max`/`wmem_max`)
    /// of the connection `connect` makes or, through `listen`, of every
    /// connection the listener accepts (inherited, as on Linux). On a connection
    /// `TCP_NODELAY`, `SO_KEEPALIVE`/`TCP_KEEP*` and `TCP_USER_TIMEOUT` act at
    /// once; set on a listener after `listen` they apply to connections accepted
    /// from then on.
    ///
    /// * `SO_SNDBUF` is clamped to `[MIN_BUF, engine send buffer]`. Before
    ///   connect/listen it sizes the connection's send buffer; afterwards it caps
    ///   the bytes queued (unacknowledged plus unsent) from the next write on,
    ///   within the buffer the connection was created with.
    /// * `SO_RCVBUF` is clamped to `[MIN_BUF, engine receive buffer]`. Before
    ///   connect/listen it sizes the receive buffer, hence the window advertised
    ///   and the window scale offered in the SYN/SYN-ACK (RFC 7323 section 2.3).
    ///   After connect or listen it is only recorded and reported: the buffer and
    ///   window scale are fixed at the handshake. (Linux lets a later `SO_RCVBUF`
    ///   change the limit for future growth, with the scale already fixed.)
    /// * `TCP_MAXSEG` (88..=65535, capped at the engine MSS) before
    ///   connect/listen is the MSS option we send and caps the segments we send
    ///   (RFC 9293 section 3.7.1); after the handshake it is only recorded.
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
            SockOpt::RcvTimeo(t) => o.rcvtimeo = t.filter(|d| !d.is_zero()),
            SockOpt::SndTimeo(t) => o.sndtimeo = t.filter(|d| !d.is_zero()),
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
            // Send space may have changed (SO_SNDBUF); a larger buffer wakes a
            // writer that ran out of room, as Linux's sock_setsockopt does.
            let wake = if opt.name() == SockOptName::SndBuf {
                self.write_space(fd.0)
            } else {
                Readiness::EMPTY
            };
            self.mark(fd.0, wake);
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

    pub(super) fn rehold(&mut self, fd: Fd, reuse: bool) {
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
            SockOptName::RcvTimeo => SockOpt::RcvTimeo(o.rcvtimeo),
            SockOptName::SndTimeo => SockOpt::SndTimeo(o.sndtimeo),
        })
    }

    /// `getsockopt` with a Linux `(level, optname)`, returning the integer a C
    /// caller would get (see [`SockOpt::to_raw`]).
    pub fn getsockopt_raw(&mut self, fd: Fd, level: i32, name: i32) -> Result<i32, Errno> {
        self.sock(fd)?;
        let name = SockOptName::from_raw(level, name)?;
        Ok(self.getsockopt(fd, name)?.to_raw())
    }
}
