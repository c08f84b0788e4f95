//! The Linux kernel backend (`--kernel`): kernel TCP sockets driven by epoll
//! through mio, one epoll instance and one SO_REUSEPORT listener per core.
//! This is the baseline every figure of ours is compared with.
//!
//! [`KernelStack::busy_polling`] makes each context spin on `epoll_wait`
//! with a zero timeout instead of sleeping in it: the application side of
//! Linux busy polling (the kernel side, polling the device queue from the
//! socket calls, is the `net.core.busy_poll` / `net.core.busy_read`
//! sysctls, which the caller sets).

use crate::net::{Event, Fd, Interest, NetContext, NetStack};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Events taken from epoll per wait.
const EVENT_CAPACITY: usize = 1024;

/// Linux kernel sockets, `cores` contexts pinned to `cpus` (when given).
#[derive(Clone, Debug)]
pub struct KernelStack {
    cpus: Vec<Option<usize>>,
    busy: bool,
}

impl KernelStack {
    /// `cores` contexts, pinned to the CPUs in `cpus` (the i-th context to
    /// `cpus[i]`; unpinned past the end of the list).
    pub fn new(cores: usize, cpus: &[usize]) -> Self {
        KernelStack {
            cpus: (0..cores.max(1)).map(|i| cpus.get(i).copied()).collect(),
            busy: false,
        }
    }

    /// The same stack whose contexts busy-poll (`on`): [`NetContext::wait`]
    /// calls `epoll_wait` with a zero timeout until an event is ready or
    /// the caller's timeout has passed, never sleeping in the kernel.
    pub fn busy_polling(mut self, on: bool) -> Self {
        self.busy = on;
        self
    }

    /// Whether the contexts busy-poll.
    pub fn is_busy_polling(&self) -> bool {
        self.busy
    }
}

impl NetStack for KernelStack {
    type Context = KernelContext;

    fn name(&self) -> &'static str {
        if self.busy {
            "linux-busy"
        } else {
            "linux"
        }
    }

    fn cores(&self) -> usize {
        self.cpus.len()
    }

    fn context(&self, _index: usize) -> io::Result<KernelContext> {
        let mut ctx = KernelContext::new()?;
        ctx.busy = self.busy;
        Ok(ctx)
    }

    fn cpu(&self, index: usize) -> Option<usize> {
        self.cpus.get(index).copied().flatten()
    }
}

#[derive(Debug)]
enum Sock {
    Listener(TcpListener),
    Stream(TcpStream),
}

/// One core's epoll instance and descriptor table.
#[derive(Debug)]
pub struct KernelContext {
    poll: Poll,
    events: Events,
    socks: Slab<Sock>,
    busy: bool,
}

fn ebadf() -> io::Error {
    io::Error::from_raw_os_error(9)
}

fn mio_interest(i: Interest) -> mio::Interest {
    match (i.read, i.write) {
        (true, true) | (false, false) => mio::Interest::READABLE | mio::Interest::WRITABLE,
        (true, false) => mio::Interest::READABLE,
        (false, true) => mio::Interest::WRITABLE,
    }
}

impl KernelContext {
    /// A context with its own epoll instance (sleeping in `epoll_wait`).
    pub fn new() -> io::Result<Self> {
        Ok(KernelContext {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENT_CAPACITY),
            socks: Slab::new(),
            busy: false,
        })
    }

    /// One `epoll_wait`; an interrupted wait is an empty one.
    fn poll_once(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            r => r,
        }
    }

    fn stream(&mut self, fd: Fd) -> io::Result<&mut TcpStream> {
        match self.socks.get_mut(fd.0) {
            Some(Sock::Stream(s)) => Ok(s),
            Some(Sock::Listener(_)) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
            None => Err(ebadf()),
        }
    }

    fn add_stream(&mut self, mut stream: TcpStream) -> io::Result<Fd> {
        let entry = self.socks.vacant_entry();
        let fd = Fd(entry.key());
        self.poll
            .registry()
            .register(&mut stream, Token(fd.0), mio_interest(Interest::BOTH))?;
        entry.insert(Sock::Stream(stream));
        Ok(fd)
    }
}

impl NetContext for KernelContext {
    fn listen(&mut self, addr: SocketAddr, backlog: u32) -> io::Result<Fd> {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.set_nodelay(true)?;
        socket.bind(&addr.into())?;
        socket.listen(backlog.min(i32::MAX as u32) as i32)?;
        let mut listener = TcpListener::from_std(socket.into());
        let entry = self.socks.vacant_entry();
        let fd = Fd(entry.key());
        self.poll
            .registry()
            .register(&mut listener, Token(fd.0), mio::Interest::READABLE)?;
        entry.insert(Sock::Listener(listener));
        Ok(fd)
    }

    fn local_addr(&mut self, fd: Fd) -> io::Result<SocketAddr> {
        match self.socks.get(fd.0) {
            Some(Sock::Listener(l)) => l.local_addr(),
            Some(Sock::Stream(s)) => s.local_addr(),
            None => Err(ebadf()),
        }
    }

    fn accept(&mut self, listener: Fd) -> io::Result<Fd> {
        let stream = match self.socks.get(listener.0) {
            Some(Sock::Listener(l)) => l.accept()?.0,
            Some(Sock::Stream(_)) => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
            None => return Err(ebadf()),
        };
        self.add_stream(stream)
    }

    fn connect(&mut self, addr: SocketAddr) -> io::Result<Fd> {
        let stream = TcpStream::connect(addr)?;
        self.add_stream(stream)
    }

    fn connected(&mut self, fd: Fd) -> io::Result<bool> {
        let stream = self.stream(fd)?;
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        match stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn read(&mut self, fd: Fd, buf: &mut [u8]) -> io::Result<usize> {
        self.stream(fd)?.read(buf)
    }

    fn write(&mut self, fd: Fd, buf: &[u8]) -> io::Result<usize> {
        self.stream(fd)?.write(buf)
    }

    fn writev(&mut self, fd: Fd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.stream(fd)?.write_vectored(bufs)
    }

    fn shutdown_write(&mut self, fd: Fd) -> io::Result<()> {
        self.stream(fd)?.shutdown(std::net::Shutdown::Write)
    }

    fn set_nodelay(&mut self, fd: Fd, on: bool) -> io::Result<()> {
        self.stream(fd)?.set_nodelay(on)
    }

    fn close(&mut self, fd: Fd) -> io::Result<()> {
        match self.socks.try_remove(fd.0) {
            Some(Sock::Listener(mut l)) => self.poll.registry().deregister(&mut l),
            Some(Sock::Stream(mut s)) => self.poll.registry().deregister(&mut s),
            None => Err(ebadf()),
        }
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        if self.busy {
            let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            loop {
                self.poll_once(Some(Duration::ZERO))?;
                if !self.events.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                std::hint::spin_loop();
            }
        } else {
            self.poll_once(timeout)?;
        }
        events.extend(self.events.iter().map(|e| Event {
            fd: Fd(e.token().0),
            readable: e.is_readable() || e.is_read_closed(),
            writable: e.is_writable() || e.is_write_closed(),
            error: e.is_error(),
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits on `ctx` until `fd` has an event, for at most five seconds.
    fn wait_for(ctx: &mut KernelContext, fd: Fd) -> Duration {
        let start = Instant::now();
        let mut events = Vec::new();
        while start.elapsed() < Duration::from_secs(5) {
            ctx.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
            if events.iter().any(|e| e.fd == fd) {
                return start.elapsed();
            }
        }
        panic!("no event on {fd:?} in 5 s");
    }

    #[test]
    fn busy_wait_returns_at_an_event_or_at_the_timeout() {
        let stack = KernelStack::new(1, &[]).busy_polling(true);
        assert!(stack.is_busy_polling());
        assert_eq!(stack.name(), "linux-busy");
        assert_eq!(KernelStack::new(1, &[]).name(), "linux");
        let mut ctx = stack.context(0).unwrap();
        let l = ctx.listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = ctx.local_addr(l).unwrap();

        // Nothing ready: the wait lasts its timeout, with no events.
        let mut events = vec![Event {
            fd: Fd(99),
            readable: true,
            writable: false,
            error: false,
        }];
        let t = Instant::now();
        ctx.wait(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        assert!(events.is_empty());
        assert!(t.elapsed() >= Duration::from_millis(20));
        ctx.wait(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty());

        // A connection: the listener's event ends the wait long before its
        // five-second timeout, and the data that follows is read.
        let c = ctx.connect(addr).unwrap();
        assert!(wait_for(&mut ctx, l) < Duration::from_secs(4));
        let a = ctx.accept(l).unwrap();
        let mut out = [0u8; 5];
        loop {
            match ctx.write(c, b"hello") {
                Ok(n) => {
                    assert_eq!(n, 5);
                    break;
                }
                Err(e) if crate::net::would_block(&e) => {
                    wait_for(&mut ctx, c);
                }
                Err(e) => panic!("{e}"),
            }
        }
        let mut got = 0;
        while got < out.len() {
            match ctx.read(a, &mut out[got..]) {
                Ok(n) => got += n,
                Err(e) if crate::net::would_block(&e) => {
                    wait_for(&mut ctx, a);
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(&out, b"hello");
    }
}
