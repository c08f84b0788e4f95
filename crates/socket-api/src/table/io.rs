//! Data calls: read, recv, readv, write, send, writev.

use super::*;

impl SocketTable {
    // ------------------------------------------------------------------
    // read, recv, readv, write, send, writev
    // ------------------------------------------------------------------

    /// Map the engine's answer to a read. `Ok(0)` is end of stream.
    pub(super) fn read_result(
        &mut self,
        fd: Fd,
        r: Result<usize, RecvError>,
    ) -> Result<usize, Errno> {
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
    pub(super) fn io_conn(&self, fd: Fd) -> Result<ConnFd, Errno> {
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

    /// `recv(fd, buf, 0)` for a runtime that moves received bytes to the
    /// application's side ahead of its reads: the bytes keep counting
    /// against the receive window until [`release_received`](Self::release_received)
    /// (tcp-core's `Endpoint::recv_ahead`).
    pub fn recv_ahead(&mut self, fd: Fd, buf: &mut [u8]) -> Result<usize, Errno> {
        let c = self.io_conn(fd)?;
        let r = self.ep.recv_ahead(c.handle, buf);
        if matches!(r, Ok(n) if n > 0) {
            self.mark(fd.0, Readiness::EMPTY);
        }
        self.read_result(fd, r)
    }

    /// The application consumed `n` bytes of `fd` taken by
    /// [`recv_ahead`](Self::recv_ahead): their room returns to the window
    /// (with a window update when it opened enough).
    pub fn release_received(&mut self, fd: Fd, n: usize) -> Result<(), Errno> {
        let c = self.io_conn(fd)?;
        self.ep
            .release_received(c.handle, n)
            .map_err(|_| Errno::ENOTCONN)
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
    pub(super) fn write_room(&self, c: &ConnFd, sndbuf: usize) -> usize {
        let free = self.ep.writable(c.handle).unwrap_or(0);
        let queued = c.send_cap.saturating_sub(free);
        free.min(sndbuf.saturating_sub(queued))
    }

    /// The bytes a write on `fd` may queue now, without side effects: `Some(room)`
    /// on a connection that takes writes (established or close-wait, write side
    /// open, no error pending), `None` otherwise (a write would report an error or
    /// `EAGAIN` during the handshake). Unlike [`write`](Self::write) this never
    /// consumes a pending error, so the runtime can poll it to tell the
    /// application how much it may hand over.
    pub fn send_room(&mut self, fd: Fd) -> Option<usize> {
        let sndbuf = self.sock(fd).ok()?.opts.sndbuf;
        self.sync_error(fd.0);
        let c = self.io_conn(fd).ok()?;
        if c.so_error.is_some() || c.shut_wr {
            return None;
        }
        match self.ep.state(c.handle) {
            Ok(State::Established | State::CloseWait) => Some(self.write_room(&c, sndbuf)),
            _ => None,
        }
    }

    /// Check that `fd` can take data now; `Ok(room)`.
    pub(super) fn write_check(&mut self, fd: Fd) -> Result<(ConnFd, usize), Errno> {
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

    pub(super) fn send_result(
        &mut self,
        fd: Fd,
        r: Result<usize, SendError>,
    ) -> Result<usize, Errno> {
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
            self.note_no_space(fd);
            return Err(Errno::EAGAIN);
        }
        let n = buf.len().min(room);
        let now = self.now;
        let r = self.ep.send(now, c.handle, &buf[..n]);
        if matches!(r, Ok(k) if k < buf.len()) || matches!(r, Err(SendError::WouldBlock)) {
            self.note_no_space(fd);
        }
        self.send_result(fd, r)
    }

    /// `writev(fd, bufs)`: queues the buffers in order as far as they fit.
    pub fn writev(&mut self, fd: Fd, bufs: &[IoSlice<'_>]) -> Result<usize, Errno> {
        let (c, mut room) = self.write_check(fd)?;
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        if room == 0 {
            self.note_no_space(fd);
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
                    if matches!(e, SendError::WouldBlock) {
                        self.note_no_space(fd);
                    }
                    return self.send_result(fd, Err(e));
                }
            }
        }
        if total < bufs.iter().map(|b| b.len()).sum::<usize>() {
            self.note_no_space(fd);
        }
        self.send_result(fd, Ok(total))
    }

    /// A write did not take everything it was given: the send buffer is full, so
    /// the next freed room wakes `OUT` watchers (Linux's `SOCK_NOSPACE`).
    fn note_no_space(&mut self, fd: Fd) {
        if let Some(c) = self.conn_mut(fd) {
            c.no_space = true;
        }
    }
}
