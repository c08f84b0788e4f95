//! The system-call edge: every `unsafe` call of the crate except the ones into
//! xsk-rs lives here, each behind a safe function.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Turns a `-1` return into the `errno` error.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A non-blocking `eventfd(2)` counter.
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative return is a new
        // descriptor that nothing else owns.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor owned by no one else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Adds one to the counter (makes the descriptor readable).
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor we own. The
        // only failure (EAGAIN at the counter's maximum) still leaves it readable.
        let _ = unsafe {
            libc::write(
                self.0.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Resets the counter; returns whether it was signalled.
    pub(crate) fn drain(&self) -> bool {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from a descriptor we own;
        // non-blocking, so an unsignalled counter returns EAGAIN.
        let n = unsafe {
            libc::read(
                self.0.as_raw_fd(),
                (&mut value as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        n == std::mem::size_of::<u64>() as isize && value > 0
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// One entry of a poll set.
pub(crate) type PollFd = libc::pollfd;

/// A poll-set entry for `fd`.
pub(crate) fn pollfd(fd: RawFd, readable: bool, writable: bool) -> PollFd {
    let mut events = 0;
    if readable {
        events |= libc::POLLIN;
    }
    if writable {
        events |= libc::POLLOUT;
    }
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// `ppoll(2)` with a nanosecond timeout (`None`: forever). Returns the number of
/// ready entries; an interrupted call reports zero.
pub(crate) fn ppoll(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a live, exclusively borrowed array of `fds.len()`
    // pollfd; `ts_ptr` is null or points to a timespec alive for the call; a
    // null signal mask keeps the current one.
    let ret = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(ret as usize)
}

/// Moves the calling thread into the network namespace of `ns` (an open
/// `/var/run/netns/NAME` or `/proc/PID/ns/net`).
pub(crate) fn setns_net(ns: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: setns takes a descriptor and a flag; it changes only the
    // calling thread's network namespace.
    cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}

/// The index of interface `name` in the calling thread's namespace.
pub(crate) fn if_nametoindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

/// The hardware (MAC) address of interface `name` in the calling thread's
/// network namespace (`SIOCGIFHWADDR` on a throw-away datagram socket).
pub(crate) fn if_hwaddr(name: &str) -> io::Result<[u8; 6]> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad interface name",
        ));
    }
    // SAFETY: socket takes no pointers; a non-negative return is a new
    // descriptor that nothing else owns.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor owned by no one else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &b) in req.ifr_name.iter_mut().zip(bytes) {
        *d = b as libc::c_char;
    }
    // SAFETY: `req` is a live ifreq with a NUL-terminated name (checked
    // above and zero-filled); SIOCGIFHWADDR writes only into it.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) })?;
    // SAFETY: SIOCGIFHWADDR filled the ifru_hwaddr member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, &b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = b as u8;
    }
    Ok(mac)
}

/// The effective user id.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec; the clock ids used are always valid.
    unsafe { libc::clock_gettime(id, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time used by the whole process.
pub(crate) fn process_cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time used by the calling thread.
pub(crate) fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// `XDP_MAX_TX_SKB_BUDGET` (linux/if_xdp.h, Linux 6.17): how many frames one
/// `sendto(2)` transmits in copy mode (default 32).
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// Raises the copy-mode TX budget of AF_XDP socket `fd` to `budget` frames
/// per kick. Older kernels reject the option; the caller keeps the default.
pub(crate) fn set_xdp_tx_budget(fd: RawFd, budget: u32) -> io::Result<()> {
    // SAFETY: passes a live u32 and its size; the kernel only reads it.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            XDP_MAX_TX_SKB_BUDGET,
            (&budget as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Restricts the calling thread to CPU `cpu`.
pub(crate) fn pin_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "CPU index too large",
        ));
    }
    // SAFETY: cpu_set_t is plain old data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above); `set` is live.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a live cpu_set_t of the size given.
    cvt(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) })
        .map(drop)
}

/// `struct ethtool_channels` (linux/ethtool.h).
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// The number of receive queues of interface `name` (`ETHTOOL_GCHANNELS`),
/// in the calling thread's namespace.
pub(crate) fn rx_queue_count(name: &str) -> io::Result<u32> {
    if name.len() >= libc::IFNAMSIZ || name.as_bytes().contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad interface name",
        ));
    }
    // SAFETY: a plain datagram socket; a non-negative return is ours to own.
    let sock =
        cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `sock` is a fresh descriptor owned by no one else.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut channels as *mut EthtoolChannels).cast();
    // SAFETY: SIOCETHTOOL reads the NUL-terminated name in `ifr` and writes an
    // ethtool_channels through `ifru_data`, which points to a live one.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) })?;
    Ok(channels.rx_count.max(channels.combined_count).max(1))
}

/// Batched UDP receive and send with `recvmmsg(2)`/`sendmmsg(2)` on a
/// connected or unconnected socket; buffers allocated once.
pub(crate) struct Mmsg {
    bufs: Vec<u8>,
    buf_size: usize,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers inside `iovs`/`hdrs` point only into the
// heap buffers owned by the same value and are rebuilt before each call.
unsafe impl Send for Mmsg {}

impl Mmsg {
    pub(crate) fn new(batch: usize, buf_size: usize) -> Self {
        let batch = batch.max(1);
        Mmsg {
            bufs: vec![0; batch * buf_size],
            buf_size,
            lens: vec![0; batch],
            // SAFETY: sockaddr_storage is plain old data; zero is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; batch],
            addr_lens: vec![0; batch],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                batch
            ],
            // SAFETY: mmsghdr is plain old data; zero is valid.
            hdrs: vec![unsafe { std::mem::zeroed() }; batch],
        }
    }

    pub(crate) fn batch(&self) -> usize {
        self.lens.len()
    }

    pub(crate) fn buf(&self, i: usize) -> &[u8] {
        &self.bufs[i * self.buf_size..i * self.buf_size + self.lens[i]]
    }

    pub(crate) fn buf_mut(&mut self, i: usize, len: usize) -> &mut [u8] {
        let len = len.min(self.buf_size);
        self.lens[i] = len;
        &mut self.bufs[i * self.buf_size..i * self.buf_size + len]
    }

    /// Points header `i` at buffer `i` (whole buffer when receiving, its
    /// length when sending) and at address slot `i`.
    fn setup(&mut self, n: usize, receiving: bool, with_addr: bool) {
        let base = self.bufs.as_mut_ptr();
        for i in 0..n {
            self.iovs[i] = libc::iovec {
                // SAFETY (pointer arithmetic): i < batch, so the offset is
                // inside `bufs`.
                iov_base: unsafe { base.add(i * self.buf_size) }.cast(),
                iov_len: if receiving {
                    self.buf_size
                } else {
                    self.lens[i]
                },
            };
            let h = &mut self.hdrs[i];
            h.msg_len = 0;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            if with_addr {
                h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = if receiving {
                    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t
                } else {
                    self.addr_lens[i]
                };
            } else {
                h.msg_hdr.msg_name = std::ptr::null_mut();
                h.msg_hdr.msg_namelen = 0;
            }
        }
    }

    /// Receives up to `batch` datagrams (waiting for the first one when the
    /// socket is blocking); their sources are kept for [`send`](Self::send).
    pub(crate) fn recv(&mut self, fd: RawFd, flags: libc::c_int) -> io::Result<usize> {
        let n = self.batch();
        self.setup(n, true, true);
        // SAFETY: `hdrs[..n]` point at live iovecs, buffers and address slots
        // of `self`, which stays exclusively borrowed for the call.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        let got = cvt(got)? as usize;
        for i in 0..got {
            self.lens[i] = self.hdrs[i].msg_len as usize;
            self.addr_lens[i] = self.hdrs[i].msg_hdr.msg_namelen;
        }
        Ok(got)
    }

    /// Sends datagrams `0..n`, each to the source it was received from when
    /// `to_sources`, otherwise on the connected socket.
    pub(crate) fn send(&mut self, fd: RawFd, n: usize, to_sources: bool) -> io::Result<usize> {
        let n = n.min(self.batch());
        self.setup(n, false, to_sources);
        // SAFETY: as in `recv`; the kernel only reads the buffers.
        let sent = unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
        Ok(cvt(sent)? as usize)
    }
}
