//! Thin wrappers over the Linux system calls the parity tests need to drive the
//! kernel side (epoll on kernel TCP sockets over loopback, plus the socket options
//! and ioctls that tell when the kernel reached a state): every `unsafe` of those
//! tests is here.
//!
//! One copy, included as `mod sys` through `#[path]` by both crates' parity tests:
//! `epoll-events/tests/linux_parity.rs` and `runtime/tests/epoll_parity.rs`. The
//! including file grants `unsafe_code` (this module is the only place that uses it).
//! Failures the scenarios compare come back as the errno; any other failure is a
//! broken test setup and panics with the call's name.

// Each test binary uses only part of these wrappers, so the rest would warn as dead
// code in that binary.
#![allow(dead_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// A new epoll instance (`epoll_create1(EPOLL_CLOEXEC)`).
pub fn epoll_create() -> OwnedFd {
    // SAFETY: epoll_create1 takes no pointers.
    let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).expect("epoll_create1");
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `epoll_ctl`, returning the errno on failure.
pub fn epoll_ctl(ep: RawFd, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> Result<(), i32> {
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: `event` is a valid epoll_event that outlives the call.
    let ret = unsafe { libc::epoll_ctl(ep, op, fd, &mut event) };
    check(ret).map(drop).map_err(errno)
}

/// `epoll_wait` for up to `max` entries and `timeout_ms` (0: do not block): (data,
/// events) of each entry.
pub fn epoll_wait(ep: RawFd, max: usize, timeout_ms: libc::c_int) -> Vec<(u64, u32)> {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; max];
    // SAFETY: `events` has room for `max` entries and outlives the call.
    let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), max as libc::c_int, timeout_ms) };
    let n = check(n).expect("epoll_wait") as usize;
    events[..n].iter().map(|e| (e.u64, e.events)).collect()
}

/// `epoll_wait` with a zero timeout and `max` entries (0 allowed): the count, or
/// the errno.
pub fn epoll_wait_raw(ep: RawFd, max: usize) -> Result<usize, i32> {
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; max.max(1)];
    // SAFETY: `events` has room for at least `max` entries and outlives the call.
    let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), max as libc::c_int, 0) };
    check(n).map(|n| n as usize).map_err(errno)
}

/// A non-blocking TCP socket, not bound or connected.
pub fn tcp_socket() -> OwnedFd {
    // SAFETY: socket takes no pointers.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })
    .expect("socket");
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data; all zeroes is a valid value.
    let mut sin: libc::sockaddr_in = unsafe { zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = addr.port().to_be();
    sin.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    sin
}

/// `connect`, returning the errno on failure.
pub fn connect(fd: RawFd, addr: SocketAddrV4) -> Result<(), i32> {
    let sin = sockaddr(addr);
    // SAFETY: sin is a live sockaddr_in and the length given is its size.
    let ret = unsafe {
        libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    check(ret).map(drop).map_err(errno)
}

/// A connected (blocking) client socket whose receive buffer is set before the
/// handshake, so the window it advertises never exceeds it.
pub fn connect_with_rcvbuf(addr: SocketAddrV4, rcvbuf: libc::c_int) -> TcpStream {
    // SAFETY: socket takes no pointers.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })
            .expect("socket");
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, rcvbuf);
    if let Err(e) = connect(fd, addr) {
        panic!("connect: {}", io::Error::from_raw_os_error(e));
    }
    stream
}

/// A non-blocking listener on a loopback port, with `SO_RCVBUF` set first if given
/// (accepted sockets inherit it before their handshake).
pub fn listener(rcvbuf: Option<libc::c_int>) -> TcpListener {
    let fd = tcp_socket();
    if let Some(b) = rcvbuf {
        set_int_option(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, b);
    }
    let (fd, _) = bind_loopback(fd);
    // SAFETY: listen takes no pointers.
    check(unsafe { libc::listen(fd.as_raw_fd(), 16) }).expect("listen");
    TcpListener::from(fd)
}

/// A socket bound to a loopback port but not listening, and that port: a SYN to it
/// is answered with an RST.
pub fn closed_port() -> (OwnedFd, u16) {
    bind_loopback(tcp_socket())
}

/// Binds `fd` to an ephemeral loopback port; returns it and the port.
fn bind_loopback(fd: OwnedFd) -> (OwnedFd, u16) {
    let sin = sockaddr(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
    // SAFETY: sin is a live sockaddr_in and the length given is its size.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    check(ret).expect("bind");
    // SAFETY: sockaddr_in is plain old data; all zeroes is a valid value.
    let mut got: libc::sockaddr_in = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: got and len are live and len is got's size.
    let ret = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut got as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    check(ret).expect("getsockname");
    (fd, u16::from_be(got.sin_port))
}

/// `setsockopt` of an int-valued option.
pub fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: the option value points at a live c_int of the length given.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(ret).expect("setsockopt");
}

/// `getsockopt` of an int-valued option.
pub fn int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are live and len is value's size.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    check(ret).expect("getsockopt");
    value
}

/// Abortive close on the next `close`: `SO_LINGER` on with zero time.
pub fn set_linger_zero(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the option value points at a live linger struct of the length given.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    check(ret).expect("setsockopt(SO_LINGER)");
}

/// Bytes unread in the receive queue (`SIOCINQ`).
pub fn unread(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is live.
    check(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) }).expect("FIONREAD");
    n as usize
}

/// Bytes sent but not yet acknowledged, plus unsent (`SIOCOUTQ`).
pub fn unacked(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one c_int through the pointer, which is live.
    check(unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) }).expect("SIOCOUTQ");
    n as usize
}

/// `TCP_INFO`: the state and, for a listener, the accept queue length
/// (`tcpi_unacked`).
pub fn tcp_info(fd: RawFd) -> (u8, u32) {
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: info and len are live and len is info's size.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    check(ret).expect("getsockopt(TCP_INFO)");
    (info.tcpi_state, info.tcpi_unacked)
}

/// `tcpi_state` from `TCP_INFO`.
pub fn tcp_state(fd: RawFd) -> u8 {
    tcp_info(fd).0
}
