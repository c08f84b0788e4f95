//! Socket options ([`SockOpt`], [`SockOptName`]), call flags and the Linux constants
//! of the C-shaped entry points.

use core::time::Duration;

use crate::Errno;

/// `AF_INET`.
pub const AF_INET: i32 = 2;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: i32 = 1;
/// `SOCK_NONBLOCK` (a flag or-ed into the type of `socket`).
pub const SOCK_NONBLOCK: i32 = 0o4000;
/// `SOCK_CLOEXEC` (accepted and ignored: there is no exec in a context).
pub const SOCK_CLOEXEC: i32 = 0o2_000_000;
/// `IPPROTO_TCP` (also the option level of the `TCP_*` options).
pub const IPPROTO_TCP: i32 = 6;
/// `SOL_SOCKET`: the option level of the `SO_*` options.
pub const SOL_SOCKET: i32 = 1;

/// `SO_REUSEADDR`.
pub const SO_REUSEADDR: i32 = 2;
/// `SO_ERROR`.
pub const SO_ERROR: i32 = 4;
/// `SO_SNDBUF`.
pub const SO_SNDBUF: i32 = 7;
/// `SO_RCVBUF`.
pub const SO_RCVBUF: i32 = 8;
/// `SO_KEEPALIVE`.
pub const SO_KEEPALIVE: i32 = 9;
/// `SO_LINGER`.
pub const SO_LINGER: i32 = 13;
/// `SO_RCVTIMEO` (Linux x86-64 `SO_RCVTIMEO_OLD`).
pub const SO_RCVTIMEO: i32 = 20;
/// `SO_SNDTIMEO` (Linux x86-64 `SO_SNDTIMEO_OLD`).
pub const SO_SNDTIMEO: i32 = 21;
/// `TCP_NODELAY`.
pub const TCP_NODELAY: i32 = 1;
/// `TCP_MAXSEG`.
pub const TCP_MAXSEG: i32 = 2;
/// `TCP_KEEPIDLE`.
pub const TCP_KEEPIDLE: i32 = 4;
/// `TCP_KEEPINTVL`.
pub const TCP_KEEPINTVL: i32 = 5;
/// `TCP_KEEPCNT`.
pub const TCP_KEEPCNT: i32 = 6;
/// `TCP_USER_TIMEOUT`.
pub const TCP_USER_TIMEOUT: i32 = 18;

/// `MSG_OOB` (not supported: `EOPNOTSUPP`).
pub const MSG_OOB: i32 = 0x1;
/// `MSG_PEEK`: read without consuming.
pub const MSG_PEEK: i32 = 0x2;
/// `MSG_DONTWAIT`: do not block (this crate never blocks; the runtime reads it).
pub const MSG_DONTWAIT: i32 = 0x40;
/// `MSG_WAITALL`: a hint for the runtime's blocking loop; accepted here.
pub const MSG_WAITALL: i32 = 0x100;
/// `MSG_NOSIGNAL`: there are no signals in a context; accepted and ignored.
pub const MSG_NOSIGNAL: i32 = 0x4000;
/// `MSG_MORE`: accepted and ignored (Nagle and `TCP_NODELAY` decide segmenting).
pub const MSG_MORE: i32 = 0x8000;

/// `SHUT_RD`.
pub const SHUT_RD: i32 = 0;
/// `SHUT_WR`.
pub const SHUT_WR: i32 = 1;
/// `SHUT_RDWR`.
pub const SHUT_RDWR: i32 = 2;

/// `F_GETFL`.
pub const F_GETFL: i32 = 3;
/// `F_SETFL`.
pub const F_SETFL: i32 = 4;
/// `O_NONBLOCK`.
pub const O_NONBLOCK: i32 = 0o4000;
/// `FIONREAD` (= `SIOCINQ`): bytes ready to read.
pub const FIONREAD: u64 = 0x541B;

/// Smallest `SO_RCVBUF`/`SO_SNDBUF` kept (Linux's `SOCK_MIN_RCVBUF` is about 2 KiB).
pub const MIN_BUF: usize = 2048;
/// Smallest `TCP_MAXSEG` accepted (Linux `TCP_MIN_MSS`).
pub const MIN_MAXSEG: u16 = 88;
/// Largest `TCP_KEEPIDLE`/`TCP_KEEPINTVL` in seconds (Linux `MAX_TCP_KEEPIDLE`).
pub const MAX_KEEP_SECS: u64 = 32767;
/// Largest `TCP_KEEPCNT` (Linux `MAX_TCP_KEEPCNT`).
pub const MAX_KEEPCNT: u32 = 127;

/// Which half of a connection `shutdown` closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// `SHUT_RD`: no more reading; buffered data can still be read, then end of stream.
    Read,
    /// `SHUT_WR`: no more writing; a FIN follows the queued data.
    Write,
    /// `SHUT_RDWR`: both.
    Both,
}

impl Shutdown {
    /// From `SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`; anything else is `EINVAL`.
    pub fn from_raw(how: i32) -> Result<Shutdown, Errno> {
        match how {
            SHUT_RD => Ok(Shutdown::Read),
            SHUT_WR => Ok(Shutdown::Write),
            SHUT_RDWR => Ok(Shutdown::Both),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// The name of a socket option (what `getsockopt` asks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockOptName {
    /// `SO_ERROR` (read-only; reading clears it).
    Error,
    /// `SO_RCVBUF`.
    RcvBuf,
    /// `SO_SNDBUF`.
    SndBuf,
    /// `SO_LINGER`.
    Linger,
    /// `SO_KEEPALIVE`.
    KeepAlive,
    /// `SO_REUSEADDR`.
    ReuseAddr,
    /// `SO_RCVTIMEO`.
    RcvTimeo,
    /// `SO_SNDTIMEO`.
    SndTimeo,
    /// `TCP_NODELAY`.
    NoDelay,
    /// `TCP_MAXSEG`.
    MaxSeg,
    /// `TCP_KEEPIDLE`.
    KeepIdle,
    /// `TCP_KEEPINTVL`.
    KeepIntvl,
    /// `TCP_KEEPCNT`.
    KeepCnt,
    /// `TCP_USER_TIMEOUT`.
    UserTimeout,
}

impl SockOptName {
    /// From a Linux `(level, optname)` pair; unknown pairs are `ENOPROTOOPT`.
    pub fn from_raw(level: i32, name: i32) -> Result<SockOptName, Errno> {
        Ok(match (level, name) {
            (SOL_SOCKET, SO_ERROR) => SockOptName::Error,
            (SOL_SOCKET, SO_RCVBUF) => SockOptName::RcvBuf,
            (SOL_SOCKET, SO_SNDBUF) => SockOptName::SndBuf,
            (SOL_SOCKET, SO_LINGER) => SockOptName::Linger,
            (SOL_SOCKET, SO_KEEPALIVE) => SockOptName::KeepAlive,
            (SOL_SOCKET, SO_REUSEADDR) => SockOptName::ReuseAddr,
            (SOL_SOCKET, SO_RCVTIMEO) => SockOptName::RcvTimeo,
            (SOL_SOCKET, SO_SNDTIMEO) => SockOptName::SndTimeo,
            (IPPROTO_TCP, TCP_NODELAY) => SockOptName::NoDelay,
            (IPPROTO_TCP, TCP_MAXSEG) => SockOptName::MaxSeg,
            (IPPROTO_TCP, TCP_KEEPIDLE) => SockOptName::KeepIdle,
            (IPPROTO_TCP, TCP_KEEPINTVL) => SockOptName::KeepIntvl,
            (IPPROTO_TCP, TCP_KEEPCNT) => SockOptName::KeepCnt,
            (IPPROTO_TCP, TCP_USER_TIMEOUT) => SockOptName::UserTimeout,
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    /// The Linux `(level, optname)` pair.
    #[must_use]
    pub const fn to_raw(self) -> (i32, i32) {
        match self {
            SockOptName::Error => (SOL_SOCKET, SO_ERROR),
            SockOptName::RcvBuf => (SOL_SOCKET, SO_RCVBUF),
            SockOptName::SndBuf => (SOL_SOCKET, SO_SNDBUF),
            SockOptName::Linger => (SOL_SOCKET, SO_LINGER),
            SockOptName::KeepAlive => (SOL_SOCKET, SO_KEEPALIVE),
            SockOptName::ReuseAddr => (SOL_SOCKET, SO_REUSEADDR),
            SockOptName::RcvTimeo => (SOL_SOCKET, SO_RCVTIMEO),
            SockOptName::SndTimeo => (SOL_SOCKET, SO_SNDTIMEO),
            SockOptName::NoDelay => (IPPROTO_TCP, TCP_NODELAY),
            SockOptName::MaxSeg => (IPPROTO_TCP, TCP_MAXSEG),
            SockOptName::KeepIdle => (IPPROTO_TCP, TCP_KEEPIDLE),
            SockOptName::KeepIntvl => (IPPROTO_TCP, TCP_KEEPINTVL),
            SockOptName::KeepCnt => (IPPROTO_TCP, TCP_KEEPCNT),
            SockOptName::UserTimeout => (IPPROTO_TCP, TCP_USER_TIMEOUT),
        }
    }
}

/// A socket option with its value (what `setsockopt` sets and `getsockopt` returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockOpt {
    /// `SO_ERROR`: the pending error, cleared by reading it. Not settable
    /// (`ENOPROTOOPT`, as on Linux).
    Error(Option<Errno>),
    /// `SO_RCVBUF` in bytes.
    RcvBuf(usize),
    /// `SO_SNDBUF` in bytes.
    SndBuf(usize),
    /// `SO_LINGER`: `None` off; `Some(ZERO)` makes `close` an abort (RST);
    /// `Some(t)` lets a blocking `close` wait up to `t` (the runtime's job).
    Linger(Option<Duration>),
    /// `SO_KEEPALIVE`.
    KeepAlive(bool),
    /// `SO_REUSEADDR`: `bind` may take a port whose connections are closing or in
    /// TIME-WAIT.
    ReuseAddr(bool),
    /// `SO_RCVTIMEO`: how long a blocking `read`/`recv`/`accept` waits before
    /// `EAGAIN` (`None`: forever). Kept here; the runtime does the waiting.
    RcvTimeo(Option<Duration>),
    /// `SO_SNDTIMEO`: how long a blocking `write`/`send` waits before
    /// `EAGAIN`, and a blocking `connect` before `EINPROGRESS` (`None`: forever).
    SndTimeo(Option<Duration>),
    /// `TCP_NODELAY`: Nagle's algorithm off.
    NoDelay(bool),
    /// `TCP_MAXSEG` in bytes.
    MaxSeg(u16),
    /// `TCP_KEEPIDLE`: idle time before the first keep-alive probe (whole seconds,
    /// 1..=32767).
    KeepIdle(Duration),
    /// `TCP_KEEPINTVL`: time between probes (whole seconds, 1..=32767).
    KeepIntvl(Duration),
    /// `TCP_KEEPCNT`: unanswered probes before the connection is dropped (1..=127).
    KeepCnt(u32),
    /// `TCP_USER_TIMEOUT`: `None` (0) leaves only the retransmission limit.
    UserTimeout(Option<Duration>),
}

impl SockOpt {
    /// The option's name.
    #[must_use]
    pub const fn name(self) -> SockOptName {
        match self {
            SockOpt::Error(_) => SockOptName::Error,
            SockOpt::RcvBuf(_) => SockOptName::RcvBuf,
            SockOpt::SndBuf(_) => SockOptName::SndBuf,
            SockOpt::Linger(_) => SockOptName::Linger,
            SockOpt::KeepAlive(_) => SockOptName::KeepAlive,
            SockOpt::ReuseAddr(_) => SockOptName::ReuseAddr,
            SockOpt::RcvTimeo(_) => SockOptName::RcvTimeo,
            SockOpt::SndTimeo(_) => SockOptName::SndTimeo,
            SockOpt::NoDelay(_) => SockOptName::NoDelay,
            SockOpt::MaxSeg(_) => SockOptName::MaxSeg,
            SockOpt::KeepIdle(_) => SockOptName::KeepIdle,
            SockOpt::KeepIntvl(_) => SockOptName::KeepIntvl,
            SockOpt::KeepCnt(_) => SockOptName::KeepCnt,
            SockOpt::UserTimeout(_) => SockOptName::UserTimeout,
        }
    }

    /// From a Linux `(level, optname)` and an integer value, as C callers pass them.
    /// Booleans are non-zero; `SO_LINGER` takes the linger time in seconds, negative
    /// meaning off; `TCP_USER_TIMEOUT` is in milliseconds. Negative sizes and counts
    /// are `EINVAL`; unknown options `ENOPROTOOPT`.
    pub fn from_raw(level: i32, name: i32, value: i32) -> Result<SockOpt, Errno> {
        let name = SockOptName::from_raw(level, name)?;
        let unsigned = || u32::try_from(value).map_err(|_| Errno::EINVAL);
        Ok(match name {
            SockOptName::Error => return Err(Errno::ENOPROTOOPT),
            SockOptName::RcvBuf => SockOpt::RcvBuf(unsigned()? as usize),
            SockOptName::SndBuf => SockOpt::SndBuf(unsigned()? as usize),
            SockOptName::Linger => {
                SockOpt::Linger(u64::try_from(value).ok().map(Duration::from_secs))
            }
            SockOptName::KeepAlive => SockOpt::KeepAlive(value != 0),
            SockOptName::ReuseAddr => SockOpt::ReuseAddr(value != 0),
            // The integer form is in milliseconds (C callers pass a timeval).
            SockOptName::RcvTimeo | SockOptName::SndTimeo => {
                let ms = unsigned()?;
                let t = (ms != 0).then(|| Duration::from_millis(u64::from(ms)));
                if name == SockOptName::RcvTimeo {
                    SockOpt::RcvTimeo(t)
                } else {
                    SockOpt::SndTimeo(t)
                }
            }
            SockOptName::NoDelay => SockOpt::NoDelay(value != 0),
            SockOptName::MaxSeg => {
                SockOpt::MaxSeg(u16::try_from(value).map_err(|_| Errno::EINVAL)?)
            }
            SockOptName::KeepIdle => SockOpt::KeepIdle(Duration::from_secs(u64::from(unsigned()?))),
            SockOptName::KeepIntvl => {
                SockOpt::KeepIntvl(Duration::from_secs(u64::from(unsigned()?)))
            }
            SockOptName::KeepCnt => SockOpt::KeepCnt(unsigned()?),
            SockOptName::UserTimeout => {
                let ms = unsigned()?;
                SockOpt::UserTimeout((ms != 0).then(|| Duration::from_millis(u64::from(ms))))
            }
        })
    }

    /// The integer a C `getsockopt` would store (saturating at `i32::MAX`):
    /// `SO_ERROR` is the errno (0 for none), `SO_LINGER` the seconds or -1 when off.
    #[must_use]
    pub fn to_raw(self) -> i32 {
        let sat = |v: u128| i32::try_from(v).unwrap_or(i32::MAX);
        match self {
            SockOpt::Error(e) => e.map_or(0, Errno::errno),
            SockOpt::RcvBuf(n) | SockOpt::SndBuf(n) => sat(n as u128),
            SockOpt::Linger(l) => l.map_or(-1, |d| sat(u128::from(d.as_secs()))),
            SockOpt::KeepAlive(b) | SockOpt::ReuseAddr(b) | SockOpt::NoDelay(b) => i32::from(b),
            SockOpt::MaxSeg(m) => i32::from(m),
            SockOpt::KeepIdle(d) | SockOpt::KeepIntvl(d) => sat(u128::from(d.as_secs())),
            SockOpt::KeepCnt(c) => sat(u128::from(c)),
            SockOpt::UserTimeout(t) | SockOpt::RcvTimeo(t) | SockOpt::SndTimeo(t) => {
                t.map_or(0, |d| sat(d.as_millis()))
            }
        }
    }
}

/// Flags of `recv` and `send` (`MSG_*` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MsgFlags(i32);

impl MsgFlags {
    /// No flag.
    pub const NONE: MsgFlags = MsgFlags(0);
    /// `MSG_PEEK`.
    pub const PEEK: MsgFlags = MsgFlags(MSG_PEEK);
    /// `MSG_DONTWAIT`.
    pub const DONTWAIT: MsgFlags = MsgFlags(MSG_DONTWAIT);

    const RECV_OK: i32 = MSG_PEEK | MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL;
    const SEND_OK: i32 = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE;

    /// Raw `MSG_*` bits; which are accepted depends on the call (unsupported ones,
    /// `MSG_OOB` among them, make it fail with `EOPNOTSUPP`).
    #[must_use]
    pub const fn from_raw(bits: i32) -> MsgFlags {
        MsgFlags(bits)
    }

    /// The raw bits.
    #[must_use]
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// `MSG_PEEK` is set.
    #[must_use]
    pub const fn peek(self) -> bool {
        self.0 & MSG_PEEK != 0
    }

    /// `MSG_DONTWAIT` is set.
    #[must_use]
    pub const fn dontwait(self) -> bool {
        self.0 & MSG_DONTWAIT != 0
    }

    /// `EOPNOTSUPP` for a flag `recv` does not take.
    pub fn check_recv(self) -> Result<(), Errno> {
        if self.0 & !Self::RECV_OK != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        Ok(())
    }

    /// `EOPNOTSUPP` for a flag `send` does not take.
    pub fn check_send(self) -> Result<(), Errno> {
        if self.0 & !Self::SEND_OK != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        Ok(())
    }
}

impl core::ops::BitOr for MsgFlags {
    type Output = MsgFlags;
    fn bitor(self, rhs: MsgFlags) -> MsgFlags {
        MsgFlags(self.0 | rhs.0)
    }
}
