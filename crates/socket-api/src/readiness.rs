//! [`Readiness`]: what a descriptor is ready for, in the terms of Linux's `tcp_poll`.

use core::ops::{BitOr, BitOrAssign};

/// What a socket is ready for, or (as the `wake` of
/// [`SocketTable::drain_changes`](crate::SocketTable::drain_changes)) what just happened.
///
/// [`Readiness::bits`] gives the Linux `EPOLL*` values (`EPOLLIN` 0x1, `EPOLLOUT` 0x4,
/// `EPOLLERR` 0x8, `EPOLLHUP` 0x10, `EPOLLRDHUP` 0x2000), which `epoll_events::Events`
/// takes unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Readiness {
    /// `EPOLLIN`: a read would not block (data, end of stream, an error), or a
    /// listener has a connection to accept.
    pub readable: bool,
    /// `EPOLLOUT`: a write would not block (buffer space, or the write side is shut
    /// down so a write fails at once).
    pub writable: bool,
    /// `EPOLLRDHUP`: the read side is shut down (the peer's FIN, our `SHUT_RD`, a reset).
    pub rdhup: bool,
    /// `EPOLLHUP`: both directions are shut down, or the connection is closed.
    pub hup: bool,
    /// `EPOLLERR`: an error is pending (read it with `SO_ERROR`).
    pub err: bool,
}

impl Readiness {
    /// Nothing.
    pub const EMPTY: Readiness = Readiness {
        readable: false,
        writable: false,
        rdhup: false,
        hup: false,
        err: false,
    };
    /// Every bit: the wake of a state change (FIN, RST, connected, shutdown), which
    /// meets every interest, like Linux's key-less `sk_state_change` wake-up.
    pub const ALL: Readiness = Readiness {
        readable: true,
        writable: true,
        rdhup: true,
        hup: true,
        err: true,
    };
    /// Only `readable`: the wake of new data or a new connection (`sk_data_ready`).
    pub const READABLE: Readiness = Readiness {
        readable: true,
        ..Readiness::EMPTY
    };
    /// Only `writable`: the wake of freed send space (`sk_write_space`).
    pub const WRITABLE: Readiness = Readiness {
        writable: true,
        ..Readiness::EMPTY
    };

    /// `EPOLLIN`.
    pub const EPOLLIN: u32 = 0x001;
    /// `EPOLLOUT`.
    pub const EPOLLOUT: u32 = 0x004;
    /// `EPOLLERR`.
    pub const EPOLLERR: u32 = 0x008;
    /// `EPOLLHUP`.
    pub const EPOLLHUP: u32 = 0x010;
    /// `EPOLLRDHUP`.
    pub const EPOLLRDHUP: u32 = 0x2000;

    /// No bit set.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        !(self.readable || self.writable || self.rdhup || self.hup || self.err)
    }

    /// The Linux `EPOLL*` bits.
    #[must_use]
    pub const fn bits(self) -> u32 {
        (if self.readable { Self::EPOLLIN } else { 0 })
            | (if self.writable { Self::EPOLLOUT } else { 0 })
            | (if self.err { Self::EPOLLERR } else { 0 })
            | (if self.hup { Self::EPOLLHUP } else { 0 })
            | (if self.rdhup { Self::EPOLLRDHUP } else { 0 })
    }

    /// From Linux `EPOLL*` bits; other bits are ignored.
    #[must_use]
    pub const fn from_bits_truncate(bits: u32) -> Readiness {
        Readiness {
            readable: bits & Self::EPOLLIN != 0,
            writable: bits & Self::EPOLLOUT != 0,
            err: bits & Self::EPOLLERR != 0,
            hup: bits & Self::EPOLLHUP != 0,
            rdhup: bits & Self::EPOLLRDHUP != 0,
        }
    }

    /// Bits set in either.
    #[must_use]
    pub const fn union(self, other: Readiness) -> Readiness {
        Readiness::from_bits_truncate(self.bits() | other.bits())
    }
}

impl BitOr for Readiness {
    type Output = Readiness;
    fn bitor(self, rhs: Readiness) -> Readiness {
        self.union(rhs)
    }
}

impl BitOrAssign for Readiness {
    fn bitor_assign(&mut self, rhs: Readiness) {
        *self = self.union(rhs);
    }
}
