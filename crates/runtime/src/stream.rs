//! Idiomatic types over a [`Context`]: [`TcpListener`] and [`TcpStream`]
//! implementing `std::io::Read` and `Write`, blocking by default.

use crate::api::Error;
use crate::context::Context;
use socket_api::{Fd, Shutdown, SockOpt};
use std::io;
use std::net::SocketAddrV4;

/// A listening socket of one context.
#[derive(Debug)]
pub struct TcpListener<'c> {
    ctx: &'c Context,
    fd: Fd,
}

impl<'c> TcpListener<'c> {
    /// Binds `addr` and listens with a backlog of 1024 (`SO_REUSEADDR` set,
    /// as std does on Unix).
    pub fn bind(ctx: &'c Context, addr: SocketAddrV4) -> io::Result<Self> {
        let fd = ctx.socket()?;
        let l = TcpListener { ctx, fd };
        ctx.setsockopt(fd, SockOpt::ReuseAddr(true))?;
        ctx.bind(fd, addr)?;
        ctx.listen(fd, 1024)?;
        Ok(l)
    }

    /// Waits for a connection.
    pub fn accept(&self) -> io::Result<(TcpStream<'c>, SocketAddrV4)> {
        let (fd, peer) = self.ctx.accept(self.fd)?;
        Ok((TcpStream { ctx: self.ctx, fd }, peer))
    }

    /// The descriptor.
    pub fn fd(&self) -> Fd {
        self.fd
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        Ok(self.ctx.getsockname(self.fd)?)
    }

    /// Non-blocking `accept` (`WouldBlock` when none is ready).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        Ok(self.ctx.set_nonblocking(self.fd, nonblocking)?)
    }
}

impl Drop for TcpListener<'_> {
    fn drop(&mut self) {
        let _ = self.ctx.close(self.fd);
    }
}

/// A connection of one context.
#[derive(Debug)]
pub struct TcpStream<'c> {
    ctx: &'c Context,
    fd: Fd,
}

impl<'c> TcpStream<'c> {
    /// Connects to `remote` (blocking until the handshake completes).
    pub fn connect(ctx: &'c Context, remote: SocketAddrV4) -> io::Result<Self> {
        let fd = ctx.socket()?;
        let s = TcpStream { ctx, fd };
        ctx.connect(fd, remote)?;
        Ok(s)
    }

    /// The descriptor.
    pub fn fd(&self) -> Fd {
        self.fd
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        Ok(self.ctx.getsockname(self.fd)?)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddrV4> {
        Ok(self.ctx.getpeername(self.fd)?)
    }

    /// Half-closes (`Shutdown::Write` sends FIN).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        Ok(self.ctx.shutdown(self.fd, how)?)
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        Ok(self.ctx.setsockopt(self.fd, SockOpt::NoDelay(nodelay))?)
    }

    /// Non-blocking reads and writes.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        Ok(self.ctx.set_nonblocking(self.fd, nonblocking)?)
    }

    /// Closes with a RST instead of a FIN.
    pub fn abort(self) -> Result<(), Error> {
        let r = self.ctx.abort(self.fd);
        std::mem::forget(self);
        r
    }
}

impl io::Read for TcpStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.ctx.read(self.fd, buf)?)
    }
}

impl io::Write for TcpStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.ctx.write(self.fd, buf)?)
    }

    /// Hands the bytes written so far to the stack now (see
    /// [`Context::flush`]); it does not wait for them to be sent.
    fn flush(&mut self) -> io::Result<()> {
        self.ctx.flush();
        Ok(())
    }
}

impl Drop for TcpStream<'_> {
    fn drop(&mut self) {
        let _ = self.ctx.close(self.fd);
    }
}
