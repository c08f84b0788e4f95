//! Event masks and the `epoll_event` record, with Linux's bit values.

use core::fmt;
use core::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not, Sub};

/// A set of `EPOLL*` bits: readiness bits (what a descriptor is ready for) and the two
/// registration flags [`Events::ET`] and [`Events::ONESHOT`].
///
/// The bit values are Linux's (`include/uapi/linux/eventpoll.h`), so a socket layer can
/// hand masks to C-shaped callers unchanged. Only the bits named here can be held; a raw
/// value with other bits (`EPOLLEXCLUSIVE`, `EPOLLWAKEUP`) is refused by
/// [`Events::from_bits`], which a socket layer maps to `EINVAL`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Events(u32);

impl Events {
    /// No bits.
    pub const EMPTY: Events = Events(0);
    /// `EPOLLIN`: data (or a pending connection, or end of stream) can be read.
    pub const IN: Events = Events(0x001);
    /// `EPOLLPRI`: urgent (out-of-band) data can be read.
    pub const PRI: Events = Events(0x002);
    /// `EPOLLOUT`: a write would not block.
    pub const OUT: Events = Events(0x004);
    /// `EPOLLERR`: an error is pending on the descriptor. Always reported; epoll(7):
    /// "epoll_wait(2) will always wait for this event; it is not necessary to set it".
    pub const ERR: Events = Events(0x008);
    /// `EPOLLHUP`: both directions are shut down (or the connection is closed). Always
    /// reported, like [`Events::ERR`].
    pub const HUP: Events = Events(0x010);
    /// `EPOLLRDNORM`: normal data can be read.
    pub const RDNORM: Events = Events(0x040);
    /// `EPOLLRDBAND`: priority band data can be read.
    pub const RDBAND: Events = Events(0x080);
    /// `EPOLLWRNORM`: normal data can be written.
    pub const WRNORM: Events = Events(0x100);
    /// `EPOLLWRBAND`: priority data can be written.
    pub const WRBAND: Events = Events(0x200);
    /// `EPOLLMSG`: unused by Linux, accepted for completeness.
    pub const MSG: Events = Events(0x400);
    /// `EPOLLRDHUP`: the peer shut down its writing half (a FIN arrived).
    pub const RDHUP: Events = Events(0x2000);
    /// `EPOLLONESHOT`: after one report the registration is disarmed until
    /// `EPOLL_CTL_MOD` re-arms it.
    pub const ONESHOT: Events = Events(1 << 30);
    /// `EPOLLET`: edge-triggered; report on wake-ups (transitions, new arrivals) only,
    /// not again merely because the descriptor is still ready.
    pub const ET: Events = Events(1 << 31);

    /// Every readiness bit.
    pub const READINESS: Events = Events(
        Self::IN.0
            | Self::PRI.0
            | Self::OUT.0
            | Self::ERR.0
            | Self::HUP.0
            | Self::RDNORM.0
            | Self::RDBAND.0
            | Self::WRNORM.0
            | Self::WRBAND.0
            | Self::MSG.0
            | Self::RDHUP.0,
    );
    /// The registration flags ([`Events::ET`], [`Events::ONESHOT`]).
    pub const FLAGS: Events = Events(Self::ET.0 | Self::ONESHOT.0);
    /// Every bit this type can hold.
    pub const ALL: Events = Events(Self::READINESS.0 | Self::FLAGS.0);
    /// Bits Linux adds to every registration (`do_epoll_ctl`: `epds.events |= EPOLLERR |
    /// EPOLLHUP`).
    pub const ALWAYS: Events = Events(Self::ERR.0 | Self::HUP.0);

    /// The raw bits.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The set with these raw bits, or `None` if a bit outside [`Events::ALL`] is set.
    #[must_use]
    pub const fn from_bits(bits: u32) -> Option<Events> {
        if bits & !Self::ALL.0 == 0 {
            Some(Events(bits))
        } else {
            None
        }
    }

    /// The set with these raw bits, unknown bits dropped.
    #[must_use]
    pub const fn from_bits_truncate(bits: u32) -> Events {
        Events(bits & Self::ALL.0)
    }

    /// True if no bit is set.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True if every bit of `other` is set in `self`.
    #[must_use]
    pub const fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if `self` and `other` share a bit.
    #[must_use]
    pub const fn intersects(self, other: Events) -> bool {
        self.0 & other.0 != 0
    }

    /// `self` with the registration flags removed.
    #[must_use]
    pub const fn readiness(self) -> Events {
        Events(self.0 & Self::READINESS.0)
    }

    /// Both sets together.
    #[must_use]
    pub const fn union(self, other: Events) -> Events {
        Events(self.0 | other.0)
    }

    /// Bits set in both.
    #[must_use]
    pub const fn intersection(self, other: Events) -> Events {
        Events(self.0 & other.0)
    }

    /// Bits of `self` not in `other`.
    #[must_use]
    pub const fn difference(self, other: Events) -> Events {
        Events(self.0 & !other.0)
    }
}

impl BitOr for Events {
    type Output = Events;
    fn bitor(self, rhs: Events) -> Events {
        self.union(rhs)
    }
}

impl BitOrAssign for Events {
    fn bitor_assign(&mut self, rhs: Events) {
        *self = self.union(rhs);
    }
}

impl BitAnd for Events {
    type Output = Events;
    fn bitand(self, rhs: Events) -> Events {
        self.intersection(rhs)
    }
}

impl BitAndAssign for Events {
    fn bitand_assign(&mut self, rhs: Events) {
        *self = self.intersection(rhs);
    }
}

impl Sub for Events {
    type Output = Events;
    fn sub(self, rhs: Events) -> Events {
        self.difference(rhs)
    }
}

impl Not for Events {
    type Output = Events;
    /// The complement within [`Events::ALL`].
    fn not(self) -> Events {
        Events(!self.0 & Self::ALL.0)
    }
}

const NAMES: [(Events, &str); 13] = [
    (Events::IN, "IN"),
    (Events::PRI, "PRI"),
    (Events::OUT, "OUT"),
    (Events::ERR, "ERR"),
    (Events::HUP, "HUP"),
    (Events::RDNORM, "RDNORM"),
    (Events::RDBAND, "RDBAND"),
    (Events::WRNORM, "WRNORM"),
    (Events::WRBAND, "WRBAND"),
    (Events::MSG, "MSG"),
    (Events::RDHUP, "RDHUP"),
    (Events::ONESHOT, "ONESHOT"),
    (Events::ET, "ET"),
];

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(empty)");
        }
        let mut first = true;
        for (bit, name) in NAMES {
            if self.contains(bit) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// One `struct epoll_event`: a mask and the caller's 64-bit cookie.
///
/// Given to [`EpollContext::epoll_ctl`](crate::EpollContext::epoll_ctl) it is the
/// interest (readiness bits plus [`Events::ET`] / [`Events::ONESHOT`]) and the data to
/// hand back; filled in by [`EpollContext::epoll_wait`](crate::EpollContext::epoll_wait)
/// it is the readiness that was found and that data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Event {
    /// Interest on input to `epoll_ctl`, readiness on output from `epoll_wait`.
    pub events: Events,
    /// Opaque to this crate; returned unchanged with every report.
    pub data: u64,
}

impl Event {
    /// An event with this mask and data.
    #[must_use]
    pub const fn new(events: Events, data: u64) -> Event {
        Event { events, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_values_are_linux() {
        let table = [
            (Events::IN, 0x001),
            (Events::PRI, 0x002),
            (Events::OUT, 0x004),
            (Events::ERR, 0x008),
            (Events::HUP, 0x010),
            (Events::RDNORM, 0x040),
            (Events::RDBAND, 0x080),
            (Events::WRNORM, 0x100),
            (Events::WRBAND, 0x200),
            (Events::MSG, 0x400),
            (Events::RDHUP, 0x2000),
            (Events::ONESHOT, 0x4000_0000),
            (Events::ET, 0x8000_0000),
        ];
        for (events, bits) in table {
            assert_eq!(events.bits(), bits, "{events:?}");
        }
    }

    #[test]
    fn from_bits_refuses_unknown_bits() {
        assert_eq!(
            Events::from_bits(0x2005),
            Some(Events::IN | Events::OUT | Events::RDHUP)
        );
        assert_eq!(Events::from_bits(1 << 28), None, "EPOLLEXCLUSIVE");
        assert_eq!(Events::from_bits(1 << 29), None, "EPOLLWAKEUP");
        assert_eq!(Events::from_bits_truncate(0x1000_0001), Events::IN);
    }

    #[test]
    fn set_operations() {
        let e = Events::IN | Events::ET;
        assert!(e.contains(Events::IN));
        assert!(!e.contains(Events::IN | Events::OUT));
        assert!(e.intersects(Events::IN | Events::OUT));
        assert_eq!(e.readiness(), Events::IN);
        assert_eq!(e - Events::IN, Events::ET);
        assert_eq!(!Events::READINESS, Events::FLAGS);
        assert_eq!(format!("{e:?}"), "IN | ET");
        assert_eq!(format!("{:?}", Events::EMPTY), "(empty)");
    }
}
