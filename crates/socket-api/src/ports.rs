//! Local port bookkeeping: which ports this context's sockets hold, the
//! `SO_REUSEADDR` rules of `bind`, and the choice of ephemeral ports.

use core::ops::RangeInclusive;
use std::net::SocketAddrV4;

/// Decides which local ports this context may use for connections it opens, so
/// that the flows of `connect` (and `bind` to port 0) land on the calling core
/// (mTCP picks source ports whose receive-side hash maps to the core's queue).
///
/// `remote` is `None` for `bind` to port 0 (the peer is not known yet).
/// Any `Fn(SocketAddrV4, Option<SocketAddrV4>) -> bool + Send` is a policy.
pub trait PortPolicy: Send {
    /// May `local` be used (towards `remote`)?
    fn accepts(&self, local: SocketAddrV4, remote: Option<SocketAddrV4>) -> bool;
}

impl<F> PortPolicy for F
where
    F: Fn(SocketAddrV4, Option<SocketAddrV4>) -> bool + Send,
{
    fn accepts(&self, local: SocketAddrV4, remote: Option<SocketAddrV4>) -> bool {
        self(local, remote)
    }
}

/// How one local port is used by the sockets of the context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PortUse {
    /// Open sockets holding the port (bound, listening or connected).
    pub holders: u32,
    /// Of `holders`, those with `SO_REUSEADDR` set when they took it.
    pub holders_reuse: u32,
    /// Of `holders`, those that chose the port with `bind` (not an autobind of
    /// `connect`, not an accepted connection).
    pub explicit: u32,
    /// Listening sockets on the port.
    pub listeners: u32,
    /// Connections closed by the application that the engine still holds
    /// (FIN handshake, TIME-WAIT).
    pub orphans: u32,
}

/// A socket's hold on a port, recorded so that it is given back exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortHold {
    pub port: u16,
    pub reuse: bool,
    pub explicit: bool,
    pub listener: bool,
}

/// Per-port counters, one entry per port (a flat table: O(1), no hashing, 1.25 MiB).
pub(crate) struct Ports {
    table: Box<[PortUse]>,
    /// Where the next ephemeral search starts (RFC 6056 algorithm 1-like rotation).
    cursor: u32,
}

impl core::fmt::Debug for Ports {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ports")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Ports {
    pub fn new(seed: u32) -> Ports {
        Ports {
            table: vec![PortUse::default(); 65536].into_boxed_slice(),
            cursor: seed,
        }
    }

    pub fn get(&self, port: u16) -> PortUse {
        self.table[usize::from(port)]
    }

    /// May a socket with `reuse` bind `port`? Linux's rules, by port: a listener
    /// always conflicts; other open holders conflict unless they and the new socket
    /// all have `SO_REUSEADDR`; closing connections (TIME-WAIT) conflict unless
    /// the new socket has `SO_REUSEADDR`.
    pub fn can_bind(&self, port: u16, reuse: bool) -> bool {
        let u = self.get(port);
        if u.listeners > 0 {
            return false;
        }
        if u.holders > 0 && !(reuse && u.holders_reuse == u.holders) {
            return false;
        }
        u.orphans == 0 || reuse
    }

    /// May `connect` pick `port` automatically? Ports chosen by `bind` or listened
    /// on are never taken; ports of other connections are shared (the engine
    /// refuses a 4-tuple in use).
    pub fn can_autobind(&self, port: u16) -> bool {
        let u = self.get(port);
        u.listeners == 0 && u.explicit == 0
    }

    /// Entirely unused (for `bind` to port 0).
    pub fn is_free(&self, port: u16) -> bool {
        self.get(port) == PortUse::default()
    }

    /// No port is held or closing (tests).
    #[cfg(test)]
    pub fn all_free(&self) -> bool {
        self.table.iter().all(|u| *u == PortUse::default())
    }

    pub fn acquire(&mut self, hold: PortHold) {
        let u = &mut self.table[usize::from(hold.port)];
        u.holders += 1;
        u.holders_reuse += u32::from(hold.reuse);
        u.explicit += u32::from(hold.explicit);
        u.listeners += u32::from(hold.listener);
    }

    pub fn release(&mut self, hold: PortHold) {
        let u = &mut self.table[usize::from(hold.port)];
        u.holders = u.holders.saturating_sub(1);
        u.holders_reuse = u.holders_reuse.saturating_sub(u32::from(hold.reuse));
        u.explicit = u.explicit.saturating_sub(u32::from(hold.explicit));
        u.listeners = u.listeners.saturating_sub(u32::from(hold.listener));
    }

    pub fn add_orphan(&mut self, port: u16) {
        self.table[usize::from(port)].orphans += 1;
    }

    pub fn remove_orphan(&mut self, port: u16) {
        let u = &mut self.table[usize::from(port)];
        u.orphans = u.orphans.saturating_sub(1);
    }

    /// Ports of `range` in search order, starting at the rotating cursor.
    pub fn candidates(&mut self, range: &RangeInclusive<u16>) -> impl Iterator<Item = u16> {
        let (lo, hi) = (*range.start(), *range.end());
        let span = if hi < lo || lo == 0 {
            0
        } else {
            u32::from(hi - lo) + 1
        };
        let start = if span == 0 { 0 } else { self.cursor % span };
        self.cursor = self.cursor.wrapping_add(1);
        (0..span).map(move |i| lo + ((start + i) % span) as u16)
    }
}
